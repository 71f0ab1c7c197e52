package devidp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/oauth2"
)

// metadataServer serves a client ID metadata document at /client.json whose
// client_id is its own URL unless doc says otherwise.
func metadataServer(t *testing.T, doc func(self string) map[string]any) (string, *atomic.Int32) {
	t.Helper()
	var fetches atomic.Int32
	var self string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(doc(self))
	}))
	t.Cleanup(srv.Close)
	self = srv.URL + "/client.json"
	return self, &fetches
}

func TestClientIDMetadataDocument_FullFlow(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	clientID, fetches := metadataServer(t, func(self string) map[string]any {
		return map[string]any{
			"client_id":                  self,
			"client_name":                "Metadata Client",
			"redirect_uris":              []string{redirectURI},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"token_endpoint_auth_method": "none",
		}
	})
	cfg := oauthConfig(iss, clientID, "", "jenkins:read")
	v := oauth2.GenerateVerifier()
	b := newBrowser(t, iss)
	f, loc := b.open(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(v), oauth2.SetAuthURLParam("resource", mcpResource)))
	if loc != nil {
		t.Fatalf("redirected: %s", loc)
	}
	if !strings.Contains(f.body, "Metadata Client") || !strings.Contains(f.body, clientID) {
		t.Error("login page does not show the client's name and URL")
	}
	code := codeFrom(t, b.submit(f, "user", "alice"), "s")
	tok, err := cfg.Exchange(ctxT(t), code, oauth2.VerifierOption(v), oauth2.SetAuthURLParam("resource", mcpResource))
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	claims, _ := verifyJWT(t, iss, tok.AccessToken)
	if claims["client_id"] != clientID || claims["aud"] != mcpResource || claims["sub"] != "alice" {
		t.Errorf("claims = %v", claims)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token though the document lists the refresh_token grant")
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("document fetched %d times, want 1 (cached)", n)
	}
}

func TestClientIDMetadataDocument_Refused(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	tests := []struct {
		name string
		doc  func(self string) map[string]any
	}{
		{"client_id differs from URL", func(string) map[string]any {
			return map[string]any{"client_id": "https://other.example/client.json", "redirect_uris": []string{redirectURI}}
		}},
		{"secret-based auth", func(self string) map[string]any {
			return map[string]any{"client_id": self, "redirect_uris": []string{redirectURI}, "token_endpoint_auth_method": "client_secret_basic"}
		}},
		{"no redirect uris", func(self string) map[string]any { return map[string]any{"client_id": self} }},
		{"redirect uri not in the document", func(self string) map[string]any {
			return map[string]any{"client_id": self, "redirect_uris": []string{"http://127.0.0.1:1/elsewhere"}}
		}},
		{"bad redirect uri", func(self string) map[string]any {
			return map[string]any{"client_id": self, "redirect_uris": []string{"http://evil.example/cb"}}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clientID, _ := metadataServer(t, tt.doc)
			cfg := oauthConfig(iss, clientID, "", "jenkins:read")
			resp, err := newBrowser(t, iss).c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || redirectedAway(resp) != nil {
				t.Errorf("status %d, want 400 without redirect", resp.StatusCode)
			}
		})
	}

	// A document that is not found, or a URL without a path.
	for _, id := range []string{iss + "/nothing-here.json", "http://127.0.0.1:1"} {
		cfg := oauthConfig(iss, id, "", "jenkins:read")
		resp, err := newBrowser(t, iss).c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: status %d, want 400", id, resp.StatusCode)
		}
	}
}

func TestClientIDMetadataDocument_TooLarge(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	clientID, _ := metadataServer(t, func(self string) map[string]any {
		return map[string]any{"client_id": self, "redirect_uris": []string{redirectURI}, "padding": strings.Repeat("x", 20<<10)}
	})
	cfg := oauthConfig(p.Issuer(), clientID, "", "jenkins:read")
	resp, err := newBrowser(t, p.Issuer()).c.Get(cfg.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}
