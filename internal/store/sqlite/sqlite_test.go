package sqlite_test

import (
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
	"github.com/butler-mcp/butler/internal/store/storetest"
)

// fileDSN is the DSN of a new database file in a temporary directory.
func fileDSN(tb testing.TB) string {
	return "sqlite:" + filepath.Join(tb.TempDir(), "butler.db")
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
		tb.Fatalf("Open(%s): %v", dsn, err)
	}
	return s
}

// rawSQL opens the database file of dsn without the store.
func rawSQL(t *testing.T, dsn string) *sql.DB {
	t.Helper()
	path := strings.TrimPrefix(dsn, "sqlite:")
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestSQLiteFile_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, fileDSN(t)) })
}

func TestSQLiteMemory_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) store.Store { return open(t, "sqlite::memory:") })
}

func TestSQLiteFile_Database(t *testing.T) {
	t.Parallel()
	storetest.RunDatabase(t, storetest.Database{
		NewDSN: func(t *testing.T) string { return fileDSN(t) },
		SQL:    rawSQL,
	})
}

func TestSQLiteMemory_IsPrivateToOneStore(t *testing.T) {
	t.Parallel()
	a, b := open(t, "sqlite::memory:"), open(t, "sqlite::memory:")
	defer a.Close()
	defer b.Close()
	if err := a.PutCredential(t.Context(), store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.GetCredential(t.Context(), "alice"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another in-memory store sees alice's credential: %v", err)
	}
}

func TestOpen_UsesWALModeAndCreatesTheFile(t *testing.T) {
	t.Parallel()
	dsn := fileDSN(t)
	open(t, dsn).Close()
	path := strings.TrimPrefix(dsn, "sqlite:")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the database file was not created: %v", err)
	}
	var mode string
	if err := rawSQL(t, dsn).QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" {
		t.Errorf("journal_mode = %q, want wal", mode)
	}
}

func TestOpen_PathWithURICharacters(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a b?c#d%20e")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "butler?.db")
	s := open(t, "sqlite:"+path)
	defer s.Close()
	if err := s.PutCredential(t.Context(), store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v", err)
	}
}

func TestOpen_MissingDirectoryIsAClearError(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "missing", "butler.db")
	s, err := store.Open(t.Context(), "sqlite:"+path)
	if err == nil {
		s.Close()
		t.Fatal("Open in a missing directory succeeded")
	}
	if !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Open error = %q, want it to say the directory does not exist", err)
	}
}

func TestOpen_RejectsABadDSN(t *testing.T) {
	t.Parallel()
	for _, dsn := range []string{"sqlite:", "", "mysql://u@h/db"} {
		if s, err := store.Open(t.Context(), dsn); err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", dsn)
		}
	}
}

// helperEnv names the database a TestHelperProcess child writes to.
const helperEnv = "BUTLER_STORE_TEST_HELPER_DSN"

// TestOpen_SeveralProcessesAtOnce starts processes that open the same new
// database file at the same moment and write to it, as two butler commands
// (serve and link) may: every Open migrates or waits, no write is lost.
func TestOpen_SeveralProcessesAtOnce(t *testing.T) {
	t.Parallel()
	dsn := fileDSN(t)
	const procs = 3
	var cmds []*exec.Cmd
	for i := range procs {
		cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
		cmd.Env = append(os.Environ(), helperEnv+"="+dsn, fmt.Sprintf("BUTLER_STORE_TEST_HELPER_ID=%d", i))
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, procs)
	errs := make([]error, procs)
	done := make(chan int)
	for i, cmd := range cmds {
		go func() { outs[i], errs[i] = cmd.CombinedOutput(); done <- i }()
	}
	for range procs {
		<-done
	}
	for i := range procs {
		if errs[i] != nil {
			t.Errorf("process %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	if t.Failed() {
		return
	}
	s := open(t, dsn)
	defer s.Close()
	recs, err := s.QueryAudit(t.Context(), store.AuditQuery{Limit: store.MaxAuditLimit})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != procs*helperRecords {
		t.Errorf("%d audit records, want %d", len(recs), procs*helperRecords)
	}
	creds, err := s.ListCredentials(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != procs {
		t.Errorf("%d credentials, want %d", len(creds), procs)
	}
}

const helperRecords = 200

// TestHelperProcess is the child of TestOpen_SeveralProcessesAtOnce; run
// directly, it does nothing.
func TestHelperProcess(t *testing.T) {
	dsn := os.Getenv(helperEnv)
	if dsn == "" {
		return
	}
	id := os.Getenv("BUTLER_STORE_TEST_HELPER_ID")
	s := open(t, dsn)
	defer s.Close()
	for b := range 10 {
		recs := make([]audit.Record, helperRecords/10)
		for i := range recs {
			recs[i] = audit.Record{Time: time.Now(), RequestID: fmt.Sprintf("proc-%s-%d-%d", id, b, i), Decision: "allow"}
		}
		if err := s.AppendAudit(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
		if err := s.PutCredential(t.Context(), store.Credential{User: "proc-" + id, Sealed: []byte{byte(b)}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAppendAudit_ThousandRecordsUnder100ms pins the group-commit cost the
// audit writer relies on. Timing is meaningless under the race detector.
func TestAppendAudit_ThousandRecordsUnder100ms(t *testing.T) {
	if raceEnabled || testing.Short() {
		t.Skip("timing test: skipped under -race and -short")
	}
	s := open(t, fileDSN(t))
	defer s.Close()
	recs := make([]audit.Record, 1000)
	for i := range recs {
		recs[i] = audit.Record{Time: time.Now(), RequestID: "r", User: "alice", Tool: "get_job", Decision: "allow", Reason: "policy: default-permit"}
	}
	best := time.Hour
	for range 3 {
		start := time.Now()
		if err := s.AppendAudit(t.Context(), recs); err != nil {
			t.Fatal(err)
		}
		best = min(best, time.Since(start))
	}
	if best > 100*time.Millisecond {
		t.Errorf("AppendAudit of 1000 records took %v at best, want < 100ms", best)
	}
}

func BenchmarkAppendAudit(b *testing.B) {
	storetest.BenchmarkAppendAudit(b, func(b *testing.B) store.Store { return open(b, fileDSN(b)) })
}

// A database file locked by another process (a long write transaction)
// makes a write fail with ErrUnavailable once store.timeout passes, rather
// than wait for SQLite's own busy timeout and fail as something else.
func TestSQLiteFile_LockedDatabaseIsUnavailableWithinTheTimeout(t *testing.T) {
	t.Parallel()
	dsn := fileDSN(t)
	// Well under SQLite's own 5 s busy timeout, well above a slow disk's
	// fsync.
	s, err := store.OpenWithOptions(t.Context(), dsn, &store.Options{Timeout: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.PutCredential(t.Context(), store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	conn, err := rawSQL(t, dsn).Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = s.PutCredential(t.Context(), store.Credential{User: "bob", Sealed: []byte{2}})
	// Without the deadline the write waits for SQLite's 5 s busy timeout.
	if el := time.Since(start); el > 4500*time.Millisecond {
		t.Errorf("a write to a locked database took %v with a 500ms store timeout", el)
	}
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("write to a locked database = %v, want ErrUnavailable", err)
	}
	// Readers are not blocked by a writer in WAL mode.
	if _, err := s.GetCredential(t.Context(), "alice"); err != nil {
		t.Errorf("read while another process writes: %v", err)
	}
	if _, err := conn.ExecContext(t.Context(), "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := s.PutCredential(t.Context(), store.Credential{User: "bob", Sealed: []byte{2}})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write once the lock is released: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
