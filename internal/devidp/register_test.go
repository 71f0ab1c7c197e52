package devidp_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/oauth2"
)

func TestRegister_PublicClient(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	status, m := postJSON(t, p.Issuer()+"/register", map[string]any{
		"redirect_uris":              []string{redirectURI},
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"client_name":                "Claude",
		"client_uri":                 "https://claude.example", // ignored, not refused
	})
	if status != http.StatusCreated {
		t.Fatalf("status %d: %v", status, m)
	}
	if id, _ := m["client_id"].(string); id == "" {
		t.Error("no client_id")
	}
	if _, ok := m["client_secret"]; ok {
		t.Error("a public client got a secret")
	}
	want := map[string]any{
		"token_endpoint_auth_method": "none",
		"client_name":                "Claude",
		"redirect_uris":              []any{redirectURI},
		"grant_types":                []any{"authorization_code", "refresh_token"},
		"response_types":             []any{"code"},
		"application_type":           "native",
	}
	for k, v := range want {
		if diff := cmp.Diff(v, m[k]); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
}

func TestRegister_ConfidentialClientUsesItsSecret(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	for _, method := range []string{"client_secret_basic", "client_secret_post", ""} {
		t.Run("method="+method, func(t *testing.T) {
			body := map[string]any{"redirect_uris": []string{"https://app.example.test/cb"}, "client_name": "web app"}
			if method != "" {
				body["token_endpoint_auth_method"] = method
			}
			status, m := postJSON(t, iss+"/register", body)
			if status != http.StatusCreated {
				t.Fatalf("status %d: %v", status, m)
			}
			wantMethod := method
			if wantMethod == "" {
				wantMethod = "client_secret_basic" // RFC 7591 §2 default
			}
			secret, _ := m["client_secret"].(string)
			if secret == "" || m["token_endpoint_auth_method"] != wantMethod || m["client_secret_expires_at"] != float64(0) {
				t.Fatalf("registration = %v", m)
			}
			clientID := m["client_id"].(string)

			// The secret works at the token endpoint; a wrong one does not.
			cfg := oauthConfig(iss, clientID, secret, "jenkins:read")
			cfg.RedirectURL = "https://app.example.test/cb"
			if method == "client_secret_post" {
				cfg.Endpoint.AuthStyle = oauth2.AuthStyleInParams
			}
			b := newBrowser(t, iss)
			loc := b.login(cfg.AuthCodeURL("s"), "bob") // no PKCE: allowed for confidential clients
			code := codeFrom(t, loc, "s")
			bad := *cfg
			bad.ClientSecret = "wrong"
			if _, err := bad.Exchange(ctxT(t), code); err == nil {
				t.Error("wrong secret accepted")
			}
			loc = b.login(cfg.AuthCodeURL("s"), "bob")
			if _, err := cfg.Exchange(ctxT(t), codeFrom(t, loc, "s")); err != nil {
				t.Errorf("Exchange: %v", err)
			}
		})
	}
}

func TestRegister_RefusesBadMetadata(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	tests := []struct {
		name string
		body map[string]any
		want string
	}{
		{"no redirect uris", map[string]any{"token_endpoint_auth_method": "none"}, "invalid_redirect_uri"},
		{"http on a public host", map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, "invalid_redirect_uri"},
		{"javascript scheme", map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, "invalid_redirect_uri"},
		{"data scheme", map[string]any{"redirect_uris": []string{"data:text/html,hi"}}, "invalid_redirect_uri"},
		{"fragment", map[string]any{"redirect_uris": []string{"https://app.example.test/cb#x"}}, "invalid_redirect_uri"},
		{"relative", map[string]any{"redirect_uris": []string{"/cb"}}, "invalid_redirect_uri"},
		{"user info", map[string]any{"redirect_uris": []string{"https://u:p@app.example.test/cb"}}, "invalid_redirect_uri"},
		{"one bad among good", map[string]any{"redirect_uris": []string{redirectURI, "http://10.0.0.1/cb"}}, "invalid_redirect_uri"},
		{"unknown auth method", map[string]any{"redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
		{"client_credentials", map[string]any{"redirect_uris": []string{redirectURI}, "grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
		{"implicit", map[string]any{"redirect_uris": []string{redirectURI}, "grant_types": []string{"implicit"}}, "invalid_client_metadata"},
		{"token response type", map[string]any{"redirect_uris": []string{redirectURI}, "response_types": []string{"token"}}, "invalid_client_metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, m := postJSON(t, p.Issuer()+"/register", tt.body)
			if status != http.StatusBadRequest || m["error"] != tt.want {
				t.Errorf("got %d %v, want 400 %s", status, m, tt.want)
			}
		})
	}

	resp, err := http.Post(p.Issuer()+"/register", "text/plain", strings.NewReader(`{"redirect_uris":["`+redirectURI+`"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("text/plain body: status %d, want 400", resp.StatusCode)
	}
	resp, err = http.Get(p.Issuer() + "/register")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}

func TestRegister_ScopeRestrictsTheClient(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	status, m := postJSON(t, iss+"/register", map[string]any{
		"redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "none",
		"scope": "jenkins:read unknown:scope",
	})
	if status != http.StatusCreated || m["scope"] != "jenkins:read" {
		t.Fatalf("registration: %d %v", status, m)
	}
	cfg := oauthConfig(iss, m["client_id"].(string), "", "jenkins:read", "jenkins:build")
	v := oauth2.GenerateVerifier()
	code := authCode(t, cfg, iss, "alice", oauth2.S256ChallengeOption(v))
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v))
	if err != nil {
		t.Fatal(err)
	}
	if claims, _ := verifyJWT(t, iss, tok.AccessToken); claims["scope"] != "jenkins:read" {
		t.Errorf("scope = %v, want only jenkins:read", claims["scope"])
	}
	if tok.RefreshToken != "" {
		t.Error("refresh token for a client registered without the refresh_token grant")
	}
}

func TestAuthorize_UnknownClientIsNotRedirected(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	cfg := oauthConfig(p.Issuer(), "no-such-client", "", "jenkins:read")
	resp, err := newBrowser(t, p.Issuer()).c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}
