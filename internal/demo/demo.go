// Package demo runs Butler in one process for trying it out: the Jenkins
// simulator with sample folders, jobs and users, the development identity
// provider, and Butler wired to both, all on loopback. It is the only
// production-side importer of internal/jenkinstest and internal/devidp, and
// `butler` built with the nodemo tag leaves it (and them) out.
package demo

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/server"
)

// user is one of the demo's people: their Jenkins API token in the
// simulator and their groups at the identity provider.
type user struct {
	id, name, token string
	groups          []string
	// unlinked users start without a linked Jenkins token, so that the
	// demo shows a new team member linking their own at /connect.
	unlinked bool
}

// demoDave is the demo user who starts unlinked: a Jenkins account the
// simulator's sample does not have, added for the demo.
const (
	demoDave      = "dave"
	demoDaveToken = "dave-token"
)

func users() []user {
	return []user{
		{jenkinstest.SampleAlice, "Alice Smith", jenkinstest.SampleAliceToken, []string{"developers", "frontend"}, false},
		{jenkinstest.SampleBob, "Bob Jones", jenkinstest.SampleBobToken, []string{"qa"}, false},
		{jenkinstest.SampleCarol, "Carol White", jenkinstest.SampleCarolToken, []string{"developers"}, false},
		{jenkinstest.SampleAdmin, "Jenkins Admin", jenkinstest.SampleAdminToken, []string{"release", "admins"}, false},
		{demoDave, "Dave Brown", demoDaveToken, []string{"developers"}, true},
	}
}

// Users returns the demo users' ids.
func Users() []string {
	var out []string
	for _, u := range users() {
		out = append(out, u.id)
	}
	return out
}

// DefaultUser is the user `butler demo --stdio` acts as.
const DefaultUser = jenkinstest.SampleAlice

// IsUser reports whether id is a demo user.
func IsUser(id string) bool { return slices.Contains(Users(), id) }

func tokenOf(id string) string {
	for _, u := range users() {
		if u.id == id {
			return u.token
		}
	}
	return ""
}

// scopes are the demo's OAuth scopes (Butler's defaults).
var defaultScopes = []string{"jenkins:read", "jenkins:build"}

// Options configure Run.
type Options struct {
	Stdout, Stderr io.Writer
	Version        string
	// Listen is Butler's loopback address; IdPListen and JenkinsListen the
	// identity provider's and the simulator's (port 0: any free port).
	Listen, IdPListen, JenkinsListen string
	// Stdio serves MCP over stdin/stdout as User instead of HTTP.
	Stdio bool
	User  string
	// StateDir is where a running demo leaves what `butler demo token`
	// needs. Default: the user's cache directory.
	StateDir string
}

// CheckLoopback refuses an address that is not on loopback: the demo's
// credentials are well known and must never be reachable from the network.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("listen address %q: the demo only listens on loopback (127.0.0.1 or ::1)", addr)
	}
	return nil
}

func listen(addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	return net.Listen("tcp", addr)
}

// Run starts the demo and serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	jln, err := listen(o.JenkinsListen)
	if err != nil {
		return err
	}
	sim := jenkinstest.Sample(&jenkinstest.Options{Version: jenkinstest.CurrentLTS})
	// dave, new on the team: he may read frontend in Jenkins, and links
	// his own token at /connect.
	sim.AddUser(demoDave, "Dave Brown", demoDaveToken)
	sim.Grant(demoDave, "frontend", jenkinstest.PermRead)
	// Two long builds on linux-agent-1 and a queue behind them, for
	// list_queue, list_nodes and wait_for_build.
	if _, _, err := jenkinstest.SampleActivity(sim); err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	jsrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = jsrv.Serve(jln) }()
	defer jsrv.Close()
	jenkinsURL := "http://" + jln.Addr().String() + "/"
	if o.Stdio {
		return runStdio(ctx, o, jenkinsURL)
	}
	return runHTTP(ctx, o, jenkinsURL)
}

func runStdio(ctx context.Context, o Options, jenkinsURL string) error {
	cfg := config.Default()
	cfg.Jenkins.URL = jenkinsURL
	cfg.Jenkins.User = o.User
	cfg.Jenkins.APIToken = secret.String(tokenOf(o.User))
	cfg.Log.Format, cfg.Log.Level = "text", "warn"
	if err := cfg.Validate(config.ModeStdio); err != nil {
		return err
	}
	fmt.Fprintf(o.Stderr, "Butler demo: Jenkins simulator at %s; serving MCP over stdio as %q.\n", jenkinsURL, o.User)
	logger := app.NewLogger(o.Stderr, cfg.Log)
	s, err := app.NewStdio(cfg, o.Version, logger)
	if err != nil {
		return err
	}
	return server.RunStdio(ctx, s)
}

