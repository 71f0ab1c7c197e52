package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/diagnose"
	"github.com/butler-mcp/butler/internal/diagnose/corpus"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/tools"
)

// excerptLines returns the excerpts of a diagnose_build answer.
func excerpts(out map[string]any) []map[string]any {
	var ex []map[string]any
	for _, e := range out["error_excerpts"].([]any) {
		ex = append(ex, e.(map[string]any))
	}
	return ex
}

func holdsAny(lines []any, parts []string) bool {
	for _, l := range lines {
		for _, p := range parts {
			if strings.Contains(l.(string), p) {
				return true
			}
		}
	}
	return false
}

// TestDiagnoseBuild_Corpus diagnoses every corpus case as the simulator
// holds it (a Pipeline flow graph with step logs, or a freestyle build),
// through the client and the tool, as a user who may read it: the first
// excerpt must be in the case's failed stage and hold its decisive line,
// its line number must be that line's in the log it names (the stage's
// log as get_stage_log returns it, or the console), the answer must fit in
// 16 KiB, and every Jenkins request must carry the caller's credential.
func TestDiagnoseBuild_Corpus(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	cases, err := corpus.Cases()
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Grant(jenkinstest.SampleBob, "corpus", jenkinstest.PermRead)
	e.sim.Grant(jenkinstest.SampleBob, "platform", jenkinstest.PermRead)
	builds := map[string]jenkinstest.CorpusBuild{}
	for _, c := range cases {
		cb, err := e.sim.AddCorpusCase("corpus", c)
		if err != nil {
			t.Fatal(err)
		}
		builds[c.Name] = cb
	}
	e.sim.ResetRequests()
	found, largest := 0, 0
	for _, c := range cases {
		cb := builds[c.Name]
		out := e.ok(t, "diagnose_build", map[string]any{"job": cb.Job, "build": cb.Build})
		data, err := json.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, len(data))
		if len(data) > diagnose.MaxReportBytes {
			t.Errorf("%s: answer is %d bytes, over %d", c.Name, len(data), diagnose.MaxReportBytes)
		}
		if out["result"] != c.Result {
			t.Errorf("%s: result %v, want %s", c.Name, out["result"], c.Result)
		}
		checkChanges(t, c, out)
		checkUpstream(t, c, cb, out)
		ex := excerpts(out)
		ok := len(ex) > 0 && holdsAny(ex[0]["lines"].([]any), c.Expect.Decisive)
		if ok && c.Pipeline && c.Expect.Stage != "" {
			st, _ := ex[0]["stage"].(map[string]any)
			fs := out["failed_stages"].([]any)
			ok = st != nil && st["name"] == c.Expect.Stage && len(fs) > 0 && fs[0].(map[string]any)["name"] == c.Expect.Stage
		}
		for _, x := range ex {
			checkLineNumber(t, e, c, cb, x)
		}
		switch {
		case ok:
			found++
		case c.Expect.KnownMiss != "":
			t.Logf("%s: known miss (%s)", c.Name, c.Expect.KnownMiss)
		default:
			t.Errorf("%s: the first excerpt is not the decisive line in stage %q: %v", c.Name, c.Expect.Stage, ex)
		}
	}
	t.Logf("diagnose_build found the decisive line in its stage for %d of %d corpus cases; largest answer %d bytes", found, len(cases), largest)
	for _, r := range e.sim.Requests() {
		if r.User != jenkinstest.SampleBob || r.Auth != "basic" {
			t.Errorf("request %s %s?%s ran as %q (%s), not with bob's own credential", r.Method, r.Path, r.Query, r.User, r.Auth)
		}
	}
}

// checkLineNumber checks that an excerpt's line_number names its decisive
// line in the log it says: the stage's log as get_stage_log returns it,
// or the whole console text.
func checkLineNumber(t *testing.T, e *testEnv, c corpus.Case, cb jenkinstest.CorpusBuild, x map[string]any) {
	t.Helper()
	var text string
	switch x["log"] {
	case "console":
		text = c.Console
	case "stage":
		st := x["stage"].(map[string]any)
		out := e.ok(t, "get_stage_log", map[string]any{"job": cb.Job, "build": cb.Build, "stage": st["id"], "max_bytes": 1 << 20})
		text = out["text"].(string)
	default:
		t.Fatalf("%s: excerpt log %v", c.Name, x["log"])
	}
	lines := strings.Split(text, "\n")
	n, start := int(x["line_number"].(float64)), int(x["start_line"].(float64))
	shown := x["lines"].([]any)
	if n < 1 || n > len(lines) || n < start || n-start >= len(shown) {
		t.Errorf("%s: line_number %d (start %d, %d lines) outside its %s log of %d lines", c.Name, n, start, len(shown), x["log"], len(lines))
		return
	}
	got := strings.TrimSuffix(shown[n-start].(string), "…")
	if !strings.HasPrefix(lines[n-1], got) {
		t.Errorf("%s: line %d of the %s log is %q, the excerpt shows %q", c.Name, n, x["log"], lines[n-1], got)
	}
}

