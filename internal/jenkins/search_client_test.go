package jenkins_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// logServer is a simulator whose job "big" has one build with console c.
func logServer(t testing.TB, c jenkinstest.Console, opts *jenkins.Options) (*jenkinstest.Server, *jenkins.Client) {
	t.Helper()
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	if err := sim.AddJob("big", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, err := sim.AddBuild("big", jenkinstest.BuildSpec{Console: c}); err != nil {
		t.Fatal(err)
	}
	return sim, serve(t, sim, "", opts)
}

func pattern(t testing.TB, p string, regex bool) *jenkins.Pattern {
	t.Helper()
	pt, err := jenkins.CompilePattern(p, regex, false)
	if err != nil {
		t.Fatal(err)
	}
	return pt
}

// stallingJenkins answers the progressive log with head, then sends
// nothing more until the request ends.
func stallingJenkins(t testing.TB, head string, opts *jenkins.Options) *jenkins.Client {
	t.Helper()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Text-Size", "1000000")
		fmt.Fprint(w, head)
		w.(http.Flusher).Flush()
		// Gives up after 20 s, so a search without its own clock fails
		// its test instead of hanging.
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Second):
		}
	}))
	t.Cleanup(hs.Close)
	c, err := jenkins.New(hs.URL, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func slowLog() jenkinstest.Console {
	var b bytes.Buffer
	for i := 0; b.Len() < 60<<10; i++ {
		fmt.Fprintf(&b, "[12:00:%02d] INFO  com.example.Service - processed request id=%08d in %d ms\n", i%60, i, i%500)
	}
	return jenkinstest.RepeatConsole(b.Bytes(), 100, nil)
}

// A scan slower than the client's timeout is bounded by the search's own
// timeout and answers what it found.
func TestSearchLog_SlowScanEndsAtTheSearchTimeout(t *testing.T) {
	t.Parallel()
	_, c := logServer(t, slowLog(), &jenkins.Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	res, err := c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "(?:.?){100}Z|id=00000003 ", true),
		jenkins.SearchOptions{MaxMatches: 10, Timeout: 400 * time.Millisecond})
	took := time.Since(start)
	if err != nil {
		t.Fatalf("slow scan: %v, want a timed-out result", err)
	}
	if !res.TimedOut || !res.Truncated || len(res.Matches) == 0 || res.Matches[0].LineNumber != 4 {
		t.Errorf("slow scan: %+v", res)
	}
	if took < 400*time.Millisecond || took > 15*time.Second {
		t.Errorf("took %v, want about 400ms", took)
	}
}

func TestSearchLog_StalledLogEndsAtTheSearchTimeout(t *testing.T) {
	t.Parallel()
	c := stallingJenkins(t, "a\nERROR b\nc\n", &jenkins.Options{Timeout: 100 * time.Millisecond})
	start := time.Now()
	res, err := c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "ERROR", false),
		jenkins.SearchOptions{MaxMatches: 10, ContextLines: 1, Timeout: 300 * time.Millisecond})
	if took := time.Since(start); took < 300*time.Millisecond || took > 15*time.Second {
		t.Errorf("took %v, want about 300ms", took)
	}
	if err != nil || !res.TimedOut || !res.Truncated || len(res.Matches) != 1 || res.Matches[0].LineNumber != 2 ||
		strings.Join(res.Matches[0].Before, ",") != "a" || strings.Join(res.Matches[0].After, ",") != "c" {
		t.Errorf("stalled log: %+v, %v", res, err)
	}
}

// The client's timeout still bounds the wait for Jenkins to answer.
func TestSearchLog_NoAnswerIsATimeout(t *testing.T) {
	t.Parallel()
	sim, c := logServer(t, slowLog(), &jenkins.Options{Timeout: 150 * time.Millisecond})
	sim.SetFault(jenkinstest.Fault{Delay: 20 * time.Second})
	start := time.Now()
	_, err := c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "x", false), jenkins.SearchOptions{MaxMatches: 10})
	var je *jenkins.Error
	if !errors.As(err, &je) || !errors.Is(err, jenkins.ErrUnavailable) || !je.Timeout {
		t.Errorf("no answer: %v, want a timeout", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v, want about 150ms", took)
	}
}

// A caller that gives up gets an error at once, not a partial result.
func TestSearchLog_CallerCancelled(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		c    func(t *testing.T) *jenkins.Client
		p    *jenkins.Pattern
	}{
		{"stalled log", func(t *testing.T) *jenkins.Client { return stallingJenkins(t, "a\n", nil) }, pattern(t, "a", false)},
		{"slow scan", func(t *testing.T) *jenkins.Client { _, c := logServer(t, slowLog(), nil); return c }, pattern(t, "(?:.?){100}Z", true)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(200*time.Millisecond, cancel)
			start := time.Now()
			res, err := tc.c(t).SearchLog(ctx, admin, mustPath(t, "big"), 1, tc.p, jenkins.SearchOptions{MaxMatches: 10})
			var je *jenkins.Error
			if !errors.As(err, &je) || je.Timeout || res != nil {
				t.Errorf("cancelled: %+v, %v; want an error that is not a timeout", res, err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("took %v after a cancel at 200ms", took)
			}
		})
	}
}

// A connection that breaks mid-log is Jenkins being unavailable.
func TestSearchLog_BrokenConnection(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Text-Size", "1000000")
		w.Header().Set("Content-Length", "1000000")
		fmt.Fprint(w, "a\nb\n")
		w.(http.Flusher).Flush()
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hs.Close()
	c, err := jenkins.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "a", false), jenkins.SearchOptions{MaxMatches: 10})
	var je *jenkins.Error
	if !errors.As(err, &je) || !errors.Is(err, jenkins.ErrUnavailable) || je.Timeout || res != nil {
		t.Errorf("broken connection: %+v, %v", res, err)
	}
}

// The scan limit truncates; it is not a timeout.
func TestSearchLog_ScanLimit(t *testing.T) {
	t.Parallel()
	_, c := logServer(t, jenkinstest.RepeatConsole([]byte("line\n"), 1000, []byte("last\n")), &jenkins.Options{MaxScanBytes: 1000})
	res, err := c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "last", false), jenkins.SearchOptions{MaxMatches: 10})
	if err != nil || !res.Truncated || res.TimedOut || len(res.Matches) != 0 || res.ScannedBytes != 1000 {
		t.Errorf("scan limit: %+v, %v", res, err)
	}
	_, c = logServer(t, jenkinstest.RepeatConsole([]byte("line\n"), 1000, []byte("last\n")), nil)
	res, err = c.SearchLog(context.Background(), admin, mustPath(t, "big"), 1, pattern(t, "last", false), jenkins.SearchOptions{MaxMatches: 10})
	if err != nil || res.Truncated || res.TimedOut || len(res.Matches) != 1 || res.Matches[0].LineNumber != 1001 || res.ScannedBytes != 5005 {
		t.Errorf("whole log: %+v, %v", res, err)
	}
}
