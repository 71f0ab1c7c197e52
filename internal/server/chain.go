package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
)

// headerRequestID returns the request id to the client.
const headerRequestID = "X-Request-Id"

// WithScope gives every request its scope: a fresh request id (returned in
// X-Request-Id) and the client's address, with no principal yet. Nothing
// the client sends is taken for either.
func WithScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sc := &request.Scope{ID: request.NewID(), RemoteAddr: r.RemoteAddr, Done: r.Context().Done()}
		w.Header().Set(headerRequestID, sc.ID)
		next.ServeHTTP(w, r.WithContext(request.NewContext(r.Context(), sc)))
	})
}

// scopeOf returns the request's scope; a request that did not pass
// WithScope gets an empty one (and a fresh id), never a shared value.
func scopeOf(ctx context.Context) *request.Scope {
	if sc, ok := request.FromContext(ctx); ok {
		return sc
	}
	return &request.Scope{ID: request.NewID()}
}

// routes are the paths counted under their own name; anything else is
// "other", so a client cannot grow the route label.
var routes = []string{"/mcp", "/healthz", "/readyz", "/metrics", "/connect", "/connect/callback"}

// LogRequests writes one debug line per request and counts it by route and
// status. It never logs headers, so no token reaches the log.
func LogRequests(m *metrics.Metrics, logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			next.ServeHTTP(sw, r)
			route := r.URL.Path
			if strings.HasPrefix(route, "/.well-known/") {
				route = "/.well-known"
			} else if !slices.Contains(routes, route) {
				route = "other"
			}
			if m != nil {
				m.ObserveHTTP(route, sw.code())
			}
			logger.DebugContext(r.Context(), "http request", "method", r.Method, "path", route,
				"status", sw.code(), "duration", time.Since(start), "request_id", scopeOf(r.Context()).ID)
		})
	}
}

// CheckOrigin refuses browser requests whose Origin header allow does not
// accept (DNS rebinding, CSRF), before authentication. A request without
// the header (not from a browser) passes.
func CheckOrigin(allow func(origin string) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if origin, present := r.Header["Origin"]; present && (allow == nil || !allow(strings.Join(origin, ""))) {
				writeJSONError(w, http.StatusForbidden, "forbidden_origin", "requests from this Origin are not allowed")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody refuses a body declared larger than max with 413 and stops
// reading one that turns out larger.
func LimitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				writeJSONError(w, http.StatusRequestEntityTooLarge, "request_too_large", fmt.Sprintf("the request body is larger than %d bytes", max))
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}

// Readiness answers 200 "ready" when every check passes, else 503 naming
// the first dependency that is not ready; the error itself (URLs, dial
// errors) goes only to the log.
func Readiness(checks []ReadyCheck, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		for _, c := range checks {
			if err := c.Check(ctx); err != nil {
				logger.WarnContext(ctx, "not ready", "dependency", c.Name, "err", err)
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintf(w, "not ready: %s\n", c.Name)
				return
			}
		}
		fmt.Fprintln(w, "ready")
	})
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

// writeJSONRPCError answers a request the MCP layer must not see with a
// JSON-RPC error (id null: the request could not be read).
func writeJSONRPCError(w http.ResponseWriter, status, code int, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"jsonrpc": "2.0", "id": nil, "error": map[string]any{"code": code, "message": message}})
}

// writeJSONError writes a short JSON error naming the failed check: never a
// library's error chain, key material or a token.
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}