// checkChanges: the case's commits are the changes since the last
// success, newest first; the last success's own commit is not.
func checkChanges(t *testing.T, c corpus.Case, out map[string]any) {
	t.Helper()
	got := out["changes_since_last_success"].([]any)
	if len(got) != len(c.Changes) {
		t.Errorf("%s: %d changes since the last success, want %d: %v", c.Name, len(got), len(c.Changes), got)
		return
	}
	for i, ch := range c.Changes {
		g := got[len(got)-1-i].(map[string]any)
		if g["id"] != ch.ID || g["author"] != ch.Author || !strings.HasPrefix(ch.Message, g["message"].(string)) {
			t.Errorf("%s: change %v, want %+v", c.Name, g, ch)
		}
	}
}

func checkUpstream(t *testing.T, c corpus.Case, cb jenkinstest.CorpusBuild, out map[string]any) {
	t.Helper()
	up, has := out["upstream_cause"].(map[string]any)
	switch {
	case c.Upstream == nil && has:
		t.Errorf("%s: upstream cause %v, the build has none", c.Name, up)
	case c.Upstream != nil && (!has || up["job"] != cb.Upstream || up["build"] != float64(cb.UpstreamBuild)):
		t.Errorf("%s: upstream cause %v, want %s #%d", c.Name, up, cb.Upstream, cb.UpstreamBuild)
	}
}

// TestDiagnoseBuild_HiddenUpstreamIsLeftOut: the sample's
// diagnosis/gradle-dependency-resolution was triggered by platform/bom,
// which alice may read and bob may not; Jenkins exports the cause to both.
// bob's answer must not name it; nor alice's when the policy hides the
// upstream job from her.
func TestDiagnoseBuild_HiddenUpstreamIsLeftOut(t *testing.T) {
	t.Parallel()
	args := map[string]any{"job": "diagnosis/gradle-dependency-resolution"}
	alice := newEnv(t, jenkinstest.SampleAlice, nil)
	out := alice.ok(t, "diagnose_build", args)
	if up, _ := out["upstream_cause"].(map[string]any); up == nil || up["job"] != "platform/bom" || up["build"] != 1.0 {
		t.Errorf("alice: upstream cause %v, want platform/bom #1", out["upstream_cause"])
	}
	bob := newEnv(t, jenkinstest.SampleBob, nil)
	out = bob.ok(t, "diagnose_build", args)
	data, _ := json.Marshal(out)
	if _, has := out["upstream_cause"]; has || strings.Contains(string(data), "platform/bom") {
		t.Errorf("bob may not see platform/bom, yet the answer names it: %s", data)
	}
	if !holdsAny(excerpts(out)[0]["lines"].([]any), []string{"Could not find com.squareup.okhttp3:okhttp:5.0.0."}) {
		t.Errorf("bob: the diagnosis itself must not suffer: %v", out["error_excerpts"])
	}
	policy := `@id("all") permit (principal, action, resource);
@id("no-platform") forbid (principal, action == Action::"get_job", resource in Folder::"platform");`
	hiddenByPolicy := newEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(policy)})
	out = hiddenByPolicy.ok(t, "diagnose_build", args)
	if _, has := out["upstream_cause"]; has {
		t.Errorf("the policy hides platform/bom from alice, yet the answer names it: %v", out["upstream_cause"])
	}
}

// TestDiagnoseBuild_HiddenJobIsMissing: carol may not read the diagnosis
// folder: its job is not_found, worded as a job that does not exist.
func TestDiagnoseBuild_HiddenJobIsMissing(t *testing.T) {
	t.Parallel()
	carol := newEnv(t, jenkinstest.SampleCarol, nil)
	hidden := carol.fail(t, "diagnose_build", map[string]any{"job": "diagnosis/maven-compile-error", "build": 2}, "not_found")
	missing := carol.fail(t, "diagnose_build", map[string]any{"job": "diagnosis/maven-compile-errox", "build": 2}, "not_found")
	if strings.Replace(hidden["message"].(string), "maven-compile-error", "maven-compile-errox", 1) != missing["message"] {
		t.Errorf("hidden and missing differ: %q / %q", hidden["message"], missing["message"])
	}
	for _, r := range carol.sim.Requests() {
		if r.User != jenkinstest.SampleCarol {
			t.Errorf("request %s ran as %q", r.Path, r.User)
		}
	}
}

