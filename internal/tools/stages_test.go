package tools_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// The sample's frontend/release: #2 failed in its linux "Test" stage (two
// stages are named "Test", plus the parallel stage holding them), #3
// waits at input "Release" (submitter release-managers: alice's group);
// frontend/site-preview #1 waits at input "Publish" (no submitter).

func stageByName(t *testing.T, out map[string]any, name, status string) map[string]any {
	t.Helper()
	for _, s := range out["stages"].([]any) {
		m := s.(map[string]any)
		if m["name"] == name && (status == "" || m["status"] == status) {
			return m
		}
	}
	t.Fatalf("no stage %s (%s) in %v", name, status, out["stages"])
	return nil
}

func TestGetPipelineStages_FailedRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	out := e.ok(t, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 2})
	if out["build"] != 2.0 || out["status"] != "FAILED" {
		t.Fatalf("run: %v", out)
	}
	var got []string
	for _, s := range out["stages"].([]any) {
		m := s.(map[string]any)
		got = append(got, m["name"].(string)+"="+m["status"].(string))
		if m["status"] == "NOT_EXECUTED" && m["start_time"] != nil {
			t.Errorf("a stage that never ran has a start time: %v", m)
		}
	}
	if strings.Join(got, ",") != "Build=SUCCESS,Test=FAILED,Test=FAILED,Test=SUCCESS,Approve=NOT_EXECUTED,Deploy=NOT_EXECUTED" {
		t.Errorf("stages %v", got)
	}
	build := stageByName(t, out, "Build", "")
	if st, _ := build["start_time"].(string); !strings.HasSuffix(st, "Z") || build["duration_ms"].(float64) < 20000 {
		t.Errorf("Build stage times: %v", build)
	}
	var failedWithError int
	for _, s := range out["stages"].([]any) {
		if m := s.(map[string]any); m["status"] == "FAILED" && strings.Contains(fmt.Sprint(m["error"]), "exit code 3") {
			failedWithError++
		}
	}
	if failedWithError == 0 {
		t.Errorf("no failed stage says why: %v", out["stages"])
	}
	// The last build by default: #3, waiting at its approval.
	last := e.ok(t, "get_pipeline_stages", map[string]any{"job": "frontend/release"})
	if last["build"] != 3.0 || last["status"] != "PAUSED_PENDING_INPUT" || stageByName(t, last, "Approve", "")["status"] != "PAUSED_PENDING_INPUT" {
		t.Errorf("last build: %v", last)
	}
	// A freestyle build: conflict; a missing build and a hidden job: not_found.
	if e := e.fail(t, "get_pipeline_stages", map[string]any{"job": "frontend/web-app", "build": 6}, "conflict"); !strings.Contains(e["message"].(string), "not a Pipeline build") {
		t.Errorf("freestyle: %v", e)
	}
	e.fail(t, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 99}, "not_found")
	carol := newEnv(t, jenkinstest.SampleCarol, nil)
	hidden := carol.fail(t, "get_pipeline_stages", map[string]any{"job": "backend/api"}, "not_found")
	missing := carol.fail(t, "get_pipeline_stages", map[string]any{"job": "backend/nope"}, "not_found")
	if strings.Replace(hidden["message"].(string), "api", "nope", 1) != missing["message"] {
		t.Errorf("hidden and missing differ: %q / %q", hidden["message"], missing["message"])
	}
}

func TestGetStageLog_ByIDNameAndBounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	stages := e.ok(t, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 2})
	var testIDs []string
	var failedID string
	for _, s := range stages["stages"].([]any) {
		m := s.(map[string]any)
		if m["name"] == "Test" {
			testIDs = append(testIDs, m["id"].(string))
			if m["status"] == "FAILED" {
				failedID = m["id"].(string)
			}
		}
	}
	// A name shared by several stages: invalid_argument listing their ids.
	amb := e.fail(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": "Test"}, "invalid_argument")
	for _, id := range testIDs {
		if !strings.Contains(amb["message"].(string), id) {
			t.Errorf("ambiguous name: %q lacks id %s", amb["message"], id)
		}
	}
	// By id: the failing linux stage's own output, without the overall
	// log's [Pipeline] lines or console notes.
	out := e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID})
	text := out["text"].(string)
	if !strings.Contains(text, "3 failing") || strings.Contains(text, "[Pipeline]") || strings.Contains(text, "\x1b") || strings.Contains(text, "\r") {
		t.Errorf("stage text %q", text)
	}
	if out["truncated"] != false || out["status"] != "FAILED" || out["stage"].(map[string]any)["id"] != failedID {
		t.Errorf("stage log %v", out)
	}
	// By a unique name.
	b := e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": "Build"})
	if !strings.Contains(b["text"].(string), "webpack compiled successfully") {
		t.Errorf("Build stage: %q", b["text"])
	}
	// A stage that does not exist: not_found naming the stages.
	nf := e.fail(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": "Lint"}, "not_found")
	if !strings.Contains(nf["message"].(string), "Deploy (id ") {
		t.Errorf("unknown stage: %v", nf)
	}
	// max_bytes keeps the head, tail_lines the tail.
	head := e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "max_bytes": 20})
	if h := head["text"].(string); len(h) != 20 || !strings.HasPrefix(text, h) || head["truncated"] != true {
		t.Errorf("head %q truncated %v", h, head["truncated"])
	}
	tail := e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "tail_lines": 2})
	if tl := tail["text"].(string); !strings.HasSuffix(text, tl) || strings.Count(tl, "\n") != 2 || tail["truncated"] != true {
		t.Errorf("tail %q truncated %v", tl, tail["truncated"])
	}
	// Bounds at their limits and one past.
	e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "max_bytes": 1 << 20, "tail_lines": 10000})
	e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "max_bytes": 1})
	for _, args := range []map[string]any{
		{"max_bytes": 1<<20 + 1}, {"max_bytes": 0}, {"tail_lines": 10001}, {"tail_lines": 0},
		{"stage": strings.Repeat("x", 257)}, {"stage": ""}, {"stage": "a\nb"},
	} {
		a := map[string]any{"job": "frontend/release", "build": 2, "stage": failedID}
		for k, v := range args {
			a[k] = v
		}
		e.fail(t, "get_stage_log", a, "invalid_argument")
	}
	e.ok(t, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": strings.Repeat("x", 256)[:0] + failedID})
	// Every request went with bob's own credential.
	for _, r := range e.sim.Requests() {
		if r.User != jenkinstest.SampleBob {
			t.Errorf("request %s %s as %q", r.Method, r.Path, r.User)
		}
	}
}

