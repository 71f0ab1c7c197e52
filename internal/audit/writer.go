package audit

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Sink persists batches of records (the store).
type Sink interface {
	AppendAudit(ctx context.Context, recs []Record) error
}

// WriterOptions tune a Writer.
type WriterOptions struct {
	// MaxBatch is the most records one transaction writes. Default 512.
	MaxBatch int
	// MaxDelay is the longest a record waits before its batch is written.
	// Default 50ms.
	MaxDelay time.Duration
	// Queue is how many records may wait; when it is full, Record blocks
	// (back-pressure) rather than drop a record. Default 8192.
	Queue int
}

// Writer records audit records without slowing the request path: Record
// logs the structured line and queues the record; a background goroutine
// writes queued records to the store in batches, one transaction per batch
// (group commit). Close flushes everything still queued, so no record is
// lost on shutdown.
type Writer struct {
	sink   Sink
	log    LogRecorder
	logger *slog.Logger
	opts   WriterOptions

	ch     chan Record
	done   chan struct{}
	mu     sync.RWMutex // guards closed against Record racing Close
	closed bool
}

// NewWriter starts a Writer.
func NewWriter(sink Sink, logger *slog.Logger, opts *WriterOptions) *Writer {
	var o WriterOptions
	if opts != nil {
		o = *opts
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 512
	}
	if o.MaxDelay <= 0 {
		o.MaxDelay = 50 * time.Millisecond
	}
	if o.Queue <= 0 {
		o.Queue = 8192
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Writer{sink: sink, log: LogRecorder{Logger: logger}, logger: logger, opts: o,
		ch: make(chan Record, o.Queue), done: make(chan struct{})}
	go w.run()
	return w
}

// Record logs r and queues it for the store.
func (w *Writer) Record(ctx context.Context, r Record) {
	w.log.Record(ctx, r)
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.logger.ErrorContext(ctx, "audit record after shutdown, not stored", "request_id", r.RequestID)
		return
	}
	w.ch <- r
}

// Close stops accepting records and waits until every queued record is
// written (or ctx ends).
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.ch)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Writer) run() {
	defer close(w.done)
	batch := make([]Record, 0, w.opts.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		var r Record
		var ok bool
		if len(batch) == 0 {
			r, ok = <-w.ch
		} else {
			select {
			case r, ok = <-w.ch:
			case <-timer.C:
				w.flush(batch)
				batch = batch[:0]
				continue
			}
		}
		if !ok {
			w.flush(batch)
			return
		}
		if len(batch) == 0 {
			timer.Reset(w.opts.MaxDelay)
		}
		batch = append(batch, r)
		// Take whatever else is already queued: under load, batches fill
		// up without waiting.
	drain:
		for len(batch) < w.opts.MaxBatch {
			select {
			case r, ok := <-w.ch:
				if !ok {
					w.flush(batch)
					return
				}
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if len(batch) >= w.opts.MaxBatch {
			timer.Stop()
			w.flush(batch)
			batch = batch[:0]
		}
	}
}

// flush writes one batch, retrying a few times; records that still cannot
// be stored stay in the log lines already written.
func (w *Writer) flush(batch []Record) {
	if len(batch) == 0 {
		return
	}
	recs := batch
	var err error
	for attempt, wait := 0, 50*time.Millisecond; attempt < 5; attempt, wait = attempt+1, wait*2 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = w.sink.AppendAudit(ctx, recs)
		cancel()
		if err == nil {
			return
		}
		time.Sleep(wait)
	}
	w.logger.Error("audit records could not be stored; they remain in the log", "records", len(recs), "err", err)
}
