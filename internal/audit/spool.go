package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The spool is an append-only file of JSON lines, one Record each, where
// records wait while the store cannot take them and the memory buffer is
// full. Next to it, a small offset file says how many of its bytes are
// already stored, so that a restart replays only the rest. A spool file
// belongs to one process at a time (an exclusive lock on it), so several
// Butler processes may share a spool directory: each takes the first free
// slot, and a process that starts takes over the spool a stopped one left.
//
// Files: butler-audit-spool-N.jsonl and butler-audit-spool-N.offset, N from
// 0 to spoolSlots-1.
const (
	spoolPrefix = "butler-audit-spool-"
	spoolSlots  = 64
)

// afterSpoolOpen runs between opening a spool file and locking it: a hook
// for the test of the race it guards against.
var afterSpoolOpen = func(path string) {}

// errSpoolFull: appending would make the spool larger than its limit.
var errSpoolFull = errors.New("audit spool is full")

type spool struct {
	path, offPath string
	max           int64
	syncEvery     time.Duration

	// fileMu: appends, reads and fsyncs share it; truncating and closing
	// the file take it alone.
	fileMu sync.RWMutex
	f      *os.File // O_APPEND, locked
	off    *os.File

	// Guarded by the Writer's mu.
	size int64 // bytes in the file
	read int64 // bytes already stored (the offset file's value)
	// bytes and lines appended by this process, for size estimates.
	bytes, lines int64

	syncMu    sync.Mutex
	syncTimer *time.Timer
	closed    bool
}

// openSpoolSlot opens and locks slot n of dir. It returns nil, nil when
// another process holds the slot.
func openSpoolSlot(dir string, n int, max int64, syncEvery time.Duration) (*spool, error) {
	path := filepath.Join(dir, fmt.Sprintf("%s%d.jsonl", spoolPrefix, n))
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("audit spool: %w", err)
		}
		afterSpoolOpen(path)
		locked, err := lockFile(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("audit spool %s: lock: %w", path, err)
		}
		if !locked {
			f.Close()
			return nil, nil
		}
		// The previous holder may have removed the file between our open
		// and our lock: then we hold a lock on a file nobody else sees.
		fi, err1 := f.Stat()
		pi, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(fi, pi) {
			f.Close()
			continue
		}
		s := &spool{path: path, offPath: strings.TrimSuffix(path, ".jsonl") + ".offset", max: max, syncEvery: syncEvery, f: f}
		if err := s.load(); err != nil {
			f.Close()
			return nil, err
		}
		return s, nil
	}
	return nil, nil
}

// load reads the file's size and the stored offset, and drops a partial
// last line (a write cut short by a crash).
func (s *spool) load() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("audit spool %s: %w", s.path, err)
	}
	s.size = fi.Size()
	if s.size > 0 {
		tail := make([]byte, min(s.size, 64<<10))
		for end := s.size; end > 0; {
			start := max(0, end-int64(len(tail)))
			buf := tail[:end-start]
			if _, err := s.f.ReadAt(buf, start); err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("audit spool %s: %w", s.path, err)
			}
			if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
				if keep := start + int64(i) + 1; keep != s.size {
					if err := s.f.Truncate(keep); err != nil {
						return fmt.Errorf("audit spool %s: drop a partial last line: %w", s.path, err)
					}
					s.size = keep
				}
				break
			}
			if start == 0 {
				if err := s.f.Truncate(0); err != nil {
					return fmt.Errorf("audit spool %s: drop a partial line: %w", s.path, err)
				}
				s.size = 0
				break
			}
			end = start
		}
	}
	off, err := os.OpenFile(s.offPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit spool: %w", err)
	}
	s.off = off
	b, err := io.ReadAll(io.LimitReader(off, 64))
	if err != nil {
		off.Close()
		return fmt.Errorf("audit spool %s: %w", s.offPath, err)
	}
	if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n >= 0 && n <= s.size {
		s.read = n
	}
	return nil
}

// unread is how many bytes wait to be stored.
func (s *spool) unread() int64 { return s.size - s.read }

// free is how many more bytes the spool may take.
func (s *spool) free() int64 { return s.max - s.size }

// encode returns recs as JSON lines, with the end offset of each line
// relative to the start.
func encodeLines(recs []Record) ([]byte, []int64, error) {
	var buf bytes.Buffer
	ends := make([]int64, 0, len(recs))
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	for i := range recs {
		if err := enc.Encode(&recs[i]); err != nil {
			return nil, nil, err
		}
		ends = append(ends, int64(buf.Len()))
	}
	return buf.Bytes(), ends, nil
}

