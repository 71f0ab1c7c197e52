package jenkinstest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// inputServer has one Pipeline job, "flow", whose build #1 waits at an
// input step with the given submitter list, and users: admin, builder
// (Read+Build), canceller (Read+Cancel), reader (Read), Mallory and
// "team-member" (Read, in group "Deployers").
func inputServer(t *testing.T, submitter string) (*Server, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	s := New(&Options{Clock: clk})
	for _, u := range []string{"admin", "builder", "canceller", "reader", "Mallory", "team-member"} {
		s.AddUser(u, "", u+"-token")
	}
	s.Grant("admin", "", PermAdminister)
	s.Grant("builder", "", PermRead, PermBuild)
	s.Grant("canceller", "", PermRead, PermCancel)
	for _, u := range []string{"reader", "Mallory", "team-member"} {
		s.Grant(u, "", PermRead)
	}
	s.SetUserGroups("team-member", "Deployers")
	if err := s.AddJob("flow", JobSpec{Class: ClassWorkflowJob}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddPipelineBuild("flow", PipelineBuildSpec{Pipeline: PipelineSpec{Stages: []StageSpec{
		{Name: "Build", Steps: []StepSpec{{Function: "sh", Log: []string{"+ make"}}}},
		{Name: "Gate", Steps: []StepSpec{{Input: &InputSpec{ID: "Go", Message: "Ship it?", Submitter: submitter,
			Params: []Param{{Name: "ENV", Type: "choice", Choices: []string{"staging", "prod"}}}}}}},
		{Name: "Ship", Steps: []StepSpec{{Function: "sh", Log: []string{"+ ship"}, Duration: 5 * time.Second}}},
	}}}); err != nil {
		t.Fatal(err)
	}
	return s, clk
}

func waiting(t *testing.T, s *Server) bool {
	t.Helper()
	var pending []map[string]any
	w := call(t, s, "GET", "/job/flow/1/wfapi/pendingInputActions", "admin")
	if err := json.Unmarshal(w.Body.Bytes(), &pending); err != nil {
		t.Fatalf("pendingInputActions: %v %s", err, w.Body)
	}
	return len(pending) == 1
}

func proceedForm(env string) func(*http.Request) {
	return withForm(url.Values{"json": {`{"parameter":[{"name":"ENV","value":"` + env + `"}]}`}})
}

// TestInput_CanSettle pins InputStepExecution.canSettle and preAbortCheck:
// each case fails if its rule is removed (a user who may not settle is
// refused with a Failure, 400 and X-Error, and the build still waits).
func TestInput_CanSettle(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, submitter, user, verb string
		allowed                     bool
	}{
		{"no submitter: Item.Build proceeds", "", "builder", "proceedEmpty", true},
		{"no submitter: Read only may not proceed", "", "reader", "proceedEmpty", false},
		{"no submitter: Item.Cancel alone may not proceed", "", "canceller", "proceedEmpty", false},
		{"no submitter: Item.Cancel aborts", "", "canceller", "abort", true},
		{"no submitter: Read only may not abort", "", "reader", "abort", false},
		{"submitter id, other case", "mallory", "Mallory", "proceedEmpty", true},
		{"submitter list, spaces trimmed", "alice, mallory", "Mallory", "proceedEmpty", true},
		{"submitter group, other case", "deployers", "team-member", "proceedEmpty", true},
		{"submitter list: Item.Build is not enough", "mallory", "builder", "proceedEmpty", false},
		{"submitter list: administrator", "mallory", "admin", "proceedEmpty", true},
		{"submitter list: Item.Cancel aborts", "mallory", "canceller", "abort", true},
		{"submitter list: a submitter aborts without Item.Cancel", "mallory", "Mallory", "abort", true},
		{"submitter list: others may not abort", "mallory", "reader", "abort", false},
		{"authenticated authority", "authenticated", "reader", "proceedEmpty", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, _ := inputServer(t, tc.submitter)
			w := call(t, s, "POST", "/job/flow/1/input/Go/"+tc.verb, tc.user)
			if tc.allowed {
				if w.Code != http.StatusOK || waiting(t, s) {
					t.Fatalf("%s %s: %d %q, still waiting %v; want 200 and settled", tc.user, tc.verb, w.Code, w.Body, waiting(t, s))
				}
				return
			}
			if w.Code != http.StatusBadRequest || w.Header().Get("X-Error") == "" || !strings.HasPrefix(w.Header().Get("X-Error"), "You need to") {
				t.Fatalf("%s %s: %d X-Error %q; want a Failure (400 with X-Error)", tc.user, tc.verb, w.Code, w.Header().Get("X-Error"))
			}
			if !waiting(t, s) {
				t.Fatal("a refused answer settled the input")
			}
		})
	}
}