func TestListPendingInputs_SubmitterAndParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	out := e.ok(t, "list_pending_inputs", map[string]any{"job": "frontend/release"})
	ins := out["inputs"].([]any)
	if out["build"] != 3.0 || len(ins) != 1 {
		t.Fatalf("inputs %v", out)
	}
	in := ins[0].(map[string]any)
	if in["id"] != "Release" || in["submitter"] != jenkinstest.SampleReleaseManagers || in["proceed_text"] != "Release" || in["message"] != "Release this build to production?" {
		t.Errorf("input %v", in)
	}
	params := in["parameters"].([]any)
	if len(params) != 2 || params[0].(map[string]any)["type"] != "choice" || params[0].(map[string]any)["default"] != "eu-west" {
		t.Errorf("parameters %v", params)
	}
	// No submitter: the field is absent. A finished build waits for none.
	pre := e.ok(t, "list_pending_inputs", map[string]any{"job": "frontend/site-preview"})
	if p := pre["inputs"].([]any)[0].(map[string]any); p["submitter"] != nil {
		t.Errorf("site-preview input %v", p)
	}
	if done := e.ok(t, "list_pending_inputs", map[string]any{"job": "frontend/release", "build": 1}); len(done["inputs"].([]any)) != 0 {
		t.Errorf("finished build: %v", done)
	}
	e.fail(t, "list_pending_inputs", map[string]any{"job": "frontend/web-app"}, "conflict")
}

func submitPaths(e *testEnv) []string {
	var out []string
	for _, r := range e.posts() {
		out = append(out, r.User+" "+r.Path)
	}
	return out
}

func TestSubmitInput_JenkinsDecidesAsTheUser(t *testing.T) {
	t.Parallel()
	release := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed"}
	// bob (Read) and carol (Build, not a submitter): Jenkins refuses,
	// the build still waits.
	for _, u := range []string{jenkinstest.SampleBob, jenkinstest.SampleCarol} {
		e := newEnv(t, u, nil)
		for _, action := range []string{"proceed", "abort"} {
			a := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": action}
			er := e.fail(t, "submit_input", a, "forbidden")
			if !strings.Contains(er["message"].(string), "You need to be") {
				t.Errorf("%s %s: %v", u, action, er)
			}
		}
		if st := e.ok(t, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 3}); st["status"] != "PAUSED_PENDING_INPUT" {
			t.Errorf("%s's refused answer changed the build: %v", u, st["status"])
		}
		recs := e.audit.all()
		if r := recs[len(recs)-2]; r.Decision != "deny" || r.Code != "forbidden" {
			t.Errorf("audit of a refusal: %+v", r)
		}
	}

	e := newEnv(t, jenkinstest.SampleAlice, nil)
	// Parameters are checked against the input's definitions first:
	// nothing is posted.
	for _, params := range []map[string]any{{"TARGETS": "eu-west"}, {"TARGET": "moon"}, {"TARGET": true}} {
		a := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed", "parameters": params}
		er := e.fail(t, "submit_input", a, "invalid_argument")
		if strings.Contains(er["message"].(string), "moon") || strings.Contains(lastRecord(t, e).Reason, "moon") {
			t.Errorf("a refused value in the answer or audit: %v", er)
		}
	}
	e.fail(t, "submit_input", map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "abort", "parameters": map[string]any{"TARGET": "us-east"}}, "invalid_argument")
	e.fail(t, "submit_input", map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "approve"}, "invalid_argument")
	e.fail(t, "submit_input", map[string]any{"job": "frontend/release", "build": 3, "input_id": "Nope", "action": "proceed"}, "not_found")
	e.fail(t, "submit_input", map[string]any{"job": "frontend/release", "build": 3, "input_id": strings.Repeat("x", 257), "action": "proceed"}, "invalid_argument")
	if p := e.posts(); len(p) != 0 {
		t.Fatalf("refused calls posted: %v", submitPaths(e))
	}
	// alice is in release-managers: proceed, with parameters.
	args := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed", "parameters": map[string]any{"TARGET": "us-east", "NOTES": "secret-ish note"}}
	out := e.ok(t, "submit_input", args)
	if out["submitted"] != true || out["action"] != "proceed" || out["build_status"] != "IN_PROGRESS" {
		t.Errorf("proceed: %v", out)
	}
	paths := submitPaths(e)
	if len(paths) != 1 || paths[0] != "alice /job/frontend/job/release/3/input/Release/proceed" {
		t.Errorf("posts %v", paths)
	}
	rec := lastRecord(t, e)
	if rec.Decision != "allow" || rec.Resource != `frontend/release input "Release" proceed with parameters NOTES, TARGET` ||
		strings.Contains(rec.Resource+rec.Reason, "us-east") || strings.Contains(rec.Resource+rec.Reason, "secret-ish") {
		t.Errorf("audit record %+v", rec)
	}
	// Answered once: again is not_found.
	e.fail(t, "submit_input", release, "not_found")
	_ = release
}

