package tools_test

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

func jobNames(out map[string]any) []string {
	var names []string
	for _, j := range out["jobs"].([]any) {
		names = append(names, j.(map[string]any)["full_name"].(string))
	}
	return names
}

func TestListAllJobs_PagesThroughEverythingOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	all := jobNames(e.ok(t, "list_all_jobs", map[string]any{"limit": 500}))
	if len(all) < 8 || !slices.IsSorted(all) {
		t.Fatalf("listing %v: want >= 8 jobs, sorted", all)
	}
	var paged []string
	args := map[string]any{"limit": 3}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		out := e.ok(t, "list_all_jobs", args)
		paged = append(paged, jobNames(out)...)
		next, ok := out["next_cursor"].(string)
		if !ok {
			break
		}
		args = map[string]any{"limit": 3, "cursor": next}
	}
	if diff := cmp.Diff(all, paged); diff != "" {
		t.Errorf("pages differ from the whole listing (-whole +pages):\n%s", diff)
	}
	for _, want := range []string{"frontend/Release Notes", "frontend/mobile/feature%2Flogin", "backend/api", "prod/deploy"} {
		if !slices.Contains(all, want) {
			t.Errorf("listing lacks %q", want)
		}
	}
	for _, n := range all {
		if n == "frontend" || n == "frontend/mobile" {
			t.Errorf("folder %q listed as a job", n)
		}
	}
}

func TestListAllJobs_FolderAndNonRecursive(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	got := jobNames(e.ok(t, "list_all_jobs", map[string]any{"folder": "frontend", "recursive": false}))
	want := []string{"frontend/Release Notes", "frontend/docs", "frontend/legacy-site", "frontend/release", "frontend/site-preview", "frontend/web-app"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("non-recursive frontend (-want +got):\n%s", diff)
	}
	got = jobNames(e.ok(t, "list_all_jobs", map[string]any{"folder": "frontend/mobile"}))
	if diff := cmp.Diff([]string{"frontend/mobile/feature%2Flogin", "frontend/mobile/main"}, got); diff != "" {
		t.Errorf("multibranch folder (-want +got):\n%s", diff)
	}
}

func TestListAllJobs_HiddenFolderIsNeverListed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	for _, n := range jobNames(e.ok(t, "list_all_jobs", map[string]any{"limit": 500})) {
		if strings.HasPrefix(n, "backend/") {
			t.Errorf("carol sees %q", n)
		}
	}
	hidden := e.fail(t, "list_all_jobs", map[string]any{"folder": "backend"}, "not_found")
	missing := e.fail(t, "list_all_jobs", map[string]any{"folder": "nosuch"}, "not_found")
	if strings.ReplaceAll(hidden["message"].(string), "backend", "X") != strings.ReplaceAll(missing["message"].(string), "nosuch", "X") {
		t.Errorf("hidden folder %q answered differently from a missing one %q", hidden["message"], missing["message"])
	}
}

func TestListAllJobs_BadArguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	for _, args := range []map[string]any{
		{"limit": 501},
		{"limit": 0},
		{"limit": 2.5},
		{"limit": "10"},
		{"cursor": "not-a-cursor!"},
		{"folder": "../etc"},
		{"unknown": 1},
	} {
		e.fail(t, "list_all_jobs", args, "invalid_argument")
	}
	out := e.ok(t, "list_all_jobs", map[string]any{"limit": 1})
	e.fail(t, "list_all_jobs", map[string]any{"folder": "backend", "cursor": out["next_cursor"]}, "invalid_argument")
}

