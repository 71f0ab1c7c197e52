package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultPrefix is the [RedisOptions.Prefix] used when none is given.
const DefaultPrefix = "butler:rl:"

// logInterval is the least time between two logs of Redis failures.
const logInterval = 30 * time.Second

// gcraScript is GCRA (see the package doc and gcra) as one atomic step.
// KEYS[1] is the bucket; ARGV[1] the emission interval and ARGV[2] the burst.
// Times are integer microseconds: epoch microseconds need about 51 bits, so
// Lua's doubles hold them exactly, and string.format('%.0f') writes them
// exactly (tostring would keep only 14 digits). It returns
// {allowed (0|1), retry after in µs, remaining}.
//
// redis.replicate_commands makes Redis before 5 replicate the SET rather than
// the script, which reads TIME and so is not deterministic; later versions do
// that anyway.
const gcraScript = `
if redis.replicate_commands then redis.replicate_commands() end
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now) or now
if tat < now then tat = now end
local allow_at = tat + interval - burst * interval
if now < allow_at then
  return {0, allow_at - now, 0}
end
tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', string.format('%.0f', math.ceil((tat - now) / 1000)))
return {1, 0, math.floor((now - allow_at) / interval)}
`

// RedisOptions tunes [NewRedis]. A nil *RedisOptions means all defaults.
type RedisOptions struct {
	// Prefix starts every key [DefaultPrefix]; see the package doc for the
	// key scheme.
	Prefix string
	// Fallback decides while Redis fails [a Memory limiter with the same rate
	// and burst and clock]. See the package doc.
	Fallback Limiter
	// Logger receives Redis failures (at most one per 30 s) and recoveries
	// [discarded].
	Logger *slog.Logger
	// Now is the clock for the retry interval and log throttling [time.Now];
	// the buckets themselves use Redis's clock.
	Now func() time.Time
	// Timeout bounds each Redis round trip [500ms]; when it expires the call
	// is decided by Fallback. Negative means no bound beyond ctx's. It takes
	// effect only if the client honours context deadlines
	// (redis.Options.ContextTimeoutEnabled, which [Open] sets).
	Timeout time.Duration
	// RetryInterval is how long Redis is skipped, deciding with Fallback,
	// after it failed [1s]. Negative means try Redis on every call.
	RetryInterval time.Duration
}

// Redis is a [Limiter] whose buckets live in Redis, so that all replicas
// share each user's budget. It is safe for concurrent use. When Redis fails
// it decides with its fallback instead of failing; see the package doc.
type Redis struct {
	client        redis.UniversalClient
	script        *redis.Script
	prefix        string
	interval      int64 // µs per token
	burst         int
	fallback      Limiter
	logger        *slog.Logger
	now           func() time.Time
	timeout       time.Duration
	retryInterval time.Duration

	// retryAt is 0 while Redis works; after a failure it is the Unix time in
	// ns before which Redis is skipped.
	retryAt atomic.Int64

	mu         sync.Mutex // guards the logging state below
	lastLog    time.Time  // of a failure
	suppressed int        // failures not logged since lastLog
	announced  bool       // a failure was logged and no recovery since
}

// NewRedis returns a limiter allowing each key rps calls per second on
// average (fractions allowed) and burst calls at once, counted in Redis
// through client across every replica that uses the same Prefix. The caller
// owns client. It panics if rps is not a finite number above 0 or burst is
// below 1 (config validation and [Open] reject those first).
func NewRedis(client redis.UniversalClient, rps float64, burst int, opts *RedisOptions) *Redis {
	if err := checkParams(rps, burst); err != nil {
		panic(err)
	}
	var o RedisOptions
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Fallback == nil {
		o.Fallback = NewMemory(rps, burst, &MemoryOptions{Now: o.Now})
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 500 * time.Millisecond
	}
	if o.RetryInterval == 0 {
		o.RetryInterval = time.Second
	}
	return &Redis{
		client:        client,
		script:        redis.NewScript(gcraScript),
		prefix:        o.Prefix,
		interval:      interval(rps, time.Microsecond),
		burst:         burst,
		fallback:      o.Fallback,
		logger:        o.Logger,
		now:           o.Now,
		timeout:       o.Timeout,
		retryInterval: o.RetryInterval,
	}
}

// Key is the Redis key holding userID's bucket: Prefix + hex(SHA-256(userID)).
func (r *Redis) Key(userID string) string {
	sum := sha256.Sum256([]byte(userID))
	return r.prefix + hex.EncodeToString(sum[:])
}

// Allow takes one token from key's bucket in Redis if one is left. If Redis
// fails, the fallback decides and no error is returned; only a done ctx
// gives an error.
func (r *Redis) Allow(ctx context.Context, key string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	now := r.now()
	if at := r.retryAt.Load(); at != 0 && now.UnixNano() < at {
		return r.fallbackAllow(ctx, key)
	}
	d, err := r.allowRedis(ctx, key)
	if err == nil {
		if r.retryAt.Load() != 0 && r.retryAt.Swap(0) != 0 {
			r.noteRecovery(ctx)
		}
		return d, nil
	}
	if err := callerDone(ctx); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: redis: %w", err)
	}
	r.noteFailure(ctx, now, err)
	return r.fallbackAllow(ctx, key)
}

// callerDone is ctx.Err(), or context.DeadlineExceeded once ctx's deadline
// has passed: a socket deadline set from ctx's can fire a moment before ctx
// itself reports it, and that failure is the caller's, not Redis's.
func callerDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func (r *Redis) allowRedis(ctx context.Context, key string) (Decision, error) {
	if r.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.timeout)
		defer cancel()
	}
	res, err := r.script.Run(ctx, r.client, []string{r.Key(key)}, r.interval, r.burst).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("redis: run GCRA script: %w", err)
	}
	if len(res) != 3 {
		return Decision{}, fmt.Errorf("redis: GCRA script returned %d values, want 3", len(res))
	}
	return Decision{
		Allowed:    res[0] == 1,
		RetryAfter: time.Duration(res[1]) * time.Microsecond,
		Remaining:  int(res[2]),
	}, nil
}

func (r *Redis) fallbackAllow(ctx context.Context, key string) (Decision, error) {
	d, err := r.fallback.Allow(ctx, key)
	if err != nil {
		return Decision{}, fmt.Errorf("ratelimit: fallback: %w", err)
	}
	return d, nil
}

// noteFailure starts (or extends) the retry interval and logs err unless a
// failure was logged less than logInterval ago.
func (r *Redis) noteFailure(ctx context.Context, now time.Time, err error) {
	r.retryAt.Store(max(1, now.Add(max(r.retryInterval, 0)).UnixNano()))

	r.mu.Lock()
	if !r.lastLog.IsZero() && now.Sub(r.lastLog) < logInterval {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.lastLog, r.suppressed, r.announced = now, 0, true
	r.mu.Unlock()

	r.logger.WarnContext(ctx, "ratelimit: Redis failed; limiting each user per replica in memory until it answers again",
		"err", err, "failures_not_logged", suppressed, "log_interval", logInterval)
}

// noteRecovery logs that Redis answers again, if its failure was logged.
func (r *Redis) noteRecovery(ctx context.Context) {
	r.mu.Lock()
	announced := r.announced
	r.announced = false
	r.mu.Unlock()
	if announced {
		r.logger.InfoContext(ctx, "ratelimit: Redis answers again; limits are shared across replicas again")
	}
}
