// Package credentials gives the Jenkins credential of a user. It is the only
// place that touches users' secrets: a stored API token (per_user_token
// mode), a token exchanged at the identity provider (token_exchange mode), or
// in stdio mode the one local user's own token. There is no shared account
// that acts for users in any mode.
package credentials

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
)

// ErrNotLinked: the user has no Jenkins credential stored.
var ErrNotLinked = errors.New("jenkins account not linked")

// ErrRejected: Jenkins rejected the user's stored credential (a 401, or an
// answer as anonymous) and it is not sent again until the user links
// again. It wraps ErrNotLinked: to the user, the account is not linked.
var ErrRejected = fmt.Errorf("%w: Jenkins rejected the stored credential", ErrNotLinked)

// Source returns the Jenkins credential to act for a principal.
type Source interface {
	// For returns the principal's credential, or an error wrapping
	// ErrNotLinked when there is none.
	For(ctx context.Context, p identity.Principal) (jenkins.Credential, error)
	// Linked reports whether the principal has a credential, without
	// using it (no exchange, no Jenkins call).
	Linked(ctx context.Context, p identity.Principal) (bool, error)
}

// Rejecter is implemented by sources that cache or store credentials:
// Rejected tells them Jenkins refused cred, the credential they gave for
// p, so it must not be used again (an exchanged token is dropped, a stored
// one is marked rejected until the user links again).
type Rejecter interface {
	Rejected(ctx context.Context, p identity.Principal, cred jenkins.Credential)
}

// Local is the credential source of stdio mode: one local user whose API
// token came from the config or the environment. It serves only that user.
type Local struct {
	Credential jenkins.Credential
}

// For returns the local credential when p is the local user.
func (l Local) For(_ context.Context, p identity.Principal) (jenkins.Credential, error) {
	if p.Guest || p.User != l.Credential.User {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: %w", p.Name(), ErrNotLinked)
	}
	return l.Credential, nil
}

// Linked reports whether p is the local user.
func (l Local) Linked(ctx context.Context, p identity.Principal) (bool, error) {
	_, err := l.For(ctx, p)
	return err == nil, nil
}

// Memory holds users' Jenkins credentials in memory, keyed by user id. It
// serves the demo, whose users' Jenkins tokens are known in advance, until
// a persistent store is configured.
type Memory struct {
	mu    sync.RWMutex
	creds map[string]jenkins.Credential
}

// NewMemory returns a Memory holding creds (user id → credential).
func NewMemory(creds map[string]jenkins.Credential) *Memory {
	m := &Memory{creds: map[string]jenkins.Credential{}}
	for k, v := range creds {
		m.creds[k] = v
	}
	return m
}

// Set stores (or replaces) a user's credential.
func (m *Memory) Set(user string, c jenkins.Credential) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.creds[user] = c
}

// For returns the principal's credential. It must belong to the Jenkins
// user the principal maps to: a credential is never used for anyone else.
func (m *Memory) For(_ context.Context, p identity.Principal) (jenkins.Credential, error) {
	if p.Guest || p.User == "" {
		return jenkins.Credential{}, fmt.Errorf("credentials: guest: %w", ErrNotLinked)
	}
	m.mu.RLock()
	c, ok := m.creds[p.User]
	m.mu.RUnlock()
	if !ok || c.User != p.JenkinsUser {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: %w", p.User, ErrNotLinked)
	}
	return c, nil
}

// Linked reports whether the principal has a credential.
func (m *Memory) Linked(ctx context.Context, p identity.Principal) (bool, error) {
	_, err := m.For(ctx, p)
	return err == nil, nil
}
