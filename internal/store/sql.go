package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/audit"
)

// sqlStore is the Store of both SQL backends: the same queries through
// database/sql, rewritten by a dialect.
type sqlStore struct {
	d   *dialect
	now func() time.Time
	// w takes every write. For SQLite it holds a single connection, so
	// the process's writers queue in database/sql (honouring ctx) instead of
	// failing with SQLITE_BUSY; for PostgreSQL it is the same pool as r.
	w *sql.DB
	// r takes reads; for an SQLite file, several read-only connections,
	// which WAL mode lets run while a write is in progress.
	r *sql.DB
	// closeExtra releases what the backend holds besides w and r (the pgx
	// pool); may be nil.
	closeExtra func()
}

var (
	_ Store = (*sqlStore)(nil)
)

// auditChunk is how many records one INSERT statement carries. Both engines
// accept its 12 × 512 = 6144 parameters (SQLite up to 32766, PostgreSQL up
// to 65535), and larger chunks gain nothing measurable.
const auditChunk = 512

const auditColumns = `time_ms, request_id, user_id, jenkins_user, client_id, tool, resource, decision, code, reason, duration_ms, remote_addr`

const credentialColumns = `user_id, jenkins_user, sealed, key_id, created_at_ms, updated_at_ms, rejected_at_ms`

// PutCredential implements Store.
func (s *sqlStore) PutCredential(ctx context.Context, c Credential) error {
	if err := validCredential(c); err != nil {
		return fmt.Errorf("store: put credential %q: %w", c.User, err)
	}
	now := s.now().UnixMilli()
	// created_at_ms is not in the update list: a replaced credential keeps it.
	_, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO credentials (`+credentialColumns+`)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (user_id) DO UPDATE SET
	jenkins_user = excluded.jenkins_user,
	sealed = excluded.sealed,
	key_id = excluded.key_id,
	updated_at_ms = excluded.updated_at_ms,
	rejected_at_ms = excluded.rejected_at_ms`),
		c.User, c.JenkinsUser, c.Sealed, c.KeyID, now, now, toMillisOrZero(c.RejectedAt))
	if err != nil {
		return fmt.Errorf("store: put credential %q: %w", c.User, err)
	}
	return nil
}

func validCredential(c Credential) error {
	if err := validKey("user", c.User); err != nil {
		return err
	}
	if err := validText("jenkins user", c.JenkinsUser); err != nil {
		return err
	}
	if err := validText("key id", c.KeyID); err != nil {
		return err
	}
	if len(c.Sealed) == 0 {
		return fmt.Errorf("sealed credential is empty: %w", ErrInvalid)
	}
	return nil
}

// GetCredential implements Store.
func (s *sqlStore) GetCredential(ctx context.Context, user string) (Credential, error) {
	row := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT `+credentialColumns+` FROM credentials WHERE user_id = ?`), user)
	c, err := scanCredential(row)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Credential{}, fmt.Errorf("store: get credential %q: %w", user, err)
	}
	return c, nil
}

// MarkCredentialRejected implements Store.
func (s *sqlStore) MarkCredentialRejected(ctx context.Context, user string, sealed []byte, at time.Time) error {
	if at.IsZero() || len(sealed) == 0 {
		return fmt.Errorf("store: mark credential %q rejected: no time or no sealed value: %w", user, ErrInvalid)
	}
	// Only the credential that was rejected: one linked since (another
	// sealed value) stays usable.
	res, err := s.w.ExecContext(ctx, s.d.rebind(`UPDATE credentials SET rejected_at_ms = ? WHERE user_id = ? AND sealed = ?`),
		max(at.UnixMilli(), 1), user, sealed)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("store: mark credential %q rejected: %w", user, err)
	}
	return nil
}

// DeleteCredential implements Store.
func (s *sqlStore) DeleteCredential(ctx context.Context, user string) error {
	res, err := s.w.ExecContext(ctx, s.d.rebind(`DELETE FROM credentials WHERE user_id = ?`), user)
	if err == nil {
		err = oneRow(res)
	}
	if err != nil {
		return fmt.Errorf("store: delete credential %q: %w", user, err)
	}
	return nil
}

// ListCredentials implements Store.
func (s *sqlStore) ListCredentials(ctx context.Context) ([]Credential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+credentialColumns+` FROM credentials ORDER BY user_id`)
	if err != nil {
		return nil, fmt.Errorf("store: list credentials: %w", err)
	}
	defer rows.Close()
	var out []Credential
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list credentials: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list credentials: %w", err)
	}
	return out, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanCredential(row scanner) (Credential, error) {
	var (
		c                            Credential
		created, updatedAt, rejected int64
	)
	if err := row.Scan(&c.User, &c.JenkinsUser, &c.Sealed, &c.KeyID, &created, &updatedAt, &rejected); err != nil {
		return Credential{}, err
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updatedAt)
	if rejected != 0 {
		c.RejectedAt = fromMillis(rejected)
	}
	return c, nil
}

