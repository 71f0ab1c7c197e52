package devidp_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"

	"github.com/butler-mcp/butler/internal/devidp"
)

func TestAuthorizationCode_PKCEAndResource_IssuesVerifiableJWT(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	clientID := registerPublic(t, iss)
	cfg := oauthConfig(iss, clientID, "", "openid", "profile", "jenkins:read", "jenkins:build")
	verifier := oauth2.GenerateVerifier()

	// The login page lists every demo user.
	f, loc := newBrowser(t, iss).open(cfg.AuthCodeURL("s1", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", jenkinsResource)))
	if loc != nil {
		t.Fatalf("redirected without login: %s", loc)
	}
	if diff := cmp.Diff([]string{"alice", "bob", "carol"}, f.users); diff != "" {
		t.Errorf("login page users (-want +got):\n%s", diff)
	}
	for _, want := range []string{"Alice Admin", "admins, dev", "Carol &lt;Guest&gt;", "Test MCP client", jenkinsResource} {
		if !strings.Contains(f.body, want) {
			t.Errorf("login page lacks %q", want)
		}
	}

	code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("resource", jenkinsResource))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", jenkinsResource))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	claims, hdr := verifyJWT(t, iss, tok.AccessToken)
	if hdr.Algorithm != "RS256" || hdr.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("header alg=%q typ=%v, want RS256 at+jwt", hdr.Algorithm, hdr.ExtraHeaders["typ"])
	}
	want := map[string]any{
		"iss":                iss,
		"sub":                "alice",
		"aud":                jenkinsResource,
		"scope":              "openid profile jenkins:read jenkins:build",
		"client_id":          clientID,
		"groups":             []any{"admins", "dev"},
		"preferred_username": "alice",
		"name":               "Alice Admin",
		"email":              "alice@example.test",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}
	for _, k := range []string{"exp", "iat", "nbf", "jti", "auth_time"} {
		if claims[k] == nil {
			t.Errorf("claim %s missing", k)
		}
	}
	if exp, iat := claims["exp"].(float64), claims["iat"].(float64); exp-iat != 15*60 {
		t.Errorf("exp-iat = %v, want 900 (default AccessTTL)", exp-iat)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token for a client registered with the refresh_token grant")
	}
	// The ID token is for the client, not the resource.
	idt, _ := tok.Extra("id_token").(string)
	if idt == "" {
		t.Fatal("no id_token with scope openid")
	}
	idClaims, _ := verifyJWT(t, iss, idt)
	if aud := idClaims["aud"]; !slices.Contains(strs(aud), clientID) && aud != clientID {
		t.Errorf("id_token aud = %v, want %q", aud, clientID)
	}
}

func TestAuthorizationCode_DefaultResourceWhenNoneRequested(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	v := oauth2.GenerateVerifier()
	code := authCode(t, cfg, iss, "bob", oauth2.S256ChallengeOption(v))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	claims, _ := verifyJWT(t, iss, tok.AccessToken)
	if claims["aud"] != mcpResource || claims["scope"] != "jenkins:read" || claims["sub"] != "bob" {
		t.Errorf("aud=%v scope=%v sub=%v", claims["aud"], claims["scope"], claims["sub"])
	}
	if tok.Extra("id_token") != nil && tok.Extra("id_token") != "" {
		t.Errorf("id_token issued without scope openid")
	}
}

func TestAuthorizationCode_PKCE(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	clientID := registerPublic(t, iss)
	cfg := oauthConfig(iss, clientID, "", "jenkins:read")

	t.Run("wrong verifier refused", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
		_, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("missing verifier refused", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
		_, err := cfg.Exchange(ctxT(t), code)
		wantOAuthError(t, err, "invalid_request")
	})
	t.Run("code is single use", func(t *testing.T) {
		v := oauth2.GenerateVerifier()
		code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
		if _, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v)); err != nil {
			t.Fatalf("first exchange: %v", err)
		}
		_, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
		wantOAuthError(t, err, "invalid_grant")
	})

	tests := []struct {
		name string
		opts []oauth2.AuthCodeOption
	}{
		{"plain refused", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"),
			oauth2.SetAuthURLParam("code_challenge_method", "plain"),
		}},
		{"challenge without method (plain) refused", []oauth2.AuthCodeOption{
			oauth2.SetAuthURLParam("code_challenge", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopq"),
		}},
		{"public client without PKCE refused", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, loc := newBrowser(t, iss).open(cfg.AuthCodeURL("s", tt.opts...))
			if loc == nil {
				t.Fatal("the login page was shown; want an error redirect")
			}
			if !strings.HasPrefix(loc.String(), redirectURI) || loc.Query().Get("error") != "invalid_request" || loc.Query().Get("state") != "s" {
				t.Errorf("redirect = %s, want %s?error=invalid_request&state=s", loc, redirectURI)
			}
		})
	}
}

