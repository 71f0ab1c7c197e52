package jenkinstest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// lifecycleJobs: "app" takes 10 s, prints four lines (at 2, 4, 6 and 8 s),
// has a 5 s quiet period and no concurrent builds; "other" starts at once.
func lifecycleJobs() map[string]JobSpec {
	return map[string]JobSpec{
		"team/app":   {QuietPeriod: 5 * time.Second, Duration: 10 * time.Second, Log: []string{"one", "two", "three", "four"}},
		"team/other": {Duration: 30 * time.Second, Log: []string{"working"}},
	}
}

func TestQueueLifecycle_WaitingBlockedBuildableLeftFinished(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, &Options{Executors: 1}, lifecycleJobs())
	const app = "/job/team/job/app/"

	w := call(t, s, "POST", app+"build", "alice")
	if w.Code != http.StatusCreated || w.Header().Get("Location") != "http://jenkins.test/queue/item/1/" {
		t.Fatalf("trigger: %d %q", w.Code, w.Header().Get("Location"))
	}
	q1 := queuePath(t, w.Header().Get("Location"))

	// Waiting during the quiet period.
	it := getJSON(t, s, q1, "bob")
	if str(it, "_class") != "hudson.model.Queue$WaitingItem" || str(it, "why") != "In the quiet period. Expires in 5 sec" {
		t.Fatalf("waiting item: %v", it)
	}
	if it["timestamp"] != float64(t0.Add(5*time.Second).UnixMilli()) || it["inQueueSince"] != float64(t0.UnixMilli()) {
		t.Errorf("waiting item times: %v", it)
	}
	clk.Advance(100 * time.Millisecond)
	if why := str(getJSON(t, s, q1, "bob"), "why"); why != "In the quiet period. Expires in 4.9 sec" {
		t.Errorf("why = %q", why)
	}
	job := getJSON(t, s, app+"api/json", "bob")
	if job["inQueue"] != true || job["queueItem"] == nil {
		t.Errorf("job while queued: inQueue=%v queueItem=%v", job["inQueue"], job["queueItem"])
	}

	// The quiet period ends at t0+5s: the build starts then, even though
	// nobody asks until t0+6s.
	clk.Set(t0.Add(6 * time.Second))
	it = getJSON(t, s, q1, "bob")
	exe, _ := it["executable"].(map[string]any)
	if str(it, "_class") != "hudson.model.Queue$LeftItem" || it["cancelled"] != false || exe == nil ||
		exe["number"] != float64(1) || str(exe, "url") != "http://jenkins.test/job/team/job/app/1/" ||
		str(exe, "_class") != "hudson.model.FreeStyleBuild" {
		t.Fatalf("left item: %v", it)
	}
	b := getJSON(t, s, app+"1/api/json", "bob")
	if b["building"] != true || b["result"] != nil || b["duration"] != float64(0) ||
		b["timestamp"] != float64(t0.Add(5*time.Second).UnixMilli()) || b["queueId"] != float64(1) {
		t.Fatalf("running build: %v", b)
	}
	if c := str(getJSON(t, s, app+"api/json", "bob"), "color"); c != "notbuilt_anime" {
		t.Errorf("color while first build runs = %q", c)
	}

	// Progressive log: only the cause so far (the first line is due at +2s).
	w = call(t, s, "GET", app+"1/logText/progressiveText?start=0", "bob")
	// Before 2.509 the user's hyperlink note is stripped but counted in
	// X-Text-Size, and LF is sent as CR LF.
	if w.Body.String() != "Started by user Alice Smith\r\n" || w.Header().Get("X-More-Data") != "true" {
		t.Fatalf("log at +1s: %q more=%q", w.Body.String(), w.Header().Get("X-More-Data"))
	}
	size, _ := strconv.Atoi(w.Header().Get("X-Text-Size"))
	if want := len("Started by user \n" + HyperlinkNote("/user/alice", "Alice Smith")); size != want {
		t.Errorf("X-Text-Size = %d, want %d", size, want)
	}

	// A second build of the non-concurrent job is blocked once its quiet
	// period ends; "other" waits for the only executor.
	q2 := queuePath(t, call(t, s, "POST", app+"build", "alice").Header().Get("Location"))
	q3 := queuePath(t, call(t, s, "POST", "/job/team/job/other/build", "alice").Header().Get("Location"))
	clk.Set(t0.Add(11 * time.Second))
	it = getJSON(t, s, q2, "bob")
	if str(it, "_class") != "hudson.model.Queue$BlockedItem" || it["blocked"] != true ||
		str(it, "why") != "Build #1 is already in progress (ETA:N/A)" ||
		it["buildableStartMilliseconds"] != float64(t0.Add(11*time.Second).UnixMilli()) {
		t.Fatalf("blocked item: %v", it)
	}
	it = getJSON(t, s, q3, "bob")
	if str(it, "_class") != "hudson.model.Queue$BuildableItem" || it["buildable"] != true || it["pending"] != false ||
		str(it, "why") != "Waiting for next available executor" {
		t.Fatalf("buildable item: %v", it)
	}
	queue := getJSON(t, s, "/queue/api/json", "bob")
	items, _ := queue["items"].([]any)
	if len(items) != 2 {
		t.Fatalf("queue has %d items, want 2: %v", len(items), queue)
	}

	// More of the log, read from where we stopped.
	w = call(t, s, "GET", app+"1/logText/progressiveText?start="+strconv.Itoa(size), "bob")
	if w.Body.String() != "one\r\ntwo\r\nthree\r\n" || w.Header().Get("X-More-Data") != "true" {
		t.Fatalf("log at +6s from %d: %q", size, w.Body.String())
	}
	size, _ = strconv.Atoi(w.Header().Get("X-Text-Size"))

	// Build #1 ends at t0+15s; the freed executor goes to "other", the
	// older buildable item, and app's item stays buildable.
	clk.Set(t0.Add(16 * time.Second))
	w = call(t, s, "GET", app+"1/logText/progressiveText?start="+strconv.Itoa(size), "bob")
	if w.Body.String() != "four\r\nFinished: SUCCESS\r\n" || w.Header().Get("X-More-Data") != "" {
		t.Fatalf("final log chunk: %q more=%q", w.Body.String(), w.Header().Get("X-More-Data"))
	}
	b = getJSON(t, s, app+"1/api/json", "bob")
	if b["building"] != false || str(b, "result") != "SUCCESS" || b["duration"] != float64(10000) {
		t.Fatalf("finished build: %v", b)
	}
	if str(getJSON(t, s, q3, "bob"), "_class") != "hudson.model.Queue$LeftItem" {
		t.Errorf("other did not start when the executor freed")
	}
	if it := getJSON(t, s, q2, "bob"); str(it, "_class") != "hudson.model.Queue$BuildableItem" {
		t.Errorf("app's second item: %v", it)
	}
	w = call(t, s, "GET", app+"1/consoleText", "bob")
	if want := "Started by user Alice Smith\none\ntwo\nthree\nfour\nFinished: SUCCESS\n"; w.Body.String() != want ||
		w.Header().Get("Content-Type") != "text/plain;charset=UTF-8" { // Run.doConsoleTextImpl
		t.Errorf("consoleText = %q (%s)", w.Body.String(), w.Header().Get("Content-Type"))
	}

	// Cancel the buildable item: 204, then a cancelled LeftItem; cancelling
	// again fails as in Jenkins (a LeftItem cannot leave the queue).
	id2 := strings.Split(q2, "/")[3]
	if w := call(t, s, "POST", "/queue/cancelItem?id="+id2, "alice"); w.Code != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", w.Code, w.Body.String())
	}
	it = getJSON(t, s, q2, "bob")
	if str(it, "_class") != "hudson.model.Queue$LeftItem" || it["cancelled"] != true || it["executable"] != nil {
		t.Fatalf("cancelled item: %v", it)
	}
	if w := call(t, s, "POST", "/queue/cancelItem?id="+id2, "alice"); w.Code != http.StatusInternalServerError {
		t.Errorf("second cancel: %d", w.Code)
	}

	// Item 1 left at t0+5s: readable until t0+5s+5m, then 404.
	clk.Set(t0.Add(5*time.Second + 5*time.Minute - time.Millisecond))
	getJSON(t, s, q1, "bob")
	clk.Advance(time.Millisecond)
	if w := call(t, s, "GET", q1, "bob"); w.Code != http.StatusNotFound {
		t.Errorf("expired left item: %d", w.Code)
	}
	if w := call(t, s, "GET", q2, "bob"); w.Code != http.StatusOK {
		t.Errorf("item cancelled later expired too early: %d", w.Code)
	}
}