func runHTTP(ctx context.Context, o Options, jenkinsURL string) error {
	ln, err := listen(o.Listen)
	if err != nil {
		return fmt.Errorf("%w (another program has the port? pick another with --listen 127.0.0.1:PORT)", err)
	}
	publicURL := "http://" + ln.Addr().String()
	resource := publicURL + "/mcp"

	iln, err := listen(o.IdPListen)
	if err != nil {
		ln.Close()
		return err
	}
	issuer := "http://" + iln.Addr().String()
	var idpUsers []devidp.User
	for _, u := range users() {
		idpUsers = append(idpUsers, devidp.User{ID: u.id, Name: u.name, Email: u.id + "@example.com", Groups: u.groups})
	}
	// zitadel/oidc logs its routes through the process's default logger;
	// the demo's terminal is for the instructions below.
	slog.SetDefault(slog.New(slog.NewTextHandler(o.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: idpUsers, Resources: []string{resource}, Scopes: defaultScopes})
	if err != nil {
		ln.Close()
		iln.Close()
		return err
	}
	defer idp.Close()
	tokenSecret := randomHex(32)
	imux := http.NewServeMux()
	imux.Handle("/", idp.Handler())
	imux.Handle("POST /demo/token", tokenHandler(idp, tokenSecret, resource))
	isrv := &http.Server{Handler: imux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = isrv.Serve(iln) }()
	defer isrv.Close()

	cfg := config.Default()
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.PublicURL = publicURL
	cfg.Auth.Issuer = issuer
	cfg.Auth.ScopesSupported = defaultScopes
	cfg.Jenkins.URL = jenkinsURL
	cfg.Store.DSN = config.DSN("sqlite::memory:")
	// 32 random bytes: the hex text of 16 (32 bytes of 16 values at most)
	// does not pass as a vault key.
	vaultKey := make([]byte, 32)
	_, _ = rand.Read(vaultKey)
	cfg.Store.VaultKey = secret.String(base64.StdEncoding.EncodeToString(vaultKey))
	// The /connect page, as a confidential web client of the development
	// IdP: a demo user signs in there and links (or unlinks) a token.
	webSecret := randomHex(32)
	if err := idp.AddClient(devidp.ClientConfig{
		ID: "butler-web", Secret: webSecret, Name: "Butler's link page (/connect)",
		RedirectURIs: []string{publicURL + "/connect/callback"},
	}); err != nil {
		ln.Close()
		return err
	}
	sessionKey := make([]byte, 32)
	_, _ = rand.Read(sessionKey)
	cfg.Web.ClientID, cfg.Web.ClientSecret = "butler-web", secret.String(webSecret)
	cfg.Web.SessionKey = secret.String(base64.StdEncoding.EncodeToString(sessionKey))
	cfg.Log.Format, cfg.Log.Level = "text", "warn"
	if err := cfg.Validate(config.ModeServe); err != nil {
		return err
	}
	logger := app.NewLogger(o.Stderr, cfg.Log)
	a, err := app.New(ctx, cfg, app.Options{Version: o.Version, Logger: logger})
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := a.Close(cctx); err != nil {
			logger.Error("closing", "err", err)
		}
	}()
	// The demo users' Jenkins tokens are linked exactly as `butler link`
	// links them: checked with Jenkins, then sealed in the (in-memory)
	// store with the demo's vault key.
	for _, u := range users() {
		if u.unlinked {
			continue
		}
		if _, err := a.Linker.Link(ctx, u.id, secret.String(u.token)); err != nil {
			ln.Close()
			return fmt.Errorf("linking demo user %s: %w", u.id, err)
		}
	}

	statePath := statePath(o.StateDir, ln.Addr().String())
	if err := writeState(statePath, state{IdP: issuer, MCP: resource, Secret: tokenSecret}); err != nil {
		fmt.Fprintf(o.Stderr, "note: cannot record the demo for `butler demo token`: %v\n", err)
	}
	defer os.Remove(statePath)

	tokenCmd := "go run ./cmd/butler demo token --user alice"
	if ln.Addr().String() != "127.0.0.1:8080" {
		tokenCmd += " --listen " + ln.Addr().String()
	}
	fmt.Fprintf(o.Stdout, `Butler demo is running (Ctrl-C stops everything).

  MCP endpoint       %[1]s
  Identity provider  %[2]s   users: alice, bob, carol, admin, dave (pick one on its login page)
  Jenkins simulator  %[3]s
  Link page          %[5]s   sign in, then link or unlink your Jenkins token
                     (demo tokens: alice-token, bob-token, carol-token, admin-token, linked at start;
                     dave is new: sign in as dave and link dave-token there)

Who may do what: alice builds in frontend and reads backend and prod; bob only reads;
carol builds in frontend but cannot see backend; admin may do everything; dave reads frontend once linked.
Failed builds to diagnose (diagnose_build): diagnosis/*, which alice and bob may read and carol may not;
platform/bom triggered diagnosis/gradle-dependency-resolution, and only alice may see it.

Connect a client (each one discovers the login by itself):
  Claude Code    claude mcp add --transport http butler %[1]s
  VS Code        code --add-mcp '{"name":"butler","type":"http","url":"%[1]s"}'
  MCP Inspector  npx @modelcontextprotocol/inspector   then Streamable HTTP, URL %[1]s
  curl           TOKEN=$(%[4]s)
                 curl -s %[1]s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
                   -H 'Accept: application/json, text/event-stream' \
                   -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
`, resource, issuer, jenkinsURL, tokenCmd, cfg.ConnectURL())
	return a.Serve(ctx, ln)
}

