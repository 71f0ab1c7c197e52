package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// TestServe_ArtifactsChangesAndRebuild: through the real server, as
// alice, bob and carol with their own linked tokens, list_artifacts,
// get_artifact and get_build_changes show each user what their Jenkins
// account may read (a hidden job answers exactly like a missing one),
// hostile artifact paths and out-of-bounds pages are refused before
// Jenkins, a binary comes back as an embedded resource only when it fits,
// and trigger_job rebuild_of reuses a build's parameters but not its
// password. Every Jenkins request of a call carries the caller's own
// credential.
func TestServe_ArtifactsChangesAndRebuild(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	// A job alice may build with a password parameter, and a build of it.
	if err := a.sim.AddJob("frontend/e2e-deploy", jenkinstest.JobSpec{Params: []jenkinstest.Param{
		{Name: "TARGET", Type: "string", Default: "staging"}, {Name: "API_KEY", Type: "password"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.sim.AddBuild("frontend/e2e-deploy", jenkinstest.BuildSpec{UserID: "alice", Params: map[string]any{"TARGET": "eu-canary", "API_KEY": "s3cret"}}); err != nil {
		t.Fatal(err)
	}
	s := a.serve(t, addr)
	sessions := map[string]*mcp.ClientSession{}
	for _, u := range []string{"alice", "bob", "carol"} {
		cs, err := connectHTTP(t, s.url, a.token(t, u))
		if err != nil {
			t.Fatal(err)
		}
		sessions[u] = cs
	}
	call := func(user, tool string, args map[string]any) result {
		t.Helper()
		a.sim.ResetRequests()
		r := callTool(t, sessions[user], tool, args)
		for _, req := range a.sim.Requests() {
			if req.User != user || req.Auth != "basic" {
				t.Errorf("during %s's %s, Jenkins got a request as %q (%s): %s %s", user, tool, req.User, req.Auth, req.Method, req.Path)
			}
		}
		return r
	}
	code := func(r result) string {
		if !r.isError {
			return ""
		}
		return r.out["error"].(map[string]any)["code"].(string)
	}

	// Who may see what: alice and bob read backend, carol does not.
	for _, u := range []string{"alice", "bob", "carol"} {
		r := call(u, "list_artifacts", map[string]any{"job": "frontend/docs", "build": 3})
		if r.isError || len(r.out["artifacts"].([]any)) != 3 || r.out["artifacts"].([]any)[0].(map[string]any)["size"] == nil {
			t.Errorf("%s list_artifacts docs #3: %s", u, r.text)
		}
		ch := call(u, "get_build_changes", map[string]any{"job": "backend/api", "build": 4})
		if want := map[string]string{"alice": "", "bob": "", "carol": "not_found"}[u]; code(ch) != want {
			t.Errorf("%s get_build_changes backend/api: %s", u, ch.text)
		}
	}
	hidden := call("carol", "get_build_changes", map[string]any{"job": "backend/api", "build": 4})
	missing := call("carol", "get_build_changes", map[string]any{"job": "backend/nope", "build": 4})
	if strings.Replace(hidden.text, "backend/api", "X", 1) != strings.Replace(missing.text, "backend/nope", "X", 1) {
		t.Errorf("carol: hidden %q vs missing %q", hidden.text, missing.text)
	}
	if ch := call("bob", "get_build_changes", map[string]any{"job": "frontend/web-app", "build": 5}); strings.Contains(ch.text, "ghp_") || strings.Contains(ch.text, "ci-bot") {
		t.Errorf("SCM credentials in the answer: %s", ch.text)
	}

	// get_artifact: a text page, a binary as a resource only when it fits.
	txt := call("bob", "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt", "max_bytes": 100})
	if txt.isError || txt.out["kind"] != "text" || len(txt.out["text"].(string)) != 100 || txt.out["more"] != true {
		t.Errorf("text page: %s", txt.text)
	}
	a.sim.ResetRequests()
	res, err := sessions["alice"].CallTool(context.Background(), &mcp.CallToolParams{Name: "get_artifact",
		Arguments: map[string]any{"job": "frontend/web-app", "build": 5, "path": "dist/logo.png"}})
	if err != nil || res.IsError || len(res.Content) != 2 {
		t.Fatalf("binary: %v %+v", err, res)
	}
	if r, ok := res.Content[1].(*mcp.EmbeddedResource); !ok || r.Resource == nil || r.Resource.MIMEType != "image/png" || len(r.Resource.Blob) == 0 {
		t.Errorf("binary resource %+v", res.Content[1])
	}
	if big := call("alice", "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "dist/logo.png", "max_bytes": 10}); big.isError || big.out["embedded"] != false {
		t.Errorf("binary over max_bytes: %s", big.text)
	}
	// Bounds and hostile paths: invalid_argument, and Jenkins never asked.
	for _, args := range []map[string]any{
		{"path": "../../../secrets"}, {"path": "%2e%2e/x"}, {"path": "/etc/passwd"}, {"path": "reports\\coverage.txt"},
		{"path": "reports%2Fcoverage.txt"}, {"path": "a\x00b"}, {"path": "reports/coverage.txt", "max_bytes": 1048577},
	} {
		full := map[string]any{"job": "frontend/web-app", "build": 5}
		for k, v := range args {
			full[k] = v
		}
		r := call("alice", "get_artifact", full)
		if code(r) != "invalid_argument" || len(a.sim.Requests()) != 0 {
			t.Errorf("get_artifact %v: %s (%d Jenkins requests)", args, r.text, len(a.sim.Requests()))
		}
	}
	if r := call("alice", "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt", "max_bytes": 1048576}); r.isError || r.out["more"] != false {
		t.Errorf("max_bytes at the limit: %s", r.text)
	}

	// rebuild_of: alice may build frontend; bob may not.
	r := call("alice", "trigger_job", map[string]any{"job": "frontend/e2e-deploy", "rebuild_of": 1})
	if r.isError || r.out["passwords_not_copied"].([]any)[0] != "API_KEY" {
		t.Fatalf("alice rebuild: %s", r.text)
	}
	q := call("alice", "get_queue_item", map[string]any{"queue_id": r.out["queue_id"]})
	if q.isError {
		t.Fatalf("queue item: %s", q.text)
	}
	if r := call("bob", "trigger_job", map[string]any{"job": "frontend/e2e-deploy", "rebuild_of": 1}); code(r) != "forbidden" {
		t.Errorf("bob rebuild: %s", r.text)
	}
	if r := call("carol", "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 4}); code(r) != "not_found" {
		t.Errorf("carol rebuild of a hidden job: %s", r.text)
	}
}