func TestBlockedWhy_ETAFromHistory(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, nil, map[string]JobSpec{"app": {Duration: 30 * time.Second}})
	if _, err := s.AddBuild("app", BuildSpec{Duration: 20 * time.Second, Timestamp: t0.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	call(t, s, "POST", "/job/app/build", "alice") // starts at once (no quiet period)
	q := queuePath(t, call(t, s, "POST", "/job/app/build?delay=0sec&x=1", "alice").Header().Get("Location"))
	// The second request folds into nothing (build #2 is running), so it
	// is a new item, blocked by #2.
	clk.Advance(5 * time.Second)
	if why := str(getJSON(t, s, q, "bob"), "why"); why != "Build #2 is already in progress (ETA:15 sec)" {
		t.Errorf("why = %q", why)
	}
	clk.Advance(15 * time.Second)
	if why := str(getJSON(t, s, q, "bob"), "why"); why != "Build #2 is already in progress (ETA:N/A)" {
		t.Errorf("why past the estimate = %q", why)
	}
}

func TestTrigger_IdenticalRequestsFoldIntoQueuedItem(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"p": {QuietPeriod: 5 * time.Second, Params: []Param{{Name: "A", Type: "string"}}}})
	// ParametersDefinitionProperty.buildWithParameters: 201 for a new
	// item, 303 See Other when Queue.schedule2 folded the request into one.
	loc := func(q string, status int) string {
		w := call(t, s, "POST", "/job/p/buildWithParameters"+q, "alice")
		if w.Code != status {
			t.Fatalf("trigger %s: %d, want %d", q, w.Code, status)
		}
		return w.Header().Get("Location")
	}
	a, b, c := loc("?A=1", http.StatusCreated), loc("?A=1", http.StatusSeeOther), loc("?A=2", http.StatusCreated)
	if a != b || a == c {
		t.Errorf("locations %q %q %q: want the first two equal, the third different", a, b, c)
	}
	if a != "http://jenkins.test/queue/item/1/" {
		t.Errorf("Location %q, want the absolute URL of queue item 1", a)
	}
}

