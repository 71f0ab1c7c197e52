package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Sink persists batches of records (the store).
type Sink interface {
	AppendAudit(ctx context.Context, recs []Record) error
}

// Writer defaults.
const (
	DefaultMaxBatch = 512
	DefaultMaxDelay = 50 * time.Millisecond
	// DefaultQueue is audit.buffer's default.
	DefaultQueue = 100000
	// DefaultSpoolMax bounds the spool file.
	DefaultSpoolMax = 1 << 30
)

// WriterOptions tune a Writer.
type WriterOptions struct {
	// MaxBatch is the most records one transaction writes. Default 512.
	MaxBatch int
	// MaxDelay is the longest a record waits before its batch is written
	// (while the store takes them). Default 50ms.
	MaxDelay time.Duration
	// Queue is how many records may wait in memory (audit.buffer), besides
	// the batch being written. Default 100000.
	Queue int
	// SpoolDir, when set, is where records go once the memory buffer is
	// full: an append-only spool file of JSON lines (see OpenWriter).
	// Without it, a full buffer makes Record wait and Accepting refuse.
	SpoolDir string
	// SpoolMax is the most bytes the spool file holds. Default 1 GiB.
	SpoolMax int64
	// RetryMin and RetryMax bound the wait between two attempts while the
	// store fails: it starts at RetryMin and doubles up to RetryMax.
	// Defaults 50ms and 5s.
	RetryMin, RetryMax time.Duration
	// SyncInterval is how long a record appended to the spool may wait for
	// the fsync that makes it durable (appends are fsync'd in batches).
	// Default 20ms.
	SyncInterval time.Duration
}

// Closing: how many attempts Close makes to store what is left before it
// spools it (or, without a spool, logs it as lost), and how long it waits
// for the writer after its context ended.
const (
	closeAttempts = 5
	closeGrace    = time.Second
	// attemptTimeout caps one attempt (the store has its own deadline,
	// store.timeout, usually shorter).
	attemptTimeout = 30 * time.Second
	// failureLogEvery spaces the warnings of a store that keeps failing.
	failureLogEvery = 30 * time.Second
)

// Writer records audit records without slowing the request path and without
// losing any while the store is down.
//
// Record logs the structured line and queues the record in memory; a
// background goroutine writes queued records to the store in batches, one
// transaction per batch (group commit), in the order they were recorded.
// When the store fails, the goroutine retries with backoff for as long as
// it takes. Records keep waiting in memory, up to Queue; beyond that they
// go, in order, to the spool file (WriterOptions.SpoolDir), which is
// replayed into the store when it is back, and by the next writer after a
// restart. When neither can take more, Record waits for room
// (back-pressure) and Accepting refuses new calls, so that the tool wrapper
// refuses a call rather than run it unaudited.
//
// Close writes what it can within its context and spools the rest, so that
// a shutdown during an outage loses nothing.
type Writer struct {
	sink   Sink
	log    LogRecorder
	logger *slog.Logger
	opts   WriterOptions

	mu sync.Mutex
	// q holds the records waiting in memory, oldest first. Its first
	// inflight records are the batch being written.
	q        queue
	inflight int
	firstAt  time.Time // when the oldest waiting record (after the batch being written) arrived
	// spool holds the records that did not fit in memory; nil until first
	// needed. spooling: it holds records not yet stored, so new ones go
	// after them (and q is empty).
	spool      *spool
	spooling   bool
	spoolErr   error // the spool's last failure; it is retried after spoolRetry
	spoolAt    time.Time
	spoolRetry time.Duration
	// moved: the batch being written was moved into the spool (with the
	// rest of memory) while it was being written; it ends at movedEnd.
	moved    bool
	movedEnd int64
	closed   bool
	waiting  int   // Records waiting for room
	lastErr  error // the store's last error; nil after a success
	failedAt time.Time
	loggedAt time.Time

	// stored and writeErrors count records stored and failed store
	// attempts, for Stats (metrics).
	stored, writeErrors uint64

	wake      chan struct{} // cap 1
	room      chan Record   // where a waiting Record hands over its record
	closing   chan struct{} // closed by Close
	runCtx    context.Context
	cancelRun context.CancelFunc // when Close's context ends (or, with a spool, shortly before)
	done      chan struct{}
}

// spoolRetry is how long a failed spool is left alone before it is tried
// again.
const spoolRetry = 5 * time.Second

