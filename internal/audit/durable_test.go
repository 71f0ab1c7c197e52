package audit_test

// Tests of the writer while the store is down: records wait in memory,
// then in the spool file, and reach the store in order, exactly once, when
// it is back, also across a restart; when neither can take more, Accepting
// refuses further calls.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
)

var errStoreDown = errors.New("store: unavailable: connection refused")

// outageSink is a store that can be taken down and brought back.
type outageSink struct {
	mu     sync.Mutex
	down   bool
	failAt int // when > 0, every call after this many stored records fails
	calls  int
	stored []audit.Record
}

func (s *outageSink) AppendAudit(_ context.Context, recs []audit.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.down || (s.failAt > 0 && len(s.stored) >= s.failAt) {
		return fmt.Errorf("append %d records: %w", len(recs), errStoreDown)
	}
	s.stored = append(s.stored, slices.Clone(recs)...)
	return nil
}

func (s *outageSink) setDown(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.down = down
}

func (s *outageSink) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

func (s *outageSink) all() []audit.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.stored)
}

// waitStored waits until the sink holds n records.
func (s *outageSink) waitStored(t *testing.T, n int) []audit.Record {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := s.all()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// numbered returns n records told apart by RequestID, from first on.
func numbered(first, n int) []audit.Record {
	t0 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	out := make([]audit.Record, n)
	for i := range out {
		k := first + i
		out[i] = audit.Record{
			Time: t0.Add(time.Duration(k) * time.Millisecond), RequestID: "req-" + strconv.Itoa(k),
			User: "alice@example.com", JenkinsUser: "alice", ClientID: "cli", Tool: "get_job",
			Resource: "team/app", Decision: audit.Allow, Reason: "policy: p\n\"quoted\" é", DurationMS: int64(k),
			RemoteAddr: "192.0.2.1:1234",
		}
	}
	return out
}

// fast are options that make an outage test quick: small batches, short
// delays, fast retries.
func fast(o audit.WriterOptions) *audit.WriterOptions {
	if o.MaxBatch == 0 {
		o.MaxBatch = 16
	}
	if o.MaxDelay == 0 {
		o.MaxDelay = 2 * time.Millisecond
	}
	if o.RetryMin == 0 {
		o.RetryMin = 5 * time.Millisecond
	}
	if o.RetryMax == 0 {
		o.RetryMax = 20 * time.Millisecond
	}
	return &o
}

func openWriter(t *testing.T, sink audit.Sink, o *audit.WriterOptions) *audit.Writer {
	t.Helper()
	w, err := audit.OpenWriter(sink, nil, o)
	if err != nil {
		t.Fatalf("OpenWriter: %v", err)
	}
	return w
}

// recordAll records recs, failing t if a Record blocks for long: with room
// in memory or in the spool, recording never waits for the store.
func recordAll(t *testing.T, w *audit.Writer, recs []audit.Record) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, r := range recs {
			w.Record(context.Background(), r)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Record blocked although the buffer or the spool had room")
	}
}

