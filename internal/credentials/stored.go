package credentials

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// CacheTTL bounds how long a decrypted credential is reused in memory: an
// unlink takes effect everywhere within it (docs/operations.md: at most 5 s).
const CacheTTL = 5 * time.Second

// Store is what Stored needs of the store: the sealed credentials.
type Store interface {
	PutCredential(ctx context.Context, c store.Credential) error
	GetCredential(ctx context.Context, user string) (store.Credential, error)
	DeleteCredential(ctx context.Context, user string) error
	MarkCredentialRejected(ctx context.Context, user string, sealed []byte, at time.Time) error
	ListCredentials(ctx context.Context) ([]store.Credential, error)
}

// Stored is the credential source of per_user_token mode: each user's
// Jenkins API token, sealed by the Vault in the store.
type Stored struct {
	store  Store
	vault  *Vault
	now    func() time.Time
	logger *slog.Logger

	mu    sync.Mutex
	cache map[string]cached
}

type cached struct {
	cred    jenkins.Credential
	jenkins string
	sealed  []byte // the stored value cred came from, for MarkCredentialRejected
	until   time.Time
}

// NewStored returns a Stored source. now may be nil (time.Now).
func NewStored(s Store, v *Vault, now func() time.Time, logger *slog.Logger) *Stored {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Stored{store: s, vault: v, now: now, logger: logger, cache: map[string]cached{}}
}

// For returns the principal's stored credential. It is refused (as not
// linked) when the stored Jenkins account is not the one the principal maps
// to now: a credential is only ever used for its own account.
func (s *Stored) For(ctx context.Context, p identity.Principal) (jenkins.Credential, error) {
	if p.Guest || p.User == "" {
		return jenkins.Credential{}, fmt.Errorf("credentials: guest: %w", ErrNotLinked)
	}
	now := s.now()
	s.mu.Lock()
	c, ok := s.cache[p.User]
	s.mu.Unlock()
	if ok && now.Before(c.until) && c.jenkins == p.JenkinsUser {
		return c.cred, nil
	}
	rec, err := s.store.GetCredential(ctx, p.User)
	if errors.Is(err, store.ErrNotFound) {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: %w", p.User, ErrNotLinked)
	}
	if err != nil {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: %w", p.User, err)
	}
	// Without a mapped account (jenkins.user_template failed) no stored
	// credential matches: never use one without the account check.
	if rec.JenkinsUser != p.JenkinsUser {
		s.logger.WarnContext(ctx, "stored Jenkins account does not match the user's mapping; refusing it",
			"user", p.User, "stored_jenkins_user", rec.JenkinsUser, "expected_jenkins_user", p.JenkinsUser)
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: stored account %q is not %q: %w", p.User, rec.JenkinsUser, p.JenkinsUser, ErrNotLinked)
	}
	if !rec.RejectedAt.IsZero() {
		// Never sent again: a realm may count each rejected token as a
		// failed password (LDAP lockout).
		return jenkins.Credential{}, fmt.Errorf("credentials: %q (rejected at %s): %w", p.User, rec.RejectedAt.Format(time.RFC3339), ErrRejected)
	}
	plain, stale, err := s.vault.Open(rec.User, rec.JenkinsUser, rec.Sealed, rec.KeyID)
	if err != nil {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q: %w", p.User, err)
	}
	cred := jenkins.Credential{User: rec.JenkinsUser, APIToken: secret.String(plain)}
	sealed := rec.Sealed
	if stale {
		if resealed, err := s.put(ctx, rec.User, rec.JenkinsUser, plain, time.Time{}); err != nil {
			s.logger.WarnContext(ctx, "re-sealing a credential with the current vault key failed", "user", p.User, "err", err)
		} else {
			sealed = resealed
		}
	}
	s.mu.Lock()
	s.cache[p.User] = cached{cred: cred, jenkins: rec.JenkinsUser, sealed: sealed, until: now.Add(CacheTTL)}
	s.mu.Unlock()
	return cred, nil
}

// Linked reports whether the principal has a stored credential for the
// Jenkins account it maps to that Jenkins has not rejected, without
// decrypting it.
func (s *Stored) Linked(ctx context.Context, p identity.Principal) (bool, error) {
	if p.Guest || p.User == "" {
		return false, nil
	}
	rec, err := s.store.GetCredential(ctx, p.User)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("credentials: %q: %w", p.User, err)
	}
	return rec.JenkinsUser == p.JenkinsUser && rec.RejectedAt.IsZero(), nil
}

