// Package server is Butler's HTTP face: the chain every /mcp request
// passes (request scope, logging, Origin, body limit, authentication,
// session binding), the RFC 9728 metadata, health, readiness and metrics,
// and a graceful ListenAndServe. Each step of the chain is its own
// middleware constructor, tested alone; Handler puts them together in
// order. The package reads no configuration: internal/app gives it plain
// values.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/metrics"
)

// MaxBodyBytes bounds an /mcp request body. Tool arguments are small; a
// larger body is refused with 413 before it is read.
const MaxBodyBytes = 1 << 20

// sessionIdle is how long an MCP session may stay unused before it is
// closed (the SDK's timeout and the owner table's).
const sessionIdle = 30 * time.Minute

// MetadataPath is where the protected resource metadata of the /mcp
// resource is served (RFC 9728 §3.1: the well-known prefix, then the
// resource's path).
const MetadataPath = "/.well-known/oauth-protected-resource/mcp"

// TokenVerifier turns a bearer token into an identity (authn.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*authn.Identity, error)
	Ready(ctx context.Context) error
}

// ReadyCheck is one condition of readiness: a name shown to anyone
// (idp, store) and the check itself, whose error goes only to the log.
type ReadyCheck struct {
	Name  string
	Check func(context.Context) error
}

// Options are what the HTTP handler is built from.
type Options struct {
	MCP        *mcp.Server
	Verifier   TokenVerifier
	Authorizer *authz.Authorizer
	Audit      audit.Recorder
	Metrics    *metrics.Metrics
	Logger     *slog.Logger
	Now        func() time.Time

	// PublicURL is Butler's public base URL (server.public_url).
	PublicURL string
	// Metadata is the protected resource metadata (RFC 9728).
	Metadata authn.ResourceMetadata
	// AllowOrigin reports whether a request's Origin header value is
	// allowed.
	AllowOrigin func(origin string) bool
	// Stateless serves MCP without sessions (several replicas).
	Stateless bool
	// ServeMetrics serves /metrics on this handler (no separate metrics
	// listener).
	ServeMetrics bool
	// JenkinsUser maps a user id to the Jenkins user id it acts as.
	JenkinsUser func(user string) (string, error)
	// ClockSkew is the tolerance on a token's expiry.
	ClockSkew time.Duration
	// Ready are the readiness conditions besides the verifier's.
	Ready []ReadyCheck
	// Sessions bound the MCP sessions (stateful mode).
	Sessions SessionLimits
	// MaxUnauthenticated bounds the requests without a valid token in
	// progress at once; zero: no bound.
	MaxUnauthenticated int
	// Connect serves the /connect page (browser sessions, outside the
	// bearer-token chain); nil: /connect is not served.
	Connect http.Handler
}

// Handler is Butler's HTTP handler with the count of /mcp POSTs in
// flight, for a graceful drain.
type Handler struct {
	http.Handler
	inflight *atomic.Int64
	mcp      *mcp.Server
}

// NewHandler returns Butler's HTTP handler: /mcp behind the chain, the
// RFC 9728 metadata, health, readiness and (with ServeMetrics) metrics.
func NewHandler(o Options) *Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	metadataURL := o.PublicURL + MetadataPath
	if o.Sessions.Idle <= 0 {
		o.Sessions.Idle = sessionIdle
	}
	newStreamable := func(stateless bool) http.Handler {
		return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return o.MCP }, &mcp.StreamableHTTPOptions{
			Stateless:           stateless,
			Logger:              o.Logger,
			SessionTimeout:      o.Sessions.Idle,
			MaxRequestBodyBytes: MaxBodyBytes,
		})
	}
	streamable := newStreamable(o.Stateless)
	// The sessionless revisions are always served statelessly (see
	// routeRevision); a stateless deployment needs no second handler.
	sessionless := streamable
	if !o.Stateless {
		sessionless = newStreamable(true)
	}
	inflight := new(atomic.Int64)

	mux := http.NewServeMux()
	meta := authn.ResourceMetadataHandler(o.Metadata)
	mux.Handle(MetadataPath, meta)
	mux.Handle("/.well-known/oauth-protected-resource", meta)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	ready := o.Ready
	if o.Verifier != nil {
		ready = append([]ReadyCheck{{Name: "idp", Check: o.Verifier.Ready}}, ready...)
	}
	mux.Handle("GET /readyz", Readiness(ready, o.Logger))
	if o.ServeMetrics {
		mux.Handle("GET /metrics", o.Metrics.Handler())
	}
	if o.Connect != nil {
		// Its own checks (OIDC login, sealed session, CSRF, Origin): a
		// browser has no bearer token.
		mux.Handle("/connect", o.Connect)
		mux.Handle("/connect/", o.Connect)
	}
	// The chain, in order. Scope and logging wrap everything; the rest
	// guards /mcp only (the metadata must stay readable cross-origin).
	steps := []func(http.Handler) http.Handler{
		CheckOrigin(o.AllowOrigin),
		LimitBody(MaxBodyBytes),
		Authenticate(AuthOptions{
			Verifier: o.Verifier, Authorizer: o.Authorizer, JenkinsUser: o.JenkinsUser,
			MetadataURL: metadataURL, ScopesSupported: o.Metadata.ScopesSupported,
			Audit: o.Audit, Metrics: o.Metrics, Logger: o.Logger, Now: o.Now, MaxUnauthenticated: o.MaxUnauthenticated,
		}),
	}
	var legacySteps []func(http.Handler) http.Handler
	if !o.Stateless {
		closeSession := func(id string) {
			for ss := range o.MCP.Sessions() {
				if ss.ID() == id {
					_ = ss.Close()
				}
			}
		}
		legacySteps = append(legacySteps, BindSessions(newSessionOwners(o.Sessions, closeSession, o.Now), o.Audit, o.Metrics, o.Now))
	}
	legacySteps = append(legacySteps, countInflight(inflight))
	legacy := Chain(ServeMCP(streamable, o.ClockSkew), legacySteps...)
	modern := Chain(ServeMCP(sessionless, o.ClockSkew), countInflight(inflight))
	mux.Handle("/mcp", Chain(routeRevision(legacy, modern), steps...))
	return &Handler{
		Handler:  Chain(mux, WithScope, LogRequests(o.Metrics, o.Logger)),
		inflight: inflight,
		mcp:      o.MCP,
	}
}

// Drain waits for the tool calls in flight to finish, then closes every MCP
// session, which ends the clients' long-lived event streams so a graceful
// shutdown does not wait for them.
func (h *Handler) Drain(ctx context.Context) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for h.inflight.Load() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
	for ss := range h.mcp.Sessions() {
		_ = ss.Close()
	}
}

// Chain applies middleware so that the first one listed runs first.
func Chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for _, m := range slices.Backward(mw) {
		h = m(h)
	}
	return h
}

// countInflight counts the POSTs being served, for Drain.
func countInflight(n *atomic.Int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method == http.MethodPost {
				n.Add(1)
				defer n.Add(-1)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ListenAndServe serves h on ln until ctx ends, then shuts down
// gracefully: it stops accepting, lets in-flight calls finish (up to
// grace), and returns. drain, if set, runs alongside the shutdown to end
// long-lived streams that would otherwise hold it until grace runs out.
func ListenAndServe(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration, logger *slog.Logger, drain func(context.Context)) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    64 << 10,
		IdleTimeout:       2 * time.Minute,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down: finishing in-flight requests", "grace", grace)
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if drain != nil {
		go drain(sctx)
	}
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("grace period over: closing remaining connections")
		err = srv.Close()
	}
	<-errc
	return err
}
