package jenkinstest

import (
	"net/http"
	"slices"
	"testing"
	"time"
)

// busySample is the Sample instance after SampleActivity, on a fake clock.
func busySample(t *testing.T) (*Server, *FakeClock, int64, int64) {
	t.Helper()
	clk := NewFakeClock(t0)
	s := Sample(&Options{Clock: clk})
	blocked, buildable, err := SampleActivity(s)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(5 * time.Second) // past the quiet periods
	return s, clk, blocked, buildable
}

const computerTree = "computer[_class,displayName,offline,temporarilyOffline,offlineCause[description],offlineCauseReason,numExecutors," +
	"assignedLabels[name],executors[idle,currentExecutable[number,url]]],busyExecutors,totalExecutors"

func computersOf(t *testing.T, s *Server, user string) (map[string]map[string]any, map[string]any) {
	t.Helper()
	doc := getJSON(t, s, "/computer/api/json?tree="+computerTree, user)
	out := map[string]map[string]any{}
	for _, c := range doc["computer"].([]any) {
		m := c.(map[string]any)
		out[m["displayName"].(string)] = m
	}
	return out, doc
}

// running lists the build URLs an executor list shows, and how many
// executors are busy.
func running(c map[string]any) (urls []string, busy int) {
	for _, x := range c["executors"].([]any) {
		ex := x.(map[string]any)
		if ex["idle"] == false {
			busy++
		}
		if b, ok := ex["currentExecutable"].(map[string]any); ok {
			urls = append(urls, b["url"].(string))
		}
	}
	return urls, busy
}

func TestComputers_ExecutorsHideBuildsTheUserMayNotRead(t *testing.T) {
	t.Parallel()
	s, _, _, _ := busySample(t)
	for _, tc := range []struct {
		user string
		want []string
	}{
		{SampleAdmin, []string{"job/backend/job/integration-tests/1/", "job/frontend/job/e2e-nightly/1/"}},
		{SampleAlice, []string{"job/backend/job/integration-tests/1/", "job/frontend/job/e2e-nightly/1/"}},
		{SampleCarol, []string{"job/frontend/job/e2e-nightly/1/"}}, // nothing on backend
	} {
		cs, doc := computersOf(t, s, tc.user)
		agent := cs[SampleAgent]
		if agent == nil {
			t.Fatalf("%s: no %s in %v", tc.user, SampleAgent, cs)
		}
		urls, busy := running(agent)
		var rel []string
		for _, u := range urls {
			rel = append(rel, u[len("http://jenkins.test/"):])
		}
		slices.Sort(rel)
		if !slices.Equal(rel, tc.want) || busy != 2 {
			t.Errorf("%s: running %v (busy %d), want %v (busy 2: Executor.isIdle does not depend on the user)", tc.user, rel, busy, tc.want)
		}
		// ComputerSet counts online computers only.
		if doc["busyExecutors"] != float64(2) || doc["totalExecutors"] != float64(2) {
			t.Errorf("%s: busy %v total %v, want 2 and 2", tc.user, doc["busyExecutors"], doc["totalExecutors"])
		}
	}
}

func TestComputers_BuiltInAgentsAndOfflineCause(t *testing.T) {
	t.Parallel()
	s, _, _, _ := busySample(t)
	cs, _ := computersOf(t, s, SampleBob)
	if len(cs) != 3 {
		t.Fatalf("computers %v, want the built-in node and two agents", cs)
	}
	bi := cs[builtInDisplayName]
	if bi["_class"] != "hudson.model.Hudson$MasterComputer" || bi["numExecutors"] != float64(0) || bi["offline"] != false {
		t.Errorf("built-in node: %v", bi)
	}
	if l := bi["assignedLabels"].([]any); len(l) != 1 || l[0].(map[string]any)["name"] != "built-in" {
		t.Errorf("built-in labels: %v (Node.getAssignedLabels includes the self label)", l)
	}
	off := cs[SampleOfflineAgent]
	cause, _ := off["offlineCause"].(map[string]any)
	if off["offline"] != true || off["temporarilyOffline"] != true || cause == nil ||
		cause["_class"] != "hudson.slaves.OfflineCause$UserCause" ||
		cause["description"] != "Disconnected by admin : "+SampleOfflineMessage || off["offlineCauseReason"] != SampleOfflineMessage {
		t.Errorf("offline agent: %v", off)
	}
	agent := cs[SampleAgent]
	var labels []string
	for _, l := range agent["assignedLabels"].([]any) {
		labels = append(labels, l.(map[string]any)["name"].(string))
	}
	if !slices.Equal(labels, []string{"docker", "linux", SampleAgent}) {
		t.Errorf("agent labels %v", labels)
	}
	if agent["offlineCause"] != nil || agent["offlineCauseReason"] != "" {
		t.Errorf("online agent's cause: %v %v", agent["offlineCause"], agent["offlineCauseReason"])
	}
}

