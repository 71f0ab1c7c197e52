package devidp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/butler-mcp/butler/internal/devidp"
)

// TestMCPSDK_AuthorizationCodeHandlerWithDCR drives the MCP Go SDK's own
// client flow against the provider: protected resource metadata (from a fake
// resource server), RFC 8414 discovery, dynamic client registration, PKCE
// S256 with the resource parameter, the login page, and the code exchange.
func TestMCPSDK_AuthorizationCodeHandlerWithDCR(t *testing.T) {
	t.Parallel()
	var issuer string
	rs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/oauth-protected-resource/mcp" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"resource":              "http://" + r.Host + "/mcp",
			"authorization_servers": []string{issuer},
			"scopes_supported":      []string{"jenkins:read", "jenkins:build"},
		})
	}))
	t.Cleanup(rs.Close)
	resource := rs.URL + "/mcp"
	p := newProvider(t, func(o *devidp.Options) { o.Resources = []string{resource} })
	issuer = p.Issuer()

	var authURL string
	h, err := auth.NewAuthorizationCodeHandler(&auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{
			Metadata: &oauthex.ClientRegistrationMetadata{
				RedirectURIs:            []string{redirectURI},
				TokenEndpointAuthMethod: "none",
				GrantTypes:              []string{"authorization_code", "refresh_token"},
				ClientName:              "go-sdk test client",
			},
		},
		RequestRefreshToken: true,
		AuthorizationCodeFetcher: func(_ context.Context, args *auth.AuthorizationArgs) (*auth.AuthorizationResult, error) {
			authURL = args.URL
			loc := newBrowser(t, issuer).login(args.URL, "bob")
			q := loc.Query()
			if e := q.Get("error"); e != "" {
				return nil, fmt.Errorf("authorization error %s: %s", e, q.Get("error_description"))
			}
			return &auth.AuthorizationResult{Code: q.Get("code"), State: q.Get("state")}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, resource, nil)
	resp := &http.Response{
		StatusCode: http.StatusUnauthorized,
		Header: http.Header{"Www-Authenticate": {
			fmt.Sprintf(`Bearer resource_metadata="%s/.well-known/oauth-protected-resource/mcp", scope="jenkins:read jenkins:build"`, rs.URL),
		}},
		Body: io.NopCloser(strings.NewReader("")),
	}
	if err := h.Authorize(ctxT(t), req, resp); err != nil {
		t.Fatalf("Authorize: %v", err)
	}
	for _, want := range []string{"code_challenge_method=S256", "resource=", "client_id=dcr-"} {
		if !strings.Contains(authURL, want) {
			t.Errorf("authorization URL %s lacks %q", authURL, want)
		}
	}
	ts, err := h.TokenSource(ctxT(t))
	if err != nil || ts == nil {
		t.Fatalf("TokenSource: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := verifyJWT(t, issuer, tok.AccessToken)
	if claims["aud"] != resource || claims["sub"] != "bob" {
		t.Errorf("claims = %v", claims)
	}
	// The SDK unions scopes through a map, so their order varies.
	scope, _ := claims["scope"].(string)
	got := strings.Fields(scope)
	slices.Sort(got)
	if want := []string{"jenkins:build", "jenkins:read", "offline_access"}; !slices.Equal(got, want) {
		t.Errorf("scope = %q, want the set %v", scope, want)
	}
	if tok.RefreshToken == "" {
		t.Error("no refresh token")
	}
}
