package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
)

// Decision is the outcome of one [Limiter.Allow] call.
type Decision struct {
	// Allowed reports whether the call may proceed; a token was taken.
	Allowed bool
	// RetryAfter is, when the call was not allowed, how long until one call
	// would be allowed (> 0). It is 0 for an allowed call.
	RetryAfter time.Duration
	// Remaining is how many more calls the key could make right now (best
	// effort: other calls may take them first).
	Remaining int
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, at least 1 for
// a denied call, as the rate_limited tool error's retry_after_seconds and an
// HTTP Retry-After header want it (waiting less would be denied again). It is
// 0 for an allowed call.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(1, int((d.RetryAfter+time.Second-1)/time.Second))
}

// Limiter decides whether a user may make one more call.
type Limiter interface {
	// Allow takes one token from key's bucket (key is the user id) if one is
	// left. It returns an error only when ctx is done; callers should then
	// abandon the request rather than treat it as allowed.
	Allow(ctx context.Context, key string) (Decision, error)
}

var (
	_ Limiter = (*Memory)(nil)
	_ Limiter = (*Redis)(nil)
)

// maxTolerance bounds burst/rps so that timestamps plus the tolerance fit an
// int64 of nanoseconds and, in microseconds, a Lua double exactly.
const maxTolerance = 100 * 365 * 24 * time.Hour

// checkParams reports whether rps and burst describe a usable bucket.
func checkParams(rps float64, burst int) error {
	switch {
	case !(rps > 0) || math.IsInf(rps, 0):
		return fmt.Errorf("ratelimit: rate %v per second is out of range; want a finite number above 0", rps)
	case burst < 1:
		return fmt.Errorf("ratelimit: burst %d is out of range; want at least 1", burst)
	case float64(burst)/rps > maxTolerance.Seconds():
		return fmt.Errorf("ratelimit: burst %d at %v per second takes over 100 years to refill", burst, rps)
	}
	return nil
}

// interval is the emission interval 1/rps in units of unit, rounded, at
// least 1.
func interval(rps float64, unit time.Duration) int64 {
	return max(1, int64(math.Round(float64(time.Second/unit)/rps)))
}

// gcra applies one call at now to a bucket whose theoretical arrival time is
// tat, all in the same unit (see the package doc). It returns the decision and
// the bucket's new TAT. The Lua script in redis.go is the same algorithm.
func gcra(now, tat, interval, tolerance int64, unit time.Duration) (Decision, int64) {
	tat = max(tat, now)
	allowAt := tat + interval - tolerance
	if now < allowAt {
		return Decision{RetryAfter: time.Duration(allowAt-now) * unit}, tat
	}
	return Decision{Allowed: true, Remaining: int((now - allowAt) / interval)}, tat + interval
}

// Open builds the limiter that limits.* in the configuration asks for: a
// [Memory] limiter when redisURL is "", else a [Redis] limiter on a client
// for redisURL (redis:// or rediss://, parsed by [redis.ParseURL]) with a
// [Memory] fallback. Redis is pinged once; if it does not answer, that is
// logged and the limiter starts on its fallback, since Redis may come up
// later. The returned func closes the Redis client (it is a no-op for
// memory).
//
// Unless the URL says otherwise, the client does not retry failed commands
// (a retried script could take two tokens, and the fallback answers at
// once) and dials for at most 1 s; it always dials once per attempt (not
// go-redis's 5 times) and honours context deadlines, so
// [RedisOptions.Timeout] bounds every call.
func Open(ctx context.Context, rps float64, burst int, redisURL string, logger *slog.Logger) (Limiter, func() error, error) {
	if err := checkParams(rps, burst); err != nil {
		return nil, nil, err
	}
	if redisURL == "" {
		return NewMemory(rps, burst, nil), func() error { return nil }, nil
	}
	opts, err := redis.ParseURL(redisURL)
	if err != nil {
		// A *url.Error quotes the whole URL, password included.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, nil, fmt.Errorf("ratelimit: redis_url: %w", err)
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = time.Second
	}
	opts.DialerRetries = 1
	opts.ContextTimeoutEnabled = true
	client := redis.NewClient(opts)

	r := NewRedis(client, rps, burst, &RedisOptions{Logger: logger})
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		if ctx.Err() != nil {
			_ = client.Close()
			return nil, nil, fmt.Errorf("ratelimit: ping redis at %s: %w", opts.Addr, ctx.Err())
		}
		r.noteFailure(ctx, r.now(), fmt.Errorf("ping redis at %s: %w", opts.Addr, err))
	}
	return r, client.Close, nil
}
