package connect_test

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/connect"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/store"
)

// noFollow is c without following redirects (same cookies).
func noFollow(c *http.Client) *http.Client {
	return &http.Client{Jar: c.Jar, Timeout: c.Timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// The whole journey on each backend: sign in, a wrong token is refused
// and stores nothing, the right one links, the page shows status and the
// user's own audit records, unlink deletes, sign out ends the session.
func TestConnect_Journey(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		c := browser(t)
		page := e.signIn(t, c)
		for _, want := range []string{"alice", "not linked", e.jenkins + "user/alice/security/"} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q:\n%s", want, page)
			}
		}
		csrf := csrfOf(t, page)

		resp, body := e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"link"}, "token": {"bob-token"}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "Nothing was stored") || e.linked(t, "alice") {
			t.Fatalf("someone else's token: %d linked=%v\n%s", resp.StatusCode, e.linked(t, "alice"), body)
		}
		resp, body = e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"link"}, "token": {"wrong-token"}})
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "rejected") || e.linked(t, "alice") {
			t.Fatalf("wrong token: %d\n%s", resp.StatusCode, body)
		}
		resp, body = e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"link"}, "token": {jenkinstest.SampleAliceToken}})
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Query().Get("done") != "linked" || !e.linked(t, "alice") {
			t.Fatalf("right token: %d at %s\n%s", resp.StatusCode, resp.Request.URL, body)
		}
		if !strings.Contains(body, ">linked<") || !strings.Contains(body, "Last used</dt><dd>not yet") {
			t.Errorf("status after linking:\n%s", body)
		}

		e.addAudit(t, audit.Record{Time: time.Now(), User: "alice", Tool: "get_job", Resource: "frontend/web-app", Decision: "allow", ClientID: "claude-code"})
		e.addAudit(t, audit.Record{Time: time.Now(), User: "bob", Tool: "secret_tool_of_bob", Decision: "allow"})
		_, body = get(t, c, e.url+connect.Path)
		for _, want := range []string{"get_job", "frontend/web-app", "claude-code"} {
			if !strings.Contains(body, want) {
				t.Errorf("the page lacks the user's call (%q)", want)
			}
		}
		if strings.Contains(body, "secret_tool_of_bob") || strings.Contains(body, "Last used</dt><dd>not yet") {
			t.Errorf("another user's record, or no last use:\n%s", body)
		}

		resp, _ = e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"unlink"}})
		if resp.Request.URL.Query().Get("done") != "unlinked" || e.linked(t, "alice") {
			t.Fatalf("unlink: %s linked=%v", resp.Request.URL, e.linked(t, "alice"))
		}
		resp, body = e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"logout"}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "signed out") {
			t.Fatalf("sign out: %d\n%s", resp.StatusCode, body)
		}
	})
}

// Sign-in uses PKCE S256: the challenge sent to the IdP is the S256 of
// the verifier sent with the code, and a scope of openid, and state and
// nonce are there.
func TestConnect_PKCE(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	e.signIn(t, browser(t))
	e.idp.mu.Lock()
	a, tf := e.idp.authorize, e.idp.tokenForm
	e.idp.mu.Unlock()
	sum := sha256.Sum256([]byte(tf.Get("code_verifier")))
	if a.Get("code_challenge_method") != "S256" || tf.Get("code_verifier") == "" || a.Get("code_challenge") != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("PKCE: authorize %v, token %v", a, tf)
	}
	if a.Get("scope") != "openid" || a.Get("client_id") != clientID || a.Get("redirect_uri") != e.url+connect.CallbackPath ||
		len(a.Get("state")) < 40 || len(a.Get("nonce")) < 40 || a.Get("response_type") != "code" {
		t.Errorf("authorization request: %v", a)
	}
}

