// Package ratelimit limits how often each user may call Butler's tools
// (config keys limits.per_user_rps, limits.burst and limits.redis_url).
// A spent limit becomes the rate_limited tool error (status 429) with
// retry_after_seconds from [Decision.RetryAfterSeconds].
//
// # Algorithm
//
// Both limiters are token buckets implemented as GCRA, the generic cell rate
// algorithm (ITU-T I.371). Instead of a token count and a refill timer, a
// bucket is one timestamp, its theoretical arrival time (TAT): the time at
// which the bucket would be full again. With the emission interval
// T = 1/rps and the tolerance τ = burst·T, a call at time now
//
//	tat     = max(TAT, now)
//	allowAt = tat + T - τ
//	now < allowAt  → denied, retry after allowAt - now (TAT unchanged)
//	otherwise      → allowed, TAT = tat + T, remaining = ⌊(now - allowAt)/T⌋
//
// A bucket whose TAT lies in the past is full and carries no information, so
// it can be forgotten: [Memory] drops such buckets and, past
// [MemoryOptions.MaxKeys], the least recently used ones; [Redis] stores each
// TAT with an expiry at the TAT itself. Rates may be fractional (0.5 rps is one
// call every two seconds).
//
// # Redis
//
// [Redis] shares one budget per user across all replicas. The whole decision
// is one Lua script (EVALSHA, falling back to EVAL when the server's script
// cache lacks it), so concurrent calls on different replicas are serialised by
// Redis itself, and it reads the clock with Redis's TIME command, so replicas
// with skewed clocks still agree. Times in the script are whole microseconds,
// exact in Lua's doubles; the emission interval is rounded to the
// microsecond.
//
// Key scheme: a user's bucket is stored at Prefix + the lowercase hex SHA-256
// of the user id (default prefix "butler:rl:"). User ids come from tokens and
// may hold any byte (spaces, newlines, ':' or '*', unicode, megabytes); the
// digest gives every id a fixed-size, glob-safe key that no other id maps to,
// and keeps ids out of plain sight in Redis. It is not anonymisation: a
// known id is easily hashed. To reset alice's limit by hand:
//
//	redis-cli DEL "butler:rl:$(printf %s alice | sha256sum | cut -d' ' -f1)"
//
// # When Redis is down
//
// The limiter protects Jenkins and Butler from runaway agents; it must not
// itself become an outage. So when Redis fails (connection refused, timeout,
// any error reply) [Redis.Allow] returns no error: it decides with a
// per-replica in-memory limiter instead ([RedisOptions.Fallback]), so every
// replica still limits each user (to rps and burst per replica, N times the
// shared budget with N replicas) and nobody is locked out. The failure is
// logged at most once per 30 seconds (with the number of failures not
// logged), Redis is skipped for [RedisOptions.RetryInterval] after a failure
// so a hung server costs one slow call rather than one per request, and the
// first call that reaches Redis again switches back to the shared budget (and
// logs that it did). Only a cancelled or expired caller context makes Allow
// return an error.
package ratelimit
