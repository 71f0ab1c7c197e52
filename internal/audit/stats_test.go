package audit_test

import (
	"context"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
)

// TestWriter_StatsShowTheBacklogWhileTheStoreFailsAndItsEndAfter pins what
// the audit metrics read: records waiting while the store fails, every
// failed attempt counted, and the backlog gone (and counted as stored) once
// the store takes them.
func TestWriter_StatsShowTheBacklogWhileTheStoreFailsAndItsEndAfter(t *testing.T) {
	t.Parallel()
	logger, _ := jsonLogger()
	sink := &fakeSink{failFirst: 3, stored: make(chan int, 16)}
	w := audit.NewWriter(sink, logger, &audit.WriterOptions{MaxDelay: time.Millisecond, RetryMin: 20 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	defer closeWithin(t, w, 10*time.Second)
	if s := w.Stats(); s != (audit.Stats{}) {
		t.Fatalf("a new writer's stats = %+v, want zero", s)
	}
	for _, r := range records(5) {
		w.Record(context.Background(), r)
	}
	if s := w.Stats(); s.Queued != 5 || s.Stored != 0 {
		t.Errorf("stats before the store took anything = %+v, want 5 queued, 0 stored", s)
	}
	select {
	case n := <-sink.stored:
		if n != 5 {
			t.Fatalf("stored a batch of %d, want 5", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was never stored")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := w.Stats()
		if s.Queued == 0 && s.Stored == 5 {
			if s.WriteErrors != 3 || s.SpoolBytes != 0 || s.Blocked != 0 {
				t.Errorf("stats after storing = %+v, want 3 write errors, nothing spooled or blocked", s)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stats after the store took the batch = %+v, want 0 queued, 5 stored", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWriter_StatsCountSpooledBytes pins butler_audit_spool_bytes: records
// beyond audit.buffer go to the spool, and the stats say how much of it
// waits.
func TestWriter_StatsCountSpooledBytes(t *testing.T) {
	t.Parallel()
	logger, _ := jsonLogger()
	sink := &fakeSink{failAlways: true}
	w, err := audit.OpenWriter(sink, logger, &audit.WriterOptions{Queue: 2, MaxDelay: time.Millisecond, SpoolDir: t.TempDir(),
		RetryMin: time.Hour, RetryMax: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		_ = w.Close(ctx)
	}()
	for _, r := range records(10) {
		w.Record(context.Background(), r)
	}
	s := w.Stats()
	if s.SpoolBytes <= 0 {
		t.Errorf("stats with 10 records and room for 2 = %+v, want bytes in the spool", s)
	}
	if s.Queued+int(s.Stored) > 10 {
		t.Errorf("stats = %+v: more records than were made", s)
	}
}
