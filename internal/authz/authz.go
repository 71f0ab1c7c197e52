// Package authz is Butler's authorization choke point. Every tools/call
// asks Decide, and tools/list asks it to filter, so no tool can skip a
// check. A decision is taken in the order of CONTRACT §5 and the first
// denial is final: authentication (guests reach only guest tools), then
// OAuth scope, then policy. Jenkins's own permission is the last gate and is
// enforced by calling Jenkins with the user's credential, outside this
// package.
package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/butler-mcp/butler/internal/identity"
)

// Class is how sensitive a tool is.
type Class int

// Tool classes (CONTRACT §4).
const (
	ClassGuest         Class = iota // may be called without a token (health)
	ClassAuthenticated              // any authenticated user; touches no Jenkins job
	ClassRead                       // reads Jenkins as the user
	ClassSensitive                  // changes Jenkins as the user (trigger, stop, cancel)
)

func (c Class) String() string {
	switch c {
	case ClassGuest:
		return "guest"
	case ClassAuthenticated:
		return "authenticated"
	case ClassRead:
		return "read"
	case ClassSensitive:
		return "sensitive"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Denial codes, as recorded in the audit log.
const (
	CodeUnauthenticated   = "unauthenticated"
	CodeInsufficientScope = "insufficient_scope"
	CodeForbidden         = "forbidden"
)

// Request is one question to the authorizer.
type Request struct {
	Principal identity.Principal
	Tool      string
	Class     Class
	// Job is the canonical job path the call is about, "" when none.
	Job string
	// Parameters are a trigger's build parameters (policy context).
	Parameters map[string]any
}

// Decision is the answer, with its reasons.
type Decision struct {
	Allow bool
	// Code says which check denied: CodeUnauthenticated,
	// CodeInsufficientScope or CodeForbidden. Empty when allowed.
	Code   string
	Reason string
	// RequiredScopes are the scopes the call needs (for the
	// insufficient_scope challenge), set when Code is CodeInsufficientScope.
	RequiredScopes []string
	// Policies are the ids of the policies that decided, when a policy did.
	Policies []string
}

// Options configure an Authorizer.
type Options struct {
	// ToolScopes returns the OAuth scopes a tool needs (all of them).
	// Nil: no tool needs a scope.
	ToolScopes func(tool string) []string
}

// Authorizer takes decisions. It is safe for concurrent use.
type Authorizer struct {
	toolScopes func(string) []string
}

// New returns an Authorizer.
func New(opts *Options) *Authorizer {
	a := &Authorizer{toolScopes: func(string) []string { return nil }}
	if opts != nil && opts.ToolScopes != nil {
		a.toolScopes = opts.ToolScopes
	}
	return a
}

// Decide answers whether req may run. Local (stdio) principals have no
// OAuth token, so scopes are not checked for them.
func (a *Authorizer) Decide(ctx context.Context, req Request) Decision {
	if d, done := a.authenticate(req); done {
		return d
	}
	if !req.Principal.Guest && !req.Principal.Local {
		need := a.toolScopes(req.Tool)
		var missing []string
		for _, s := range need {
			if !req.Principal.HasScope(s) {
				missing = append(missing, s)
			}
		}
		if len(missing) > 0 {
			return Decision{Code: CodeInsufficientScope, RequiredScopes: slices.Clone(need),
				Reason: fmt.Sprintf("the token lacks scope %s needed by %s", strings.Join(missing, ", "), req.Tool)}
		}
	}
	return Decision{Allow: true, Reason: "allowed"}
}

// Visible reports whether the principal may see tool in tools/list: the
// same checks as Decide except scopes, so a client can still discover a
// tool and step up to the scope it needs.
func (a *Authorizer) Visible(ctx context.Context, p identity.Principal, tool string, class Class) bool {
	d, done := a.authenticate(Request{Principal: p, Tool: tool, Class: class})
	return !done || d.Allow
}

func (a *Authorizer) authenticate(req Request) (Decision, bool) {
	if req.Principal.Guest && req.Class != ClassGuest {
		return Decision{Code: CodeUnauthenticated, Reason: fmt.Sprintf("%s needs an authenticated user", req.Tool)}, true
	}
	if !req.Principal.Guest && req.Principal.User == "" {
		return Decision{Code: CodeUnauthenticated, Reason: "no user in the request"}, true
	}
	return Decision{}, false
}
