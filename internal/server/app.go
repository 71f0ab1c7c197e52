package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/store"
	"github.com/butler-mcp/butler/internal/tools"
)

// AppOptions are what NewApp needs besides the config.
type AppOptions struct {
	Version string
	Logger  *slog.Logger
	// Store, if set, is used instead of opening store.dsn; the App then
	// does not close it.
	Store store.Store
	// Credentials, if set, replaces the source the config selects.
	Credentials credentials.Source
	// IdPClient carries requests to the identity provider. Nil: a client
	// with a 10 s timeout.
	IdPClient *http.Client
	// NoAuth turns authentication off, acting as NoAuthUser; NoAuthz turns
	// the policy, rate limit and stored credentials off too (NoAuthUser's
	// credential then comes from Credentials). Benchmarks only: they
	// measure what each layer costs. No command or config key sets them.
	NoAuth, NoAuthz bool
	NoAuthUser      identity.Principal
}

// App is a configured Butler HTTP server.
type App struct {
	// Handler serves /mcp, the metadata, /healthz, /readyz and, unless
	// server.metrics_listen is set, /metrics.
	Handler http.Handler
	// Metrics serves /metrics, for server.metrics_listen.
	Metrics http.Handler
	// Stored is the per-user credential source (nil in token_exchange
	// mode or when Credentials was given).
	Stored *credentials.Stored

	verifier  *authn.Verifier
	mcp       *mcp.Server
	inflight  *atomic.Int64
	audit     *audit.Writer
	store     store.Store
	ownsStore bool
	closeRL   func() error
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

// Close flushes the audit records still queued (none is lost on
// shutdown), then releases the store, the rate limiter and key refresh.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.audit != nil {
		errs = append(errs, a.audit.Close(ctx))
	}
	if a.closeRL != nil {
		errs = append(errs, a.closeRL())
	}
	if a.ownsStore && a.store != nil {
		errs = append(errs, a.store.Close())
	}
	if a.verifier != nil {
		a.verifier.Close()
	}
	return errors.Join(errs...)
}

// LoadAuthorizer builds the authorizer of cfg: its policy file, or the
// built-in default policy, and its tool scopes.
func LoadAuthorizer(cfg *config.Config) (*authz.Authorizer, error) {
	opts := &authz.Options{ToolScopes: cfg.ScopesFor, PolicyName: "built-in default policy"}
	if cfg.Policy.File != "" {
		src, err := os.ReadFile(cfg.Policy.File)
		if err != nil {
			return nil, fmt.Errorf("policy.file: %w", err)
		}
		opts.Policy, opts.PolicyName = src, cfg.Policy.File
	}
	return authz.NewWithPolicy(opts)
}

// NewVault returns the credential vault of cfg (store.vault_key and
// store.vault_old_keys).
func NewVault(cfg *config.Config) (*credentials.Vault, error) {
	cur, old, err := cfg.VaultKeys()
	if err != nil {
		return nil, fmt.Errorf("store.vault_key: %w", err)
	}
	return credentials.NewVault(cur, old)
}

// NewApp wires Butler from a validated serve config.
func NewApp(ctx context.Context, cfg *config.Config, o AppOptions) (_ *App, err error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := metrics.New()
	app := &App{Metrics: m.Handler()}
	defer func() {
		if err != nil {
			_ = app.Close(context.Background())
		}
	}()

	app.store, app.ownsStore = o.Store, o.Store == nil
	if app.store == nil {
		if app.store, err = store.Open(ctx, cfg.Store.DSN.Reveal()); err != nil {
			return nil, err
		}
	}
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
		switch cfg.Jenkins.Credentials {
		case config.CredentialsTokenExchange:
			if app.verifier == nil {
				return nil, errors.New("token_exchange needs the identity provider's metadata")
			}
			te := cfg.Jenkins.TokenExchange
			creds = credentials.NewExchange(credentials.ExchangeOptions{
				TokenEndpoint: app.verifier.TokenEndpoint, Audience: te.Audience,
				ClientID: te.ClientID, ClientSecret: te.ClientSecret.Reveal(), HTTPClient: o.IdPClient,
			})
		default:
			vault, err := NewVault(cfg)
			if err != nil {
				return nil, err
			}
			app.Stored = credentials.NewStored(app.store, vault, nil, logger)
			creds = app.Stored
			// Credentials sealed with an old key are sealed again with the
			// current one (key rotation), off the start-up path.
			go func() {
				if n, err := app.Stored.Reseal(context.WithoutCancel(ctx)); err != nil {
					logger.Warn("re-sealing credentials with the current vault key failed", "err", err)
				} else if n > 0 {
					logger.Info("re-sealed credentials with the current vault key", "count", n)
				}
			}()
		}
	}
	app.audit = audit.NewWriter(app.store, logger, nil)
	az, err := LoadAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	var limiter ratelimit.Limiter
	if !o.NoAuthz {
		limiter, app.closeRL, err = ratelimit.Open(ctx, cfg.Limits.PerUserRPS, cfg.Limits.Burst, cfg.Limits.RedisURL.Reveal(), logger)
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
	}
	var rec audit.Recorder = app.audit
	if o.NoAuthz {
		az = authz.New(nil) // the default policy, no scopes: the cheapest choke point
		rec = audit.LogRecorder{Logger: slog.New(slog.DiscardHandler)}
	}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: creds,
		Authorizer:  az,
		Limiter:     limiter,
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
		ReadyChecks: []func(context.Context) error{func(ctx context.Context) error {
			if err := app.store.Ping(ctx); err != nil {
				return fmt.Errorf("store: %w", err)
			}
			return nil
		}},
	})
	return app, nil
}
