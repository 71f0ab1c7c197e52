package jenkins

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fixtureDir is the folder of responses recorded from real Jenkins servers,
// kept in the repository's testdata/jenkins.
func fixtureDir(t testing.TB) string {
	dir := filepath.Join("..", "..", "testdata", "jenkins")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("Jenkins fixtures not found at %s: %v", dir, err)
	}
	return dir
}

func readFixture(t testing.TB, name string) []byte {
	data, err := os.ReadFile(filepath.Join(fixtureDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParse_RealJenkinsFixtures(t *testing.T) {
	t.Parallel()
	t.Run("job with parameters", func(t *testing.T) {
		j, err := ParseJob(readFixture(t, "job-info.json"))
		if err != nil {
			t.Fatal(err)
		}
		want := []ParamDef{
			{Name: "bear", Kind: ParamBoolean, JenkinsType: "BooleanParameterDefinition", Description: "some bear", Default: true},
			{Name: "fish", Kind: ParamString, JenkinsType: "StringParameterDefinition", Description: "some fish", Default: "salmon"},
		}
		if diff := cmp.Diff(want, j.Parameters); diff != "" {
			t.Errorf("parameters (-want +got):\n%s", diff)
		}
		if !j.Buildable || !j.InQueue || j.QueueID != 71 || j.LastBuild != 7 || j.LastSuccessfulBuild != 6 || j.LastFailedBuild != 0 || j.NextBuildNumber != 8 {
			t.Errorf("job fields wrong: %+v", j)
		}
	})
	t.Run("job never built and disabled", func(t *testing.T) {
		j, err := ParseJob(readFixture(t, "node-jenkins/jobGet.json"))
		if err != nil {
			t.Fatal(err)
		}
		if !j.Buildable || j.LastBuild != 0 || j.Description != "before" || j.Color != "notbuilt" || len(j.Parameters) != 0 {
			t.Errorf("jobGet: %+v", j)
		}
		d, err := ParseJob(readFixture(t, "node-jenkins/jobGetDisabled.json"))
		if err != nil {
			t.Fatal(err)
		}
		if d.Buildable || d.Color != "disabled" {
			t.Errorf("disabled job parsed as buildable: %+v", d)
		}
	})
	t.Run("listings", func(t *testing.T) {
		for name, wantJobs := range map[string][]string{
			"jobsInRootFolder.json":     {"Test Tool", "Test MultiBranch Project", "Test Folder", "Test Docker Slave", "Test Free Style", "Test Workflow Job"},
			"jobsInJenkinsFolder.json":  {"Test Project"},
			"node-jenkins/jobList.json": {"asdf", "test-e474800e-9d04-437a-8dd3-c29c7156185e"},
		} {
			l, _, err := streamListing(readFixture(t, name), "", true)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var got []string
			for i := range l.Len() {
				got = append(got, l.Name(i))
			}
			slices.Sort(wantJobs)
			if diff := cmp.Diff(wantJobs, got); diff != "" {
				t.Errorf("%s (-want +got):\n%s", name, diff)
			}
		}
	})
	t.Run("builds", func(t *testing.T) {
		for _, tc := range []struct {
			file   string
			params map[string]any
		}{
			{"build-info.json", map[string]any{"bear": true, "fish": "salmon"}},
			{"build-info-git-commit.json", map[string]any{"bear": true, "fish": "salmon"}},
			{"build-info-empty-and-null-params.json", map[string]any{"bear": "null", "fish": ""}},
			{"build-info-no-params.json", map[string]any{}},
			{"node-jenkins/buildGet.json", map[string]any{}},
		} {
			b, err := ParseBuild(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if diff := cmp.Diff(tc.params, b.Parameters); diff != "" {
				t.Errorf("%s parameters (-want +got):\n%s", tc.file, diff)
			}
			if b.Result != "SUCCESS" || b.Building || b.Number == 0 || b.Timestamp == 0 || b.URL == "" {
				t.Errorf("%s: %+v", tc.file, b)
			}
			if diff := cmp.Diff([]string{"Started by user anonymous"}, b.Causes); diff != "" {
				t.Errorf("%s causes (-want +got):\n%s", tc.file, diff)
			}
		}
	})
	t.Run("queue items in every state", func(t *testing.T) {
		for _, tc := range []struct {
			file   string
			state  QueueState
			build  int64
			why    string
			params map[string]any
		}{
			{"queueItemPending.json", QueueBlocked, 0, "Build #9 is already in progress (ETA:15 sec)", map[string]any{"a": "4"}},
			{"queueItemNullTaskName.json", QueueBlocked, 0, "Build #9 is already in progress (ETA:15 sec)", map[string]any{"a": "4"}},
			{"queueItemMissingTaskUrl.json", QueueBuildable, 0, "Just a random message here", map[string]any{}},
			{"queueItemRunning.json", QueueStarted, 14, "", map[string]any{"a": "4"}},
			{"queueItemMultipleParameters.json", QueueStarted, 14, "", map[string]any{"a": "1", "b": "2", "c": "3"}},
			{"queueItemEmptyParameterValue.json", QueueStarted, 14, "", map[string]any{"a": "1", "b": "2", "c": "3"}},
			{"queueItemCancelled.json", QueueCancelled, 0, "", map[string]any{"a": "4"}},
			{"node-jenkins/queueItem.json", QueueStarted, 28, "", map[string]any{}},
		} {
			q, err := ParseQueueItem(readFixture(t, tc.file))
			if err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			if q.State != tc.state || q.BuildNumber != tc.build || q.Why != tc.why {
				t.Errorf("%s: state %q build %d why %q; want %q %d %q", tc.file, q.State, q.BuildNumber, q.Why, tc.state, tc.build, tc.why)
			}
			if diff := cmp.Diff(tc.params, q.Parameters); diff != "" {
				t.Errorf("%s parameters (-want +got):\n%s", tc.file, diff)
			}
		}
	})
	t.Run("user", func(t *testing.T) {
		u, err := ParseUser(readFixture(t, "user.json"))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(&User{ID: "admin", FullName: "Administrator"}, u); diff != "" {
			t.Errorf("user (-want +got):\n%s", diff)
		}
	})
	t.Run("console text", func(t *testing.T) {
		res, err := scanLog(strings.NewReader(string(readFixture(t, "node-jenkins/consoleText.txt"))), regexp.MustCompile(`git fetch`), 10, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Matches) == 0 || !strings.Contains(res.Matches[0].Line, "git fetch") || len(res.Matches[0].Before) != 1 {
			t.Errorf("search of a real console: %+v", res)
		}
	})
}

func TestParse_PasswordValuesNeverReturned(t *testing.T) {
	t.Parallel()
	b, err := ParseBuild([]byte(`{"number":3,"actions":[{"_class":"hudson.model.ParametersAction","parameters":[
		{"_class":"hudson.model.PasswordParameterValue","name":"TOKEN","value":"s3cret"},
		{"_class":"hudson.model.StringParameterValue","name":"BRANCH","value":"main"}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"TOKEN": nil, "BRANCH": "main"}, b.Parameters); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	j, err := ParseJob([]byte(`{"property":[{"parameterDefinitions":[{"_class":"hudson.model.PasswordParameterDefinition",
		"name":"TOKEN","type":"PasswordParameterDefinition","defaultParameterValue":{"value":"default-secret"}}]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Parameters) != 1 || j.Parameters[0].Default != nil || j.Parameters[0].Kind != ParamPassword {
		t.Errorf("password default leaked: %+v", j.Parameters)
	}
}

func TestQueueIDFromLocation(t *testing.T) {
	t.Parallel()
	for loc, want := range map[string]int64{
		"http://jenkins/queue/item/42/":               42,
		"https://ci.example.com/jenkins/queue/item/7": 7,
		"/queue/item/9/":                              9,
		"http://jenkins/queue/item/x/":                0,
		"http://jenkins/job/a/42/":                    0,
		"http://jenkins/queue/item/-1/":               0,
		"":                                            0,
		"http://jenkins/queue/item/99999999999999999999/": 0,
	} {
		got, ok := queueIDFromLocation(loc)
		if got != want || ok != (want != 0) {
			t.Errorf("queueIDFromLocation(%q) = %d, %t; want %d", loc, got, ok, want)
		}
	}
}

func TestListTree(t *testing.T) {
	t.Parallel()
	// No color or lastBuild: those load every job's last build record.
	if got, want := listTree(1), "jobs[name,url,buildable,jobs[name]]"; got != want {
		t.Errorf("listTree(1) = %q, want %q", got, want)
	}
	if got, want := statusTree(1), "jobs[name,color,lastBuild[number],jobs[name,color,lastBuild[number]]]"; got != want {
		t.Errorf("statusTree(1) = %q, want %q", got, want)
	}
	if got := listTree(3); strings.Count(got, "jobs[") != 4 {
		t.Errorf("listTree(3) = %q: want 4 nested jobs[", got)
	}
}

func TestTailChunk(t *testing.T) {
	t.Parallel()
	buf := []byte("one\ntwo\nthree\nfour\n")
	for _, tc := range []struct {
		n, max int
		want   string
	}{
		{1, 100, "four\n"},
		{2, 100, "three\nfour\n"},
		{10, 100, "one\ntwo\nthree\nfour\n"},
		{4, 12, "three\nfour\n"},
		{1, 3, "ur\n"},
	} {
		starts := []lineStart{{4, 104}, {8, 108}, {14, 114}, {19, 119}}
		c := tailChunk(buf, 100, 119, starts, &logAnswer{size: 119}, tc.n, tc.max)
		if string(c.Text) != tc.want {
			t.Errorf("tail %d max %d = %q, want %q", tc.n, tc.max, c.Text, tc.want)
		}
		if c.Next != 119 || c.Start != 119-int64(len(c.Text)) {
			t.Errorf("tail %d: offsets %d..%d", tc.n, c.Start, c.Next)
		}
	}
	// No trailing newline: the last partial line counts as a line.
	if c := tailChunk([]byte("a\nb"), 0, 3, []lineStart{{2, 2}}, &logAnswer{size: 3, running: true}, 1, 10); string(c.Text) != "b" || !c.Running {
		t.Errorf("tail without newline = %q", c.Text)
	}
}

func TestTrimToRune(t *testing.T) {
	t.Parallel()
	s := []byte("ab日本")
	for i := range len(s) + 1 {
		got := trimToRune(s[:i])
		if !utf8Valid(got) {
			t.Errorf("trimToRune(%q) = %q is not valid UTF-8", s[:i], got)
		}
		if len(s[:i])-len(got) >= 3 {
			t.Errorf("trimToRune(%q) dropped too much: %q", s[:i], got)
		}
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "\uFFFD") == string(b) }

func TestScanLog(t *testing.T) {
	t.Parallel()
	log := "a\nERROR one\nb\nc\nERROR two\nd\n" + strings.Repeat("x", 10000) + "ERROR long\n"
	res, err := scanLog(strings.NewReader(log), regexp.MustCompile("ERROR"), 10, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Match{
		{LineNumber: 2, Line: "ERROR one", Before: []string{"a"}, After: []string{"b"}},
		{LineNumber: 5, Line: "ERROR two", Before: []string{"c"}, After: []string{"d"}},
	}
	if diff := cmp.Diff(want, res.Matches[:2]); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// A line longer than maxLineBytes is matched on its first part only
	// and returned cut.
	if len(res.Matches) != 2 {
		t.Errorf("long line: got %d matches, want the 2 short ones (its ERROR is past the cut)", len(res.Matches))
	}
	res, _ = scanLog(strings.NewReader(log), regexp.MustCompile("x+"), 10, 0)
	if len(res.Matches) != 1 || len(res.Matches[0].Line) != maxLineBytes || res.Matches[0].LineNumber != 7 {
		t.Errorf("long line match: %d matches", len(res.Matches))
	}
	res, _ = scanLog(strings.NewReader(log), regexp.MustCompile("."), 3, 0)
	if len(res.Matches) != 3 || !res.Truncated {
		t.Errorf("max matches: %d, truncated %t", len(res.Matches), res.Truncated)
	}
	// Overlapping context: a match inside another's after-context.
	res, _ = scanLog(strings.NewReader("E1\nE2\nz\n"), regexp.MustCompile("E"), 10, 2)
	if diff := cmp.Diff([]Match{
		{LineNumber: 1, Line: "E1", Before: []string{}, After: []string{"E2", "z"}},
		{LineNumber: 2, Line: "E2", Before: []string{"E1"}, After: []string{"z"}},
	}, res.Matches); diff != "" {
		t.Errorf("overlapping context (-want +got):\n%s", diff)
	}
}

// FuzzParseJenkinsJSON feeds arbitrary bytes to every parser of Jenkins
// answers: none may panic, and whatever they accept must be internally
// consistent.
func FuzzParseJenkinsJSON(f *testing.F) {
	dir := filepath.Join("..", "..", "testdata", "jenkins")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	more, _ := filepath.Glob(filepath.Join(dir, "node-jenkins", "*.json"))
	if len(files) == 0 || len(more) == 0 {
		f.Fatalf("Jenkins fixtures not found in %s", dir) // a missing fixture fails, never skips
	}
	for _, name := range append(files, more...) {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"jobs":[{"name":"a","jobs":[{"name":"b"}]}]}`))
	f.Add([]byte(`{"jobs":[{"jobs":[{"name":"b","url":"http://j/job/a/job/b/","lastBuild":{"number":3}}],"name":"a","url":"http://j/job/a/"},{"name":"c d","url":"http://j/job/c%20d/"}]}`))
	f.Add([]byte(`{"_class":"hudson.model.Queue$LeftItem","cancelled":true,"executable":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if j, err := ParseJob(data); err == nil {
			for _, p := range j.Parameters {
				if p.Kind == ParamPassword && p.Default != nil {
					t.Fatalf("password default returned: %v", p.Default)
				}
			}
		}
		if q, err := ParseQueueItem(data); err == nil {
			switch q.State {
			case QueueWaiting, QueueBlocked, QueueBuildable, QueueStarted, QueueCancelled:
			default:
				t.Fatalf("unknown queue state %q", q.State)
			}
		}
		_, _ = ParseBuild(data)
		_, _ = ParseTestReport(data)
		_, _ = ParseUser(data)
		checkListingAgainstReference(t, data)
		if items, err := parseStatusTree(data); err == nil {
			found := map[string]JobStatus{}
			collectStatuses("f", items, found)
			for name := range found {
				if !strings.HasPrefix(name, "f/") || strings.HasSuffix(name, "/") {
					t.Fatalf("status recorded under %q", name)
				}
			}
		}
	})
}

// TestQueueItem_JobPathIgnoresTheRootURL pins how a queue item names its
// job: the task's fullName, else the job segments of the task URL whatever
// its host and root path (Jenkins's configured root URL), never a guess.
func TestQueueItem_JobPathIgnoresTheRootURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		q    QueueItem
		want string
		ok   bool
	}{
		{QueueItem{TaskFullName: "prod/deploy", TaskURL: "https://other/job/x/"}, "prod/deploy", true},
		{QueueItem{TaskURL: "https://ci.example.com/jenkins/job/prod/job/deploy/"}, "prod/deploy", true},
		{QueueItem{TaskURL: "http://10.0.0.5:8080/job/frontend/job/mobile/job/feature%252Flogin/"}, "frontend/mobile/feature%2Flogin", true},
		{QueueItem{TaskURL: "https://ci.example.com/computer/agent-1/"}, "", false},
		{QueueItem{TaskURL: "https://ci.example.com/job/a/view/all/"}, "", false},
		{QueueItem{TaskURL: "https://ci.example.com/job/a%2Fb/"}, "", false},
		{QueueItem{TaskFullName: "a/../prod"}, "", false},
	} {
		p, ok := tc.q.JobPath()
		if ok != tc.ok || (ok && p.String() != tc.want) {
			t.Errorf("JobPath(%+v) = %q, %v; want %q, %v", tc.q, p.String(), ok, tc.want, tc.ok)
		}
	}
}
