package ratelimit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"
)

const redisURLEnv = "BUTLER_TEST_REDIS_URL"

// testRedisURL is the URL of the Redis server the Redis tests use, or skips
// the test.
func testRedisURL(tb testing.TB) string {
	tb.Helper()
	u := os.Getenv(redisURLEnv)
	if u == "" {
		tb.Skip("set BUTLER_TEST_REDIS_URL=redis://127.0.0.1:6379/0 to run the Redis rate-limit tests")
	}
	return u
}

// newTestClient is a client of the test server, closed when the test ends.
func newTestClient(tb testing.TB) *redis.Client {
	tb.Helper()
	opts, err := redis.ParseURL(testRedisURL(tb))
	if err != nil {
		tb.Fatalf("parse %s: %v", redisURLEnv, err)
	}
	c := redis.NewClient(opts)
	tb.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		tb.Fatalf("ping test Redis: %v", err)
	}
	return c
}

// testPrefix is a fresh key prefix whose keys are deleted when the test ends.
func testPrefix(tb testing.TB, admin *redis.Client) string {
	tb.Helper()
	b := make([]byte, 8)
	rand.Read(b)
	prefix := "butler:test:rl:" + hex.EncodeToString(b) + ":"
	tb.Cleanup(func() {
		ctx := context.Background()
		for _, k := range scanKeys(tb, admin, prefix) {
			admin.Del(ctx, k)
		}
	})
	return prefix
}

func scanKeys(tb testing.TB, c *redis.Client, prefix string) []string {
	tb.Helper()
	var keys []string
	it := c.Scan(context.Background(), 0, prefix+"*", 1000).Iterator()
	for it.Next(context.Background()) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		tb.Fatalf("scan %s*: %v", prefix, err)
	}
	return keys
}

// recordingHandler keeps every log record.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler            { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r.Clone())
	return nil
}

// levels is the level of each record so far.
func (h *recordingHandler) levels() []slog.Level {
	h.mu.Lock()
	defer h.mu.Unlock()
	var ls []slog.Level
	for _, r := range h.records {
		ls = append(ls, r.Level)
	}
	return ls
}

func (h *recordingHandler) attr(i int, key string) slog.Value {
	h.mu.Lock()
	defer h.mu.Unlock()
	var v slog.Value
	h.records[i].Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

// countingLimiter counts the calls it passes on to its Limiter.
type countingLimiter struct {
	calls atomic.Int64
	next  Limiter
}

func (c *countingLimiter) Allow(ctx context.Context, key string) (Decision, error) {
	c.calls.Add(1)
	return c.next.Allow(ctx, key)
}

// closedAddr is a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestRedis_ReplicasShareOneBudget(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	prefix := testPrefix(t, admin)
	fallback := &countingLimiter{next: NewMemory(1, 1, nil)}
	logs := &recordingHandler{}
	// Two replicas: separate clients (connection pools), same prefix. A slow
	// rate so that nothing refills during the test.
	var replicas []*Redis
	for range 2 {
		replicas = append(replicas, NewRedis(newTestClient(t), 0.1, 20, &RedisOptions{
			Prefix: prefix, Fallback: fallback, Logger: slog.New(logs),
		}))
	}

	var allowedN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			d, err := replicas[i%2].Allow(context.Background(), "alice")
			if err != nil {
				t.Errorf("Allow: %v", err)
			}
			if d.Allowed {
				allowedN.Add(1)
			} else if d.RetryAfter <= 0 || d.RetryAfter > 10*time.Second {
				t.Errorf("denied with RetryAfter %v, want in (0, 10s]", d.RetryAfter)
			}
		})
	}
	close(start)
	wg.Wait()
	if got := allowedN.Load(); got != 20 {
		t.Errorf("allowed %d of 50 calls across two replicas, want exactly burst 20", got)
	}
	if n := fallback.calls.Load(); n != 0 {
		t.Errorf("fallback used %d times (logs %v), want 0", n, logs.levels())
	}
}

func TestRedis_RefillsOverRealTime(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	l := NewRedis(admin, 20, 2, &RedisOptions{Prefix: testPrefix(t, admin)}) // one token per 50ms
	ctx := context.Background()
	start := time.Now()
	for i, want := range []bool{true, true, false} {
		d, err := l.Allow(ctx, "alice")
		if err != nil || d.Allowed != want {
			t.Fatalf("call %d: %+v, %v; want Allowed %v", i, d, err, want)
		}
		if !want && (d.RetryAfter <= 0 || d.RetryAfter > 50*time.Millisecond) {
			t.Errorf("call %d: RetryAfter %v, want in (0, 50ms]", i, d.RetryAfter)
		}
	}
	time.Sleep(60 * time.Millisecond)
	if d, err := l.Allow(ctx, "alice"); err != nil || !d.Allowed {
		t.Fatalf("after 60ms: %+v, %v; want one more call allowed", d, err)
	}
	d, err := l.Allow(ctx, "alice")
	if elapsed := time.Since(start); elapsed < 90*time.Millisecond && (err != nil || d.Allowed) {
		t.Errorf("second call after 60ms (%v in): %+v, %v; want denied", elapsed, d, err)
	}
}