// NewWriter starts a Writer. If the spool of opts cannot be opened, the
// writer runs without one and logs why; use OpenWriter to fail instead.
func NewWriter(sink Sink, logger *slog.Logger, opts *WriterOptions) *Writer {
	w, err := OpenWriter(sink, logger, opts)
	if err != nil {
		var o WriterOptions
		if opts != nil {
			o = *opts
		}
		o.SpoolDir = ""
		w, _ = OpenWriter(sink, logger, &o)
		w.logger.Error("audit spool unusable; records that do not fit in memory wait for the store", "err", err)
	}
	return w
}

// OpenWriter starts a Writer. With a SpoolDir it first takes over a spool
// file a previous process left there, if any: its records are stored before
// any new one. It fails only if the spool directory cannot be read.
func OpenWriter(sink Sink, logger *slog.Logger, opts *WriterOptions) (*Writer, error) {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = DefaultMaxDelay
	}
	if o.Queue <= 0 {
		o.Queue = DefaultQueue
	}
	if o.SpoolMax <= 0 {
		o.SpoolMax = DefaultSpoolMax
	}
	if o.RetryMin <= 0 {
		o.RetryMin = 50 * time.Millisecond
	}
	if o.RetryMax < o.RetryMin {
		o.RetryMax = max(o.RetryMin, 5*time.Second)
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = 20 * time.Millisecond
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{sink: sink, log: LogRecorder{Logger: logger}, logger: logger, opts: o,
		wake: make(chan struct{}, 1), room: make(chan Record), closing: make(chan struct{}), done: make(chan struct{}),
		spoolRetry: spoolRetry}
	w.runCtx, w.cancelRun = context.WithCancel(context.Background())
	if o.SpoolDir != "" {
		if err := w.adoptSpool(); err != nil {
			w.cancelRun()
			return nil, err
		}
	}
	go w.run()
	return w, nil
}

// adoptSpool takes the first spool file of SpoolDir with records left in
// it that no other process holds, and removes empty ones.
func (w *Writer) adoptSpool() error {
	slots, err := existingSpoolSlots(w.opts.SpoolDir)
	if err != nil {
		return err
	}
	for _, n := range slots {
		s, err := openSpoolSlot(w.opts.SpoolDir, n, w.opts.SpoolMax, w.opts.SyncInterval)
		if err != nil {
			return err
		}
		if s == nil {
			continue // another process's
		}
		if s.unread() == 0 {
			if err := s.close(); err != nil {
				w.logger.Warn("removing an empty audit spool failed", "path", s.path, "err", err)
			}
			continue
		}
		w.spool, w.spooling = s, true
		w.logger.Info("audit spool found; storing its records before new ones", "path", s.path, "bytes", s.unread())
		return nil
	}
	return nil
}

// Record logs r and queues it for the store. It waits only when neither
// memory nor the spool has room (see Accepting).
func (w *Writer) Record(ctx context.Context, r Record) {
	w.log.Record(ctx, r)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		w.logger.ErrorContext(ctx, "audit record after shutdown, not stored", "request_id", r.RequestID)
		return
	}
	if w.enqueueLocked(r) {
		w.mu.Unlock()
		w.poke()
		return
	}
	w.waiting++
	w.mu.Unlock()
	w.poke()
	w.room <- r // back-pressure: the writer takes it once there is room
}

// Accepting reports whether the writer can take the record of one more
// call: nil, or an error wrapping ErrFull (and, when the store is why, the
// store's last error, which wraps store.ErrUnavailable when the database is
// unreachable) once the memory buffer and the spool are full, or the writer
// is closed. The tool wrapper calls it before each call and refuses the call
// when it fails, so that no call runs without its record being kept.
func (w *Writer) Accepting() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return fmt.Errorf("%w: the audit log is shutting down", ErrFull)
	}
	if !w.spooling && w.memLocked() < w.opts.Queue {
		return nil
	}
	if w.spoolUsableLocked() && w.openSpoolLocked() {
		// Room for this call's record, for moving memory to the spool when
		// that has not happened yet, and for calls already running.
		need := w.spoolReserve() + w.lineEstimate()
		if !w.spooling {
			need += int64(w.q.len()) * w.lineEstimate()
		}
		if w.spoolFreeLocked() >= need {
			return nil
		}
	}
	err := fmt.Errorf("%w: %d records wait for the store in memory", ErrFull, w.q.len())
	if w.spool != nil {
		err = fmt.Errorf("%w: %d records wait for the store in memory and %d bytes in the spool %s", ErrFull, w.q.len(), w.spool.unread(), w.spool.path)
	}
	if w.lastErr != nil {
		return fmt.Errorf("%w; the store: %w", err, w.lastErr)
	}
	return err
}

