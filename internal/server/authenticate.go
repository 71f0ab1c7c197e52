package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/requestid"
)

// rpcCall is what authentication needs to know of one JSON-RPC message.
type rpcCall struct {
	Method string `json:"method"`
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			Job any `json:"job"`
		} `json:"arguments"`
	} `json:"params"`
}

// resource is the canonical job path named by a tools/call, for the audit
// record of a call refused before it reached the tools.
func (c rpcCall) resource() string {
	if s, ok := c.Params.Arguments.Job.(string); ok {
		if p, err := jobpath.Parse(s); err == nil {
			return p.String()
		}
	}
	return ""
}

// peekCalls reads the JSON-RPC message(s) of a POST without consuming the
// body. A body that is not JSON-RPC yields no calls; the MCP layer answers
// it with the right JSON-RPC error.
func peekCalls(r *http.Request) ([]rpcCall, error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, nil
	}
	data, err := io.ReadAll(r.Body)
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	var calls []rpcCall
	if len(trimmed) > 0 && trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &calls) != nil {
			return nil, nil
		}
		return calls, nil
	}
	var one rpcCall
	if json.Unmarshal(trimmed, &one) != nil {
		return nil, nil
	}
	return []rpcCall{one}, nil
}

// guestMethods are what a request without a token may do in guest mode,
// besides calling guest tools: set up a session and discover the tools.
var guestMethods = []string{"initialize", "ping", "tools/list", "logging/setLevel"}

// guestMay reports whether every message of a guest request is allowed.
func (h *httpServer) guestMay(calls []rpcCall) bool {
	for _, c := range calls {
		switch {
		case c.Method == "" || strings.HasPrefix(c.Method, "notifications/") || slices.Contains(guestMethods, c.Method):
		case c.Method == "tools/call":
			if class, ok := h.d.Tools.Class(c.Params.Name); !ok || class != authz.ClassGuest {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// authenticate turns the bearer token into a principal, or answers with the
// challenge of CONTRACT §3: 401 with resource_metadata and scope (plus
// error="invalid_token" when a token failed), 403 insufficient_scope when a
// valid token lacks a tool's scopes. Tokens are read only from the
// Authorization header.
func (h *httpServer) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h.d.NoAuth {
			h.serveAs(w, r, next, h.d.NoAuthUser, nil)
			return
		}
		calls, err := peekCalls(r)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSONError(w, http.StatusRequestEntityTooLarge, "request_too_large", "the request body is too large")
				return
			}
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read")
			return
		}
		token, present, berr := authn.BearerToken(r)
		switch {
		case !present && h.cfg.Auth.AllowGuest && h.guestMay(calls):
			next.ServeHTTP(w, r.WithContext(identity.NewContext(ctx, identity.Guest())))
			return
		case !present:
			h.refuse(w, r, calls, http.StatusUnauthorized, authn.Challenge{}, "missing_token", "no bearer token", identity.Principal{})
			return
		case berr != nil:
			h.refuseToken(w, r, calls, berr)
			return
		}
		id, err := h.d.Verifier.Verify(ctx, token)
		if err != nil {
			h.refuseToken(w, r, calls, err)
			return
		}
		jenkinsUser, err := h.jenkinsUser(id.User)
		if err != nil {
			h.d.Logger.WarnContext(ctx, "cannot map user to a Jenkins user", "user", id.User, "err", err)
			jenkinsUser = ""
		}
		p := identity.Principal{User: id.User, JenkinsUser: jenkinsUser, Groups: id.Groups, Scopes: id.Scopes, ClientID: id.ClientID,
			AccessToken: identity.Token(token)}
		// Step-up: a tools/call needs its tool's scopes (CONTRACT §8: only
		// tools/call checks them, so a client can still list and discover).
		for _, c := range calls {
			if c.Method != "tools/call" {
				continue
			}
			need := h.cfg.ScopesFor(c.Params.Name)
			if slices.ContainsFunc(need, func(s string) bool { return !p.HasScope(s) }) {
				h.refuse(w, r, []rpcCall{c}, http.StatusForbidden,
					authn.Challenge{Error: "insufficient_scope", Scopes: need, Description: "the " + c.Params.Name + " tool needs scope " + strings.Join(need, " ")},
					"insufficient_scope", "the token lacks scope "+strings.Join(need, " ")+" needed by "+c.Params.Name, p)
				return
			}
		}
		h.serveAs(w, r, next, p, id)
	})
}

