package jenkinstest

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// queueItem triggers path as alice and returns the status and the queue
// item's JSON.
func triggerItem(t *testing.T, s *Server, path string, opts ...func(*http.Request)) (int, map[string]any) {
	t.Helper()
	w := call(t, s, "POST", path, "alice", opts...)
	if w.Code != http.StatusCreated && w.Code != http.StatusSeeOther {
		t.Fatalf("POST %s: %d %q", path, w.Code, w.Body.String())
	}
	return w.Code, getJSON(t, s, queuePath(t, w.Header().Get("Location")), "alice")
}

func TestTrigger_FileParameterValueIsDropped(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"p": {QuietPeriod: 5 * time.Second, Params: []Param{
		{Name: "F", Type: "file", Description: "a file"},
		{Name: "S", Type: "string", Default: "d"},
	}}})
	// get_job's view: FileParameterDefinition, no default.
	j := getJSON(t, s, "/job/p/api/json?tree=property[parameterDefinitions[name,type,defaultParameterValue[value]]]", "alice")
	defs := j["property"].([]any)[0].(map[string]any)["parameterDefinitions"].([]any)
	f := defs[0].(map[string]any)
	if str(f, "_class") != "hudson.model.FileParameterDefinition" || str(f, "type") != "FileParameterDefinition" {
		t.Errorf("file parameter definition: %v", f)
	}
	if v, ok := f["defaultParameterValue"]; !ok || v != nil {
		t.Errorf("file parameter default: %v, want null", f)
	}

	// A form value for a file parameter is dropped: the item has only S.
	_, q := triggerItem(t, s, "/job/p/buildWithParameters?F=/etc/passwd&S=x")
	if q["params"] != "\nS=x" {
		t.Errorf("params with a form value for F: %q, want only S", q["params"])
	}
	ps := q["actions"].([]any)[0].(map[string]any)["parameters"].([]any)
	if len(ps) != 1 || ps[0].(map[string]any)["name"] != "S" {
		t.Errorf("parameters: %v", ps)
	}

	// An uploaded file part is a FileParameterValue, without a value.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("F", `C:\tmp\notes.txt`)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write([]byte("hello"))
	_ = mw.WriteField("S", "up")
	_ = mw.Close()
	code, q := triggerItem(t, s, "/job/p/buildWithParameters", func(r *http.Request) {
		r.Body = httpBody(body.String())
		r.ContentLength = int64(body.Len())
		r.Header.Set("Content-Type", mw.FormDataContentType())
	})
	if code != http.StatusCreated || q["params"] != "\nF=notes.txt\nS=up" {
		t.Errorf("upload: %d params %q", code, q["params"])
	}
	fv := q["actions"].([]any)[0].(map[string]any)["parameters"].([]any)[0].(map[string]any)
	if _, has := fv["value"]; has || str(fv, "_class") != "hudson.model.FileParameterValue" {
		t.Errorf("file value: %v", fv)
	}
}

func TestQueue_FoldingKeepsTheEarlierDueTimeAndAddsTheCause(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, nil, map[string]JobSpec{"j": {QuietPeriod: 10 * time.Second}})
	code, first := triggerItem(t, s, "/job/j/build")
	if code != http.StatusCreated || first["timestamp"] != float64(t0.Add(10*time.Second).UnixMilli()) {
		t.Fatalf("first: %d %v", code, first["timestamp"])
	}
	clk.Advance(5 * time.Second)
	// Queue.scheduleInternal: "always use the shorter of the available due
	// times"; a duplicate does not restart the quiet period. build (no
	// parameters) answers 201 even then (JENKINS-66105).
	code, again := triggerItem(t, s, "/job/j/build")
	if code != http.StatusCreated || again["id"] != first["id"] {
		t.Fatalf("second: %d id %v, want 201 and the same item", code, again["id"])
	}
	if again["timestamp"] != first["timestamp"] {
		t.Errorf("due time after folding: %v, want the earlier %v", again["timestamp"], first["timestamp"])
	}
	causes := again["actions"].([]any)[0].(map[string]any)["causes"].([]any)
	if len(causes) != 2 {
		t.Errorf("causes after folding: %v, want the user's cause twice", causes)
	}
	// A shorter delay does move it earlier.
	_, sooner := triggerItem(t, s, "/job/j/build?delay=2sec")
	if sooner["timestamp"] != float64(t0.Add(7*time.Second).UnixMilli()) {
		t.Errorf("due time after a 2 s delay at +5 s: %v", sooner["timestamp"])
	}
	clk.Advance(2 * time.Second)
	b := getJSON(t, s, "/job/j/1/api/json?tree=building,timestamp", "alice")
	if b["building"] != true || b["timestamp"] != float64(t0.Add(7*time.Second).UnixMilli()) {
		t.Errorf("build: %v", b)
	}
	if got := call(t, s, "GET", "/job/j/1/consoleText", "alice").Body.String(); !strings.HasPrefix(got, strings.Repeat("Started by user Alice Smith\n", 3)) {
		t.Errorf("console of a build with three folded causes: %q", got)
	}
}

