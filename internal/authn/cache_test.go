package authn

import (
	"fmt"
	"testing"
	"time"
)

func TestVerifiedCache_SecondVerifyDoesNoSignatureWork(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	hits := f.idp.jwksHits.Load()
	tok := sign(t, rsaKey(), f.idp.claims(f.clock))
	for range 3 {
		if _, err := f.v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.signatureChecks.Load(); n != 1 {
		t.Errorf("%d signature checks for one token verified 3 times, want 1", n)
	}
	if f.idp.jwksHits.Load() != hits {
		t.Error("verifying a cached token fetched the key set")
	}
	if _, ok := f.v.verified.byKey[keyOf(tok)]; !ok {
		t.Error("the cache is not keyed by the token's SHA-256")
	}
}

func TestVerifiedCache_IsBounded(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.TokenCacheSize = 3 })
	var tokens []string
	for i := range 5 {
		c := f.idp.claims(f.clock)
		c["jti"] = fmt.Sprint(i)
		tokens = append(tokens, sign(t, ecKey(), c))
	}
	for _, tok := range tokens {
		if _, err := f.v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.v.verified.len(); n != 3 {
		t.Errorf("the cache holds %d entries, want its bound 3", n)
	}
	// The least recently used went first.
	before := f.v.signatureChecks.Load()
	_, _ = f.v.Verify(t.Context(), tokens[4])
	_, _ = f.v.Verify(t.Context(), tokens[0])
	if got := f.v.signatureChecks.Load() - before; got != 1 {
		t.Errorf("%d signature checks, want 1 (the evicted oldest token only)", got)
	}
}

func TestVerifiedCache_NotUsedAfterExp(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	c := f.idp.claims(f.clock)
	c["exp"] = f.clock.Now().Add(time.Minute).Unix()
	tok := sign(t, ecKey(), c)
	for _, step := range []time.Duration{0, 59 * time.Second, time.Second} {
		f.clock.Advance(step)
		if _, err := f.v.Verify(t.Context(), tok); err != nil { // at exp, still valid by the skew
			t.Fatal(err)
		}
	}
	if n := f.v.signatureChecks.Load(); n != 2 {
		t.Errorf("%d signature checks, want 2: the cached entry must not be used at exp", n)
	}
	f.clock.Advance(DefaultClockSkew)
	_, err := f.v.Verify(t.Context(), tok)
	wantReason(t, err, ReasonExp, ErrInvalidToken)
}

func TestVerify_ReturnsACopy(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	c := f.idp.claims(f.clock)
	c["groups"] = []string{"dev"}
	tok := sign(t, ecKey(), c)
	id, err := f.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	id.Groups[0], id.User = "admin", "root"
	again, err := f.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if again.Groups[0] != "dev" || again.User != "alice" {
		t.Errorf("changing a returned identity changed the cached one: %+v", again)
	}
}

func TestLRU(t *testing.T) {
	t.Parallel()
	c := newLRU[int](2)
	now := time.Unix(1000, 0)
	k := func(s string) tokenKey { return keyOf(s) }
	c.put(k("a"), 1, now.Add(time.Minute))
	c.put(k("b"), 2, now.Add(time.Minute))
	if _, ok := c.get(k("a"), now); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put(k("c"), 3, now.Add(time.Minute))
	if _, ok := c.get(k("b"), now); ok {
		t.Error("b survived eviction though least recently used")
	}
	if v, ok := c.get(k("a"), now); !ok || v != 1 {
		t.Errorf("a = %v, %v", v, ok)
	}
	if _, ok := c.get(k("c"), now.Add(time.Minute)); ok {
		t.Error("c used at its deadline")
	}
	if c.len() != 1 {
		t.Errorf("len %d after the expired entry was seen, want 1", c.len())
	}
	c.put(k("d"), 4, now.Add(time.Hour))
	if n := c.removeFunc(func(v int) bool { return v == 4 }); n != 1 || c.len() != 1 {
		t.Errorf("removeFunc removed %d, len %d", n, c.len())
	}
}