// spoolReserve is the spool room Accepting keeps for the records of calls
// already running.
func (w *Writer) spoolReserve() int64 { return min(w.opts.SpoolMax/64, 1<<20) }

// lineEstimate is the expected size of a record in the spool: the average
// so far, or a generous guess.
func (w *Writer) lineEstimate() int64 {
	if w.spool == nil || w.spool.lines == 0 {
		return 1024
	}
	return w.spool.bytes/w.spool.lines + 1
}

// memLocked is how many records wait in memory, besides the batch being
// written.
func (w *Writer) memLocked() int { return w.q.len() - w.inflight }

func (w *Writer) spoolUsableLocked() bool {
	return w.opts.SpoolDir != "" && (w.spoolErr == nil || time.Since(w.spoolAt) > w.spoolRetry)
}

func (w *Writer) spoolFreeLocked() int64 {
	if w.spool == nil {
		return w.opts.SpoolMax
	}
	return w.spool.free()
}

// enqueueLocked puts r where it belongs: in memory while there is room and
// nothing is spooled, else at the end of the spool. It reports false when
// neither can take it.
func (w *Writer) enqueueLocked(r Record) bool {
	if !w.spooling && w.memLocked() < w.opts.Queue {
		if w.memLocked() == 0 {
			w.firstAt = time.Now()
		}
		w.q.push(r)
		return true
	}
	if !w.spoolUsableLocked() {
		return false
	}
	if !w.spooling && !w.spillLocked() {
		return false
	}
	if _, err := w.spool.append([]Record{r}); err != nil {
		w.spoolFailedLocked(err)
		return false
	}
	return true
}

// spillLocked moves every record in memory, the batch being written
// included, to the spool, so that the spool holds the oldest records and
// new ones can follow them there.
func (w *Writer) spillLocked() bool {
	if !w.openSpoolLocked() {
		return false
	}
	recs := w.q.all()
	if len(recs) > 0 {
		ends, err := w.spool.append(recs)
		if err != nil {
			w.spoolFailedLocked(err)
			return false
		}
		if w.inflight > 0 {
			w.moved, w.movedEnd = true, ends[w.inflight-1]
			w.inflight = 0
		}
		w.q.clear()
	}
	if !w.spooling {
		w.logger.Warn("audit buffer full while the store cannot take records; spooling them to a file",
			"path", w.spool.path, "records", len(recs), "err", w.lastErr)
	}
	w.spooling = true
	w.spoolErr = nil
	return true
}

// openSpoolLocked opens the spool file, in the first free slot of
// SpoolDir, unless it is open. Accepting calls it before it lets a call in
// whose record would go to the spool, so that a spool that cannot be
// created refuses calls instead of holding their Record up.
func (w *Writer) openSpoolLocked() bool {
	if w.spool != nil {
		return true
	}
	for n := range spoolSlots {
		s, err := openSpoolSlot(w.opts.SpoolDir, n, w.opts.SpoolMax, w.opts.SyncInterval)
		if err != nil {
			w.spoolFailedLocked(err)
			return false
		}
		if s != nil {
			w.spool = s
			break
		}
	}
	if w.spool == nil {
		w.spoolFailedLocked(fmt.Errorf("audit spool: all %d spool files of %s are in use by other processes", spoolSlots, w.opts.SpoolDir))
		return false
	}
	if w.spool.unread() > 0 {
		// A stopped process's spool, found after start-up: its records go
		// first, which keeps each process's records in order.
		w.spooling = true
		w.logger.Info("audit spool found; storing its records before new ones", "path", w.spool.path, "bytes", w.spool.unread())
	}
	return true
}

func (w *Writer) spoolFailedLocked(err error) {
	if w.spoolErr == nil || time.Since(w.spoolAt) > w.spoolRetry {
		w.logger.Error("audit spool cannot take records", "err", err)
	}
	w.spoolErr, w.spoolAt = err, time.Now()
}

