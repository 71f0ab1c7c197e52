// Package app is Butler's composition root: the one package, besides the
// command, that reads the configuration. It turns a validated config into
// components (Jenkins client, store, vault, credentials, authorizer,
// limiter, audit writer, tools, MCP server, HTTP handler) and hands each
// one plain values, so no other package depends on the config's shape.
//
// Every collaborator can be replaced through Options (a store, a token
// verifier, a credential source, an audit recorder, a limiter): benchmarks
// and tests build the same stack as production with fakes in those places,
// and there is no switch that turns a check off.
package app

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/connect"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/server"
	"github.com/butler-mcp/butler/internal/store"
	"github.com/butler-mcp/butler/internal/telemetry/export"
	"github.com/butler-mcp/butler/internal/tools"
)

// Options are what New needs besides the config. Every collaborator left
// nil is built from the config.
type Options struct {
	Version string
	Logger  *slog.Logger
	// Store replaces the store of store.dsn; the App then does not close
	// it.
	Store store.Store
	// Verifier replaces the token verifier of auth.*.
	Verifier server.TokenVerifier
	// Credentials replaces the credential source of jenkins.credentials.
	Credentials credentials.Source
	// Audit replaces the audit writer into the store.
	Audit audit.Recorder
	// Limiter replaces the rate limiter of limits.*.
	Limiter ratelimit.Limiter
	// IdPClient carries requests to the identity provider. Nil: a client
	// with a 10 s timeout.
	IdPClient *http.Client
	// TracerProvider replaces the tracer provider of telemetry.traces
	// (tests record spans in memory); the App then does not shut it down.
	TracerProvider trace.TracerProvider
	// Commit is the VCS commit of the build, for butler_build_info.
	Commit string
}

// App is a configured Butler HTTP server.
type App struct {
	// Handler serves /mcp, the metadata, /healthz, /readyz and, unless
	// server.metrics_listen is set, /metrics.
	Handler *server.Handler
	// Metrics serves /metrics, for server.metrics_listen.
	Metrics http.Handler
	// Linker links users' Jenkins accounts (per_user_token mode with the
	// stored credentials; nil otherwise).
	Linker *credentials.Linker

	metricsListen string
	logger        *slog.Logger
	verifier      *authn.Verifier
	audit         *audit.Writer
	store         store.Store
	ownsStore     bool
	closeRL       func() error
	// tracing is the tracer provider the App made (nil when Options gave
	// one); Close flushes it.
	tracing *export.Provider
	tools   *tools.Toolset // its waits end when Serve's ctx does
}