func closeIn(t *testing.T, w *audit.Writer, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func spoolFiles(t *testing.T, dir string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	matches, _ := filepath.Glob(filepath.Join(dir, "butler-audit-spool-*.jsonl"))
	for _, m := range matches {
		fi, err := os.Stat(m)
		if err == nil {
			out[filepath.Base(m)] = fi.Size()
		}
	}
	return out
}

func sameRecords(t *testing.T, what string, want, got []audit.Record) {
	t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

// The store is down for longer than any fixed number of retries lasts:
// nothing is given up, and every record is stored once, in order, once it
// is back (without a Close).
func TestWriter_StoreDownThenUp_EveryRecordStoredOnceInOrder(t *testing.T) {
	t.Parallel()
	sink := &outageSink{down: true}
	w := openWriter(t, sink, fast(audit.WriterOptions{}))
	defer closeIn(t, w, 10*time.Second)
	want := numbered(0, 200)
	recordAll(t, w, want[:100])
	time.Sleep(2500 * time.Millisecond) // longer than the old writer's five retries
	recordAll(t, w, want[100:])
	if got := sink.all(); len(got) != 0 {
		t.Fatalf("stored %d records while the store was down", len(got))
	}
	sink.setDown(false)
	sameRecords(t, "stored once the store is back", want, sink.waitStored(t, len(want)))
}

// A full memory buffer moves the records to the spool file, in order,
// without blocking Record; they are stored, and the spool emptied, when the
// store is back.
func TestWriter_FullBufferSpillsToTheSpool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := &outageSink{down: true}
	w := openWriter(t, sink, fast(audit.WriterOptions{Queue: 10, SpoolDir: dir}))
	defer closeIn(t, w, 10*time.Second)
	want := numbered(0, 60)
	recordAll(t, w, want)
	if err := w.Accepting(); err != nil {
		t.Errorf("Accepting with room in the spool = %v, want nil", err)
	}
	files := spoolFiles(t, dir)
	if len(files) != 1 || files["butler-audit-spool-0.jsonl"] == 0 {
		t.Fatalf("spool files %v, want one non-empty butler-audit-spool-0.jsonl", files)
	}
	fi, err := os.Stat(filepath.Join(dir, "butler-audit-spool-0.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("spool file mode %v, want 0600", perm)
	}
	data, _ := os.ReadFile(filepath.Join(dir, "butler-audit-spool-0.jsonl"))
	if lines := strings.Count(string(data), "\n"); lines < len(want)-10-16 {
		t.Errorf("the spool holds %d lines, want most of the %d records", lines, len(want))
	}
	sink.setDown(false)
	sameRecords(t, "stored once the store is back", want, sink.waitStored(t, len(want)))
	deadline := time.Now().Add(10 * time.Second)
	for files := spoolFiles(t, dir); files["butler-audit-spool-0.jsonl"] != 0; files = spoolFiles(t, dir) {
		if time.Now().After(deadline) {
			t.Fatalf("the spool was not emptied once stored: %v", files)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// New records after the spool drained go through memory again.
	more := numbered(60, 5)
	recordAll(t, w, more)
	sameRecords(t, "stored after draining", append(want, more...), sink.waitStored(t, len(want)+len(more)))
}

// SIGTERM during an outage: Close spools what the store cannot take, and
// the next writer on the same spool directory replays it first, in order,
// then removes it.
func TestWriter_RestartReplaysTheSpool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	down := &outageSink{down: true}
	w1 := openWriter(t, down, fast(audit.WriterOptions{Queue: 1000, SpoolDir: dir}))
	before := numbered(0, 40) // all fit in memory: Close must spool them
	recordAll(t, w1, before)
	start := time.Now()
	closeIn(t, w1, 10*time.Second)
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Close during an outage took %v", el)
	}
	if n := len(down.all()); n != 0 {
		t.Fatalf("stored %d records through a down store", n)
	}
	if files := spoolFiles(t, dir); len(files) != 1 {
		t.Fatalf("after Close during an outage, spool files %v, want one", files)
	}

	up := &outageSink{}
	w2 := openWriter(t, up, fast(audit.WriterOptions{SpoolDir: dir}))
	after := numbered(40, 10)
	recordAll(t, w2, after)
	want := append(slices.Clone(before), after...)
	sameRecords(t, "stored by the restarted writer", want, up.waitStored(t, len(want)))
	closeIn(t, w2, 10*time.Second)
	if files := spoolFiles(t, dir); len(files) != 0 {
		t.Errorf("spool files left after everything was stored: %v", files)
	}
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("files left in the spool directory: %v", matches)
	}
}

// A replay that stops half way (the store fails again) resumes after what
// was stored: across three writers, each record is stored exactly once.
func TestWriter_PartialReplayIsNotStoredTwice(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w1 := openWriter(t, &outageSink{down: true}, fast(audit.WriterOptions{SpoolDir: dir}))
	want := numbered(0, 100)
	recordAll(t, w1, want)
	closeIn(t, w1, 10*time.Second)

	flaky := &outageSink{failAt: 32} // two batches of 16, then down
	w2 := openWriter(t, flaky, fast(audit.WriterOptions{SpoolDir: dir}))
	got := flaky.waitStored(t, 32)
	closeIn(t, w2, 10*time.Second)

	up := &outageSink{}
	w3 := openWriter(t, up, fast(audit.WriterOptions{SpoolDir: dir}))
	defer closeIn(t, w3, 10*time.Second)
	rest := up.waitStored(t, len(want)-len(got))
	time.Sleep(50 * time.Millisecond) // anything stored twice would show now
	rest = up.all()
	sameRecords(t, "stored across the three writers", want, append(got, rest...))
}

// Two processes (writers) on one spool directory spool to files of their
// own; a writer started later takes over the one a stopped writer left.
func TestWriter_WritersShareASpoolDirectory(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := openWriter(t, &outageSink{down: true}, fast(audit.WriterOptions{Queue: 2, SpoolDir: dir}))
	b := openWriter(t, &outageSink{down: true}, fast(audit.WriterOptions{Queue: 2, SpoolDir: dir}))
	recsA, recsB := numbered(0, 10), numbered(100, 10)
	recordAll(t, a, recsA)
	recordAll(t, b, recsB)
	if files := spoolFiles(t, dir); len(files) != 2 {
		t.Fatalf("two spilling writers: spool files %v, want two", files)
	}
	closeIn(t, a, 10*time.Second)

	up := &outageSink{}
	c := openWriter(t, up, fast(audit.WriterOptions{SpoolDir: dir}))
	sameRecords(t, "stored by the writer that took over", recsA, up.waitStored(t, len(recsA)))
	closeIn(t, c, 10*time.Second)
	closeIn(t, b, 10*time.Second)
	if files := spoolFiles(t, dir); len(files) != 1 {
		t.Errorf("after a drained and a still-down writer closed, spool files %v, want b's", files)
	}
}

// A line cut short by a crash is dropped on restart; the whole lines
// before it are stored.
func TestWriter_PartialLastLineIsDropped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w1 := openWriter(t, &outageSink{down: true}, fast(audit.WriterOptions{SpoolDir: dir}))
	want := numbered(0, 3)
	recordAll(t, w1, want)
	closeIn(t, w1, 10*time.Second)
	path := filepath.Join(dir, "butler-audit-spool-0.jsonl")
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"time":"2031-05-06T07:08:09Z","request_id":"tor`); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The restarted writer's store is down at first, so that its new
	// records go to the spool after the torn line's place.
	up := &outageSink{down: true}
	w2 := openWriter(t, up, fast(audit.WriterOptions{Queue: 1, SpoolDir: dir}))
	more := numbered(3, 3)
	recordAll(t, w2, more)
	up.setDown(false)
	want = append(want, more...)
	sameRecords(t, "stored after a torn line", want, up.waitStored(t, len(want)))
	closeIn(t, w2, 10*time.Second)
	sameRecords(t, "stored after a torn line", want, up.all())
}