func (w *Writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// admitLocked takes over the records of waiting Records while there is room
// for them (or, once closed, whether or not there is).
func (w *Writer) admitLocked() {
	for w.waiting > 0 && (w.closed || w.roomLocked()) {
		w.mu.Unlock()
		r := <-w.room
		w.mu.Lock()
		w.waiting--
		if !w.enqueueLocked(r) {
			// Admitted (room looked free, or shutting down): never drop
			// it; memory goes over its limit by this one record.
			w.q.push(r)
		}
	}
}

// roomLocked reports whether one more record would fit.
func (w *Writer) roomLocked() bool {
	if !w.spooling && w.memLocked() < w.opts.Queue {
		return true
	}
	return w.spoolUsableLocked() && w.spoolFreeLocked() > 0
}

// Close stops accepting records and writes what is still waiting to the
// store, within ctx; what the store cannot take in time is spooled (with a
// SpoolDir) for the next start, or else logged as lost. Close returns
// ctx.Err() when ctx ended first.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.closing)
		// Stop trying the store when ctx ends, or, with a spool, early
		// enough before to spool what is left.
		context.AfterFunc(ctx, w.cancelRun)
		if dl, ok := ctx.Deadline(); ok && w.spoolUsableLocked() {
			reserve := min(time.Until(dl)/2, time.Second)
			time.AfterFunc(time.Until(dl.Add(-reserve)), w.cancelRun)
		}
	}
	w.mu.Unlock()
	w.poke()
	select {
	case <-w.done:
	case <-ctx.Done():
		// The writer stops trying the store and spools; give it a moment.
		select {
		case <-w.done:
		case <-time.After(closeGrace):
		}
	}
	return ctx.Err()
}

func (w *Writer) run() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		w.mu.Lock()
		w.admitLocked()
		n := w.memLocked()
		switch {
		case n > 0 && (w.closed || n >= min(w.opts.MaxBatch, w.opts.Queue) || time.Since(w.firstAt) >= w.opts.MaxDelay):
			batch := w.q.first(min(n, w.opts.MaxBatch))
			w.inflight = len(batch)
			w.firstAt = time.Now()
			w.admitLocked() // the batch no longer counts against Queue
			w.mu.Unlock()
			if !w.write(batch, false, 0) {
				return
			}
			continue
		case n == 0 && w.spooling && w.spool.unread() == 0:
			err := w.spool.reset()
			if err != nil {
				w.spoolFailedLocked(err)
			} else {
				w.spooling = false
				w.logger.Info("audit spool stored; records wait in memory again", "path", w.spool.path)
			}
			w.mu.Unlock()
			if err == nil {
				err = w.spool.saveOffset(0)
			}
			if err != nil {
				w.logger.Warn("emptying the audit spool failed; retrying", "err", err)
				if !w.sleep(w.opts.RetryMax) {
					w.giveUp()
					return
				}
			}
			continue
		case n == 0 && w.spooling:
			from, to := w.spool.read, w.spool.size
			w.mu.Unlock()
			batch, end, bad, err := w.spool.readBatch(from, to, w.opts.MaxBatch)
			if err != nil {
				w.logger.Error("reading the audit spool failed; retrying", "err", err)
				if !w.sleep(w.opts.RetryMax) {
					w.giveUp()
					return
				}
				continue
			}
			if bad > 0 {
				w.logger.Error("audit spool lines that do not decode were skipped", "lines", bad, "path", w.spool.path)
			}
			if !w.write(batch, true, end) {
				return
			}
			continue
		case n == 0 && w.closed && w.waiting == 0:
			w.mu.Unlock()
			w.finish()
			return
		}
		var tc <-chan time.Time
		if n > 0 {
			timer.Reset(time.Until(w.firstAt.Add(w.opts.MaxDelay)))
			tc = timer.C
		}
		w.mu.Unlock()
		select {
		case <-w.wake:
		case <-tc:
		}
		timer.Stop()
	}
}

// write stores one batch (from memory, or the spool's bytes up to end),
// retrying while the store fails, and accounts for it. It reports false
// when the writer is done: closing, and the store could not take the
// records in time, so they were spooled or logged as lost.
func (w *Writer) write(batch []Record, fromSpool bool, end int64) bool {
	if len(batch) > 0 && !w.store(batch) {
		w.giveUp()
		return false
	}
	w.mu.Lock()
	save := int64(-1)
	switch {
	case fromSpool:
		w.spool.read, save = end, end
	case w.moved:
		w.spool.read, save = w.movedEnd, w.movedEnd
		w.moved = false
	default:
		w.q.pop(w.inflight)
	}
	w.inflight = 0
	w.mu.Unlock()
	if save >= 0 {
		if err := w.spool.saveOffset(save); err != nil {
			w.logger.Warn("audit spool offset", "err", err)
		}
	}
	return true
}

