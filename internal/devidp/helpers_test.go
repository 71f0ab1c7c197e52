package devidp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/butler-mcp/butler/internal/devidp"
)

const (
	mcpResource     = "http://127.0.0.1:8080/mcp"
	jenkinsResource = "http://127.0.0.1:8081/jenkins"
	// redirectURI is a loopback callback nobody listens on: the test browser
	// stops at the redirect and reads the code from the Location header.
	redirectURI = "http://127.0.0.1:33333/callback"
)

var testUsers = []devidp.User{
	{ID: "alice", Name: "Alice Admin", Email: "alice@example.test", Groups: []string{"admins", "dev"}},
	{ID: "bob", Name: "Bob Builder", Groups: []string{"dev"}},
	{ID: "carol", Name: "Carol <Guest>"},
}

// newProvider starts a provider on a free loopback port.
func newProvider(t *testing.T, mutate ...func(*devidp.Options)) *devidp.Provider {
	t.Helper()
	opts := devidp.Options{
		Users:     testUsers,
		Resources: []string{mcpResource, jenkinsResource},
		Scopes:    []string{"jenkins:read", "jenkins:build"},
	}
	for _, m := range mutate {
		m(&opts)
	}
	p, err := devidp.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := p.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// metadata fetches a discovery document as a JSON object.
func metadata(t *testing.T, issuer, path string) map[string]any {
	t.Helper()
	resp, err := http.Get(issuer + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d", path, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: content type %q", path, ct)
	}
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return m
}

// jwks fetches the provider's key set over HTTP.
func jwks(t *testing.T, issuer string) jose.JSONWebKeySet {
	t.Helper()
	md := metadata(t, issuer, "/.well-known/oauth-authorization-server")
	resp, err := http.Get(md["jwks_uri"].(string))
	if err != nil {
		t.Fatalf("GET jwks: %v", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("decode jwks: %v", err)
	}
	return set
}

func kids(set jose.JSONWebKeySet) []string {
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.KeyID)
	}
	return out
}

