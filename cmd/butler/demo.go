package main

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
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/server"
)

// demoUsers are the demo's people: their Jenkins API tokens in the
// simulator and their groups at the identity provider.
var demoUsers = []struct {
	id, name, token string
	groups          []string
}{
	{jenkinstest.SampleAlice, "Alice Smith", jenkinstest.SampleAliceToken, []string{"developers", "frontend"}},
	{jenkinstest.SampleBob, "Bob Jones", jenkinstest.SampleBobToken, []string{"qa"}},
	{jenkinstest.SampleCarol, "Carol White", jenkinstest.SampleCarolToken, []string{"developers"}},
	{jenkinstest.SampleAdmin, "Jenkins Admin", jenkinstest.SampleAdminToken, []string{"release", "admins"}},
}

func demoToken(user string) (string, bool) {
	for _, u := range demoUsers {
		if u.id == user {
			return u.token, true
		}
	}
	return "", false
}

// demoState is what a running demo tells `butler demo token`, in a file
// only its owner can read.
type demoState struct {
	IdP    string `json:"idp"`
	MCP    string `json:"mcp"`
	Secret string `json:"secret"`
}

func demoStatePath() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "butler", "demo.json"), nil
}

func runDemo(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "token" {
		return runDemoToken(ctx, e, args[1:])
	}
	fs := newFlags(e, "demo", "[--listen ADDR] [--stdio [--user alice|bob|carol|admin]]\n       butler demo token --user ID [--scope S]...")
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address for Butler's MCP endpoint")
	idpListen := fs.String("idp-listen", "127.0.0.1:0", "loopback address for the development identity provider")
	jenkinsListen := fs.String("jenkins-listen", "127.0.0.1:0", "loopback address for the Jenkins simulator")
	stdio := fs.Bool("stdio", false, "serve MCP over stdin/stdout as one user instead of HTTP with OAuth")
	user := fs.String("user", jenkinstest.SampleAlice, "with --stdio: demo user to act as (alice, bob, carol or admin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, ok := demoToken(*user); !ok {
		return usagef("--user must be alice, bob, carol or admin, not %q", *user)
	}
	// Every part listens on loopback only: the demo's credentials are
	// well known and must never be reachable from the network.
	jln, err := listenLoopback(*jenkinsListen)
	if err != nil {
		return err
	}
	sim := jenkinstest.Sample(nil)
	jsrv := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = jsrv.Serve(jln) }()
	defer jsrv.Close()
	jenkinsURL := "http://" + jln.Addr().String() + "/"
	if *stdio {
		return runDemoStdio(ctx, e, jenkinsURL, *user)
	}
	return runDemoHTTP(ctx, e, jenkinsURL, *listen, *idpListen)
}

func runDemoStdio(ctx context.Context, e *env, jenkinsURL, user string) error {
	token, _ := demoToken(user)
	cfg := config.Default()
	cfg.Jenkins.URL = jenkinsURL
	cfg.Jenkins.User = user
	cfg.Jenkins.APIToken = config.Secret(token)
	cfg.Log.Format, cfg.Log.Level = "text", "warn"
	if err := cfg.Validate(config.ModeStdio); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Butler demo: Jenkins simulator at %s; serving MCP over stdio as %q.\n", jenkinsURL, user)
	logger := server.NewLogger(e.stderr, cfg.Log)
	s, err := server.NewStdioServer(cfg, version, logger)
	if err != nil {
		return err
	}
	return server.RunStdio(ctx, s)
}

