package devidp_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
)

func TestDiscovery_BothWellKnownPathsServeTheSameDocument(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	oidcDoc := metadata(t, iss, "/.well-known/openid-configuration")
	asDoc := metadata(t, iss, "/.well-known/oauth-authorization-server")
	if diff := cmp.Diff(oidcDoc, asDoc); diff != "" {
		t.Errorf("documents differ (-openid +oauth):\n%s", diff)
	}

	wantStrings := map[string]string{
		"issuer":                 iss,
		"authorization_endpoint": iss + "/authorize",
		"token_endpoint":         iss + "/token",
		"registration_endpoint":  iss + "/register",
		"jwks_uri":               iss + "/keys",
	}
	for k, v := range wantStrings {
		if asDoc[k] != v {
			t.Errorf("%s = %v, want %q", k, asDoc[k], v)
		}
	}
	wantLists := map[string][]string{
		"code_challenge_methods_supported":      {"S256"},
		"scopes_supported":                      {"openid", "profile", "email", "offline_access", "jenkins:read", "jenkins:build"},
		"grant_types_supported":                 {"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange"},
		"token_endpoint_auth_methods_supported": {"none", "client_secret_basic", "client_secret_post"},
		"response_types_supported":              {"code"},
	}
	for k, v := range wantLists {
		if diff := cmp.Diff(v, strs(asDoc[k])); diff != "" {
			t.Errorf("%s (-want +got):\n%s", k, diff)
		}
	}
	if asDoc["client_id_metadata_document_supported"] != true {
		t.Errorf("client_id_metadata_document_supported = %v", asDoc["client_id_metadata_document_supported"])
	}
	// Every endpoint advertised is served.
	for _, k := range []string{"jwks_uri"} {
		resp, err := http.Get(asDoc[k].(string))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("%s: status %d", k, resp.StatusCode)
		}
	}
}

func TestDiscovery_OtherWellKnownPathsAre404(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	for _, path := range []string{"/.well-known/oauth-authorization-server/tenant", "/.well-known/nothing"} {
		resp, err := http.Get(p.Issuer() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestDiscovery_MCPSDKFindsTheMetadata(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	asm, err := auth.GetAuthServerMetadata(ctxT(t), p.Issuer(), nil)
	if err != nil {
		t.Fatalf("GetAuthServerMetadata: %v", err)
	}
	if asm == nil {
		t.Fatal("GetAuthServerMetadata found no metadata")
	}
	if asm.Issuer != p.Issuer() || asm.RegistrationEndpoint != p.Issuer()+"/register" ||
		!asm.ClientIDMetadataDocumentSupported || !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") {
		t.Errorf("metadata = %+v", asm)
	}
}

func TestDiscovery_CORSForBrowserClients(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	req, _ := http.NewRequest(http.MethodOptions, p.Issuer()+"/register", nil)
	req.Header.Set("Origin", "http://localhost:6274")
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "content-type, mcp-protocol-version")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type, mcp-protocol-version" {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}

	req, _ = http.NewRequest(http.MethodGet, p.Issuer()+"/keys", nil)
	req.Header.Set("Origin", "http://localhost:6274")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Values("Access-Control-Allow-Origin"); len(got) != 1 || got[0] != "*" {
		t.Errorf("JWKS Access-Control-Allow-Origin = %v, want exactly [*]", got)
	}
}
