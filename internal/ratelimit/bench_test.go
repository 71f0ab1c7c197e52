package ratelimit

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
)

// BenchmarkAllow measures one Allow call: for one user, and in parallel for
// many users (the server's situation). The Redis cases need
// BUTLER_TEST_REDIS_URL.
func BenchmarkAllow(b *testing.B) {
	ctx := context.Background()
	run := func(b *testing.B, l Limiter) {
		b.Run("one-key", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				l.Allow(ctx, "alice")
			}
		})
		b.Run("parallel-1000-keys", func(b *testing.B) {
			b.ReportAllocs()
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					l.Allow(ctx, "user-"+strconv.Itoa(int(next.Add(1)%1000)))
				}
			})
		})
	}
	b.Run("memory", func(b *testing.B) {
		run(b, NewMemory(10, 20, nil))
	})
	b.Run("redis", func(b *testing.B) {
		admin := newTestClient(b)
		run(b, NewRedis(admin, 10, 20, &RedisOptions{Prefix: testPrefix(b, admin)}))
	})
}
