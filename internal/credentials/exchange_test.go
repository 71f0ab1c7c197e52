package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
)

const (
	butlerResource  = "http://127.0.0.1:1/mcp"
	jenkinsAudience = "https://jenkins.example.com"
)

// exchangeIdP is a development IdP that can exchange Butler-audience tokens
// for Jenkins-audience ones, counting token endpoint calls.
func exchangeIdP(t *testing.T) (*devidp.Provider, string, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	var idp *devidp.Provider
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "token") {
			calls.Add(1)
		}
		idp.Handler().ServeHTTP(w, r)
	}))
	issuer := "http://" + srv.Listener.Addr().String()
	var err error
	idp, err = devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}, {ID: "bob", Name: "Bob"}},
		Resources: []string{butlerResource, jenkinsAudience}, Scopes: []string{"jenkins:read"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.AddClient(devidp.ClientConfig{ID: "butler-exchange", Secret: "exchange-secret", GrantTypes: []string{devidp.GrantTypeTokenExchange}}); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Close(); idp.Close() })
	resp, err := http.Get(issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&md)
	return idp, md.TokenEndpoint, &calls
}

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(data, &c)
	return c
}

func TestExchange_TokenForJenkins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp, tokenURL, calls := exchangeIdP(t)
	x := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return tokenURL, nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "exchange-secret",
	})
	subject, err := idp.IssueToken(ctx, devidp.TokenRequest{User: "alice", Resource: butlerResource})
	if err != nil {
		t.Fatal(err)
	}
	p := identity.Principal{User: "alice", JenkinsUser: "alice", AccessToken: secret.String(subject)}
	c, err := x.For(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bearer == "" || c.Bearer.Reveal() == subject || c.APIToken != "" || c.User != "alice" {
		t.Fatalf("credential: %v (the caller's own token must never be used for Jenkins)", c)
	}
	claims := claimsOf(t, c.Bearer.Reveal())
	if claims["sub"] != "alice" || !strings.Contains(jsonString(claims["aud"]), jenkinsAudience) || strings.Contains(jsonString(claims["aud"]), butlerResource) {
		t.Errorf("exchanged token claims: %v", claims)
	}
	// Cached per user until shortly before it expires.
	if again, err := x.For(ctx, p); err != nil || again.Bearer != c.Bearer || calls.Load() != 1 {
		t.Errorf("second call: %v, %d exchanges", err, calls.Load())
	}
	// Another user gets their own.
	bobSubject, _ := idp.IssueToken(ctx, devidp.TokenRequest{User: "bob", Resource: butlerResource})
	bc, err := x.For(ctx, identity.Principal{User: "bob", JenkinsUser: "bob", AccessToken: secret.String(bobSubject)})
	if err != nil || claimsOf(t, bc.Bearer.Reveal())["sub"] != "bob" {
		t.Errorf("bob: %v %v", bc, err)
	}
	if ok, _ := x.Linked(ctx, p); !ok {
		t.Error("token exchange users are always linked")
	}
}

func TestExchange_Refusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp, tokenURL, _ := exchangeIdP(t)
	subject, _ := idp.IssueToken(ctx, devidp.TokenRequest{User: "alice", Resource: butlerResource})
	p := identity.Principal{User: "alice", JenkinsUser: "alice", AccessToken: secret.String(subject)}
	wrongSecret := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return tokenURL, nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "nope",
	})
	if _, err := wrongSecret.For(ctx, p); !errors.Is(err, credentials.ErrExchange) || strings.Contains(err.Error(), subject) {
		t.Errorf("wrong client secret: %v", err)
	}
	if _, err := wrongSecret.For(ctx, identity.Guest()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("guest: %v", err)
	}
	down := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return "http://127.0.0.1:1/token", nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "exchange-secret",
	})
	if _, err := down.For(ctx, p); !errors.Is(err, credentials.ErrExchangeUnavailable) {
		t.Errorf("IdP down: %v", err)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// exTokenEndpoint is an RFC 8693 token endpoint on httptest whose answer the
// test chooses; it counts the exchanges and may hold them at a gate.
type exTokenEndpoint struct {
	srv    *httptest.Server
	calls  atomic.Int32
	gate   chan struct{} // when set, each exchange waits for it to close
	once   sync.Once
	answer func(form url.Values) (status int, body any)
}

// hold makes the exchanges wait until release (or the end of the test).
func (e *exTokenEndpoint) hold(t *testing.T) {
	e.gate = make(chan struct{})
	t.Cleanup(e.release) // before the server closes: its handlers must return
}

func (e *exTokenEndpoint) release() { e.once.Do(func() { close(e.gate) }) }

func newExTokenEndpoint(t *testing.T, answer func(form url.Values) (int, any)) *exTokenEndpoint {
	t.Helper()
	e := &exTokenEndpoint{answer: answer}
	e.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.calls.Add(1)
		if e.gate != nil {
			select {
			case <-e.gate:
			case <-r.Context().Done():
				return
			}
		}
		if err := r.ParseForm(); err != nil || r.PostForm.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		status, body := e.answer(r.PostForm)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		if s, ok := body.(string); ok {
			io.WriteString(w, s)
			return
		}
		json.NewEncoder(w).Encode(body)
	}))
	t.Cleanup(e.srv.Close)
	return e
}

// exClock is the injected clock of the exchange tests.
type exClock struct {
	mu  sync.Mutex
	now time.Time
}

func newExClock() *exClock { return &exClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *exClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *exClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (e *exTokenEndpoint) exchange(clock *exClock, mods ...func(*credentials.ExchangeOptions)) *credentials.Exchange {
	o := credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return e.srv.URL + "/token", nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "exchange-secret",
		Now: clock.Now,
	}
	for _, m := range mods {
		m(&o)
	}
	return credentials.NewExchange(o)
}

// exJWT is a JWT-shaped token with claims (the signature is not checked
// by Butler: Jenkins checks it).
func exJWT(t *testing.T, claims any) string {
	t.Helper()
	enc := base64.RawURLEncoding
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeToString([]byte(`{"alg":"RS256","typ":"at+jwt"}`)) + "." + enc.EncodeToString(payload) + "." + enc.EncodeToString([]byte("signature"))
}

// exTokenResponse is a correct RFC 8693 §2.2.1 answer for token.
func exTokenResponse(token string) map[string]any {
	return map[string]any{
		"access_token": token, "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
		"token_type": "Bearer", "expires_in": 300,
	}
}

const exAliceSubject = "butler-token-of-alice"

func exAlice() identity.Principal {
	return identity.Principal{User: "alice", JenkinsUser: "alice", AccessToken: secret.String(exAliceSubject)}
}

// wantExRefused checks err names the IdP's mistake and no credential came.
func wantExRefused(t *testing.T, c jenkins.Credential, err error, mention string) {
	t.Helper()
	if !errors.Is(err, credentials.ErrExchangeRefused) {
		t.Fatalf("error %v, want ErrExchangeRefused", err)
	}
	if !errors.Is(err, credentials.ErrExchange) {
		t.Errorf("error %v does not wrap ErrExchange", err)
	}
	if !strings.Contains(err.Error(), mention) {
		t.Errorf("error %q does not mention %q", err, mention)
	}
	if strings.Contains(err.Error(), exAliceSubject) {
		t.Errorf("error %q contains the subject token", err)
	}
	if c != (jenkins.Credential{}) {
		t.Errorf("a credential came with the refusal: %v", c)
	}
}

// A token for another user is never used: alice must not act in Jenkins
// as admin while the audit record says alice.
func TestExchange_RefusesATokenForAnotherUser(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": "admin", "aud": jenkinsAudience}))
	})
	x := e.exchange(newExClock())
	for range 2 {
		c, err := x.For(t.Context(), exAlice())
		wantExRefused(t, c, err, `"admin"`)
	}
	if n := e.calls.Load(); n != 2 {
		t.Errorf("%d exchanges, want 2: a refused token must not be cached", n)
	}
}

func TestExchange_UserClaim(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		userClaim string
		claims    any
		refused   string // what the error mentions; "" means accepted
	}{
		{"sub names the user", "", map[string]any{"sub": "alice"}, ""},
		{"no sub", "", map[string]any{"aud": jenkinsAudience}, "no sub claim"},
		{"sub not a string", "", map[string]any{"sub": []string{"alice"}}, "no sub claim"},
		{"an empty sub", "", map[string]any{"sub": ""}, "no sub claim"},
		{"sub of another case", "", map[string]any{"sub": "Alice"}, `"Alice"`},
		{"a payload that is JSON but no object", "", []string{"alice"}, "no sub claim"},
		{"a configured claim", "preferred_username", map[string]any{"sub": "f81d4fae", "preferred_username": "alice"}, ""},
		{"a configured claim naming another user", "preferred_username", map[string]any{"sub": "alice", "preferred_username": "admin"}, `"admin"`},
		{"a dotted path", "ext.user", map[string]any{"ext": map[string]any{"user": "alice"}}, ""},
		{"a dotted path naming another user", "ext.user", map[string]any{"ext": map[string]any{"user": "root"}, "sub": "alice"}, `"root"`},
		{"a top-level claim named by the whole path wins", "ext.user", map[string]any{"ext.user": "alice", "ext": map[string]any{"user": "root"}}, ""},
	}
	// A payload that lenient parsers would read is checked too.
	enc := func(e *base64.Encoding, s string) string { return e.EncodeToString([]byte(s)) }
	for name, tok := range map[string]string{
		"padded base64url":       "eyJhbGciOiJub25lIn0." + enc(base64.URLEncoding, `{"sub":"admin","x":"?"}`) + ".sig",
		"standard base64":        "eyJhbGciOiJub25lIn0." + enc(base64.RawStdEncoding, `{"sub":"admin","x":"??>"}`) + ".sig",
		"a header not base64url": "a$." + enc(base64.RawURLEncoding, `{"sub":"admin"}`) + ".c",
		"data after the JSON":    "eyJhbGciOiJub25lIn0." + enc(base64.RawURLEncoding, `{"sub":"admin"} trailing`) + ".sig",
	} {
		e := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, exTokenResponse(tok) })
		c, err := e.exchange(newExClock()).For(t.Context(), exAlice())
		if !errors.Is(err, credentials.ErrExchangeRefused) || c != (jenkins.Credential{}) {
			t.Errorf("%s: credential %v, error %v; want it refused", name, c, err)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, exTokenResponse(exJWT(t, tt.claims)) })
			x := e.exchange(newExClock(), func(o *credentials.ExchangeOptions) { o.UserClaim = tt.userClaim })
			c, err := x.For(t.Context(), exAlice())
			if tt.refused != "" {
				wantExRefused(t, c, err, tt.refused)
				return
			}
			if err != nil || c.Bearer == "" || c.User != "alice" {
				t.Fatalf("credential %v, error %v", c, err)
			}
		})
	}
	// A token that is not a JWT cannot be checked, and is used.
	for name, tok := range map[string]string{
		"opaque":                         "opaque-jenkins-token",
		"three parts, payload not JSON":  "a.b.c",
		"two parts with a JSON payload":  "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9",
		"four parts with a JSON payload": "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.c.d",
	} {
		e := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, exTokenResponse(tok) })
		c, err := e.exchange(newExClock()).For(t.Context(), exAlice())
		if err != nil || c.Bearer.Reveal() != tok {
			t.Errorf("%s: credential %v, error %v", name, c, err)
		}
	}
}

// Only an access token for Bearer use goes to Jenkins: never an ID token
// or a refresh token.
func TestExchange_RefusesWhatIsNotAnAccessToken(t *testing.T) {
	t.Parallel()
	jwt := exJWT(t, map[string]any{"sub": "alice"})
	tests := []struct {
		name    string
		change  map[string]any // nil values delete
		refused string         // "" means accepted
	}{
		{"an ID token", map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "id_token"},
		{"a refresh token", map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:refresh_token"}, "refresh_token"},
		{"a JWT token type", map[string]any{"issued_token_type": "urn:ietf:params:oauth:token-type:jwt"}, "token-type:jwt"},
		{"no issued_token_type", map[string]any{"issued_token_type": nil}, "issued_token_type"},
		{"issued_token_type not a string", map[string]any{"issued_token_type": 1}, "issued_token_type"},
		{"token_type N_A", map[string]any{"token_type": "N_A"}, "N_A"},
		{"token_type DPoP", map[string]any{"token_type": "DPoP"}, "DPoP"},
		{"no token_type", map[string]any{"token_type": nil}, "token_type"},
		{"no access_token", map[string]any{"access_token": nil}, "access_token"},
		{"an empty access_token", map[string]any{"access_token": ""}, "access_token"},
		{"token_type in lower case", map[string]any{"token_type": "bearer"}, ""},
		{"token_type in upper case", map[string]any{"token_type": "BEARER"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := exTokenResponse(jwt)
			for k, v := range tt.change {
				if v == nil {
					delete(body, k)
				} else {
					body[k] = v
				}
			}
			e := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, body })
			c, err := e.exchange(newExClock()).For(t.Context(), exAlice())
			if tt.refused != "" {
				wantExRefused(t, c, err, tt.refused)
				return
			}
			if err != nil || c.Bearer.Reveal() != jwt {
				t.Fatalf("credential %v, error %v", c, err)
			}
		})
	}
}

// An IdP that echoes the subject token must not make Butler forward the
// caller's own Butler token to Jenkins.
func TestExchange_RefusesTheSubjectTokenEchoed(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(form url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(form.Get("subject_token"))
	})
	c, err := e.exchange(newExClock()).For(t.Context(), exAlice())
	wantExRefused(t, c, err, "subject token")
}

// expires_in may be a number or a numeric string; it is capped at 24 h,
// and the token is never cached past it.
func TestExchange_ExpiresIn(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		expiresIn any           // nil means absent
		cached    time.Duration // how long the token is reused; 0 means not at all
		refused   string
	}{
		{"a number", 300, 270 * time.Second, ""},
		{"a numeric string", "300", 270 * time.Second, ""},
		{"a fraction", 300.9, 270 * time.Second, ""},
		{"a fraction as a string", "300.9", 270 * time.Second, ""},
		{"a minute", 60, 30 * time.Second, ""},
		{"shorter than the margin", 20, 0, ""},
		{"a week, capped at 24 h", 7 * 24 * 3600, 24*time.Hour - 30*time.Second, ""},
		{"a huge number, capped", 1e300, 24*time.Hour - 30*time.Second, ""},
		{"a huge string, capped", "99999999999999999999999", 24*time.Hour - 30*time.Second, ""},
		{"beyond float64, capped", "1e400", 24*time.Hour - 30*time.Second, ""},
		{"below float64", "1e-400", 0, "expires_in"},
		{"hexadecimal", "0x12c", 0, "expires_in"},
		{"absent: 5 minutes", nil, 270 * time.Second, ""},
		{"zero", 0, 0, "expires_in"},
		{"negative", -300, 0, "expires_in"},
		{"a word", "soon", 0, "expires_in"},
		{"an empty string", "", 0, "expires_in"},
		{"a string with spaces", " 300", 0, "expires_in"},
		{"a boolean", true, 0, "expires_in"},
		{"an object", map[string]any{"s": 300}, 0, "expires_in"},
		{"NaN as a string", "NaN", 0, "expires_in"},
		{"infinity as a string", "Inf", 0, "expires_in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := exTokenResponse(exJWT(t, map[string]any{"sub": "alice"}))
			delete(body, "expires_in")
			if tt.expiresIn != nil {
				body["expires_in"] = tt.expiresIn
			}
			e := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, body })
			clock := newExClock()
			x := e.exchange(clock)
			c, err := x.For(t.Context(), exAlice())
			if tt.refused != "" {
				wantExRefused(t, c, err, tt.refused)
				return
			}
			if err != nil || c.Bearer == "" {
				t.Fatalf("credential %v, error %v", c, err)
			}
			if tt.cached > 0 {
				clock.Advance(tt.cached - time.Second)
				if _, err := x.For(t.Context(), exAlice()); err != nil || e.calls.Load() != 1 {
					t.Fatalf("just before %v: %d exchanges (%v), want the cached token", tt.cached, e.calls.Load(), err)
				}
				clock.Advance(time.Second)
			}
			if _, err := x.For(t.Context(), exAlice()); err != nil || e.calls.Load() != 2 {
				t.Errorf("after %v: %d exchanges (%v), want a new one", tt.cached, e.calls.Load(), err)
			}
		})
	}
}