// With the memory buffer and the spool both full, Accepting refuses (so
// the tool wrapper refuses the call instead of running it unaudited), with
// an error naming both ErrFull and the store's failure. Records of calls
// accepted before are kept, and stored once the store is back.
func TestWriter_AcceptingRefusesWhenBufferAndSpoolAreFull(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		opts audit.WriterOptions
	}{
		{"buffer and spool", audit.WriterOptions{Queue: 4, SpoolMax: 16 << 10}},
		{"buffer without a spool", audit.WriterOptions{Queue: 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts
			if o.SpoolMax > 0 {
				o.SpoolDir = t.TempDir()
			}
			sink := &outageSink{down: true}
			w := openWriter(t, sink, fast(o))
			defer closeIn(t, w, 10*time.Second)
			// The first record's batch finds the store down.
			accepted := numbered(-1, 1)
			w.Record(context.Background(), accepted[0])
			for deadline := time.Now().Add(10 * time.Second); sink.attempts() == 0; {
				if time.Now().After(deadline) {
					t.Fatal("the writer never tried the store")
				}
				time.Sleep(time.Millisecond)
			}
			var refusal error
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := range 10000 {
					if refusal = w.Accepting(); refusal != nil {
						return
					}
					r := numbered(i, 1)[0]
					w.Record(context.Background(), r)
					accepted = append(accepted, r)
				}
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("recording only while Accepting is nil blocked: Accepting let a call in without room for its record")
			}
			if refusal == nil {
				t.Fatalf("Accepting never refused after %d records with tiny limits", len(accepted))
			}
			if !errors.Is(refusal, audit.ErrFull) || !errors.Is(refusal, errStoreDown) {
				t.Errorf("Accepting = %v, want an error wrapping audit.ErrFull and the store's error", refusal)
			}
			if o.SpoolMax > 0 && len(accepted) < o.Queue+10 {
				t.Errorf("refused after %d records: the spool of %d bytes took few or none", len(accepted), o.SpoolMax)
			}
			if len(accepted) < o.Queue {
				t.Errorf("refused after %d records, before the buffer of %d was full", len(accepted), o.Queue)
			}
			sink.setDown(false)
			sameRecords(t, "records of accepted calls", accepted, sink.waitStored(t, len(accepted)))
			deadline := time.Now().Add(10 * time.Second)
			for w.Accepting() != nil {
				if time.Now().After(deadline) {
					t.Fatalf("Accepting still refuses after the store came back: %v", w.Accepting())
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
}

func TestWriter_AcceptingRefusesAfterClose(t *testing.T) {
	t.Parallel()
	w := openWriter(t, &outageSink{}, nil)
	if err := w.Accepting(); err != nil {
		t.Fatalf("Accepting of a new writer = %v", err)
	}
	closeIn(t, w, 10*time.Second)
	if err := w.Accepting(); !errors.Is(err, audit.ErrFull) {
		t.Errorf("Accepting after Close = %v, want ErrFull", err)
	}
}

// frozenSink is a store that never answers: each call waits for its
// context, as calls to a frozen database do.
type frozenSink struct{}

func (frozenSink) AppendAudit(ctx context.Context, _ []audit.Record) error {
	<-ctx.Done()
	return fmt.Errorf("append: %w: %w", errStoreDown, ctx.Err())
}

// SIGTERM while the database is frozen: Close stops waiting for it in time
// to spool everything, and returns within its context, without error.
func TestWriter_CloseWithAFrozenStoreSpoolsWithinItsContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := openWriter(t, frozenSink{}, fast(audit.WriterOptions{SpoolDir: dir}))
	want := numbered(0, 30)
	recordAll(t, w, want)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := w.Close(ctx); err != nil {
		t.Errorf("Close with a frozen store = %v, want nil: the records fit in the spool in time", err)
	}
	if el := time.Since(start); el > 3500*time.Millisecond {
		t.Errorf("Close took %v with a 3s context", el)
	}
	up := &outageSink{}
	w2 := openWriter(t, up, fast(audit.WriterOptions{SpoolDir: dir}))
	defer closeIn(t, w2, 10*time.Second)
	sameRecords(t, "stored after the restart", want, up.waitStored(t, len(want)))
}

// Accepting keeps room in the spool for the records of calls that were let
// in at the same moment: after it refuses, a few more records (calls
// already running) still do not wait.
func TestWriter_AcceptingKeepsRoomForCallsAlreadyRunning(t *testing.T) {
	t.Parallel()
	sink := &outageSink{down: true}
	w := openWriter(t, sink, fast(audit.WriterOptions{Queue: 2, SpoolDir: t.TempDir(), SpoolMax: 64 << 10}))
	defer closeIn(t, w, 10*time.Second)
	var recs []audit.Record
	for i := 0; w.Accepting() == nil; i++ {
		if i > 10000 {
			t.Fatal("Accepting never refused")
		}
		r := numbered(i, 1)[0]
		recordAll(t, w, []audit.Record{r})
		recs = append(recs, r)
	}
	running := numbered(len(recs), 2)
	recordAll(t, w, running)
	sink.setDown(false)
	want := append(recs, running...)
	sameRecords(t, "stored", want, sink.waitStored(t, len(want)))
}

// holdOneBatch records one record and waits until the down store has
// refused its batch: from then on that batch is retried, and the room it
// took in memory stays taken.
func holdOneBatch(t *testing.T, w *audit.Writer, sink *outageSink) []audit.Record {
	t.Helper()
	first := numbered(-1, 1)
	w.Record(context.Background(), first[0])
	for deadline := time.Now().Add(10 * time.Second); sink.attempts() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the writer never tried the store")
		}
		time.Sleep(time.Millisecond)
	}
	return first
}