// verifyJWT checks token against the JWKS fetched over HTTP, as a resource
// server would, and returns its claims and header.
func verifyJWT(t *testing.T, issuer, token string) (map[string]any, jose.Header) {
	t.Helper()
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatalf("parse JWT: %v", err)
	}
	hdr := jws.Signatures[0].Header
	set := jwks(t, issuer)
	keys := set.Key(hdr.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %q: %d keys in JWKS", hdr.KeyID, len(keys))
	}
	payload, err := jws.Verify(keys[0].Key)
	if err != nil {
		t.Fatalf("verify JWT: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	return claims, hdr
}

// oauthConfig is an x/oauth2 client of the provider.
func oauthConfig(issuer, clientID, secret string, scopes ...string) *oauth2.Config {
	style := oauth2.AuthStyleInParams
	if secret != "" {
		style = oauth2.AuthStyleInHeader
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: secret,
		Endpoint: oauth2.Endpoint{
			AuthURL:   issuer + "/authorize",
			TokenURL:  issuer + "/token",
			AuthStyle: style,
		},
		RedirectURL: redirectURI,
		Scopes:      scopes,
	}
}

// browser is a cookie-keeping HTTP client that stops at the first redirect
// leaving the provider, as a real browser hands the code to the client there.
type browser struct {
	t      *testing.T
	issuer *url.URL
	c      *http.Client
}

func newBrowser(t *testing.T, issuer string) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	iu, _ := url.Parse(issuer)
	b := &browser{t: t, issuer: iu}
	b.c = &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != iu.Host {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b
}

var (
	formRE   = regexp.MustCompile(`<form method="post" action="([^"]*)">`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
	userRE   = regexp.MustCompile(`<button type="submit" name="user" value="([^"]*)">`)
)

// loginForm is the parsed login page.
type loginForm struct {
	action string
	hidden url.Values
	users  []string
	body   string
}

// open GETs authURL and returns the login page, or, if the provider
// redirected away (an error for the client), that redirect.
func (b *browser) open(authURL string) (*loginForm, *url.URL) {
	b.t.Helper()
	resp, err := b.c.Get(authURL)
	if err != nil {
		b.t.Fatalf("GET authorize: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if loc := redirectedAway(resp); loc != nil {
		return nil, loc
	}
	if resp.StatusCode != http.StatusOK {
		b.t.Fatalf("authorize: status %d: %s", resp.StatusCode, body)
	}
	return parseLogin(b.t, string(body)), nil
}

func parseLogin(t *testing.T, body string) *loginForm {
	t.Helper()
	m := formRE.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no login form in page:\n%s", body)
	}
	f := &loginForm{action: html.UnescapeString(m[1]), hidden: url.Values{}, body: body}
	for _, h := range hiddenRE.FindAllStringSubmatch(body, -1) {
		f.hidden.Set(html.UnescapeString(h[1]), html.UnescapeString(h[2]))
	}
	for _, u := range userRE.FindAllStringSubmatch(body, -1) {
		f.users = append(f.users, html.UnescapeString(u[1]))
	}
	return f
}

// submit posts the form as a click on button name=value would, and returns
// where the browser ends up outside the provider.
func (b *browser) submit(f *loginForm, name, value string) *url.URL {
	b.t.Helper()
	form := url.Values{}
	for k, v := range f.hidden {
		form[k] = v
	}
	form.Set(name, value)
	action, err := b.issuer.Parse(f.action)
	if err != nil {
		b.t.Fatal(err)
	}
	resp, err := b.c.PostForm(action.String(), form)
	if err != nil {
		b.t.Fatalf("POST login: %v", err)
	}
	defer resp.Body.Close()
	loc := redirectedAway(resp)
	if loc == nil {
		body, _ := io.ReadAll(resp.Body)
		b.t.Fatalf("login: status %d, no redirect to the client: %s", resp.StatusCode, body)
	}
	return loc
}

// login runs the whole browser part: open, pick user, return the redirect.
func (b *browser) login(authURL, user string) *url.URL {
	b.t.Helper()
	f, loc := b.open(authURL)
	if loc != nil {
		b.t.Fatalf("authorize redirected to the client without login: %s", loc)
	}
	return b.submit(f, "user", user)
}

func redirectedAway(resp *http.Response) *url.URL {
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		return nil
	}
	loc, err := resp.Location()
	if err != nil {
		return nil
	}
	return loc
}

// codeFrom checks the redirect carries a code and the state.
func codeFrom(t *testing.T, loc *url.URL, state string) string {
	t.Helper()
	q := loc.Query()
	if e := q.Get("error"); e != "" {
		t.Fatalf("authorization error %s: %s", e, q.Get("error_description"))
	}
	if got := q.Get("state"); got != state {
		t.Fatalf("state = %q, want %q", got, state)
	}
	code := q.Get("code")
	if code == "" {
		t.Fatalf("no code in %s", loc)
	}
	return code
}

// postForm posts to the token endpoint and decodes the JSON answer.
func postForm(t *testing.T, endpoint string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	body, _ := io.ReadAll(resp.Body)
	if len(bytes.TrimSpace(body)) == 0 {
		return resp.StatusCode, nil // e.g. a revocation
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("POST %s: status %d, not JSON: %s", endpoint, resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// postJSON posts v and decodes the JSON answer.
func postJSON(t *testing.T, endpoint string, v any) (int, map[string]any) {
	t.Helper()
	b, _ := json.Marshal(v)
	resp, err := http.Post(endpoint, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", endpoint, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("POST %s: status %d, not JSON: %s", endpoint, resp.StatusCode, body)
	}
	return resp.StatusCode, m
}

// registerPublic registers a public client with DCR and returns its id.
func registerPublic(t *testing.T, issuer string, redirectURIs ...string) string {
	t.Helper()
	if len(redirectURIs) == 0 {
		redirectURIs = []string{redirectURI}
	}
	status, m := postJSON(t, issuer+"/register", map[string]any{
		"redirect_uris":              redirectURIs,
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"client_name":                "Test MCP client",
	})
	if status != http.StatusCreated {
		t.Fatalf("register: status %d: %v", status, m)
	}
	return m["client_id"].(string)
}

// authCode runs the authorization request through the browser for user and
// returns the code; opts add request parameters.
func authCode(t *testing.T, cfg *oauth2.Config, issuer, user string, opts ...oauth2.AuthCodeOption) string {
	t.Helper()
	state := "st-" + user
	loc := newBrowser(t, issuer).login(cfg.AuthCodeURL(state, opts...), user)
	return codeFrom(t, loc, state)
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func strs(v any) []string {
	a, _ := v.([]any)
	out := []string{}
	for _, x := range a {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
