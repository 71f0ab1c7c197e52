package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/tools"
)

// Limits of search_build_log (docs/tools.md): what one call may cost.

const (
	answerLimit = 1 << 20 // text of matches and context in one answer
	lineLimit   = 4096    // one returned line
)

// logSim is a simulator with user admin (admin-token) and a job "big" whose
// builds 1, 2, ... have the given generated consoles.
func logSim(tb testing.TB, consoles ...jenkinstest.Console) *jenkinstest.Server {
	tb.Helper()
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	if err := sim.AddJob("big", jenkinstest.JobSpec{}); err != nil {
		tb.Fatal(err)
	}
	for _, c := range consoles {
		if _, err := sim.AddBuild("big", jenkinstest.BuildSpec{Console: c}); err != nil {
			tb.Fatal(err)
		}
	}
	return sim
}

// searchSession serves Butler's tools, talking to the Jenkins at h as
// admin with opts, to an MCP client.
func searchSession(tb testing.TB, h http.Handler, opts *jenkins.Options) *mcp.ClientSession {
	tb.Helper()
	hs := httptest.NewServer(h)
	tb.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL, opts)
	if err != nil {
		tb.Fatal(err)
	}
	p := identity.Principal{User: "admin", JenkinsUser: "admin", Local: true}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: "admin", APIToken: "admin-token"}},
		Authorizer:  authz.New(nil),
		Scope:       tools.FixedPrincipal(p),
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		tb.Fatal(err)
	}
	return connect(tb, ts, nil)
}

// searchResult is a decoded search_build_log answer.
type searchResult struct {
	isError bool
	text    string // the text content
	out     struct {
		Matches []struct {
			LineNumber int      `json:"line_number"`
			Line       string   `json:"line"`
			Before     []string `json:"before"`
			After      []string `json:"after"`
		} `json:"matches"`
		Truncated bool `json:"truncated"`
		TimedOut  bool `json:"timed_out"`
		Error     *struct {
			Code              string `json:"code"`
			Message           string `json:"message"`
			RetryAfterSeconds int    `json:"retry_after_seconds"`
		} `json:"error"`
	}
}

func search(tb testing.TB, cs *mcp.ClientSession, args map[string]any) *searchResult {
	tb.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search_build_log", Arguments: args})
	if err != nil {
		tb.Fatalf("search_build_log: protocol error: %v", err)
	}
	r := &searchResult{isError: res.IsError, text: res.Content[0].(*mcp.TextContent).Text}
	data, err := json.Marshal(res.StructuredContent)
	if err != nil {
		tb.Fatal(err)
	}
	if err := json.Unmarshal(data, &r.out); err != nil {
		tb.Fatalf("structured content: %v", err)
	}
	return r
}

// textBytes is what the answer limit counts: the text of every match's
// line and of its context lines.
func (r *searchResult) textBytes() int {
	n := 0
	for _, m := range r.out.Matches {
		n += len(m.Line)
		for _, l := range m.Before {
			n += len(l)
		}
		for _, l := range m.After {
			n += len(l)
		}
	}
	return n
}

// wideLines is a block of 10 lines of 5,000 bytes (line i starts with
// "ERROR i "), the shape of the attack on the answer size.
func wideLines() (block []byte, line func(n int) string) {
	var b bytes.Buffer
	lines := make([]string, 10)
	for i := range lines {
		head := fmt.Sprintf("ERROR %d ", i)
		lines[i] = head + strings.Repeat("x", 5000-len(head))
		b.WriteString(lines[i])
		b.WriteByte('\n')
	}
	// line n (1-based) of the log, as search returns it: cut at 4 KiB.
	return b.Bytes(), func(n int) string { return lines[(n-1)%10][:lineLimit] }
}

