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
	c := newLRU[int](2, 0)
	now := time.Unix(1000, 0)
	k := func(s string) tokenKey { return keyOf(s) }
	c.put(k("a"), 1, now, now.Add(time.Minute))
	c.put(k("b"), 2, now, now.Add(time.Minute))
	if _, ok := c.get(k("a"), now); !ok { // a is now the most recent
		t.Fatal("a missing")
	}
	c.put(k("c"), 3, now, now.Add(time.Minute))
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
	c.put(k("d"), 4, now, now.Add(time.Hour))
	if n := c.removeFunc(func(v int) bool { return v == 4 }); n != 1 || c.len() != 1 {
		t.Errorf("removeFunc removed %d, len %d", n, c.len())
	}
}

// With a minimum age, a full cache evicts only entries that old (or dead):
// the least recently used if it may go, else the oldest; else the new
// entry is not stored.
func TestLRU_MinAge(t *testing.T) {
	t.Parallel()
	k := func(s string) tokenKey { return keyOf(s) }
	t0 := time.Unix(1000, 0)
	c := newLRU[int](2, 10*time.Second)
	c.put(k("a"), 1, t0, t0.Add(time.Hour))
	c.put(k("b"), 2, t0.Add(5*time.Second), t0.Add(time.Hour))
	at := t0.Add(9 * time.Second)
	if c.put(k("x"), 9, at, at.Add(time.Hour)) {
		t.Error("an entry was stored though every entry is younger than 10 s")
	}
	for _, name := range []string{"b", "a"} { // a is now the most recently used
		if _, ok := c.get(k(name), at); !ok {
			t.Errorf("%s was evicted while younger than 10 s", name)
		}
	}
	if _, ok := c.get(k("x"), at); ok {
		t.Error("x is cached")
	}
	// a is 10 s old but used more recently than b, which is young: the
	// oldest goes.
	at = t0.Add(10 * time.Second)
	if !c.put(k("c"), 3, at, at.Add(time.Hour)) {
		t.Fatal("c not stored though a is 10 s old")
	}
	if _, ok := c.get(k("a"), at); ok {
		t.Error("a, the oldest entry and 10 s old, was not the one evicted")
	}
	// b (least recently used, 10 s old) goes before c (young).
	at = t0.Add(15 * time.Second)
	if !c.put(k("d"), 4, at, at.Add(time.Hour)) {
		t.Fatal("d not stored though b is 10 s old")
	}
	if _, ok := c.get(k("b"), at); ok {
		t.Error("b, least recently used and 10 s old, survived")
	}
	// An entry past its deadline may go however young.
	e := newLRU[int](1, 10*time.Second)
	e.put(k("short"), 1, t0, t0.Add(time.Second))
	if !e.put(k("next"), 2, t0.Add(time.Second), t0.Add(time.Hour)) {
		t.Error("a dead entry kept a new one out")
	}
	// Storing a key again renews its age.
	r := newLRU[int](1, 10*time.Second)
	r.put(k("a"), 1, t0, t0.Add(time.Hour))
	r.put(k("a"), 2, t0.Add(9*time.Second), t0.Add(time.Hour))
	if r.put(k("b"), 3, t0.Add(10*time.Second), t0.Add(time.Hour)) {
		t.Error("a, stored again 1 s ago, was evicted")
	}
	if c.len() != 2 || e.len() != 1 || r.len() != 1 {
		t.Errorf("lengths %d %d %d", c.len(), e.len(), r.len())
	}
}
