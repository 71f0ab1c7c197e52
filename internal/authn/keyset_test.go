package authn

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

// TestRotation follows go-oidc's: a key server on httptest, a fake clock, a
// new key picked up with one fetch, and cached keys still verifying after
// the key server is gone.
func TestRotation(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	ctx := t.Context()
	tokenN := 0
	token := func(k testKey) string {
		tokenN++
		c := f.idp.claims(f.clock)
		c["jti"] = fmt.Sprint(tokenN) // a new token each time: no help from the verified-token cache
		return sign(t, k, c)
	}
	hits := f.idp.jwksHits.Load()

	if _, err := f.v.Verify(ctx, token(rsaKey())); err != nil {
		t.Fatalf("the current key: %v", err)
	}
	if got := f.idp.jwksHits.Load(); got != hits {
		t.Fatalf("a known kid caused %d fetches", got-hits)
	}

	// The issuer adds a key and starts signing with it.
	f.idp.publish(rsaKey(), ecKey())
	if _, err := f.v.Verify(ctx, token(ecKey())); err != nil {
		t.Fatalf("the new key: %v", err)
	}
	if got := f.idp.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("the new kid caused %d fetches, want 1", got)
	}

	// The key server goes away; a refresh fails; cached keys keep working.
	f.idp.srv.Close()
	f.clock.Advance(DefaultJWKSMinRefresh)
	if err := f.v.refresh(ctx); err == nil {
		t.Fatal("refresh succeeded with the key server closed")
	}
	for _, k := range []testKey{rsaKey(), ecKey()} {
		if _, err := f.v.Verify(ctx, token(k)); err != nil {
			t.Errorf("cached key %s with the key server down: %v", k.kid, err)
		}
	}
	if err := f.v.Ready(ctx); err != nil {
		t.Errorf("Ready with cached keys and the key server down: %v", err)
	}
	// A kid it has never seen cannot be checked now: unavailable, not invalid.
	_, err := f.v.Verify(ctx, token(rsaKey2()))
	wantReason(t, err, ReasonUnavailable, ErrUnavailable)
}

func TestKeySet_FloodOfUnknownKIDsFetchesOncePerInterval(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	hits := f.idp.jwksHits.Load()
	flood := func() {
		for range 100 {
			tok := sign(t, ecKey().withKID(rand.Text()), f.idp.claims(f.clock))
			_, err := f.v.Verify(t.Context(), tok)
			wantReason(t, err, ReasonUnknownKID, ErrInvalidToken)
		}
	}
	flood()
	if got := f.idp.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("100 random kids caused %d fetches, want 1", got)
	}
	f.clock.Advance(DefaultJWKSMinRefresh - time.Second)
	flood()
	if got := f.idp.jwksHits.Load() - hits; got != 1 {
		t.Fatalf("within the interval: %d fetches, want still 1", got)
	}
	f.clock.Advance(time.Second)
	flood()
	if got := f.idp.jwksHits.Load() - hits; got != 2 {
		t.Fatalf("after the interval: %d fetches, want 2", got)
	}
}

// Verify calls that meet an unknown kid while its fetch is under way wait
// for that fetch and share its result: one fetch, every call verified.
func TestKeySet_ConcurrentUnknownKIDsShareOneFetch(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	hits := f.idp.jwksHits.Load()
	gate := make(chan struct{})
	f.idp.set(func(p *testIdP) { p.jwksGate = gate })
	f.idp.publish(rsaKey(), ecKey())

	const n = 20
	tokens := make([]string, n)
	for i := range tokens {
		c := f.idp.claims(f.clock)
		c["jti"] = fmt.Sprint(i)
		tokens[i] = sign(t, ecKey(), c)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { _, errs[i] = f.v.Verify(t.Context(), tokens[i]) })
	}
	eventually(t, "the key set fetch", func() bool { return f.idp.jwksHits.Load() == hits+1 })
	time.Sleep(20 * time.Millisecond) // let the other calls join the fetch under way
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	if got := f.idp.jwksHits.Load() - hits; got != 1 {
		t.Errorf("%d concurrent calls caused %d fetches, want 1", n, got)
	}
}

func TestKeySet_BackgroundRefresh(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	hits := f.idp.jwksHits.Load()
	eventually(t, "the refresh loop to sleep", func() bool { return f.clock.waiting() == 1 })
	f.clock.Advance(DefaultJWKSRefreshInterval - time.Second)
	time.Sleep(10 * time.Millisecond)
	if got := f.idp.jwksHits.Load(); got != hits {
		t.Fatalf("refreshed %d times before the interval", got-hits)
	}
	f.clock.Advance(time.Second)
	eventually(t, "the background refresh", func() bool { return f.idp.jwksHits.Load() == hits+1 })
}

