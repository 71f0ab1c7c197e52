package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowIntrospection is an introspection endpoint that answers active:false
// to every token, after waiting for delay or, when gate is set, until the
// gate closes. It counts the calls in flight and the tokens it was asked
// about.
type slowIntrospection struct {
	srv       *httptest.Server
	delay     time.Duration
	gate      chan struct{}
	inFlight  atomic.Int64
	maxFlight atomic.Int64
	hits      atomic.Int64
	peak      atomic.Int64 // the most goroutines of the process seen as a call ends
	openOnce  sync.Once

	mu   sync.Mutex
	seen map[string]int
}

func newSlowIntrospection(t *testing.T, delay time.Duration, gated bool) *slowIntrospection {
	t.Helper()
	s := &slowIntrospection{delay: delay, seen: map[string]int{}}
	if gated {
		s.gate = make(chan struct{})
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	if gated {
		t.Cleanup(s.open) // runs before srv.Close: handlers must return first
	}
	return s
}

func (s *slowIntrospection) open() { s.openOnce.Do(func() { close(s.gate) }) }

func storeMax(v *atomic.Int64, n int64) {
	for {
		m := v.Load()
		if n <= m || v.CompareAndSwap(m, n) {
			return
		}
	}
}

func (s *slowIntrospection) serve(w http.ResponseWriter, r *http.Request) {
	storeMax(&s.maxFlight, s.inFlight.Add(1))
	defer s.inFlight.Add(-1)
	s.hits.Add(1)
	_ = r.ParseForm()
	s.mu.Lock()
	s.seen[r.PostForm.Get("token")]++
	s.mu.Unlock()
	var wait <-chan time.Time
	if s.gate == nil {
		wait = time.After(s.delay)
	}
	select {
	case <-s.gate:
	case <-wait:
	case <-r.Context().Done():
		return
	}
	// What is still there when the answer is due is what the calls in
	// flight hold: the callers refused at once are gone by now.
	storeMax(&s.peak, int64(runtime.NumGoroutine()))
	writeJSON(w, map[string]any{"active": false})
}

func (s *slowIntrospection) calls(token string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[token]
}

// 150 distinct junk tokens at once against a slow endpoint: never more than
// 16 calls in flight, the others refused as unavailable (503) at once, and
// the goroutines bounded while it lasts and back where they were after.
func TestIntrospection_JunkFloodIsBounded(t *testing.T) {
	// Not parallel: it counts the process's goroutines.
	in := newSlowIntrospection(t, 200*time.Millisecond, false)
	transport := &http.Transport{}
	t.Cleanup(transport.CloseIdleConnections)
	client := &http.Client{Transport: transport, Timeout: 10 * time.Second}
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) {
		o.Introspection = &Introspection{URL: in.srv.URL}
		o.HTTPClient = client
	})
	transport.CloseIdleConnections()
	runtime.GC()
	before := runtime.NumGoroutine()

	const tokens = 150
	var inactive, unavailableN atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range tokens {
		wg.Go(func() {
			<-start
			_, err := f.v.Verify(t.Context(), fmt.Sprintf("junk-token-%03d", i))
			e, ok := errors.AsType[*Error](err)
			switch {
			case ok && e.Reason == ReasonInactive && errors.Is(err, ErrInvalidToken):
				inactive.Add(1)
			case ok && e.Reason == ReasonUnavailable && errors.Is(err, ErrUnavailable):
				unavailableN.Add(1)
			default:
				t.Errorf("token %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()

	if m := in.maxFlight.Load(); m > maxIntrospectionsInFlight {
		t.Errorf("%d introspection calls in flight at once, want at most %d", m, maxIntrospectionsInFlight)
	}
	if h := in.hits.Load(); h != inactive.Load() || h == 0 {
		t.Errorf("%d calls for %d inactive answers", h, inactive.Load())
	}
	if inactive.Load()+unavailableN.Load() != tokens {
		t.Errorf("%d inactive + %d unavailable, want %d answers", inactive.Load(), unavailableN.Load(), tokens)
	}
	// While the calls are under way: their callers, the calls with their
	// connections at both ends, and some slack; not goroutines per token.
	if p, limit := in.peak.Load(), int64(before+10*maxIntrospectionsInFlight); p > limit {
		t.Errorf("%d goroutines at the peak (%d before), want at most %d", p, before, limit)
	}
	t.Logf("goroutines: %d before, %d at the peak; %d calls, at most %d at once; %d refused as unavailable",
		before, in.peak.Load(), in.hits.Load(), in.maxFlight.Load(), unavailableN.Load())
	eventually(t, "the goroutines to go back to where they were", func() bool {
		transport.CloseIdleConnections()
		return runtime.NumGoroutine() <= before+5
	})
}

// The 17th distinct token while 16 are being introspected is refused at
// once as unavailable, without a call; once a slot frees it is asked.
func TestIntrospection_SeventeenthDistinctTokenIsUnavailable(t *testing.T) {
	t.Parallel()
	in := newSlowIntrospection(t, 0, true)
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Introspection = &Introspection{URL: in.srv.URL} })
	var wg sync.WaitGroup
	for i := range maxIntrospectionsInFlight {
		wg.Go(func() {
			_, err := f.v.Verify(t.Context(), fmt.Sprintf("slot-%02d", i))
			wantReason(t, err, ReasonInactive, ErrInvalidToken)
		})
	}
	eventually(t, "16 calls in flight", func() bool { return in.inFlight.Load() == maxIntrospectionsInFlight })

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	began := time.Now()
	_, err := f.v.Verify(ctx, "the-17th")
	e := wantReason(t, err, ReasonUnavailable, ErrUnavailable)
	if took := time.Since(began); took > time.Second {
		t.Errorf("the 17th token waited %v; it must be refused at once", took)
	}
	if n := in.calls("the-17th"); n != 0 || in.maxFlight.Load() > maxIntrospectionsInFlight {
		t.Errorf("the 17th token was introspected (%d calls, %d at once)", n, in.maxFlight.Load())
	}
	if strings.Contains(e.Description, "the-17th") {
		t.Errorf("description %q echoes the token", e.Description)
	}

	in.open()
	wg.Wait()
	_, err = f.v.Verify(t.Context(), "the-17th")
	wantReason(t, err, ReasonInactive, ErrInvalidToken)
	if n := in.calls("the-17th"); n != 1 {
		t.Errorf("the 17th token: %d calls once a slot was free, want 1", n)
	}
}

// Concurrent callers with one token share one call.
func TestIntrospection_OneCallPerTokenInFlight(t *testing.T) {
	t.Parallel()
	in := newSlowIntrospection(t, 0, true)
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Introspection = &Introspection{URL: in.srv.URL} })
	const callers = 20
	var started atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			started.Add(1)
			_, err := f.v.Verify(t.Context(), "same-token")
			wantReason(t, err, ReasonInactive, ErrInvalidToken)
		})
	}
	eventually(t, "the call and every caller", func() bool { return in.inFlight.Load() >= 1 && started.Load() == callers })
	// Give the callers that started a moment to reach the flight; without
	// the merge each of them makes its own call, which shows at once.
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) && in.hits.Load() == 1 {
		time.Sleep(time.Millisecond)
	}
	in.open()
	wg.Wait()
	if n := in.hits.Load(); n != 1 {
		t.Errorf("%d calls for one token asked %d times at once, want 1", n, callers)
	}
}