func TestAuthorizationCode_UnknownResourceIsInvalidTarget(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	v := oauth2.GenerateVerifier()

	for _, res := range [][]string{{"http://127.0.0.1:9999/other"}, {mcpResource, jenkinsResource}} {
		q := url.Values{"resource": res}
		authURL := cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)) + "&" + q.Encode()
		_, loc := newBrowser(t, iss).open(authURL)
		if loc == nil || loc.Query().Get("error") != "invalid_target" {
			t.Errorf("resource %v: redirect %v, want error=invalid_target", res, loc)
		}
	}

	// At the token endpoint, the resource must be the one authorized.
	code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", mcpResource))
	_, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", jenkinsResource))
	wantOAuthError(t, err, "invalid_target")
}

func TestAuthorizationCode_RedirectURIMatching(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	clientID := registerPublic(t, iss, "http://127.0.0.1:1111/cb", "https://app.example.test/cb", "com.example.app:/oauth")
	v := oauth2.GenerateVerifier()

	tests := []struct {
		redirect string
		ok       bool
	}{
		{"http://127.0.0.1:1111/cb", true},
		{"http://127.0.0.1:45678/cb", true}, // RFC 8252 §7.3: any port on loopback
		{"https://app.example.test/cb", true},
		{"com.example.app:/oauth", true},
		{"http://127.0.0.1:45678/other", false},
		{"http://localhost:1111/cb", false}, // same port, different host
		{"https://app.example.test:8443/cb", false},
		{"https://app.example.test/cb/x", false},
		{"http://127.0.0.1:1111/cb?x=1", false},
	}
	for _, tt := range tests {
		cfg := oauthConfig(iss, clientID, "", "jenkins:read")
		cfg.RedirectURL = tt.redirect
		b := newBrowser(t, iss)
		resp, err := b.c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if tt.ok && resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d, want the login page", tt.redirect, resp.StatusCode)
		}
		// A refused redirect URI is never redirected to.
		if !tt.ok && (resp.StatusCode != http.StatusBadRequest || redirectedAway(resp) != nil) {
			t.Errorf("%s: status %d, want 400 without redirect", tt.redirect, resp.StatusCode)
		}
	}

	// The full flow with a port other than the registered one.
	cfg := oauthConfig(iss, clientID, "", "jenkins:read")
	cfg.RedirectURL = "http://127.0.0.1:45678/cb"
	code := authCode(t, cfg, iss, "bob", oauth2.S256ChallengeOption(v))
	if _, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v)); err != nil {
		t.Fatalf("Exchange: %v", err)
	}
}