// Finding 1: one search of 16,000 lines of 5,000 bytes with max_matches
// 1000 and context_lines 10 answered 110 MB. The answer must hold at most
// 1 MiB of line text, cut after a whole match, and say it is truncated.
func TestSearchBuildLog_AnswerIsAtMost1MiB(t *testing.T) {
	t.Parallel()
	block, lineAt := wideLines()
	cs := searchSession(t, logSim(t, jenkinstest.RepeatConsole(block, 1600, nil)), nil)
	r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR", "max_matches": 1000, "context_lines": 10})
	if r.isError {
		t.Fatalf("search failed: %+v", r.out.Error)
	}
	n := r.textBytes()
	if n > answerLimit {
		t.Errorf("answer holds %d bytes of line text (%d matches, %d bytes of JSON text), want at most %d", n, len(r.out.Matches), len(r.text), answerLimit)
	}
	if !r.out.Truncated || r.out.TimedOut {
		t.Errorf("truncated %v timed_out %v, want true false", r.out.Truncated, r.out.TimedOut)
	}
	// Cut at a whole match, and not much earlier than the limit: one more
	// whole match (21 lines of 4 KiB) would not have fitted.
	if n+21*lineLimit <= answerLimit {
		t.Errorf("answer cut too early: %d bytes in %d matches", n, len(r.out.Matches))
	}
	for i, m := range r.out.Matches {
		if m.LineNumber != i+1 || m.Line != lineAt(m.LineNumber) {
			t.Fatalf("match %d: line %d %.20q", i, m.LineNumber, m.Line)
		}
		if len(m.Before) != min(10, m.LineNumber-1) || len(m.After) != 10 {
			t.Fatalf("match at line %d is not whole: %d lines before, %d after", m.LineNumber, len(m.Before), len(m.After))
		}
		for k, l := range m.Before {
			if l != lineAt(m.LineNumber-len(m.Before)+k) {
				t.Fatalf("match at line %d: before[%d] is not line %d", m.LineNumber, k, m.LineNumber-len(m.Before)+k)
			}
		}
		for k, l := range m.After {
			if l != lineAt(m.LineNumber+1+k) {
				t.Fatalf("match at line %d: after[%d] is not line %d", m.LineNumber, k, m.LineNumber+1+k)
			}
		}
	}
}

// The answer limit counts context too: matches without context fit many
// more in the same 1 MiB, and a small answer is not truncated.
func TestSearchBuildLog_AnswerLimitCountsLinesNotMatches(t *testing.T) {
	t.Parallel()
	block, _ := wideLines()
	cs := searchSession(t, logSim(t, jenkinstest.RepeatConsole(block, 1600, nil), jenkinstest.RepeatConsole(block, 1, nil)), nil)
	r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR", "max_matches": 1000})
	if r.isError || !r.out.Truncated || len(r.out.Matches) != answerLimit/lineLimit || r.textBytes() > answerLimit {
		t.Errorf("no context: %d matches, %d bytes, truncated %v (error %+v); want %d matches", len(r.out.Matches), r.textBytes(), r.out.Truncated, r.out.Error, answerLimit/lineLimit)
	}
	r = search(t, cs, map[string]any{"job": "big", "build": 2, "pattern": "ERROR", "max_matches": 1000, "context_lines": 10})
	// 10 matches each with the whole log as context: 400 KiB.
	if r.isError || r.out.Truncated || len(r.out.Matches) != 10 || r.textBytes() != 10*10*lineLimit {
		t.Errorf("small log: %d matches, %d bytes, truncated %v (error %+v); want all 10", len(r.out.Matches), r.textBytes(), r.out.Truncated, r.out.Error)
	}
}