func TestGetJob_ParametersKeepTheirTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	out := e.ok(t, "get_job", map[string]any{"job": "backend/api"})
	params := map[string]map[string]any{}
	for _, p := range out["parameters"].([]any) {
		m := p.(map[string]any)
		params[m["name"].(string)] = m
	}
	checks := []struct {
		name, typ string
		def       any
	}{
		{"BRANCH", "string", "main"},
		{"ENV", "choice", "staging"},
		{"DRY_RUN", "boolean", true},
		{"NOTES", "text", ""},
		{"DEPLOY_TOKEN", "password", nil},
	}
	for _, c := range checks {
		p := params[c.name]
		if p == nil || p["type"] != c.typ || p["default"] != c.def {
			t.Errorf("parameter %s = %v, want type %s default %#v", c.name, p, c.typ, c.def)
		}
	}
	if diff := cmp.Diff([]any{"staging", "production"}, params["ENV"]["choices"]); diff != "" {
		t.Errorf("choices (-want +got):\n%s", diff)
	}
	if out["buildable"] != true || out["last_build_number"] == nil {
		t.Errorf("job: %v", out)
	}
}

// A job the user may not see answers exactly as a job that does not exist:
// same code, status and message (but for the path the caller gave).
func TestHiddenJobIsIndistinguishableFromMissing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	calls := []struct {
		tool string
		args func(job string) map[string]any
	}{
		{"get_job", func(j string) map[string]any { return map[string]any{"job": j} }},
		{"get_build", func(j string) map[string]any { return map[string]any{"job": j} }},
		{"get_build", func(j string) map[string]any { return map[string]any{"job": j, "build": 1} }},
		{"get_build_log", func(j string) map[string]any { return map[string]any{"job": j} }},
		{"search_build_log", func(j string) map[string]any { return map[string]any{"job": j, "pattern": "x"} }},
		{"get_test_results", func(j string) map[string]any { return map[string]any{"job": j, "build": 1} }},
		{"trigger_job", func(j string) map[string]any { return map[string]any{"job": j} }},
		{"stop_build", func(j string) map[string]any { return map[string]any{"job": j, "build": 1} }},
	}
	for _, c := range calls {
		hidden := e.fail(t, c.tool, c.args("backend/api"), "not_found")
		missing := e.fail(t, c.tool, c.args("backend/nosuch"), "not_found")
		delete(hidden, "request_id")
		delete(missing, "request_id")
		hidden["message"] = strings.ReplaceAll(hidden["message"].(string), "backend/api", "JOB")
		missing["message"] = strings.ReplaceAll(missing["message"].(string), "backend/nosuch", "JOB")
		if diff := cmp.Diff(missing, hidden); diff != "" {
			t.Errorf("%s: hidden job answered differently from a missing one (-missing +hidden):\n%s", c.tool, diff)
		}
	}
	for _, r := range e.posts() {
		t.Errorf("a POST reached Jenkins for a job carol cannot see: %+v", r)
	}
}

