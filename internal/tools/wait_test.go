package tools_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/tools"
)

func TestWaitForBuild_Arguments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	for _, args := range []map[string]any{
		{},
		{"job": "frontend/web-app"}, // no build
		{"build": 6},                // no job
		{"job": "frontend/web-app", "build": 6, "queue_id": 1},             // both
		{"queue_id": 1, "build": 6},                                        // both
		{"job": "frontend/web-app", "build": 0},                            // below 1
		{"queue_id": 0},                                                    // below 1
		{"job": "frontend/web-app", "build": 6, "timeout_seconds": 601},    // one past the bound
		{"job": "frontend/web-app", "build": 6, "timeout_seconds": -1},     // below 0
		{"job": "frontend/web-app", "build": 6, "timeout_seconds": "soon"}, // not a number
		{"job": "frontend/../web-app", "build": 6},                         // bad path
		{"job": "frontend/web-app", "build": 6, "extra": true},             // unknown argument
	} {
		e.fail(t, "wait_for_build", args, "invalid_argument")
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("%d Jenkins requests for invalid calls", n)
	}
	// At the bound: a finished build answers at once, whatever the timeout.
	out := e.ok(t, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 6, "timeout_seconds": 600})
	if out["state"] != "finished" || out["result"] != "FAILURE" || out["duration_ms"] != float64(41000) || out["build_number"] != float64(6) {
		t.Errorf("finished build: %v", out)
	}
}

func TestWaitForBuild_NotFoundAndHidden(t *testing.T) {
	t.Parallel()
	// Carol may not read backend: its build and a missing one are alike.
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	hidden := e.fail(t, "wait_for_build", map[string]any{"job": "backend/api", "build": 3}, "not_found")
	missing := e.fail(t, "wait_for_build", map[string]any{"job": "backend/nosuch", "build": 3}, "not_found")
	if strings.Replace(hidden["message"].(string), "api", "nosuch", 1) != missing["message"] {
		t.Errorf("hidden %q and missing %q differ", hidden["message"], missing["message"])
	}
	e.fail(t, "wait_for_build", map[string]any{"queue_id": 999}, "not_found")
}

// requestsAs counts the simulator's requests and checks each was made as
// user.
func requestsAs(t *testing.T, sim *jenkinstest.Server, user string) int {
	t.Helper()
	reqs := sim.Requests()
	for _, r := range reqs {
		if r.User != user {
			t.Errorf("%s %s as %q, want %q", r.Method, r.Path, r.User, user)
		}
	}
	return len(reqs)
}

// TestWaitForBuild_FollowsAQueueItem: a queued build is followed into its
// build and to its end, with at most one Jenkins request per 2 s, every
// one as the user, and progress notifications to a client that asked.
func TestWaitForBuild_FollowsAQueueItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	id, err := e.sim.Schedule("frontend/web-app", jenkinstest.SampleAlice, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var progress []*mcp.ProgressNotificationParams
	cs := connectWith(t, e.tools, &mcp.ClientOptions{ProgressNotificationHandler: func(_ context.Context, r *mcp.ProgressNotificationClientRequest) {
		mu.Lock()
		progress = append(progress, r.Params)
		mu.Unlock()
	}}, nil)
	e.sim.ResetRequests()
	go func() {
		time.Sleep(500 * time.Millisecond)
		e.clock.Advance(time.Minute) // the quiet period, then the whole 30 s build
	}()
	start := time.Now()
	params := &mcp.CallToolParams{Name: "wait_for_build", Arguments: map[string]any{"queue_id": id, "timeout_seconds": 30}}
	params.SetProgressToken("tok-1")
	res, err := cs.CallTool(context.Background(), params)
	elapsed := time.Since(start)
	if err != nil || res.IsError {
		t.Fatalf("wait: %v %v", err, res)
	}
	var out map[string]any
	data, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(data, &out)
	if out["state"] != "finished" || out["result"] != "SUCCESS" || out["build_number"] != float64(7) || out["job"] != "frontend/web-app" {
		t.Errorf("answer %v", out)
	}
	n := requestsAs(t, e.sim, jenkinstest.SampleAlice)
	if most := int(elapsed/(2*time.Second)) + 1; n > most || n < 3 {
		t.Errorf("%d Jenkins requests in %s, want 3 (item, item started, build) and at most %d", n, elapsed, most)
	}
	t.Logf("queue item to finished build: %d requests in %s", n, elapsed)
	mu.Lock()
	defer mu.Unlock()
	if len(progress) == 0 {
		t.Fatal("no progress notification")
	}
	for _, p := range progress {
		if p.ProgressToken != "tok-1" || p.Total != 30 || p.Message == "" {
			t.Errorf("progress %+v", p)
		}
	}
	if !strings.HasPrefix(progress[0].Message, "queued") {
		t.Errorf("first progress %q, want queued", progress[0].Message)
	}
}

