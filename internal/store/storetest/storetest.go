// Package storetest is the conformance suite of store.Store: the behaviour
// every backend must share, written once and run against each of them (as
// dex runs storage/conformance against each of its storages). A backend's
// test calls Run with a function that opens a new, empty store, and
// RunDatabase with hooks to open the same database again; a fake store for
// another package's tests should pass Run too, so it cannot drift from the
// real thing.
package storetest

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

// Run runs the conformance suite. Each test calls open for a new, empty
// store of its own, runs in parallel with the others, and closes the store
// when it ends; open may be called concurrently.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []suiteTest
	}{
		{"Credential", credentialTests},
		{"Audit", auditTests},
		{"Session", sessionTests},
		{"Setting", settingTests},
		{"Store", storeTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					s := open(t)
					t.Cleanup(func() {
						if err := s.Close(); err != nil {
							t.Errorf("Close: %v", err)
						}
					})
					tc.run(t, s)
				})
			}
		})
	}
}

// suiteTest is one behaviour of the suite, run against a fresh store.
type suiteTest struct {
	name string
	run  func(t *testing.T, s store.Store)
}

var storeTests = []suiteTest{
	{"Ping", func(t *testing.T, s store.Store) {
		if err := s.Ping(t.Context()); err != nil {
			t.Fatalf("Ping: %v", err)
		}
	}},
	{"CanceledContextFails", func(t *testing.T, s store.Store) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		if _, err := s.GetCredential(ctx, "alice"); !errors.Is(err, context.Canceled) {
			t.Errorf("GetCredential with a canceled context = %v, want context.Canceled", err)
		}
		if err := s.AppendAudit(ctx, []audit.Record{auditRec(1, baseTime)}); err == nil {
			t.Errorf("AppendAudit with a canceled context succeeded")
		}
		if got := queryAll(t, s, store.AuditQuery{}); len(got) != 0 {
			t.Errorf("after a canceled AppendAudit, %d records are stored, want 0", len(got))
		}
	}},
	{"ConcurrentMixedUse", testConcurrentMixedUse},
}

