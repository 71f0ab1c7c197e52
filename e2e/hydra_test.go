package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/testsupport/hydra"
)

// TestHydra_RealIdPTokens points `butler serve` at a real Ory Hydra: its
// client-credentials JWTs (scopes in an `scp` array, `aud` an array) are
// accepted for Butler's audience and refused for another one.
func TestHydra_RealIdPTokens(t *testing.T) {
	t.Parallel()
	h := hydra.Start(t)
	addr := freeAddr(t)
	resource := "http://" + addr + "/mcp"
	e := newIdPEnv(t, resource) // only for its Jenkins simulator
	cfg := serveConfig(addr, e, "")
	cfg = strings.Replace(cfg, "  issuer: "+e.issuer, "  issuer: "+h.Issuer, 1)
	s := startServe(t, addr, cfg)

	id, secret := h.CreateClient(t, []string{"jenkins:read", "jenkins:build"}, []string{resource, "https://other.example.com/mcp"})
	good := h.Token(t, id, secret, []string{"jenkins:read", "jenkins:build"}, resource)
	cs, err := connectHTTP(t, s.url, good)
	if err != nil {
		t.Fatalf("connecting with a Hydra token: %v", err)
	}
	who := callTool(t, cs, "whoami", nil)
	if who.isError || who.out["user"] != id || who.out["client_id"] != id {
		t.Errorf("whoami with a Hydra token: %v", who)
	}
	if fmt.Sprint(who.out["scopes"]) != "[jenkins:read jenkins:build]" {
		t.Errorf("scopes from Hydra's scp array: %v", who.out["scopes"])
	}
	if r := callTool(t, cs, "get_current_time_info", nil); r.isError {
		t.Errorf("read tool with a Hydra token: %v", r)
	}

	wrongAud := h.Token(t, id, secret, []string{"jenkins:read"}, "https://other.example.com/mcp")
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + wrongAud}, initializeBody)
	www := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(strings.ToLower(www), "audience") {
		t.Errorf("Hydra token for another audience: %d %q", resp.StatusCode, www)
	}
	readOnly := h.Token(t, id, secret, []string{"jenkins:read"}, resource)
	resp = rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + readOnly}, toolCallBody("trigger_job", map[string]any{"job": "frontend/web-app"}))
	if resp.StatusCode != 403 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `scope="jenkins:build"`) {
		t.Errorf("Hydra read-only token calling trigger_job: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}
