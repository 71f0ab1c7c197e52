package tools_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// busyEnv is newEnv over a Sample instance made busy by SampleActivity,
// past the queue items' quiet periods.
func busyEnv(t *testing.T, user string, o *envOpts) (*testEnv, int64, int64) {
	t.Helper()
	e := newEnv(t, user, o)
	blocked, buildable, err := jenkinstest.SampleActivity(e.sim)
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(5 * time.Second)
	return e, blocked, buildable
}

type queueView struct {
	id         int64
	job, state string
	since      string
	stuck      bool
	why        string
}

func queueItems(t *testing.T, out map[string]any) []queueView {
	t.Helper()
	var got []queueView
	for _, x := range out["items"].([]any) {
		it := x.(map[string]any)
		got = append(got, queueView{id: int64(it["queue_id"].(float64)), job: it["job"].(string), state: it["state"].(string),
			since: it["in_queue_since"].(string), stuck: it["stuck"].(bool), why: it["why"].(string)})
	}
	return got
}

func TestListQueue_OnlyItemsTheUserMaySee(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		user string
		jobs []string
	}{
		{jenkinstest.SampleAlice, []string{jenkinstest.SampleSlowBackendJob, "frontend/web-app"}},
		{jenkinstest.SampleBob, []string{jenkinstest.SampleSlowBackendJob, "frontend/web-app"}},
		// Carol may not read backend: Jenkins does not list its item.
		{jenkinstest.SampleCarol, []string{"frontend/web-app"}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			t.Parallel()
			e, blocked, buildable := busyEnv(t, tc.user, nil)
			out := e.ok(t, "list_queue", nil)
			items := queueItems(t, out)
			var jobs []string
			for _, it := range items {
				jobs = append(jobs, it.job)
				switch it.id {
				case blocked:
					if it.state != "blocked" || !strings.HasPrefix(it.why, "Build #1 is already in progress") {
						t.Errorf("blocked item: %+v", it)
					}
				case buildable:
					if it.state != "buildable" || it.why != "Waiting for next available executor" || it.stuck {
						t.Errorf("buildable item: %+v", it)
					}
				default:
					t.Errorf("unexpected item %+v", it)
				}
				if it.since != "2026-11-30T12:00:00Z" {
					t.Errorf("in_queue_since %q, want RFC 3339 UTC of the moment it was queued", it.since)
				}
			}
			if !slices.Equal(jobs, tc.jobs) || out["truncated"] != false {
				t.Errorf("jobs %v (truncated %v), want %v", jobs, out["truncated"], tc.jobs)
			}
			// One request, as the user.
			for _, r := range e.sim.Requests() {
				if r.Path == "/queue/api/json" && r.User != tc.user {
					t.Errorf("queue read as %q", r.User)
				}
			}
		})
	}
}

// A policy that hides backend hides its queue items too, as it hides its
// jobs from list_all_jobs.
func TestListQueue_PolicyHidesItems(t *testing.T) {
	t.Parallel()
	policy := `permit (principal, action, resource);
forbid (principal, action == Action::"get_queue_item", resource in Folder::"backend");`
	e, _, buildable := busyEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(policy)})
	items := queueItems(t, e.ok(t, "list_queue", nil))
	if len(items) != 1 || items[0].id != buildable {
		t.Errorf("items %+v, want only frontend/web-app's", items)
	}
	// Without the forbid, both are listed: the filter is the policy's.
	e2, _, _ := busyEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(`permit (principal, action, resource);`)})
	if items := queueItems(t, e2.ok(t, "list_queue", nil)); len(items) != 2 {
		t.Errorf("items %+v, want both", items)
	}
}

type nodeView struct {
	online      bool
	reason      string
	labels      []string
	total, busy int
	running     []string
}

func nodesOf(t *testing.T, out map[string]any) map[string]nodeView {
	t.Helper()
	got := map[string]nodeView{}
	for _, x := range out["nodes"].([]any) {
		n := x.(map[string]any)
		v := nodeView{online: n["online"].(bool), reason: n["offline_reason"].(string),
			total: int(n["executors_total"].(float64)), busy: int(n["executors_busy"].(float64))}
		for _, l := range n["labels"].([]any) {
			v.labels = append(v.labels, l.(string))
		}
		for _, r := range n["running"].([]any) {
			rb := r.(map[string]any)
			v.running = append(v.running, rb["job"].(string)+"#"+strconv.FormatFloat(rb["build_number"].(float64), 'f', -1, 64))
		}
		slices.Sort(v.running)
		got[n["name"].(string)] = v
	}
	return got
}

