package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// onlyAs checks that every request the simulator logged for paths starting
// with prefix was made with user's own credential, and returns how many.
func onlyAs(t *testing.T, sim *jenkinstest.Server, prefix, user string) int {
	t.Helper()
	n := 0
	for _, r := range sim.Requests() {
		if !strings.HasPrefix(r.Path, prefix) {
			continue
		}
		n++
		if r.User != user || r.Auth != "basic" {
			t.Errorf("%s %s as %q (%s), want %s's own API token", r.Method, r.Path, r.User, r.Auth, user)
		}
	}
	return n
}

// TestServe_ListQueueAndNodes: through `butler serve`, each user sees the
// queue items and running builds Jenkins lets them read, every Jenkins
// request made with their own token; an item they may not see is answered
// exactly as a missing one.
func TestServe_ListQueueAndNodes(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	blocked, buildable, err := jenkinstest.SampleActivity(a.sim)
	if err != nil {
		t.Fatal(err)
	}
	s := a.serve(t, addr)
	for _, tc := range []struct {
		user    string
		queue   []int64
		running []string
	}{
		{"alice", []int64{blocked, buildable}, []string{jenkinstest.SampleSlowBackendJob, jenkinstest.SampleSlowFrontendJob}},
		{"bob", []int64{blocked, buildable}, []string{jenkinstest.SampleSlowBackendJob, jenkinstest.SampleSlowFrontendJob}},
		{"carol", []int64{buildable}, []string{jenkinstest.SampleSlowFrontendJob}}, // no Read on backend
	} {
		cs, err := connectHTTP(t, s.url, a.token(t, tc.user))
		if err != nil {
			t.Fatal(err)
		}
		a.sim.ResetRequests()
		var ids []int64
		for _, it := range mustOK(t, cs, "list_queue", nil)["items"].([]any) {
			ids = append(ids, int64(it.(map[string]any)["queue_id"].(float64)))
		}
		slices.Sort(ids)
		if !slices.Equal(ids, tc.queue) {
			t.Errorf("%s: queue %v, want %v", tc.user, ids, tc.queue)
		}
		var running []string
		busy := 0
		for _, x := range mustOK(t, cs, "list_nodes", nil)["nodes"].([]any) {
			n := x.(map[string]any)
			busy += int(n["executors_busy"].(float64))
			for _, r := range n["running"].([]any) {
				running = append(running, r.(map[string]any)["job"].(string))
			}
			if n["name"] == jenkinstest.SampleOfflineAgent && (n["online"] != false || !strings.Contains(n["offline_reason"].(string), jenkinstest.SampleOfflineMessage)) {
				t.Errorf("%s: offline agent %v", tc.user, n)
			}
		}
		slices.Sort(running)
		if !slices.Equal(running, tc.running) || busy != 2 {
			t.Errorf("%s: running %v (busy %d), want %v (busy 2)", tc.user, running, busy, tc.running)
		}
		if n := onlyAs(t, a.sim, "/queue/", tc.user) + onlyAs(t, a.sim, "/computer/", tc.user); n != 2 {
			t.Errorf("%s: %d Jenkins requests, want 2", tc.user, n)
		}
		if tc.user == "carol" {
			// Hidden == missing, for the item and for a wait on it.
			hidden := mustFail(t, cs, "get_queue_item", map[string]any{"queue_id": blocked}, "not_found", 404)
			missing := mustFail(t, cs, "get_queue_item", map[string]any{"queue_id": 99999}, "not_found", 404)
			if strings.ReplaceAll(hidden["message"].(string), itoa64(blocked), "N") != strings.ReplaceAll(missing["message"].(string), "99999", "N") {
				t.Errorf("hidden %q, missing %q", hidden["message"], missing["message"])
			}
			mustFail(t, cs, "wait_for_build", map[string]any{"queue_id": blocked, "timeout_seconds": 0}, "not_found", 404)
			mustFail(t, cs, "wait_for_build", map[string]any{"job": jenkinstest.SampleSlowBackendJob, "build": 1, "timeout_seconds": 0}, "not_found", 404)
		}
	}
}

func itoa64(n int64) string { b, _ := json.Marshal(n); return string(b) }