// New wires Butler from a validated serve config.
func New(ctx context.Context, cfg *config.Config, o Options) (_ *App, err error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := metrics.New()
	app := &App{Metrics: m.Handler(), metricsListen: cfg.Server.MetricsListen, logger: logger}
	defer func() {
		if err != nil {
			_ = app.Close(context.Background())
		}
	}()

	app.store, app.ownsStore = o.Store, o.Store == nil
	if app.store == nil {
		if app.store, err = store.OpenWithOptions(ctx, cfg.Store.DSN.Reveal(), &store.Options{Timeout: cfg.Store.Timeout}); err != nil {
			return nil, err
		}
	} else {
		app.store = store.WithTimeout(app.store, cfg.Store.Timeout)
	}
	verifier := o.Verifier
	if verifier == nil {
		if app.verifier, err = NewVerifier(ctx, cfg, o.IdPClient, logger); err != nil {
			return nil, err
		}
		verifier = app.verifier
	}
	tp := o.TracerProvider
	traced := tp != nil
	if tp == nil {
		if app.tracing, err = NewTracerProvider(ctx, cfg, o.Version, logger); err != nil {
			return nil, err
		}
		tp, traced = app.tracing, app.tracing.Enabled()
	}
	if !traced {
		tp = nil // tools and client: tracing off, a caller's trace context ignored
	}
	jc, err := newJenkinsClient(cfg, logger, m.ObserveJenkins, tp)
	if err != nil {
		return nil, err
	}
	creds := o.Credentials
	if creds == nil {
		if creds, err = app.credentialSource(ctx, cfg, jc, o.IdPClient, logger); err != nil {
			return nil, err
		}
	}
	rec := o.Audit
	if rec == nil {
		app.audit, err = audit.OpenWriter(app.store, logger, &audit.WriterOptions{Queue: cfg.Audit.Buffer, SpoolDir: cfg.AuditSpoolDir()})
		if err != nil {
			return nil, fmt.Errorf("audit.spool_dir: %w", err)
		}
		rec = app.audit
	}
	az, err := NewAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	limiter := o.Limiter
	if limiter == nil {
		limiter, app.closeRL, err = ratelimit.Open(ctx, cfg.Limits.PerUserRPS, cfg.Limits.Burst, cfg.Limits.RedisURL.Reveal(), logger)
		if err != nil {
			return nil, fmt.Errorf("limits: %w", err)
		}
	}
	var admit func() error
	if app.audit != nil {
		admit = app.audit.Accepting
	}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: creds,
		Authorizer:  az,
		Admit:       admit,
		Limiter:     limiter,
		Audit:       rec,
		Scope:       server.ScopeOf,
		Observe:     m.ObserveTool,
		Version:     o.Version,
		ConnectURL:  cfg.ConnectURL(),
		Logger:      logger,

		TracerProvider: tp,
	})
	if err != nil {
		return nil, err
	}
	app.tools = ts
	mapper, err := cfg.JenkinsUserMapper()
	if err != nil {
		return nil, fmt.Errorf("jenkins.user_template: %w", err)
	}
	ready := []server.ReadyCheck{{Name: "store", Check: app.store.Ping}}
	if cfg.Jenkins.Credentials != config.CredentialsTokenExchange {
		vault, err := NewVault(cfg)
		if err != nil {
			return nil, err
		}
		keys := credentials.NewKeyCheck(app.store, vault, logger)
		if err := keys.Check(ctx); err != nil { // on first start, seals the canary
			logger.Error("vault key check failed; /readyz says not ready until it passes", "err", err)
		}
		ready = append(ready, server.ReadyCheck{Name: "vault_key", Check: keys.Check})
	}
	app.watch(m, o, verifier, ready)
	origins := cfg.Origins()
	page, err := app.connectPage(cfg, o.IdPClient, logger)
	if err != nil {
		return nil, err
	}
	app.Handler = server.NewHandler(server.Options{
		MCP:        server.NewMCPServer(ts, o.Version, logger),
		Verifier:   verifier,
		Authorizer: az,
		Audit:      rec,
		Metrics:    m,
		Logger:     logger,
		PublicURL:  cfg.Server.PublicURL,
		Metadata: authn.ResourceMetadata{
			Resource:             cfg.ResourceURL(),
			AuthorizationServers: []string{cfg.Auth.Issuer},
			ScopesSupported:      cfg.Auth.ScopesSupported,
			ResourceName:         "Butler (Jenkins for AI agents)",
		},
		AllowOrigin: func(origin string) bool {
			o, err := config.CanonicalOrigin(origin)
			return err == nil && slices.Contains(origins, o)
		},
		Stateless:    cfg.Server.Stateless,
		ServeMetrics: cfg.Server.MetricsListen == "",
		JenkinsUser:  mapper,
		ClockSkew:    cfg.Auth.ClockSkew,
		Ready:        ready,
		Sessions: server.SessionLimits{Max: cfg.Server.MaxSessions, PerUser: cfg.Server.MaxSessionsPerUser,
			Idle: cfg.Server.SessionIdleTimeout},
		MaxUnauthenticated: cfg.Server.MaxUnauthenticatedInflight,
		Connect:            page,
	})
	return app, nil
}

// connectPage returns the /connect page when web.client_id is set (nil
// otherwise), linking through the same Linker as `butler link`. It
// accepts POSTs only from public_url's own Origin.
func (app *App) connectPage(cfg *config.Config, idp *http.Client, logger *slog.Logger) (http.Handler, error) {
	if cfg.Web.ClientID == "" {
		return nil, nil
	}
	if app.Linker == nil {
		// token_exchange (or a credential source given in Options): there
		// is no stored token to link.
		logger.Warn("web.client_id is set, but /connect links stored API tokens (jenkins.credentials: per_user_token): not serving /connect")
		return nil, nil
	}
	key, err := cfg.WebSessionKey()
	if err != nil {
		return nil, err
	}
	own, err := config.CanonicalOrigin(cfg.Server.PublicURL)
	if err != nil {
		u := strings.TrimRight(cfg.Server.PublicURL, "/")
		if own, err = config.CanonicalOrigin(u); err != nil {
			return nil, fmt.Errorf("server.public_url: %w", err)
		}
	}
	if idp == nil {
		idp = &http.Client{Timeout: 10 * time.Second}
	}
	h, err := connect.New(connect.Options{
		PublicURL:    cfg.Server.PublicURL,
		Issuer:       cfg.Auth.Issuer,
		ClientID:     cfg.Web.ClientID,
		ClientSecret: cfg.Web.ClientSecret.Reveal(),
		SessionKey:   key,
		UserClaim:    cfg.Auth.UserClaim,
		Algorithms:   cfg.Auth.Algorithms,
		JenkinsURL:   cfg.Jenkins.URL,
		AllowOrigin: func(origin string) bool {
			o, err := config.CanonicalOrigin(origin)
			return err == nil && o == own
		},
		HTTPClient: idp,
		Store:      app.store,
		Linker:     app.Linker,
		Logger:     logger,
	})
	if err != nil {
		return nil, fmt.Errorf("web: %w", err)
	}
	return h, nil
}