func TestListNodes_AsEachUser(t *testing.T) {
	t.Parallel()
	both := []string{jenkinstest.SampleSlowBackendJob + "#1", jenkinstest.SampleSlowFrontendJob + "#1"}
	for _, tc := range []struct {
		user    string
		running []string
	}{
		{jenkinstest.SampleAlice, both},
		{jenkinstest.SampleBob, both},
		// Carol may not read backend: its build runs, unnamed, on a busy executor.
		{jenkinstest.SampleCarol, []string{jenkinstest.SampleSlowFrontendJob + "#1"}},
	} {
		t.Run(tc.user, func(t *testing.T) {
			t.Parallel()
			e, _, _ := busyEnv(t, tc.user, nil)
			out := e.ok(t, "list_nodes", nil)
			nodes := nodesOf(t, out)
			if len(nodes) != 3 || out["truncated"] != false {
				t.Fatalf("nodes %+v", nodes)
			}
			if b := nodes["built-in"]; !b.online || b.total != 0 || len(b.labels) != 0 {
				t.Errorf("built-in: %+v (its self label is not listed)", b)
			}
			a := nodes[jenkinstest.SampleAgent]
			if !a.online || a.total != 2 || a.busy != 2 || !slices.Equal(a.labels, []string{"docker", "linux"}) || !slices.Equal(a.running, tc.running) {
				t.Errorf("agent: %+v, want running %v", a, tc.running)
			}
			off := nodes[jenkinstest.SampleOfflineAgent]
			if off.online || off.reason != "Disconnected by admin : "+jenkinstest.SampleOfflineMessage || !slices.Equal(off.labels, []string{"macos"}) {
				t.Errorf("offline agent: %+v", off)
			}
			for _, r := range e.sim.Requests() {
				if r.User != tc.user {
					t.Errorf("%s %s as %q", r.Method, r.Path, r.User)
				}
			}
		})
	}
}

func TestListNodes_PolicyHidesRunningBuilds(t *testing.T) {
	t.Parallel()
	policy := `permit (principal, action, resource);
forbid (principal, action == Action::"get_build", resource in Folder::"backend");`
	e, _, _ := busyEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(policy)})
	a := nodesOf(t, e.ok(t, "list_nodes", nil))[jenkinstest.SampleAgent]
	if !slices.Equal(a.running, []string{jenkinstest.SampleSlowFrontendJob + "#1"}) || a.busy != 2 {
		t.Errorf("agent %+v, want only the frontend build named, both executors busy", a)
	}
}

func TestListNodes_ForbiddenWithoutOverallRead(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, &envOpts{simOpts: func(o *jenkinstest.Options) { o.NoImplicitOverallRead = true }})
	errObj := e.fail(t, "list_nodes", nil, "forbidden")
	if errObj["required_permission"] != string(jenkinstest.PermOverallRead) {
		t.Errorf("error %v, want required_permission %s", errObj, jenkinstest.PermOverallRead)
	}
	e.fail(t, "list_queue", nil, "forbidden")
}

func TestListQueueAndNodes_PolicyDenial(t *testing.T) {
	t.Parallel()
	policy := `permit (principal, action, resource);
forbid (principal, action in [Action::"list_queue", Action::"list_nodes"], resource);`
	p := identity.Principal{User: jenkinstest.SampleAlice, JenkinsUser: jenkinstest.SampleAlice, Local: true}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{policy: []byte(policy), principal: &p})
	e.fail(t, "list_queue", nil, "forbidden")
	e.fail(t, "list_nodes", nil, "forbidden")
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("%d Jenkins requests for denied calls", n)
	}
	e.fail(t, "list_queue", map[string]any{"x": 1}, "invalid_argument")
}

// TestListQueueAndNodes_BoundsAtTheLimit: Jenkins is asked for at most
// 1001 entries; 1000 are listed and the answer says truncated; exactly
// 1000 are listed whole.
func TestListQueueAndNodes_BoundsAtTheLimit(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1000, 1001} {
		e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{simOpts: func(o *jenkinstest.Options) { o.Executors = -1 }})
		for i := range n {
			job := "backend/bulk-" + strconv.Itoa(i)
			if err := e.sim.AddJob(job, jenkinstest.JobSpec{}); err != nil {
				t.Fatal(err)
			}
			if _, err := e.sim.Schedule(job, "", nil); err != nil {
				t.Fatal(err)
			}
		}
		// Without executors, Sample has the built-in node and
		// mac-agent-1: n nodes in all with n-2 more.
		for i := range n - 2 {
			if err := e.sim.AddNode(jenkinstest.NodeSpec{Name: "bulk-" + strconv.Itoa(i), Executors: 1, LaunchFailed: true}); err != nil {
				t.Fatal(err)
			}
		}
		q := e.ok(t, "list_queue", nil)
		if got := len(q["items"].([]any)); got != min(n, 1000) || q["truncated"] != (n > 1000) {
			t.Errorf("%d queued: %d listed, truncated %v", n, got, q["truncated"])
		}
		nodes := e.ok(t, "list_nodes", nil)
		if got := len(nodes["nodes"].([]any)); got != min(n, 1000) || nodes["truncated"] != (n > 1000) {
			t.Errorf("%d nodes: %d listed, truncated %v", n, got, nodes["truncated"])
		}
	}
}

// TestListQueue_DiscoverIsNotRead: a user who may only discover a job
// learns nothing of its queued builds (CONTRACT §11, Item.Discover).
func TestListQueue_DiscoverIsNotRead(t *testing.T) {
	t.Parallel()
	e, _, _ := busyEnv(t, "erin", nil)
	e.sim.AddUser("erin", "Erin", "wrong-token") // the env's credential for a user not in Sample
	e.sim.Grant("erin", "backend", jenkinstest.PermDiscover)
	if items := e.ok(t, "list_queue", nil)["items"].([]any); len(items) != 0 {
		t.Errorf("erin sees %v", items)
	}
	for _, n := range e.ok(t, "list_nodes", nil)["nodes"].([]any) {
		if r := n.(map[string]any)["running"].([]any); len(r) != 0 {
			t.Errorf("erin sees running builds %v", r)
		}
	}
}
