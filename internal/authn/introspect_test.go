package authn

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const (
	introClientID     = "butler client"
	introClientSecret = "s3cr:et/+%"
)

// testIntrospection is an RFC 7662 endpoint that checks every request the
// way a strict authorization server would.
type testIntrospection struct {
	srv  *httptest.Server
	hits atomic.Int64
	down atomic.Bool

	mu       sync.Mutex
	answers  map[string]map[string]any // by token; unknown tokens are inactive
	problems []string
}

func newTestIntrospection(t *testing.T) *testIntrospection {
	in := &testIntrospection{answers: map[string]map[string]any{}}
	in.srv = httptest.NewServer(http.HandlerFunc(in.serve))
	t.Cleanup(func() {
		in.srv.Close()
		in.mu.Lock()
		defer in.mu.Unlock()
		for _, p := range in.problems {
			t.Errorf("introspection request: %s", p)
		}
	})
	return in
}

func (in *testIntrospection) answer(token string, a map[string]any) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.answers[token] = a
}

func (in *testIntrospection) serve(w http.ResponseWriter, r *http.Request) {
	in.hits.Add(1)
	if in.down.Load() {
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	var problems []string
	if r.Method != http.MethodPost {
		problems = append(problems, "method "+r.Method)
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
		problems = append(problems, "content type "+ct)
	}
	if r.URL.RawQuery != "" {
		problems = append(problems, "a query string: the token must be in the body")
	}
	user, pass, ok := r.BasicAuth()
	id, _ := url.QueryUnescape(user)
	secret, _ := url.QueryUnescape(pass)
	if !ok || id != introClientID || secret != introClientSecret {
		problems = append(problems, "client authentication "+user+":"+pass)
	}
	if err := r.ParseForm(); err != nil {
		problems = append(problems, err.Error())
	}
	if hint := r.PostForm.Get("token_type_hint"); hint != "access_token" {
		problems = append(problems, "token_type_hint "+hint)
	}
	in.mu.Lock()
	in.problems = append(in.problems, problems...)
	a, ok := in.answers[r.PostForm.Get("token")]
	in.mu.Unlock()
	if !ok {
		a = map[string]any{"active": false}
	}
	writeJSON(w, a)
}

// introFixture is a Verifier with introspection in front of an IdP that
// publishes keys (so JWTs are still verified locally).
func introFixture(t *testing.T, mods ...func(*Options)) (*fixture, *testIntrospection) {
	in := newTestIntrospection(t)
	mods = append([]func(*Options){func(o *Options) {
		o.Introspection = &Introspection{URL: in.srv.URL + "/introspect", ClientID: introClientID, ClientSecret: introClientSecret}
	}}, mods...)
	return readyFixture(t, []testKey{ecKey()}, mods...), in
}

func activeAnswer(f *fixture) map[string]any {
	now := f.clock.Now().Unix()
	return map[string]any{
		"active": true, "sub": "alice", "scope": "jenkins:read jenkins:build", "client_id": "cli",
		"iss": f.idp.issuer, "aud": []string{testAudience}, "exp": now + 600, "iat": now,
		"groups": []string{"dev"}, "token_type": "Bearer", "jti": "o-1",
	}
}

func TestIntrospection_Active(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	const tok = "opaque-token-1"
	in.answer(tok, activeAnswer(f))
	id, err := f.v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	want := &Identity{
		User: "alice", Groups: []string{"dev"}, Scopes: []string{"jenkins:read", "jenkins:build"}, ClientID: "cli",
		Issuer: f.idp.issuer, Audience: []string{testAudience}, Expiry: f.clock.Now().Add(600 * time.Second),
		TokenID: "o-1", Opaque: true,
	}
	if diff := cmp.Diff(want, id); diff != "" {
		t.Errorf("identity (-want +got):\n%s", diff)
	}
	// A cache hit: no second call.
	if _, err := f.v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if n := in.hits.Load(); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
}

func TestIntrospection_InactiveIsCachedToo(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	for range 2 {
		_, err := f.v.Verify(t.Context(), "revoked-token")
		wantReason(t, err, ReasonInactive, ErrInvalidToken)
	}
	if n := in.hits.Load(); n != 1 {
		t.Errorf("%d introspection calls, want 1", n)
	}
	f.clock.Advance(DefaultIntrospectionTTL)
	_, err := f.v.Verify(t.Context(), "revoked-token")
	wantReason(t, err, ReasonInactive, ErrInvalidToken)
	if n := in.hits.Load(); n != 2 {
		t.Errorf("after the TTL: %d introspection calls, want 2", n)
	}
}

func TestIntrospection_CacheNeverOutlivesExp(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	const tok = "short-lived"
	a := activeAnswer(f)
	a["exp"] = f.clock.Now().Add(10 * time.Second).Unix()
	in.answer(tok, a)
	verify := func() {
		t.Helper()
		if _, err := f.v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	verify()
	f.clock.Advance(9 * time.Second)
	verify()
	if n := in.hits.Load(); n != 1 {
		t.Fatalf("before exp: %d calls, want 1", n)
	}
	f.clock.Advance(time.Second) // at exp, well within the 60s TTL
	verify()                     // still valid by the clock skew, but asked again
	if n := in.hits.Load(); n != 2 {
		t.Fatalf("at exp: %d calls, want 2", n)
	}
}

func TestIntrospection_WithoutExpTheTTLBounds(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t, func(o *Options) { o.Introspection.CacheTTL = 20 * time.Second })
	a := activeAnswer(f)
	delete(a, "exp")
	in.answer("no-exp", a)
	id, err := f.v.Verify(t.Context(), "no-exp")
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(20 * time.Second); !id.Expiry.Equal(want) {
		t.Errorf("expiry %v, want now+TTL %v", id.Expiry, want)
	}
	f.clock.Advance(20 * time.Second)
	if _, err := f.v.Verify(t.Context(), "no-exp"); err != nil {
		t.Fatal(err)
	}
	if n := in.hits.Load(); n != 2 {
		t.Errorf("%d calls, want 2", n)
	}
}

func TestIntrospection_EndpointDown(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	in.answer("tok", activeAnswer(f))
	in.down.Store(true)
	_, err := f.v.Verify(t.Context(), "tok")
	wantReason(t, err, ReasonUnavailable, ErrUnavailable)
	// Failures are not cached: it works as soon as the endpoint is back.
	in.down.Store(false)
	if _, err := f.v.Verify(t.Context(), "tok"); err != nil {
		t.Fatal(err)
	}

	in.srv.Close()
	_, err = f.v.Verify(t.Context(), "another")
	wantReason(t, err, ReasonUnavailable, ErrUnavailable)
}

func TestIntrospection_ChecksTheAnswer(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	now := f.clock.Now().Unix()
	tests := []struct {
		name   string
		change map[string]any
		want   string // "" means valid
	}{
		{"another issuer", map[string]any{"iss": "https://evil.example.com"}, ReasonIss},
		{"the issuer with a trailing slash", map[string]any{"iss": f.idp.issuer + "/"}, ReasonIss},
		{"the issuer in upper case", map[string]any{"iss": strings.ToUpper(f.idp.issuer)}, ReasonIss},
		{"an issuer that is not a string", map[string]any{"iss": []string{f.idp.issuer}}, ReasonIss},
		{"no issuer", map[string]any{"iss": nil}, ""},
		{"another audience", map[string]any{"aud": "https://other.example.com/mcp"}, ReasonAud},
		{"other audiences", map[string]any{"aud": []string{"account", "https://other.example.com/mcp"}}, ReasonAud},
		{"ours among others", map[string]any{"aud": []string{"account", testAudience}}, ""},
		{"ours as a string", map[string]any{"aud": testAudience}, ""},
		{"an audience that is not a string", map[string]any{"aud": 7}, ReasonAud},
		{"no audience", map[string]any{"aud": nil}, ReasonAud},
		{"an empty audience (Hydra)", map[string]any{"aud": []string{}}, ReasonAud},
		{"expired", map[string]any{"exp": now - 3600}, ReasonExp},
		{"not yet valid", map[string]any{"nbf": now + 3600}, ReasonNbf},
		{"no user", map[string]any{"sub": nil}, ReasonUserClaim},
		{"a refresh token (Hydra)", map[string]any{"token_use": "refresh_token"}, ReasonTokenType},
		{"a refresh token", map[string]any{"token_type": "refresh_token"}, ReasonTokenType},
		{"active as a string", map[string]any{"active": "true"}, ReasonUnavailable},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := "token-" + string(rune('a'+i))
			a := activeAnswer(f)
			for k, v := range tt.change {
				if v == nil {
					delete(a, k)
				} else {
					a[k] = v
				}
			}
			in.answer(tok, a)
			_, err := f.v.Verify(t.Context(), tok)
			switch tt.want {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case ReasonUnavailable:
				wantReason(t, err, tt.want, ErrUnavailable)
			default:
				wantReason(t, err, tt.want, ErrInvalidToken)
			}
		})
	}
}