// ShutdownGrace is how long in-flight calls get to finish after SIGTERM.
const ShutdownGrace = 25 * time.Second

// Serve serves the app on ln (and /metrics on server.metrics_listen when
// set) until ctx ends, then shuts down gracefully: in-flight calls finish
// (up to ShutdownGrace) and event streams are closed. It closes ln.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if a.metricsListen != "" {
		mln, err := net.Listen("tcp", a.metricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.Metrics)
		go func() { _ = server.ListenAndServe(ctx, mln, mux, time.Second, a.logger, nil) }()
	}
	// In-flight calls run on a context shutdown does not cancel, so that
	// they finish; a wait_for_build would hold the shutdown for up to ten
	// minutes, so waits are told to end when shutdown begins.
	stop := context.AfterFunc(ctx, a.tools.Shutdown)
	defer stop()
	return server.ListenAndServe(ctx, ln, a.Handler, ShutdownGrace, a.logger, a.Handler.Drain)
}

// credentialSource builds the source jenkins.credentials selects, and in
// per_user_token mode the Linker over it.
func (app *App) credentialSource(ctx context.Context, cfg *config.Config, jc *jenkins.Client, idp *http.Client, logger *slog.Logger) (credentials.Source, error) {
	if cfg.Jenkins.Credentials == config.CredentialsTokenExchange {
		if app.verifier == nil {
			return nil, errors.New("token_exchange needs the identity provider's metadata")
		}
		te := cfg.Jenkins.TokenExchange
		return credentials.NewExchange(credentials.ExchangeOptions{
			TokenEndpoint: app.verifier.TokenEndpoint, Audience: te.Audience,
			ClientID: te.ClientID, ClientSecret: te.ClientSecret.Reveal(), HTTPClient: idp,
			UserClaim: cfg.Auth.UserClaim,
		}), nil
	}
	stored, linker, err := newStored(cfg, app.store, jc, logger)
	if err != nil {
		return nil, err
	}
	app.Linker = linker
	// Credentials sealed with an old key are sealed again with the current
	// one (key rotation), off the start-up path.
	go func() {
		if n, err := stored.Reseal(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("re-sealing credentials with the current vault key failed", "err", err)
		} else if n > 0 {
			logger.Info("re-sealed credentials with the current vault key", "count", n)
		}
	}()
	return stored, nil
}

// newStored returns the stored credentials of cfg over st and the Linker
// that verifies tokens with jc before storing them.
func newStored(cfg *config.Config, st store.Store, jc *jenkins.Client, logger *slog.Logger) (*credentials.Stored, *credentials.Linker, error) {
	vault, err := NewVault(cfg)
	if err != nil {
		return nil, nil, err
	}
	mapper, err := cfg.JenkinsUserMapper()
	if err != nil {
		return nil, nil, fmt.Errorf("jenkins.user_template: %w", err)
	}
	stored := credentials.NewStored(st, vault, nil, logger)
	return stored, credentials.NewLinker(jc, stored, mapper), nil
}