func TestSubmitInput_NoSubmitterBuildOrCancel(t *testing.T) {
	t.Parallel()
	preview := func(action string) map[string]any {
		return map[string]any{"job": "frontend/site-preview", "build": 1, "input_id": "Publish", "action": action}
	}
	// bob has neither Item.Build nor Item.Cancel.
	bob := newEnv(t, jenkinstest.SampleBob, nil)
	bob.fail(t, "submit_input", preview("proceed"), "forbidden")
	bob.fail(t, "submit_input", preview("abort"), "forbidden")
	// carol has Item.Build: proceed, with no parameters (proceedEmpty).
	carol := newEnv(t, jenkinstest.SampleCarol, nil)
	if out := carol.ok(t, "submit_input", preview("proceed")); out["build_status"] != "SUCCESS" && out["build_status"] != "IN_PROGRESS" {
		t.Errorf("carol proceed: %v", out)
	}
	if p := submitPaths(carol); len(p) != 1 || !strings.HasSuffix(p[0], "/input/Publish/proceedEmpty") {
		t.Errorf("carol posts %v", p)
	}
	// alice has Item.Cancel: abort; the build is ABORTED.
	alice := newEnv(t, jenkinstest.SampleAlice, nil)
	if out := alice.ok(t, "submit_input", preview("abort")); out["build_status"] != "ABORTED" {
		t.Errorf("alice abort: %v", out)
	}
	for _, r := range alice.posts() {
		if strings.HasSuffix(r.Path, "/submit") {
			t.Errorf("posted to submit: %v", r)
		}
	}
}

// submitConfirmPolicy asks the person before any answer to an input.
const submitConfirmPolicy = `@id("users-all")
permit (principal is User, action, resource);

@id("inputs-confirm")
@confirm("This answers a Pipeline input.")
permit (principal is User, action == Action::"submit_input", resource);
`

func TestSubmitInput_ConfirmedByPolicy(t *testing.T) {
	t.Parallel()
	args := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed", "parameters": map[string]any{"TARGET": "us-east"}}
	const summary = `Proceed input "Release" of build 3 of "frontend/release" with parameters TARGET as alice`
	for _, rev := range confirmRevisions {
		t.Run(rev, func(t *testing.T) {
			t.Parallel()
			// Declined: forbidden (declined), nothing posted, the build waits.
			el := &elicitations{action: "decline"}
			e := newEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(submitConfirmPolicy), elicit: el.handle, protocol: rev})
			e.sim.ResetRequests()
			er := e.fail(t, "submit_input", args, "forbidden")
			if er["reason"] != "declined" || len(e.posts()) != 0 {
				t.Fatalf("declined: %v, %d posts", er, len(e.posts()))
			}
			if q := el.all(); len(q) != 1 || !strings.Contains(q[0].Message, "This answers a Pipeline input.") || !strings.Contains(q[0].Message, summary) {
				t.Errorf("asked %+v", q)
			}
			if rec := lastRecord(t, e); strings.Contains(rec.Reason+rec.Resource, "us-east") {
				t.Errorf("a parameter value in the audit record: %+v", rec)
			}
			// Accepted: the answer is posted once.
			el.mu.Lock()
			el.action = "accept"
			el.mu.Unlock()
			out := e.ok(t, "submit_input", args)
			if out["submitted"] != true || len(e.posts()) != 1 {
				t.Errorf("accepted: %v, posts %v", out, submitPaths(e))
			}
			if rec := lastRecord(t, e); !strings.HasPrefix(rec.Reason, "confirmed; ") {
				t.Errorf("audit %+v", rec)
			}
		})
	}
}