// A spool smaller than the memory buffer cannot take the buffer when it
// fills: Accepting refuses rather than let in a call whose record would
// have to wait.
func TestWriter_SpoolSmallerThanTheBuffer(t *testing.T) {
	t.Parallel()
	sink := &outageSink{down: true}
	w := openWriter(t, sink, fast(audit.WriterOptions{Queue: 100, MaxBatch: 10, SpoolDir: t.TempDir(), SpoolMax: 8 << 10}))
	defer closeIn(t, w, 10*time.Second)
	recs := holdOneBatch(t, w, sink)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 1000 && w.Accepting() == nil; i++ {
			r := numbered(i, 1)[0]
			w.Record(context.Background(), r)
			recs = append(recs, r)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a call let in by Accepting waits in Record: its record fits neither in memory nor in the spool")
	}
	if len(recs) >= 1000 {
		t.Fatal("Accepting never refused")
	}
	sink.setDown(false)
	sameRecords(t, "stored", recs, sink.waitStored(t, len(recs)))
}

// A spool that cannot be created (its directory is gone) makes Accepting
// refuse once memory is full, instead of letting in a call whose Record
// would wait.
func TestWriter_UnusableSpoolRefusesCalls(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "spool")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	sink := &outageSink{down: true}
	w := openWriter(t, sink, fast(audit.WriterOptions{Queue: 4, SpoolDir: dir}))
	defer closeIn(t, w, 10*time.Second)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	recs := holdOneBatch(t, w, sink)
	var refusal error
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 1000 {
			if refusal = w.Accepting(); refusal != nil {
				return
			}
			r := numbered(i, 1)[0]
			w.Record(context.Background(), r)
			recs = append(recs, r)
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a call let in by Accepting waits in Record: the spool cannot be created")
	}
	if !errors.Is(refusal, audit.ErrFull) {
		t.Fatalf("Accepting = %v after %d records, want ErrFull", refusal, len(recs))
	}
	sink.setDown(false)
	sameRecords(t, "stored", recs, sink.waitStored(t, len(recs)))
}