func TestReady_RetriesInTheBackgroundUntilTheIdPAnswers(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t, "/realms/eng", ecKey())
	idp.set(func(p *testIdP) { p.jwksStatus = http.StatusServiceUnavailable })
	f := newFixture(t, idp)
	eventually(t, "the first attempt", func() bool { return idp.jwksHits.Load() == 1 && f.clock.waiting() == 1 })
	err := f.v.Ready(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "jwks not fetched yet: ") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Ready = %v, want jwks not fetched yet: ... 503", err)
	}
	_, err = f.v.Verify(t.Context(), sign(t, ecKey(), idp.claims(f.clock)))
	wantReason(t, err, ReasonUnavailable, ErrUnavailable)

	idp.set(func(p *testIdP) { p.jwksStatus = 0 })
	f.clock.Advance(minRetry)
	f.waitReady(t)
	if _, err := f.v.Verify(t.Context(), sign(t, ecKey(), idp.claims(f.clock))); err != nil {
		t.Fatal(err)
	}
}

func TestReady_NoMetadata(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t, "/realms/eng", ecKey())
	idp.set(func(p *testIdP) { p.metadataAt = nil })
	f := newFixture(t, idp)
	eventually(t, "the first attempt", func() bool { return f.clock.waiting() == 1 })
	err := f.v.Ready(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "issuer metadata not fetched yet: ") || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Ready = %v, want issuer metadata not fetched yet: ... 404", err)
	}
}

func TestParseKeySet(t *testing.T) {
	t.Parallel()
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	jwk := func(k testKey, mod func(*jose.JSONWebKey)) json.RawMessage {
		j := k.jwk()
		if mod != nil {
			mod(&j)
		}
		b, err := j.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set := func(keys ...json.RawMessage) []byte {
		b, _ := json.Marshal(map[string]any{"keys": keys})
		return b
	}
	allowed := map[string]bool{"RS256": true, "ES256": true}
	log := slog.New(slog.DiscardHandler)
	kids := func(s *keySnapshot) []string {
		var out []string
		for kid := range s.byKID {
			out = append(out, kid)
		}
		slices.Sort(out)
		if len(s.anon) > 0 {
			out = append(out, "")
		}
		return out
	}
	tests := []struct {
		name string
		body []byte
		want []string // usable kids; "" for the key without kid
		err  bool
	}{
		{"usable keys", set(jwk(rsaKey(), nil), jwk(ecKey(), nil)), []string{"ec1", "rsa1"}, false},
		{"an encryption key is skipped", set(jwk(rsaKey(), nil), jwk(rsaKey2().withKID("enc"), func(j *jose.JSONWebKey) { j.Use = "enc" })), []string{"rsa1"}, false},
		{"a key for a disallowed alg is skipped", set(jwk(rsaKey(), nil), jwk(edKey(), nil), jwk(psKey(), nil)), []string{"rsa1"}, false},
		{"a weak RSA key is skipped", set(jwk(rsaKey(), nil), jwk(testKey{"small", jose.RS256, small}, nil)), []string{"rsa1"}, false},
		{"a symmetric key is skipped", set(jwk(rsaKey(), nil), json.RawMessage(`{"kty":"oct","kid":"hs","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`)), []string{"rsa1"}, false},
		{"an unparsable key does not void the set", set(jwk(rsaKey(), nil), json.RawMessage(`{"kty":"XYZ","kid":"ed1"}`)), []string{"rsa1"}, false},
		{"one key without kid is usable", set(jwk(rsaKey(), nil), jwk(ecKey().withKID(""), nil)), []string{"rsa1", ""}, false},
		{"two keys without kid are not", set(jwk(rsaKey(), nil), jwk(ecKey().withKID(""), nil), jwk(rsaKey2().withKID(""), nil)), []string{"rsa1"}, false},
		{"no usable key", set(jwk(edKey(), nil)), nil, true},
		{"not a key set", []byte(`[1]`), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseKeySet(context.Background(), tt.body, allowed, log)
			if tt.err {
				if err == nil {
					t.Fatal("parsed; want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, kids(s)); diff != "" {
				t.Errorf("usable kids (-want +got):\n%s", diff)
			}
		})
	}
}

// A token without kid may use the only key of a one-key set.
func TestVerify_TokenWithoutKID(t *testing.T) {
	t.Parallel()
	one := readyFixture(t, []testKey{ecKey()})
	if _, err := one.v.Verify(t.Context(), sign(t, ecKey().withKID(""), one.idp.claims(one.clock))); err != nil {
		t.Errorf("one-key set: %v", err)
	}
	two := readyFixture(t, []testKey{ecKey(), rsaKey()})
	_, err := two.v.Verify(t.Context(), sign(t, ecKey().withKID(""), two.idp.claims(two.clock)))
	wantReason(t, err, ReasonUnknownKID, ErrInvalidToken)
}

func TestVerify_AlgDoesNotFitTheKey(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey(), rsaKey()})
	// Signed with RSA but naming the EC key: the alg does not fit that key.
	tok := sign(t, rsaKey().withKID("ec1"), f.idp.claims(f.clock))
	hits := f.idp.jwksHits.Load()
	_, err := f.v.Verify(t.Context(), tok)
	wantReason(t, err, ReasonAlg, ErrInvalidToken)
	if f.idp.jwksHits.Load() != hits {
		t.Error("a known kid with the wrong alg caused a fetch")
	}
}
