package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"modernc.org/sqlite" // the pure-Go SQLite driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQLite connection parameters (modernc.org/sqlite). The busy timeout lets a
// writer of another process wait for the lock instead of failing at once.
// BEGIN IMMEDIATE takes the write lock when a transaction starts, so a
// transaction never has to upgrade a read lock, the one wait the busy
// timeout cannot resolve (SQLITE_BUSY_SNAPSHOT). synchronous stays at its
// default, FULL: a committed audit record or credential survives a power
// loss.
const (
	sqliteBusyTimeout  = 5 * time.Second // busy_timeout(5000) below
	sqliteWriterParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_txlock=immediate"
	sqliteReaderParams = "_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=query_only(1)"
	sqliteMemoryParams = "_pragma=foreign_keys(1)&_txlock=immediate"
)

// openSQLite opens the SQLite database at path, or a private in-memory one
// for ":memory:".
func openSQLite(ctx context.Context, path string, o Options) (Store, error) {
	switch path {
	case "":
		return nil, errors.New("store: open sqlite: empty path; want sqlite:PATH or sqlite::memory:")
	case ":memory:":
		return openSQLiteMemory(ctx, o)
	}
	fail := func(err error) (Store, error) {
		return nil, fmt.Errorf("store: open sqlite %q: %w", path, err)
	}
	// SQLite would say only "unable to open database file".
	if dir := filepath.Dir(path); dir != "." {
		if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("directory %q does not exist", dir))
		} else if err != nil {
			return fail(err)
		} else if !fi.IsDir() {
			return fail(fmt.Errorf("%q is not a directory", dir))
		}
	}
	if o.MustExist {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fail(fmt.Errorf("%w (is store.dsn right? `butler serve` creates it)", ErrNoDatabase))
		}
	}
	uri := sqliteURI(path)
	w, err := sql.Open("sqlite", uri+"?"+sqliteWriterParams)
	if err != nil {
		return fail(err)
	}
	// One writer connection: SQLite allows one writer at a time anyway, and
	// queueing in database/sql is cheaper and fairer than busy-waiting.
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", uri+"?"+sqliteReaderParams)
	if err != nil {
		w.Close()
		return fail(err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	s := &sqlStore{d: sqliteDialect, now: o.Now, w: w, r: r}
	// The writer first: it switches the file to WAL mode and creates the
	// schema before a reader looks at it.
	if err := setWAL(ctx, w); err != nil {
		s.Close()
		return fail(err)
	}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return fail(err)
	}
	return s, nil
}

// setWAL switches the database to WAL mode, which then sticks to the file,
// so readers never wait for the writer. Not in the DSN's pragmas: when
// another process opens the same new file at the same moment, the switch can
// fail with SQLITE_BUSY at once (the busy timeout does not apply to that
// lock upgrade), so it is retried here until the other one is done.
func setWAL(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(sqliteBusyTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		var mode string
		err := w.QueryRowContext(ctx, `PRAGMA journal_mode = WAL`).Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("journal mode is %q, not wal", mode)
			}
			return nil
		}
		if !isBusy(err) || time.Now().After(deadline) {
			return fmt.Errorf("set WAL mode: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("set WAL mode: %w", ctx.Err())
		case <-time.After(delay):
		}
	}
}

// isBusy reports whether err is SQLite's SQLITE_BUSY, in any of its
// extended forms.
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqlite3.SQLITE_BUSY
}

// sqliteURI is the file: URI of path, which lets the DSN carry parameters
// whatever characters the path holds.
func sqliteURI(path string) string {
	if strings.HasPrefix(path, "//") {
		path = filepath.Clean(path) // not an authority
	}
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}

// openSQLiteMemory opens an in-memory database. It lives in one connection
// (every connection to :memory: is a database of its own), which therefore
// serves reads and writes and is never closed before the Store.
func openSQLiteMemory(ctx context.Context, o Options) (Store, error) {
	db, err := sql.Open("sqlite", ":memory:?"+sqliteMemoryParams)
	if err != nil {
		return nil, fmt.Errorf("store: open sqlite in memory: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	s := &sqlStore{d: sqliteDialect, now: o.Now, w: db, r: db}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: open sqlite in memory: %w", err)
	}
	return s, nil
}
