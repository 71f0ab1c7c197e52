package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestOpen_RejectsUnknownDSNsWithoutShowingThem(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{
		"",
		"mysql://butler:hunter2-secret@db/butler",
		"hunter2-secret",
		"sqlite:",
		"postgres://butler:hunter2-secret@[::1/db", // not a URL
		"postgres://butler:hunter2-secret@127.0.0.1/db?pool_max_conns=not-a-number",
		"postgres://butler@127.0.0.1/db?password=hunter2-secret&pool_max_conns=-1",
	} {
		s, err := Open(t.Context(), dsn)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open(%q) error shows the password: %v", dsn, err)
		}
	}
}

// TestOpen_PostgresErrorHidesPassword connects to a port where nothing
// listens, which fails fast without a server.
func TestOpen_PostgresErrorHidesPassword(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, dsn := range []string{
		"postgres://butler:hunter2-secret@127.0.0.1:1/butler?connect_timeout=5",
		"postgresql://butler@127.0.0.1:1/butler?password=hunter2-secret&connect_timeout=5",
		"postgres://butler:hunter2%2Fsecret@127.0.0.1:1/butler?sslpassword=hunter2-ssl&connect_timeout=5",
	} {
		s, err := Open(ctx, dsn)
		if err == nil {
			s.Close()
			t.Fatalf("Open(%q) succeeded with nothing listening", dsn)
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error shows the password: %v", err)
		}
		if !strings.Contains(err.Error(), "store: open postgres") {
			t.Errorf("Open error %q does not say what failed", err)
		}
	}
}

func TestOpenWithOptions_UsesTheClock(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	clock := time.Date(2030, 1, 2, 3, 4, 5, 6_789_000, time.UTC)
	s, err := OpenWithOptions(ctx, "sqlite::memory:", &Options{Now: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	if err := s.PutCredential(ctx, Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	created := clock.Truncate(time.Millisecond)
	clock = clock.Add(time.Hour)
	if err := s.PutCredential(ctx, Credential{User: "alice", Sealed: []byte{2}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetCredential(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	want := Credential{User: "alice", Sealed: []byte{2}, CreatedAt: created, UpdatedAt: created.Add(time.Hour)}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("GetCredential (-want +got):\n%s", diff)
	}

	if err := s.PutSession(ctx, Session{ID: "sid", ExpiresAt: clock.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetSession(ctx, "sid"); err != nil {
		t.Errorf("GetSession before expiry by the store's clock: %v", err)
	}
	clock = clock.Add(time.Minute)
	if _, err := s.GetSession(ctx, "sid"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetSession at expiry by the store's clock = %v, want ErrNotFound", err)
	}
}

func TestDialect_Rebind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		d    *dialect
		in   string
		want string
	}{
		{sqliteDialect, "a = ? AND b = ?", "a = ? AND b = ?"},
		{postgresDialect, "a = ? AND b = ?", "a = $1 AND b = $2"},
		{postgresDialect, "VALUES (?, ?), (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", "VALUES ($1, $2), ($3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"},
		{postgresDialect, "SELECT 1", "SELECT 1"},
	} {
		if got := tc.d.rebind(tc.in); got != tc.want {
			t.Errorf("%s.rebind(%q) = %q, want %q", tc.d.name, tc.in, got, tc.want)
		}
	}
}

func TestMigrations_UseOnlyKnownWords(t *testing.T) {
	t.Parallel()
	for _, d := range []*dialect{sqliteDialect, postgresDialect} {
		for i, m := range migrations {
			for _, stmt := range m.stmts {
				if out := d.schema(stmt); strings.Contains(out, "{{") || strings.Contains(out, "?") {
					t.Errorf("%s: migration %d (%s) keeps an unreplaced word or a placeholder:\n%s", d.name, i+1, m.name, out)
				}
			}
		}
	}
}

func TestSchemaTooNewError_Message(t *testing.T) {
	t.Parallel()
	err := error(&SchemaTooNewError{Database: 7, Binary: 3})
	if got, want := err.Error(), "database schema version 7 is newer than this butler (3)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