// TestDiagnoseBuild_BoundsAndResults: build numbers below 1 and bad paths
// are invalid_argument before Jenkins is asked; a missing build is
// not_found; a successful build is answered without excerpts; the last
// build is the default.
func TestDiagnoseBuild_BoundsAndResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	job := "diagnosis/maven-compile-error"
	e.sim.ResetRequests()
	for _, args := range []map[string]any{
		{"job": job, "build": 0},
		{"job": job, "build": -1},
		{"job": job, "build": 1.5},
		{"job": "diagnosis/../backend/api"},
		{"job": ""},
		{"job": job, "stage": "Build"},
		{},
	} {
		e.fail(t, "diagnose_build", args, "invalid_argument")
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("refused calls sent %d requests to Jenkins", n)
	}
	e.fail(t, "diagnose_build", map[string]any{"job": job, "build": 3}, "not_found")
	ok := e.ok(t, "diagnose_build", map[string]any{"job": job, "build": 1})
	if ok["result"] != "SUCCESS" || len(ok["error_excerpts"].([]any)) != 0 || len(ok["failed_stages"].([]any)) != 0 ||
		!strings.Contains(fmt.Sprint(ok["hints"]), "succeeded") {
		t.Errorf("a successful build: %v", ok)
	}
	last := e.ok(t, "diagnose_build", map[string]any{"job": job})
	if last["result"] != "FAILURE" || len(last["error_excerpts"].([]any)) == 0 {
		t.Errorf("the last build (#2, failed): %v", last)
	}
}