func runDemoHTTP(ctx context.Context, e *env, jenkinsURL, listen, idpListen string) error {
	ln, err := listenLoopback(listen)
	if err != nil {
		return fmt.Errorf("%w (another program has the port? pick another with --listen 127.0.0.1:PORT)", err)
	}
	publicURL := "http://" + ln.Addr().String()
	resource := publicURL + "/mcp"

	iln, err := listenLoopback(idpListen)
	if err != nil {
		ln.Close()
		return err
	}
	issuer := "http://" + iln.Addr().String()
	var users []devidp.User
	creds := map[string]jenkins.Credential{}
	for _, u := range demoUsers {
		users = append(users, devidp.User{ID: u.id, Name: u.name, Email: u.id + "@example.com", Groups: u.groups})
		creds[u.id] = jenkins.Credential{User: u.id, APIToken: u.token}
	}
	scopes := []string{"jenkins:read", "jenkins:build"}
	// zitadel/oidc logs its routes through the process's default logger;
	// the demo's terminal is for the instructions below.
	slog.SetDefault(slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: users, Resources: []string{resource}, Scopes: scopes})
	if err != nil {
		ln.Close()
		iln.Close()
		return err
	}
	defer idp.Close()
	secret := randomHex(32)
	imux := http.NewServeMux()
	imux.Handle("/", idp.Handler())
	imux.Handle("POST /demo/token", demoTokenHandler(idp, secret, resource))
	isrv := &http.Server{Handler: imux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = isrv.Serve(iln) }()
	defer isrv.Close()

	cfg := config.Default()
	cfg.Server.Listen = ln.Addr().String()
	cfg.Server.PublicURL = publicURL
	cfg.Auth.Issuer = issuer
	cfg.Auth.ScopesSupported = scopes
	cfg.Jenkins.URL = jenkinsURL
	cfg.Store.DSN = config.DSN("sqlite::memory:")
	cfg.Store.VaultKey = config.Secret(base64.StdEncoding.EncodeToString([]byte(randomHex(16))))
	cfg.Log.Format, cfg.Log.Level = "text", "warn"
	if err := cfg.Validate(config.ModeServe); err != nil {
		return err
	}
	logger := server.NewLogger(e.stderr, cfg.Log)
	app, err := server.NewApp(ctx, cfg, server.AppOptions{Version: version, Logger: logger})
	if err != nil {
		return err
	}
	defer closeApp(app, logger)
	// The demo users' Jenkins tokens are linked as `butler link` would:
	// sealed in the (in-memory) store with the demo's vault key.
	for user, c := range creds {
		if err := app.Stored.Link(ctx, user, c.User, c.APIToken); err != nil {
			return fmt.Errorf("linking demo user %s: %w", user, err)
		}
	}

	statePath, _ := demoStatePath()
	if err := writeDemoState(statePath, demoState{IdP: issuer, MCP: resource, Secret: secret}); err != nil {
		fmt.Fprintf(e.stderr, "note: cannot record the demo for `butler demo token`: %v\n", err)
	}
	defer os.Remove(statePath)

	fmt.Fprintf(e.stdout, `Butler demo is running (Ctrl-C stops everything).

  MCP endpoint       %[1]s
  Identity provider  %[2]s   users: alice, bob, carol, admin (pick one on its login page)
  Jenkins simulator  %[3]s

Who may do what: alice builds in frontend and reads backend and prod; bob only reads;
carol builds in frontend but cannot see backend; admin may do everything.

Connect a client (each one discovers the login by itself):
  Claude Code    claude mcp add --transport http butler %[1]s
  VS Code        code --add-mcp '{"name":"butler","type":"http","url":"%[1]s"}'
  MCP Inspector  npx @modelcontextprotocol/inspector   then Streamable HTTP, URL %[1]s
  curl           TOKEN=$(go run ./cmd/butler demo token --user alice)
                 curl -s %[1]s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
                   -H 'Accept: application/json, text/event-stream' \
                   -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}'
`, resource, issuer, jenkinsURL)
	return serveApp(ctx, e, cfg, app, ln)
}

// demoTokenHandler mints a token for a demo user, for `butler demo token`.
// It is served only by the demo's own identity provider on loopback and
// needs the secret from the demo's state file.
func demoTokenHandler(idp *devidp.Provider, secret, resource string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := r.Header.Get("X-Demo-Secret")
		if subtle.ConstantTimeCompare([]byte(got), []byte(secret)) != 1 {
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
		if _, ok := demoToken(req.User); !ok {
			http.Error(w, "unknown demo user "+req.User, http.StatusBadRequest)
			return
		}
		if len(req.Scopes) == 0 {
			req.Scopes = []string{"jenkins:read", "jenkins:build"}
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

func runDemoToken(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo token", "--user ID [--scope S]...")
	user := fs.String("user", "", "demo user: alice, bob, carol or admin")
	var scopes stringList
	fs.Var(&scopes, "scope", "scope to grant (repeatable; default jenkins:read and jenkins:build)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if _, ok := demoToken(*user); !ok {
		return usagef("--user must be alice, bob, carol or admin")
	}
	path, _ := demoStatePath()
	data, err := os.ReadFile(path)
	if err != nil {
		return errors.New("no demo is running (start one with `butler demo` in another terminal)")
	}
	var st demoState
	if err := json.Unmarshal(data, &st); err != nil {
		return fmt.Errorf("demo state %s: %w", path, err)
	}
	body, _ := json.Marshal(map[string]any{"user": *user, "scopes": []string(scopes)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, st.IdP+"/demo/token", strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	req.Header.Set("X-Demo-Secret", st.Secret)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("the demo does not answer (is it still running?): %w", err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("demo identity provider: %s", strings.TrimSpace(string(out)))
	}
	fmt.Fprint(e.stdout, string(out))
	return nil
}

func writeDemoState(path string, st demoState) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, " ") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// listenLoopback listens on addr, which must be a loopback address.
func listenLoopback(addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, usagef("listen address %q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, usagef("listen address %q: the demo only listens on loopback (127.0.0.1 or ::1)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	return ln, nil
}
