package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type downSink struct{}

func (downSink) AppendAudit(context.Context, []Record) error { return errors.New("store down") }

// A writer that opened a spool file just as its previous holder removed it
// (between the open and the lock), and maybe a third process created a new
// one, must not keep spooling into a file that no longer has that name: it
// opens the file again.
func TestOpenSpoolSlot_FileReplacedBeforeTheLock(t *testing.T) {
	for _, recreate := range []bool{false, true} {
		t.Run(map[bool]string{false: "removed", true: "removed and created again"}[recreate], func(t *testing.T) {
			testFileReplacedBeforeTheLock(t, recreate)
		})
	}
}

func testFileReplacedBeforeTheLock(t *testing.T, recreate bool) {
	dir := t.TempDir()
	removed := false
	afterSpoolOpen = func(path string) {
		if !removed {
			removed = true
			if err := os.Remove(path); err != nil {
				t.Error(err)
			}
			if recreate {
				if err := os.WriteFile(path, nil, 0o600); err != nil {
					t.Error(err)
				}
			}
		}
	}
	defer func() { afterSpoolOpen = func(string) {} }()
	s, err := openSpoolSlot(dir, 0, 1<<20, time.Millisecond)
	if err != nil || s == nil {
		t.Fatalf("openSpoolSlot = %v, %v", s, err)
	}
	defer s.close()
	fi, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	pi, err := os.Stat(s.path)
	if err != nil || !os.SameFile(fi, pi) {
		t.Errorf("the spool's file is not the one at %s (%v): records would go to a removed file", s.path, err)
	}
}

// A spool that failed is left alone for spoolRetry, then tried again.
func TestWriter_FailedSpoolIsRetriedLater(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	w, err := OpenWriter(downSink{}, nil, &WriterOptions{Queue: 1, MaxBatch: 1, MaxDelay: time.Millisecond,
		RetryMin: time.Millisecond, RetryMax: 5 * time.Millisecond, SpoolDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	setRetry := func(d time.Duration) { w.mu.Lock(); w.spoolRetry = d; w.mu.Unlock() }
	setRetry(time.Hour)
	fill := func() error {
		for i := 0; i < 100; i++ {
			if err := w.Accepting(); err != nil {
				return err
			}
			w.Record(context.Background(), Record{RequestID: "r"})
		}
		return nil
	}
	if err := fill(); !errors.Is(err, ErrFull) {
		t.Fatalf("Accepting with the spool directory gone = %v, want ErrFull", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	spoolFiles := func() []string { m, _ := filepath.Glob(filepath.Join(dir, "*.jsonl")); return m }
	// Within spoolRetry of the failure, the spool is not tried again.
	if err := fill(); !errors.Is(err, ErrFull) {
		t.Errorf("Accepting within spoolRetry of the failure = %v, want ErrFull", err)
	}
	if f := spoolFiles(); len(f) != 0 {
		t.Errorf("the spool was tried again within spoolRetry of its failure: %v", f)
	}
	setRetry(time.Millisecond)
	time.Sleep(5 * time.Millisecond)
	fill()
	if f := spoolFiles(); len(f) != 1 {
		t.Errorf("once spoolRetry passed, spool files %v, want one", f)
	}
}

// The spool never grows past its limit: an append that would is refused
// whole, and the file keeps only whole lines.
func TestSpool_AppendStopsAtTheLimit(t *testing.T) {
	s, err := openSpoolSlot(t.TempDir(), 0, 1000, time.Millisecond)
	if err != nil || s == nil {
		t.Fatalf("openSpoolSlot = %v, %v", s, err)
	}
	defer s.close()
	rec := Record{RequestID: "r", Reason: "0123456789012345678901234567890123456789"}
	n := 0
	for ; n < 100; n++ {
		if _, err := s.append([]Record{rec}); err != nil {
			if !errors.Is(err, errSpoolFull) {
				t.Fatalf("append %d: %v, want errSpoolFull", n, err)
			}
			break
		}
	}
	if n == 0 || n == 100 {
		t.Fatalf("%d records fit in a 1000-byte spool", n)
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() > 1000 || fi.Size() != s.size {
		t.Errorf("spool file of %d bytes (tracked %d), limit 1000", fi.Size(), s.size)
	}
	recs, _, bad, err := s.readBatch(0, s.size, 1000)
	if err != nil || bad != 0 || len(recs) != n {
		t.Errorf("read back %d records (%d bad, %v), want %d", len(recs), bad, err, n)
	}
}