func TestRedis_FractionalRate(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	l := NewRedis(admin, 0.5, 1, &RedisOptions{Prefix: testPrefix(t, admin)}) // one call per 2s
	ctx := context.Background()
	if d, err := l.Allow(ctx, "alice"); err != nil || !d.Allowed {
		t.Fatalf("first call: %+v, %v; want allowed", d, err)
	}
	d, err := l.Allow(ctx, "alice")
	if err != nil || d.Allowed || d.RetryAfter <= 1900*time.Millisecond || d.RetryAfter > 2*time.Second {
		t.Errorf("second call: %+v, %v; want denied with RetryAfter in (1.9s, 2s]", d, err)
	}
	if ttl := admin.PTTL(ctx, l.Key("alice")).Val(); ttl <= 1900*time.Millisecond || ttl > 2*time.Second {
		t.Errorf("PTTL = %v, want in (1.9s, 2s]: the key lives until the bucket is full again", ttl)
	}
}

func TestRedis_KeyExpiresWhenBucketIsFullAgain(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	ctx := context.Background()

	slow := NewRedis(admin, 1, 5, &RedisOptions{Prefix: testPrefix(t, admin)})
	for range 3 {
		slow.Allow(ctx, "alice")
	}
	if ttl := admin.PTTL(ctx, slow.Key("alice")).Val(); ttl <= 2500*time.Millisecond || ttl > 3*time.Second {
		t.Errorf("after 3 calls at 1 rps, PTTL = %v, want in (2.5s, 3s]", ttl)
	}
	// Remaining counts down as the bucket empties.
	var got []Decision
	for range 3 {
		d, _ := slow.Allow(ctx, "alice")
		d.RetryAfter = d.RetryAfter.Round(time.Second)
		got = append(got, d)
	}
	want := []Decision{allowed(1), allowed(0), denied(time.Second)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("decisions mismatch (-want +got):\n%s", diff)
	}

	fast := NewRedis(admin, 20, 2, &RedisOptions{Prefix: testPrefix(t, admin)})
	fast.Allow(ctx, "bob")
	if n := admin.Exists(ctx, fast.Key("bob")).Val(); n != 1 {
		t.Fatalf("key missing after a call")
	}
	time.Sleep(100 * time.Millisecond)
	if n := admin.Exists(ctx, fast.Key("bob")).Val(); n != 0 {
		t.Errorf("key still exists 100ms after a call at 20 rps; want it expired once the bucket is full")
	}
}

func TestRedis_AnyUserIDIsSafe(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	prefix := testPrefix(t, admin)
	l := NewRedis(admin, 0.1, 1, &RedisOptions{Prefix: prefix})
	ctx := context.Background()
	ids := []string{
		"alice", "alice bob", "alice\nbob", "alice\r\n*3\r\n", "ünïcødé 用户 🙂", "",
		"*", "a:b", "\x00\xff", strings.Repeat("x", 100_000),
	}
	for _, id := range ids {
		if d, err := l.Allow(ctx, id); err != nil || !d.Allowed {
			t.Errorf("first call for %.20q: %+v, %v; want allowed", id, d, err)
		}
	}
	for _, id := range ids {
		if d, err := l.Allow(ctx, id); err != nil || d.Allowed {
			t.Errorf("second call for %.20q: %+v, %v; want denied (its own bucket is spent)", id, d, err)
		}
	}
	keys := scanKeys(t, admin, prefix)
	if len(keys) != len(ids) {
		t.Errorf("%d keys under the prefix, want one per id (%d)", len(keys), len(ids))
	}
	for _, k := range keys {
		if h := strings.TrimPrefix(k, prefix); len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Errorf("key %q is not prefix + 64 hex digits", k)
		}
	}
	if got, want := l.Key("alice"), prefix+"2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"; got != want {
		t.Errorf("Key(alice) = %q, want %q (prefix + hex SHA-256)", got, want)
	}
}

func TestRedis_DefaultPrefix(t *testing.T) {
	t.Parallel()
	l := NewRedis(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}), 1, 1, nil)
	if got := l.Key("alice"); !strings.HasPrefix(got, "butler:rl:") {
		t.Errorf("Key = %q, want the default prefix butler:rl:", got)
	}
}

func TestRedis_DownFallsBackToMemoryAndLogsOnce(t *testing.T) {
	t.Parallel()
	for _, retry := range []time.Duration{0, -1} { // default 1s; -1: try Redis on every call
		client := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialerRetries: 1})
		t.Cleanup(func() { client.Close() })
		logs := &recordingHandler{}
		l := NewRedis(client, 0.1, 3, &RedisOptions{Logger: slog.New(logs), RetryInterval: retry})
		var got []bool
		for range 20 {
			d, err := l.Allow(context.Background(), "alice")
			if err != nil {
				t.Fatalf("RetryInterval %v: Allow with Redis down: %v; want no error", retry, err)
			}
			got = append(got, d.Allowed)
		}
		want := make([]bool, 20)
		want[0], want[1], want[2] = true, true, true // the fallback's burst
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("RetryInterval %v: Allowed mismatch (-want +got):\n%s", retry, diff)
		}
		if diff := cmp.Diff([]slog.Level{slog.LevelWarn}, logs.levels()); diff != "" {
			t.Errorf("RetryInterval %v: log levels mismatch (-want +got):\n%s", retry, diff)
		}
	}
}

