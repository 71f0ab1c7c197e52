package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
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
	// MaxUnauthenticated bounds the requests without a valid token in
	// progress at once (server.max_unauthenticated_inflight); more get
	// 503. Zero: no bound.
	MaxUnauthenticated int
	// BodyTimeout bounds reading a request body; default
	// DefaultBodyTimeout.
	BodyTimeout time.Duration
}

// DefaultBodyTimeout bounds how long a client may take to send its
// request body: a slow client holds a connection (and, before
// authentication, a slot of the unauthenticated requests) for at most this
// long.
const DefaultBodyTimeout = 10 * time.Second

// readBody reads the whole body of a POST within timeout (the body limit
// is LimitBody's) and puts it back for the SDK. Past the timeout the
// connection's reads fail, so the server closes it.
func readBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) ([]byte, error) {
	if r.Method != http.MethodPost || r.Body == nil {
		return nil, nil
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(timeout)) // not every writer supports it (tests)
	data, err := io.ReadAll(r.Body)
	if err != nil {
		// Keep the deadline: the server must not wait for the rest of a
		// body that came too slowly; the connection is closed.
		return nil, err
	}
	_ = rc.SetReadDeadline(time.Time{})
	r.Body.Close()
	r.Body = io.NopCloser(bytes.NewReader(data))
	return data, err
}

// authenticator is the state of the Authenticate middleware.
type authenticator struct {
	AuthOptions
	// unauthenticated holds a slot per request without a valid token in
	// progress (nil: no bound).
	unauthenticated chan struct{}
}

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
	if o.BodyTimeout <= 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	a := &authenticator{AuthOptions: o}
	if o.MaxUnauthenticated > 0 {
		a.unauthenticated = make(chan struct{}, o.MaxUnauthenticated)
	}
	return a.wrap
}

func (a *authenticator) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		// A request without a valid token costs Butler work on behalf of
		// nobody: at most MaxUnauthenticated such requests are read and
		// answered at once, more get 503. A valid token never waits for
		// that bound, so slow anonymous clients cannot hold up users (token
		// verification has bounds of its own: cached keys, rate-limited
		// refetches, at most 16 introspection calls).
		admitted := false
		admit := func() bool {
			if admitted = a.admitUnauthenticated(); !admitted {
				a.authFailure("overloaded")
				a.Audit.Record(ctx, a.begin(r, identity.Principal{}, nil).Failed(a.Now(), "unavailable", "too many requests without a valid token in progress"))
				w.Header().Set("Retry-After", "1")
				writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "too many requests without a valid token in progress; retry later")
			}
			return admitted
		}
		release := func() {
			if admitted {
				admitted = false
				a.releaseUnauthenticated()
			}
		}
		defer release()

		token, present, berr := authn.BearerToken(r)
		var p identity.Principal
		var expiry time.Time
		switch {
		case !present && !a.Authorizer.AllowsGuests():
			if admit() {
				a.refuse(w, r, a.peek(w, r), http.StatusUnauthorized, authn.Challenge{}, "missing_token", "no bearer token", identity.Principal{})
			}
			return
		case !present:
			if !admit() {
				return
			}
			p = identity.Guest()
		case berr != nil:
			if admit() {
				a.refuseToken(w, r, a.peek(w, r), berr)
			}
			return
		default:
			id, err := a.Verifier.Verify(ctx, token)
			if err != nil {
				if admit() {
					a.refuseToken(w, r, a.peek(w, r), err)
				}
				return
			}
			p, expiry = a.principal(ctx, id, token), id.Expiry
		}
		data, err := readBody(w, r, a.BodyTimeout)
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				writeJSONError(w, http.StatusRequestEntityTooLarge, "request_too_large", "the request body is too large")
				return
			}
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "the request body could not be read in time")
			return
		}
		var msgs []rpcMessage
		if data != nil {
			if msgs, err = parseBody(data); err != nil {
				detail := strings.TrimPrefix(err.Error(), "parse error: ")
				a.auditParseError(r, p, detail)
				writeJSONRPCError(w, http.StatusBadRequest, -32700, "Parse error: "+detail)
				return
			}
		}
		wr := wireOf(r.Header, msgs)
		if p.Guest {
			for _, m := range msgs {
				if !a.Authorizer.GuestMay(wr.revision, m.Method, m.Tool) {
					a.refuse(w, r, []rpcMessage{m}, http.StatusUnauthorized, authn.Challenge{}, "missing_token", "no bearer token", identity.Principal{})
					return
				}
			}
		} else {
			// Step-up: a tools/call needs its tool's scopes (only
			// tools/call checks them, so a client can still list and
			// discover).
			for _, m := range msgs {
				if !m.isToolCall() || m.BadParams {
					continue
				}
				if d := a.Authorizer.ScopeCheck(p, m.Tool); !d.Allow {
					need := strings.Join(d.RequiredScopes, " ")
					a.refuse(w, r, []rpcMessage{m}, http.StatusForbidden,
						authn.Challenge{Error: "insufficient_scope", Scopes: d.RequiredScopes, Description: "the " + catalog.Label(m.Tool) + " tool needs scope " + need},
						"insufficient_scope", d.Reason, p)
					return
				}
			}
		}
		release()
		a.auditBadParams(r, msgs, p)
		a.serveAs(w, r.WithContext(withWire(ctx, wr)), next, p, expiry)
	})
}