// AppendAudit implements Store.
func (s *sqlStore) AppendAudit(ctx context.Context, recs []audit.Record) (err error) {
	if len(recs) == 0 {
		return nil
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("store: append %d audit records: %w", len(recs), err)
		}
	}()
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer rollbackOnError(tx, &err)
	args := make([]any, 0, 12*min(len(recs), auditChunk))
	for chunk := range sliceChunks(recs, auditChunk) {
		args = args[:0]
		for _, r := range chunk {
			args = append(args, r.Time.UnixMilli(), cleanText(r.RequestID), cleanText(r.User),
				cleanText(r.JenkinsUser), cleanText(r.ClientID), cleanText(r.Tool), cleanText(r.Resource),
				cleanText(r.Decision), cleanText(r.Code), cleanText(r.Reason), r.DurationMS, cleanText(r.RemoteAddr))
		}
		if _, err := tx.ExecContext(ctx, s.auditInsert(len(chunk)), args...); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// auditInsert is the INSERT of n audit records. One multi-row statement
// costs one round trip and one parse, where n single-row ones cost n: that
// is most of the time of a large batch on both engines.
func (s *sqlStore) auditInsert(n int) string {
	const row = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	var b strings.Builder
	b.Grow(64 + n*(len(row)+2))
	b.WriteString(`INSERT INTO audit_records (` + auditColumns + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return s.d.rebind(b.String())
}

// sliceChunks yields s in consecutive pieces of at most n elements.
func sliceChunks[T any](s []T, n int) func(yield func([]T) bool) {
	return func(yield func([]T) bool) {
		for len(s) > 0 {
			k := min(n, len(s))
			if !yield(s[:k:k]) {
				return
			}
			s = s[k:]
		}
	}
}

// QueryAudit implements Store.
func (s *sqlStore) QueryAudit(ctx context.Context, q AuditQuery) ([]audit.Record, error) {
	limit := q.Limit
	switch {
	case limit < 0:
		return nil, fmt.Errorf("store: query audit: limit %d is negative: %w", limit, ErrInvalid)
	case limit == 0:
		limit = DefaultAuditLimit
	case limit > MaxAuditLimit:
		limit = MaxAuditLimit
	}
	var (
		where []string
		args  []any
	)
	// Filters are cleaned like the stored text, so a value finds the records
	// it was stored as.
	for _, f := range []struct{ column, value string }{
		{"user_id", q.User}, {"tool", q.Tool}, {"decision", q.Decision},
	} {
		if f.value != "" {
			where = append(where, f.column+" = ?")
			args = append(args, cleanText(f.value))
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "time_ms >= ?")
		args = append(args, q.Since.UnixMilli())
	}
	query := `SELECT ` + auditColumns + ` FROM audit_records`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY time_ms DESC, id DESC LIMIT ?`
	args = append(args, limit)

	rows, err := s.r.QueryContext(ctx, s.d.rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	defer rows.Close()
	var out []audit.Record
	for rows.Next() {
		var (
			r  audit.Record
			ms int64
		)
		if err := rows.Scan(&ms, &r.RequestID, &r.User, &r.JenkinsUser, &r.ClientID, &r.Tool, &r.Resource,
			&r.Decision, &r.Code, &r.Reason, &r.DurationMS, &r.RemoteAddr); err != nil {
			return nil, fmt.Errorf("store: query audit: %w", err)
		}
		r.Time = fromMillis(ms)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: query audit: %w", err)
	}
	return out, nil
}

// PutSession implements Store. Errors never name the session: its id is a
// secret.
func (s *sqlStore) PutSession(ctx context.Context, sess Session) error {
	if err := validSession(sess); err != nil {
		return fmt.Errorf("store: put session: %w", err)
	}
	data := sess.Data
	if data == nil {
		data = []byte{} // NOT NULL: an absent value is an empty one
	}
	_, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO sessions (id, user_id, data, expires_at_ms)
VALUES (?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
	user_id = excluded.user_id,
	data = excluded.data,
	expires_at_ms = excluded.expires_at_ms`),
		sess.ID, sess.User, data, sess.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("store: put session: %w", err)
	}
	return nil
}

func validSession(sess Session) error {
	if err := validKey("session id", sess.ID); err != nil {
		return err
	}
	// The user may be empty: a login in progress has a session before it
	// has a user.
	if err := validText("user", sess.User); err != nil {
		return err
	}
	if sess.ExpiresAt.IsZero() {
		return fmt.Errorf("session has no expiry: %w", ErrInvalid)
	}
	return nil
}

