package jenkins

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestParseNodes_RealJenkinsFixture(t *testing.T) {
	t.Parallel()
	ns, err := ParseNodes(readFixture(t, "computer.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Nodes) != 10 || ns.Truncated {
		t.Fatalf("%d nodes (truncated %v), want 10", len(ns.Nodes), ns.Truncated)
	}
	// Jenkins 1.x: the controller was "master", without _class.
	m := ns.Nodes[0]
	if m.Name != "master" || !m.Online || m.ExecutorsTotal != 2 || m.OfflineReason != "" {
		t.Errorf("controller: %+v", m)
	}
	a := ns.Nodes[1]
	if a.Name != "alpine-i686" || a.Online || a.OfflineReason != "This node is offline because Jenkins failed to launch the slave agent on it." {
		t.Errorf("offline agent: %+v", a)
	}
}

func TestParseNodes_CurrentJenkins(t *testing.T) {
	t.Parallel()
	doc := `{"_class":"hudson.model.ComputerSet","computer":[
	 {"_class":"hudson.model.Hudson$MasterComputer","displayName":"Built-In Node","offline":false,"offlineCause":null,"offlineCauseReason":"",
	  "numExecutors":2,"assignedLabels":[{"name":"built-in"},{"name":"controller"}],
	  "executors":[{"idle":false,"currentExecutable":null},{"idle":true,"currentExecutable":null}],
	  "oneOffExecutors":[{"idle":false,"currentExecutable":{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":7,"url":"https://ci.example.com/jenkins/job/app/job/main/7/"}}]},
	 {"_class":"hudson.slaves.SlaveComputer","displayName":"linux-1","offline":false,"offlineCause":null,"offlineCauseReason":"",
	  "numExecutors":3,"assignedLabels":[{"name":"linux-1"},{"name":"linux"},{"name":"docker"}],
	  "executors":[{"idle":false,"currentExecutable":{"number":12,"url":"https://ci.example.com/jenkins/job/web/12/"}},
	   {"idle":false,"currentExecutable":{"_class":"org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask$PlaceholderExecutable"}},
	   {"idle":false,"currentExecutable":{"number":7,"url":"https://ci.example.com/jenkins/job/app/job/main/7/"}}]},
	 {"_class":"hudson.slaves.SlaveComputer","displayName":"mac","offline":true,
	  "offlineCause":{"_class":"hudson.slaves.OfflineCause$UserCause","description":"Disconnected by admin : Xcode <15> & more"},
	  "offlineCauseReason":"Xcode &lt;15&gt; &amp; more","numExecutors":1,"assignedLabels":[{"name":"mac"}],"executors":[{"idle":true}]},
	 {"_class":"hudson.slaves.SlaveComputer","displayName":"arm","offline":true,
	  "offlineCause":{"_class":"hudson.slaves.OfflineCause$LaunchFailed"},
	  "offlineCauseReason":"This agent is offline because Jenkins failed to launch the agent process on it.","numExecutors":1,"executors":[]}]}`
	ns, err := ParseNodes([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	type view struct {
		name, reason string
		online       bool
		labels       []string
		total, busy  int
		running      []string
	}
	var got []view
	for _, n := range ns.Nodes {
		v := view{name: n.Name, reason: n.OfflineReason, online: n.Online, labels: n.Labels, total: n.ExecutorsTotal, busy: n.ExecutorsBusy}
		for _, r := range n.Running {
			v.running = append(v.running, fmt.Sprintf("%s#%d", r.Job, r.Number))
		}
		got = append(got, v)
	}
	want := []view{
		// A build hidden from the user still keeps its executor busy;
		// the Pipeline run on a one-off executor is listed, not counted.
		{name: "built-in", online: true, labels: []string{"controller"}, total: 2, busy: 1, running: []string{"app/main#7"}},
		// The placeholder of a node block names no build; the same run
		// seen twice is listed once.
		{name: "linux-1", online: true, labels: []string{"docker", "linux"}, total: 3, busy: 3, running: []string{"web#12", "app/main#7"}},
		{name: "mac", reason: "Disconnected by admin : Xcode <15> & more", labels: []string{}, total: 1},
		{name: "arm", reason: "This agent is offline because Jenkins failed to launch the agent process on it.", labels: []string{}, total: 1},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.name != w.name || g.reason != w.reason || g.online != w.online || !slices.Equal(g.labels, w.labels) ||
			g.total != w.total || g.busy != w.busy || !slices.Equal(g.running, w.running) {
			t.Errorf("node %d: got %+v, want %+v", i, g, w)
		}
	}
}

func TestParseNodes_Bounds(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	b.WriteString(`{"computer":[`)
	for i := range MaxNodes + 1 {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"displayName":"n%04d","executors":[`, i)
		if i == 0 {
			for j := range MaxNodeRunning + 1 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"idle":false,"currentExecutable":{"number":%d,"url":"http://j/job/x/%d/"}}`, j+1, j+1)
			}
		}
		b.WriteString(`],"assignedLabels":[`)
		if i == 0 {
			for j := range MaxNodeLabels + 5 {
				if j > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, `{"name":"l%03d"}`, j)
			}
		}
		b.WriteString(`]}`)
	}
	b.WriteString(`]}`)
	ns, err := ParseNodes([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Nodes) != MaxNodes || !ns.Truncated {
		t.Errorf("%d nodes, truncated %v; want %d, true", len(ns.Nodes), ns.Truncated, MaxNodes)
	}
	n := ns.Nodes[0]
	if len(n.Running) != MaxNodeRunning || !n.RunningTruncated || n.ExecutorsBusy != MaxNodeRunning+1 {
		t.Errorf("running %d (truncated %v, busy %d)", len(n.Running), n.RunningTruncated, n.ExecutorsBusy)
	}
	if len(n.Labels) != MaxNodeLabels {
		t.Errorf("%d labels, want %d", len(n.Labels), MaxNodeLabels)
	}
	if !strings.Contains(nodesTree, fmt.Sprintf("{0,%d}", MaxNodes+1)) {
		t.Errorf("the request does not bound the nodes: %s", nodesTree)
	}
}

func TestParseQueue_RealJenkinsFixtures(t *testing.T) {
	t.Parallel()
	q, err := ParseQueue(readFixture(t, "queue.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Items) != 2 || q.Truncated {
		t.Fatalf("items %+v", q.Items)
	}
	it := q.Items[0]
	if it.ID != 7 || it.Job.String() != "chicken" || !it.HasJob || it.State != QueueBuildable || it.InQueueSince != 1460738557584 ||
		it.Why != "Waiting for next available executor" || it.Stuck {
		t.Errorf("first item %+v", it)
	}
	q, err = ParseQueue(readFixture(t, "node-jenkins/queueList.json"))
	if err != nil || len(q.Items) != 1 || q.Items[0].Job.String() != "test-job-b7ef0845-6515-444c-96a1-d2266d5e0f18" {
		t.Errorf("queueList.json: %+v, %v", q, err)
	}
}

func TestParseQueue_BoundAndTasks(t *testing.T) {
	t.Parallel()
	items := make([]string, 0, MaxQueueItems+1)
	for i := range MaxQueueItems + 1 {
		items = append(items, fmt.Sprintf(`{"_class":"hudson.model.Queue$BuildableItem","id":%d,"task":{"url":"http://j/job/f/job/j%d/"}}`, i+1, i))
	}
	q, err := ParseQueue([]byte(`{"items":[` + strings.Join(items, ",") + `]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(q.Items) != MaxQueueItems || !q.Truncated || q.Items[5].Job.String() != "f/j5" {
		t.Errorf("%d items, truncated %v", len(q.Items), q.Truncated)
	}
	for _, tc := range []struct {
		task string
		job  string
	}{
		{`{"name":"a","url":"https://ci/jenkins/job/a%20b/"}`, "a b"},
		{`{"name":"x","url":"https://ci/job/f/job/x/","fullName":"f/x"}`, "f/x"},
		// A Pipeline's node block waiting for an executor: its build's URL.
		{`{"_class":"org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask","url":"https://ci/job/app/job/main/7/"}`, "app/main"},
		{`{"name":"other","url":"https://ci/computer/x/"}`, ""},
		{`{"name":"nourl"}`, ""},
		{`{"url":"https://ci/job/a/0/"}`, ""},
	} {
		q, err := ParseQueue([]byte(`{"items":[{"_class":"hudson.model.Queue$BuildableItem","id":1,"task":` + tc.task + `}]}`))
		if err != nil {
			t.Fatal(err)
		}
		e := q.Items[0]
		if e.HasJob != (tc.job != "") || e.HasJob && e.Job.String() != tc.job {
			t.Errorf("%s: job %q (%v), want %q", tc.task, e.Job.String(), e.HasJob, tc.job)
		}
	}
}

// FuzzParseQueueAndNodes feeds arbitrary JSON to the two list parsers:
// they never panic, and their answers stay within their bounds.
func FuzzParseQueueAndNodes(f *testing.F) {
	for _, name := range []string{"queue.json", "computer.json", "node-jenkins/queueList.json"} {
		f.Add(readFixture(f, name))
	}
	f.Add([]byte(`{"computer":[{"_class":"hudson.model.Hudson$MasterComputer","executors":[{"idle":false,"currentExecutable":{"number":3,"url":"/job/a/3/"}}]}]}`))
	f.Add([]byte(`{"items":[{"id":1,"task":{"url":"/job/a/job/%2e%2e/4/"}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if q, err := ParseQueue(data); err == nil {
			if len(q.Items) > MaxQueueItems {
				t.Fatalf("%d items", len(q.Items))
			}
			for _, it := range q.Items {
				if it.HasJob && it.Job.String() == "" {
					t.Fatal("an item with an empty job")
				}
			}
		}
		if ns, err := ParseNodes(data); err == nil {
			if len(ns.Nodes) > MaxNodes {
				t.Fatalf("%d nodes", len(ns.Nodes))
			}
			for _, n := range ns.Nodes {
				if len(n.Running) > MaxNodeRunning || len(n.Labels) > MaxNodeLabels || n.ExecutorsBusy > n.ExecutorsTotal {
					t.Fatalf("node %+v over its bounds", n)
				}
				if _, err := json.Marshal(n); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}
