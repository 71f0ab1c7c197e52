package store_test

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

// stuckStore is a database that never answers: every call waits until its
// context ends, as calls to a frozen PostgreSQL do. With fail set, every
// call fails at once with fail instead.
type stuckStore struct {
	fail  error
	delay time.Duration // when set, calls answer (nil) after delay
}

func (s stuckStore) wait(ctx context.Context) error {
	if s.fail != nil {
		return s.fail
	}
	if s.delay > 0 {
		select {
		case <-time.After(s.delay):
			return nil
		case <-ctx.Done():
			return fmt.Errorf("slow: %w", ctx.Err())
		}
	}
	<-ctx.Done()
	return fmt.Errorf("stuck: %w", ctx.Err())
}

func (s stuckStore) PutCredential(ctx context.Context, _ store.Credential) error { return s.wait(ctx) }
func (s stuckStore) GetCredential(ctx context.Context, _ string) (store.Credential, error) {
	return store.Credential{}, s.wait(ctx)
}
func (s stuckStore) DeleteCredential(ctx context.Context, _ string) error { return s.wait(ctx) }
func (s stuckStore) MarkCredentialRejected(ctx context.Context, _ string, _ []byte, _ time.Time) error {
	return s.wait(ctx)
}
func (s stuckStore) ListCredentials(ctx context.Context) ([]store.Credential, error) {
	return nil, s.wait(ctx)
}
func (s stuckStore) AppendAudit(ctx context.Context, _ []audit.Record) error { return s.wait(ctx) }
func (s stuckStore) QueryAudit(ctx context.Context, _ store.AuditQuery) ([]audit.Record, error) {
	return nil, s.wait(ctx)
}
func (s stuckStore) PutSession(ctx context.Context, _ store.Session) error { return s.wait(ctx) }
func (s stuckStore) GetSession(ctx context.Context, _ string) (store.Session, error) {
	return store.Session{}, s.wait(ctx)
}
func (s stuckStore) DeleteSession(ctx context.Context, _ string) error { return s.wait(ctx) }
func (s stuckStore) DeleteExpiredSessions(ctx context.Context, _ time.Time) (int, error) {
	return 0, s.wait(ctx)
}
func (s stuckStore) GetSetting(ctx context.Context, _ string) ([]byte, error) {
	return nil, s.wait(ctx)
}
func (s stuckStore) CreateSetting(ctx context.Context, _ string, _ []byte) (bool, error) {
	return false, s.wait(ctx)
}
func (s stuckStore) PutSetting(ctx context.Context, _ string, _ []byte) error { return s.wait(ctx) }
func (s stuckStore) Ping(ctx context.Context) error                           { return s.wait(ctx) }
func (s stuckStore) Close() error                                             { return nil }

// everyCall calls each method of s once and returns the errors by name.
func everyCall(ctx context.Context, s store.Store) map[string]error {
	errs := map[string]error{}
	errs["PutCredential"] = s.PutCredential(ctx, store.Credential{User: "alice", Sealed: []byte{1}})
	_, errs["GetCredential"] = s.GetCredential(ctx, "alice")
	errs["DeleteCredential"] = s.DeleteCredential(ctx, "alice")
	_, errs["ListCredentials"] = s.ListCredentials(ctx)
	errs["AppendAudit"] = s.AppendAudit(ctx, []audit.Record{{Time: time.Now(), Decision: audit.Allow}})
	_, errs["QueryAudit"] = s.QueryAudit(ctx, store.AuditQuery{})
	errs["PutSession"] = s.PutSession(ctx, store.Session{ID: "s", ExpiresAt: time.Now().Add(time.Hour)})
	_, errs["GetSession"] = s.GetSession(ctx, "s")
	errs["DeleteSession"] = s.DeleteSession(ctx, "s")
	_, errs["DeleteExpiredSessions"] = s.DeleteExpiredSessions(ctx, time.Now())
	_, errs["GetSetting"] = s.GetSetting(ctx, "k")
	_, errs["CreateSetting"] = s.CreateSetting(ctx, "k", []byte{1})
	errs["PutSetting"] = s.PutSetting(ctx, "k", []byte{1})
	errs["Ping"] = s.Ping(ctx)
	return errs
}

// A store that does not answer makes every call fail with ErrUnavailable
// once the deadline passes, not hang for as long as the database is frozen.
func TestWithTimeout_EveryCallOfAStuckStoreEndsWithErrUnavailable(t *testing.T) {
	t.Parallel()
	const d = 50 * time.Millisecond
	s := store.WithTimeout(stuckStore{}, d)
	done := make(chan map[string]error, 1)
	start := time.Now()
	// The caller's context has no deadline: the store's must apply.
	go func() { done <- everyCall(context.Background(), s) }()
	var errs map[string]error
	select {
	case errs = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls of a stuck store still running after 10s: no deadline")
	}
	if el := time.Since(start); el > 14*d+7*time.Second {
		t.Errorf("14 calls took %v with a %v deadline each", el, d)
	}
	for name, err := range errs {
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s = %v, want an error wrapping store.ErrUnavailable", name, err)
		}
	}
}

// The caller giving up is the caller's error, not the store's being
// unavailable.
func TestWithTimeout_CallerCancellationIsNotUnavailable(t *testing.T) {
	t.Parallel()
	s := store.WithTimeout(stuckStore{}, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	for name, err := range everyCall(ctx, s) {
		if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s with a canceled context = %v, want context.Canceled and not ErrUnavailable", name, err)
		}
	}
}

// A connection that cannot be made or was lost is the database being
// unavailable; an answer from the database (not found, invalid) is not.
func TestWithTimeout_ClassifiesErrors(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	for _, tc := range []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", fmt.Errorf("store: get credential: %w", refused), true},
		{"bad connection", fmt.Errorf("store: get credential: %w", driver.ErrBadConn), true},
		{"not found", fmt.Errorf("store: get credential: %w", store.ErrNotFound), false},
		{"invalid", fmt.Errorf("store: put credential: %w", store.ErrInvalid), false},
		{"a bug", errors.New("store: scan: converting NULL to string is unsupported"), false},
	} {
		s := store.WithTimeout(stuckStore{fail: tc.err}, time.Hour)
		for name, err := range everyCall(t.Context(), s) {
			if got := errors.Is(err, store.ErrUnavailable); got != tc.unavailable {
				t.Errorf("%s: %s = %v; wraps ErrUnavailable: %t, want %t", tc.name, name, err, got, tc.unavailable)
			}
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: %s = %v, want it to keep wrapping the cause", tc.name, name, err)
			}
		}
	}
}

// A deadline of 0 is the default one, not none and not an instant one; a
// store wrapped twice has the outer deadline only.
func TestWithTimeout_DefaultAndRewrapping(t *testing.T) {
	t.Parallel()
	slow := stuckStore{delay: 100 * time.Millisecond}
	if err := store.WithTimeout(slow, 0).Ping(t.Context()); err != nil {
		t.Errorf("WithTimeout(_, 0): a call answered in 100ms = %v, want nil (DefaultTimeout %v)", err, store.DefaultTimeout)
	}
	if err := store.WithTimeout(store.WithTimeout(slow, 10*time.Millisecond), time.Minute).Ping(t.Context()); err != nil {
		t.Errorf("rewrapped with a longer deadline: %v, want the outer deadline only", err)
	}
	if err := store.WithTimeout(store.WithTimeout(slow, time.Minute), 10*time.Millisecond).Ping(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("rewrapped with a shorter deadline: %v, want ErrUnavailable", err)
	}
}