// Link stores token as user's credential for jenkinsUser. The caller has
// verified, with Jenkins, that the token belongs to jenkinsUser: outside
// tests, that caller is Linker.
func (s *Stored) Link(ctx context.Context, user, jenkinsUser string, token secret.String) error {
	if user == "" || jenkinsUser == "" || token == "" {
		return errors.New("credentials: link needs a user, a Jenkins user and a token")
	}
	if _, err := s.put(ctx, user, jenkinsUser, []byte(token.Reveal()), time.Time{}); err != nil {
		return err
	}
	s.forget(user)
	return nil
}

// Rejected marks p's stored credential rejected when cred, the one For
// gave, is still the one stored: For then refuses it (ErrRejected) until
// the user links again, on every replica. A credential linked since is
// left alone.
func (s *Stored) Rejected(ctx context.Context, p identity.Principal, cred jenkins.Credential) {
	if p.User == "" || cred.APIToken == "" {
		return
	}
	s.mu.Lock()
	c, ok := s.cache[p.User]
	delete(s.cache, p.User)
	s.mu.Unlock()
	sealed := c.sealed
	if !ok || c.cred.APIToken != cred.APIToken {
		// The cache moved on: find the stored value cred came from.
		rec, err := s.store.GetCredential(ctx, p.User)
		if err != nil {
			s.logger.WarnContext(ctx, "cannot mark a rejected Jenkins credential", "user", p.User, "err", err)
			return
		}
		plain, _, err := s.vault.Open(rec.User, rec.JenkinsUser, rec.Sealed, rec.KeyID)
		if err != nil || string(plain) != cred.APIToken.Reveal() {
			return // not the stored one (re-linked meanwhile)
		}
		sealed = rec.Sealed
	}
	err := s.store.MarkCredentialRejected(ctx, p.User, sealed, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		// Re-linked or unlinked meanwhile: nothing to mark.
	case err != nil:
		s.logger.WarnContext(ctx, "cannot mark a rejected Jenkins credential", "user", p.User, "err", err)
	default:
		s.logger.InfoContext(ctx, "Jenkins rejected a stored credential; it is not used again until the user links again",
			"user", p.User, "jenkins_user", cred.User)
	}
}

// Unlink removes user's credential. Other replicas stop using it within
// CacheTTL.
func (s *Stored) Unlink(ctx context.Context, user string) error {
	s.forget(user)
	if err := s.store.DeleteCredential(ctx, user); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("credentials: %q: %w", user, ErrNotLinked)
		}
		return fmt.Errorf("credentials: unlink %q: %w", user, err)
	}
	return nil
}

// Reseal seals again, with the current key, every credential sealed with
// an old one (key rotation). It returns how many it re-sealed.
func (s *Stored) Reseal(ctx context.Context) (int, error) {
	all, err := s.store.ListCredentials(ctx)
	if err != nil {
		return 0, fmt.Errorf("credentials: reseal: %w", err)
	}
	n := 0
	for _, rec := range all {
		if rec.KeyID == s.vault.CurrentKeyID() {
			continue
		}
		plain, _, err := s.vault.Open(rec.User, rec.JenkinsUser, rec.Sealed, rec.KeyID)
		if err != nil {
			return n, fmt.Errorf("credentials: reseal %q: %w", rec.User, err)
		}
		if _, err := s.put(ctx, rec.User, rec.JenkinsUser, plain, rec.RejectedAt); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// put seals secret and stores it with the rejected mark given (zero for a
// new link); it returns the sealed value.
func (s *Stored) put(ctx context.Context, user, jenkinsUser string, secret []byte, rejectedAt time.Time) ([]byte, error) {
	sealed, keyID, err := s.vault.Seal(user, jenkinsUser, secret)
	if err != nil {
		return nil, err
	}
	if err := s.store.PutCredential(ctx, store.Credential{User: user, JenkinsUser: jenkinsUser, Sealed: sealed, KeyID: keyID, RejectedAt: rejectedAt}); err != nil {
		return nil, fmt.Errorf("credentials: store %q: %w", user, err)
	}
	return sealed, nil
}

func (s *Stored) forget(user string) {
	s.mu.Lock()
	delete(s.cache, user)
	s.mu.Unlock()
}