func TestTriggerJob_QueueToBuildLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	id := out["queue_id"].(float64)
	if !strings.HasSuffix(out["queue_url"].(string), fmt.Sprintf("/queue/item/%d/", int(id))) {
		t.Errorf("queue_url %v", out["queue_url"])
	}
	q := e.ok(t, "get_queue_item", map[string]any{"queue_id": id})
	if q["state"] != "waiting" || q["why"] == "" {
		t.Errorf("fresh queue item: %v", q)
	}
	e.clock.Advance(5 * time.Second)
	q = e.ok(t, "get_queue_item", map[string]any{"queue_id": id})
	if q["state"] != "started" || q["build_number"] == nil {
		t.Fatalf("after the quiet period: %v", q)
	}
	n := q["build_number"]
	b := e.ok(t, "get_build", map[string]any{"job": "frontend/web-app", "build": n})
	if b["building"] != true || b["result"] != nil {
		t.Errorf("running build: %v", b)
	}
	if diff := cmp.Diff([]any{"Started by user Alice Smith"}, b["causes"]); diff != "" {
		t.Errorf("causes (-want +got):\n%s", diff)
	}
	e.clock.Advance(10 * time.Second)
	log1 := e.ok(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": n})
	if log1["more"] != true {
		t.Errorf("log of a running build: more = %v", log1["more"])
	}
	e.clock.Advance(10 * time.Second)
	log2 := e.ok(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": n, "start": log1["next_start"]})
	if log2["start"] != log1["next_start"] || log2["text"] == "" {
		t.Errorf("log continuation: %v after %v", log2, log1["next_start"])
	}
	stop := e.ok(t, "stop_build", map[string]any{"job": "frontend/web-app", "build": n})
	if stop["stopped"] != true || stop["result"] != "ABORTED" {
		t.Errorf("stop: %v", stop)
	}
	again := e.ok(t, "stop_build", map[string]any{"job": "frontend/web-app", "build": n})
	if again["stopped"] != false || again["result"] != "ABORTED" {
		t.Errorf("second stop: %v", again)
	}
	tail := e.ok(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": n, "tail_lines": 1})
	if tail["text"] != "Finished: ABORTED\n" || tail["more"] != false {
		t.Errorf("tail of a stopped build: %q more=%v", tail["text"], tail["more"])
	}
}

func TestTriggerJob_WaitForStart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	done := make(chan map[string]any)
	go func() {
		done <- e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app", "wait_for_start_seconds": 5})
	}()
	// Let the trigger land, then end the quiet period while it polls.
	for len(e.posts()) == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	e.clock.Advance(5 * time.Second)
	out := <-done
	if out["state"] != "started" || out["build_number"] == nil || out["build_url"] == "" {
		t.Errorf("trigger with wait: %v", out)
	}
}

func TestTriggerJob_ParametersCheckedBeforeJenkinsIsCalled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	bad := []map[string]any{
		{"job": "backend/api", "parameters": map[string]any{"NOPE": "x"}},
		{"job": "backend/api", "parameters": map[string]any{"ENV": "moon"}},
		{"job": "backend/api", "parameters": map[string]any{"ENV": 3}},
		{"job": "backend/api", "parameters": map[string]any{"DRY_RUN": "maybe"}},
		{"job": "backend/api", "parameters": map[string]any{"BRANCH": map[string]any{}}},
		{"job": "frontend/web-app", "parameters": map[string]any{"X": "1"}},
		{"job": "backend/api", "wait_for_start_seconds": 61},
		{"job": "backend/api", "wait_for_start_seconds": -1},
	}
	for _, args := range bad {
		e.fail(t, "trigger_job", args, "invalid_argument")
	}
	if p := e.posts(); len(p) != 0 {
		t.Fatalf("Jenkins received POSTs for invalid triggers: %+v", p)
	}
	out := e.ok(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"ENV": "production", "DRY_RUN": false, "BRANCH": "release/1.2"}})
	e.clock.Advance(10 * time.Second)
	q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]})
	b := e.ok(t, "get_build", map[string]any{"job": "backend/api", "build": q["build_number"]})
	params := b["parameters"].(map[string]any)
	if params["ENV"] != "production" || params["DRY_RUN"] != false || params["BRANCH"] != "release/1.2" || params["DEPLOY_TOKEN"] != nil {
		t.Errorf("build parameters: %v", params)
	}
}

func TestTriggerJob_DeniedWithoutBuildPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	errObj := e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "forbidden")
	if errObj["required_permission"] != "hudson.model.Item.Build" || errObj["status"] != float64(403) {
		t.Errorf("forbidden error: %v", errObj)
	}
	for _, r := range e.posts() {
		if r.Status < 400 {
			t.Errorf("Jenkins accepted a POST from bob: %+v", r)
		}
	}
	recs := e.audit.all()
	last := recs[len(recs)-1]
	if last.Decision != audit.Deny || last.Code != "forbidden" || last.Resource != "frontend/web-app" || last.User != "bob" {
		t.Errorf("audit record of the denial: %+v", last)
	}
}

func TestTriggerJob_DisabledJobIsConflictWithoutAPost(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	e.fail(t, "trigger_job", map[string]any{"job": "frontend/legacy-site"}, "conflict")
	if p := e.posts(); len(p) != 0 {
		t.Errorf("POST sent for a disabled job: %+v", p)
	}
}