// TestInput_Failure pins the refusal's form: the error view's 400 with
// X-Error naming the submitters, an HTML page, never a 403.
func TestInput_Failure(t *testing.T) {
	t.Parallel()
	s, _ := inputServer(t, "mallory,ops")
	w := call(t, s, "POST", "/job/flow/1/input/Go/proceed", "reader", proceedForm("prod"))
	if w.Code != http.StatusBadRequest || w.Header().Get("X-Error") != "You need to be mallory,ops to submit this." ||
		!strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("%d %v", w.Code, w.Header())
	}
	w = call(t, s, "POST", "/job/flow/1/input/Go/abort", "reader")
	if w.Code != http.StatusBadRequest || w.Header().Get("X-Error") != "You need to be 'mallory,ops' (or have Job/Cancel permissions) to cancel this." {
		t.Fatalf("abort: %d %v", w.Code, w.Header())
	}
	// An unknown input id, or a build that cannot be seen: 404.
	if w := call(t, s, "POST", "/job/flow/1/input/Nope/abort", "admin"); w.Code != http.StatusNotFound {
		t.Fatalf("unknown id: %d", w.Code)
	}
	if w := call(t, s, "GET", "/job/flow/1/input/Go/abort", "admin"); w.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", w.Code)
	}
}

// TestInput_SubmitWithoutProceedAborts pins doSubmit: without a "proceed"
// field it aborts the build.
func TestInput_SubmitWithoutProceedAborts(t *testing.T) {
	t.Parallel()
	s, _ := inputServer(t, "")
	if w := call(t, s, "POST", "/job/flow/1/input/Go/submit", "builder", withForm(url.Values{"json": {"{}"}})); w.Code != http.StatusOK {
		t.Fatalf("submit: %d", w.Code)
	}
	b := getJSON(t, s, "/job/flow/1/api/json", "admin")
	if b["result"] != "ABORTED" || b["building"] != false {
		t.Fatalf("after submit without proceed: %v %v", b["result"], b["building"])
	}
	if !strings.Contains(call(t, s, "GET", "/job/flow/1/consoleText", "admin").Body.String(), "Rejected by builder") {
		t.Error("console does not say who rejected")
	}
}