// TestServe_WaitForBuild: a real client waits through `butler serve` for a
// queued build to finish, receiving progress notifications, with at most
// one Jenkins request per 2 s, all with the caller's token; bounds at their
// limits; a cancelled wait ends at once; a shutdown ends the waits and
// does not wait for them.
func TestServe_WaitForBuild(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	for job, spec := range map[string]jenkinstest.JobSpec{
		"frontend/quick": {Duration: 4 * time.Second, QuietPeriod: time.Second},
		"frontend/long":  {Duration: time.Hour},
	} {
		if err := a.sim.AddJob(job, spec); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.sim.AddBuild("frontend/long", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	s := a.serve(t, addr)
	var mu sync.Mutex
	var progress []*mcp.ProgressNotificationParams
	hc := &http.Client{Transport: bearer{token: a.token(t, "alice"), base: http.DefaultTransport}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
			mu.Lock()
			progress = append(progress, r.Params)
			mu.Unlock()
		}}).Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	// Bounds: 600 is the limit, 601 one past it.
	mustFail(t, cs, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 6, "timeout_seconds": 601}, "invalid_argument", 400)
	mustFail(t, cs, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 6, "queue_id": 1}, "invalid_argument", 400)
	if out := mustOK(t, cs, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 6, "timeout_seconds": 600}); out["state"] != "finished" || out["result"] != "FAILURE" {
		t.Errorf("finished build: %v", out)
	}

	// Follow a queued build to its end.
	id, err := a.sim.Schedule("frontend/quick", "alice", nil)
	if err != nil {
		t.Fatal(err)
	}
	a.sim.ResetRequests()
	params := &mcp.CallToolParams{Name: "wait_for_build", Arguments: map[string]any{"queue_id": id, "timeout_seconds": 30}}
	params.SetProgressToken("e2e-progress")
	start := time.Now()
	res, err := cs.CallTool(ctx, params)
	elapsed := time.Since(start)
	if err != nil || res.IsError {
		t.Fatalf("wait: %v %+v", err, res)
	}
	var out map[string]any
	data, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(data, &out)
	if out["state"] != "finished" || out["result"] != "SUCCESS" || out["job"] != "frontend/quick" || out["build_number"] != float64(1) {
		t.Errorf("wait answer %v", out)
	}
	n := onlyAs(t, a.sim, "/queue/item/", "alice") + onlyAs(t, a.sim, "/job/frontend/job/quick/", "alice")
	if most := int(elapsed/(2*time.Second)) + 1; n > most {
		t.Errorf("%d Jenkins requests in %s: more than one per 2 s (at most %d)", n, elapsed, most)
	}
	t.Logf("queued build followed to its end: %d Jenkins requests in %s", n, elapsed.Round(time.Millisecond))
	mu.Lock()
	got := slices.Clone(progress)
	mu.Unlock()
	if len(got) < 2 {
		t.Errorf("%d progress notifications, want one per look before the end", len(got))
	}
	for _, p := range got {
		if p.ProgressToken != "e2e-progress" || p.Total != 30 {
			t.Errorf("progress %+v", p)
		}
	}

	// Cancellation: the handler ends at once, not at its next look.
	cctx, ccancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = cs.CallTool(cctx, &mcp.CallToolParams{Name: "wait_for_build", Arguments: map[string]any{"job": "frontend/long", "build": 1, "timeout_seconds": 600}})
	}()
	time.Sleep(time.Second)
	ccancel()
	<-done
	a.sim.ResetRequests()
	time.Sleep(4500 * time.Millisecond) // two looks' worth
	if n := onlyAs(t, a.sim, "/job/frontend/job/long/", "alice"); n != 0 {
		t.Errorf("%d Jenkins requests after the cancellation: the wait goes on", n)
	}
	recs := a.waitAudit(t, func(r []map[string]any) bool {
		return len(r) > 0 && r[0]["tool"] == "wait_for_build" && r[0]["code"] == "unavailable"
	}, "--tool", "wait_for_build")
	if len(recs) == 0 || recs[0]["code"] != "unavailable" || !strings.Contains(recs[0]["reason"].(string), "cancelled") {
		t.Fatalf("audit of the cancelled wait: %v", recs)
	}
	if d := recs[0]["duration_ms"].(float64); d > 1500 {
		t.Errorf("the cancelled wait lasted %v ms, cancelled after 1000 ms", d)
	}
	t.Logf("cancelled after 1000 ms; the handler ended after %v ms", recs[0]["duration_ms"])

	// Shutdown: a waiting call ends with its state at once, and the
	// server exits without waiting for it.
	bob, err := connectHTTP(t, s.url, a.token(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	answer := make(chan result, 1)
	go func() {
		answer <- callTool(t, bob, "wait_for_build", map[string]any{"job": "frontend/long", "build": 1, "timeout_seconds": 600})
	}()
	time.Sleep(time.Second)
	term := time.Now()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-answer:
		if r.isError || r.out["state"] != "running" || !strings.Contains(r.out["note"].(string), "shutting down") {
			t.Errorf("wait during shutdown: %v", r)
		}
		t.Logf("the wait answered %s after SIGTERM", time.Since(term).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("the wait did not end within 5 s of SIGTERM")
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("butler serve exit: %v", err)
		}
		s.done <- nil
		t.Logf("butler serve exited %s after SIGTERM", time.Since(term).Round(time.Millisecond))
	case <-time.After(10 * time.Second):
		t.Fatal("butler serve did not exit within 10 s of SIGTERM with a wait in progress")
	}
}