// TestDiagnoseBuild_ChangesSinceLastSuccessAreBounded: the commits of the
// failed builds back to the last success, newest first, the success's
// own excluded; the walk reads at most 10 builds before this one and
// lists at most 20 commits, saying what it left out.
func TestDiagnoseBuild_ChangesSinceLastSuccessAreBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	e.sim.Grant(jenkinstest.SampleBob, "walk", jenkinstest.PermRead)
	commit := func(id string, n int) []jenkinstest.Commit {
		var out []jenkinstest.Commit
		for k := range n {
			out = append(out, jenkinstest.Commit{ID: fmt.Sprintf("%s%02d", id, k), Author: "Bob Jones", Message: "change " + id, Time: time.Date(2026, 11, 1, 0, 0, k, 0, time.UTC)})
		}
		return out
	}
	add := func(job, result string, changes []jenkinstest.Commit) int {
		t.Helper()
		n, err := e.sim.AddBuild(job, jenkinstest.BuildSpec{Result: result, Changes: changes, Log: []string{"+ make", "make: *** [all] Error 2"}})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if err := e.sim.AddJob("walk/short", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	add("walk/short", "FAILURE", commit("z", 1))
	add("walk/short", "SUCCESS", commit("a", 1))
	add("walk/short", "FAILURE", commit("b", 2))
	n := add("walk/short", "FAILURE", commit("c", 1))
	out := e.ok(t, "diagnose_build", map[string]any{"job": "walk/short", "build": n})
	var ids []string
	for _, c := range out["changes_since_last_success"].([]any) {
		ids = append(ids, c.(map[string]any)["id"].(string))
	}
	if strings.Join(ids, ",") != "c00,b01,b00" {
		t.Errorf("changes since the last success: %v, want c00,b01,b00", ids)
	}

	if err := e.sim.AddJob("walk/long", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	add("walk/long", "SUCCESS", commit("ok", 1))
	for i := range 14 {
		n = add("walk/long", "FAILURE", commit(fmt.Sprintf("f%02d-", i), 3))
	}
	e.sim.ResetRequests()
	out = e.ok(t, "diagnose_build", map[string]any{"job": "walk/long", "build": n})
	got := out["changes_since_last_success"].([]any)
	if len(got) != diagnose.MaxChanges || got[0].(map[string]any)["id"] != "f13-02" || out["truncated"] != true ||
		!strings.Contains(fmt.Sprint(out["omitted"]), "older commits") {
		t.Errorf("long walk: %d changes from %v, truncated %v, omitted %v", len(got), got[0], out["truncated"], out["omitted"])
	}
	builds := map[string]bool{}
	for _, r := range e.sim.Requests() {
		if strings.HasSuffix(r.Path, "/api/json") && strings.Contains(r.Query, "changeSet") {
			builds[r.Path] = true
		}
	}
	// 20 commits come from 7 builds of 3: the walk stops there.
	if len(builds) != 7 {
		t.Errorf("read the changes of %d builds, want 7: %v", len(builds), builds)
	}

	// Without a success within reach: this build and 10 before it.
	if err := e.sim.AddJob("walk/never", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		n = add("walk/never", "FAILURE", commit(fmt.Sprintf("n%02d-", i), 1))
	}
	e.sim.ResetRequests()
	out = e.ok(t, "diagnose_build", map[string]any{"job": "walk/never", "build": n})
	if got := len(out["changes_since_last_success"].([]any)); got != 11 {
		t.Errorf("no success in reach: %d changes, want 11 (this build and 10 before)", got)
	}
	if got, most := len(e.sim.Requests()), 63+1; got > most {
		t.Errorf("one diagnosis sent %d requests, over its budget of %d", got, most)
	}
}

// TestDiagnoseBuild_RunningBuild is diagnosed on its log so far.
func TestDiagnoseBuild_RunningBuild(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if err := e.sim.AddJob("frontend/slow", jenkinstest.JobSpec{Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	n, err := e.sim.AddBuild("frontend/slow", jenkinstest.BuildSpec{Building: true, Duration: time.Hour,
		Log: []string{"+ make", "gcc -c main.c", "main.c:12:5: error: 'undefined_thing' undeclared (first use in this function)", "still going"}})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(50 * time.Minute)
	out := e.ok(t, "diagnose_build", map[string]any{"job": "frontend/slow", "build": n})
	if out["result"] != "IN_PROGRESS" || !strings.Contains(fmt.Sprint(out["hints"]), "still running") ||
		!holdsAny(excerpts(out)[0]["lines"].([]any), []string{"undeclared"}) {
		t.Errorf("a running build: %v", out)
	}
}

// TestDiagnoseBuild_StalledLogEndsAtTheTimeBound: a console that stops
// coming (a stalled Jenkins or proxy) ends the diagnosis at its time
// bound with what was read, saying so, not with an error or a hang.
func TestDiagnoseBuild_StalledLogEndsAtTheTimeBound(t *testing.T) {
	defer tools.SetDiagnoseTimeout(time.Second)()
	stall := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/consoleText") {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
			fmt.Fprint(w, "+ make\nmain.c:12:5: error: 'boom' undeclared (first use in this function)\n")
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
	e := newEnv(t, jenkinstest.SampleBob, &envOpts{wrap: stall})
	start := time.Now()
	out := e.ok(t, "diagnose_build", map[string]any{"job": "frontend/web-app", "build": 6})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the diagnosis took %v, past its 1 s bound", d)
	}
	if out["truncated"] != true || !strings.Contains(fmt.Sprint(out["omitted"]), "time limit") ||
		len(excerpts(out)) == 0 || !holdsAny(excerpts(out)[0]["lines"].([]any), []string{"'boom' undeclared"}) {
		t.Errorf("stalled console: %v", out)
	}
}

// TestDiagnoseBuild_CountsAsALogSearch: a diagnosis streams logs and
// holds one of the user's search slots while it does; a third at once is
// refused (rate_limited with retry advice), holding nothing.
func TestDiagnoseBuild_CountsAsALogSearch(t *testing.T) {
	defer tools.SetDiagnoseTimeout(3 * time.Second)()
	var streaming atomic.Int32
	stall := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/consoleText") {
				next.ServeHTTP(w, r)
				return
			}
			streaming.Add(1)
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		})
	}
	e := newEnv(t, jenkinstest.SampleBob, &envOpts{wrap: stall})
	args := map[string]any{"job": "frontend/web-app", "build": 6}
	var wg sync.WaitGroup
	for range tools.MaxSearchesPerUser {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: "diagnose_build", Arguments: args}); err != nil {
				t.Errorf("diagnose_build: %v", err)
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); streaming.Load() < int32(tools.MaxSearchesPerUser); {
		if time.Now().After(deadline) {
			t.Fatalf("%d diagnoses streaming, want %d", streaming.Load(), tools.MaxSearchesPerUser)
		}
		time.Sleep(10 * time.Millisecond)
	}
	busy := e.fail(t, "diagnose_build", args, "rate_limited")
	if busy["retry_after_seconds"] == nil {
		t.Errorf("no retry advice: %v", busy)
	}
	wg.Wait()
	e.ok(t, "diagnose_build", map[string]any{"job": "frontend/web-app", "build": 5})
}