func TestIntrospection_NoClientCredentials(t *testing.T) {
	t.Parallel()
	var sawAuth atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sawAuth.Store(r.Header.Get("Authorization") != "")
		writeJSON(w, map[string]any{"active": false})
	}))
	t.Cleanup(srv.Close)
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Introspection = &Introspection{URL: srv.URL} })
	_, err := f.v.Verify(t.Context(), "x")
	wantReason(t, err, ReasonInactive, ErrInvalidToken)
	if sawAuth.Load() {
		t.Error("an Authorization header was sent without a client id")
	}
}

// The issuer publishes no keys (its metadata has no jwks_uri): every token,
// JWT-shaped or not, is introspected, and Ready follows the endpoint.
func TestIntrospection_Only(t *testing.T) {
	t.Parallel()
	in := newTestIntrospection(t)
	idp := newTestIdP(t, "/realms/eng")
	idp.set(func(p *testIdP) { p.noJWKSURI = true })
	f := newFixture(t, idp, func(o *Options) {
		o.Introspection = &Introspection{URL: in.srv.URL, ClientID: introClientID, ClientSecret: introClientSecret}
	})
	f.waitReady(t)
	jwtShaped := sign(t, ecKey(), idp.claims(f.clock))
	in.answer(jwtShaped, activeAnswer(f))
	id, err := f.v.Verify(t.Context(), jwtShaped)
	if err != nil {
		t.Fatal(err)
	}
	if !id.Opaque {
		t.Error("not verified by introspection")
	}
	in.down.Store(true)
	_, err = f.v.Verify(t.Context(), "other")
	wantReason(t, err, ReasonUnavailable, ErrUnavailable)
	if err := f.v.Ready(t.Context()); err == nil || !strings.Contains(err.Error(), "introspection") {
		t.Errorf("Ready with the endpoint down = %v", err)
	}
}

