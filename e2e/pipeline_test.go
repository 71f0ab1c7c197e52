package e2e

import (
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestServe_PipelineTools drives the Pipeline tools through `butler serve`
// as alice, bob and carol against the demo instance: frontend/release #2
// failed in one of its two "Test" stages, #3 waits at input "Release"
// (submitters: release-managers, alice's Jenkins group),
// frontend/site-preview #1 waits at input "Publish" (no submitter list:
// Item.Build proceeds, Item.Cancel aborts). Every Jenkins request of a
// call carries the caller's own credential.
func TestServe_PipelineTools(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	s := a.serve(t, addr)
	as := a.asEachUser(t, s.url, "alice", "bob", "carol")
	release2 := map[string]any{"job": "frontend/release", "build": 2}

	var failedID string
	for _, u := range []string{"alice", "bob", "carol"} {
		as(u, func(cs *mcp.ClientSession) {
			out := mustOK(t, cs, "get_pipeline_stages", release2)
			if out["status"] != "FAILED" || len(out["stages"].([]any)) != 6 {
				t.Errorf("%s: stages %v", u, out)
			}
			for _, st := range out["stages"].([]any) {
				if m := st.(map[string]any); m["name"] == "Test" && m["status"] == "FAILED" {
					failedID = m["id"].(string)
				}
			}
		})
	}
	// Hidden is missing: carol may not read backend.
	as("carol", func(cs *mcp.ClientSession) {
		hidden := mustFail(t, cs, "get_pipeline_stages", map[string]any{"job": "backend/api"}, "not_found", 404)
		missing := mustFail(t, cs, "get_pipeline_stages", map[string]any{"job": "backend/apx"}, "not_found", 404)
		if strings.Replace(hidden["message"].(string), "api", "apx", 1) != missing["message"] {
			t.Errorf("hidden %q, missing %q", hidden["message"], missing["message"])
		}
		mustFail(t, cs, "get_stage_log", map[string]any{"job": "backend/api", "stage": "Build"}, "not_found", 404)
		mustFail(t, cs, "list_pending_inputs", map[string]any{"job": "backend/api"}, "not_found", 404)
		mustFail(t, cs, "get_pipeline_stages", map[string]any{"job": "frontend/web-app"}, "conflict", 409)
	})

	// get_stage_log: by id, a shared name, bounds at their limits and past.
	as("bob", func(cs *mcp.ClientSession) {
		out := mustOK(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "tail_lines": 3})
		if !strings.Contains(out["text"].(string), "Cannot read properties") || out["truncated"] != true {
			t.Errorf("tail of the failed stage: %v", out)
		}
		amb := mustFail(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": "Test"}, "invalid_argument", 400)
		if !strings.Contains(amb["message"].(string), failedID) {
			t.Errorf("shared name: %v", amb)
		}
		mustOK(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "max_bytes": 1048576, "tail_lines": 10000})
		mustFail(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "max_bytes": 1048577}, "invalid_argument", 400)
		mustFail(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": failedID, "tail_lines": 10001}, "invalid_argument", 400)
	})

	// list_pending_inputs shows who may answer.
	as("carol", func(cs *mcp.ClientSession) {
		out := mustOK(t, cs, "list_pending_inputs", map[string]any{"job": "frontend/release"})
		if in := out["inputs"].([]any)[0].(map[string]any); in["id"] != "Release" || in["submitter"] != "release-managers" {
			t.Errorf("inputs %v", out)
		}
	})

	proceed := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed"}
	// bob (Read) and carol (Build, not a submitter): Jenkins refuses; the
	// build still waits.
	for _, u := range []string{"bob", "carol"} {
		as(u, func(cs *mcp.ClientSession) {
			out := mustFail(t, cs, "submit_input", proceed, "forbidden", 403)
			if !strings.Contains(out["message"].(string), "You need to be release-managers") {
				t.Errorf("%s: %v", u, out)
			}
		})
	}
	as("alice", func(cs *mcp.ClientSession) {
		if st := mustOK(t, cs, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 3}); st["status"] != "PAUSED_PENDING_INPUT" {
			t.Errorf("after refused answers: %v", st["status"])
		}
		// Bad parameters: invalid_argument before anything is posted.
		for _, p := range []map[string]any{{"TARGET": "moon"}, {"REGION": "eu-west"}} {
			args := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed", "parameters": p}
			mustFail(t, cs, "submit_input", args, "invalid_argument", 400)
		}
		for _, r := range a.sim.Requests() {
			if r.Method == "POST" {
				t.Errorf("a refused call posted %s", r.Path)
			}
		}
		args := map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release", "action": "proceed", "parameters": map[string]any{"TARGET": "us-east"}}
		if out := mustOK(t, cs, "submit_input", args); out["submitted"] != true {
			t.Errorf("alice's approval: %v", out)
		}
	})
	// No submitter list: bob may neither proceed nor abort; alice aborts
	// with Item.Cancel.
	preview := func(action string) map[string]any {
		return map[string]any{"job": "frontend/site-preview", "build": 1, "input_id": "Publish", "action": action}
	}
	as("bob", func(cs *mcp.ClientSession) {
		mustFail(t, cs, "submit_input", preview("proceed"), "forbidden", 403)
		mustFail(t, cs, "submit_input", preview("abort"), "forbidden", 403)
	})
	as("alice", func(cs *mcp.ClientSession) {
		if out := mustOK(t, cs, "submit_input", preview("abort")); out["build_status"] != "ABORTED" {
			t.Errorf("alice's abort: %v", out)
		}
		for _, r := range a.sim.Requests() {
			if strings.HasSuffix(r.Path, "/submit") {
				t.Errorf("posted to input/<id>/submit: %s", r.Path)
			}
		}
	})

	// The audit records: the input id, the action and the parameter
	// names, never the values.
	recs := a.waitAudit(t, func(r []map[string]any) bool { return len(r) >= 9 }, "--tool", "submit_input")
	var approved bool
	for _, r := range recs {
		res, _ := r["resource"].(string)
		// The choices may be named in a refusal; the values given never.
		if strings.Contains(res, "us-east") || strings.Contains(r["reason"].(string), "moon") {
			t.Errorf("a parameter value in the audit: %v", r)
		}
		if r["user"] == "alice" && r["decision"] == "allow" && res == `frontend/release input "Release" proceed with parameters TARGET` {
			approved = true
		}
		if (r["user"] == "bob" || r["user"] == "carol") && r["decision"] != "deny" && r["decision"] != "error" {
			t.Errorf("refused answer recorded as %v", r)
		}
	}
	if !approved {
		t.Errorf("no audit record of alice's approval: %v", recs)
	}
}
