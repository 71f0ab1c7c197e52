package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/secret"
)

// AuthOptions configure Authenticate.
type AuthOptions struct {
	Verifier TokenVerifier
	// Authorizer decides what a guest may do and which scopes a tool
	// needs; this layer only asks it.
	Authorizer *authz.Authorizer
	// JenkinsUser maps a user id to its Jenkins user id.
	JenkinsUser func(user string) (string, error)
	// MetadataURL is the RFC 9728 metadata URL named in every challenge.
	MetadataURL string
	// ScopesSupported are named in the challenge of a request without a
	// token.
	ScopesSupported []string
	Audit           audit.Recorder
	Metrics         *metrics.Metrics
	Logger          *slog.Logger
	Now             func() time.Time
}

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

// authenticator is the state of the Authenticate middleware.
type authenticator struct{ AuthOptions }

// Authenticate turns the bearer token into the request scope's principal,
// or answers with the challenge of docs/http.md: 401 with resource_metadata
// and scope (plus error="invalid_token" when a token failed), 403
// insufficient_scope when a valid token lacks a tool's scopes. Tokens are
// read only from the Authorization header. What a request without a token
// may do is the authorizer's decision (guest mode).
func Authenticate(o AuthOptions) func(http.Handler) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &authenticator{o}
	return a.wrap
}

func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
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
		case !present && a.guestMay(calls):
			a.serveAs(w, r, next, identity.Guest(), time.Time{})
			return
		case !present:
			a.refuse(w, r, calls, http.StatusUnauthorized, authn.Challenge{}, "missing_token", "no bearer token", identity.Principal{})
			return
		case berr != nil:
			a.refuseToken(w, r, calls, berr)
			return
		}
		id, err := a.Verifier.Verify(ctx, token)
		if err != nil {
			a.refuseToken(w, r, calls, err)
			return
		}
		jenkinsUser, err := a.JenkinsUser(id.User)
		if err != nil {
			a.Logger.WarnContext(ctx, "cannot map user to a Jenkins user", "user", id.User, "err", err)
			jenkinsUser = ""
		}
		p := identity.Principal{User: id.User, JenkinsUser: jenkinsUser, Groups: id.Groups, Scopes: id.Scopes, ClientID: id.ClientID,
			AccessToken: secret.String(token)}
		// Step-up: a tools/call needs its tool's scopes (only tools/call
		// checks them, so a client can still list and discover).
		for _, c := range calls {
			if c.Method != "tools/call" {
				continue
			}
			if d := a.Authorizer.ScopeCheck(p, c.Params.Name); !d.Allow {
				need := strings.Join(d.RequiredScopes, " ")
				a.refuse(w, r, []rpcCall{c}, http.StatusForbidden,
					authn.Challenge{Error: "insufficient_scope", Scopes: d.RequiredScopes, Description: "the " + c.Params.Name + " tool needs scope " + need},
					"insufficient_scope", d.Reason, p)
				return
			}
		}
		a.serveAs(w, r, next, p, id.Expiry)
	})
}

// guestMay reports whether every message of a request without a token is
// something the authorizer lets a guest do.
func (a *authenticator) guestMay(calls []rpcCall) bool {
	if !a.Authorizer.AllowsGuests() {
		return false
	}
	for _, c := range calls {
		if !a.Authorizer.GuestMay(c.Method, c.Params.Name) {
			return false
		}
	}
	return true
}

// serveAs continues the chain with p as the scope's principal.
func (a *authenticator) serveAs(w http.ResponseWriter, r *http.Request, next http.Handler, p identity.Principal, expiry time.Time) {
	sc := *scopeOf(r.Context())
	sc.Principal, sc.Expiry = p, expiry
	next.ServeHTTP(w, r.WithContext(request.NewContext(r.Context(), &sc)))
}

// refuseToken answers a token that failed verification: 401 invalid_token
// naming the failed check, or 503 when the authorization server is needed
// and cannot be reached.
func (a *authenticator) refuseToken(w http.ResponseWriter, r *http.Request, calls []rpcCall, err error) {
	var ae *authn.Error
	reason, desc := "malformed", "the token could not be verified"
	if errors.As(err, &ae) {
		reason, desc = ae.Reason, ae.Description
	}
	if errors.Is(err, authn.ErrUnavailable) {
		a.authFailure("unavailable")
		a.auditCalls(r, calls, identity.Principal{}, func(b *audit.Builder, now time.Time) audit.Record {
			return b.Failed(now, "unavailable", "authorization server unavailable: "+desc)
		})
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the authorization server cannot be reached to verify the token; retry later")
		return
	}
	a.refuse(w, r, calls, http.StatusUnauthorized, authn.Challenge{Error: "invalid_token", Description: desc}, reason, desc, identity.Principal{})
}

// refuse writes a challenge and the audit records of the refused request.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, calls []rpcCall, status int, c authn.Challenge, reason, desc string, p identity.Principal) {
	c.ResourceMetadata = a.MetadataURL
	if c.Scopes == nil {
		c.Scopes = a.ScopesSupported
	}
	a.authFailure(reason)
	code := authz.CodeUnauthenticated
	if status == http.StatusForbidden {
		code = authz.CodeInsufficientScope
	}
	a.auditCalls(r, calls, p, func(b *audit.Builder, now time.Time) audit.Record { return b.Denied(now, code, desc) })
	w.Header().Set("WWW-Authenticate", c.String())
	errCode := c.Error
	if errCode == "" {
		errCode = "unauthorized"
	}
	writeJSONError(w, status, errCode, desc)
}

func (a *authenticator) authFailure(reason string) {
	if a.Metrics != nil {
		a.Metrics.AuthFailure(reason)
	}
}

// auditCalls writes one record per tools/call of a refused request, or a
// single record when it held none (an authentication failure).
func (a *authenticator) auditCalls(r *http.Request, calls []rpcCall, p identity.Principal, finish func(*audit.Builder, time.Time) audit.Record) {
	sc := *scopeOf(r.Context())
	sc.Principal = p
	now := a.Now()
	wrote := false
	for _, c := range calls {
		if c.Method == "tools/call" {
			rec := finish(audit.Begin(now, &sc, c.Params.Name).Resource(c.resource()), now)
			a.Audit.Record(r.Context(), rec)
			if a.Metrics != nil {
				a.Metrics.ObserveTool(rec.Tool, rec.Decision, rec.Code, 0)
			}
			wrote = true
		}
	}
	if !wrote {
		a.Audit.Record(r.Context(), finish(audit.Begin(now, &sc, ""), now))
	}
}