func TestIntrospection_WithoutItAnOpaqueTokenIsMalformed(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	e := wantReason(t, func() error { _, err := f.v.Verify(t.Context(), "opaque"); return err }(), ReasonMalformed, ErrInvalidToken)
	if !strings.Contains(e.Description, "introspection") {
		t.Errorf("description %q", e.Description)
	}
}

// Tokens must never reach a log, whatever happens to them.
func TestTokensNeverLogged(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	tokens := []string{"opaque-secret-1", "opaque-secret-2", "opaque-secret-3"}
	in.answer(tokens[0], activeAnswer(f))
	jwt := sign(t, ecKey(), f.idp.claims(f.clock))
	expired := f.idp.claims(f.clock)
	expired["exp"] = 1
	tokens = append(tokens, jwt, sign(t, ecKey(), expired), sign(t, ecKey().withKID("unknown"), f.idp.claims(f.clock)))
	for _, tok := range tokens {
		_, _ = f.v.Verify(t.Context(), tok)
	}
	in.down.Store(true)
	tokens = append(tokens, "opaque-secret-4")
	_, _ = f.v.Verify(t.Context(), tokens[len(tokens)-1])
	logs := f.logs.String()
	if !strings.Contains(logs, "token rejected") || !strings.Contains(logs, "introspection failed") {
		t.Fatalf("the scenario did not log what it should; logs:\n%s", logs)
	}
	for _, tok := range tokens {
		for _, part := range strings.Split(tok, ".") {
			if len(part) > 8 && strings.Contains(logs, part) {
				t.Errorf("the logs contain (part of) a token: %q", part)
			}
		}
	}
}

// With Introspection.AllowMissingAudience an answer without aud (or with
// an empty one) passes; an aud that is there must still name Butler.
func TestIntrospection_AllowMissingAudience(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t, func(o *Options) { o.Introspection.AllowMissingAudience = true })
	tests := []struct {
		name string
		aud  any // nil means absent
		want string
	}{
		{"no audience", nil, ""},
		{"an empty audience (Hydra)", []string{}, ""},
		{"ours", testAudience, ""},
		{"another audience", "https://other.example.com/mcp", ReasonAud},
		{"other audiences", []string{"account"}, ReasonAud},
		{"an empty string", "", ReasonAud},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := "allow-missing-" + string(rune('a'+i))
			a := activeAnswer(f)
			delete(a, "aud")
			if tt.aud != nil {
				a["aud"] = tt.aud
			}
			in.answer(tok, a)
			_, err := f.v.Verify(t.Context(), tok)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tt.want, ErrInvalidToken)
		})
	}
	// It is about introspection answers only: a JWT still needs aud.
	c := f.idp.claims(f.clock)
	delete(c, "aud")
	_, err := f.v.Verify(t.Context(), sign(t, ecKey(), c))
	wantReason(t, err, ReasonAud, ErrInvalidToken)
}

// By default an answer that names no audience is refused, and says why.
func TestIntrospection_MissingAudienceRefusedByDefault(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	for tok, aud := range map[string]any{"no-aud": nil, "empty-aud": []string{}} {
		a := activeAnswer(f)
		delete(a, "aud")
		if aud != nil {
			a["aud"] = aud
		}
		in.answer(tok, a)
		_, err := f.v.Verify(t.Context(), tok)
		e := wantReason(t, err, ReasonAud, ErrInvalidToken)
		if !strings.Contains(e.Description, "names no audience") {
			t.Errorf("%s: description %q does not say the answer names no audience", tok, e.Description)
		}
	}
}
