package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

// proxy forwards TCP connections to PostgreSQL and can freeze them (bytes
// stop flowing, connections stay open: a stopped or overloaded server) or
// kill them (every connection closed and new ones refused: a crashed one).
type proxy struct {
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
	thawed chan struct{} // closed while not frozen
	// hold: new connections are accepted and then held, never forwarded
	// nor closed (a network that drops packets), even after hold ends.
	hold bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]bool{}, thawed: make(chan struct{})}
	close(p.thawed)
	p.serve(ln)
	t.Cleanup(func() { p.thaw(); p.kill() })
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.handle(c)
		}
	}()
}

func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		c.Close()
		return false
	}
	p.conns[c] = true
	return true
}

func (p *proxy) handle(client net.Conn) {
	if !p.track(client) {
		return
	}
	p.mu.Lock()
	hold := p.hold
	p.mu.Unlock()
	if hold {
		return // tracked: closed by kill, at the end of the test
	}
	<-p.gate()
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	if !p.track(server) {
		client.Close()
		return
	}
	go p.pipe(server, client)
	p.pipe(client, server)
}

// pipe copies from src to dst, holding every chunk while frozen.
func (p *proxy) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			<-p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				return
			}
			return
		}
	}
}

func (p *proxy) gate() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.thawed
}

func (p *proxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.thawed = make(chan struct{})
}

func (p *proxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}

// blackhole closes every connection and holds the new ones.
func (p *proxy) blackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hold = on
	if on {
		for c := range p.conns {
			c.Close()
		}
		clear(p.conns)
	}
}

// kill closes every connection and stops listening: connecting is refused.
func (p *proxy) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// revive listens again on the same address.
func (p *proxy) revive(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// via returns dsn pointed at the proxy.
func (p *proxy) via(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Host = p.addr
	return u.String()
}

func hostOf(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if u.Port() == "" {
		return u.Hostname() + ":5432"
	}
	return u.Host
}

// within runs f and fails t if it has not returned after d: a call that
// hangs is the bug these tests look for.
func within(t *testing.T, d time.Duration, what string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f() }()
	select {
	case err := <-done:
		if el := time.Since(start); el > d {
			t.Errorf("%s took %v, want at most %v", what, el, d)
		}
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running after 10s: it hangs for as long as the database does", what)
		return nil
	}
}

// eventually retries f until it succeeds or 15s pass.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	eventuallyWithin(t, 15*time.Second, what, f)
}

// eventuallyWithin retries f until it succeeds or d passes.
func eventuallyWithin(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPostgres_OutageMakesCallsUnavailableWithinTheTimeout freezes and then
// kills the database under an open store: every call ends within
// store.timeout (plus slack) with ErrUnavailable, and the store works
// again once the database is back, without reopening it.
func TestPostgres_OutageMakesCallsUnavailableWithinTheTimeout(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	dsn := schemaDSN(t)
	p := newProxy(t, hostOf(t, dsn))
	const timeout = 300 * time.Millisecond
	const bound = 3 * time.Second
	s, err := store.OpenWithOptions(t.Context(), p.via(t, dsn), &store.Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(p.thaw)           // first: a frozen connection would hold Close up
	ctx := context.Background() // no deadline of the caller's
	if err := s.PutCredential(ctx, store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"GetCredential": func() error { _, err := s.GetCredential(ctx, "alice"); return err },
		"AppendAudit":   func() error { return s.AppendAudit(ctx, []audit.Record{{Time: time.Now(), Decision: audit.Allow}}) },
		"Ping":          func() error { return s.Ping(ctx) },
	}

	p.freeze()
	for name, f := range calls {
		if err := within(t, bound, "frozen: "+name, f); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("frozen: %s = %v, want ErrUnavailable", name, err)
		}
	}
	p.thaw()
	eventually(t, "after thawing", calls["GetCredential"])

	p.kill()
	for name, f := range calls {
		if err := within(t, bound, "down: "+name, f); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("down: %s = %v, want ErrUnavailable", name, err)
		}
	}
	p.revive(t)
	eventually(t, "after restarting", calls["GetCredential"])
	eventually(t, "after restarting", calls["AppendAudit"])
}

// Opening a store while the database is frozen fails within the timeout
// (connecting has the deadline too) instead of hanging.
func TestPostgres_OpenOfAFrozenDatabaseFailsWithinTheTimeout(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	dsn := schemaDSN(t)
	p := newProxy(t, hostOf(t, dsn))
	p.freeze()
	err := within(t, 3*time.Second, "Open", func() error {
		s, err := store.OpenWithOptions(t.Context(), p.via(t, dsn), &store.Options{Timeout: 300 * time.Millisecond})
		if err == nil {
			s.Close()
		}
		return err
	})
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a frozen database = %v, want an error wrapping ErrUnavailable", err)
	}
}

// Connections that are made while the network drops packets never
// complete; each has the store's deadline (connect timeout), so the pool
// does not stay full of them once the network is back.
func TestPostgres_ConnectingHasTheDeadlineToo(t *testing.T) {
	serverDSN(t)
	t.Parallel()
	dsn := schemaDSN(t)
	p := newProxy(t, hostOf(t, dsn))
	u, err := url.Parse(p.via(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("pool_max_conns", "2")
	u.RawQuery = q.Encode()
	s, err := store.OpenWithOptions(t.Context(), u.String(), &store.Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	t.Cleanup(p.kill) // first: pgx waits up to 15 s to close a connection that gets no answer
	ctx := context.Background()
	if err := s.PutCredential(ctx, store.Credential{User: "alice", Sealed: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	get := func() error { _, err := s.GetCredential(ctx, "alice"); return err }

	p.blackhole(true)
	for i := range 4 {
		if err := within(t, 3*time.Second, "GetCredential through a black hole", get); !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("call %d through a black hole = %v, want ErrUnavailable", i, err)
		}
	}
	// Without a connect timeout, the connections held in the black hole
	// fill the pool until pgx gives up on them, about 15 s later.
	p.blackhole(false)
	eventuallyWithin(t, 5*time.Second, "once the network is back", get)
}
