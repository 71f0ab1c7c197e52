package jenkins_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// pipelineLog is n console lines of a pipeline, with the hidden note
// Jenkins writes before each "[Pipeline]" line and a hyperlink note in
// some others, and a multi-byte character now and then.
func pipelineLog(n int) []string {
	lines := make([]string, n)
	for i := range lines {
		switch i % 5 {
		case 0:
			lines[i] = jenkinstest.EncodeNote("org.jenkinsci.plugins.workflow.job.console.NewNodeConsoleNote", fmt.Sprint(i)) + "[Pipeline] sh"
		case 1:
			lines[i] = "Running on " + jenkinstest.HyperlinkNote("/computer/agent-1/", "agent-1") + fmt.Sprintf(" in /ws/%d", i)
		case 2:
			lines[i] = fmt.Sprintf("+ make step-%d — größe", i)
		default:
			lines[i] = fmt.Sprintf("output line %d of the build", i)
		}
	}
	return lines
}

func pagingSim(t *testing.T, version string, clk jenkinstest.Clock) *jenkinstest.Server {
	t.Helper()
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1, Version: version, Clock: clk})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	if err := sim.AddJob("p", jenkinstest.JobSpec{Class: jenkinstest.ClassWorkflowJob, Duration: 100 * time.Second}); err != nil {
		t.Fatal(err)
	}
	return sim
}

// simConsoleText is Jenkins's consoleText of build n: the log without
// its notes, as a person sees it.
func simConsoleText(t *testing.T, sim *jenkinstest.Server, n int) string {
	t.Helper()
	r := httptest.NewRequest("GET", "http://jenkins.test/job/p/"+strconv.Itoa(n)+"/consoleText", nil)
	r.SetBasicAuth("admin", "admin-token")
	w := httptest.NewRecorder()
	sim.ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("consoleText: %d", w.Code)
	}
	return w.Body.String()
}

// pageAll pages through build n from 0 until more is false.
func pageAll(t *testing.T, c *jenkins.Client, n int64, maxBytes int, between func()) (string, int) {
	t.Helper()
	var b strings.Builder
	var start int64
	pages := 0
	for {
		chunk, err := c.ReadLog(context.Background(), admin, mustPath(t, "p"), n, start, maxBytes)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(chunk.Text) > maxBytes+4 || chunk.Next > chunk.Size || chunk.Next < start {
			t.Fatalf("page from %d: %d bytes of text, next %d, size %d", start, len(chunk.Text), chunk.Next, chunk.Size)
		}
		if strings.Contains(string(chunk.Text), "\x1b") || strings.Contains(string(chunk.Text), "\r") {
			t.Fatalf("page from %d holds a note or a CR: %q", start, chunk.Text)
		}
		b.Write(chunk.Text)
		start = chunk.Next
		if !chunk.More() {
			return b.String(), pages
		}
		if pages > 100000 {
			t.Fatal("paging does not end")
		}
		if between != nil {
			between()
		}
	}
}

// Paging a finished pipeline log in small pages yields exactly the console
// text, byte for byte, on Jenkins 2.509 and later (notes sent raw). Before
// the fix, next_start was start + the bytes received: with CR LF every
// page started too late and text was lost.
func TestReadLog_PagingIsExact_RawNotes(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2.509", "2.568.2"} {
		sim := pagingSim(t, version, nil)
		n, err := sim.AddBuild("p", jenkinstest.BuildSpec{UserID: "admin", Log: pipelineLog(3000)})
		if err != nil {
			t.Fatal(err)
		}
		c := serve(t, sim, "", nil)
		want := simConsoleText(t, sim, n)
		if len(want) < 68000 {
			t.Fatalf("log of %d bytes, want a large one", len(want))
		}
		for _, page := range []int{100, 4096, 16 << 10} {
			got, pages := pageAll(t, c, int64(n), page, nil)
			if got != want {
				t.Errorf("%s, pages of %d: %d bytes in %d pages, want %d; first difference at %d", version, page, len(got), pages, len(want), firstDiff(got, want))
			}
		}
	}
}

// Following a running build (the log grows between pages) yields exactly
// the console text, before and after 2.509, when each page reaches the end
// of what Jenkins sent.
func TestReadLog_FollowingRunningBuildIsExact(t *testing.T) {
	t.Parallel()
	for _, version := range []string{"2.479.3", "2.508", "2.509", "2.568.2"} {
		t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
		clk := jenkinstest.NewFakeClock(t0)
		sim := pagingSim(t, version, clk)
		n, err := sim.AddBuild("p", jenkinstest.BuildSpec{UserID: "admin", Building: true, Timestamp: t0, Duration: 100 * time.Second, Log: pipelineLog(500)})
		if err != nil {
			t.Fatal(err)
		}
		c := serve(t, sim, "", nil)
		now := t0
		got, _ := pageAll(t, c, int64(n), 1<<20, func() {
			now = now.Add(700 * time.Millisecond)
			clk.Set(now)
		})
		if want := simConsoleText(t, sim, n); got != want {
			t.Errorf("%s: %d bytes, want %d; first difference at %d", version, len(got), len(want), firstDiff(got, want))
		}
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
