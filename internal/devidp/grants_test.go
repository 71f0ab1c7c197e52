package devidp_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/butler-mcp/butler/internal/devidp"
)

func TestClientCredentials(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	if err := p.CreateClient("ci-script", "s3cret", []string{"jenkins:read"}); err != nil {
		t.Fatalf("CreateClient: %v", err)
	}

	cc := &clientcredentials.Config{ClientID: "ci-script", ClientSecret: "s3cret", TokenURL: iss + "/token",
		EndpointParams: url.Values{"resource": {jenkinsResource}}}
	tok, err := cc.Token(ctxT(t))
	if err != nil {
		t.Fatalf("Token: %v", err)
	}
	claims, _ := verifyJWT(t, iss, tok.AccessToken)
	want := map[string]any{"sub": "ci-script", "client_id": "ci-script", "aud": jenkinsResource, "scope": "jenkins:read", "groups": []any{}}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}

	tests := []struct {
		name   string
		form   url.Values
		secret string
		status int
		want   string
	}{
		{"wrong secret", url.Values{}, "nope", http.StatusBadRequest, "invalid_client"},
		{"scope not allowed", url.Values{"scope": {"jenkins:build"}}, "s3cret", http.StatusBadRequest, "invalid_scope"},
		{"unknown resource", url.Values{"resource": {"http://127.0.0.1:1/x"}}, "s3cret", http.StatusBadRequest, "invalid_target"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}}
			for k, v := range tt.form {
				form[k] = v
			}
			status, m := postForm(t, iss+"/token", form, "ci-script", tt.secret)
			if m["error"] != tt.want {
				t.Errorf("got %d %v, want %s", status, m, tt.want)
			}
		})
	}

	// A public DCR client cannot use the grant.
	pub := registerPublic(t, iss)
	if _, m := postForm(t, iss+"/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {pub}}, "", ""); m["error"] == nil {
		t.Errorf("public client got client_credentials: %v", m)
	}
}

func TestCreateClient_Validation(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	if err := p.CreateClient("dup", "x", nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		err  error
		call func() error
	}{
		{"duplicate", devidp.ErrClientExists, func() error { return p.CreateClient("dup", "x", nil) }},
		{"unknown scope", devidp.ErrUnknownScope, func() error { return p.CreateClient("c1", "x", []string{"root"}) }},
		{"no secret", nil, func() error { return p.CreateClient("c2", "", nil) }},
		{"code without redirect", nil, func() error { return p.CreateClient("c3", "x", nil, "authorization_code") }},
		{"url-like id", nil, func() error { return p.CreateClient("https://x", "x", nil) }},
		{"public client_credentials", nil, func() error {
			return p.AddClient(devidp.ClientConfig{ID: "c4", GrantTypes: []string{"client_credentials"}})
		}},
	}
	for _, tt := range tests {
		err := tt.call()
		if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.err)
		}
	}
}

func TestAddClient_WebClientWithRedirectURIs(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	err := p.AddClient(devidp.ClientConfig{
		ID: "butler-web", Secret: "web-secret", Name: "Butler /connect",
		RedirectURIs: []string{"http://127.0.0.1:8080/connect/callback"},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := oauthConfig(iss, "butler-web", "web-secret", "openid", "profile")
	cfg.RedirectURL = "http://127.0.0.1:8080/connect/callback"
	b := newBrowser(t, iss)
	f, _ := b.open(cfg.AuthCodeURL("s"))
	if want := "Butler /connect"; !strings.Contains(f.body, want) {
		t.Errorf("login page lacks the client name %q", want)
	}
	code := codeFrom(t, b.submit(f, "user", "alice"), "s")
	tok, err := cfg.Exchange(ctxT(t), code)
	if err != nil {
		t.Fatal(err)
	}
	idClaims, _ := verifyJWT(t, iss, tok.Extra("id_token").(string))
	if idClaims["sub"] != "alice" || idClaims["name"] != "Alice Admin" || idClaims["preferred_username"] != "alice" {
		t.Errorf("id_token claims = %v", idClaims)
	}
	if diff := cmp.Diff([]any{"admins", "dev"}, idClaims["groups"]); diff != "" {
		t.Errorf("id_token groups (-want +got):\n%s", diff)
	}
}

func TestTokenExchange_RetargetsAUserTokenToJenkins(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	if err := p.CreateClient("butler", "butler-secret", nil, devidp.GrantTypeTokenExchange); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateClient("other", "other-secret", nil); err != nil { // no token exchange grant
		t.Fatal(err)
	}
	userToken, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "bob", Scopes: []string{"jenkins:read", "jenkins:build"}, ClientID: "claude"})
	if err != nil {
		t.Fatal(err)
	}
	exchange := func(form url.Values, client, secret string) (int, map[string]any) {
		base := url.Values{
			"grant_type":         {devidp.GrantTypeTokenExchange},
			"subject_token":      {userToken},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
		}
		for k, v := range form {
			base[k] = v
		}
		return postForm(t, iss+"/token", base, client, secret)
	}

	status, m := exchange(url.Values{"audience": {jenkinsResource}, "scope": {"jenkins:read"}}, "butler", "butler-secret")
	if status != http.StatusOK {
		t.Fatalf("exchange: %d %v", status, m)
	}
	if m["issued_token_type"] != "urn:ietf:params:oauth:token-type:access_token" || m["token_type"] != "Bearer" {
		t.Errorf("response = %v", m)
	}
	claims, _ := verifyJWT(t, iss, m["access_token"].(string))
	want := map[string]any{
		"sub": "bob", "aud": jenkinsResource, "scope": "jenkins:read", "client_id": "butler",
		"groups": []any{"dev"}, "preferred_username": "bob", "act": map[string]any{"sub": "butler"},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}

	// resource works as well as audience.
	if status, m := exchange(url.Values{"resource": {jenkinsResource}}, "butler", "butler-secret"); status != http.StatusOK {
		t.Errorf("exchange with resource: %d %v", status, m)
	}

	expired, _ := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "bob", TTL: -time.Minute})
	forged, _ := p.SignRaw(context.Background(), nil, map[string]any{"iss": "http://evil", "sub": "bob", "aud": mcpResource, "exp": time.Now().Add(time.Hour).Unix()})
	tests := []struct {
		name           string
		form           url.Values
		client, secret string
		want           string
	}{
		{"unknown audience", url.Values{"audience": {"http://127.0.0.1:1/x"}}, "butler", "butler-secret", "invalid_target"},
		{"wider scope", url.Values{"scope": {"openid jenkins:read"}}, "butler", "butler-secret", "invalid_scope"},
		{"client without the grant", nil, "other", "other-secret", "unauthorized_client"},
		{"wrong secret", nil, "butler", "nope", "invalid_client"},
		{"expired subject token", url.Values{"subject_token": {expired}}, "butler", "butler-secret", "invalid_request"},
		{"wrong issuer", url.Values{"subject_token": {forged}}, "butler", "butler-secret", "invalid_request"},
		{"garbage subject token", url.Values{"subject_token": {"abc.def.ghi"}}, "butler", "butler-secret", "invalid_request"},
		{"refresh token type", url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}, "butler", "butler-secret", "invalid_request"},
		{"id token requested", url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}, "butler", "butler-secret", "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, m := exchange(tt.form, tt.client, tt.secret); m["error"] != tt.want {
				t.Errorf("got %d %v, want %s", status, m, tt.want)
			}
		})
	}
}