// Hostile job paths are refused before any request reaches Jenkins.
func TestHostileJobPaths_RefusedBeforeJenkins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	paths := []string{
		"frontend/../backend/api", "../backend/api", "frontend/./web-app", "frontend//web-app",
		"frontend/%2E%2E/backend/api", "frontend/..%2Fbackend%2Fapi", "frontend\\..\\backend",
		"frontend/web-app\x00", "frontend/web-app\n", "frontend\u2215..\u2215backend", "frontend/\uff0e\uff0e/backend",
		"prod./deploy", "", "/", strings.Repeat("a/", 600),
	}
	e.sim.ResetRequests()
	for _, p := range paths {
		e.fail(t, "get_job", map[string]any{"job": p}, "invalid_argument")
		e.fail(t, "trigger_job", map[string]any{"job": p}, "invalid_argument")
	}
	if reqs := e.sim.Requests(); len(reqs) != 0 {
		t.Errorf("hostile paths reached Jenkins: %+v", reqs)
	}
	// A multibranch name holding a literal %2F is a name, not a separator.
	out := e.ok(t, "get_job", map[string]any{"job": "/frontend/mobile/feature%2Flogin/"})
	if out["full_name"] != "frontend/mobile/feature%2Flogin" {
		t.Errorf("canonical name %v", out["full_name"])
	}
	e.ok(t, "get_job", map[string]any{"job": "frontend/Release Notes"})
}

func TestCancelQueueItem(t *testing.T) {
	t.Parallel()
	alice := newEnv(t, jenkinstest.SampleAlice, nil)
	out := alice.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	if c := alice.ok(t, "cancel_queue_item", map[string]any{"queue_id": out["queue_id"]}); c["cancelled"] != true {
		t.Errorf("cancel: %v", c)
	}
	if q := alice.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]}); q["state"] != "cancelled" {
		t.Errorf("after cancel: %v", q)
	}
	alice.fail(t, "cancel_queue_item", map[string]any{"queue_id": 999}, "not_found")
	// An item that already started cannot be cancelled: Jenkins answers
	// 500, which is a conflict, not an outage.
	started := alice.ok(t, "trigger_job", map[string]any{"job": "frontend/docs"})
	alice.clock.Advance(10 * time.Second)
	if q := alice.ok(t, "get_queue_item", map[string]any{"queue_id": started["queue_id"]}); q["state"] != "started" {
		t.Fatalf("queue item did not start: %v", q)
	}
	if e := alice.fail(t, "cancel_queue_item", map[string]any{"queue_id": started["queue_id"]}, "conflict"); !strings.Contains(e["message"].(string), "already left the queue") {
		t.Errorf("cancel of a started item: %v", e)
	}
	alice.fail(t, "get_queue_item", map[string]any{"queue_id": 999}, "not_found")
	alice.fail(t, "get_queue_item", map[string]any{"queue_id": 0}, "invalid_argument")
	// Queue items leave Jenkins five minutes after leaving the queue.
	alice.clock.Advance(6 * time.Minute)
	alice.fail(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]}, "not_found")
}

func TestCancelQueueItem_DeniedWithoutCancelPermission(t *testing.T) {
	t.Parallel()
	// carol may build in frontend but not cancel; Jenkins answers 422.
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	errObj := e.fail(t, "cancel_queue_item", map[string]any{"queue_id": out["queue_id"]}, "forbidden")
	if errObj["required_permission"] != "hudson.model.Item.Cancel" {
		t.Errorf("forbidden error: %v", errObj)
	}
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]}); q["state"] == "cancelled" {
		t.Error("item cancelled without permission")
	}
}

func TestStopBuild_DeniedWithoutCancelPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	e.clock.Advance(5 * time.Second)
	q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]})
	errObj := e.fail(t, "stop_build", map[string]any{"job": "frontend/web-app", "build": q["build_number"]}, "forbidden")
	if errObj["required_permission"] != "hudson.model.Item.Cancel" {
		t.Errorf("forbidden error: %v", errObj)
	}
	if b := e.ok(t, "get_build", map[string]any{"job": "frontend/web-app", "build": q["build_number"]}); b["building"] != true {
		t.Errorf("build stopped without permission: %v", b)
	}
	e.fail(t, "stop_build", map[string]any{"job": "frontend/web-app"}, "invalid_argument")
}

