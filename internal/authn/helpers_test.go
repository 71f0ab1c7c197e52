package authn

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const testAudience = "https://butler.example.com/mcp"

// fakeClock is the injected clock: Now for token times and rate limits,
// After for the background refresh loop. Time moves only by Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = slices.DeleteFunc(c.waiters, func(w clockWaiter) bool {
		if w.at.After(c.now) {
			return false
		}
		w.ch <- c.now
		return true
	})
}

// waiting is how many timers are pending (the background loop sleeping).
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// Keys are generated once per test binary: RSA key generation is slow.
type keyMaterial struct {
	rsa1, rsa2, attacker *rsa.PrivateKey
	ec                   *ecdsa.PrivateKey
	ed                   ed25519.PrivateKey
}

var testKeyMaterial = sync.OnceValue(func() keyMaterial {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var m keyMaterial
	var err error
	m.rsa1, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	m.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	m.attacker, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	m.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, m.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return m
})

// testKey is a signing key of the test IdP (or of an attacker).
type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func rsaKey() testKey      { return testKey{"rsa1", jose.RS256, testKeyMaterial().rsa1} }
func rsaKey2() testKey     { return testKey{"rsa2", jose.RS256, testKeyMaterial().rsa2} }
func psKey() testKey       { return testKey{"ps1", jose.PS256, testKeyMaterial().rsa2} }
func ecKey() testKey       { return testKey{"ec1", jose.ES256, testKeyMaterial().ec} }
func edKey() testKey       { return testKey{"ed1", jose.EdDSA, testKeyMaterial().ed} }
func attackerKey() testKey { return testKey{"evil", jose.RS256, testKeyMaterial().attacker} }

func (k testKey) withKID(kid string) testKey { k.kid = kid; return k }

// jwk is the public key as the IdP publishes it.
func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

// sign makes a compact JWS of claims with k; the kid header is k.kid
// unless empty. opts may add headers.
func sign(t testing.TB, k testKey, claims map[string]any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return signPayload(t, k, payload, opts...)
}

func signPayload(t testing.TB, k testKey, payload []byte, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	so := (&jose.SignerOptions{}).WithType("JWT")
	for _, o := range opts {
		o(so)
	}
	var key any = k.priv
	if k.kid != "" {
		key = jose.JSONWebKey{Key: k.priv, KeyID: k.kid}
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: key}, so)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func withHeader(name string, value any) func(*jose.SignerOptions) {
	return func(so *jose.SignerOptions) { so.WithHeader(jose.HeaderKey(name), value) }
}

// rawJWS builds a compact JWS by hand, for tokens go-jose refuses to sign.
func rawJWS(t testing.TB, header, claims any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

// testIdP is an authorization server on httptest: metadata and a JWK Set.
type testIdP struct {
	srv      *httptest.Server
	issuer   string
	jwksHits atomic.Int64

	mu             sync.Mutex
	keys           []jose.JSONWebKey
	metadataAt     map[string]bool // paths serving the metadata
	metadataIssuer string          // the issuer the metadata claims
	wrongIssuerAt  map[string]bool // paths serving metadata of another issuer
	noJWKSURI      bool
	jwksStatus     int           // when not 0, the JWK Set answers with it
	jwksGate       chan struct{} // when set, the JWK Set waits for it to close
	requests       []string
}

// newTestIdP starts an IdP whose issuer is the server's URL + path,
// publishing keys, with its metadata where Keycloak serves it.
func newTestIdP(t testing.TB, path string, keys ...testKey) *testIdP {
	t.Helper()
	p := &testIdP{metadataAt: map[string]bool{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	p.issuer = p.srv.URL + path
	p.metadataIssuer = p.issuer
	p.metadataAt[strings.TrimSuffix(path, "/")+"/.well-known/openid-configuration"] = true
	p.publish(keys...)
	return p
}

func (p *testIdP) publish(keys ...testKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.keys = nil
	for _, k := range keys {
		p.keys = append(p.keys, k.jwk())
	}
}

func (p *testIdP) set(f func(p *testIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *testIdP) requested() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.requests)
}

func (p *testIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.requests = append(p.requests, r.URL.Path)
	keys, status, gate := p.keys, p.jwksStatus, p.jwksGate
	md := map[string]any{"issuer": p.metadataIssuer, "token_endpoint": p.srv.URL + "/token"}
	if !p.noJWKSURI {
		md["jwks_uri"] = p.srv.URL + "/jwks"
	}
	servesMetadata := p.metadataAt[r.URL.Path]
	if p.wrongIssuerAt[r.URL.Path] {
		servesMetadata = true
		md["issuer"] = "https://other.example.com/realms/eng"
	}
	p.mu.Unlock()

	switch {
	case r.URL.Path == "/jwks":
		p.jwksHits.Add(1)
		if gate != nil {
			<-gate
		}
		if status != 0 {
			http.Error(w, "unavailable", status)
			return
		}
		writeJSON(w, jose.JSONWebKeySet{Keys: keys})
	case servesMetadata:
		writeJSON(w, md)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// claims are valid claims for the IdP at the clock's time.
func (p *testIdP) claims(clock *fakeClock) map[string]any {
	now := clock.Now().Unix()
	return map[string]any{
		"iss": p.issuer, "aud": testAudience, "sub": "alice",
		"iat": now, "nbf": now, "exp": now + 300,
		"scope": "jenkins:read", "client_id": "mcp-client", "jti": "t-1",
	}
}

// logBuffer collects the Verifier's logs, so tests can check a token
// never shows up in them.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// fixture is a Verifier in front of a test IdP, on a fake clock.
type fixture struct {
	idp   *testIdP
	clock *fakeClock
	logs  *logBuffer
	v     *Verifier
}

// newFixture starts a Verifier for idp and waits until it is ready (unless
// a mod sets wait to false).
func newFixture(t testing.TB, idp *testIdP, mods ...func(*Options)) *fixture {
	t.Helper()
	f := &fixture{idp: idp, clock: newFakeClock(), logs: &logBuffer{}}
	opts := Options{
		Issuer:    idp.issuer,
		Audiences: []string{testAudience},
		Now:       f.clock.Now,
		Logger:    f.logs.logger(),
	}
	for _, m := range mods {
		m(&opts)
	}
	v, err := newVerifier(t.Context(), opts, f.clock.After)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	f.v = v
	return f
}

func (f *fixture) waitReady(t testing.TB) {
	t.Helper()
	eventually(t, "the verifier to be ready", func() bool { return f.v.Ready(t.Context()) == nil })
}

// eventually waits for cond, which depends on the background goroutine.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// readyFixture is newFixture with an IdP at path /realms/eng publishing
// keys, waited for.
func readyFixture(t testing.TB, keys []testKey, mods ...func(*Options)) *fixture {
	t.Helper()
	f := newFixture(t, newTestIdP(t, "/realms/eng", keys...), mods...)
	f.waitReady(t)
	return f
}

// wantReason checks err is an *Error with the reason and sentinel.
func wantReason(t testing.TB, err error, reason string, sentinel error) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify succeeded; want %s", reason)
	}
	e, ok := errors.AsType[*Error](err)
	if !ok {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e.Reason != reason || !errors.Is(err, sentinel) {
		t.Fatalf("error %q: reason %q, want %q wrapping %v", err, e.Reason, reason, sentinel)
	}
	if e.Description == "" {
		t.Errorf("error %q has no description", err)
	}
	return e
}