// Finding 2: a 13-character regex compiled to 2,003 RE2 instructions and
// burned 15 s of CPU. Patterns whose program exceeds 1,000 instructions or
// that repeat more than 100 times are refused before anything is read.
func TestSearchBuildLog_PatternTooComplex(t *testing.T) {
	t.Parallel()
	sim := logSim(t, jenkinstest.RepeatConsole([]byte("an ordinary line\n"), 10, nil))
	cs := searchSession(t, sim, nil)
	for _, tc := range []struct {
		name, pattern string
		ignoreCase    bool
	}{
		{"the attack", "(?:.?){1000}Z", false},
		{"repeat over 100", "a{101}", false},                                 // 103 instructions: only the repeat check refuses it
		{"open repeat over 100", "a{101,}", false},                           // Min over 100
		{"range repeat over 100", "a{2,101}", false},                         // Max over 100
		{"repeat over 100 when folded", "(?:[a-z]x){1,150}", true},           // with ignore_case
		{"program over 1000", strings.Repeat("(?:.?){100}", 5) + "Z", false}, // 1,003 instructions, repeats of 100
		{"program over 1000 with ignore_case", strings.Repeat("(?:k?){100}", 5), true},
		{"nested repeats", "(?:(?:(?:a?){10}){10}){10}", false}, // 2,002 instructions from repeats of 10
		{"nested range repeats", "(?:a{0,100}){10}", false},
	} {
		before := len(sim.Requests())
		r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": tc.pattern, "regex": true, "ignore_case": tc.ignoreCase})
		if !r.isError || r.out.Error == nil || r.out.Error.Code != "invalid_argument" {
			t.Errorf("%s (%s): got %+v, want invalid_argument", tc.name, tc.pattern, r.out)
			continue
		}
		if !strings.HasPrefix(r.out.Error.Message, "pattern too complex") || len(r.out.Error.Message) < len("pattern too complex")+10 {
			t.Errorf("%s: message %q, want \"pattern too complex\" and a hint", tc.name, r.out.Error.Message)
		}
		if n := len(sim.Requests()) - before; n != 0 {
			t.Errorf("%s: %d requests reached Jenkins for a refused pattern", tc.name, n)
		}
	}
	// Within the limits, and literal patterns of any allowed length
	// (a 1000-character literal compiles to 1,002 instructions).
	for _, tc := range []struct {
		pattern           string
		regex, ignoreCase bool
	}{
		{"a{100}", true, false},
		{"(?:.?){100}Z", true, false},
		{strings.Repeat("(?:.?){100}", 4) + "Z", true, false},
		{strings.Repeat("a", 1000), false, false},
		{strings.Repeat("a", 1000), false, true},
		{strings.Repeat("é", 1000), false, true},
		{"{1000}", false, false},
		{strings.Repeat(".*", 500), false, false},
	} {
		r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": tc.pattern, "regex": tc.regex, "ignore_case": tc.ignoreCase})
		if r.isError {
			t.Errorf("%.30q (regex %v, ignore_case %v) refused: %+v", tc.pattern, tc.regex, tc.ignoreCase, r.out.Error)
		}
	}
	// An invalid regular expression is still invalid_argument, as before.
	for _, p := range []string{"(", "a{1001}", `\8`} {
		r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": p, "regex": true})
		if !r.isError || r.out.Error.Code != "invalid_argument" || !strings.Contains(r.out.Error.Message, "not a valid RE2 regular expression") {
			t.Errorf("invalid regex %q: %+v", p, r.out)
		}
	}
}

// ordinaryLog is ~5 MB of plausible console lines with "Finished" at the
// end and no "Z".
func ordinaryLog(mb int) jenkinstest.Console {
	var b bytes.Buffer
	for i := 0; b.Len() < 64<<10-200; i++ {
		fmt.Fprintf(&b, "[2026-01-01T12:%02d:%02d] INFO  com.example.Service%d - processed request id=%08d in %d ms\n", i/60%60, i%60, i%17, i, i%500)
	}
	return jenkinstest.RepeatConsole(b.Bytes(), mb*16, []byte("Finished: SUCCESS\n"))
}

// Finding 2: a slow (but allowed) regex ended in jenkins_unavailable,
// because the Jenkins call's timeout also bounded the scan. The scan has its
// own limit: it stops then and returns what it found, truncated and
// timed_out, even when Jenkins's timeout is shorter.
func TestSearchBuildLog_SlowScanTimesOut(t *testing.T) {
	defer tools.SetSearchTimeout(1500 * time.Millisecond)()
	cs := searchSession(t, logSim(t, ordinaryLog(5)), &jenkins.Options{Timeout: time.Second})
	start := time.Now()
	// 208 instructions, within the limits, but well under 1 MB/s. Request
	// 42 is on line 43 of every 64 KiB block of the log.
	r := search(t, cs, map[string]any{"job": "big", "pattern": "(?:.?){100}Z|id=00000042 ", "regex": true, "max_matches": 1000})
	took := time.Since(start)
	if r.isError {
		t.Fatalf("slow search failed with %+v, want a partial answer", r.out.Error)
	}
	if !r.out.TimedOut || !r.out.Truncated || len(r.out.Matches) == 0 || len(r.out.Matches) > 100 || r.out.Matches[0].LineNumber != 43 {
		t.Errorf("timed_out %v truncated %v, %d matches (%+v)", r.out.TimedOut, r.out.Truncated, len(r.out.Matches), r.out.Matches)
	}
	if took < 1400*time.Millisecond || took > 15*time.Second {
		t.Errorf("search took %v, want about the 1.5 s search timeout", took)
	}
}