// serveAs continues the chain as principal p.
func (h *httpServer) serveAs(w http.ResponseWriter, r *http.Request, next http.Handler, p identity.Principal, id *authn.Identity) {
	ti := &auth.TokenInfo{UserID: p.User, Scopes: p.Scopes, Extra: map[string]any{"principal": p}}
	if id != nil {
		ti.Expiration = id.Expiry
	} else {
		ti.Expiration = h.d.Now().Add(time.Hour)
	}
	ctx := identity.NewContext(r.Context(), p)
	ctx = context.WithValue(ctx, tokenInfoKey{}, ti)
	next.ServeHTTP(w, r.WithContext(ctx))
}

// refuseToken answers a token that failed verification: 401 invalid_token
// naming the failed check, or 503 when the authorization server is needed
// and cannot be reached.
func (h *httpServer) refuseToken(w http.ResponseWriter, r *http.Request, calls []rpcCall, err error) {
	var ae *authn.Error
	reason, desc := "malformed", "the token could not be verified"
	if errors.As(err, &ae) {
		reason, desc = ae.Reason, ae.Description
	}
	if errors.Is(err, authn.ErrUnavailable) {
		h.d.Metrics.AuthFailure("unavailable")
		h.auditCalls(r, calls, "unavailable", "authorization server unavailable: "+desc, identity.Principal{}, audit.Error)
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the authorization server cannot be reached to verify the token; retry later")
		return
	}
	h.refuse(w, r, calls, http.StatusUnauthorized, authn.Challenge{Error: "invalid_token", Description: desc}, reason, desc, identity.Principal{})
}

// refuse writes a challenge and the audit records of the refused request.
func (h *httpServer) refuse(w http.ResponseWriter, r *http.Request, calls []rpcCall, status int, c authn.Challenge, reason, desc string, p identity.Principal) {
	c.ResourceMetadata = h.metadataURL
	if c.Scopes == nil {
		c.Scopes = h.cfg.Auth.ScopesSupported
	}
	h.d.Metrics.AuthFailure(reason)
	code := authz.CodeUnauthenticated
	if status == http.StatusForbidden {
		code = authz.CodeInsufficientScope
	}
	h.auditCalls(r, calls, code, desc, p, audit.Deny)
	w.Header().Set("WWW-Authenticate", c.String())
	errCode := c.Error
	if errCode == "" {
		errCode = "unauthorized"
	}
	writeJSONError(w, status, errCode, desc)
}

// auditCalls writes one record per tools/call of a refused request, or a
// single record when it held none (an authentication failure).
func (h *httpServer) auditCalls(r *http.Request, calls []rpcCall, code, reason string, p identity.Principal, decision string) {
	base := audit.Record{
		Time: h.d.Now().UTC(), RequestID: requestid.FromContext(r.Context()), User: p.User, JenkinsUser: p.JenkinsUser,
		ClientID: p.ClientID, Decision: decision, Code: code, Reason: reason, RemoteAddr: r.RemoteAddr,
	}
	wrote := false
	for _, c := range calls {
		if c.Method == "tools/call" {
			rec := base
			rec.Tool, rec.Resource = c.Params.Name, c.resource()
			h.d.Audit.Record(r.Context(), rec)
			h.d.Metrics.ObserveTool(rec.Tool, decision, code, 0)
			wrote = true
		}
	}
	if !wrote {
		h.d.Audit.Record(r.Context(), base)
	}
}

// auditAuthFailure records a refusal that is not about a token's validity
// (a session used by another user).
func (h *httpServer) auditAuthFailure(r *http.Request, reason, desc string) {
	p, _ := identity.FromContext(r.Context())
	h.d.Metrics.AuthFailure(reason)
	h.d.Audit.Record(r.Context(), audit.Record{
		Time: h.d.Now().UTC(), RequestID: requestid.FromContext(r.Context()), User: p.User, JenkinsUser: p.JenkinsUser,
		ClientID: p.ClientID, Decision: audit.Deny, Code: authz.CodeForbidden, Reason: desc, RemoteAddr: r.RemoteAddr,
	})
}
