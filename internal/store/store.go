// Package store is Butler's persistent state: the three kinds of data that
// must outlive a process and be shared by every replica.
//
//   - Credentials: each user's Jenkins API token, sealed (AES-256-GCM) by the
//     credentials vault before it gets here. The store holds only ciphertext
//     and the id of the key that sealed it, never a plaintext token, so
//     neither the database file nor a backup can give away a token without
//     the vault key (docs/operations.md, "Store backends").
//   - Audit records: one per tools/call and per authentication failure
//     (docs/operations.md, "Audit log"), appended in batches by the audit writer and read back,
//     newest first, by `butler audit`.
//   - Web sessions of the /connect page, so a user who logged in at one
//     replica stays logged in at the others.
//
// Open picks the backend from the DSN (store.dsn in butler.yaml):
//
//	sqlite:PATH                     an SQLite file, created if missing (its directory must exist);
//	                                WAL mode, a 5 s busy timeout, foreign keys on
//	sqlite::memory:                 an in-memory SQLite database private to one Store (tests, demo)
//	postgres://user:pw@host/db?...  PostgreSQL through pgx (postgresql:// too); pgx's parameters
//	                                apply, e.g. sslmode, pool_max_conns, search_path
//
// Both backends run the same SQL (a small dialect shim rewrites placeholders
// and a few column types), apply the same numbered migrations, and pass the
// same conformance suite, storetest.Run; the folders sqlite/ and postgres/
// hold the tests that run it against each. Times are stored as integer
// milliseconds since the Unix epoch on both, so a value reads back the same,
// in UTC and at millisecond precision, whichever backend holds it.
//
// Errors name the operation and wrap the cause with %w; missing rows wrap
// ErrNotFound and rejected values ErrInvalid. No error carries a DSN's
// password or a session id.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
)

// ErrNotFound is wrapped by the errors of lookups and deletions of a row that
// does not exist (or, for a session, has expired).
var ErrNotFound = errors.New("store: not found")

// ErrInvalid is wrapped by the errors of writes whose value the store
// refuses: an empty key, an empty sealed credential, a session that never
// expires, a key that is not valid UTF-8 or contains a NUL byte (PostgreSQL
// cannot store one, and silently changing a key could merge two users), or a
// negative audit query limit.
var ErrInvalid = errors.New("store: invalid value")

// ErrUnavailable is wrapped by the errors of calls that the database did not
// answer: no answer within the store's deadline (Options.Timeout), a
// connection that cannot be made or was lost, a database that is locked or
// shutting down. The call may succeed later; callers answer "try again"
// rather than "internal error".
var ErrUnavailable = errors.New("store: unavailable")

// DefaultTimeout is the deadline of every store call when Options.Timeout
// is 0 (store.timeout's default).
const DefaultTimeout = 5 * time.Second

// Credential is a user's Jenkins credential, sealed: the store never sees
// plaintext.
type Credential struct {
	// User is the identity's user id (TokenInfo.UserID), the key.
	User string
	// JenkinsUser is the Jenkins user id the token belongs to.
	JenkinsUser string
	// Sealed is the vault's ciphertext (nonce included), opaque here. It is
	// stored byte for byte and must not be empty: a sealed value always
	// carries at least a nonce and a tag, so an empty one is a bug upstream.
	Sealed []byte
	// KeyID names the vault key that sealed it, for key rotation.
	KeyID string
	// CreatedAt is when the user first linked a credential. The store sets
	// it; PutCredential ignores the value passed in.
	CreatedAt time.Time
	// UpdatedAt is when the credential was last written. The store sets it;
	// PutCredential ignores the value passed in.
	UpdatedAt time.Time
	// RejectedAt is when Jenkins rejected this credential (a 401, or an
	// answer as anonymous): it must not be sent again until the user links
	// again. Zero: not rejected. PutCredential stores the value passed in
	// (zero when linking, the old mark when re-sealing for key rotation);
	// MarkCredentialRejected sets it.
	RejectedAt time.Time
}

// Audit query limits.
const (
	// DefaultAuditLimit is the number of records QueryAudit returns when
	// AuditQuery.Limit is 0.
	DefaultAuditLimit = 100
	// MaxAuditLimit caps AuditQuery.Limit.
	MaxAuditLimit = 10000
)

// AuditQuery selects audit records. Every set field must match.
type AuditQuery struct {
	User, Tool, Decision string // "" = any; otherwise an exact match
	// Since keeps records at or after this time, compared at millisecond
	// precision; zero = any.
	Since time.Time
	// Limit is the most records to return: 0 means DefaultAuditLimit, more
	// than MaxAuditLimit means MaxAuditLimit, negative is ErrInvalid.
	Limit int
}

// Session is a browser session of the /connect page.
type Session struct {
	// ID is the session's secret identifier (from the cookie). The store
	// never puts it in an error.
	ID string
	// User is the user id the session logged in as.
	User string
	// Data is the session's opaque state.
	Data []byte
	// ExpiresAt is when the session stops being returned; it is required.
	ExpiresAt time.Time
}

