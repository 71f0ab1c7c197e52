package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a settable clock for MemoryOptions.Now and RedisOptions.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// step is one Allow call after advancing the clock.
type step struct {
	advance time.Duration
	key     string // "" means "alice"
	want    Decision
}

func runSteps(t *testing.T, l Limiter, clock *fakeClock, steps []step) {
	t.Helper()
	ctx := context.Background()
	for i, s := range steps {
		clock.Advance(s.advance)
		key := s.key
		if key == "" {
			key = "alice"
		}
		got, err := l.Allow(ctx, key)
		if err != nil {
			t.Fatalf("step %d: Allow(%q): %v", i, key, err)
		}
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("step %d (+%v, %q): Allow mismatch (-want +got):\n%s", i, s.advance, key, diff)
		}
	}
}

var (
	allowed = func(remaining int) Decision { return Decision{Allowed: true, Remaining: remaining} }
	denied  = func(retry time.Duration) Decision { return Decision{RetryAfter: retry} }
)

func TestMemory_Buckets(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		rps   float64
		burst int
		steps []step
	}{
		{
			name: "burst then refill", rps: 4, burst: 3, // one token per 250ms
			steps: []step{
				{want: allowed(2)},
				{want: allowed(1)},
				{want: allowed(0)},
				{want: denied(250 * time.Millisecond)},
				{advance: 100 * time.Millisecond, want: denied(150 * time.Millisecond)},
				{advance: 150 * time.Millisecond, want: allowed(0)},
				{want: denied(250 * time.Millisecond)},
				{advance: 500 * time.Millisecond, want: allowed(1)},
				{want: allowed(0)},
				{advance: time.Hour, want: allowed(2)}, // refills to burst, not beyond
				{want: allowed(1)},
				{want: allowed(0)},
				{want: denied(250 * time.Millisecond)},
			},
		},
		{
			name: "fractional rate", rps: 0.5, burst: 1, // one call per 2s
			steps: []step{
				{want: allowed(0)},
				{want: denied(2 * time.Second)},
				{advance: 1999 * time.Millisecond, want: denied(time.Millisecond)},
				{advance: time.Millisecond, want: allowed(0)},
				{advance: 1500 * time.Millisecond, want: denied(500 * time.Millisecond)},
				{advance: 10 * time.Second, want: allowed(0)},
			},
		},
		{
			name: "denied calls take nothing", rps: 1, burst: 1,
			steps: []step{
				{want: allowed(0)},
				{advance: 100 * time.Millisecond, want: denied(900 * time.Millisecond)},
				{advance: 100 * time.Millisecond, want: denied(800 * time.Millisecond)},
				{advance: 800 * time.Millisecond, want: allowed(0)},
			},
		},
		{
			name: "keys are independent", rps: 1, burst: 2,
			steps: []step{
				{key: "alice", want: allowed(1)},
				{key: "alice", want: allowed(0)},
				{key: "alice", want: denied(time.Second)},
				{key: "bob", want: allowed(1)},
				{key: "Alice", want: allowed(1)},
				{key: "alice ", want: allowed(1)},
				{key: "bob", want: allowed(0)},
				{key: "bob", want: denied(time.Second)},
				{key: "alice", want: denied(time.Second)},
			},
		},
		{
			name: "high rate", rps: 1000, burst: 1,
			steps: []step{
				{want: allowed(0)},
				{want: denied(time.Millisecond)},
				{advance: time.Millisecond, want: allowed(0)},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			m := NewMemory(tt.rps, tt.burst, &MemoryOptions{Now: clock.Now})
			runSteps(t, m, clock, tt.steps)
		})
	}
}

func TestMemory_EvictionKeepsMemoryBounded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	m := NewMemory(1, 2, &MemoryOptions{Now: clock.Now, MaxKeys: 10})

	// Alice spends her burst, then 10,000 other users arrive at the same
	// instant; memory stays at MaxKeys.
	for range 2 {
		if d, _ := m.Allow(ctx, "alice"); !d.Allowed {
			t.Fatal("alice's first calls were denied")
		}
	}
	for i := range 10_000 {
		if d, err := m.Allow(ctx, fmt.Sprint("user-", i)); err != nil || !d.Allowed {
			t.Fatalf("user-%d's first call: %+v, %v", i, d, err)
		}
		if n := m.Len(); n > 10 {
			t.Fatalf("after %d users, Len() = %d, want at most MaxKeys 10", i+1, n)
		}
	}
	// Alice was evicted (least recently used), forgiving her spent burst.
	if d, _ := m.Allow(ctx, "alice"); !d.Allowed {
		t.Errorf("alice after eviction: %+v, want allowed (a fresh bucket)", d)
	}
}

func TestMemory_EvictsLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	m := NewMemory(1, 1, &MemoryOptions{Now: clock.Now, MaxKeys: 3})
	for _, k := range []string{"a", "b", "c"} {
		m.Allow(ctx, k)
	}
	m.Allow(ctx, "a") // denied, but makes "a" the most recently used
	m.Allow(ctx, "d") // evicts "b"
	// "b" last: its fresh bucket evicts another.
	for _, tt := range []struct {
		key  string
		want bool
	}{{"a", false}, {"c", false}, {"d", false}, {"b", true}} {
		if d, _ := m.Allow(ctx, tt.key); d.Allowed != tt.want {
			t.Errorf("Allow(%q).Allowed = %v, want %v", tt.key, d.Allowed, tt.want)
		}
	}
}