// Empty spool files left behind (a crash after the spool was stored) are
// removed at start-up.
func TestWriter_EmptySpoolFilesAreRemovedAtStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, name := range []string{"butler-audit-spool-0.jsonl", "butler-audit-spool-0.offset", "butler-audit-spool-3.jsonl"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	w := openWriter(t, &outageSink{}, fast(audit.WriterOptions{SpoolDir: dir}))
	defer closeIn(t, w, 10*time.Second)
	if matches, _ := filepath.Glob(filepath.Join(dir, "*")); len(matches) != 0 {
		t.Errorf("files left in the spool directory after start-up: %v", matches)
	}
}

// lockedBuf is a log destination safe for concurrent writes.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) count(s string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Count(l.b.String(), s)
}

// A long outage logs that the store cannot take records once (then at most
// every 30 s), not at every retry, and once that it is back.
func TestWriter_OutageIsLoggedOnceNotPerRetry(t *testing.T) {
	t.Parallel()
	buf := &lockedBuf{}
	logger := slog.New(slog.NewJSONHandler(buf, nil))
	sink := &outageSink{down: true}
	w, err := audit.OpenWriter(sink, logger, fast(audit.WriterOptions{}))
	if err != nil {
		t.Fatal(err)
	}
	defer closeIn(t, w, 10*time.Second)
	recordAll(t, w, numbered(0, 3))
	for deadline := time.Now().Add(10 * time.Second); sink.attempts() < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d attempts in 10s", sink.attempts())
		}
		time.Sleep(5 * time.Millisecond)
	}
	sink.setDown(false)
	sink.waitStored(t, 3)
	for i := range 3 { // more batches, each stored at once
		recordAll(t, w, numbered(3+i, 1))
		sink.waitStored(t, 4+i)
	}
	if n := buf.count("audit store cannot take records"); n != 1 {
		t.Errorf("%d warnings over %d failed attempts, want 1", n, sink.attempts()-1)
	}
	for deadline := time.Now().Add(5 * time.Second); buf.count("audit store takes records again") != 1; {
		if time.Now().After(deadline) {
			t.Fatalf("no single line saying the store takes records again:\n%s", buf.b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// heldSink holds each call until the test releases it.
type heldSink struct {
	entered chan []audit.Record
	release chan struct{}
}

func (s heldSink) AppendAudit(_ context.Context, recs []audit.Record) error {
	s.entered <- slices.Clone(recs)
	<-s.release
	return nil
}

// The batch being written does not count against Queue: a Record waiting
// for room gets it as soon as the next batch is taken, not once that batch
// is stored (which, in an outage, can take long).
func TestWriter_WaitingRecordGetsRoomWhenItsBatchIsTaken(t *testing.T) {
	t.Parallel()
	sink := heldSink{entered: make(chan []audit.Record, 8), release: make(chan struct{}, 8)}
	w := openWriter(t, sink, &audit.WriterOptions{Queue: 1, MaxBatch: 1, MaxDelay: time.Hour})
	recs := numbered(0, 3)
	w.Record(context.Background(), recs[0])
	<-sink.entered                          // r0 is being written, and held
	w.Record(context.Background(), recs[1]) // fills memory
	returned := make(chan struct{})
	go func() {
		w.Record(context.Background(), recs[2]) // waits for room
		close(returned)
	}()
	time.Sleep(20 * time.Millisecond)
	sink.release <- struct{}{} // r0 stored; r1's batch is taken and held
	if got := <-sink.entered; got[0].RequestID != recs[1].RequestID {
		t.Fatalf("second batch %v, want r1", got)
	}
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Record got no room while r1's batch was being written")
	}
	for range 2 {
		sink.release <- struct{}{}
	}
	closeIn(t, w, 10*time.Second)
}