// Store is Butler's persistent state. Implementations are safe for
// concurrent use and pass storetest.Run. Times read back in UTC, truncated to
// the millisecond.
type Store interface {
	// PutCredential inserts or replaces the credential of c.User. It keeps
	// the CreatedAt of a credential it replaces and sets UpdatedAt to now.
	PutCredential(ctx context.Context, c Credential) error
	// GetCredential returns the credential of user, or an error wrapping
	// ErrNotFound.
	GetCredential(ctx context.Context, user string) (Credential, error)
	// MarkCredentialRejected sets the RejectedAt of user's credential to at
	// (millisecond precision), if it is still the one sealed as sealed; the
	// error wraps ErrNotFound when there is no such credential (none, or one
	// linked since).
	MarkCredentialRejected(ctx context.Context, user string, sealed []byte, at time.Time) error
	// DeleteCredential removes the credential of user; the error wraps
	// ErrNotFound when there was none.
	DeleteCredential(ctx context.Context, user string) error
	// ListCredentials returns every credential ordered by user (byte-wise),
	// for key rotation.
	ListCredentials(ctx context.Context) ([]Credential, error)

	// AppendAudit stores recs in one transaction (group commit): all or
	// none. An empty slice is a no-op. Text that is not valid UTF-8, and
	// NUL bytes, are replaced by U+FFFD rather than failing the batch: one
	// odd reason must not lose its neighbours' records.
	AppendAudit(ctx context.Context, recs []audit.Record) error
	// QueryAudit returns the records matching q, newest first: by Time,
	// then by insertion order (the later appended first).
	QueryAudit(ctx context.Context, q AuditQuery) ([]audit.Record, error)

	// PutSession inserts or replaces the session s.ID.
	PutSession(ctx context.Context, s Session) error
	// GetSession returns the session id, or an error wrapping ErrNotFound
	// when there is none or it has expired (ExpiresAt is not after now).
	GetSession(ctx context.Context, id string) (Session, error)
	// DeleteSession removes the session id. Deleting a session that does
	// not exist is not an error, so logging out twice is harmless.
	DeleteSession(ctx context.Context, id string) error
	// DeleteExpiredSessions removes the sessions whose ExpiresAt is not after
	// now and returns how many it removed.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)

	// GetSetting returns the value stored under name, or an error wrapping
	// ErrNotFound. Settings are Butler's own small values (the vault
	// key's canary), never secrets in plaintext.
	GetSetting(ctx context.Context, name string) ([]byte, error)
	// CreateSetting stores value under name unless name already has a
	// value, and reports whether it stored it: of replicas racing to
	// create one setting, exactly one wins and the others read its value.
	CreateSetting(ctx context.Context, name string, value []byte) (created bool, err error)
	// PutSetting stores value under name, replacing any value it had.
	PutSetting(ctx context.Context, name string, value []byte) error

	// Ping reports whether the database is usable (for /readyz).
	Ping(ctx context.Context) error
	// Close releases the database. The Store is unusable afterwards.
	Close() error
}

// Options tunes OpenWithOptions. The zero value is what Open uses.
type Options struct {
	// Now is the clock for CreatedAt, UpdatedAt and session expiry;
	// [time.Now] when nil.
	Now func() time.Time
	// MustExist refuses to create a SQLite database file that is not
	// there: the admin commands read an existing database, and a mistyped
	// path must be an error rather than a new empty database.
	MustExist bool
	// Timeout is the deadline of every call, and of making a connection
	// (PostgreSQL); 0 means DefaultTimeout. A call that reaches it fails
	// with an error wrapping ErrUnavailable.
	Timeout time.Duration
}

// ErrNoDatabase: with Options.MustExist, the SQLite file does not exist.
var ErrNoDatabase = errors.New("the database file does not exist")

// Open opens the store named by dsn (see the package documentation for the
// forms) and applies pending migrations. A database whose schema is newer
// than this binary's is refused with a *SchemaTooNewError.
func Open(ctx context.Context, dsn string) (Store, error) {
	return OpenWithOptions(ctx, dsn, nil)
}

// OpenWithOptions is Open with options; opts may be nil.
func OpenWithOptions(ctx context.Context, dsn string, opts *Options) (Store, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	var (
		s   Store
		err error
	)
	scheme, rest, ok := strings.Cut(dsn, ":")
	switch strings.ToLower(scheme) {
	case "sqlite":
		s, err = openSQLite(ctx, rest, o)
	case "postgres", "postgresql":
		s, err = openPostgres(ctx, dsn, o)
	}
	if s != nil || err != nil {
		if err != nil {
			return nil, err
		}
		return WithTimeout(s, o.Timeout), nil
	}
	// Never quote the DSN: it may hold a password, or be one pasted in the
	// wrong place. A well-formed scheme is safe to show.
	if !ok || !isScheme(scheme) {
		return nil, errors.New("store: open: the DSN has no scheme; want sqlite:PATH or postgres://...")
	}
	return nil, fmt.Errorf("store: open: unsupported DSN scheme %q; want sqlite:PATH or postgres://...", scheme)
}

// isScheme reports whether s is a URI scheme (RFC 3986 §3.1) of reasonable
// length.
func isScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i, c := range s {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// SchemaTooNewError is the error of Open when the database was migrated by a
// newer Butler: this binary does not know its schema and refuses to use it
// rather than corrupt it.
type SchemaTooNewError struct {
	Database int // the database's schema version
	Binary   int // the newest version this binary knows
}

// Error says both versions, e.g. "database schema version 4 is newer than
// this butler (3)".
func (e *SchemaTooNewError) Error() string {
	return fmt.Sprintf("database schema version %d is newer than this butler (%d)", e.Database, e.Binary)
}