// peek reads the body of a request about to be refused, for its audit
// record (the tool it called); a body that cannot be read or parsed yields
// no messages. The body is bounded in size (LimitBody) and time.
func (a *authenticator) peek(w http.ResponseWriter, r *http.Request) []rpcMessage {
	data, err := readBody(w, r, a.BodyTimeout)
	if err != nil || data == nil {
		return nil
	}
	msgs, _ := parseBody(data)
	return msgs
}

// principal is the principal of a verified token.
func (a *authenticator) principal(ctx context.Context, id *authn.Identity, token string) identity.Principal {
	jenkinsUser, err := a.JenkinsUser(id.User)
	if err != nil {
		// The user maps to no Jenkins account: every Jenkins call is
		// denied (the tools refuse a principal without JenkinsUser).
		a.Logger.WarnContext(ctx, "cannot map user to a Jenkins user", "user", id.User, "err", err)
		jenkinsUser = ""
	}
	return identity.Principal{User: id.User, JenkinsUser: jenkinsUser, Groups: id.Groups, Scopes: id.Scopes, ClientID: id.ClientID,
		AccessToken: secret.String(token)}
}

// auditBadParams writes the record of each tools/call whose params the SDK
// cannot read: it answers them itself, before any tool, so without this
// they would leave no trace.
func (a *authenticator) auditBadParams(r *http.Request, msgs []rpcMessage, p identity.Principal) {
	for _, m := range msgs {
		if m.isToolCall() && m.BadParams {
			now := a.Now()
			sc := *scopeOf(r.Context())
			sc.Principal = p
			a.Audit.Record(r.Context(), audit.Begin(now, &sc, catalog.Unknown).Failed(now, "invalid_argument", "tools/call params are not an object with a string name"))
		}
	}
}

// auditParseError writes the one record of a request refused with a
// JSON-RPC parse error (CONTRACT §9: one refused request, one record,
// whatever its body holds, a batch included). Nothing of the body can be
// trusted, so the tool is the bounded label catalog.Unknown and the reason
// only the parser's short, escaped complaint.
//
// A guest's parse error writes none: it is not an authentication failure
// (guests are allowed) nor a tools/call that reached MCP, and a record per
// anonymous request would let anyone fill the audit log at no cost.
// Without guest mode a request without a valid token never gets this far:
// authentication refuses it first, with its record.
func (a *authenticator) auditParseError(r *http.Request, p identity.Principal, detail string) {
	if p.Guest {
		return
	}
	now := a.Now()
	sc := *scopeOf(r.Context())
	sc.Principal = p
	rec := audit.Begin(now, &sc, "").Failed(now, "invalid_argument", "the request body is not a JSON-RPC message or batch (parse error): "+detail)
	rec.Tool = catalog.Unknown
	a.Audit.Record(r.Context(), rec)
	if a.Metrics != nil {
		a.Metrics.ObserveTool(rec.Tool, rec.Decision, rec.Code, 0)
	}
}

func (a *authenticator) admitUnauthenticated() bool {
	if a.unauthenticated == nil {
		return true
	}
	select {
	case a.unauthenticated <- struct{}{}:
		return true
	default:
		return false
	}
}

func (a *authenticator) releaseUnauthenticated() {
	if a.unauthenticated != nil {
		<-a.unauthenticated
	}
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
func (a *authenticator) refuseToken(w http.ResponseWriter, r *http.Request, msgs []rpcMessage, err error) {
	var ae *authn.Error
	reason, desc := "malformed", "the token could not be verified"
	if errors.As(err, &ae) {
		reason, desc = ae.Reason, ae.Description
	}
	if errors.Is(err, authn.ErrUnavailable) {
		a.authFailure("unavailable")
		a.Audit.Record(r.Context(), a.begin(r, identity.Principal{}, msgs).Failed(a.Now(), "unavailable", "authorization server unavailable: "+desc))
		w.Header().Set("Retry-After", "5")
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the authorization server cannot be reached to verify the token; retry later")
		return
	}
	a.refuse(w, r, msgs, http.StatusUnauthorized, authn.Challenge{Error: "invalid_token", Description: desc}, reason, desc, identity.Principal{})
}

// refuse writes a challenge and the audit records of the refused request.
func (a *authenticator) refuse(w http.ResponseWriter, r *http.Request, msgs []rpcMessage, status int, c authn.Challenge, reason, desc string, p identity.Principal) {
	c.ResourceMetadata = a.MetadataURL
	if c.Scopes == nil {
		c.Scopes = a.ScopesSupported
	}
	a.authFailure(reason)
	code := authz.CodeUnauthenticated
	if status == http.StatusForbidden {
		code = authz.CodeInsufficientScope
	}
	rec := a.begin(r, p, msgs).Denied(a.Now(), code, desc)
	a.Audit.Record(r.Context(), rec)
	if a.Metrics != nil && rec.Tool != "" {
		a.Metrics.ObserveTool(rec.Tool, rec.Decision, rec.Code, 0)
	}
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

// begin starts the one audit record of a request refused before MCP,
// whatever its body holds: it names the first tools/call of the body (as
// a catalog tool or "unknown"), if any was read.
func (a *authenticator) begin(r *http.Request, p identity.Principal, msgs []rpcMessage) *audit.Builder {
	sc := *scopeOf(r.Context())
	sc.Principal = p
	for _, m := range msgs {
		if m.isToolCall() {
			tool := m.Tool
			if m.BadParams || tool == "" {
				tool = catalog.Unknown
			}
			return audit.Begin(a.Now(), &sc, tool).Resource(m.resource())
		}
	}
	return audit.Begin(a.Now(), &sc, "")
}