// TestWaitForBuild_TimesOut: a build that keeps running ends the wait at
// timeout_seconds with state timeout, after one request per 2 s.
func TestWaitForBuild_TimesOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	if _, err := e.sim.AddBuild("backend/worker", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	e.sim.ResetRequests()
	start := time.Now()
	out := e.ok(t, "wait_for_build", map[string]any{"job": "backend/worker", "build": 4, "timeout_seconds": 3})
	elapsed := time.Since(start)
	if out["state"] != "timeout" || out["build_number"] != float64(4) || out["result"] != nil {
		t.Errorf("answer %v", out)
	}
	if elapsed < 3*time.Second || elapsed > 4*time.Second {
		t.Errorf("waited %s, want 3 s", elapsed)
	}
	// Looks at 0 and 2 s; no look fits before 3 s.
	if n := requestsAs(t, e.sim, jenkinstest.SampleBob); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
	// timeout_seconds 0: one look, the state as it is.
	out = e.ok(t, "wait_for_build", map[string]any{"job": "backend/worker", "build": 4, "timeout_seconds": 0})
	if out["state"] != "running" {
		t.Errorf("one look: %v", out)
	}
}

// TestWaitForBuild_CancelledPromptly: the client's cancellation ends the
// handler at once, not at its next poll.
func TestWaitForBuild_CancelledPromptly(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if _, err := e.sim.AddBuild("frontend/web-app", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = e.session.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_build", Arguments: map[string]any{"job": "frontend/web-app", "build": 7, "timeout_seconds": 600}})
	}()
	time.Sleep(700 * time.Millisecond) // into the first sleep
	cancel()
	cancelled := time.Now()
	<-done
	for {
		recs := e.audit.all()
		if len(recs) == 1 {
			took := time.Since(cancelled)
			if recs[0].Code != "unavailable" || !strings.Contains(recs[0].Reason, "cancelled") {
				t.Errorf("audit record %+v", recs[0])
			}
			t.Logf("handler ended %s after the cancellation", took)
			if took > 500*time.Millisecond {
				t.Errorf("the handler ended %s after the cancellation", took)
			}
			return
		}
		if time.Since(cancelled) > 3*time.Second {
			t.Fatalf("no audit record 3 s after the cancellation: the handler still waits")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestWaitForBuild_ShutdownEndsWaits: Shutdown ends a wait at once with the
// state it reached.
func TestWaitForBuild_ShutdownEndsWaits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if _, err := e.sim.AddBuild("frontend/web-app", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(500 * time.Millisecond)
		e.tools.Shutdown()
		e.tools.Shutdown() // twice is harmless
	}()
	start := time.Now()
	out := e.ok(t, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 7, "timeout_seconds": 600})
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the wait ended %s after it began, want right after Shutdown (0.5 s)", took)
	}
	if out["state"] != "running" || !strings.Contains(out["note"].(string), "shutting down") {
		t.Errorf("answer %v", out)
	}
	// After Shutdown, a wait looks once and ends.
	out = e.ok(t, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 7, "timeout_seconds": 600})
	if out["state"] != "running" || out["note"] == nil {
		t.Errorf("wait after shutdown: %v", out)
	}
}