// Close flushes the audit records still queued (none is lost on
// shutdown) and the spans not yet exported, then releases the store, the
// rate limiter and key refresh.
func (a *App) Close(ctx context.Context) error {
	var errs []error
	if a.audit != nil {
		errs = append(errs, a.audit.Close(ctx))
	}
	if a.tracing != nil {
		errs = append(errs, a.tracing.Shutdown(ctx))
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

// NewVerifier returns the token verifier of auth.*: JWTs against the
// issuer's keys, opaque tokens by introspection when configured.
func NewVerifier(ctx context.Context, cfg *config.Config, idp *http.Client, logger *slog.Logger) (*authn.Verifier, error) {
	opts := authn.Options{
		Issuer: cfg.Auth.Issuer, Audiences: cfg.Audiences(), JWKSURL: cfg.Auth.JWKSURL,
		Algorithms: cfg.Auth.Algorithms, ClockSkew: cfg.Auth.ClockSkew, JWKSMinRefresh: cfg.Auth.JWKSMinRefresh,
		UserClaim: cfg.Auth.UserClaim, GroupsClaim: cfg.Auth.GroupsClaim, HTTPClient: idp, Logger: logger,
	}
	if in := cfg.Auth.Introspection; in.URL != "" {
		opts.Introspection = &authn.Introspection{URL: in.URL, ClientID: in.ClientID, ClientSecret: in.ClientSecret.Reveal(), CacheTTL: in.CacheTTL, AllowMissingAudience: in.AllowMissingAudience}
	}
	v, err := authn.New(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return v, nil
}

// NewAuthorizer builds the authorizer of cfg: its policy file, or the
// built-in default policy, its tool scopes and guest mode.
func NewAuthorizer(cfg *config.Config) (*authz.Authorizer, error) {
	opts := &authz.Options{ToolScopes: cfg.ScopesFor, PolicyName: "built-in default policy", AllowGuest: cfg.Auth.AllowGuest}
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

// NewLogger returns the debug logger the config asks for, writing to w.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// NewJenkinsClient returns the Jenkins client of cfg: one keep-alive HTTP
// client for every user, trusting cfg's extra CA file if any.
func NewJenkinsClient(cfg *config.Config, logger *slog.Logger, observe func(string, int, time.Duration)) (*jenkins.Client, error) {
	return newJenkinsClient(cfg, logger, observe, nil)
}

// newJenkinsClient is NewJenkinsClient recording a span per request with
// tp (nil: none), sending Jenkins a traceparent if the config says so.
func newJenkinsClient(cfg *config.Config, logger *slog.Logger, observe func(string, int, time.Duration), tp trace.TracerProvider) (*jenkins.Client, error) {
	t := jenkins.NewTransport()
	if cfg.Jenkins.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.Jenkins.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("jenkins.tls_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("jenkins.tls_ca_file %s: no PEM certificate found", cfg.Jenkins.TLSCAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return jenkins.New(cfg.Jenkins.URL, &jenkins.Options{
		HTTPClient: &http.Client{Transport: t},
		Timeout:    cfg.Jenkins.Timeout,
		Logger:     logger,
		Observe:    observe,

		TracerProvider: tp,
		Traceparent:    tp != nil && cfg.Telemetry.Traces.JenkinsTraceparent,
	})
}

// NewStdio returns the MCP server of `butler stdio`: one local user,
// identified by the Jenkins credential in cfg, whose every Jenkins call uses
// that credential. There is no OAuth, so no scopes; the policy still applies.
func NewStdio(cfg *config.Config, version string, logger *slog.Logger) (*mcp.Server, error) {
	jc, err := NewJenkinsClient(cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	az, err := NewAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	user := cfg.Jenkins.User
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: user, APIToken: cfg.Jenkins.APIToken}},
		Authorizer:  az,
		Audit:       audit.LogRecorder{Logger: logger},
		Scope:       tools.FixedPrincipal(identity.Principal{User: user, JenkinsUser: user, Local: true}),
		Version:     version,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	return server.NewMCPServer(ts, version, logger), nil
}

// OpenStore opens the store of cfg for an admin command. With mustExist a
// SQLite file that does not exist is an error (a mistyped path must not
// create an empty database for `butler audit` to show).
func OpenStore(ctx context.Context, cfg *config.Config, mustExist bool) (store.Store, error) {
	return store.OpenWithOptions(ctx, cfg.Store.DSN.Reveal(), &store.Options{MustExist: mustExist, Timeout: cfg.Store.Timeout})
}

// OpenLinker returns the Linker of cfg for `butler link`, over its own
// store (which close releases).
func OpenLinker(ctx context.Context, cfg *config.Config, logger *slog.Logger) (_ *credentials.Linker, close func() error, _ error) {
	jc, err := NewJenkinsClient(cfg, logger, nil)
	if err != nil {
		return nil, nil, err
	}
	st, err := OpenStore(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	_, linker, err := newStored(cfg, st, jc, logger)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return linker, st.Close, nil
}