// GetSession implements Store.
func (s *sqlStore) GetSession(ctx context.Context, id string) (Session, error) {
	var (
		sess Session
		ms   int64
	)
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT id, user_id, data, expires_at_ms FROM sessions WHERE id = ? AND expires_at_ms > ?`),
		id, s.now().UnixMilli()).Scan(&sess.ID, &sess.User, &sess.Data, &ms)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Session{}, fmt.Errorf("store: get session: %w", err)
	}
	if len(sess.Data) == 0 {
		sess.Data = nil
	}
	sess.ExpiresAt = fromMillis(ms)
	return sess, nil
}

// DeleteSession implements Store.
func (s *sqlStore) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, s.d.rebind(`DELETE FROM sessions WHERE id = ?`), id); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteExpiredSessions implements Store.
func (s *sqlStore) DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error) {
	res, err := s.w.ExecContext(ctx, s.d.rebind(`DELETE FROM sessions WHERE expires_at_ms <= ?`), now.UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return int(n), nil
}

// Ping implements Store.
func (s *sqlStore) Ping(ctx context.Context) error {
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("store: ping %s: %w", s.d.name, err)
	}
	if s.r != s.w {
		if err := s.r.PingContext(ctx); err != nil {
			return fmt.Errorf("store: ping %s: %w", s.d.name, err)
		}
	}
	return nil
}

// Close implements Store.
func (s *sqlStore) Close() error {
	var errs []error
	if s.r != s.w {
		errs = append(errs, s.r.Close())
	}
	errs = append(errs, s.w.Close())
	if s.closeExtra != nil {
		s.closeExtra()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("store: close %s: %w", s.d.name, err)
	}
	return nil
}

// oneRow turns a statement that changed no row into ErrNotFound.
func oneRow(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// fromMillis is the time of a stored millisecond count, in UTC.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// validKey accepts a non-empty key that both engines store unchanged.
func validKey(what, v string) error {
	if v == "" {
		return fmt.Errorf("%s is empty: %w", what, ErrInvalid)
	}
	return validText(what, v)
}

// validText accepts text that both engines store unchanged: PostgreSQL
// refuses NUL bytes and invalid UTF-8 in TEXT, SQLite would keep them, and
// the store must behave the same on both.
func validText(what, v string) error {
	if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
		return fmt.Errorf("%s is not UTF-8 text without NUL bytes: %w", what, ErrInvalid)
	}
	return nil
}

// cleanText makes v storable on both engines, replacing invalid UTF-8 and
// NUL bytes with U+FFFD. For audit text, where keeping the record matters
// more than keeping a broken byte.
func cleanText(v string) string {
	if utf8.ValidString(v) && strings.IndexByte(v, 0) < 0 {
		return v
	}
	return strings.ReplaceAll(strings.ToValidUTF8(v, "\uFFFD"), "\x00", "\uFFFD")
}

// GetSetting implements Store.
func (s *sqlStore) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, s.d.rebind(`SELECT value FROM settings WHERE name = ?`), name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get setting %q: %w", name, err)
	}
	return v, nil
}

// CreateSetting implements Store.
func (s *sqlStore) CreateSetting(ctx context.Context, name string, value []byte) (bool, error) {
	if err := validKey("setting name", name); err != nil {
		return false, fmt.Errorf("store: create setting: %w", err)
	}
	res, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO settings (name, value, updated_at_ms) VALUES (?, ?, ?)
ON CONFLICT (name) DO NOTHING`), name, nonNil(value), s.now().UnixMilli())
	if err == nil {
		err = oneRow(res)
		if errors.Is(err, ErrNotFound) {
			return false, nil
		}
	}
	if err != nil {
		return false, fmt.Errorf("store: create setting %q: %w", name, err)
	}
	return true, nil
}

// PutSetting implements Store.
func (s *sqlStore) PutSetting(ctx context.Context, name string, value []byte) error {
	if err := validKey("setting name", name); err != nil {
		return fmt.Errorf("store: put setting: %w", err)
	}
	_, err := s.w.ExecContext(ctx, s.d.rebind(`INSERT INTO settings (name, value, updated_at_ms) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET
	value = excluded.value,
	updated_at_ms = excluded.updated_at_ms`), name, nonNil(value), s.now().UnixMilli())
	if err != nil {
		return fmt.Errorf("store: put setting %q: %w", name, err)
	}
	return nil
}

// nonNil is b, or an empty slice for nil: the columns are NOT NULL, and an
// absent value is an empty one.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// toMillisOrZero is t in milliseconds, 0 for the zero time (and at least 1
// otherwise, so a real time never reads back as zero).
func toMillisOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixMilli(), 1)
}