func TestGetBuildLog_PagesReassembleTheConsole(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	var whole strings.Builder
	args := map[string]any{"job": "frontend/web-app", "build": 6, "max_bytes": 1000}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		out := e.ok(t, "get_build_log", args)
		if len(out["text"].(string)) > 1000 {
			t.Fatalf("page of %d bytes, max 1000", len(out["text"].(string)))
		}
		whole.WriteString(out["text"].(string))
		if out["more"] != true {
			break
		}
		args["start"] = out["next_start"]
	}
	if !strings.HasPrefix(whole.String(), "Started by") || !strings.HasSuffix(whole.String(), "Finished: FAILURE\n") || strings.Count(whole.String(), "\n") < 250 {
		t.Errorf("reassembled log is not the console: %d bytes, starts %.40q, ends %q", whole.Len(), whole.String(), whole.String()[max(0, whole.Len()-40):])
	}
	tail := e.ok(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "tail_lines": 3})
	lines := strings.Split(strings.TrimSuffix(tail["text"].(string), "\n"), "\n")
	all := strings.Split(strings.TrimSuffix(whole.String(), "\n"), "\n")
	if diff := cmp.Diff(all[len(all)-3:], lines); diff != "" {
		t.Errorf("tail_lines 3 (-want +got):\n%s", diff)
	}
	if tail["next_start"] != float64(whole.Len()) {
		t.Errorf("tail next_start %v, log is %d bytes", tail["next_start"], whole.Len())
	}
	end := e.ok(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "start": 1 << 40})
	if end["text"] != "" || end["more"] != false {
		t.Errorf("read past the end: %v", end)
	}
	for _, args := range []map[string]any{
		{"job": "frontend/web-app", "max_bytes": 1048577},
		{"job": "frontend/web-app", "max_bytes": 0},
		{"job": "frontend/web-app", "start": -1},
		{"job": "frontend/web-app", "tail_lines": 0},
		{"job": "frontend/web-app", "build": 0},
	} {
		e.fail(t, "get_build_log", args, "invalid_argument")
	}
	e.fail(t, "get_build_log", map[string]any{"job": "frontend/web-app", "build": 999}, "not_found")
}

func TestSearchBuildLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	out := e.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": "Finished:", "context_lines": 2})
	matches := out["matches"].([]any)
	if len(matches) != 1 {
		t.Fatalf("matches: %v", matches)
	}
	m := matches[0].(map[string]any)
	if m["line"] != "Finished: FAILURE" || len(m["before"].([]any)) != 2 || len(m["after"].([]any)) != 0 || out["truncated"] != false {
		t.Errorf("match: %v", m)
	}
	lit := e.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": "F.nished"})
	if len(lit["matches"].([]any)) != 0 {
		t.Error("literal pattern matched as a regex")
	}
	re := e.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": "F.nished", "regex": true})
	if len(re["matches"].([]any)) != 1 {
		t.Errorf("regex: %v", re)
	}
	ci := e.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": "finished: failure", "ignore_case": true})
	if len(ci["matches"].([]any)) != 1 {
		t.Errorf("ignore_case: %v", ci)
	}
	many := e.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": ".", "regex": true, "max_matches": 5})
	if len(many["matches"].([]any)) != 5 || many["truncated"] != true {
		t.Errorf("max_matches: %d matches truncated=%v", len(many["matches"].([]any)), many["truncated"])
	}
	for _, args := range []map[string]any{
		{"job": "frontend/web-app", "pattern": "(", "regex": true},
		{"job": "frontend/web-app", "pattern": ""},
		{"job": "frontend/web-app", "pattern": "x", "context_lines": 11},
		{"job": "frontend/web-app", "pattern": "x", "max_matches": 1001},
		{"job": "frontend/web-app"},
	} {
		e.fail(t, "search_build_log", args, "invalid_argument")
	}
}