func TestTrigger_Parameters(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, nil, map[string]JobSpec{
		"p": {Params: []Param{
			{Name: "S", Type: "string", Default: "def"},
			{Name: "B", Type: "boolean", Default: true},
			{Name: "C", Type: "choice", Choices: []string{"x", "y"}},
			{Name: "T", Type: "text"},
			{Name: "P", Type: "password", Default: "secret"},
		}},
		"plain": {},
	})
	tests := []struct {
		name, path string
		form       url.Values
		status     int
		params     string // queue item "params" when created
		body       string // substring of the error body
	}{
		{"defaults via build", "/job/p/build", nil, 201, "\nS=def\nB=true\nC=x\nT=\nP=****", ""},
		{"query", "/job/p/buildWithParameters?S=q&B=false&C=y&UNKNOWN=1", nil, 201, "\nS=q\nB=false\nC=y\nT=\nP=****", ""},
		{"form body", "/job/p/buildWithParameters", url.Values{"S": {"f"}, "T": {"multi\nline"}, "P": {"pw"}}, 201, "\nS=f\nB=true\nC=x\nT=multi\nline\nP=****", ""},
		{"bad choice", "/job/p/buildWithParameters?C=z", nil, 400, "", "Illegal choice for parameter C: z"},
		{"not parameterized", "/job/plain/buildWithParameters?S=1", nil, 400, "", "This build is not parameterized"},
		{"GET build", "/job/plain/build", nil, 405, "", ""},
	}
	for _, tc := range tests {
		var opts []func(*http.Request)
		if tc.form != nil {
			opts = append(opts, withForm(tc.form))
		}
		method := "POST"
		if tc.status == 405 {
			method = "GET"
		}
		w := call(t, s, method, tc.path, "alice", opts...)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, w.Code, w.Body.String(), tc.status, tc.body)
			continue
		}
		if tc.status == 201 {
			it := getJSON(t, s, queuePath(t, w.Header().Get("Location")), "alice")
			if got := str(it, "params"); got != tc.params {
				t.Errorf("%s: params %q, want %q", tc.name, got, tc.params)
			}
		}
		clk.Advance(time.Minute) // let every build finish before the next case
	}
	// The password value is never exported, the others keep their types.
	b := getJSON(t, s, "/job/p/2/api/json", "alice")
	ps := b["actions"].([]any)[0].(map[string]any)["parameters"].([]any)
	got := map[string]any{}
	for _, p := range ps {
		m := p.(map[string]any)
		got[str(m, "name")] = m["value"]
		if _, has := m["value"]; !has {
			got[str(m, "name")] = "(absent)"
		}
	}
	want := map[string]any{"S": "q", "B": false, "C": "y", "T": "", "P": "(absent)"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("build parameters (-want +got):\n%s", d)
	}
}

