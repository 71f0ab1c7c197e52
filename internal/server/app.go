package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/tools"
)

// AppOptions are what NewApp needs besides the config.
type AppOptions struct {
	Version string
	Logger  *slog.Logger
	// Credentials gives users' Jenkins credentials. Nil: nobody is linked.
	Credentials credentials.Source
	// Audit receives audit records. Nil: structured log lines.
	Audit audit.Recorder
	// IdPClient carries requests to the identity provider. Nil: a client
	// with a 10 s timeout.
	IdPClient *http.Client
	// NoAuth turns authentication off, acting as NoAuthUser. Benchmarks
	// only: it measures what authentication costs.
	NoAuth     bool
	NoAuthUser identity.Principal
}

// App is a configured Butler HTTP server.
type App struct {
	// Handler serves /mcp, the metadata, /healthz, /readyz and, unless
	// server.metrics_listen is set, /metrics.
	Handler http.Handler
	// Metrics serves /metrics, for server.metrics_listen.
	Metrics  http.Handler
	verifier *authn.Verifier
	mcp      *mcp.Server
	inflight *atomic.Int64
}

// Drain waits for the tool calls in flight to finish, then closes every MCP
// session, which ends the clients' long-lived event streams so a graceful
// shutdown does not wait for them.
func (a *App) Drain(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for a.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for ss := range a.mcp.Sessions() {
		_ = ss.Close()
	}
}

// Close stops background work (key refresh).
func (a *App) Close() {
	if a.verifier != nil {
		a.verifier.Close()
	}
}

// NewApp wires Butler from a validated serve config.
func NewApp(ctx context.Context, cfg *config.Config, o AppOptions) (*App, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := metrics.New()
	app := &App{Metrics: m.Handler()}
	var verifier TokenVerifier
	if !o.NoAuth {
		opts := authn.Options{
			Issuer: cfg.Auth.Issuer, Audiences: cfg.Audiences(), JWKSURL: cfg.Auth.JWKSURL,
			Algorithms: cfg.Auth.Algorithms, ClockSkew: cfg.Auth.ClockSkew, JWKSMinRefresh: cfg.Auth.JWKSMinRefresh,
			UserClaim: cfg.Auth.UserClaim, GroupsClaim: cfg.Auth.GroupsClaim, HTTPClient: o.IdPClient, Logger: logger,
		}
		if in := cfg.Auth.Introspection; in.URL != "" {
			opts.Introspection = &authn.Introspection{URL: in.URL, ClientID: in.ClientID, ClientSecret: in.ClientSecret.Reveal(), CacheTTL: in.CacheTTL}
		}
		v, err := authn.New(ctx, opts)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		app.verifier, verifier = v, v
	}
	jc, err := NewJenkinsClient(cfg, logger, m.ObserveJenkins)
	if err != nil {
		return nil, err
	}
	creds := o.Credentials
	if creds == nil {
		creds = credentials.NewMemory(nil)
	}
	rec := o.Audit
	if rec == nil {
		rec = audit.LogRecorder{Logger: logger}
	}
	az := authz.New(&authz.Options{ToolScopes: cfg.ScopesFor})
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: creds,
		Authorizer:  az,
		Audit:       rec,
		Principal:   Principal,
		RequestMeta: RequestMeta,
		Observe:     m.ObserveTool,
		Version:     o.Version,
		ConnectURL:  cfg.ConnectURL(),
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	app.mcp = NewMCPServer(ts, o.Version, logger)
	app.Handler, app.inflight = newHTTPHandler(HTTPDeps{
		Config: cfg, Verifier: verifier, MCP: app.mcp, Tools: ts, Authz: az,
		Audit: rec, Metrics: m, Logger: logger, NoAuth: o.NoAuth, NoAuthUser: o.NoAuthUser, Now: time.Now,
	})
	return app, nil
}
