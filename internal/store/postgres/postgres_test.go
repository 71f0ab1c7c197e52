package postgres_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/butler-mcp/butler/internal/store"
	"github.com/butler-mcp/butler/internal/store/storetest"
)

// envDSN names the PostgreSQL server of these tests.
const envDSN = "BUTLER_TEST_POSTGRES_DSN"

// serverDSN returns the server's DSN, or skips tb.
func serverDSN(tb testing.TB) string {
	tb.Helper()
	dsn := os.Getenv(envDSN)
	if dsn == "" {
		tb.Skip("set " + envDSN + "=postgres://... to run the PostgreSQL store tests")
	}
	return dsn
}

// schemaDSN creates an empty schema of its own for tb, dropped when tb ends,
// and returns the server's DSN with that schema as its search_path: parallel
// tests, and parallel runs of the tests, never see each other's tables.
func schemaDSN(tb testing.TB) string {
	tb.Helper()
	base := serverDSN(tb)
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("%s is not a URL", envDSN)
	}
	schema := "butler_test_" + strings.ToLower(rand.Text()[:16])
	admin := func(ctx context.Context, stmt string) error {
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			return err
		}
		defer conn.Close(ctx)
		_, err = conn.Exec(ctx, stmt)
		return err
	}
	if err := admin(tb.Context(), "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("create schema: %v", err)
	}
	tb.Cleanup(func() {
		// tb.Context() is already canceled when cleanups run.
		if err := admin(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("drop schema %s: %v", schema, err)
		}
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// suiteTimeout is the store deadline of the conformance suite's stores.
const suiteTimeout = 2 * time.Minute

func open(tb testing.TB, dsn string) store.Store {
	tb.Helper()
	// The suite checks behaviour, not latency: a generous deadline keeps
	// its big batches and parallel writers from failing on a loaded
	// machine. The deadline itself has tests of its own.
	s, err := store.OpenWithOptions(tb.Context(), dsn, &store.Options{Timeout: suiteTimeout})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	return s
}

// rawSQL opens the database (and schema) of dsn without the store.
func rawSQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open("pgx", dsn) // registered by pgx's stdlib, which the store imports
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestPostgres_Conformance(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, schemaDSN(t)) })
}

func TestPostgres_Database(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	storetest.RunDatabase(t, storetest.Database{
		NewDSN: func(t *testing.T) string { return schemaDSN(t) },
		SQL:    rawSQL,
	})
}

// TestPostgres_SchemaUsesItsTypes checks what the dialect shim produced:
// the types a DBA reading the schema would expect.
func TestPostgres_SchemaUsesItsTypes(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	dsn := schemaDSN(t)
	open(t, dsn).Close()
	rows, err := rawSQL(t, dsn).QueryContext(t.Context(), `
SELECT table_name || '.' || column_name, data_type, COALESCE(collation_name, '')
FROM information_schema.columns
WHERE table_schema = current_schema() AND column_name IN ('user_id', 'sealed', 'id', 'data')
ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var col, typ, coll string
		if err := rows.Scan(&col, &typ, &coll); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%s %s %s", col, typ, coll))
	}
	want := []string{
		"audit_records.id bigint ",
		"audit_records.user_id text ",
		"credentials.sealed bytea ",
		"credentials.user_id text C",
		"sessions.data bytea ",
		"sessions.id text C",
		"sessions.user_id text ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("columns:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func BenchmarkAppendAudit(b *testing.B) {
	serverDSN(b)
	storetest.BenchmarkAppendAudit(b, func(b *testing.B) store.Store { return open(b, schemaDSN(b)) })
}