// The same without any match before the time runs out: an empty partial
// answer, still not an error.
func TestSearchBuildLog_SlowScanWithoutMatchTimesOut(t *testing.T) {
	defer tools.SetSearchTimeout(700 * time.Millisecond)()
	cs := searchSession(t, logSim(t, ordinaryLog(5)), &jenkins.Options{Timeout: 500 * time.Millisecond})
	start := time.Now()
	r := search(t, cs, map[string]any{"job": "big", "pattern": "(?:.?){100}Z", "regex": true})
	took := time.Since(start)
	if r.isError || !r.out.TimedOut || !r.out.Truncated || len(r.out.Matches) != 0 {
		t.Errorf("got error %+v, timed_out %v truncated %v, %d matches; want an empty timed-out answer", r.out.Error, r.out.TimedOut, r.out.Truncated, len(r.out.Matches))
	}
	if took < 650*time.Millisecond || took > 15*time.Second {
		t.Errorf("search took %v, want about the 0.7 s search timeout", took)
	}
}

// A Jenkins that answers and then stalls mid-log: the search keeps what it
// read and times out on its own clock, not with jenkins_unavailable.
func TestSearchBuildLog_StalledLogTimesOutWithWhatWasFound(t *testing.T) {
	defer tools.SetSearchTimeout(800 * time.Millisecond)()
	var stalled atomic.Bool
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/consoleText") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("X-Text-Size", "100000")
		w.Header().Set("X-More-Data", "true")
		fmt.Fprint(w, "one\nERROR first\ntwo\n")
		w.(http.Flusher).Flush()
		stalled.Store(true)
		// Gives up after 20 s, so a search without its own clock fails
		// its test instead of hanging.
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	})
	cs := searchSession(t, h, &jenkins.Options{Timeout: 300 * time.Millisecond})
	start := time.Now()
	r := search(t, cs, map[string]any{"job": "big", "pattern": "ERROR", "context_lines": 1})
	took := time.Since(start)
	if r.isError {
		t.Fatalf("stalled log: %+v, want the partial answer", r.out.Error)
	}
	if !stalled.Load() || !r.out.TimedOut || !r.out.Truncated || len(r.out.Matches) != 1 || r.out.Matches[0].LineNumber != 2 ||
		r.out.Matches[0].Line != "ERROR first" || len(r.out.Matches[0].After) != 1 {
		t.Errorf("stalled log: %+v", r.out)
	}
	if took < 750*time.Millisecond || took > 15*time.Second {
		t.Errorf("search took %v, want about the 0.8 s search timeout", took)
	}
}

// A Jenkins that does not answer at all within jenkins.timeout is still
// jenkins_unavailable (504): only the scan has the search's own clock.
func TestSearchBuildLog_JenkinsNotAnsweringIsUnavailable(t *testing.T) {
	t.Parallel()
	sim := logSim(t, jenkinstest.RepeatConsole([]byte("line\n"), 10, nil))
	sim.SetFault(jenkinstest.Fault{Delay: 20 * time.Second})
	cs := searchSession(t, sim, &jenkins.Options{Timeout: 200 * time.Millisecond})
	start := time.Now()
	r := search(t, cs, map[string]any{"job": "big", "pattern": "line"})
	if !r.isError || r.out.Error.Code != "jenkins_unavailable" || !strings.Contains(r.out.Error.Message, "did not answer in time") {
		t.Errorf("got %+v, want jenkins_unavailable (timeout)", r.out)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v, want about jenkins.timeout (200ms)", took)
	}
}