// TestInput_ProceedRunsTheRest: proceeding with parameters checks them
// (an unknown name, a value outside the choices: Jenkins's 500 page, the
// input still waits), then the build goes on and ends.
func TestInput_ProceedRunsTheRest(t *testing.T) {
	t.Parallel()
	s, clk := inputServer(t, "")
	for _, form := range []url.Values{
		{"json": {`{"parameter":[{"name":"ENV","value":"moon"}]}`}},
		{"json": {`{"parameter":{"name":"NOPE","value":"x"}}`}},
		{},
	} {
		if w := call(t, s, "POST", "/job/flow/1/input/Go/proceed", "builder", withForm(form)); w.Code != http.StatusInternalServerError || !waiting(t, s) {
			t.Fatalf("%v: %d, waiting %v", form, w.Code, waiting(t, s))
		}
	}
	clk.Advance(time.Minute)
	if w := call(t, s, "POST", "/job/flow/1/input/Go/proceed", "builder", proceedForm("prod")); w.Code != http.StatusOK {
		t.Fatalf("proceed: %d %s", w.Code, w.Body)
	}
	run := getJSON(t, s, "/job/flow/1/wfapi/describe", "admin")
	if run["status"] != "IN_PROGRESS" {
		t.Fatalf("after proceed: %v", run["status"])
	}
	clk.Advance(10 * time.Second)
	run = getJSON(t, s, "/job/flow/1/wfapi/describe", "admin")
	stages := run["stages"].([]any)
	if run["status"] != "SUCCESS" || len(stages) != 3 {
		t.Fatalf("finished: %v, %d stages", run["status"], len(stages))
	}
	gate := stages[1].(map[string]any)
	if gate["status"] != "SUCCESS" || gate["pauseDurationMillis"].(float64) <= 0 {
		t.Errorf("gate stage %v", gate)
	}
	console := call(t, s, "GET", "/job/flow/1/consoleText", "admin").Body.String()
	if !strings.Contains(console, "Approved by builder") || !strings.HasSuffix(console, "Finished: SUCCESS\n") {
		t.Errorf("console: %q", console)
	}
}

// TestWfapi_StagesAndStepLogs: a failed parallel run's stages (two named
// "Test"), a stage's steps with their logs, the step log with CR LF line
// ends, and wfapi/log's HTML tail; a freestyle build has no wfapi.
func TestWfapi_StagesAndStepLogs(t *testing.T) {
	t.Parallel()
	s := Sample(&Options{Clock: NewFakeClock(t0), Version: CurrentLTS})
	run := getJSON(t, s, "/job/frontend/job/release/2/wfapi/describe", "admin")
	if run["status"] != "FAILED" {
		t.Fatalf("status %v", run["status"])
	}
	var names []string
	var linux map[string]any
	for _, st := range run["stages"].([]any) {
		m := st.(map[string]any)
		names = append(names, m["name"].(string)+"="+m["status"].(string))
		if m["name"] == "Test" && m["status"] == "FAILED" {
			linux = m
		}
	}
	if got := strings.Join(names, ","); got != "Build=SUCCESS,Test=FAILED,Test=FAILED,Test=SUCCESS,Approve=NOT_EXECUTED,Deploy=NOT_EXECUTED" {
		t.Fatalf("stages %s", got)
	}
	node := getJSON(t, s, "/job/frontend/job/release/2/execution/node/"+str(linux, "id")+"/wfapi/describe", "admin")
	steps := node["stageFlowNodes"].([]any)
	if len(steps) == 0 {
		t.Fatalf("no steps in %v", node)
	}
	step := steps[0].(map[string]any)
	logPath := "/job/frontend/job/release/2/execution/node/" + str(step, "id") + "/log/logText/progressiveText?start=0"
	w := call(t, s, "GET", logPath, "admin")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "3 failing\r\n") || w.Header().Get("X-More-Data") != "" {
		t.Fatalf("step log: %d %q", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "[Pipeline]") {
		t.Error("a step log holds the overall log's [Pipeline] lines")
	}
	nl := getJSON(t, s, "/job/frontend/job/release/2/execution/node/"+str(step, "id")+"/wfapi/log", "admin")
	if nl["nodeStatus"] != "FAILED" || !strings.Contains(nl["text"].(string), "AssertionError") {
		t.Errorf("wfapi/log %v", nl)
	}
	if w := call(t, s, "GET", "/job/frontend/job/web-app/6/wfapi/describe", "admin"); w.Code != http.StatusNotFound {
		t.Errorf("freestyle wfapi: %d", w.Code)
	}
	// The build's InputAction exports the waiting input's submitter.
	b := getJSON(t, s, "/job/frontend/job/release/3/api/json?tree=actions[executions[id,input[id,submitter]]]", "admin")
	data, _ := json.Marshal(b)
	if !strings.Contains(string(data), `"submitter":"release-managers"`) || !strings.Contains(string(data), `"id":"Release"`) {
		t.Errorf("InputAction: %s", data)
	}
}