// append writes recs at the end of the spool, all or none, and returns
// the offset each record's line ends at. The Writer's mu is held.
func (s *spool) append(recs []Record) ([]int64, error) {
	data, ends, err := encodeLines(recs)
	if err != nil {
		return nil, fmt.Errorf("audit spool: encode: %w", err)
	}
	if s.size+int64(len(data)) > s.max {
		return nil, errSpoolFull
	}
	s.fileMu.RLock()
	n, err := s.f.Write(data)
	s.fileMu.RUnlock()
	if err != nil {
		// Take back a partial write, so the file stays whole lines.
		if n > 0 {
			s.fileMu.Lock()
			terr := s.f.Truncate(s.size)
			s.fileMu.Unlock()
			if terr != nil {
				// The file now ends in a partial line; account for it so
				// that later appends and reads stay consistent. It is
				// dropped at the next start.
				s.size += int64(n)
				err = errors.Join(err, terr)
			}
		}
		return nil, fmt.Errorf("audit spool %s: %w", s.path, err)
	}
	for i := range ends {
		ends[i] += s.size
	}
	s.size += int64(len(data))
	s.bytes += int64(len(data))
	s.lines += int64(len(recs))
	s.scheduleSync()
	return ends, nil
}

// scheduleSync fsyncs the file soon: appends are fsync'd in batches.
func (s *spool) scheduleSync() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.syncTimer != nil || s.closed {
		return
	}
	s.syncTimer = time.AfterFunc(s.syncEvery, func() {
		s.syncMu.Lock()
		s.syncTimer = nil
		closed := s.closed
		s.syncMu.Unlock()
		if !closed {
			s.sync()
		}
	})
}

func (s *spool) sync() error {
	s.fileMu.RLock()
	defer s.fileMu.RUnlock()
	if s.f == nil {
		return nil
	}
	return s.f.Sync()
}

// readBatch decodes up to n records from the bytes [from, to) and returns
// them with the offset after the last line it consumed. Lines that do not
// decode are skipped (and counted in bad).
func (s *spool) readBatch(from, to int64, n int) (recs []Record, end int64, bad int, err error) {
	chunk := int64(1 << 20)
	for {
		size := min(to-from, chunk)
		buf := make([]byte, size)
		s.fileMu.RLock()
		_, err = s.f.ReadAt(buf, from)
		s.fileMu.RUnlock()
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, from, 0, fmt.Errorf("audit spool %s: %w", s.path, err)
		}
		end = from
		rest := buf
		for len(recs) < n {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				break
			}
			var r Record
			if err := json.Unmarshal(rest[:i], &r); err != nil {
				bad++
			} else {
				recs = append(recs, r)
			}
			end += int64(i) + 1
			rest = rest[i+1:]
		}
		if end > from || size == to-from {
			return recs, end, bad, nil
		}
		// One line longer than the chunk: read more at once.
		chunk *= 4
	}
}

// saveOffset records that the bytes up to read are stored. Only the
// Writer's goroutine calls it.
func (s *spool) saveOffset(read int64) error {
	if _, err := s.off.WriteAt([]byte(fmt.Sprintf("%020d\n", read)), 0); err != nil {
		return fmt.Errorf("audit spool %s: %w", s.offPath, err)
	}
	if err := s.off.Sync(); err != nil {
		return fmt.Errorf("audit spool %s: %w", s.offPath, err)
	}
	return nil
}

// reset empties a fully stored spool. The Writer's mu is held, so nothing
// is appended meanwhile.
func (s *spool) reset() error {
	s.fileMu.Lock()
	err := s.f.Truncate(0)
	if err == nil {
		err = s.f.Sync()
	}
	s.fileMu.Unlock()
	if err != nil {
		return fmt.Errorf("audit spool %s: truncate: %w", s.path, err)
	}
	s.size, s.read = 0, 0
	return nil
}

// close fsyncs and releases the spool. A spool with nothing left to store
// is removed.
func (s *spool) close() error {
	s.syncMu.Lock()
	s.closed = true
	if s.syncTimer != nil {
		s.syncTimer.Stop()
		s.syncTimer = nil
	}
	s.syncMu.Unlock()
	s.fileMu.Lock()
	defer s.fileMu.Unlock()
	var errs []error
	if s.unread() == 0 {
		// Removed while still locked, so no other process adopts a file
		// that is about to disappear (and one that opened it before
		// notices, see openSpoolSlot).
		errs = append(errs, ignoreMissing(os.Remove(s.offPath)), ignoreMissing(os.Remove(s.path)))
	} else {
		errs = append(errs, s.f.Sync(), s.off.Sync())
	}
	errs = append(errs, s.off.Close(), s.f.Close())
	s.f = nil
	return errors.Join(errs...)
}

func ignoreMissing(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// existingSpoolSlots lists the slots of dir that have a spool file, in
// order.
func existingSpoolSlots(dir string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	var slots []int
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, spoolPrefix) || !strings.HasSuffix(name, ".jsonl") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, spoolPrefix), ".jsonl"))
		if err == nil && n >= 0 && n < spoolSlots {
			slots = append(slots, n)
		}
	}
	sort.Ints(slots)
	return slots, nil
}