func TestRedis_LogsFailuresAtMostEvery30s(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: closedAddr(t), MaxRetries: -1, DialerRetries: 1})
	t.Cleanup(func() { client.Close() })
	clock := newFakeClock()
	logs := &recordingHandler{}
	l := NewRedis(client, 100, 100, &RedisOptions{Logger: slog.New(logs), Now: clock.Now, RetryInterval: -1})
	for _, advance := range []time.Duration{0, 10 * time.Second, 19 * time.Second, 1 * time.Second, 0} {
		clock.Advance(advance)
		l.Allow(context.Background(), "alice")
	}
	if got := len(logs.levels()); got != 2 {
		t.Fatalf("%d log records for 5 failures over 30s, want 2", got)
	}
	if got := logs.attr(1, "failures_not_logged").Int64(); got != 2 {
		t.Errorf("second record's failures_not_logged = %d, want 2", got)
	}
}

func TestRedis_UsesRedisAgainWhenItAnswers(t *testing.T) {
	t.Parallel()
	admin := newTestClient(t)
	prefix := testPrefix(t, admin)
	var down atomic.Bool
	down.Store(true)
	client := redis.NewClient(&redis.Options{
		Addr: admin.Options().Addr, DB: admin.Options().DB, Username: admin.Options().Username, Password: admin.Options().Password,
		MaxRetries: -1, DialerRetries: 1, PoolSize: 100,
		Dialer: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if down.Load() {
				return nil, errors.New("test: Redis is down")
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	})
	t.Cleanup(func() { client.Close() })
	clock := newFakeClock()
	logs := &recordingHandler{}
	fallback := &countingLimiter{next: NewMemory(1, 10, &MemoryOptions{Now: clock.Now})}
	l := NewRedis(client, 1, 10, &RedisOptions{Prefix: prefix, Fallback: fallback, Logger: slog.New(logs), Now: clock.Now})
	ctx := context.Background()

	allow := func(what string) {
		t.Helper()
		if d, err := l.Allow(ctx, "alice"); err != nil || !d.Allowed {
			t.Fatalf("%s: %+v, %v; want allowed", what, d, err)
		}
	}
	allow("Redis down")
	down.Store(false)
	allow("Redis up, within the retry interval")
	if n := fallback.calls.Load(); n != 2 {
		t.Errorf("fallback called %d times, want 2 (down, then skipping Redis for RetryInterval)", n)
	}
	if n := admin.Exists(ctx, l.Key("alice")).Val(); n != 0 {
		t.Errorf("Redis key exists before the retry interval passed")
	}
	clock.Advance(time.Second)
	allow("Redis up, retry interval passed")
	if n := fallback.calls.Load(); n != 2 {
		t.Errorf("fallback called %d times, want still 2", n)
	}
	if n := admin.Exists(ctx, l.Key("alice")).Val(); n != 1 {
		t.Errorf("Redis key missing: the limiter did not use Redis again")
	}
	if diff := cmp.Diff([]slog.Level{slog.LevelWarn, slog.LevelInfo}, logs.levels()); diff != "" {
		t.Errorf("log levels mismatch (-want +got):\n%s", diff)
	}
}

// hungServer accepts connections and never answers.
func hungServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

func TestRedis_HungServerCostsAtMostTimeout(t *testing.T) {
	t.Parallel()
	client := redis.NewClient(&redis.Options{Addr: hungServer(t), MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	l := NewRedis(client, 1, 1, &RedisOptions{Timeout: 50 * time.Millisecond})
	start := time.Now()
	d, err := l.Allow(context.Background(), "alice")
	if err != nil || !d.Allowed {
		t.Errorf("Allow: %+v, %v; want allowed by the fallback", d, err)
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("Allow took %v with Timeout 50ms", elapsed)
	}
}

func TestRedis_DoneContextIsAnError(t *testing.T) {
	t.Parallel()
	fallback := &countingLimiter{next: NewMemory(1, 1, nil)}
	client := redis.NewClient(&redis.Options{Addr: hungServer(t), MaxRetries: -1, DialerRetries: 1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { client.Close() })
	l := NewRedis(client, 1, 1, &RedisOptions{Fallback: fallback, Timeout: -1})

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Allow(cancelled, "alice"); !errors.Is(err, context.Canceled) {
		t.Errorf("Allow with a cancelled context: err = %v, want context.Canceled", err)
	}
	// The caller's deadline passes while Redis hangs: an error, not the fallback.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := l.Allow(short, "alice"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Allow past the caller's deadline: err = %v, want context.DeadlineExceeded", err)
	}
	if n := fallback.calls.Load(); n != 0 {
		t.Errorf("fallback called %d times, want 0", n)
	}
}
