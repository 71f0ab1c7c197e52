package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
)

// WithTimeout returns s with a deadline of d (DefaultTimeout when d is not
// positive) on every call, the one place store calls get their deadline.
// A call that reaches it, or that fails because the database cannot be
// reached (a refused or lost connection, a locked SQLite file, a PostgreSQL
// that is shutting down or out of connections), returns an error wrapping
// both ErrUnavailable and the cause. A call whose caller's own context ended
// first returns the caller's error unchanged: the caller gave up, the store
// did not fail. Open and OpenWithOptions already apply it; wrapping twice
// keeps only the outer deadline.
func WithTimeout(s Store, d time.Duration) Store {
	if d <= 0 {
		d = DefaultTimeout
	}
	if t, ok := s.(*timeoutStore); ok {
		s = t.s
	}
	return &timeoutStore{s: s, d: d}
}

type timeoutStore struct {
	s Store
	d time.Duration
}

var _ Store = (*timeoutStore)(nil)

// do runs f with the deadline and classifies its error.
func (t *timeoutStore) do(ctx context.Context, f func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	err := f(cctx)
	switch {
	case err == nil || errors.Is(err, ErrUnavailable):
		return err
	case ctx.Err() != nil:
		return err
	case cctx.Err() != nil:
		return fmt.Errorf("%w (no answer within %s): %w", ErrUnavailable, t.d, err)
	case isUnavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// isUnavailable reports whether err says the database could not be
// reached or cannot serve now, rather than answering.
func isUnavailable(err error) bool {
	// net.Error covers dial and I/O errors, and bare errnos such as
	// ECONNREFUSED, ECONNRESET and EPIPE (syscall.Errno is a net.Error).
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.As(err, &ne):
		return true
	}
	return isPostgresUnavailable(err) || isBusy(err)
}

// PutCredential implements Store.
func (t *timeoutStore) PutCredential(ctx context.Context, c Credential) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.PutCredential(ctx, c) })
}

// GetCredential implements Store.
func (t *timeoutStore) GetCredential(ctx context.Context, user string) (c Credential, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { c, err = t.s.GetCredential(ctx, user); return err })
	return c, err
}

// MarkCredentialRejected implements Store.
func (t *timeoutStore) MarkCredentialRejected(ctx context.Context, user string, sealed []byte, at time.Time) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.MarkCredentialRejected(ctx, user, sealed, at) })
}

// DeleteCredential implements Store.
func (t *timeoutStore) DeleteCredential(ctx context.Context, user string) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.DeleteCredential(ctx, user) })
}

// ListCredentials implements Store.
func (t *timeoutStore) ListCredentials(ctx context.Context) (cs []Credential, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { cs, err = t.s.ListCredentials(ctx); return err })
	return cs, err
}

// AppendAudit implements Store.
func (t *timeoutStore) AppendAudit(ctx context.Context, recs []audit.Record) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.AppendAudit(ctx, recs) })
}

// QueryAudit implements Store.
func (t *timeoutStore) QueryAudit(ctx context.Context, q AuditQuery) (recs []audit.Record, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { recs, err = t.s.QueryAudit(ctx, q); return err })
	return recs, err
}

// PutSession implements Store.
func (t *timeoutStore) PutSession(ctx context.Context, s Session) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.PutSession(ctx, s) })
}

// GetSession implements Store.
func (t *timeoutStore) GetSession(ctx context.Context, id string) (s Session, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { s, err = t.s.GetSession(ctx, id); return err })
	return s, err
}

// DeleteSession implements Store.
func (t *timeoutStore) DeleteSession(ctx context.Context, id string) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.DeleteSession(ctx, id) })
}

// DeleteExpiredSessions implements Store.
func (t *timeoutStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (n int, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { n, err = t.s.DeleteExpiredSessions(ctx, now); return err })
	return n, err
}

// GetSetting implements Store.
func (t *timeoutStore) GetSetting(ctx context.Context, name string) (v []byte, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { v, err = t.s.GetSetting(ctx, name); return err })
	return v, err
}

// CreateSetting implements Store.
func (t *timeoutStore) CreateSetting(ctx context.Context, name string, value []byte) (created bool, err error) {
	err = t.do(ctx, func(ctx context.Context) (err error) { created, err = t.s.CreateSetting(ctx, name, value); return err })
	return created, err
}

// PutSetting implements Store.
func (t *timeoutStore) PutSetting(ctx context.Context, name string, value []byte) error {
	return t.do(ctx, func(ctx context.Context) error { return t.s.PutSetting(ctx, name, value) })
}

// Ping implements Store.
func (t *timeoutStore) Ping(ctx context.Context) error {
	return t.do(ctx, t.s.Ping)
}

// Close implements Store.
func (t *timeoutStore) Close() error { return t.s.Close() }