func TestAuthorizationCode_CancelReturnsAccessDenied(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	b := newBrowser(t, iss)
	f, _ := b.open(cfg.AuthCodeURL("s9", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	loc := b.submit(f, "cancel", "1")
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "s9" {
		t.Errorf("cancel redirect = %s", loc)
	}
}

func TestLogin_RefusesFormWithoutBrowserCookie(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	f, _ := newBrowser(t, iss).open(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	// Another browser (no cookie) replays the form.
	form := url.Values{"id": {f.hidden.Get("id")}, "csrf": {f.hidden.Get("csrf")}, "user": {"alice"}}
	resp, err := http.PostForm(iss+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
}

func TestRefreshToken_RotatesAndKeepsResource(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	clientID := registerPublic(t, iss)
	cfg := oauthConfig(iss, clientID, "", "jenkins:read", "jenkins:build", "offline_access")
	v := oauth2.GenerateVerifier()
	code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", jenkinsResource))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", jenkinsResource))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	first := tok.RefreshToken
	if first == "" {
		t.Fatal("no refresh token")
	}

	// Refresh without resource (as x/oauth2 does): the original resource stays.
	status, m := postForm(t, iss+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {first}, "client_id": {clientID},
	}, "", "")
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, m)
	}
	second, _ := m["refresh_token"].(string)
	if second == "" || second == first {
		t.Fatalf("refresh token not rotated: %q", second)
	}
	claims, _ := verifyJWT(t, iss, m["access_token"].(string))
	if claims["aud"] != jenkinsResource || claims["sub"] != "alice" || claims["scope"] != "jenkins:read jenkins:build offline_access" {
		t.Errorf("refreshed token aud=%v sub=%v scope=%v", claims["aud"], claims["sub"], claims["scope"])
	}

	// Narrower scope is fine; wider scope and another resource are not.
	status, m = postForm(t, iss+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {second}, "client_id": {clientID}, "scope": {"jenkins:read"},
	}, "", "")
	if status != http.StatusOK {
		t.Fatalf("narrow refresh: %d %v", status, m)
	}
	third := m["refresh_token"].(string)
	if c, _ := verifyJWT(t, iss, m["access_token"].(string)); c["scope"] != "jenkins:read" {
		t.Errorf("narrowed scope = %v", c["scope"])
	}
	for _, tt := range []struct {
		form url.Values
		want string
	}{
		{url.Values{"scope": {"jenkins:read admin"}}, "invalid_scope"},
		{url.Values{"resource": {mcpResource}}, "invalid_target"},
	} {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {third}, "client_id": {clientID}}
		for k, v := range tt.form {
			form[k] = v
		}
		if status, m := postForm(t, iss+"/token", form, "", ""); status != http.StatusBadRequest || m["error"] != tt.want {
			t.Errorf("%v: %d %v, want %s", tt.form, status, m, tt.want)
		}
	}

	// Reusing a spent refresh token revokes the chain, including the live one.
	if status, m := postForm(t, iss+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {first}, "client_id": {clientID},
	}, "", ""); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("reuse: %d %v", status, m)
	}
	if status, m := postForm(t, iss+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {third}, "client_id": {clientID},
	}, "", ""); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("live token after reuse: %d %v, want invalid_grant", status, m)
	}
}

func TestRefreshToken_ThroughOAuth2TokenSource(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	v := oauth2.GenerateVerifier()
	code := authCode(t, cfg, iss, "bob", oauth2.S256ChallengeOption(v))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	tok.Expiry = tok.Expiry.Add(-24 * time.Hour) // force a refresh
	fresh, err := cfg.TokenSource(ctxT(t), tok).Token()
	if err != nil {
		t.Fatalf("refresh via TokenSource: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Error("TokenSource did not get new tokens")
	}
}

// wantOAuthError checks err is a token endpoint error with that code.
func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v, want an OAuth error %s", err, code)
	}
	if re.ErrorCode != code {
		t.Errorf("error = %q (%s), want %q", re.ErrorCode, re.ErrorDescription, code)
	}
}

func TestClock_CodesAndRefreshTokensExpireOnTheInjectedClock(t *testing.T) {
	t.Parallel()
	var now atomic.Int64
	now.Store(time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC).Unix())
	p := newProvider(t, func(o *devidp.Options) {
		o.Now = func() time.Time { return time.Unix(now.Load(), 0) }
		o.RefreshTTL = time.Hour
	})
	iss := p.Issuer()
	clientID := registerPublic(t, iss)
	cfg := oauthConfig(iss, clientID, "", "jenkins:read")
	v := oauth2.GenerateVerifier()

	code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
	now.Add(61) // codes live one minute
	_, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
	wantOAuthError(t, err, "invalid_grant")

	code = authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := verifyJWT(t, iss, tok.AccessToken)
	if claims["iat"] != float64(now.Load()) {
		t.Errorf("iat = %v, want the injected clock %d", claims["iat"], now.Load())
	}
	now.Add(int64(time.Hour/time.Second) + 1)
	status, m := postForm(t, iss+"/token", url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {clientID},
	}, "", "")
	if status != http.StatusBadRequest || m["error"] != "invalid_grant" {
		t.Errorf("expired refresh token: %d %v", status, m)
	}
}

func TestAuthorize_PromptNoneIsLoginRequired(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	cfg := oauthConfig(iss, registerPublic(t, iss), "", "jenkins:read")
	_, loc := newBrowser(t, iss).open(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("prompt", "none")))
	if loc == nil || loc.Query().Get("error") != "login_required" {
		t.Errorf("redirect = %v, want error=login_required", loc)
	}
}