func TestDisabledJob_Conflict(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"d": {Disabled: true}})
	if w := call(t, s, "POST", "/job/d/build", "alice"); w.Code != http.StatusConflict {
		t.Errorf("build disabled: %d", w.Code)
	}
	job := getJSON(t, s, "/job/d/api/json", "alice")
	if job["buildable"] != false || str(job, "color") != "disabled" {
		t.Errorf("disabled job: buildable=%v color=%v", job["buildable"], job["color"])
	}
	if err := s.SetJobDisabled("d", false); err != nil {
		t.Fatal(err)
	}
	if w := call(t, s, "POST", "/job/d/build", "alice"); w.Code != http.StatusCreated {
		t.Errorf("build re-enabled: %d", w.Code)
	}
}

func TestStop_AbortsRunningBuild(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, nil, map[string]JobSpec{"j": {Duration: time.Minute, Log: []string{"a", "b", "c"}, Tests: &TestReport{Cases: []TestCase{{Name: "t", Status: "PASSED"}}}}})
	call(t, s, "POST", "/job/j/build", "alice")
	clk.Advance(20 * time.Second) // "a" printed at 15s
	w := call(t, s, "POST", "/job/j/1/stop", "alice")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "http://jenkins.test/job/j/1/" {
		t.Fatalf("stop: %d %q", w.Code, w.Header().Get("Location"))
	}
	b := getJSON(t, s, "/job/j/lastBuild/api/json", "bob")
	if b["building"] != false || str(b, "result") != "ABORTED" || b["duration"] != float64(20000) {
		t.Errorf("aborted build: %v", b)
	}
	if got := call(t, s, "GET", "/job/j/1/consoleText", "bob").Body.String(); got != "Started by user Alice Smith\na\nAborted by Alice Smith\nFinished: ABORTED\n" {
		t.Errorf("console = %q", got)
	}
	if w := call(t, s, "GET", "/job/j/1/testReport/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("aborted build has a test report: %d", w.Code)
	}
	if c := str(getJSON(t, s, "/job/j/api/json", "bob"), "color"); c != "aborted" {
		t.Errorf("color = %q", c)
	}
	// Stopping a finished build changes nothing.
	if w := call(t, s, "POST", "/job/j/1/stop", "alice"); w.Code != http.StatusFound {
		t.Errorf("stop finished build: %d", w.Code)
	}
	clk.Advance(time.Hour)
	if got := str(getJSON(t, s, "/job/j/1/api/json", "bob"), "result"); got != "ABORTED" {
		t.Errorf("result changed to %q", got)
	}
}

