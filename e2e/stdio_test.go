package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// stdioClient starts `butler stdio` as user with token against the Jenkins
// at jenkinsURL and returns a connected MCP client session.
func stdioClient(t *testing.T, jenkinsURL, user, token string) *mcp.ClientSession {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "butler.yaml")
	// The token comes from the environment, as documented; the file names
	// only the Jenkins URL.
	if err := os.WriteFile(cfg, []byte("jenkins:\n  url: "+jenkinsURL+"\n  timeout: 2s\nlog:\n  level: debug\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(butlerBin, "stdio", "--config", cfg)
	cmd.Env = append(os.Environ(), "JENKINS_USER="+user, "JENKINS_API_TOKEN="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connecting to butler stdio: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		cs.Close()
		if strings.Contains(stderr.String(), token) {
			t.Errorf("butler logged the API token")
		}
	})
	return cs
}

type result struct {
	isError bool
	out     map[string]any
	text    string
}

func callTool(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) result {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var r result
	r.isError = res.IsError
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &r.out); err != nil {
		t.Fatalf("%s: structured content: %v", tool, err)
	}
	if len(res.Content) > 0 {
		r.text = res.Content[0].(*mcp.TextContent).Text
	}
	return r
}

func mustOK(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any) map[string]any {
	t.Helper()
	r := callTool(t, cs, tool, args)
	if r.isError {
		t.Fatalf("%s(%v): %s", tool, args, r.text)
	}
	return r.out
}

func mustFail(t *testing.T, cs *mcp.ClientSession, tool string, args map[string]any, code string, status float64) map[string]any {
	t.Helper()
	r := callTool(t, cs, tool, args)
	if !r.isError {
		t.Fatalf("%s(%v) succeeded, want %s", tool, args, code)
	}
	e := r.out["error"].(map[string]any)
	if e["code"] != code || e["status"] != status || !strings.HasPrefix(r.text, code+": ") {
		t.Fatalf("%s(%v) = %s %v, want %s %v", tool, args, r.text, e, code, status)
	}
	return e
}

func newSim(t *testing.T) (*jenkinstest.Server, *jenkinstest.FakeClock, string) {
	clock := jenkinstest.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	sim := jenkinstest.Sample(&jenkinstest.Options{Clock: clock, Prefix: "/jenkins"})
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	return sim, clock, hs.URL + "/jenkins/"
}

