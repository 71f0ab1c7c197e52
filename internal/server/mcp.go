package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/tools"
)

// Instructions tell a model what Butler is for and how to use it well.
const Instructions = `Butler gives you access to Jenkins as the signed-in user: you can see and do exactly what that user's own Jenkins account may, nothing more.
Jobs are named by their full path, folders joined by '/', for example 'frontend/web-app'.
When a build failed, call diagnose_build first: it names the failed stage, the decisive log lines, failing tests and recent commits in one small answer.
Typical flow: list_all_jobs or get_job to find a job and its parameters; trigger_job to start it (then get_queue_item / get_build to follow it); get_build_log with tail_lines, or search_build_log, to find why a build failed; get_test_results for failing tests.
For a Pipeline build: get_pipeline_stages to find the failed stage, get_stage_log with its id to read only that stage; list_pending_inputs and submit_input for a build waiting at an input step.
Errors start with a code: not_found means the item does not exist or the user may not see it; forbidden means Jenkins or the policy denied the action; do not retry those unchanged.`

// NewMCPServer returns an MCP server exposing the toolset.
func NewMCPServer(ts *tools.Toolset, version string, logger *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "butler", Title: "Butler: Jenkins for AI agents", Version: version}, &mcp.ServerOptions{
		Instructions: Instructions,
		Logger:       logger,
		HasTools:     true,
		SetCacheable: cacheScope,
	})
	ts.Register(s)
	s.AddReceivingMiddleware(refuseUndeclared)
	return s
}

// undeclaredMethods are the methods of the capabilities Butler does not
// declare: it offers tools (and, before 2026-07-28, logging), no prompts,
// resources or completions. The SDK answers them anyway, with empty lists
// (go-sdk v1.8.0 mcp/server.go, serverMethodInfos: listPrompts,
// listResources, ...), which tells a client the server has prompts it did
// not declare; SEP-2575 requires server/discover's capabilities to match
// what the server honours, and a method the server does not offer is
// "Method not found" (-32601, HTTP 404 in 2026-07-28).
var undeclaredMethods = map[string]bool{
	"prompts/list": true, "prompts/get": true,
	"resources/list": true, "resources/read": true, "resources/templates/list": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"completion/complete": true,
}

// refuseUndeclared answers the methods of undeclared capabilities with
// "Method not found", in every revision.
func refuseUndeclared(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if undeclaredMethods[method] {
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: "method not found: Butler offers tools only, no prompts, resources or completions"}
		}
		return next(ctx, method, req)
	}
}

// cacheScope sets the cache hints (SEP-2549: ttlMs, cacheScope) of the
// results that carry them. The SDK marks every one "public" unless told
// otherwise (go-sdk v1.8.0 mcp/protocol.go, Cacheable.normalize), which
// lets a client or intermediary serve one caller's answer to another; but
// tools/list is filtered per caller (tools.Toolset.filterList: the policy
// decides who sees which tool), so it and every other answer are
// "private". Only server/discover is the same for everyone (versions,
// capabilities, instructions) and stays public. ttlMs stays 0 (stale at
// once): a policy reload or a new link changes the tool list at any time.
func cacheScope(_ context.Context, req mcp.Request, c *mcp.Cacheable) {
	if _, ok := req.(*mcp.DiscoverRequest); ok {
		c.CacheScope = "public"
		return
	}
	c.CacheScope = "private"
}

// ScopeOf is the tools' Scope function over HTTP: the scope the chain
// attached to the request. A request without one gets nil, which the tools
// treat as a guest's.
func ScopeOf(_ context.Context, extra *mcp.RequestExtra) *request.Scope {
	sc, _ := request.FromExtra(extra)
	return sc
}

// scopeMarker replaces the client's Authorization header on the request
// handed to the MCP SDK: the SDK's token middleware needs a bearer header to
// attach TokenInfo, and the caller's real token has no business below the
// authentication step (the principal keeps it for token exchange only).
const scopeMarker = "Bearer butler-request-scope"

// ServeMCP is the innermost step: it hands the request to the MCP SDK with
// the request scope attached as the SDK's TokenInfo (the SDK binds
// sessions to its user id and gives it to every tool call).
func ServeMCP(streamable http.Handler, clockSkew time.Duration) http.Handler {
	inject := auth.RequireBearerToken(func(ctx context.Context, _ string, _ *http.Request) (*auth.TokenInfo, error) {
		if sc, ok := request.FromContext(ctx); ok {
			return sc.TokenInfo(), nil
		}
		return nil, auth.ErrInvalidToken
	}, &auth.RequireBearerTokenOptions{ClockSkew: clockSkew})
	withScope := inject(streamable)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", scopeMarker)
		withScope.ServeHTTP(w, r)
	})
}

// BindSessions binds each MCP session to the user who created it, so that
// nobody else's token is served on it, and bounds the sessions (see
// sessionOwners); a refusal is audited and counted.
func BindSessions(owners *sessionOwners, rec audit.Recorder, m *metrics.Metrics, now func() time.Time) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := scopeOf(r.Context())
			w, r, done, outcome := owners.admit(w, r, sc.Principal)
			switch outcome {
			case refusedOwner:
				if m != nil {
					m.AuthFailure("session_user_mismatch")
				}
				t := now()
				rec.Record(r.Context(), audit.Begin(t, sc, "").Denied(t, authz.CodeForbidden, "the MCP session belongs to another user"))
				writeJSONError(w, http.StatusForbidden, "forbidden", "this MCP session belongs to another user; start a new session")
				return
			case refusedFull:
				if m != nil {
					m.AuthFailure("too_many_sessions")
				}
				t := now()
				rec.Record(r.Context(), audit.Begin(t, sc, "").Failed(t, "rate_limited", "too many MCP sessions; none of the caller's is idle"))
				w.Header().Set("Retry-After", "10")
				writeJSONError(w, http.StatusTooManyRequests, "too_many_sessions", "too many MCP sessions are open for you; close one (DELETE) or retry later")
				return
			}
			sw := &statusWriter{ResponseWriter: w}
			defer func() { done(sw.code()) }()
			next.ServeHTTP(sw, r)
			if hook, ok := w.(*headerHook); ok {
				hook.fire() // an answer with no body still names its session
			}
		})
	}
}