func TestMemory_FullBucketsAreDropped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := newFakeClock()
	m := NewMemory(10, 5, &MemoryOptions{Now: clock.Now})
	for i := range 100 {
		m.Allow(ctx, fmt.Sprint("user-", i))
	}
	if n := m.Len(); n != 100 {
		t.Fatalf("Len() = %d, want 100", n)
	}
	// 100ms later every bucket is full again; ongoing traffic from one user
	// sweeps the idle ones away a few per call.
	clock.Advance(100 * time.Millisecond)
	for range 100 / sweepPerCall {
		clock.Advance(100 * time.Millisecond)
		m.Allow(ctx, "active")
	}
	if n := m.Len(); n != 1 {
		t.Errorf("Len() = %d, want 1 (only the active user's bucket)", n)
	}
	// A call leaving its bucket full stores nothing.
	m2 := NewMemory(1e9, 1, &MemoryOptions{Now: clock.Now})
	clock.Advance(time.Second)
	m2.Allow(ctx, "x")
	clock.Advance(time.Second)
	m2.Allow(ctx, "y")
	if n := m2.Len(); n != 1 {
		t.Errorf("Len() = %d, want 1", n)
	}
}

func TestMemory_ConcurrentCallsAllowExactlyBurst(t *testing.T) {
	t.Parallel()
	clock := newFakeClock() // frozen: no refill during the test
	m := NewMemory(10, 20, &MemoryOptions{Now: clock.Now})
	var allowedN, errN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 1000 {
		wg.Go(func() {
			<-start
			d, err := m.Allow(context.Background(), "alice")
			if err != nil {
				errN.Add(1)
			}
			if d.Allowed {
				allowedN.Add(1)
			}
			// Other users' calls in parallel must not disturb alice's count.
			m.Allow(context.Background(), fmt.Sprint("other-", i%50))
		})
	}
	close(start)
	wg.Wait()
	if got := allowedN.Load(); got != 20 || errN.Load() != 0 {
		t.Errorf("allowed %d of 1000 concurrent calls (%d errors), want exactly burst 20 and no errors", got, errN.Load())
	}
}

func TestMemory_DoneContextTakesNothing(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	m := NewMemory(1, 1, &MemoryOptions{Now: clock.Now})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Allow(ctx, "alice"); !errors.Is(err, context.Canceled) {
		t.Fatalf("Allow with a cancelled context: err = %v, want context.Canceled", err)
	}
	if d, _ := m.Allow(context.Background(), "alice"); !d.Allowed {
		t.Errorf("after a cancelled call: %+v, want allowed (the cancelled call took no token)", d)
	}
}

func TestMemory_RealClock(t *testing.T) {
	t.Parallel()
	m := NewMemory(50, 1, nil) // one token per 20ms
	ctx := context.Background()
	if d, _ := m.Allow(ctx, "alice"); !d.Allowed {
		t.Fatal("first call denied")
	}
	d, _ := m.Allow(ctx, "alice")
	if d.Allowed || d.RetryAfter <= 0 || d.RetryAfter > 20*time.Millisecond {
		t.Fatalf("second call: %+v, want denied with 0 < RetryAfter <= 20ms", d)
	}
	time.Sleep(d.RetryAfter)
	if d, _ := m.Allow(ctx, "alice"); !d.Allowed {
		t.Errorf("after sleeping RetryAfter: %+v, want allowed", d)
	}
}

func TestNew_RejectsBadParameters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rps   float64
		burst int
	}{
		{0, 1}, {-1, 1}, {nan(), 1}, {inf(), 1}, {1, 0}, {1, -5}, {1e-12, 1000},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("rps=%v,burst=%d", tt.rps, tt.burst), func(t *testing.T) {
			t.Parallel()
			if err := checkParams(tt.rps, tt.burst); err == nil {
				t.Error("checkParams: no error")
			}
			if _, _, err := Open(context.Background(), tt.rps, tt.burst, "", nil); err == nil {
				t.Error("Open: no error")
			}
			defer func() {
				if recover() == nil {
					t.Error("NewMemory did not panic")
				}
			}()
			NewMemory(tt.rps, tt.burst, nil)
		})
	}
}

func TestDecision_RetryAfterSeconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		d    Decision
		want int
	}{
		{Decision{Allowed: true, Remaining: 3}, 0},
		{Decision{RetryAfter: time.Microsecond}, 1},
		{Decision{RetryAfter: time.Second}, 1},
		{Decision{RetryAfter: time.Second + time.Nanosecond}, 2},
		{Decision{RetryAfter: 2500 * time.Millisecond}, 3},
		{Decision{}, 1},
	}
	for _, tt := range tests {
		if got := tt.d.RetryAfterSeconds(); got != tt.want {
			t.Errorf("%+v.RetryAfterSeconds() = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }
