package connect_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/jackc/pgx/v5"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/connect"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/store"
)

const clientID = "butler-web"

var (
	keyOnce            sync.Once
	idpKey, strangeKey *rsa.PrivateKey
)

func rsaKeys(t *testing.T) (*rsa.PrivateKey, *rsa.PrivateKey) {
	keyOnce.Do(func() {
		var err error
		if idpKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if strangeKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return idpKey, strangeKey
}

// fakeIdP is an OpenID provider whose answers a test can spoil one at a
// time (a real one, the development IdP, never misbehaves). It signs in
// whoever it is told to, at once, and checks PKCE S256 like a real one.
type fakeIdP struct {
	t   *testing.T
	srv *httptest.Server
	key *rsa.PrivateKey

	mu sync.Mutex
	// user is the next sign-in's claims (besides iss, aud, exp, nonce).
	user map[string]any
	// spoil changes the ID token's claims before signing.
	spoil func(claims map[string]any)
	// signWith signs the ID token with another key.
	signWith *rsa.PrivateKey
	// state replaces the state of the redirect back.
	state *string
	// userinfo answers /userinfo.
	userinfo map[string]any
	// checkPKCE refuses a code whose verifier does not match.
	skipPKCE bool

	// down answers discovery with 503; discoveries counts its requests.
	down        bool
	discoveries int

	authorize url.Values // the last authorization request
	tokenForm url.Values // the last token request
	codes     map[string]url.Values
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	k, _ := rsaKeys(t)
	f := &fakeIdP{t: t, key: k, user: map[string]any{"sub": "alice"}, codes: map[string]url.Values{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.discoveries++
		down := f.down
		f.mu.Unlock()
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, map[string]any{
			"issuer":                                f.srv.URL,
			"authorization_endpoint":                f.srv.URL + "/authorize",
			"token_endpoint":                        f.srv.URL + "/token",
			"jwks_uri":                              f.srv.URL + "/jwks",
			"userinfo_endpoint":                     f.srv.URL + "/userinfo",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &f.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		f.mu.Lock()
		f.authorize = q
		code := strings.ToLower(rand.Text())
		f.codes[code] = q
		state := q.Get("state")
		if f.state != nil {
			state = *f.state
		}
		f.mu.Unlock()
		back := q.Get("redirect_uri") + "?" + url.Values{"code": {code}, "state": {state}}.Encode()
		http.Redirect(w, r, back, http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f.mu.Lock()
		defer f.mu.Unlock()
		f.tokenForm = r.PostForm
		q, ok := f.codes[r.PostForm.Get("code")]
		delete(f.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok:
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		case !f.skipPKCE && (q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:])):
			http.Error(w, `{"error":"invalid_grant","error_description":"PKCE"}`, http.StatusBadRequest)
			return
		}
		claims := map[string]any{"iss": f.srv.URL, "aud": clientID, "exp": time.Now().Add(5 * time.Minute).Unix(),
			"iat": time.Now().Unix(), "nonce": q.Get("nonce")}
		for k, v := range f.user {
			claims[k] = v
		}
		if f.spoil != nil {
			f.spoil(claims)
		}
		key := f.key
		if f.signWith != nil {
			key = f.signWith
		}
		writeJSON(w, map[string]any{"access_token": "at-" + rand.Text(), "token_type": "Bearer", "expires_in": 300, "id_token": sign(f.t, key, claims)})
	})
	mux.HandleFunc("GET /userinfo", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, f.userinfo)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeIdP) set(fn func(f *fakeIdP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func sign(t *testing.T, key *rsa.PrivateKey, claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// syncBuffer collects the log.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is Butler's /connect page over a store, the fake IdP and the Jenkins
// simulator.
type env struct {
	idp     *fakeIdP
	st      store.Store
	sim     *jenkinstest.Server
	srv     *httptest.Server
	url     string
	clock   *clock
	log     *syncBuffer
	handler *connect.Handler
	jenkins string
	opts    []func(*connect.Options)
	// serving is the replica that answers (TestConnect_TwoReplicas swaps
	// it).
	serving atomic.Value
}

var sessionKey = bytes.Repeat([]byte("k"), 32)

// backends are the stores the page runs on: SQLite always, PostgreSQL
// when BUTLER_TEST_POSTGRES_DSN names a server.
func backends(t *testing.T) map[string]func(t *testing.T) store.Store {
	return map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := store.Open(t.Context(), "sqlite:"+t.TempDir()+"/butler.db")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := store.Open(t.Context(), postgresSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

// postgresSchema is a DSN with an empty schema of its own, dropped at the
// end, or skips t.
func postgresSchema(t *testing.T) string {
	base := os.Getenv("BUTLER_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("set BUTLER_TEST_POSTGRES_DSN to run the /connect tests on PostgreSQL")
	}
	schema := "butler_connect_" + strings.ToLower(rand.Text()[:16])
	exec := func(stmt string) error {
		conn, err := pgx.Connect(context.Background(), base)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), stmt)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec("DROP SCHEMA " + schema + " CASCADE") })
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// forEachStore runs fn on each backend.
func forEachStore(t *testing.T, fn func(t *testing.T, st store.Store)) {
	for name, open := range backends(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			fn(t, open(t))
		})
	}
}

// newEnv serves the page over st at a loopback URL.
func newEnv(t *testing.T, st store.Store, opts ...func(*connect.Options)) *env {
	t.Helper()
	e := &env{idp: newFakeIdP(t), st: st, sim: jenkinstest.Sample(nil), clock: &clock{t: time.Now()}, log: &syncBuffer{}, opts: opts}
	jsrv := httptest.NewServer(e.sim)
	t.Cleanup(jsrv.Close)
	e.jenkins = jsrv.URL + "/"
	e.srv = httptest.NewUnstartedServer(nil)
	e.url = "http://" + e.srv.Listener.Addr().String()
	e.handler = e.newHandler(t, jsrv.URL+"/")
	e.serving.Store(http.Handler(e.handler))
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.serving.Load().(http.Handler).ServeHTTP(w, r)
	})
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	return e
}

// newHandler is one more replica of the page over the same store.
func (e *env) newHandler(t *testing.T, jenkinsURL string) *connect.Handler {
	t.Helper()
	jc, err := jenkins.New(jenkinsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	vault, err := credentials.NewVault([32]byte{1, 2, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	stored := credentials.NewStored(e.st, vault, nil, logger)
	linker := credentials.NewLinker(jc, stored, func(u string) (string, error) { return u, nil })
	o := connect.Options{
		PublicURL: e.url, Issuer: e.idp.srv.URL, ClientID: clientID, ClientSecret: "web-secret",
		SessionKey: sessionKey, UserClaim: "sub", JenkinsURL: jenkinsURL,
		Store: e.st, Linker: linker, Logger: logger, Now: e.clock.Now,
	}
	for _, f := range e.opts {
		f(&o)
	}
	h, err := connect.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// browser is a cookie-keeping HTTP client that follows redirects, as a
// browser does.
func browser(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

// get fetches url and returns the status and body.
func get(t *testing.T, c *http.Client, u string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// signIn signs the browser in through the fake IdP and returns the page.
func (e *env) signIn(t *testing.T, c *http.Client) string {
	t.Helper()
	resp, body := get(t, c, e.url+connect.Path)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != connect.Path || !strings.Contains(body, "Signed in as") {
		t.Fatalf("sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
	}
	return body
}

// csrfOf finds the page's CSRF token.
func csrfOf(t *testing.T, page string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="csrf" value="`)
	if !ok {
		t.Fatalf("no CSRF token in the page:\n%s", page)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// post submits the page's form with the given Origin ("" for none).
func (e *env) post(t *testing.T, c *http.Client, origin string, form url.Values) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.url+connect.Path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// linked reports whether user has a stored credential.
func (e *env) linked(t *testing.T, user string) bool {
	t.Helper()
	_, err := e.st.GetCredential(context.Background(), user)
	return err == nil
}

// addAudit stores one audit record for user.
func (e *env) addAudit(t *testing.T, rec audit.Record) {
	t.Helper()
	if err := e.st.AppendAudit(context.Background(), []audit.Record{rec}); err != nil {
		t.Fatal(err)
	}
}