// A callback whose state is not this browser's sign-in is refused and
// creates no session; so is one in a browser that started no sign-in.
func TestConnect_State(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		other := "someone-elses-state"
		e.idp.set(func(f *fakeIdP) { f.state = &other })
		c := browser(t)
		resp, body := get(t, c, e.url+connect.Path)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "state mismatch") {
			t.Fatalf("wrong state: %d\n%s", resp.StatusCode, body)
		}
		e.idp.set(func(f *fakeIdP) { f.state = nil })
		// Nothing was signed in: the page starts a new sign-in.
		resp, _ = get(t, noFollow(c), e.url+connect.Path)
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), e.idp.srv.URL) {
			t.Errorf("after a refused state: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}

		// Login CSRF: an attacker's own code and state sent to a victim's
		// browser that never started a sign-in.
		resp, _ = get(t, noFollow(browser(t)), e.url+connect.Path)
		loc, _ := url.Parse(resp.Header.Get("Location"))
		victim := browser(t)
		resp, body = get(t, victim, e.url+connect.CallbackPath+"?code=x&state="+url.QueryEscape(loc.Query().Get("state")))
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(body, "Signed in as") {
			t.Errorf("callback without this browser's sign-in: %d\n%s", resp.StatusCode, body)
		}
	})
}

// The ID token must carry this sign-in's nonce, be for this client (aud),
// from the issuer, unexpired and signed by the issuer's key.
func TestConnect_IDTokenChecks(t *testing.T) {
	t.Parallel()
	_, strange := rsaKeys(t)
	for name, spoil := range map[string]func(f *fakeIdP){
		"nonce":     func(f *fakeIdP) { f.spoil = func(c map[string]any) { c["nonce"] = "another-sign-in" } },
		"no nonce":  func(f *fakeIdP) { f.spoil = func(c map[string]any) { delete(c, "nonce") } },
		"audience":  func(f *fakeIdP) { f.spoil = func(c map[string]any) { c["aud"] = "another-client" } },
		"issuer":    func(f *fakeIdP) { f.spoil = func(c map[string]any) { c["iss"] = "https://evil.example" } },
		"expired":   func(f *fakeIdP) { f.spoil = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() } },
		"signature": func(f *fakeIdP) { f.signWith = strange },
		"no user":   func(f *fakeIdP) { f.spoil = func(c map[string]any) { c["sub"] = "" } },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backends(t)["sqlite"](t))
			e.idp.set(spoil)
			c := browser(t)
			resp, body := get(t, c, e.url+connect.Path)
			if resp.StatusCode != http.StatusUnauthorized || strings.Contains(body, "Signed in as") {
				t.Fatalf("%s: %d\n%s", name, resp.StatusCode, body)
			}
			// No session: the next visit signs in again.
			resp, _ = get(t, noFollow(c), e.url+connect.Path)
			if resp.StatusCode != http.StatusFound {
				t.Errorf("a refused ID token left a session: %d", resp.StatusCode)
			}
		})
	}
}

// The user comes from auth.user_claim of the ID token, or of userinfo when
// the ID token lacks it.
func TestConnect_UserClaimFromUserinfo(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t), func(o *connect.Options) { o.UserClaim = "preferred_username" })
	e.idp.set(func(f *fakeIdP) {
		f.user = map[string]any{"sub": "00u1"}
		f.userinfo = map[string]any{"sub": "00u1", "preferred_username": "alice"}
	})
	page := e.signIn(t, browser(t))
	if !strings.Contains(page, "Signed in as</dt><dd>alice") {
		t.Errorf("sub user:\n%s", page)
	}
}

// Cookie flags exactly as CONTRACT §12, for the login and the session
// cookie.
func TestConnect_CookieFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	c := noFollow(browser(t))
	resp, _ := get(t, c, e.url+connect.Path)
	check := func(what string, resp *http.Response, name string, maxAge int) {
		t.Helper()
		var found bool
		for _, ck := range resp.Cookies() {
			if ck.Name != name {
				continue
			}
			found = true
			raw := resp.Header.Values("Set-Cookie")
			if !ck.HttpOnly || !ck.Secure || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Domain != "" || ck.MaxAge != maxAge {
				t.Errorf("%s cookie %s: %+v (%v)", what, name, ck, raw)
			}
			for _, line := range raw {
				if strings.Contains(strings.ToLower(line), "domain=") {
					t.Errorf("%s: a Domain attribute: %s", what, line)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %s cookie in %v", what, name, resp.Header.Values("Set-Cookie"))
		}
	}
	check("sign-in", resp, "__Host-butler_login", 600)
	// Follow the IdP by hand to the callback.
	resp, _ = get(t, c, resp.Header.Get("Location"))
	resp, _ = get(t, c, resp.Header.Get("Location"))
	check("callback", resp, "__Host-butler_session", int((8 * time.Hour).Seconds()))
	if resp.StatusCode != http.StatusSeeOther {
		t.Errorf("callback: %d", resp.StatusCode)
	}
	for _, ck := range resp.Cookies() {
		if strings.Contains(ck.Value, "s1.") {
			t.Errorf("the cookie carries the store key, not a sealed id: %v", ck)
		}
	}
}

// The cookie names and Secure flag follow public_url.
func TestCookieNames(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]string{
		"https://butler.example.com": "__Host-butler_session",
		"http://127.0.0.1:8080":      "__Host-butler_session",
		"http://[::1]:8080":          "__Host-butler_session",
		"http://localhost:8080":      "__Host-butler_session",
		"http://butler.internal":     "butler_session",
	} {
		if got := connect.SessionCookieName(u); got != want {
			t.Errorf("%s: %s, want %s", u, got, want)
		}
	}
}

