package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/server"
)

// demoUsers maps the demo's users to their simulator API tokens.
var demoUsers = map[string]string{
	jenkinstest.SampleAlice: jenkinstest.SampleAliceToken,
	jenkinstest.SampleBob:   jenkinstest.SampleBobToken,
	jenkinstest.SampleCarol: jenkinstest.SampleCarolToken,
	jenkinstest.SampleAdmin: jenkinstest.SampleAdminToken,
}

func runDemo(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo", "[--user alice|bob|carol|admin] [--jenkins-listen ADDR]")
	user := fs.String("user", jenkinstest.SampleAlice, "demo user to act as: alice (builds in frontend), bob (read only), carol (cannot see backend) or admin")
	listen := fs.String("jenkins-listen", "127.0.0.1:0", "loopback address for the Jenkins simulator")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	token, ok := demoUsers[*user]
	if !ok {
		return usagef("--user must be alice, bob, carol or admin, not %q", *user)
	}
	ln, err := listenLoopback(*listen)
	if err != nil {
		return err
	}
	sim := jenkinstest.Sample(nil)
	hs := &http.Server{Handler: sim, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	jenkinsURL := "http://" + ln.Addr().String() + "/"

	cfg := config.Default()
	cfg.Jenkins.URL = jenkinsURL
	cfg.Jenkins.User = *user
	cfg.Jenkins.APIToken = config.Secret(token)
	cfg.Log.Format = "text"
	cfg.Log.Level = "warn"
	if err := cfg.Validate(config.ModeStdio); err != nil {
		return err
	}
	fmt.Fprintf(e.stderr, "Butler demo: Jenkins simulator at %s\n", jenkinsURL)
	fmt.Fprintf(e.stderr, "Serving MCP over stdio as %q. Users: alice (builds in frontend), bob (read only), carol (cannot see backend), admin.\n", *user)
	fmt.Fprintf(e.stderr, "Connect an MCP client that starts this command, e.g.: npx @modelcontextprotocol/inspector go run ./cmd/butler demo\n")
	logger := server.NewLogger(e.stderr, cfg.Log)
	s, err := server.NewStdioServer(cfg, version, logger)
	if err != nil {
		return err
	}
	return server.RunStdio(ctx, s)
}

// listenLoopback listens on addr, which must be a loopback address: the
// demo's parts hold well-known demo credentials and must never be reachable
// from the network.
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