func TestQuietPeriod_InstanceDefaultIsFiveSeconds(t *testing.T) {
	t.Parallel()
	clk := NewFakeClock(t0)
	s := New(&Options{Clock: clk})
	s.AddUser("alice", "Alice", "alice-token")
	s.Grant("alice", "", PermAdminister)
	for p, spec := range map[string]JobSpec{"inherit": {}, "own": {QuietPeriod: 2 * time.Second}, "none": {QuietPeriod: NoQuietPeriod}} {
		if err := s.AddJob(p, spec); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		job  string
		want time.Duration
	}{{"inherit", 5 * time.Second}, {"own", 2 * time.Second}} {
		_, q := triggerItem(t, s, "/job/"+tc.job+"/build")
		if str(q, "_class") != "hudson.model.Queue$WaitingItem" || q["timestamp"] != float64(t0.Add(tc.want).UnixMilli()) {
			t.Errorf("%s: %s due %v, want a WaitingItem due at +%v", tc.job, str(q, "_class"), q["timestamp"], tc.want)
		}
	}
	if _, q := triggerItem(t, s, "/job/none/build"); str(q, "_class") != "hudson.model.Queue$LeftItem" {
		t.Errorf("a job whose quiet period is 0: %s", str(q, "_class"))
	}

	s2 := New(&Options{Clock: clk, QuietPeriod: 8 * time.Second})
	s2.AddUser("alice", "Alice", "alice-token")
	s2.Grant("alice", "", PermAdminister)
	if err := s2.AddJob("j", JobSpec{}); err != nil {
		t.Fatal(err)
	}
	if _, q := triggerItem(t, s2, "/job/j/build"); q["timestamp"] != float64(t0.Add(8*time.Second).UnixMilli()) {
		t.Errorf("instance quiet period 8 s: due %v", q["timestamp"])
	}
}

func TestTrigger_DelayIsMillisecondsUnlessSuffixedSec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		delay  string
		status int
		due    time.Duration // -1: started at once
	}{
		// jenkins.util.TimeDuration.fromString then getTimeInSeconds.
		{"10", 201, -1},
		{"999", 201, -1},
		{"1500", 201, time.Second},
		{"10000", 201, 10 * time.Second},
		{"10sec", 201, 10 * time.Second},
		{" 3 secs ", 201, 3 * time.Second},
		{"10ms", 500, 0},
		{"1min", 500, 0},
		{"1.5sec", 500, 0},
		{"", 500, 0},
	} {
		s, _ := newTestServer(t, nil, map[string]JobSpec{"j": {QuietPeriod: 30 * time.Second}})
		w := call(t, s, "POST", "/job/j/build", "alice", withForm(url.Values{"delay": {tc.delay}}))
		if w.Code != tc.status {
			t.Errorf("delay %q: %d %q, want %d", tc.delay, w.Code, w.Body.String(), tc.status)
			continue
		}
		if tc.status != 201 {
			continue
		}
		q := getJSON(t, s, queuePath(t, w.Header().Get("Location")), "alice")
		switch {
		case tc.due < 0:
			if str(q, "_class") != "hudson.model.Queue$LeftItem" {
				t.Errorf("delay %q: %s, want started at once", tc.delay, str(q, "_class"))
			}
		case q["timestamp"] != float64(t0.Add(tc.due).UnixMilli()):
			t.Errorf("delay %q: due %v, want +%v", tc.delay, q["timestamp"], tc.due)
		}
	}
}

func TestTrigger_BadDelayFailsBeforeThePermissionCheck(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"j": {}})
	// Stapler binds the @QueryParameter before doBuild runs.
	if w := call(t, s, "POST", "/job/j/build?delay=soon", "bob"); w.Code != http.StatusInternalServerError {
		t.Errorf("bob with a bad delay: %d, want 500", w.Code)
	}
	if w := call(t, s, "POST", "/job/j/build?delay=1", "bob"); w.Code != http.StatusForbidden {
		t.Errorf("bob with a good delay: %d, want 403", w.Code)
	}
}

func TestStop_RedirectsToTheBuildAsRequested(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, &Options{Prefix: "/ci"}, map[string]JobSpec{"j": {Duration: time.Minute}})
	if w := call(t, s, "POST", "/ci/job/j/build", "alice"); w.Code != http.StatusCreated {
		t.Fatalf("build: %d", w.Code)
	}
	// HttpResponses.forwardToPreviousPage: "." against the request URI.
	w := call(t, s, "POST", "/ci/job/j/lastBuild/stop", "alice")
	if w.Code != http.StatusFound || w.Header().Get("Location") != "http://jenkins.test/ci/job/j/lastBuild/" {
		t.Errorf("stop: %d %q", w.Code, w.Header().Get("Location"))
	}
	// ... or the Referer, when the request has one.
	w = call(t, s, "POST", "/ci/job/j/1/stop", "alice", withHeader("Referer", "http://jenkins.test/ci/job/j/"))
	if w.Code != http.StatusFound || w.Header().Get("Location") != "http://jenkins.test/ci/job/j/" {
		t.Errorf("stop with a Referer: %d %q", w.Code, w.Header().Get("Location"))
	}
	// bob may not cancel: a running build checks Item.Cancel...
	if w := call(t, s, "POST", "/ci/job/j/build", "alice"); w.Code != http.StatusCreated {
		t.Fatalf("build: %d", w.Code)
	}
	if w := call(t, s, "POST", "/ci/job/j/2/stop", "bob"); w.Code != http.StatusForbidden {
		t.Errorf("bob stops a running build: %d", w.Code)
	}
	// ...a finished freestyle build does not.
	if w := call(t, s, "POST", "/ci/job/j/1/stop", "bob"); w.Code != http.StatusFound {
		t.Errorf("bob stops a finished build: %d", w.Code)
	}
}