func TestGetTestResults(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	out := e.ok(t, "get_test_results", map[string]any{"job": "frontend/web-app", "build": 6, "only_failing": true})
	if out["failed"].(float64) < 1 || len(out["failures"].([]any)) != int(out["failed"].(float64)) || out["tests"] != nil {
		t.Errorf("only failing: %v", out)
	}
	f := out["failures"].([]any)[0].(map[string]any)
	if f["name"] == "" || f["class"] == "" || f["message"] == "" {
		t.Errorf("failure: %v", f)
	}
	all := e.ok(t, "get_test_results", map[string]any{"job": "frontend/web-app", "build": 6})
	total := all["passed"].(float64) + all["failed"].(float64) + all["skipped"].(float64)
	if len(all["tests"].([]any)) != int(total) {
		t.Errorf("%d tests listed, report counts %v", len(all["tests"].([]any)), total)
	}
	e.fail(t, "get_test_results", map[string]any{"job": "frontend/docs"}, "not_found")
}

func TestTimeAndWhoami(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	out := e.ok(t, "get_current_time_info", map[string]any{"timezone": "Asia/Kolkata"})
	want := map[string]any{"iso8601": "2026-11-30T17:30:00+05:30", "unix": float64(1796040000), "timezone": "Asia/Kolkata", "utc_offset": "+05:30"}
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("time (-want +got):\n%s", diff)
	}
	ny := e.ok(t, "get_current_time_info", map[string]any{"timezone": "America/New_York"})
	if ny["utc_offset"] != "-05:00" {
		t.Errorf("New York offset %v", ny["utc_offset"])
	}
	if utc := e.ok(t, "get_current_time_info", nil); utc["timezone"] != "UTC" || utc["utc_offset"] != "+00:00" {
		t.Errorf("default zone: %v", utc)
	}
	for _, tz := range []string{"Mars/Olympus", "Local", "../../etc/passwd", "Europe/../UTC"} {
		e.fail(t, "get_current_time_info", map[string]any{"timezone": tz}, "invalid_argument")
	}
	who := e.ok(t, "whoami", nil)
	if who["user"] != "alice" || who["jenkins_user"] != "alice" || who["jenkins_linked"] != true {
		t.Errorf("whoami: %v", who)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if out := e.ok(t, "health", nil); out["status"] != "ok" || out["jenkins"] != "reachable" || out["version"] != "test" {
		t.Errorf("health: %v", out)
	}
	// A Jenkins that answers 5xx is unreachable for health purposes.
	e.sim.SetFault(jenkinstest.Fault{Status: 503})
	if out := e.ok(t, "health", nil); out["status"] != "degraded" || out["jenkins"] != "unreachable" {
		t.Errorf("health with Jenkins down: %v", out)
	}
}

func TestJenkinsUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("5xx", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, jenkinstest.SampleAlice, nil)
		e.sim.SetFault(jenkinstest.Fault{Status: 503})
		errObj := e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_unavailable")
		if errObj["status"] != float64(502) || !strings.Contains(errObj["message"].(string), "503") {
			t.Errorf("5xx error: %v", errObj)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, jenkinstest.SampleAlice, &envOpts{timeout: 100 * time.Millisecond})
		e.sim.SetFault(jenkinstest.Fault{Delay: 2 * time.Second})
		errObj := e.fail(t, "list_all_jobs", nil, "jenkins_unavailable")
		if errObj["status"] != float64(504) {
			t.Errorf("timeout error: %v", errObj)
		}
	})
	t.Run("down", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		e := newEnv(t, jenkinstest.SampleAlice, &envOpts{jenkins: "http://" + addr + "/"})
		errObj := e.fail(t, "get_build", map[string]any{"job": "frontend/web-app"}, "jenkins_unavailable")
		if errObj["status"] != float64(503) {
			t.Errorf("down error: %v", errObj)
		}
		if out := e.ok(t, "health", nil); out["jenkins"] != "unreachable" {
			t.Errorf("health with Jenkins down: %v", out)
		}
	})
}