// testConcurrentMixedUse hammers every table at once, reads and writes
// mixed, as a busy server would.
func testConcurrentMixedUse(t *testing.T, s store.Store) {
	ctx := t.Context()
	var wg sync.WaitGroup
	for g := range 10 {
		user := "user-" + string(rune('a'+g))
		wg.Go(func() {
			for i := range 10 {
				c := store.Credential{User: user, JenkinsUser: user, Sealed: []byte{byte(i), 1, 2}, KeyID: "k1"}
				if err := s.PutCredential(ctx, c); err != nil {
					t.Errorf("PutCredential: %v", err)
					return
				}
				if _, err := s.GetCredential(ctx, user); err != nil {
					t.Errorf("GetCredential: %v", err)
					return
				}
				if _, err := s.ListCredentials(ctx); err != nil {
					t.Errorf("ListCredentials: %v", err)
					return
				}
				sess := store.Session{ID: user + "-session", User: user, ExpiresAt: time.Now().Add(time.Hour)}
				if err := s.PutSession(ctx, sess); err != nil {
					t.Errorf("PutSession: %v", err)
					return
				}
				if _, err := s.GetSession(ctx, sess.ID); err != nil {
					t.Errorf("GetSession: %v", err)
					return
				}
				if err := s.AppendAudit(ctx, []audit.Record{auditRec(g*100+i, baseTime)}); err != nil {
					t.Errorf("AppendAudit: %v", err)
					return
				}
				if _, err := s.QueryAudit(ctx, store.AuditQuery{User: user}); err != nil {
					t.Errorf("QueryAudit: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	creds, err := s.ListCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 10 {
		t.Errorf("%d credentials, want 10", len(creds))
	}
	if got := queryAll(t, s, store.AuditQuery{}); len(got) != 100 {
		t.Errorf("%d audit records, want 100", len(got))
	}
}

// Database gives RunDatabase a real database it can open more than once.
type Database struct {
	// NewDSN returns the DSN of a new, empty database (an SQLite file, a
	// PostgreSQL schema) that t cleans up.
	NewDSN func(t *testing.T) string
	// SQL returns a plain connection to the database of dsn, bypassing the
	// store, which t closes. RunDatabase uses it only with SQL that both
	// engines read the same (no placeholders).
	SQL func(t *testing.T, dsn string) *sql.DB
}

// RunDatabase runs the tests that need the same database more than once:
// data survives a reopen, migrations apply once however often and however
// concurrently the store is opened, and a schema from a newer Butler is
// refused.
func RunDatabase(t *testing.T, db Database) {
	t.Helper()
	tests := []struct {
		name string
		run  func(t *testing.T, db Database)
	}{
		{"ReopenKeepsData", testReopenKeepsData},
		{"MigrationsApplyOnce", testMigrationsApplyOnce},
		{"ConcurrentOpensOfEmptyDatabase", testConcurrentOpens},
		{"NewerSchemaIsRefused", testNewerSchemaIsRefused},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, db)
		})
	}
}

// openDSN opens dsn and closes the store when t ends.
func openDSN(t *testing.T, dsn string) store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func testReopenKeepsData(t *testing.T, db Database) {
	ctx := t.Context()
	dsn := db.NewDSN(t)
	s := openDSN(t, dsn)
	cred := store.Credential{User: "alice", JenkinsUser: "alice.j", Sealed: allBytes(), KeyID: "k1"}
	if err := s.PutCredential(ctx, cred); err != nil {
		t.Fatal(err)
	}
	recs := []audit.Record{auditRec(1, baseTime), auditRec(2, baseTime.Add(time.Second))}
	if err := s.AppendAudit(ctx, recs); err != nil {
		t.Fatal(err)
	}
	sess := store.Session{ID: "sid-1", User: "alice", Data: []byte("state"), ExpiresAt: time.Now().Add(time.Hour)}
	if err := s.PutSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := s.PutSetting(ctx, "canary", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	wantCred, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s = openDSN(t, dsn)
	gotCred, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatalf("GetCredential after reopening: %v", err)
	}
	if diff := cmp.Diff(wantCred, gotCred); diff != "" {
		t.Errorf("credential after reopening (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(reversed(normalized(recs)), queryAll(t, s, store.AuditQuery{})); diff != "" {
		t.Errorf("audit after reopening (-want +got):\n%s", diff)
	}
	gotSess, err := s.GetSession(ctx, "sid-1")
	if err != nil {
		t.Fatalf("GetSession after reopening: %v", err)
	}
	if diff := cmp.Diff(normalizedSession(sess), gotSess); diff != "" {
		t.Errorf("session after reopening (-want +got):\n%s", diff)
	}
	if v, err := s.GetSetting(ctx, "canary"); err != nil || string(v) != "sealed" {
		t.Errorf("setting after reopening = %q, %v; want %q", v, err, "sealed")
	}
}

func testMigrationsApplyOnce(t *testing.T, db Database) {
	dsn := db.NewDSN(t)
	s := openDSN(t, dsn)
	if err := s.PutCredential(t.Context(), store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw := db.SQL(t, dsn)
	first := migrationRows(t, raw)
	for range 2 {
		openDSN(t, dsn).Close()
	}
	if got := migrationRows(t, raw); got != first {
		t.Errorf("after opening twice more, schema_migrations holds %d rows up to version %d, want %d up to %d as after the first open",
			got.count, got.max, first.count, first.max)
	}
	if first.count != first.max || first.count < 1 {
		t.Errorf("schema_migrations holds %d rows up to version %d, want one row per version from 1", first.count, first.max)
	}
	if _, err := openDSN(t, dsn).GetCredential(t.Context(), "alice"); err != nil {
		t.Errorf("the data did not survive reopening: %v", err)
	}
}

type migrationState struct{ count, max int }

func migrationRows(t *testing.T, raw *sql.DB) migrationState {
	t.Helper()
	var m migrationState
	if err := raw.QueryRowContext(t.Context(), `SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&m.count, &m.max); err != nil {
		t.Fatalf("reading schema_migrations: %v", err)
	}
	return m
}

// testConcurrentOpens is two replicas (or two processes on one SQLite file)
// starting at the same moment against a database nobody has migrated yet.
func testConcurrentOpens(t *testing.T, db Database) {
	dsn := db.NewDSN(t)
	const n = 4
	stores := make([]store.Store, n)
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = store.Open(t.Context(), dsn)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Open #%d: %v", i, err)
			continue
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	if t.Failed() {
		return
	}
	ctx := t.Context()
	if err := stores[0].PutCredential(ctx, store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if _, err := s.GetCredential(ctx, "alice"); err != nil {
			t.Errorf("store #%d does not see the credential written through store #0: %v", i, err)
		}
	}
	if m := migrationRows(t, db.SQL(t, dsn)); m.count != m.max {
		t.Errorf("schema_migrations holds %d rows up to version %d: a migration was recorded twice or skipped", m.count, m.max)
	}
}

func testNewerSchemaIsRefused(t *testing.T, db Database) {
	dsn := db.NewDSN(t)
	openDSN(t, dsn).Close()
	raw := db.SQL(t, dsn)
	known := migrationRows(t, raw).max
	if _, err := raw.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at_ms) VALUES (999, 'from a newer butler', 0)`); err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(t.Context(), dsn)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with a newer schema succeeded")
	}
	var tooNew *store.SchemaTooNewError
	if !errors.As(err, &tooNew) || tooNew.Database != 999 || tooNew.Binary != known {
		t.Errorf("Open error = %v, want a *store.SchemaTooNewError{Database: 999, Binary: %d}", err, known)
	}
	if want := "database schema version 999 is newer than this butler"; !strings.Contains(err.Error(), want) {
		t.Errorf("Open error = %q, want it to say %q", err, want)
	}
}

// cmpOpts compare stored values: times by Equal (UTC vs. local does not
// matter), an absent byte slice like an empty one.
var cmpOpts = []cmp.Option{cmpopts.EquateEmpty()}
