package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// isUnavailable tells the database not answering from the database
// answering "no": each kind of failure, alone.
func TestIsUnavailable(t *testing.T) {
	t.Parallel()
	wrap := func(err error) error { return fmt.Errorf("store: get credential %q: %w", "alice", err) }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"bad connection", driver.ErrBadConn, true},
		{"connection done", sql.ErrConnDone, true},
		{"EOF mid-answer", io.EOF, true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"refused", syscall.ECONNREFUSED, true},
		{"reset", syscall.ECONNRESET, true},
		{"broken pipe", syscall.EPIPE, true},
		{"a network error", &net.DNSError{Err: "no such host", Name: "db", IsTimeout: true}, true},
		{"pgx cannot connect", &pgconn.ConnectError{}, true},
		{"pgx connection closed", pgconn.ErrConnClosed, true},
		{"postgres connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"postgres too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"postgres shutting down", &pgconn.PgError{Code: "57P01"}, true},
		{"postgres crash shutdown", &pgconn.PgError{Code: "57P02"}, true},
		{"postgres starting up", &pgconn.PgError{Code: "57P03"}, true},
		{"postgres unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"postgres syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"postgres query canceled", &pgconn.PgError{Code: "57014"}, false},
		{"not found", ErrNotFound, false},
		{"invalid", ErrInvalid, false},
		{"no rows", sql.ErrNoRows, false},
		{"other", errors.New("converting NULL to string is unsupported"), false},
	} {
		if got := isUnavailable(wrap(tc.err)); got != tc.want {
			t.Errorf("%s: isUnavailable(%v) = %t, want %t", tc.name, wrap(tc.err), got, tc.want)
		}
	}
}

// SQLite's "database is locked" (another process holds the write lock) is
// the database being unavailable for now.
func TestIsUnavailable_SQLiteBusy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "busy.db")
	holder, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	if _, err := holder.ExecContext(t.Context(), "CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	conn, err := holder.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	_, err = other.ExecContext(t.Context(), "INSERT INTO t VALUES (1)")
	if !isBusy(err) {
		t.Fatalf("write to a locked database = %v, want SQLITE_BUSY", err)
	}
	if !isUnavailable(fmt.Errorf("store: put credential: %w", err)) {
		t.Errorf("isUnavailable(%v) = false, want true", err)
	}
}