func TestTestReport_Aggregated(t *testing.T) {
	t.Parallel()
	agg := &TestReport{Children: []ChildReport{
		{Name: "jdk=17", Cases: []TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "REGRESSION", ErrorDetails: "boom"}}},
		{Name: "jdk=21", Cases: []TestCase{{Class: "a.B", Name: "one", Status: "FIXED"}, {Class: "a.B", Name: "two", Status: "SKIPPED"}}},
	}}
	for _, legacy := range []bool{false, true} {
		s, _ := newTestServer(t, &Options{LegacyJUnitStatus: legacy}, map[string]JobSpec{"m": {}})
		if _, err := s.AddBuild("m", BuildSpec{Tests: agg}); err != nil {
			t.Fatal(err)
		}
		r := getJSON(t, s, "/job/m/1/testReport/api/json", "bob")
		if str(r, "_class") != "hudson.matrix.MatrixTestResult" || r["totalCount"] != float64(4) || r["failCount"] != float64(1) || r["skipCount"] != float64(1) {
			t.Errorf("aggregated report: %v", r)
		}
		if _, has := r["passCount"]; has {
			t.Errorf("an aggregated report has no passCount: %v", r)
		}
		kids := r["childReports"].([]any)
		if len(kids) != 2 {
			t.Fatalf("childReports: %v", kids)
		}
		child := kids[1].(map[string]any)["child"].(map[string]any)
		if str(child, "_class") != "hudson.matrix.MatrixRun" || str(child, "url") != "http://jenkins.test/job/m/jdk=21/1/" {
			t.Errorf("child: %v", child)
		}
		res := kids[0].(map[string]any)["result"].(map[string]any)
		cases := res["suites"].([]any)[0].(map[string]any)["cases"].([]any)
		want := "FAILED"
		if legacy {
			want = "REGRESSION"
		}
		if got := str(cases[1].(map[string]any), "status"); got != want {
			t.Errorf("legacy %t: status of a regression %q, want %q", legacy, got, want)
		}
		b := getJSON(t, s, "/job/m/1/api/json?tree=actions[totalCount,failCount,urlName]", "bob")
		found := false
		for _, a := range b["actions"].([]any) {
			if m := a.(map[string]any); str(m, "_class") == "hudson.matrix.MatrixTestResult" && m["totalCount"] == float64(4) {
				found = true
			}
		}
		if !found {
			t.Errorf("build actions: %v", b["actions"])
		}
	}
}

func TestTestReport_PipelinePublishesWhileRunning(t *testing.T) {
	t.Parallel()
	tests := &TestReport{Cases: []TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "FAILED"}}}
	s, clk := newTestServer(t, nil, map[string]JobSpec{
		"pipe": {Class: ClassWorkflowJob, Duration: 21 * time.Second, Tests: tests},
		"free": {Duration: 21 * time.Second, Tests: tests},
	})
	for _, j := range []string{"pipe", "free"} {
		if w := call(t, s, "POST", "/job/"+j+"/build", "alice"); w.Code != http.StatusCreated {
			t.Fatalf("build %s: %d", j, w.Code)
		}
	}
	if w := call(t, s, "GET", "/job/pipe/1/testReport/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("before the junit step: %d", w.Code)
	}
	// The default Pipeline log has 20 lines over 21 s, one a second; the
	// junit step is line 15.
	clk.Advance(15 * time.Second)
	r := getJSON(t, s, "/job/pipe/1/testReport/api/json?tree=failCount,passCount", "bob")
	if r["failCount"] != float64(1) || r["passCount"] != float64(1) {
		t.Errorf("report of the running pipeline: %v", r)
	}
	if b := getJSON(t, s, "/job/pipe/1/api/json?tree=building", "bob"); b["building"] != true {
		t.Errorf("the pipeline should still run: %v", b)
	}
	// A freestyle build's JUnitResultArchiver runs after its build steps.
	if w := call(t, s, "GET", "/job/free/1/testReport/api/json", "bob"); w.Code != http.StatusNotFound {
		t.Errorf("running freestyle build: %d", w.Code)
	}
	// Stopping the pipeline keeps the report it published.
	if w := call(t, s, "POST", "/job/pipe/1/stop", "alice"); w.Code != http.StatusFound {
		t.Fatalf("stop: %d", w.Code)
	}
	if w := call(t, s, "GET", "/job/pipe/1/testReport/api/json", "bob"); w.Code != http.StatusOK {
		t.Errorf("report of the aborted pipeline: %d", w.Code)
	}
}