func TestComputers_NeedOverallRead(t *testing.T) {
	t.Parallel()
	s := New(&Options{NoImplicitOverallRead: true})
	s.AddUser("eve", "Eve", "eve-token")
	if w := call(t, s, "GET", "/computer/api/json", "eve"); w.Code != http.StatusForbidden || w.Header().Get("X-Required-Permission") != string(PermOverallRead) {
		t.Errorf("without Overall/Read: %d %q", w.Code, w.Header().Get("X-Required-Permission"))
	}
}

func TestComputers_BuildsTakeFreeExecutorsOfOnlineNodes(t *testing.T) {
	t.Parallel()
	clk := NewFakeClock(t0)
	s := New(&Options{Clock: clk, Executors: 1, QuietPeriod: NoQuietPeriod})
	s.AddUser("admin", "Admin", "admin-token")
	s.Grant("admin", "", PermAdminister)
	for _, j := range []string{"a", "b", "c", "d"} {
		if err := s.AddJob(j, JobSpec{Duration: time.Minute}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddNode(NodeSpec{Name: "agent", Executors: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddNode(NodeSpec{Name: "broken", Executors: 4, LaunchFailed: true}); err != nil {
		t.Fatal(err)
	}
	for _, j := range []string{"a", "b", "c", "d"} {
		if _, err := s.Schedule(j, "admin", nil); err != nil {
			t.Fatal(err)
		}
	}
	cs, doc := computersOf(t, s, "admin")
	if _, busy := running(cs[builtInDisplayName]); busy != 1 {
		t.Errorf("built-in busy %d, want 1", busy)
	}
	if _, busy := running(cs["agent"]); busy != 2 {
		t.Errorf("agent busy %d, want 2", busy)
	}
	if _, busy := running(cs["broken"]); busy != 0 || cs["broken"]["offlineCauseReason"] != msgLaunchFailed {
		t.Errorf("offline agent took builds or lost its cause: %v", cs["broken"])
	}
	if doc["totalExecutors"] != float64(3) {
		t.Errorf("totalExecutors %v, want 3 (offline agents do not count)", doc["totalExecutors"])
	}
	q := getJSON(t, s, "/queue/api/json", "admin")["items"].([]any)
	if len(q) != 1 || q[0].(map[string]any)["why"] != "Waiting for next available executor" {
		t.Errorf("queue %v, want d waiting for an executor", q)
	}
	if err := s.AddNode(NodeSpec{Name: "agent", Executors: 1}); err == nil {
		t.Error("a second node named agent was added")
	}
	if err := s.AddNode(NodeSpec{Name: "zero"}); err == nil {
		t.Error("a node without executors was added")
	}
}

func TestQueue_ListsItemsByTheTasksOwnPermission(t *testing.T) {
	t.Parallel()
	s, _, blocked, buildable := busySample(t)
	ids := func(user string) []int64 {
		var out []int64
		for _, it := range getJSON(t, s, "/queue/api/json?tree=items[id]", user)["items"].([]any) {
			out = append(out, int64(it.(map[string]any)["id"].(float64)))
		}
		slices.Sort(out)
		return out
	}
	if got := ids(SampleAlice); !slices.Equal(got, []int64{blocked, buildable}) {
		t.Errorf("alice sees %v, want %d and %d", got, blocked, buildable)
	}
	if got := ids(SampleCarol); !slices.Equal(got, []int64{buildable}) {
		t.Errorf("carol sees %v, want only %d (she may not read backend)", got, buildable)
	}
	// Read granted on the job itself, not on its folder: Queue.getItems
	// asks the task's ACL only.
	s.AddUser("erin", "Erin", "erin-token")
	s.Grant("erin", SampleSlowBackendJob, PermRead)
	if got := ids("erin"); !slices.Equal(got, []int64{blocked}) {
		t.Errorf("erin sees %v, want %d", got, blocked)
	}
	// And the item itself: Queue.Item.getApi asks the task's ACL too.
	if w := call(t, s, "GET", "/queue/item/"+itoa(int(blocked))+"/api/json", "erin"); w.Code != http.StatusOK {
		t.Errorf("erin's item: %d", w.Code)
	}
	if w := call(t, s, "GET", "/queue/item/"+itoa(int(blocked))+"/api/json", SampleCarol); w.Code != http.StatusNotFound {
		t.Errorf("carol's view of a backend item: %d, want 404", w.Code)
	}
	// Discover without Read: only a stub naming the task.
	s.AddUser("dan", "Dan", "dan-token")
	s.Grant("dan", "backend", PermDiscover)
	doc := getJSON(t, s, "/queue/api/json", "dan")
	if items := doc["items"].([]any); len(items) != 0 {
		t.Errorf("dan sees items %v", items)
	}
	stubs := doc["discoverableItems"].([]any)
	if len(stubs) != 1 || stubs[0].(map[string]any)["task"].(map[string]any)["name"] != "integration-tests" || len(stubs[0].(map[string]any)) != 1 {
		t.Errorf("dan's discoverable items %v", stubs)
	}
}
