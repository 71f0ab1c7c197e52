package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/requestid"
	"github.com/butler-mcp/butler/internal/tools"
)

// Headers the HTTP chain sets on each /mcp request, after removing any the
// client sent, so tools can read trusted request metadata from
// mcp.RequestExtra.Header.
const (
	headerRequestID  = "X-Request-Id"
	headerRemoteAddr = "X-Butler-Remote-Addr"
)

// MaxBodyBytes bounds an /mcp request body. Tool arguments are small; a
// larger body is refused with 413 before it is read.
const MaxBodyBytes = 1 << 20

// TokenVerifier turns a bearer token into an identity (authn.Verifier).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*authn.Identity, error)
	Ready(ctx context.Context) error
}

// HTTPDeps are the parts the HTTP server is built from.
type HTTPDeps struct {
	Config   *config.Config
	Verifier TokenVerifier
	MCP      *mcp.Server
	Tools    *tools.Toolset
	Authz    *authz.Authorizer
	Audit    audit.Recorder
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	// ReadyChecks are further readiness conditions (the store).
	ReadyChecks []func(context.Context) error
	// NoAuth turns authentication off: every request acts as NoAuthUser.
	// It exists only to measure what authentication costs (benchmarks);
	// no command or config key sets it.
	NoAuth     bool
	NoAuthUser identity.Principal
	Now        func() time.Time
}

// newHTTPHandler returns Butler's HTTP handler: /mcp behind the chain, the
// RFC 9728 metadata, health, readiness and (unless served elsewhere)
// metrics.
// It also returns the count of /mcp POSTs in flight, for a graceful drain.
func newHTTPHandler(d HTTPDeps) (http.Handler, *atomic.Int64) {
	if d.Now == nil {
		d.Now = time.Now
	}
	cfg := d.Config
	resourceMetadataURL := cfg.Server.PublicURL + "/.well-known/oauth-protected-resource/mcp"
	h := &httpServer{d: d, cfg: cfg, metadataURL: resourceMetadataURL, origins: cfg.Origins(),
		sessions: newSessionOwners(30 * time.Minute), inflight: new(atomic.Int64)}
	if mapper, err := cfg.JenkinsUserMapper(); err == nil {
		h.jenkinsUser = mapper
	} else {
		h.jenkinsUser = func(string) (string, error) { return "", err } // Validate refuses such configs
	}

	streamable := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return d.MCP }, &mcp.StreamableHTTPOptions{
		Stateless:           cfg.Server.Stateless,
		Logger:              d.Logger,
		SessionTimeout:      30 * time.Minute,
		MaxRequestBodyBytes: MaxBodyBytes,
	})

	mux := http.NewServeMux()
	meta := authn.ResourceMetadataHandler(authn.ResourceMetadata{
		Resource:             cfg.ResourceURL(),
		AuthorizationServers: []string{cfg.Auth.Issuer},
		ScopesSupported:      cfg.Auth.ScopesSupported,
		ResourceName:         "Butler (Jenkins for AI agents)",
	})
	mux.Handle("/.well-known/oauth-protected-resource/mcp", meta)
	mux.Handle("/.well-known/oauth-protected-resource", meta)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", h.ready)
	if cfg.Server.MetricsListen == "" {
		mux.Handle("GET /metrics", d.Metrics.Handler())
	}
	// The chain of CONTRACT §3 / ARCHITECTURE, in order. Request id and
	// logging wrap everything; the rest guards /mcp only (the metadata must
	// stay readable cross-origin).
	mux.Handle("/mcp", chain(h.mcpHandler(streamable),
		h.checkOrigin,
		h.limitBody,
		h.authenticate,
	))
	return chain(mux, h.withRequestID, h.logRequests), h.inflight
}

// chain applies middleware so that the first one listed runs first.
func chain(h http.Handler, mw ...func(http.Handler) http.Handler) http.Handler {
	for _, m := range slices.Backward(mw) {
		h = m(h)
	}
	return h
}

type httpServer struct {
	inflight    *atomic.Int64 // POSTs to /mcp being served
	jenkinsUser func(user string) (string, error)
	d           HTTPDeps
	cfg         *config.Config
	metadataURL string
	origins     []string
	sessions    *sessionOwners
}

