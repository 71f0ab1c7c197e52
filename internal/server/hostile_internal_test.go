package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
)

// slowVerifier holds every verification until release is closed.
type slowVerifier struct{ release chan struct{} }

func (v slowVerifier) Verify(ctx context.Context, token string) (*authn.Identity, error) {
	select {
	case <-v.release:
	case <-ctx.Done():
	}
	if token == "good" {
		return &authn.Identity{User: "alice", Expiry: time.Now().Add(time.Hour)}, nil
	}
	return nil, &authn.Error{Reason: "signature", Description: "bad", Err: authn.ErrInvalidToken}
}

func (slowVerifier) Ready(context.Context) error { return nil }

// TestAuthenticate_BoundsUnauthenticatedRequestsInProgress pins
// server.max_unauthenticated_inflight: with every slot held by requests
// without a token whose bodies are still arriving, one more gets 503 +
// Retry-After at once, while a request with a valid token is still served
// (slow anonymous clients must not lock users out).
func TestAuthenticate_BoundsUnauthenticatedRequestsInProgress(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), WithScope, Authenticate(AuthOptions{
		Verifier: slowVerifier{release: closedChan()}, Authorizer: authz.New(nil), JenkinsUser: func(u string) (string, error) { return u, nil },
		Audit: rec, MaxUnauthenticated: 2,
	}))
	var wg sync.WaitGroup
	var bodies []*io.PipeWriter
	for range 2 {
		pr, pw := io.Pipe()
		bodies = append(bodies, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/mcp", pr)) // no token; the body never ends
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{}`)))
		if w.Code == http.StatusServiceUnavailable {
			if w.Header().Get("Retry-After") == "" {
				t.Error("503 without Retry-After")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a third request without a token got %d, want 503 while two are in progress", w.Code)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A valid token does not wait for the unauthenticated slots.
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer good")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK {
		t.Errorf("a valid token while the slots are full got %d, want 200", w.Code)
	}
	for _, pw := range bodies {
		pw.Close()
	}
	wg.Wait()
}

// TestAuthenticate_SlowBodyClosesTheConnection pins the body deadline: a
// client sending its body a byte at a time loses the connection after the
// timeout instead of holding it forever.
func TestAuthenticate_SlowBodyClosesTheConnection(t *testing.T) {
	t.Parallel()
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), WithScope, Authenticate(AuthOptions{
		Verifier: slowVerifier{release: closedChan()}, Authorizer: authz.New(nil), JenkinsUser: func(u string) (string, error) { return u, nil },
		Audit: &recorder{}, BodyTimeout: 300 * time.Millisecond,
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST /mcp HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer good\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
	start := time.Now()
	done := make(chan error, 1)
	go func() {
		// Trickle a byte every 100 ms; the server must give up first.
		for range 100 {
			time.Sleep(100 * time.Millisecond)
			if _, err := conn.Write([]byte(" ")); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.ReadAll(conn) // returns when the server answers and closes
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("the slow body held the connection %s, want about the 300ms timeout", d)
	}
}

func closedChan() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// TestAuthenticate_MalformedParamsAreAudited pins that a tools/call the
// SDK cannot read (and answers itself) still leaves one audit record.
func TestAuthenticate_MalformedParamsAreAudited(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), WithScope, Authenticate(AuthOptions{
		Verifier: slowVerifier{release: closedChan()}, Authorizer: authz.New(nil), JenkinsUser: func(u string) (string, error) { return u, nil },
		Audit: rec,
	}))
	for _, body := range []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":"x"}`, `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":7}}`} {
		req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer good")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	recs := rec.all()
	if len(recs) != 2 {
		t.Fatalf("%d records, want 2", len(recs))
	}
	for _, r := range recs {
		if r.Tool != "unknown" || r.Decision != "error" || r.Code != "invalid_argument" || r.User != "alice" {
			t.Errorf("record %+v, want an invalid_argument error of tool unknown by alice", r)
		}
	}
}

// sessionReq is a request on session id (none when "") by p.
func sessionReq(method, id, remote string, p identity.Principal) *http.Request {
	r := httptest.NewRequest(method, "/mcp", nil)
	r.RemoteAddr = remote
	if id != "" {
		r.Header.Set(sessionHeader, id)
	}
	return r.WithContext(request.NewContext(r.Context(), &request.Scope{Principal: p, ID: "r", RemoteAddr: remote}))
}

// newSessionSDK is a fake SDK handing out sess-1, sess-2, ... and
// answering DELETE with status deleteStatus.
func newSessionSDK(deleteStatus *atomic.Int32) http.Handler {
	var n atomic.Int64
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodDelete:
			w.WriteHeader(int(deleteStatus.Load()))
		case r.Header.Get(sessionHeader) == "":
			w.Header().Set(sessionHeader, fmt.Sprintf("sess-%d", n.Add(1)))
		}
	})
}