// Negative answers (active:false, or an answer the checks refuse) are
// cached for 10 s, whatever the cache TTL: a repeated junk token costs no
// call, and a refused token is asked again soon.
func TestIntrospection_NegativeAnswersCachedTenSeconds(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	refresh := activeAnswer(f)
	refresh["token_type"] = "refresh_token"
	in.answer("a-refresh-token", refresh)
	for _, tc := range []struct{ token, reason string }{{"junk", ReasonInactive}, {"a-refresh-token", ReasonTokenType}} {
		hits := in.hits.Load()
		calls := func() int64 { return in.hits.Load() - hits }
		for range 3 {
			_, err := f.v.Verify(t.Context(), tc.token)
			wantReason(t, err, tc.reason, ErrInvalidToken)
		}
		if n := calls(); n != 1 {
			t.Errorf("%s: %d calls for 3 verifications, want 1", tc.token, n)
		}
		f.clock.Advance(negativeTTL - time.Second)
		_, err := f.v.Verify(t.Context(), tc.token)
		wantReason(t, err, tc.reason, ErrInvalidToken)
		if n := calls(); n != 1 {
			t.Errorf("%s: %d calls within 10 s, want 1", tc.token, n)
		}
		f.clock.Advance(time.Second)
		_, err = f.v.Verify(t.Context(), tc.token)
		wantReason(t, err, tc.reason, ErrInvalidToken)
		if n := calls(); n != 2 {
			t.Errorf("%s: %d calls after 10 s, want 2", tc.token, n)
		}
	}
}

// What cannot be a bearer token is refused before any call.
func TestIntrospection_NotATokenCostsNoCall(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t)
	tests := map[string]string{
		"over 16 KiB":           strings.Repeat("a", 16<<10+1),
		"a space":               "opaque token",
		"a comma":               "opaque,token",
		"non-ASCII":             "tøken",
		"no-break space":        "opaque\u00a0token",
		"a NUL":                 "opaque\x00",
		"padding inside":        "opa=que",
		"padding only":          "==",
		"a quote":               `opaque"`,
		"a newline":             "opaque\n",
		"empty":                 "",
		"JWT-shaped with space": "a.b .c",
	}
	for name, tok := range tests {
		_, err := f.v.Verify(t.Context(), tok)
		want := ReasonMalformed
		if len(tok) > DefaultMaxTokenBytes {
			want = ReasonTooLarge
		}
		if e, ok := errors.AsType[*Error](err); !ok || e.Reason != want || !errors.Is(err, ErrInvalidToken) {
			t.Errorf("%s: %v, want %s", name, err, want)
		}
	}
	if n := in.hits.Load(); n != 0 {
		t.Errorf("%d introspection calls for tokens that cannot be tokens", n)
	}
	// The longest and widest acceptable token is asked about.
	_, err := f.v.Verify(t.Context(), "aZ09-._~+/"+strings.Repeat("x", 16<<10-12)+"==")
	wantReason(t, err, ReasonInactive, ErrInvalidToken)
}

