package authn

import (
	"fmt"
	"log/slog"
	"testing"
)

// BenchmarkVerify compares a token seen for the first time (parse, key
// lookup, signature check, claims, cache insertion) with a token already
// verified (SHA-256 of the token and a cache lookup).
func BenchmarkVerify(b *testing.B) {
	for _, k := range []testKey{rsaKey(), ecKey()} {
		b.Run(string(k.alg), func(b *testing.B) {
			// A pool larger than the cache, cycled, so every Verify misses.
			const pool, cacheSize = 256, 64
			f := readyFixture(b, []testKey{k}, func(o *Options) {
				o.TokenCacheSize = cacheSize
				o.Logger = slog.New(slog.DiscardHandler)
			})
			tokens := make([]string, pool)
			for i := range tokens {
				c := f.idp.claims(f.clock)
				c["jti"] = fmt.Sprint(i)
				c["groups"] = []string{"dev", "ops"}
				tokens[i] = sign(b, k, c)
			}
			next := 0 // kept across runs (-count), so the cycle never meets a cached token
			b.Run("first_seen", func(b *testing.B) {
				b.ReportAllocs()
				before := f.v.signatureChecks.Load()
				n := 0
				for b.Loop() {
					if _, err := f.v.Verify(b.Context(), tokens[next%pool]); err != nil {
						b.Fatal(err)
					}
					next++
					n++
				}
				if checks := f.v.signatureChecks.Load() - before; checks != int64(n) {
					b.Fatalf("%d signature checks for %d first-seen tokens", checks, n)
				}
			})
			b.Run("cached", func(b *testing.B) {
				b.ReportAllocs()
				if _, err := f.v.Verify(b.Context(), tokens[0]); err != nil {
					b.Fatal(err)
				}
				before := f.v.signatureChecks.Load()
				for b.Loop() {
					if _, err := f.v.Verify(b.Context(), tokens[0]); err != nil {
						b.Fatal(err)
					}
				}
				if checks := f.v.signatureChecks.Load() - before; checks != 0 {
					b.Fatalf("%d signature checks for a cached token", checks)
				}
			})
		})
	}
}
