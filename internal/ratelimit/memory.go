package ratelimit

import (
	"container/list"
	"context"
	"fmt"
	"sync"
	"time"
)

// DefaultMaxKeys is the number of buckets a [Memory] limiter keeps at most
// when [MemoryOptions.MaxKeys] is 0: about 14 MB with 30-byte user ids.
const DefaultMaxKeys = 100_000

// sweepPerCall is how many full buckets one Allow may drop from the cold end
// of the LRU list, so idle buckets go away without a background goroutine
// and without a call ever doing unbounded work.
const sweepPerCall = 4

// MemoryOptions tunes [NewMemory]. A nil *MemoryOptions means all defaults.
type MemoryOptions struct {
	// Now is the clock [time.Now].
	Now func() time.Time
	// MaxKeys bounds how many buckets are kept [DefaultMaxKeys]. Full buckets
	// are dropped as they are met; when a new key arrives at the bound, the
	// least recently used bucket is evicted even if not yet full, which
	// forgives that user's debt (at most burst calls) rather than let memory
	// grow without bound.
	MaxKeys int
}

// Memory is a [Limiter] holding one GCRA token bucket per key in this
// process. It is exact under an injected clock and safe for concurrent use.
type Memory struct {
	interval  int64 // ns per token
	tolerance int64 // burst * interval
	now       func() time.Time
	base      time.Time // times are ns since base, so the monotonic clock is used
	maxKeys   int

	mu      sync.Mutex
	buckets map[string]*list.Element // of *bucket
	lru     list.List                // front: most recently used
}

// bucket is one key's state: only its theoretical arrival time.
type bucket struct {
	key string
	tat int64
}

// NewMemory returns an in-memory limiter allowing each key rps calls per
// second on average (fractions allowed) and burst calls at once. It panics if
// rps is not a finite number above 0 or burst is below 1 (config validation
// and [Open] reject those first).
func NewMemory(rps float64, burst int, opts *MemoryOptions) *Memory {
	if err := checkParams(rps, burst); err != nil {
		panic(err)
	}
	var o MemoryOptions
	if opts != nil {
		o = *opts
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxKeys <= 0 {
		o.MaxKeys = DefaultMaxKeys
	}
	iv := interval(rps, time.Nanosecond)
	return &Memory{
		interval:  iv,
		tolerance: iv * int64(burst),
		now:       o.Now,
		base:      o.Now(),
		maxKeys:   o.MaxKeys,
		buckets:   make(map[string]*list.Element),
	}
}

// Allow takes one token from key's bucket if one is left. It fails only when
// ctx is already done, and then takes nothing.
func (m *Memory) Allow(ctx context.Context, key string) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, fmt.Errorf("ratelimit: %w", err)
	}
	now := m.now().Sub(m.base).Nanoseconds()

	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.buckets[key]
	tat := now
	if ok {
		tat = el.Value.(*bucket).tat
	}
	d, tat := gcra(now, tat, m.interval, m.tolerance, time.Nanosecond)
	if ok {
		el.Value.(*bucket).tat = tat
		m.lru.MoveToFront(el)
	}
	m.sweep(now)
	if !ok && tat > now {
		if m.lru.Len() >= m.maxKeys {
			m.remove(m.lru.Back())
		}
		m.buckets[key] = m.lru.PushFront(&bucket{key: key, tat: tat})
	}
	return d, nil
}

// Len is the number of buckets held (at most MaxKeys): keys whose bucket is
// not full, and full ones not yet dropped.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.Len()
}

// sweep drops up to sweepPerCall full buckets from the cold end of the LRU
// list. Full buckets elsewhere wait until they reach the end (or are used
// again); MaxKeys bounds them meanwhile.
func (m *Memory) sweep(now int64) {
	for range sweepPerCall {
		el := m.lru.Back()
		if el == nil || el.Value.(*bucket).tat > now {
			return
		}
		m.remove(el)
	}
}

func (m *Memory) remove(el *list.Element) {
	delete(m.buckets, m.lru.Remove(el).(*bucket).key)
}