// heapSampler records the peak of live heap objects while it runs.
type heapSampler struct {
	stop chan struct{}
	done sync.WaitGroup
	peak atomic.Uint64
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func heapNow() uint64 {
	s := []metrics.Sample{{Name: heapMetric}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startHeapSampler collects garbage, then samples the heap every 200 µs
// until Stop. It returns the idle heap.
func startHeapSampler() (*heapSampler, uint64) {
	runtime.GC()
	idle := heapNow()
	h := &heapSampler{stop: make(chan struct{})}
	h.peak.Store(idle)
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			if v := heapNow(); v > h.peak.Load() {
				h.peak.Store(v)
			}
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h, idle
}

// Stop ends sampling and returns the peak.
func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	h.done.Wait()
	if v := heapNow(); v > h.peak.Load() {
		h.peak.Store(v)
	}
	return h.peak.Load()
}

// A search of a 100 MB log streams it: its peak heap stays within 50 MB of
// idle (simulator, transport, client and MCP client included), whether it
// scans the whole log for a rare line or stops at the answer limit on a
// log of wide lines. Not parallel: it measures the process's heap.
func TestSearchBuildLog_100MBLogInBoundedMemory(t *testing.T) {
	block, _ := wideLines()
	wide := jenkinstest.RepeatConsole(block, 100<<20/len(block), nil)
	cs := searchSession(t, logSim(t, ordinaryLog(100), wide), &jenkins.Options{MaxScanBytes: 128 << 20})
	for _, tc := range []struct {
		name string
		args map[string]any
		want func(*searchResult) bool
	}{
		{"whole log, one match", map[string]any{"job": "big", "build": 1, "pattern": "Finished: SUCCESS", "context_lines": 10},
			func(r *searchResult) bool {
				return len(r.out.Matches) == 1 && !r.out.Truncated && len(r.out.Matches[0].Before) == 10
			}},
		{"wide lines, answer limit", map[string]any{"job": "big", "build": 2, "pattern": "ERROR", "max_matches": 1000, "context_lines": 10},
			func(r *searchResult) bool { return r.out.Truncated && r.textBytes() <= answerLimit }},
	} {
		h, idle := startHeapSampler()
		r := search(t, cs, tc.args)
		peak := h.Stop()
		if r.isError || !tc.want(r) {
			t.Errorf("%s: error %+v, %d matches, truncated %v", tc.name, r.out.Error, len(r.out.Matches), r.out.Truncated)
		}
		if d := int64(peak) - int64(idle); d > 50e6 {
			t.Errorf("%s: peak heap %.1f MB above idle, want at most 50 MB", tc.name, float64(d)/1e6)
		} else {
			t.Logf("%s: peak heap %.1f MB above idle", tc.name, float64(d)/1e6)
		}
		r = nil
	}
}

// Escaping can make the JSON of a line six times its text ('<' is
// \u003c, a control character \u0001, a byte that is not UTF-8 \ufffd).
// The answer limit counts lines as encoded, so a search of such a log is
// still an answer, truncated, and never refused by the toolset's 4 MiB
// bound on an answer's JSON.
func TestSearchBuildLog_AnswerLimitHoldsForEscapedText(t *testing.T) {
	t.Parallel()
	var b bytes.Buffer
	for i := range 10 {
		b.WriteString(fmt.Sprintf("ERROR %d ", i))
		b.Write(bytes.Repeat([]byte("<\x01>&\xff"), 1000))
		b.WriteByte('\n')
	}
	cs := searchSession(t, logSim(t, jenkinstest.RepeatConsole(b.Bytes(), 1600, nil)), nil)
	for _, ctx := range []int{0, 10} {
		r := search(t, cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR", "max_matches": 1000, "context_lines": ctx})
		if r.isError {
			t.Fatalf("context %d: %+v, want a truncated answer", ctx, r.out.Error)
		}
		if !r.out.Truncated || r.textBytes() > answerLimit || len(r.out.Matches) == 0 {
			t.Errorf("context %d: %d matches, %d bytes, truncated %v", ctx, len(r.out.Matches), r.textBytes(), r.out.Truncated)
		}
		if len(r.text) > 2*answerLimit {
			t.Errorf("context %d: answer of %d bytes of JSON for a 1 MiB limit", ctx, len(r.text))
		}
	}
}
