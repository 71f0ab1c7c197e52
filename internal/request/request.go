// Package request holds the Scope of one request: who it acts for, its id
// and where it came from. The HTTP chain makes one Scope per request and
// every later layer (MCP, tools, audit, limits) reads that same value, so
// none of them re-derives the principal or trusts a header for it.
package request

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/identity"
)

// Scope is what is known of one request before any tool runs.
type Scope struct {
	// Principal is who the request acts for: a user, a guest, or the local
	// user of stdio mode.
	Principal identity.Principal
	// ID ties together the request's log lines, audit records and error
	// messages; it is returned to the client in X-Request-Id.
	ID string
	// RemoteAddr is the client's network address (host:port) as the
	// listener saw it; "" in stdio mode.
	RemoteAddr string
	// Expiry is when the credential behind Principal stops being valid
	// (the token's exp); zero when it has none (guests, stdio).
	Expiry time.Time
	// Done, when not nil, is closed when the HTTP request ends, which for
	// a tool call in progress means its client went away. A sessionless
	// MCP revision has no session in which notifications/cancelled could
	// reach the call, and the SDK does not cancel a handler whose client
	// disconnected, so the tools stop a call when Done closes.
	Done <-chan struct{}
}

// NewID returns a fresh random request id (16 hex characters).
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LimitKey is the key the caller's rate limit is spent under: the user,
// or for a guest the client's host (guests have no other identity).
func (s *Scope) LimitKey() string {
	if !s.Principal.Guest {
		return "user:" + s.Principal.User
	}
	host, _, err := net.SplitHostPort(s.RemoteAddr)
	if err != nil {
		host = s.RemoteAddr
	}
	return "guest:" + host
}

type ctxKey struct{}

// NewContext returns ctx carrying s.
func NewContext(ctx context.Context, s *Scope) context.Context {
	return context.WithValue(ctx, ctxKey{}, s)
}

// FromContext returns the scope ctx carries.
func FromContext(ctx context.Context) (*Scope, bool) {
	s, ok := ctx.Value(ctxKey{}).(*Scope)
	return s, ok && s != nil
}

// extraKey is the one key of auth.TokenInfo.Extra that Butler uses: the
// MCP SDK hands a handler only the TokenInfo of its HTTP request, so that
// is how the scope crosses the SDK.
const extraKey = "butler.scope"

// TokenInfo returns the token information the MCP SDK gets for the
// request: the user id (the SDK binds sessions to it; "" for a guest, whose
// sessions a user may take over), the expiry and the scope itself.
func (s *Scope) TokenInfo() *auth.TokenInfo {
	exp := s.Expiry
	if exp.IsZero() {
		// Guests have no token to expire; the SDK wants a time. A request
		// is served well within an hour.
		exp = time.Now().Add(time.Hour)
	}
	return &auth.TokenInfo{UserID: s.Principal.User, Scopes: s.Principal.Scopes, Expiration: exp,
		Extra: map[string]any{extraKey: s}}
}

// FromExtra returns the scope the HTTP chain attached to an MCP request.
func FromExtra(extra *mcp.RequestExtra) (*Scope, bool) {
	if extra == nil || extra.TokenInfo == nil {
		return nil, false
	}
	s, ok := extra.TokenInfo.Extra[extraKey].(*Scope)
	return s, ok && s != nil
}