// store writes batch to the store, retrying with backoff for as long as it
// fails, until it succeeds; once closing, it gives up (false) after
// closeAttempts, or when Close says to stop trying.
func (w *Writer) store(batch []Record) bool {
	wait := w.opts.RetryMin
	for attempt := 1; ; attempt++ {
		// Bounded, and ended when Close says to stop trying.
		ctx, cancel := context.WithTimeout(w.runCtx, attemptTimeout)
		err := w.sink.AppendAudit(ctx, batch)
		cancel()
		w.mu.Lock()
		closing := w.closed
		if err == nil {
			if w.lastErr != nil {
				w.logger.Info("audit store takes records again", "unavailable_for", time.Since(w.failedAt).Round(time.Millisecond).String())
			}
			w.lastErr = nil
			w.stored += uint64(len(batch))
			w.mu.Unlock()
			return true
		}
		if w.lastErr == nil || time.Since(w.loggedAt) >= failureLogEvery {
			if w.lastErr == nil {
				w.failedAt = time.Now()
			}
			w.loggedAt = time.Now()
			w.logger.Warn("audit store cannot take records; they wait until it can", "err", err,
				"waiting_in_memory", w.q.len(), "spooling", w.spooling)
		}
		w.lastErr = err
		w.writeErrors++
		w.mu.Unlock()
		if closing && (attempt >= closeAttempts || w.runCtx.Err() != nil) {
			return false
		}
		var stop <-chan struct{}
		if !closing {
			stop = w.closing // switch to closing promptly
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-stop:
		case <-w.runCtx.Done():
		}
		t.Stop()
		wait = min(2*wait, w.opts.RetryMax)
	}
}

// sleep waits d, or less when Close's context ends; it reports false then.
func (w *Writer) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-w.runCtx.Done():
		return false
	}
}

// giveUp ends the writer at shutdown: what is left is kept (abandonLocked)
// and the spool released.
func (w *Writer) giveUp() {
	w.mu.Lock()
	w.abandonLocked()
	w.mu.Unlock()
	w.finish()
}

// abandonLocked keeps what the store could not take at shutdown: in the
// spool, or, without one, in the log lines already written.
func (w *Writer) abandonLocked() {
	w.admitLocked()
	w.inflight, w.moved = 0, false // the batch is still at the head of memory, or in the spool
	if w.q.len() == 0 {
		return
	}
	n := w.q.len()
	if w.spoolUsableLocked() && w.spillLocked() {
		w.logger.Warn("audit records spooled at shutdown; the next start stores them", "records", n, "path", w.spool.path)
		return
	}
	w.logger.Error("audit records could not be stored; they remain in the log", "records", n, "err", errors.Join(w.lastErr, w.spoolErr))
	w.q.clear()
}

// finish releases the spool.
func (w *Writer) finish() {
	w.mu.Lock()
	s := w.spool
	w.mu.Unlock()
	if s != nil {
		if err := s.close(); err != nil {
			w.logger.Error("closing the audit spool", "path", s.path, "err", err)
		}
	}
	w.cancelRun()
}

// queue is a FIFO of records.
type queue struct {
	buf  []Record
	head int
}

func (q *queue) len() int { return len(q.buf) - q.head }

func (q *queue) push(r Record) { q.buf = append(q.buf, r) }

// first returns a copy of the first n records.
func (q *queue) first(n int) []Record {
	return append([]Record(nil), q.buf[q.head:q.head+n]...)
}

func (q *queue) all() []Record { return q.buf[q.head:] }

func (q *queue) pop(n int) {
	clear(q.buf[q.head : q.head+n])
	q.head += n
	switch {
	case q.head == len(q.buf):
		q.buf, q.head = q.buf[:0], 0
	case q.head > len(q.buf)/2 && q.head > 1024:
		n := copy(q.buf, q.buf[q.head:])
		clear(q.buf[n:])
		q.buf, q.head = q.buf[:n], 0
	}
}

// clear empties q, giving back a large buffer.
func (q *queue) clear() {
	if cap(q.buf) > 4096 {
		q.buf = nil
	} else {
		clear(q.buf)
		q.buf = q.buf[:0]
	}
	q.head = 0
}
