package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// idpEnv is a development identity provider and a Jenkins simulator served
// in the test process, for a `butler serve` started as a separate process.
type idpEnv struct {
	idp        *devidp.Provider
	issuer     string
	sim        *jenkinstest.Server
	jenkinsURL string
}

func newIdPEnv(t *testing.T, resource string) *idpEnv {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{
		Issuer: issuer,
		Users: []devidp.User{
			{ID: "alice", Name: "Alice Smith", Groups: []string{"developers"}},
			{ID: "bob", Name: "Bob Jones", Groups: []string{"qa"}},
			{ID: "carol", Name: "Carol White", Groups: []string{"developers"}},
		},
		Resources: []string{resource, "http://127.0.0.1:1/other-resource"},
		Scopes:    []string{"jenkins:read", "jenkins:build"},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp.Handler()}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); idp.Close() })
	sim := jenkinstest.Sample(nil)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return &idpEnv{idp: idp, issuer: issuer, sim: sim, jenkinsURL: hs.URL + "/"}
}

func (e *idpEnv) token(t *testing.T, user string, scopes ...string) string {
	t.Helper()
	if scopes == nil {
		scopes = []string{"jenkins:read", "jenkins:build"}
	}
	tok, err := e.idp.IssueToken(context.Background(), devidp.TokenRequest{User: user, Scopes: scopes, ClientID: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// butlerServer is a running `butler serve`.
type butlerServer struct {
	url    string // public URL, no trailing slash
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freeAddr picks a free loopback port below Linux's ephemeral range
// (32768+), so no listener or outgoing connection started meanwhile by a
// parallel test can take it before the butler process binds it.
func freeAddr(t *testing.T) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port")
	return ""
}

// startServe writes a config (extra YAML is appended under its section
// keys by the caller) and starts `butler serve`, waiting for /healthz.
func startServe(t *testing.T, addr, yaml string, env ...string) *butlerServer {
	t.Helper()
	return startServeBin(t, butlerBin, addr, yaml, env...)
}

// startServeBin is startServe with another build of butler.
func startServeBin(t *testing.T, bin, addr, yaml string, env ...string) *butlerServer {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "butler.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath)
	cmd.Env = append(append(os.Environ(), vaultKeyEnv), env...)
	s := &butlerServer{url: "http://" + addr, cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("butler serve stderr:\n%s", s.stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(s.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s
			}
		}
		select {
		case err := <-s.done:
			t.Fatalf("butler serve exited: %v\n%s", err, s.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("butler serve did not become healthy:\n%s", s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func serveConfig(addr string, e *idpEnv, extra string) string {
	return fmt.Sprintf(`server:
  listen: %[1]s
  public_url: http://%[1]s
auth:
  issuer: %[2]s
  jwks_min_refresh: 1s
jenkins:
  url: %[3]s
  timeout: 3s
store:
  dsn: "sqlite::memory:"
log:
  level: debug
%[4]s`, addr, e.issuer, e.jenkinsURL, extra)
}

// bearer is an http.RoundTripper adding a token.
type bearer struct {
	token string
	base  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.base.RoundTrip(r)
}

// connectHTTP opens an MCP session over Streamable HTTP with token ("" for
// none).
func connectHTTP(t *testing.T, url, token string) (*mcp.ClientSession, error) {
	t.Helper()
	hc := &http.Client{Transport: http.DefaultTransport}
	if token != "" {
		hc.Transport = bearer{token: token, base: http.DefaultTransport}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: hc}, nil)
	if err == nil {
		t.Cleanup(func() { cs.Close() })
	}
	return cs, err
}

// rawMCP posts one JSON-RPC message and returns the response.
func rawMCP(t *testing.T, url string, headers map[string]string, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

func toolCallBody(tool string, args map[string]any) string {
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": map[string]any{"name": tool, "arguments": args}})
	return string(data)
}

func TestServe_ProtectedResourceMetadata(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	for _, path := range []string{"/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"} {
		resp, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		if resp.StatusCode != 200 || m["resource"] != s.url+"/mcp" ||
			fmt.Sprint(m["authorization_servers"]) != "["+e.issuer+"]" ||
			fmt.Sprint(m["scopes_supported"]) != "[jenkins:read jenkins:build]" ||
			fmt.Sprint(m["bearer_methods_supported"]) != "[header]" || m["resource_name"] == nil {
			t.Errorf("%s: %d %v", path, resp.StatusCode, m)
		}
	}
}

func TestServe_ChallengesWithoutAValidToken(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	meta := `resource_metadata="` + s.url + `/.well-known/oauth-protected-resource/mcp"`

	resp := rawMCP(t, s.url, nil, initializeBody)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer `+meta+`, scope="jenkins:read jenkins:build"` {
		t.Errorf("no token: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// A token in the query string is never accepted.
	req, _ := http.NewRequest(http.MethodPost, s.url+"/mcp?access_token="+e.token(t, "alice"), strings.NewReader(initializeBody))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	qresp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	qresp.Body.Close()
	if qresp.StatusCode != 401 {
		t.Errorf("token in query: %d, want 401", qresp.StatusCode)
	}
	bad := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer not.a.jwt"}, initializeBody)
	www := bad.Header.Get("WWW-Authenticate")
	body, _ := io.ReadAll(bad.Body)
	if bad.StatusCode != 401 || !strings.Contains(www, `error="invalid_token"`) || !strings.Contains(www, "error_description=") || !strings.Contains(www, meta) {
		t.Errorf("bad token: %d %q", bad.StatusCode, www)
	}
	if strings.Contains(string(body), "not.a.jwt") || !json.Valid(body) {
		t.Errorf("401 body %q is not a short JSON error without the token", body)
	}
}

func TestServe_ScopeStepUp(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	readOnly := e.token(t, "alice", "jenkins:read")
	cs, err := connectHTTP(t, s.url, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != len(catalog.All()) {
		t.Fatalf("tools/list with a read-only token: %v (it is filtered by policy, not scope)", err)
	}
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + readOnly}, toolCallBody("trigger_job", map[string]any{"job": "frontend/web-app"}))
	www := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 403 || !strings.Contains(www, `error="insufficient_scope"`) || !strings.Contains(www, `scope="jenkins:build"`) || !strings.Contains(www, "resource_metadata=") {
		t.Errorf("trigger with read scope: %d %q", resp.StatusCode, www)
	}
	for _, r := range e.sim.Requests() {
		if r.Method == "POST" {
			t.Errorf("Jenkins received a POST for a call without the build scope: %+v", r)
		}
	}
}

func TestServe_OriginChecked(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, strings.Replace(serveConfig(addr, e, ""), "  public_url:", "  allowed_origins: [\"https://app.example.com\"]\n  public_url:", 1))
	tok := e.token(t, "alice")
	for origin, want := range map[string]int{"https://evil.example.com": 403, "null": 403, "https://app.example.com": 200, s.url: 200} {
		resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + tok, "Origin": origin}, initializeBody)
		if resp.StatusCode != want {
			t.Errorf("Origin %s: %d, want %d", origin, resp.StatusCode, want)
		}
	}
	// Origin is checked before authentication.
	if resp := rawMCP(t, s.url, map[string]string{"Origin": "https://evil.example.com"}, initializeBody); resp.StatusCode != 403 {
		t.Errorf("bad Origin without a token: %d, want 403", resp.StatusCode)
	}
}

func TestServe_SessionBelongsToItsUser(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	alice := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "alice")}, initializeBody)
	sid := alice.Header.Get("Mcp-Session-Id")
	if alice.StatusCode != 200 || sid == "" {
		t.Fatalf("alice initialize: %d session %q", alice.StatusCode, sid)
	}
	bob := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "bob"), "Mcp-Session-Id": sid},
		`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	if bob.StatusCode != 403 {
		t.Errorf("bob on alice's session: %d, want 403", bob.StatusCode)
	}
	anon := rawMCP(t, s.url, map[string]string{"Mcp-Session-Id": sid}, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`)
	if anon.StatusCode != 401 {
		t.Errorf("no token on alice's session: %d, want 401", anon.StatusCode)
	}
}

func TestServe_GuestMode(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, strings.Replace(serveConfig(addr, e, ""), "auth:\n", "auth:\n  allow_guest: true\n", 1))
	cs, err := connectHTTP(t, s.url, "")
	if err != nil {
		t.Fatal(err)
	}
	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != 1 || tools.Tools[0].Name != "health" {
		t.Fatalf("guest tools/list: %v %v", tools, err)
	}
	if r := callTool(t, cs, "health", nil); r.isError || r.out["status"] != "ok" {
		t.Errorf("guest health: %v", r)
	}
	resp := rawMCP(t, s.url, nil, toolCallBody("whoami", nil))
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), "resource_metadata=") {
		t.Errorf("guest calling whoami: %d %q, want the 401 challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func TestServe_StatelessToolCalls(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, strings.Replace(serveConfig(addr, e, ""), "server:\n", "server:\n  stateless: true\n", 1))
	cs, err := connectHTTP(t, s.url, e.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if r := callTool(t, cs, "whoami", nil); r.isError || r.out["user"] != "alice" || r.out["jenkins_user"] != "alice" {
		t.Errorf("stateless whoami: %v", r)
	}
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "alice")}, initializeBody)
	if resp.Header.Get("Mcp-Session-Id") != "" {
		t.Error("stateless server issued a session id")
	}
}

func TestServe_HealthReadyMetrics(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rawMCP(t, s.url, map[string]string{"Authorization": "Bearer expired"}, initializeBody)
	cs, err := connectHTTP(t, s.url, e.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	callTool(t, cs, "get_current_time_info", nil)
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{
		`butler_tool_calls_total{code="",outcome="allow",tool="get_current_time_info"} 1`,
		`butler_auth_failures_total{reason="malformed"}`,
		"butler_tool_call_duration_seconds_bucket",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// TestServe_GracefulShutdown: SIGTERM lets an in-flight tool call finish.
func TestServe_GracefulShutdown(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	cs, err := connectHTTP(t, s.url, e.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	e.sim.SetFault(jenkinstest.Fault{Delay: 1500 * time.Millisecond})
	done := make(chan result, 1)
	go func() { done <- callTool(t, cs, "health", nil) }()
	time.Sleep(300 * time.Millisecond)
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.isError || r.out["status"] != "ok" {
		t.Errorf("in-flight call during shutdown: %v", r)
	}
	// Idle sessions (the client's open GET stream) must not hold the
	// shutdown for the whole grace period.
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("butler serve exit after SIGTERM: %v\n%s", err, s.stderr.String())
		}
		s.done <- nil
	case <-time.After(8 * time.Second):
		t.Fatal("butler serve did not exit within 8 s of SIGTERM with no call in flight")
	}
}

// readLines collects a process's stdout lines.
func readLines(r io.Reader, out chan<- string) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		out <- sc.Text()
	}
	close(out)
}

// TestDemo_TokenForCurl: while `butler demo` runs, `butler demo token`
// prints a bearer token for a demo user that Butler accepts, with that
// user's identity and permissions.
func TestDemo_TokenForCurl(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	addr := freeAddr(t)
	mcpURL, _ := startDemoIn(t, addr, home)
	env := []string{"HOME=" + home, "XDG_CACHE_HOME=" + home + "/cache"}
	out, stderr, code := runButler(t, env, "demo", "token", "--user", "bob")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 {
		t.Fatalf("demo token: exit %d, %q %s", code, out, stderr)
	}
	cs, err := connectHTTP(t, strings.TrimSuffix(mcpURL, "/mcp"), strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}
	if who := callTool(t, cs, "whoami", nil); who.out["user"] != "bob" || who.out["jenkins_linked"] != true {
		t.Errorf("whoami with bob's demo token: %v", who.out)
	}
	if r := callTool(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"}); !r.isError || !strings.HasPrefix(r.text, "forbidden: ") {
		t.Errorf("bob triggering: %v", r.text)
	}
	// A read-only token: the scope step-up challenge.
	ro, _, _ := runButler(t, env, "demo", "token", "--user", "alice", "--scope", "jenkins:read")
	resp := rawMCP(t, strings.TrimSuffix(mcpURL, "/mcp"), map[string]string{"Authorization": "Bearer " + strings.TrimSpace(ro)},
		toolCallBody("trigger_job", map[string]any{"job": "frontend/web-app"}))
	if resp.StatusCode != 403 {
		t.Errorf("read-only demo token calling trigger_job: %d", resp.StatusCode)
	}
	if _, stderr, code := runButler(t, []string{"HOME=" + t.TempDir(), "XDG_CACHE_HOME=" + t.TempDir()}, "demo", "token", "--user", "bob"); code != 1 || !strings.Contains(stderr, "no demo is running") {
		t.Errorf("demo token without a demo: exit %d %q", code, stderr)
	}
}

// TestServe_BodyLimit: a body over 1 MiB is refused before it is read.
func TestServe_BodyLimit(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":{"x":"` + strings.Repeat("a", 1<<20) + `"}}}`
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "alice")}, big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("1 MiB body: %d, want 413", resp.StatusCode)
	}
}

// TestServe_GuestSessionBecomesTheFirstUsersOnly: a session a guest opened
// belongs to the first user who logs in on it; nobody else's token is
// served on it afterwards (the SDK alone would let anyone in).
func TestServe_GuestSessionBecomesTheFirstUsersOnly(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, strings.Replace(serveConfig(addr, e, ""), "auth:\n", "auth:\n  allow_guest: true\n", 1))
	guest := rawMCP(t, s.url, nil, initializeBody)
	sid := guest.Header.Get("Mcp-Session-Id")
	if guest.StatusCode != 200 || sid == "" {
		t.Fatalf("guest initialize: %d %q", guest.StatusCode, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if r := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "alice"), "Mcp-Session-Id": sid}, list); r.StatusCode != 200 {
		t.Fatalf("alice stepping up on the guest's session: %d", r.StatusCode)
	}
	if r := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + e.token(t, "bob"), "Mcp-Session-Id": sid}, list); r.StatusCode != 403 {
		t.Errorf("bob on the session alice took over: %d, want 403", r.StatusCode)
	}
	if r := rawMCP(t, s.url, map[string]string{"Mcp-Session-Id": sid}, list); r.StatusCode != 403 {
		t.Errorf("a guest back on alice's session: %d, want 403", r.StatusCode)
	}
}