// A JWT is not reused past its own exp either, whatever expires_in says.
func TestExchange_NeverCachedPastTheJWTsExp(t *testing.T) {
	t.Parallel()
	clock := newExClock()
	exp := clock.Now().Add(2 * time.Minute)
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": "alice", "exp": exp.Unix()}))
	})
	x := e.exchange(clock)
	for _, step := range []time.Duration{0, 89 * time.Second} {
		clock.Advance(step)
		if _, err := x.For(t.Context(), exAlice()); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.calls.Load(); n != 1 {
		t.Fatalf("%d exchanges within exp - 30 s, want 1", n)
	}
	clock.Advance(time.Second) // exp - 30 s, long before expires_in (300 s)
	if _, err := x.For(t.Context(), exAlice()); err != nil {
		t.Fatal(err)
	}
	if n := e.calls.Load(); n != 2 {
		t.Errorf("%d exchanges at exp - 30 s, want 2", n)
	}
}

// exCountingClock counts the calls of Now; when hold is set, the first call
// waits for it to close.
type exCountingClock struct {
	*exClock
	calls atomic.Int32
	hold  chan struct{}
}

func (c *exCountingClock) Now() time.Time {
	if c.calls.Add(1) == 1 && c.hold != nil {
		<-c.hold
	}
	return c.exClock.Now()
}

// 30 concurrent first calls for one fresh subject token make one exchange.
func TestExchange_ConcurrentCallsMakeOneExchange(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": "alice"}))
	})
	e.hold(t)
	clock := &exCountingClock{exClock: newExClock()}
	x := e.exchange(clock.exClock, func(o *credentials.ExchangeOptions) { o.Now = clock.Now })
	const callers = 30
	creds := make([]jenkins.Credential, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			if creds[i], err = x.For(t.Context(), exAlice()); err != nil {
				t.Error(err)
			}
		})
	}
	// Every caller has looked at the cache (and found nothing) before the
	// first exchange is answered.
	deadline := time.Now().Add(5 * time.Second)
	for (e.calls.Load() == 0 || clock.calls.Load() < callers) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	e.release()
	wg.Wait()
	if n := e.calls.Load(); n != 1 {
		t.Errorf("%d exchanges for %d concurrent calls with one subject token, want 1", n, callers)
	}
	for i, c := range creds {
		if c != creds[0] || c.Bearer == "" {
			t.Errorf("caller %d got %v, caller 0 %v", i, c, creds[0])
		}
	}
}

// A caller that found no cached token but starts its exchange only after
// another one cached it uses that token.
func TestExchange_ALateCallerUsesTheTokenJustCached(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": "alice"}))
	})
	clock := &exCountingClock{exClock: newExClock(), hold: make(chan struct{})}
	x := e.exchange(clock.exClock, func(o *credentials.ExchangeOptions) { o.Now = clock.Now })
	late := make(chan error)
	go func() { // looks at the cache, then waits in Now
		_, err := x.For(t.Context(), exAlice())
		late <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for clock.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := x.For(t.Context(), exAlice()); err != nil {
		t.Fatal(err)
	}
	close(clock.hold)
	if err := <-late; err != nil {
		t.Fatal(err)
	}
	if n := e.calls.Load(); n != 1 {
		t.Errorf("%d exchanges, want 1", n)
	}
}

// A caller whose request ends stops waiting for the exchange; the others
// still get its token.
func TestExchange_CallerGivingUp(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": "alice"}))
	})
	e.hold(t)
	x := e.exchange(newExClock())
	ctx, cancel := context.WithCancel(t.Context())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := x.For(ctx, exAlice())
		gaveUp <- err
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.calls.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-gaveUp:
		if !errors.Is(err, context.Canceled) || !errors.Is(err, credentials.ErrExchangeUnavailable) {
			t.Errorf("the caller that gave up: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the caller kept waiting after its request ended")
	}
	e.release()
	deadline = time.Now().Add(5 * time.Second)
	for {
		c, err := x.For(t.Context(), exAlice())
		if err != nil {
			t.Fatal(err)
		}
		if c.Bearer != "" && e.calls.Load() == 1 {
			break
		}
		if e.calls.Load() > 1 || time.Now().After(deadline) {
			t.Fatalf("%d exchanges: the first was cancelled with its caller", e.calls.Load())
		}
	}
}