// A session lasts 8 h at most, by the page's clock.
func TestConnect_SessionExpires(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		c := browser(t)
		e.signIn(t, c)
		e.clock.Advance(8*time.Hour - time.Minute)
		if resp, _ := get(t, noFollow(c), e.url+connect.Path); resp.StatusCode != http.StatusOK {
			t.Fatalf("before 8 h: %d", resp.StatusCode)
		}
		e.clock.Advance(time.Minute)
		if resp, _ := get(t, noFollow(c), e.url+connect.Path); resp.StatusCode != http.StatusFound {
			t.Errorf("after 8 h the session must be over: %d", resp.StatusCode)
		}
	})
}

// POSTs need public_url's Origin: absent, "null" and others are refused
// before anything changes.
func TestConnect_Origin(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		c := browser(t)
		csrf := csrfOf(t, e.signIn(t, c))
		form := url.Values{"csrf": {csrf}, "action": {"link"}, "token": {jenkinstest.SampleAliceToken}}
		for _, origin := range []string{"", "null", "https://evil.example", strings.Replace(e.url, "127.0.0.1", "localhost", 1)} {
			resp, _ := e.post(t, c, origin, form)
			if resp.StatusCode != http.StatusForbidden || e.linked(t, "alice") {
				t.Errorf("Origin %q: %d linked=%v", origin, resp.StatusCode, e.linked(t, "alice"))
			}
		}
		if resp, _ := e.post(t, c, e.url, form); resp.StatusCode != http.StatusOK || !e.linked(t, "alice") {
			t.Errorf("own Origin: %d", resp.StatusCode)
		}
	})
}

// Every POST needs the CSRF token of its own session: none, a wrong one
// and another session's are refused; so is a cookie that was tampered
// with, or that belongs to a session that signed out.
func TestConnect_CSRFAndForeignSessions(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		alice := browser(t)
		e.signIn(t, alice)
		bob := browser(t)
		e.idp.set(func(f *fakeIdP) { f.user = map[string]any{"sub": "bob"} })
		bobCSRF := csrfOf(t, e.signIn(t, bob))
		for name, tok := range map[string]string{"none": "", "wrong": "AAAA", "bob's": bobCSRF} {
			resp, _ := e.post(t, alice, e.url, url.Values{"csrf": {tok}, "action": {"link"}, "token": {jenkinstest.SampleAliceToken}})
			if resp.StatusCode != http.StatusForbidden || e.linked(t, "alice") {
				t.Errorf("CSRF %s: %d", name, resp.StatusCode)
			}
		}

		u, _ := url.Parse(e.url)
		ck := bob.Jar.Cookies(u)[0]
		tampered := browser(t)
		b := []byte(ck.Value)
		b[len(b)/2] ^= 1
		tampered.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: string(b), Path: "/"}})
		if resp, _ := get(t, noFollow(tampered), e.url+connect.Path); resp.StatusCode != http.StatusFound {
			t.Errorf("tampered cookie: %d", resp.StatusCode)
		}

		// Bob signs out; his old cookie, replayed, is no session.
		if resp, _ := e.post(t, bob, e.url, url.Values{"csrf": {bobCSRF}, "action": {"logout"}}); resp.StatusCode != http.StatusOK {
			t.Fatalf("sign out: %d", resp.StatusCode)
		}
		replay := browser(t)
		replay.Jar.SetCookies(u, []*http.Cookie{{Name: ck.Name, Value: ck.Value, Path: "/"}})
		if resp, _ := get(t, noFollow(replay), e.url+connect.Path); resp.StatusCode != http.StatusFound {
			t.Errorf("a signed-out session's cookie: %d", resp.StatusCode)
		}
		if resp, _ := e.post(t, replay, e.url, url.Values{"csrf": {bobCSRF}, "action": {"link"}, "token": {jenkinstest.SampleBobToken}}); resp.StatusCode != http.StatusForbidden || e.linked(t, "bob") {
			t.Errorf("POST with a signed-out session: %d", resp.StatusCode)
		}
	})
}

