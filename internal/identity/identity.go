// Package identity defines the Principal: who a request acts for. It is the
// one vocabulary the authentication, authorization, credential, tool and
// audit layers share, so the user id from the token is the same key
// everywhere (credential store, audit record, MCP session).
package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
)

// Principal is the caller of a request.
type Principal struct {
	// User is the user id from the token's user claim (TokenInfo.UserID);
	// in stdio mode, the local Jenkins user. Empty for a guest.
	User string
	// JenkinsUser is the Jenkins user id the user maps to
	// (jenkins.user_template).
	JenkinsUser string
	// Groups come from the token's groups claim.
	Groups []string
	// Scopes the token grants.
	Scopes []string
	// ClientID is the OAuth client the token was issued to.
	ClientID string
	// Guest is true for a request without a token (guest mode).
	Guest bool
	// Local is true in stdio mode: no OAuth, so no scopes are checked.
	Local bool
	// AccessToken is the caller's bearer token, kept only so it can be
	// exchanged at the identity provider (RFC 8693) for a Jenkins token.
	// It is never sent to Jenkins, logged or stored.
	AccessToken Token
}

// Token is a secret string that never prints: String, GoString, LogValue
// and MarshalJSON all redact it.
type Token string

// Reveal returns the token itself, for the one place that needs it.
func (t Token) Reveal() string { return string(t) }

func (t Token) String() string {
	if t == "" {
		return ""
	}
	return "[redacted]"
}

// GoString redacts, so %#v cannot print the token either.
func (t Token) GoString() string { return t.String() }

// LogValue redacts the token in structured logs.
func (t Token) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON redacts the token in JSON.
func (t Token) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }

// Format redacts the token for every fmt verb.
func (t Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(t.String())) }

// Guest is the principal of a request without a token.
func Guest() Principal { return Principal{Guest: true} }

// HasScope reports whether the principal's token grants scope.
func (p Principal) HasScope(scope string) bool { return slices.Contains(p.Scopes, scope) }

// Name is the user id, or "anonymous" for a guest.
func (p Principal) Name() string {
	if p.Guest {
		return "anonymous"
	}
	return p.User
}

type ctxKey struct{}

// NewContext returns ctx carrying p.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal in ctx, if any.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(Principal)
	return p, ok
}