func TestBuild_TestReportAndPermalinks(t *testing.T) {
	t.Parallel()
	rep := &TestReport{Cases: []TestCase{
		{Suite: "S", Class: "a.B", Name: "ok", Status: "PASSED", Duration: 0.5},
		{Suite: "S", Class: "a.B", Name: "bad", Status: "FAILED", ErrorDetails: "boom", Duration: 0.25},
		{Suite: "T", Class: "a.C", Name: "skip", Status: "SKIPPED"},
	}}
	s, clk := newTestServer(t, nil, map[string]JobSpec{"j": {Result: "UNSTABLE", Tests: rep}})
	for _, r := range []string{"SUCCESS", "FAILURE"} {
		if _, err := s.AddBuild("j", BuildSpec{Result: r}); err != nil {
			t.Fatal(err)
		}
	}
	call(t, s, "POST", "/job/j/build", "alice")
	if w := call(t, s, "GET", "/job/j/3/testReport/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("report of a running build: %d", w.Code)
	}
	clk.Advance(time.Minute)
	tr := getJSON(t, s, "/job/j/3/testReport/api/json", "bob")
	if str(tr, "_class") != "hudson.tasks.junit.TestResult" || tr["failCount"] != float64(1) || tr["passCount"] != float64(1) ||
		tr["skipCount"] != float64(1) || tr["duration"] != 0.75 || tr["empty"] != false {
		t.Errorf("test result: %v", tr)
	}
	suites := tr["suites"].([]any)
	bad := suites[0].(map[string]any)["cases"].([]any)[1].(map[string]any)
	if str(bad, "className") != "a.B" || str(bad, "errorDetails") != "boom" || str(bad, "status") != "FAILED" || bad["skipped"] != false {
		t.Errorf("failing case: %v", bad)
	}
	if w := call(t, s, "GET", "/job/j/1/testReport/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("report of a build without one: %d", w.Code)
	}
	for link, want := range map[string]float64{"lastBuild": 3, "lastCompletedBuild": 3, "lastSuccessfulBuild": 3, "lastFailedBuild": 2,
		"lastStableBuild": 1, "lastUnstableBuild": 3, "lastUnsuccessfulBuild": 3} {
		if got := getJSON(t, s, "/job/j/"+link+"/api/json?tree=number", "bob")["number"]; got != want {
			t.Errorf("%s = %v, want %v", link, got, want)
		}
	}
	if w := call(t, s, "GET", "/job/j/4/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("missing build: %d", w.Code)
	}
}

// transcript drives a scenario and records every answer.
func transcript(t *testing.T) []string {
	clk := NewFakeClock(t0)
	s := Sample(&Options{Clock: clk, Executors: 1})
	var out []string
	for i, step := range []struct {
		method, path, user string
		advance            time.Duration
	}{
		{"POST", "/job/frontend/job/web-app/build", "alice", time.Second},
		{"POST", "/job/backend/job/api/buildWithParameters?ENV=production", "admin", 4 * time.Second},
		{"POST", "/job/frontend/job/web-app/build", "carol", 7 * time.Second},
		{"GET", "/queue/api/json", "admin", 0},
		{"GET", "/job/frontend/job/web-app/7/logText/progressiveText?start=0", "bob", 20 * time.Second},
		{"GET", "/queue/api/json", "alice", 0},
		{"GET", "/job/frontend/api/json?tree=jobs[name,color,lastBuild[number,building,result]]", "alice", 30 * time.Second},
		{"GET", "/job/backend/job/api/lastBuild/api/json", "admin", time.Minute},
		{"GET", "/job/frontend/job/web-app/8/consoleText", "admin", 0},
	} {
		w := call(t, s, step.method, step.path, step.user)
		out = append(out, strconv.Itoa(i)+" "+strconv.Itoa(w.Code)+" "+w.Header().Get("Location")+" "+w.Body.String())
		clk.Advance(step.advance)
	}
	return out
}

func TestFakeClock_Deterministic(t *testing.T) {
	t.Parallel()
	a, b := transcript(t), transcript(t)
	if d := cmp.Diff(a, b); d != "" {
		t.Errorf("two identical runs differ (-first +second):\n%s", d)
	}
}
