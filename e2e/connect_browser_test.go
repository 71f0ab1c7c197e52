package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/devidp"
)

// browserTools finds Chromium and the journey script's node_modules, or
// skips (fails with BUTLER_REQUIRE_BROWSER=1, as in CI).
func browserTools(t *testing.T) (chromium, dir string) {
	t.Helper()
	dir, _ = filepath.Abs("browser")
	var missing []string
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		missing = append(missing, "chromium (apt-get install chromium)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "playwright-core (npm ci --prefix e2e/browser)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node")
	}
	if len(missing) > 0 {
		msg := "the browser test needs " + strings.Join(missing, ", ")
		if os.Getenv("BUTLER_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return chromium, dir
}

// artifactsDir is where the browser test leaves its screenshots:
// $BUTLER_TEST_ARTIFACTS/<test> when set, else a temporary directory
// (named in the log).
func artifactsDir(t *testing.T) string {
	if base := os.Getenv("BUTLER_TEST_ARTIFACTS"); base != "" {
		dir := filepath.Join(base, t.Name())
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "butler-browser-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// The whole /connect journey in headless Chromium with JavaScript off, at
// 390 px wide, keyboard only for the token: an MCP client's call is
// answered with connect_url → the browser opens it and signs in at the
// IdP → a wrong token gets a clear message and nothing is stored → the
// right one links → the client's retried call succeeds as that user → the
// page lists the call → unlink → the next call is refused again.
func TestConnect_BrowserJourney(t *testing.T) {
	chromium, dir := browserTools(t)
	addr := freeAddr(t)
	base := "http://" + addr
	e := newIdPEnv(t, base+"/mcp")
	if err := e.idp.AddClient(devidp.ClientConfig{ID: "butler-web", Secret: "web-secret", Name: "Butler link page",
		RedirectURIs: []string{base + "/connect/callback"}}); err != nil {
		t.Fatal(err)
	}
	b := startServe(t, addr, serveConfig(addr, e, connectYAML()))

	hc := &http.Client{Transport: bearer{token: e.token(t, "carol"), base: http.DefaultTransport}}
	caps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-agent", Version: "1"}, &mcp.ClientOptions{Capabilities: caps}).
		// 2025-11-25: the link page comes as the URLElicitationRequiredError
		// (-32042); the 2026-07-28 input-required form is tested in
		// internal/tools (TestNotLinked_URLElicitationRetryForm).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.url + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func() error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
		if err == nil && res.IsError {
			return fmt.Errorf("tool error: %+v", res.Content)
		}
		return err
	}
	connectURL := func() string {
		var rpcErr *jsonrpc.Error
		if err := call(); !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeURLElicitationRequired {
			t.Fatalf("want URLElicitationRequired, got %v", err)
		}
		return base + "/connect"
	}
	url := connectURL()
	if !strings.Contains(url, "/connect") {
		t.Fatal(url)
	}

	art := artifactsDir(t)
	t.Logf("screenshots in %s", art)
	cmd := exec.CommandContext(ctx, "node", filepath.Join(dir, "journey.mjs"))
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CHROMIUM="+chromium, "CONNECT_URL="+url, "LOGIN_USER=carol",
		"WRONG_TOKEN=not-carols-token-0123456789", "RIGHT_TOKEN=carol-token", "ARTIFACTS="+art)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		switch sc.Text() {
		case "LINKED":
			if err := call(); err != nil {
				t.Errorf("the retried call after linking in the browser: %v", err)
			}
			_, _ = io.WriteString(stdin, "CALLED\n")
		case "UNLINKED":
			connectURL()
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the browser journey failed: %v\n%s", err, stderr.String())
	}
	t.Logf("browser steps:\n%s", stderr.String())
	for _, name := range []string{"01-signed-in", "02-wrong-token", "03-linked", "04-call-listed", "05-unlinked"} {
		if _, err := os.Stat(filepath.Join(art, name+".png")); err != nil {
			t.Errorf("screenshot %s: %v", name, err)
		}
	}
	if strings.Contains(b.stderr.String(), "carol-token") || strings.Contains(b.stderr.String(), "not-carols-token") {
		t.Error("a token is in butler's log")
	}
}
