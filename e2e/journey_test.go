package e2e

import (
	"strings"
	"testing"
)

// TestServe_RedBuildToApprovedDeploy is the journey issue 11 asks Butler
// to carry alone, through `butler serve` as alice against the demo
// instance: frontend/release #2 is red (its linux tests failed); the agent
// asks why (diagnose_build), reads the failed stage's log, sees what #3
// changed, finds #3 waiting at its "Release" approval, approves it with a
// target region, follows it to its end (wait_for_build) and sees the
// Deploy stage pass. Every Jenkins request carries alice's own credential.
func TestServe_RedBuildToApprovedDeploy(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	s := a.serve(t, addr)
	cs := connectElicit(t, s.url, a.token(t, "alice"), "2025-11-25", nil)
	a.sim.ResetRequests()

	// Why is #2 red?
	why := mustOK(t, cs, "diagnose_build", map[string]any{"job": "frontend/release", "build": 2})
	failed, _ := why["failed_stages"].([]any)
	excerpts, _ := why["error_excerpts"].([]any)
	if why["result"] != "FAILURE" || len(failed) == 0 || len(excerpts) == 0 {
		t.Fatalf("diagnose_build frontend/release #2: %v", why)
	}
	stage := failed[0].(map[string]any)
	if stage["name"] != "Test" {
		t.Errorf("failed stage %v, want the linux branch's Test", stage)
	}
	if lines := strings.Join(asStrings(excerpts[0].(map[string]any)["lines"]), "\n"); !strings.Contains(lines, "failing") &&
		!strings.Contains(lines, "exit code") && !strings.Contains(lines, "Error") {
		t.Errorf("first excerpt does not show the failure: %q", lines)
	}

	// The failed stage's own log, by the id the diagnosis gave.
	log := mustOK(t, cs, "get_stage_log", map[string]any{"job": "frontend/release", "build": 2, "stage": stage["id"], "tail_lines": 20})
	if !strings.Contains(log["text"].(string), "TypeError") {
		t.Errorf("stage log of %v: %q", stage, log["text"])
	}

	// What the next build (#3) carries, and that it waits for approval.
	mustOK(t, cs, "get_build_changes", map[string]any{"job": "frontend/release", "build": 3})
	pending := mustOK(t, cs, "list_pending_inputs", map[string]any{"job": "frontend/release", "build": 3})
	inputs, _ := pending["inputs"].([]any)
	if len(inputs) != 1 || inputs[0].(map[string]any)["id"] != "Release" {
		t.Fatalf("pending inputs of #3: %v", pending)
	}

	// Approve the release to eu-west, then follow the build to its end.
	out := mustOK(t, cs, "submit_input", map[string]any{"job": "frontend/release", "build": 3, "input_id": "Release",
		"action": "proceed", "parameters": map[string]any{"TARGET": "eu-west", "NOTES": "fixes the cart test"}})
	if out["submitted"] != true {
		t.Fatalf("submit_input: %v", out)
	}
	done := mustOK(t, cs, "wait_for_build", map[string]any{"job": "frontend/release", "build": 3, "timeout_seconds": 90})
	if done["state"] != "finished" || done["result"] != "SUCCESS" {
		t.Fatalf("wait_for_build #3: %v", done)
	}
	stages := mustOK(t, cs, "get_pipeline_stages", map[string]any{"job": "frontend/release", "build": 3})
	var deployed bool
	for _, st := range stages["stages"].([]any) {
		if m := st.(map[string]any); m["name"] == "Deploy" && m["status"] == "SUCCESS" {
			deployed = true
		}
	}
	if !deployed {
		t.Errorf("#3's stages after approval: %v", stages["stages"])
	}

	onlyAs(t, a.sim, "", "alice")
	// Nothing was asked of Jenkins twice as fast as wait_for_build's 2 s.
	var polls int
	for _, r := range a.sim.Requests() {
		if r.Method == "GET" && strings.HasSuffix(r.Path, "/release/3/api/json") {
			polls++
		}
	}
	t.Logf("journey: %d Jenkins requests, %d reads of #3", len(a.sim.Requests()), polls)
}
