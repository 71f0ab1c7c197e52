// Package identity defines the Principal: who a request acts for. It is the
// one vocabulary the authentication, authorization, credential, tool and
// audit layers share, so the user id from the token is the same key
// everywhere (credential store, audit record, MCP session).
package identity

import (
	"context"
	"slices"

	"github.com/butler-mcp/butler/internal/secret"
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
	AccessToken secret.String
}

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