// TestStdio_EveryTool drives every tool through the real binary, as alice,
// against a Jenkins served under a path prefix.
func TestStdio_EveryTool(t *testing.T) {
	t.Parallel()
	sim, clock, url := newSim(t)
	cs := stdioClient(t, url, jenkinstest.SampleAlice, jenkinstest.SampleAliceToken)

	tools, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(tools.Tools) != len(catalog.All()) {
		t.Fatalf("tools/list: %d tools, %v", len(tools.Tools), err)
	}
	if h := mustOK(t, cs, "health", nil); h["status"] != "ok" {
		t.Errorf("health: %v", h)
	}
	if tm := mustOK(t, cs, "get_current_time_info", map[string]any{"timezone": "Europe/Paris"}); tm["timezone"] != "Europe/Paris" {
		t.Errorf("time: %v", tm)
	}
	if w := mustOK(t, cs, "whoami", nil); w["user"] != "alice" || w["jenkins_linked"] != true {
		t.Errorf("whoami: %v", w)
	}
	jobs := mustOK(t, cs, "list_all_jobs", map[string]any{"limit": 500})
	if jobs["total"].(float64) < 8 {
		t.Errorf("list_all_jobs: %v", jobs)
	}
	for _, j := range jobs["jobs"].([]any) {
		if u := j.(map[string]any)["url"].(string); !strings.HasPrefix(u, url) {
			t.Errorf("job url %q is not under the Jenkins prefix %q", u, url)
		}
	}
	if j := mustOK(t, cs, "get_job", map[string]any{"job": "frontend/web-app"}); j["buildable"] != true {
		t.Errorf("get_job: %v", j)
	}
	trig := mustOK(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"})
	if !strings.HasPrefix(trig["queue_url"].(string), url+"queue/item/") {
		t.Errorf("queue_url %v not under %s", trig["queue_url"], url)
	}
	clock.Advance(5 * time.Second)
	q := mustOK(t, cs, "get_queue_item", map[string]any{"queue_id": trig["queue_id"]})
	if q["state"] != "started" {
		t.Fatalf("queue item: %v", q)
	}
	n := q["build_number"]
	clock.Advance(5 * time.Second)
	if b := mustOK(t, cs, "get_build", map[string]any{"job": "frontend/web-app", "build": n}); b["building"] != true {
		t.Errorf("get_build: %v", b)
	}
	if l := mustOK(t, cs, "get_build_log", map[string]any{"job": "frontend/web-app", "build": n}); l["more"] != true || l["text"] == "" {
		t.Errorf("get_build_log: %v", l)
	}
	if s := mustOK(t, cs, "search_build_log", map[string]any{"job": "frontend/web-app", "build": n, "pattern": "Started by"}); len(s["matches"].([]any)) != 1 {
		t.Errorf("search_build_log: %v", s)
	}
	if s := mustOK(t, cs, "stop_build", map[string]any{"job": "frontend/web-app", "build": n}); s["stopped"] != true || s["result"] != "ABORTED" {
		t.Errorf("stop_build: %v", s)
	}
	if r := mustOK(t, cs, "get_test_results", map[string]any{"job": "frontend/web-app", "build": 6, "only_failing": true}); r["failed"].(float64) < 1 {
		t.Errorf("get_test_results: %v", r)
	}
	trig2 := mustOK(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"})
	// A second identical request folds into the queued item.
	if again := mustOK(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"}); trig2["merged"] != false || again["merged"] != true || again["queue_id"] != trig2["queue_id"] {
		t.Errorf("identical triggers: %v then %v, want the second merged into the first", trig2, again)
	}
	if c := mustOK(t, cs, "cancel_queue_item", map[string]any{"queue_id": trig2["queue_id"]}); c["cancelled"] != true {
		t.Errorf("cancel_queue_item: %v", c)
	}

	// Every request Jenkins received carried alice's credential and no other.
	for _, r := range sim.Requests() {
		if r.User != "alice" && !(r.Auth == "none" && r.Query == "tree=_class") {
			t.Errorf("Jenkins request not made as alice: %+v", r)
		}
	}
}

// TestStdio_ErrorCodes covers each error code a stdio user can meet.
func TestStdio_ErrorCodes(t *testing.T) {
	t.Parallel()
	sim, _, url := newSim(t)
	bob := stdioClient(t, url, jenkinstest.SampleBob, jenkinstest.SampleBobToken)

	mustFail(t, bob, "get_job", map[string]any{"job": "frontend/../backend/api"}, "invalid_argument", 400)
	mustFail(t, bob, "list_all_jobs", map[string]any{"limit": 501}, "invalid_argument", 400)
	mustFail(t, bob, "get_job", map[string]any{"job": "nosuch"}, "not_found", 404)
	e := mustFail(t, bob, "trigger_job", map[string]any{"job": "frontend/web-app"}, "forbidden", 403)
	if e["required_permission"] != "hudson.model.Item.Build" {
		t.Errorf("forbidden without required_permission: %v", e)
	}
	mustFail(t, bob, "trigger_job", map[string]any{"job": "frontend/legacy-site"}, "conflict", 409)
	for _, r := range sim.Requests() {
		if r.Method == "POST" && r.Status < 400 {
			t.Errorf("Jenkins accepted a POST from read-only bob: %+v", r)
		}
	}
	sim.SetFault(jenkinstest.Fault{Status: 500})
	mustFail(t, bob, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_unavailable", 502)
	sim.SetFault(jenkinstest.Fault{Delay: 5 * time.Second})
	mustFail(t, bob, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_unavailable", 504)
	sim.SetFault(jenkinstest.Fault{})

	wrong := stdioClient(t, url, jenkinstest.SampleBob, "not-bobs-token")
	// A rejected credential is reported as such in stdio too (no
	// connect_url there: the token comes from the configuration).
	e = mustFail(t, wrong, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_account_not_linked", 428)
	if !strings.Contains(e["message"].(string), "401") || e["reason"] != "credential_rejected" || e["connect_url"] != nil {
		t.Errorf("rejected token: %v", e)
	}
}

// TestStdio_HiddenJobLooksMissing: carol cannot see backend; everything she
// asks about it answers exactly like a job that does not exist.
func TestStdio_HiddenJobLooksMissing(t *testing.T) {
	t.Parallel()
	_, _, url := newSim(t)
	carol := stdioClient(t, url, jenkinstest.SampleCarol, jenkinstest.SampleCarolToken)
	for _, tool := range []string{"get_job", "get_build", "get_build_log", "trigger_job"} {
		hidden := callTool(t, carol, tool, map[string]any{"job": "backend/api"})
		missing := callTool(t, carol, tool, map[string]any{"job": "backend/zzz"})
		h := strings.ReplaceAll(hidden.text, "backend/api", "JOB")
		m := strings.ReplaceAll(missing.text, "backend/zzz", "JOB")
		if !hidden.isError || h != m {
			t.Errorf("%s: hidden %q vs missing %q", tool, hidden.text, missing.text)
		}
	}
	for _, j := range mustOK(t, carol, "list_all_jobs", map[string]any{"limit": 500})["jobs"].([]any) {
		if strings.HasPrefix(j.(map[string]any)["full_name"].(string), "backend/") {
			t.Errorf("carol lists %v", j)
		}
	}
}

// TestStdio_HostilePathsNeverReachJenkins sends path tricks through the real
// binary and checks Jenkins saw none of them.
func TestStdio_HostilePathsNeverReachJenkins(t *testing.T) {
	t.Parallel()
	sim, _, url := newSim(t)
	alice := stdioClient(t, url, jenkinstest.SampleAlice, jenkinstest.SampleAliceToken)
	sim.ResetRequests()
	for _, p := range []string{
		"frontend/../backend/api", "frontend/%2e%2e/backend/api", "frontend/..%2Fbackend", "frontend\\..\\backend",
		"frontend/\u2025/backend", "frontend\uff0f..\uff0fbackend", "prod./deploy", "frontend/web-app\r\n", "a//b",
	} {
		mustFail(t, alice, "trigger_job", map[string]any{"job": p}, "invalid_argument", 400)
	}
	if reqs := sim.Requests(); len(reqs) != 0 {
		t.Errorf("hostile paths reached Jenkins: %+v", reqs)
	}
}

func TestDemo_StdioAsBob(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(butlerBin, "demo", "--stdio", "--user", "bob")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).Connect(ctx, &mcp.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, stderr.String())
	}
	defer cs.Close()
	if w := mustOK(t, cs, "whoami", nil); w["user"] != "bob" {
		t.Errorf("whoami: %v", w)
	}
	mustFail(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"}, "forbidden", 403)
	mustOK(t, cs, "get_job", map[string]any{"job": "backend/api"})
}
