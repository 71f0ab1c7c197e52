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
type lru[V any] struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *lruEntry[V], most recently used first
	byKey map[tokenKey]*list.Element
}

type lruEntry[V any] struct {
	key   tokenKey
	val   V
	until time.Time
}

func newLRU[V any](size int) *lru[V] {
	return &lru[V]{max: size, order: list.New(), byKey: make(map[tokenKey]*list.Element)}
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
		c.order.Remove(el)
		delete(c.byKey, k)
		return zero, false
	}
	c.order.MoveToFront(el)
	return e.val, true
}

// put stores v for k until the deadline, evicting the least recently used
// entry when full.
func (c *lru[V]) put(k tokenKey, v V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		e := el.Value.(*lruEntry[V])
		e.val, e.until = v, until
		c.order.MoveToFront(el)
		return
	}
	c.byKey[k] = c.order.PushFront(&lruEntry[V]{key: k, val: v, until: until})
	for c.order.Len() > c.max {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.byKey, oldest.Value.(*lruEntry[V]).key)
	}
}

func (c *lru[V]) remove(k tokenKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[k]; ok {
		c.order.Remove(el)
		delete(c.byKey, k)
	}
}

// removeFunc drops every entry whose value satisfies drop.
func (c *lru[V]) removeFunc(drop func(V) bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if e := el.Value.(*lruEntry[V]); drop(e.val) {
			c.order.Remove(el)
			delete(c.byKey, e.key)
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