// TestWaitForBuild_ConcurrencyBound: a user's fifth wait at once is
// rate_limited; when one ends, a wait is admitted again.
func TestWaitForBuild_ConcurrencyBound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if _, err := e.sim.AddBuild("frontend/web-app", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	args := map[string]any{"job": "frontend/web-app", "build": 7, "timeout_seconds": 3}
	var wg sync.WaitGroup
	for range tools.MaxWaitsPerUser {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if out, isErr := e.call(t, "wait_for_build", args); isErr || out["state"] != "timeout" {
				t.Errorf("wait within the bound: %v", out)
			}
		}()
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(e.sim.Requests()) < tools.MaxWaitsPerUser && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	errObj := e.fail(t, "wait_for_build", args, "rate_limited")
	if errObj["retry_after_seconds"] != float64(10) {
		t.Errorf("refusal %v, want retry_after_seconds 10", errObj)
	}
	wg.Wait()
	if out := e.ok(t, "wait_for_build", map[string]any{"job": "frontend/web-app", "build": 6, "timeout_seconds": 3}); out["state"] != "finished" {
		t.Errorf("a wait after the others ended: %v", out)
	}
}

// TestWaitForBuild_PolicyDecidesOnTheItemsJob: under a policy that names
// folders, a wait for a queue item is decided on the job Jenkins says the
// item is for, and a wait for a build on its job.
func TestWaitForBuild_PolicyDecidesOnTheItemsJob(t *testing.T) {
	t.Parallel()
	policy := `permit (principal, action, resource);
forbid (principal, action == Action::"wait_for_build", resource in Folder::"backend");`
	e, blocked, buildable := busyEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(policy)})
	e.fail(t, "wait_for_build", map[string]any{"queue_id": blocked, "timeout_seconds": 0}, "forbidden")
	e.fail(t, "wait_for_build", map[string]any{"job": "backend/api", "build": 3, "timeout_seconds": 0}, "forbidden")
	out := e.ok(t, "wait_for_build", map[string]any{"queue_id": buildable, "timeout_seconds": 0})
	if out["state"] != "queued" || out["job"] != "frontend/web-app" || out["why"] != "Waiting for next available executor" {
		t.Errorf("allowed wait: %v", out)
	}
	// The item was read once, for the policy, and that read was the
	// wait's first look.
	n := 0
	for _, r := range e.sim.Requests() {
		if strings.HasPrefix(r.Path, "/queue/item/") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d queue item reads for two calls, want 2", n)
	}
	recs := e.audit.all()
	if last := recs[len(recs)-1]; !strings.Contains(last.Resource, "frontend/web-app") {
		t.Errorf("audit resource %q, want the item's job", last.Resource)
	}
}

func TestWaitForBuild_CancelledItemIsAConflict(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	id, err := e.sim.Schedule("frontend/web-app", jenkinstest.SampleAlice, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.ok(t, "cancel_queue_item", map[string]any{"queue_id": id})
	errObj := e.fail(t, "wait_for_build", map[string]any{"queue_id": id}, "conflict")
	if !strings.Contains(errObj["message"].(string), "cancelled") {
		t.Errorf("error %v", errObj)
	}
}

// TestCall_StopsWhenTheHTTPRequestEnds: a call whose request scope's Done
// closes (its HTTP client went away) stops at once, whatever the MCP
// session says.
func TestCall_StopsWhenTheHTTPRequestEnds(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(nil)
	if _, err := sim.AddBuild("frontend/web-app", jenkinstest.BuildSpec{Building: true, Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.NewWithPolicy(&authz.Options{ToolScopes: scopesFor})
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan struct{})
	rec := &recorder{}
	p := identity.Principal{User: jenkinstest.SampleAlice, JenkinsUser: jenkinstest.SampleAlice, Local: true}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: jenkinstest.SampleAlice, APIToken: secret.String(jenkinstest.SampleAliceToken)}},
		Authorizer:  az,
		Audit:       rec,
		Scope: func(context.Context, *mcp.RequestExtra) *request.Scope {
			return &request.Scope{Principal: p, ID: request.NewID(), Done: gone}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := connect(t, ts, nil)
	go func() {
		time.Sleep(700 * time.Millisecond)
		close(gone)
	}()
	start := time.Now()
	// Should the call go on, the client gives up after 5 s (and the
	// in-memory session's cancellation ends it), failing the test.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "wait_for_build",
		Arguments: map[string]any{"job": "frontend/web-app", "build": 7, "timeout_seconds": 600}})
	if err != nil {
		t.Fatalf("after %s: %v", time.Since(start), err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond || !res.IsError {
		t.Errorf("the call ended after %s (error %v), want right after its request ended (0.7 s)", took, res.IsError)
	}
	if recs := rec.all(); len(recs) != 1 || recs[0].Code != "unavailable" {
		t.Errorf("audit %+v", recs)
	}
}