// The pasted token is never in a page, a redirect or the log, whether
// Jenkins accepts it or not.
func TestConnect_TokenNeverEchoedOrLogged(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	c := browser(t)
	csrf := csrfOf(t, e.signIn(t, c))
	var seen []string
	for _, tok := range []string{"wrong-token-0123456789abcdef", jenkinstest.SampleAliceToken} {
		resp, body := e.post(t, noFollow(c), e.url, url.Values{"csrf": {csrf}, "action": {"link"}, "token": {tok}})
		seen = append(seen, body, resp.Header.Get("Location"))
		_, body = get(t, c, e.url+connect.Path)
		seen = append(seen, body)
		for _, s := range append(seen, e.log.String()) {
			if strings.Contains(s, tok) {
				t.Errorf("the token %q shows:\n%s", tok, s)
			}
		}
	}
	if !e.linked(t, "alice") {
		t.Error("the right token was not linked")
	}
}

// A session made on one replica works on another over the same store.
func TestConnect_TwoReplicas(t *testing.T) {
	t.Parallel()
	forEachStore(t, func(t *testing.T, st store.Store) {
		e := newEnv(t, st)
		c := browser(t)
		csrf := csrfOf(t, e.signIn(t, c))
		// Replica B: another handler, same store and key, same public URL.
		e.serving.Store(http.Handler(e.newHandler(t, e.jenkins)))
		if _, body := get(t, c, e.url+connect.Path); !strings.Contains(body, "Signed in as</dt><dd>alice") {
			t.Fatalf("replica B does not know the session:\n%s", body)
		}
		if resp, _ := e.post(t, c, e.url, url.Values{"csrf": {csrf}, "action": {"link"}, "token": {jenkinstest.SampleAliceToken}}); resp.StatusCode != http.StatusOK || !e.linked(t, "alice") {
			t.Errorf("replica B refuses replica A's CSRF token: %d", resp.StatusCode)
		}
	})
}

// The page forbids framing and scripts and keeps the Origin of its POSTs.
func TestConnect_SecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	c := browser(t)
	e.signIn(t, c)
	resp, body := get(t, c, e.url+connect.Path)
	h := resp.Header
	csp := h.Get("Content-Security-Policy")
	if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") != "same-origin" || !strings.Contains(csp, "default-src 'none'") ||
		!strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "script-src") ||
		h.Get("Cache-Control") != "no-store" {
		t.Errorf("headers: %v", h)
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
}

// The page's only stylesheet is the one the CSP allows by hash, so a
// browser applies it with no 'unsafe-inline'.
func TestConnect_StyleMatchesCSPHash(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	resp, body := get(t, browser(t), e.url+connect.Path)
	_, rest, _ := strings.Cut(body, "<style>")
	css, _, ok := strings.Cut(rest, "</style>")
	if !ok {
		t.Fatalf("no style element:\n%s", body)
	}
	sum := sha256.Sum256([]byte(css))
	want := "style-src 'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, want) {
		t.Errorf("CSP %q does not allow the page's style (%s)", csp, want)
	}
}

// While the IdP is down, visitors get "unavailable" without each costing
// it a discovery request; once it is back (after the retry interval) the
// page signs in.
func TestConnect_DiscoveryRetryBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, backends(t)["sqlite"](t))
	e.idp.set(func(f *fakeIdP) { f.down = true })
	for range 5 {
		if resp, _ := get(t, noFollow(browser(t)), e.url+connect.Path); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("IdP down: %d", resp.StatusCode)
		}
	}
	e.idp.mu.Lock()
	n := e.idp.discoveries
	e.idp.down = false
	e.idp.mu.Unlock()
	if n != 1 {
		t.Errorf("%d discovery requests for 5 visitors within the retry interval, want 1", n)
	}
	e.clock.Advance(5 * time.Second)
	e.signIn(t, browser(t))
}