// A flood of junk tokens does not evict the cached answer of a real one,
// even one older than 10 s: junk answers are cached apart.
func TestIntrospection_JunkFloodKeepsCachedAnswers(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t, func(o *Options) { o.TokenCacheSize = 4 })
	in.answer("real-token", activeAnswer(f))
	if _, err := f.v.Verify(t.Context(), "real-token"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * time.Second) // within the 60 s TTL
	for i := range 20 {
		_, err := f.v.Verify(t.Context(), fmt.Sprintf("junk-%d", i))
		wantReason(t, err, ReasonInactive, ErrInvalidToken)
	}
	hits := in.hits.Load()
	if _, err := f.v.Verify(t.Context(), "real-token"); err != nil {
		t.Fatal(err)
	}
	if in.hits.Load() != hits {
		t.Error("the flood evicted the real token's cached answer")
	}
}

// A flood of (active) tokens cannot evict answers younger than 10 s: when
// none can go, the new answer is not cached.
func TestIntrospection_FloodCannotEvictYoungAnswers(t *testing.T) {
	t.Parallel()
	f, in := introFixture(t, func(o *Options) { o.TokenCacheSize = 2 })
	for _, tok := range []string{"a", "b", "c", "d"} {
		in.answer(tok, activeAnswer(f))
	}
	verify := func(tok string) {
		t.Helper()
		if _, err := f.v.Verify(t.Context(), tok); err != nil {
			t.Fatal(err)
		}
	}
	verify("a")
	verify("b")
	f.clock.Advance(negativeTTL - time.Second)
	verify("c") // the cache is full of answers younger than 10 s
	hits := in.hits.Load()
	verify("a")
	verify("b")
	if n := in.hits.Load() - hits; n != 0 {
		t.Errorf("%d calls: a flood evicted an answer younger than 10 s", n)
	}
	verify("c")
	if n := in.hits.Load() - hits; n != 1 {
		t.Errorf("%d calls: the answer that found no room was cached anyway", n)
	}
	// Once they are 10 s old they may go, least recently used first.
	f.clock.Advance(time.Second)
	verify("d")
	hits = in.hits.Load()
	verify("d")
	verify("b")
	if n := in.hits.Load() - hits; n != 0 {
		t.Errorf("%d calls: d was not cached, or b (used last) was evicted instead of a", n)
	}
	verify("a")
	if n := in.hits.Load() - hits; n != 1 {
		t.Errorf("%d calls: a, least recently used and 10 s old, should have made room", n)
	}
}

// A caller whose request ends stops waiting; the call goes on for the
// others and its answer is cached.
func TestIntrospection_CallerGivingUpDoesNotCancelTheCall(t *testing.T) {
	t.Parallel()
	in := newSlowIntrospection(t, 0, true)
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Introspection = &Introspection{URL: in.srv.URL} })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() {
		_, err := f.v.Verify(ctx, "given-up")
		done <- err
	}()
	eventually(t, "the call", func() bool { return in.inFlight.Load() == 1 })
	cancel()
	select {
	case err := <-done:
		wantReason(t, err, ReasonUnavailable, ErrUnavailable)
	case <-time.After(5 * time.Second):
		t.Fatal("the caller kept waiting after its request ended")
	}
	in.open()
	eventually(t, "the call to end", func() bool { return in.inFlight.Load() == 0 })
	eventually(t, "the answer to be cached", func() bool {
		_, ok := f.v.intro.cached(keyOf("given-up"), f.clock.Now())
		return ok
	})
	_, err := f.v.Verify(t.Context(), "given-up")
	wantReason(t, err, ReasonInactive, ErrInvalidToken)
	if n := in.hits.Load(); n != 1 {
		t.Errorf("%d calls, want 1", n)
	}
}

// The readiness probe counts among the calls in flight: with every slot
// taken it waits for one rather than make a 17th call.
func TestIntrospection_ProbeTakesASlot(t *testing.T) {
	t.Parallel()
	in := newSlowIntrospection(t, 0, true)
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Introspection = &Introspection{URL: in.srv.URL} })
	var wg sync.WaitGroup
	for i := range maxIntrospectionsInFlight {
		wg.Go(func() { _, _ = f.v.Verify(t.Context(), fmt.Sprintf("slot-%02d", i)) })
	}
	eventually(t, "16 calls in flight", func() bool { return in.inFlight.Load() == maxIntrospectionsInFlight })
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := f.v.probeIntrospection(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("probe with every slot taken: %v, want it to wait until its deadline", err)
	}
	if n := in.calls(probeToken); n != 0 || in.maxFlight.Load() > maxIntrospectionsInFlight {
		t.Errorf("the probe made a call (%d) with every slot taken (%d at once)", n, in.maxFlight.Load())
	}
	in.open()
	wg.Wait()
	if err := f.v.probeIntrospection(t.Context()); err != nil {
		t.Errorf("probe with free slots: %v", err)
	}
}