// TestBindSessions_BoundsSessionsPerUserClosingTheOldestIdle pins
// server.max_sessions_per_user: the user's oldest idle session is closed
// to make room; guests count per client address; with no idle session to
// close, a new one is refused with 429.
func TestBindSessions_BoundsSessionsPerUserClosingTheOldestIdle(t *testing.T) {
	t.Parallel()
	var closed []string
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	owners := newSessionOwners(SessionLimits{Max: 100, PerUser: 2, Idle: time.Hour}, func(id string) {
		mu.Lock()
		closed = append(closed, id)
		mu.Unlock()
	}, func() time.Time { now = now.Add(time.Second); return now })
	var del atomic.Int32
	del.Store(http.StatusNoContent)
	m := metrics.New()
	h := BindSessions(owners, &recorder{}, m, time.Now)(newSessionSDK(&del))
	alice := identity.Principal{User: "alice"}
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodPost, "", "10.0.0.1:1", alice))
	}
	if owners.len() != 2 {
		t.Errorf("alice holds %d sessions, want 2", owners.len())
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(closed, ",")
		mu.Unlock()
		if got == "sess-1" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed %q, want the oldest idle session sess-1", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Guests count per address: 2 from one address fit, a third closes the
	// oldest; a busy session (a request in progress) is never closed.
	g := identity.Guest()
	for range 2 {
		h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodPost, "", "10.0.0.9:5", g))
	}
	if owners.len() != 4 {
		t.Errorf("%d sessions, want alice's 2 and the guest's 2", owners.len())
	}
	// Make both of the guest's sessions busy, then ask for a third: 429.
	owners.mu.Lock()
	for _, o := range owners.owners {
		if o.owner == "guest:10.0.0.9" {
			o.active++
		}
	}
	owners.mu.Unlock()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, sessionReq(http.MethodPost, "", "10.0.0.9:6", g))
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("a third guest session with none idle: %d, want 429 with Retry-After", w.Code)
	}
	mw := httptest.NewRecorder()
	m.Handler().ServeHTTP(mw, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(mw.Body.String(), `butler_auth_failures_total{reason="too_many_sessions"} 1`) {
		t.Error("the refused session is not counted in butler_auth_failures_total")
	}
}

// TestBindSessions_RefusedDeleteKeepsTheOwner pins that a DELETE the SDK
// refuses leaves the session bound to its user: another user still cannot
// use it.
func TestBindSessions_RefusedDeleteKeepsTheOwner(t *testing.T) {
	t.Parallel()
	owners := newSessionOwners(SessionLimits{Max: 10, PerUser: 10, Idle: time.Hour}, nil, nil)
	var del atomic.Int32
	del.Store(http.StatusBadRequest)
	h := BindSessions(owners, &recorder{}, nil, time.Now)(newSessionSDK(&del))
	alice, bob := identity.Principal{User: "alice"}, identity.Principal{User: "bob"}
	h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodPost, "", "a:1", alice))
	h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodDelete, "sess-1", "a:1", alice))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, sessionReq(http.MethodPost, "sess-1", "b:1", bob))
	if w.Code != http.StatusForbidden {
		t.Errorf("bob on alice's session after a refused DELETE: %d, want 403", w.Code)
	}
	del.Store(http.StatusNoContent)
	h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodDelete, "sess-1", "a:1", alice))
	if owners.len() != 0 {
		t.Errorf("after an accepted DELETE %d sessions are known, want 0", owners.len())
	}
}

// TestBindSessions_TakeOverEndsTheGuestsStream pins that a guest's open
// event stream on a session ends when a user takes the session over.
func TestBindSessions_TakeOverEndsTheGuestsStream(t *testing.T) {
	t.Parallel()
	owners := newSessionOwners(SessionLimits{Max: 10, PerUser: 10, Idle: time.Hour}, nil, nil)
	streaming := make(chan struct{})
	ended := make(chan struct{})
	sdk := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Header.Get(sessionHeader) == "":
			w.Header().Set(sessionHeader, "sess-1")
		case r.Method == http.MethodGet:
			close(streaming)
			<-r.Context().Done()
			close(ended)
		}
	})
	h := BindSessions(owners, &recorder{}, nil, time.Now)(sdk)
	g := identity.Guest()
	h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodPost, "", "g:1", g))
	go h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodGet, "sess-1", "g:1", g))
	<-streaming
	h.ServeHTTP(httptest.NewRecorder(), sessionReq(http.MethodPost, "sess-1", "a:1", identity.Principal{User: "alice"}))
	select {
	case <-ended:
	case <-time.After(2 * time.Second):
		t.Fatal("the guest's event stream is still open after alice took the session over")
	}
}
