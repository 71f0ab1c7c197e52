package authn

import (
	"container/list"
	"crypto/sha256"
	"sync"
	"time"
)

// tokenKey identifies a token in the caches: its SHA-256, so a cache never
// holds a usable token (a memory dump of the process yields no credentials).
type tokenKey [sha256.Size]byte

func keyOf(token string) tokenKey { return sha256.Sum256([]byte(token)) }

// lru is a bounded least-recently-used map from token hashes to values, each
// valid until a deadline. It is safe for concurrent use.
//
// With a minimum age, a full cache makes room only by evicting an entry
// that is at least that old (or past its deadline): the least recently used
// one if it may go, else the oldest one if it may; when neither may, the new
// entry is not cached. So a flood of new entries cannot push out the
// entries of the last minAge, and making room stays O(1).
type lru[V any] struct {
	mu     sync.Mutex
	max    int
	minAge time.Duration
	order  *list.List // of *lruEntry[V], most recently used first
	byAge  *list.List // of *lruEntry[V], oldest (first stored) first
	byKey  map[tokenKey]*list.Element
}

type lruEntry[V any] struct {
	key   tokenKey
	val   V
	at    time.Time // when stored
	until time.Time
	age   *list.Element // its element in byAge
}

func newLRU[V any](size int, minAge time.Duration) *lru[V] {
	return &lru[V]{max: size, minAge: minAge, order: list.New(), byAge: list.New(), byKey: make(map[tokenKey]*list.Element)}
}

// get returns the value for k if it is there and now is before its deadline.
func (c *lru[V]) get(k tokenKey, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var zero V
	el, ok := c.byKey[k]
	if !ok {
		return zero, false
	}
	e := el.Value.(*lruEntry[V])
	if !now.Before(e.until) {
		c.drop(el)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// put stores v for k, at now, until the deadline. When the cache is full it
// evicts an entry that may go (see lru); when none may, v is not stored and
// put returns false.
func (c *lru[V]) put(k tokenKey, v V, now, until time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		e := el.Value.(*lruEntry[V])
		e.val, e.at, e.until = v, now, until
		c.order.MoveToFront(el)
		c.byAge.MoveToBack(e.age)
		return true
	}
	if c.order.Len() >= c.max {
		victim := c.order.Back()
		if !c.evictable(victim, now) {
			victim = c.byKey[c.byAge.Front().Value.(*lruEntry[V]).key]
			if !c.evictable(victim, now) {
				return false
			}
		}
		c.drop(victim)
	}
	e := &lruEntry[V]{key: k, val: v, at: now, until: until}
	e.age = c.byAge.PushBack(e)
	c.byKey[k] = c.order.PushFront(e)
	return true
}

// evictable reports whether the entry of el may make room at now.
func (c *lru[V]) evictable(el *list.Element, now time.Time) bool {
	e := el.Value.(*lruEntry[V])
	return !now.Before(e.until) || now.Sub(e.at) >= c.minAge
}

// drop removes the entry of el, an element of order.
func (c *lru[V]) drop(el *list.Element) {
	e := el.Value.(*lruEntry[V])
	c.order.Remove(el)
	c.byAge.Remove(e.age)
	delete(c.byKey, e.key)
}

func (c *lru[V]) remove(k tokenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.drop(el)
	}
}

// removeFunc drops every entry whose value satisfies drop.
func (c *lru[V]) removeFunc(drop func(V) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if drop(el.Value.(*lruEntry[V]).val) {
			c.drop(el)
			n++
		}
		el = next
	}
	return n
}

func (c *lru[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
