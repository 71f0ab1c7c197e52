package audit

// Stats is a snapshot of a Writer's backlog and progress, for metrics: how
// far the store is behind the calls being made.
type Stats struct {
	// Queued is how many records wait in memory, the batch being written
	// included.
	Queued int
	// SpoolBytes is how many bytes of the spool file are not yet stored
	// (records that did not fit in memory, or that a stopped process
	// left).
	SpoolBytes int64
	// Blocked is how many calls wait for room because neither memory nor
	// the spool can take their record.
	Blocked int
	// Stored counts the records stored since the writer started.
	Stored uint64
	// WriteErrors counts the attempts to store a batch that failed (each
	// retry of a failing store counts).
	WriteErrors uint64
}

// Stats returns the writer's current backlog and counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := Stats{Queued: w.q.len(), Blocked: w.waiting, Stored: w.stored, WriteErrors: w.writeErrors}
	if w.spool != nil {
		s.SpoolBytes = w.spool.unread()
	}
	return s
}