// Rejected drops the cached token of the principal (Jenkins refused it):
// the next call exchanges again.
func TestExchange_Rejected(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	e := newExTokenEndpoint(t, func(form url.Values) (int, any) {
		user := strings.TrimPrefix(form.Get("subject_token"), "butler-token-of-")
		user, _, _ = strings.Cut(user, "#")
		return http.StatusOK, exTokenResponse(exJWT(t, map[string]any{"sub": user, "jti": n.Add(1)}))
	})
	x := e.exchange(newExClock())
	bob := identity.Principal{User: "bob", JenkinsUser: "bob", AccessToken: "butler-token-of-bob"}
	first, err := x.For(t.Context(), exAlice())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.For(t.Context(), bob); err != nil {
		t.Fatal(err)
	}
	// Alice's newer Butler token: a rejection of the old one must not drop
	// the token exchanged for the new one.
	aliceNew := exAlice()
	aliceNew.AccessToken = exAliceSubject + "#2"
	x.Rejected(t.Context(), aliceNew, jenkins.Credential{})
	if c, _ := x.For(t.Context(), exAlice()); c != first || e.calls.Load() != 2 {
		t.Fatalf("a rejection for another subject token dropped alice's: %d exchanges", e.calls.Load())
	}
	x.Rejected(t.Context(), exAlice(), jenkins.Credential{})
	again, err := x.For(t.Context(), exAlice())
	if err != nil {
		t.Fatal(err)
	}
	if again == first || e.calls.Load() != 3 {
		t.Errorf("after Rejected: %d exchanges, same token %v; want a new exchange", e.calls.Load(), again == first)
	}
	// Bob's token is still cached; guests and empty principals are ignored.
	x.Rejected(t.Context(), identity.Guest(), jenkins.Credential{})
	x.Rejected(t.Context(), identity.Principal{}, jenkins.Credential{})
	if _, err := x.For(t.Context(), bob); err != nil || e.calls.Load() != 3 {
		t.Errorf("bob: %d exchanges (%v), want his cached token", e.calls.Load(), err)
	}
}

// The IdP's refusal (an OAuth error) stays ErrExchange, not a mistake.
func TestExchange_IdPRefusalIsNotAMistake(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(url.Values) (int, any) {
		return http.StatusBadRequest, map[string]any{"error": "invalid_target"}
	})
	_, err := e.exchange(newExClock()).For(t.Context(), exAlice())
	if !errors.Is(err, credentials.ErrExchange) || errors.Is(err, credentials.ErrExchangeUnavailable) || !strings.Contains(err.Error(), "invalid_target") {
		t.Errorf("an OAuth error answer: %v", err)
	}
	notJSON := newExTokenEndpoint(t, func(url.Values) (int, any) { return http.StatusOK, "<html>" })
	_, err = notJSON.exchange(newExClock()).For(t.Context(), exAlice())
	if !errors.Is(err, credentials.ErrExchangeUnavailable) {
		t.Errorf("an answer that is not JSON: %v", err)
	}
}

// A token too short-lived to cache does not replace the one cached for the
// user's other subject token.
func TestExchange_AShortLivedTokenDoesNotEvictTheCachedOne(t *testing.T) {
	t.Parallel()
	e := newExTokenEndpoint(t, func(form url.Values) (int, any) {
		body := exTokenResponse(exJWT(t, map[string]any{"sub": "alice", "subject": form.Get("subject_token")}))
		if form.Get("subject_token") != exAliceSubject {
			body["expires_in"] = 20
		}
		return http.StatusOK, body
	})
	x := e.exchange(newExClock())
	first, err := x.For(t.Context(), exAlice())
	if err != nil {
		t.Fatal(err)
	}
	other := exAlice()
	other.AccessToken = "another-butler-token-of-alice"
	if _, err := x.For(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	again, err := x.For(t.Context(), exAlice())
	if err != nil || again != first || e.calls.Load() != 2 {
		t.Errorf("%d exchanges (%v): the short-lived token replaced the cached one", e.calls.Load(), err)
	}
}