// A wrong API token is a credential problem, not a missing job: the
// credential was rejected (CONTRACT: jenkins_account_not_linked, reason
// credential_rejected).
func TestWrongAPIToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "mallory", nil)
	errObj := e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_account_not_linked")
	if !strings.Contains(errObj["message"].(string), "401") || errObj["reason"] != "credential_rejected" {
		t.Errorf("wrong token error: %v", errObj)
	}
}

func TestGuestReachesOnlyGuestTools(t *testing.T) {
	t.Parallel()
	g := identity.Guest()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: &g})
	res, err := e.session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tools) != 1 || res.Tools[0].Name != "health" {
		var names []string
		for _, tool := range res.Tools {
			names = append(names, tool.Name)
		}
		t.Errorf("guest sees %v, want only health", names)
	}
	e.ok(t, "health", nil)
	e.fail(t, "whoami", nil, "unauthenticated")
	e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "unauthenticated")
	e.sim.ResetRequests()
	e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "unauthenticated")
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("a guest call reached Jenkins %d times", n)
	}
}

func TestScopesAreChecked(t *testing.T) {
	t.Parallel()
	p := identity.Principal{User: "alice", JenkinsUser: "alice", Scopes: []string{"jenkins:read"}}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: &p})
	e.ok(t, "get_job", map[string]any{"job": "frontend/web-app"})
	errObj := e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "insufficient_scope")
	if diff := cmp.Diff([]any{"jenkins:build"}, errObj["required_scopes"]); diff != "" {
		t.Errorf("required scopes (-want +got):\n%s", diff)
	}
	if p := e.posts(); len(p) != 0 {
		t.Errorf("insufficient scope still posted: %+v", p)
	}
}

// Every tools/call writes exactly one audit record, with its outcome.
func TestAudit_OneRecordPerCall(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	e.ok(t, "get_job", map[string]any{"job": "frontend/web-app"})
	e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "forbidden")
	e.fail(t, "get_job", map[string]any{"job": "frontend/../backend"}, "invalid_argument")
	e.fail(t, "get_job", map[string]any{"job": "nosuch"}, "not_found")
	recs := e.audit.all()
	want := []struct{ tool, decision, code, resource string }{
		{"get_job", "allow", "", "frontend/web-app"},
		{"trigger_job", "deny", "forbidden", "frontend/web-app"},
		{"get_job", "error", "invalid_argument", ""},
		{"get_job", "error", "not_found", "nosuch"},
	}
	if len(recs) != len(want) {
		t.Fatalf("%d audit records for %d calls: %+v", len(recs), len(want), recs)
	}
	ids := map[string]bool{}
	for i, w := range want {
		r := recs[i]
		if r.Tool != w.tool || r.Decision != w.decision || r.Code != w.code || r.Resource != w.resource || r.User != "bob" || r.RequestID == "" {
			t.Errorf("record %d = %+v, want %+v", i, r, w)
		}
		ids[r.RequestID] = true
	}
	if len(ids) != len(want) {
		t.Error("request ids are not unique")
	}
	for _, r := range recs {
		if regexp.MustCompile(`bob-token`).MatchString(fmt.Sprintf("%+v", r)) {
			t.Errorf("audit record carries the token: %+v", r)
		}
	}
}

// TestTriggerJob_WaitingPollsAtMostOnceASecond pins the bound on
// wait_for_start_seconds: a call waiting for a build that does not start
// polls the queue with back-off from 250 ms to once a second, not in a
// tight loop (20 waiting calls once cost 851 Jenkins requests).
func TestTriggerJob_WaitingPollsAtMostOnceASecond(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{poll: 250 * time.Millisecond})
	e.sim.ResetRequests()
	// The fake clock does not move: the item stays in its quiet period.
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app", "wait_for_start_seconds": 3})
	if out["state"] == "started" {
		t.Fatalf("the build started: %v", out)
	}
	polls := 0
	for _, r := range e.sim.Requests() {
		if strings.Contains(r.Path, "/queue/item/") {
			polls++
		}
	}
	// 0, 0.25, 0.75, 1.75, 2.75 s: five polls in three seconds.
	if polls > 6 {
		t.Errorf("a 3 s wait polled the queue %d times, want at most about one a second", polls)
	}
}
