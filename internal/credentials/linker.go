package credentials

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
)

// Errors of linking. Each wraps into a *LinkError naming the accounts.
var (
	// ErrTokenRejected: Jenkins did not accept the token (HTTP 401).
	ErrTokenRejected = errors.New("Jenkins rejected the API token")
	// ErrWrongAccount: the token works, but for another Jenkins account
	// than the one the user maps to.
	ErrWrongAccount = errors.New("the token belongs to another Jenkins account")
	// ErrNoAccount: the user maps to no Jenkins account
	// (jenkins.user_template failed).
	ErrNoAccount = errors.New("no Jenkins account for this user")
)

// LinkError is why a Link failed, with the accounts involved.
type LinkError struct {
	Err error
	// JenkinsUser is the account the user maps to; Actual the one the
	// token belongs to (ErrWrongAccount only).
	JenkinsUser, Actual string
}

func (e *LinkError) Error() string {
	switch {
	case errors.Is(e.Err, ErrTokenRejected):
		return fmt.Sprintf("Jenkins rejected the API token for %q (HTTP 401): it is wrong, revoked, or not %q's", e.JenkinsUser, e.JenkinsUser)
	case errors.Is(e.Err, ErrWrongAccount):
		return fmt.Sprintf("the token belongs to Jenkins user %q, not %q: refusing to link someone else's account", e.Actual, e.JenkinsUser)
	}
	return e.Err.Error()
}

func (e *LinkError) Unwrap() error { return e.Err }

// WhoAmI asks Jenkins whose a credential is (jenkins.Client.Me).
type WhoAmI interface {
	Me(ctx context.Context, cred jenkins.Credential) (*jenkins.User, error)
}

// Linker is the use case of linking a person's Jenkins account: verify an
// API token with Jenkins (/me/api/json must name the account the user maps
// to), then seal and store it. `butler link` and the linking page both use
// it, so a token is never stored without that check.
type Linker struct {
	jenkins WhoAmI
	stored  *Stored
	mapUser func(user string) (string, error)
}

// NewLinker returns a Linker that asks j, stores into s, and maps users to
// Jenkins accounts with mapUser (jenkins.user_template).
func NewLinker(j WhoAmI, s *Stored, mapUser func(user string) (string, error)) *Linker {
	return &Linker{jenkins: j, stored: s, mapUser: mapUser}
}

// JenkinsUserFor returns the Jenkins account user maps to.
func (l *Linker) JenkinsUserFor(user string) (string, error) {
	ju, err := l.mapUser(user)
	switch {
	case err != nil:
		return "", &LinkError{Err: fmt.Errorf("%w: %v", ErrNoAccount, err)}
	case ju == "":
		return "", &LinkError{Err: fmt.Errorf("%w: jenkins.user_template gives an empty Jenkins user id", ErrNoAccount)}
	}
	return ju, nil
}

// Link verifies token with Jenkins and stores it as user's credential. It
// returns the Jenkins account the token belongs to. Nothing is stored
// unless Jenkins says the token is the mapped account's.
func (l *Linker) Link(ctx context.Context, user string, token secret.String) (*jenkins.User, error) {
	if user == "" || token == "" {
		return nil, errors.New("credentials: link needs a user and a token")
	}
	mapped, err := l.JenkinsUserFor(user)
	if err != nil {
		return nil, err
	}
	me, err := l.jenkins.Me(ctx, jenkins.Credential{User: mapped, APIToken: token})
	switch {
	case errors.Is(err, jenkins.ErrUnauthorized):
		return nil, &LinkError{Err: ErrTokenRejected, JenkinsUser: mapped}
	case err != nil:
		return nil, fmt.Errorf("verifying the token with Jenkins: %w", err)
	case !SameJenkinsUser(me.ID, mapped):
		return nil, &LinkError{Err: ErrWrongAccount, JenkinsUser: mapped, Actual: me.ID}
	}
	if err := l.stored.Link(ctx, user, mapped, token); err != nil {
		return nil, err
	}
	return me, nil
}

// SameJenkinsUser reports whether two Jenkins user ids name the same user
// under Jenkins's default id strategy, which is case-insensitive: "Alice"
// and "alice" are one account. (A Jenkins configured with the
// case-sensitive strategy could hold two accounts differing only in case;
// Butler follows the default, as docs/jenkins.md says.)
// Jenkins: core/src/main/java/jenkins/model/IdStrategy.java,
// IdStrategy.CaseInsensitive (keyFor: id.toLowerCase(Locale.ENGLISH)).
func SameJenkinsUser(a, b string) bool { return strings.ToLower(a) == strings.ToLower(b) }

// Unlink removes user's stored credential; the error wraps ErrNotLinked
// when there was none.
func (l *Linker) Unlink(ctx context.Context, user string) error {
	return l.stored.Unlink(ctx, user)
}