// withRequestID gives every request an id, returned in X-Request-Id and
// carried to the tools in a header the client cannot set.
func (h *httpServer) withRequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := requestid.New()
		r.Header.Set(headerRequestID, id)
		r.Header.Set(headerRemoteAddr, r.RemoteAddr)
		w.Header().Set(headerRequestID, id)
		ctx := requestid.NewContext(r.Context(), id)
		ctx = audit.WithRemoteAddr(ctx, r.RemoteAddr)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// logRequests writes one debug line per request and counts it. It never
// logs headers, so no token reaches the log.
func (h *httpServer) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		route := r.URL.Path
		if strings.HasPrefix(route, "/.well-known/") {
			route = "/.well-known"
		} else if !slices.Contains([]string{"/mcp", "/healthz", "/readyz", "/metrics"}, route) {
			route = "other"
		}
		h.d.Metrics.ObserveHTTP(route, sw.code())
		h.d.Logger.DebugContext(r.Context(), "http request", "method", r.Method, "path", route,
			"status", sw.code(), "duration", time.Since(start), "request_id", requestid.FromContext(r.Context()))
	})
}

// checkOrigin refuses browser requests from origins other than Butler's own
// and the configured ones (DNS rebinding, CSRF), before authentication.
func (h *httpServer) checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin, present := r.Header["Origin"]
		if present {
			o, err := config.CanonicalOrigin(strings.Join(origin, ""))
			if err != nil || !slices.Contains(h.origins, o) {
				writeJSONError(w, http.StatusForbidden, "forbidden_origin", "requests from this Origin are not allowed")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// limitBody bounds the request body.
func (h *httpServer) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > MaxBodyBytes {
			writeJSONError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the request body is larger than %d bytes", MaxBodyBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// ready reports whether the IdP keys (or introspection) and the store are
// usable.
func (h *httpServer) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	checks := h.d.ReadyChecks
	if h.d.Verifier != nil {
		checks = append([]func(context.Context) error{h.d.Verifier.Ready}, checks...)
	}
	for _, check := range checks {
		if err := check(ctx); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %v\n", err)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ready")
}

// mcpHandler is the innermost step: bind the session to its user, give the
// SDK the token info (so it binds sessions too and passes the principal to
// the tools), and serve MCP.
func (h *httpServer) mcpHandler(streamable http.Handler) http.Handler {
	inject := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if ti, ok := ctx.Value(tokenInfoKey{}).(*auth.TokenInfo); ok {
			return ti, nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{ClockSkew: h.cfg.Auth.ClockSkew})
	withToken := inject(streamable)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			h.inflight.Add(1)
			defer h.inflight.Add(-1)
		}
		p, _ := identity.FromContext(r.Context())
		if !h.cfg.Server.Stateless {
			var ok bool
			if w, ok = h.sessions.admit(w, r, p); !ok {
				h.auditAuthFailure(r, "session_user_mismatch", "the MCP session belongs to another user")
				return
			}
		}
		if _, ok := r.Context().Value(tokenInfoKey{}).(*auth.TokenInfo); ok {
			withToken.ServeHTTP(w, r)
			return
		}
		streamable.ServeHTTP(w, r)
	})
}

type tokenInfoKey struct{}

// Principal returns the principal of a tool call over HTTP, from the token
// info the chain attached; a call without one is a guest's.
func Principal(_ context.Context, extra *mcp.RequestExtra) identity.Principal {
	if extra != nil && extra.TokenInfo != nil {
		if p, ok := extra.TokenInfo.Extra["principal"].(identity.Principal); ok {
			return p
		}
	}
	return identity.Guest()
}

// RequestMeta returns the request id and remote address the chain put in
// the request's headers.
func RequestMeta(ctx context.Context, extra *mcp.RequestExtra) (string, string) {
	if extra != nil && extra.Header != nil {
		if id := extra.Header.Get(headerRequestID); id != "" {
			return id, extra.Header.Get(headerRemoteAddr)
		}
	}
	_, id := requestid.Ensure(ctx)
	return id, audit.RemoteAddr(ctx)
}

// statusWriter remembers the status code. It passes Flush through, which
// server-sent event streams need.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) code() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// writeJSONError writes a short JSON error naming the failed check: never a
// library's error chain, key material or a token.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
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