// tokenHandler mints a token for a demo user, for `butler demo token`. It
// is served only by the demo's own identity provider on loopback and needs
// the secret from the demo's state file.
func tokenHandler(idp *devidp.Provider, tokenSecret, resource string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-Demo-Secret")
		if subtle.ConstantTimeCompare([]byte(got), []byte(tokenSecret)) != 1 {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		var req struct {
			User   string   `json:"user"`
			Scopes []string `json:"scopes"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&req); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if !IsUser(req.User) {
			http.Error(w, "unknown demo user", http.StatusBadRequest)
			return
		}
		if len(req.Scopes) == 0 {
			req.Scopes = defaultScopes
		}
		tok, err := idp.IssueToken(r.Context(), devidp.TokenRequest{User: req.User, Scopes: req.Scopes, Resource: resource, ClientID: "butler-demo-cli"})
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, tok)
	})
}

// TokenOptions choose the demo and the token of Token.
type TokenOptions struct {
	User   string
	Scopes []string
	// Listen names the demo by its MCP address when several run; ""
	// takes the only one.
	Listen   string
	StateDir string
}

// ErrNoDemo: no demo is running (for this user's cache directory).
var ErrNoDemo = errors.New("no demo is running (start one with `butler demo` in another terminal)")

// Token asks a running demo's identity provider for a bearer token of a
// demo user.
func Token(ctx context.Context, o TokenOptions) (string, error) {
	path, err := findState(o.StateDir, o.Listen)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return "", ErrNoDemo
	}
	var st state
	if err := json.Unmarshal(data, &st); err != nil {
		return "", fmt.Errorf("demo state %s: %w", path, err)
	}
	body, _ := json.Marshal(map[string]any{"user": o.User, "scopes": o.Scopes})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.IdP+"/demo/token", strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Demo-Secret", st.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("the demo does not answer (is it still running?): %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("demo identity provider: %s", strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// state is what a running demo tells `butler demo token`, in a file only
// its owner can read: one file per demo, named by its MCP address, so two
// demos never share (or remove) each other's.
type state struct {
	IdP    string `json:"idp"`
	MCP    string `json:"mcp"`
	Secret string `json:"secret"`
}

func stateDir(dir string) string {
	if dir != "" {
		return dir
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	return filepath.Join(base, "butler")
}

func statePath(dir, addr string) string {
	name := strings.NewReplacer(":", "_", "[", "", "]", "").Replace(addr)
	return filepath.Join(stateDir(dir), "demo-"+name+".json")
}

// findState returns the state file of the demo at listen, or of the only
// demo running when listen is "".
func findState(dir, listen string) (string, error) {
	if listen != "" {
		p := statePath(dir, listen)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("no demo is running at %s", listen)
		}
		return p, nil
	}
	found, _ := filepath.Glob(filepath.Join(stateDir(dir), "demo-*.json"))
	switch len(found) {
	case 0:
		return "", ErrNoDemo
	case 1:
		return found[0], nil
	}
	var addrs []string
	for _, f := range found {
		addrs = append(addrs, strings.TrimSuffix(strings.TrimPrefix(filepath.Base(f), "demo-"), ".json"))
	}
	return "", fmt.Errorf("%d demos are running (%s); name one with --listen ADDR", len(found), strings.ReplaceAll(strings.Join(addrs, ", "), "_", ":"))
}

func writeState(path string, st state) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