func TestIntrospectionAndUserinfo(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	if err := p.CreateClient("rs", "rs-secret", nil); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateClient("app", "app-secret", nil); err != nil {
		t.Fatal(err)
	}
	token, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "alice", Scopes: []string{"openid", "profile", "jenkins:read"}, ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}
	status, m := postForm(t, iss+"/introspect", url.Values{"token": {token}}, "rs", "rs-secret")
	if status != http.StatusOK || m["active"] != true || m["sub"] != "alice" || m["scope"] != "openid profile jenkins:read" ||
		m["client_id"] != "app" || !slices.Contains(strs(m["aud"]), mcpResource) || m["username"] != "alice" {
		t.Errorf("introspection = %d %v", status, m)
	}

	req, _ := http.NewRequest(http.MethodGet, iss+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("userinfo: status %d", resp.StatusCode)
	}

	// Only the client the token was issued to may revoke it (RFC 7009 §2.1);
	// then introspection reports it inactive.
	if status, _ := postForm(t, iss+"/revoke", url.Values{"token": {token}, "token_type_hint": {"access_token"}}, "rs", "rs-secret"); status == http.StatusOK {
		t.Errorf("revoke by another client: status %d", status)
	}
	if status, m := postForm(t, iss+"/revoke", url.Values{"token": {token}, "token_type_hint": {"access_token"}}, "app", "app-secret"); status != http.StatusOK {
		t.Errorf("revoke: status %d %v", status, m)
	}
	if _, m := postForm(t, iss+"/introspect", url.Values{"token": {token}}, "rs", "rs-secret"); m["active"] != false {
		t.Errorf("revoked token introspected as %v", m)
	}
}

func TestIssueToken(t *testing.T) {
	t.Parallel()
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	p := newProvider(t, func(o *devidp.Options) {
		o.Now = func() time.Time { return now }
		o.AccessTTL = 5 * time.Minute
	})
	iss := p.Issuer()
	token, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "alice", Resource: jenkinsResource, ClientID: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := verifyJWT(t, iss, token)
	want := map[string]any{
		"iss": iss, "sub": "alice", "aud": jenkinsResource, "client_id": "cli", "scope": "jenkins:read jenkins:build",
		"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(5 * time.Minute).Unix()),
		"groups": []any{"admins", "dev"}, "name": "Alice Admin", "preferred_username": "alice",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, claims[k]); diff != "" {
			t.Errorf("claim %s (-want +got):\n%s", k, diff)
		}
	}

	// Extra overrides and removes claims.
	token, err = p.IssueToken(ctxT(t), devidp.TokenRequest{User: "carol", Extra: map[string]any{"aud": []string{"a", "b"}, "exp": nil, "x": 1}})
	if err != nil {
		t.Fatal(err)
	}
	claims, _ = verifyJWT(t, iss, token)
	if diff := cmp.Diff([]any{"a", "b"}, claims["aud"]); diff != "" || claims["exp"] != nil || claims["x"] != float64(1) {
		t.Errorf("extra not applied: %v", claims)
	}
	if diff := cmp.Diff([]any{}, claims["groups"]); diff != "" {
		t.Errorf("groups of a user without groups = %v, want []", claims["groups"])
	}

	for _, tt := range []struct {
		req devidp.TokenRequest
		err error
	}{
		{devidp.TokenRequest{User: "mallory"}, devidp.ErrUnknownUser},
		{devidp.TokenRequest{User: "alice", Scopes: []string{"root"}}, devidp.ErrUnknownScope},
		{devidp.TokenRequest{User: "alice", Resource: "http://elsewhere"}, devidp.ErrUnknownResource},
	} {
		if _, err := p.IssueToken(ctxT(t), tt.req); !errors.Is(err, tt.err) {
			t.Errorf("%+v: err = %v, want %v", tt.req, err, tt.err)
		}
	}
}
