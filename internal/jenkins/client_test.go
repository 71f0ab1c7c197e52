package jenkins_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
)

func mustPath(t testing.TB, s string) jobpath.Path {
	t.Helper()
	p, err := jobpath.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var admin = jenkins.Credential{User: "admin", APIToken: "admin-token"}

func serve(t testing.TB, sim *jenkinstest.Server, prefix string, opts *jenkins.Options) *jenkins.Client {
	t.Helper()
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	c, err := jenkins.New(hs.URL+prefix+"/", opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// deepInstance has folders nested deeper than one listing request reaches.
func deepInstance(t testing.TB, depth int) *jenkinstest.Server {
	sim := jenkinstest.New(nil)
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	path := ""
	for i := range depth {
		if path != "" {
			path += "/"
		}
		path += fmt.Sprintf("level%d", i)
		if err := sim.AddFolder(path); err != nil {
			t.Fatal(err)
		}
		if err := sim.AddJob(path+"/job", jenkinstest.JobSpec{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sim.AddFolder("empty"); err != nil {
		t.Fatal(err)
	}
	if err := sim.AddJob("top", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	return sim
}

func TestListJobs_DeepFoldersCostOneRequestPerCutOff(t *testing.T) {
	t.Parallel()
	sim := deepInstance(t, 9)
	c := serve(t, sim, "", &jenkins.Options{ListDepth: 4})
	l, err := c.ListJobs(context.Background(), admin, jobpath.Path{}, true)
	if err != nil {
		t.Fatal(err)
	}
	jobs := listed(l)
	if len(jobs) != 10 {
		t.Fatalf("got %d jobs, want 10: %+v", len(jobs), jobs)
	}
	for _, j := range jobs {
		if strings.HasSuffix(j.FullName, "empty") || strings.HasSuffix(j.FullName, "level0") {
			t.Errorf("folder listed as a job: %s", j.FullName)
		}
	}
	if last := jobs[len(jobs)-1].FullName; last != "top" {
		t.Errorf("not sorted: last is %q", last)
	}
	// 9 levels with 4 per request: the root request, then one each at
	// level 4 and level 8.
	if n := len(sim.Requests()); n != 3 {
		t.Errorf("listing 9 levels took %d requests, want 3", n)
	}
}

func TestListJobs_NonRecursiveSkipsFolders(t *testing.T) {
	t.Parallel()
	sim := deepInstance(t, 3)
	c := serve(t, sim, "", nil)
	l, err := c.ListJobs(context.Background(), admin, mustPath(t, "level0"), false)
	if err != nil {
		t.Fatal(err)
	}
	jobs := listed(l)
	if len(jobs) != 1 || jobs[0].FullName != "level0/job" {
		t.Errorf("non-recursive level0: %+v", jobs)
	}
}

func TestClient_PathPrefixAndEncodedNames(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(&jenkinstest.Options{Prefix: "/ci/jenkins"})
	c := serve(t, sim, "/ci/jenkins", nil)
	alice := jenkins.Credential{User: "alice", APIToken: "alice-token"}
	for _, name := range []string{"frontend/Release Notes", "frontend/mobile/feature%2Flogin"} {
		j, err := c.GetJob(context.Background(), alice, mustPath(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if j.FullName != name {
			t.Errorf("fullName %q, want %q", j.FullName, name)
		}
	}
	if !strings.HasSuffix(c.QueueURL(5), "/ci/jenkins/queue/item/5/") {
		t.Errorf("queue URL %q lost the prefix", c.QueueURL(5))
	}
	for _, r := range sim.Requests() {
		if !strings.HasPrefix(r.Path, "/ci/jenkins/") {
			t.Errorf("request outside the prefix: %s", r.Path)
		}
	}
}

func TestClient_RetriesOnceWithACrumb(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(&jenkinstest.Options{RequireCrumb: true})
	c := serve(t, sim, "", nil)
	alice := jenkins.Credential{User: "alice", APIToken: "alice-token"}
	id, err := c.Trigger(context.Background(), alice, mustPath(t, "frontend/web-app"), false, nil)
	if err != nil || id <= 0 {
		t.Fatalf("trigger with crumb retry: %d, %v", id, err)
	}
	var posts, crumbs int
	for _, r := range sim.Requests() {
		switch {
		case r.Method == "POST":
			posts++
		case strings.HasSuffix(r.Path, "/crumbIssuer/api/json"):
			crumbs++
		}
	}
	if posts != 2 || crumbs != 1 {
		t.Errorf("%d POSTs and %d crumb requests, want 2 and 1", posts, crumbs)
	}
	// A 403 for a missing permission is not retried.
	sim.ResetRequests()
	bob := jenkins.Credential{User: "bob", APIToken: "bob-token"}
	_, err = c.Trigger(context.Background(), bob, mustPath(t, "frontend/web-app"), false, nil)
	var je *jenkins.Error
	if !errors.As(err, &je) || !errors.Is(err, jenkins.ErrForbidden) || je.RequiredPermission != "hudson.model.Item.Build" {
		t.Fatalf("bob's trigger: %v", err)
	}
}

func TestClient_ErrorMapping(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.Sample(nil)
	c := serve(t, sim, "", &jenkins.Options{Timeout: 200 * time.Millisecond})
	ctx := context.Background()
	bob := jenkins.Credential{User: "bob", APIToken: "bob-token"}
	carol := jenkins.Credential{User: "carol", APIToken: "carol-token"}
	tests := []struct {
		name  string
		fault jenkinstest.Fault
		do    func() error
		want  error
		check func(*jenkins.Error) bool
	}{
		{"not found", jenkinstest.Fault{}, func() error { _, err := c.GetJob(ctx, bob, mustPath(t, "nope")); return err }, jenkins.ErrNotFound, nil},
		{"hidden", jenkinstest.Fault{}, func() error { _, err := c.GetJob(ctx, carol, mustPath(t, "backend/api")); return err }, jenkins.ErrNotFound, nil},
		{"unauthorized", jenkinstest.Fault{}, func() error {
			_, err := c.Me(ctx, jenkins.Credential{User: "bob", APIToken: "wrong"})
			return err
		}, jenkins.ErrUnauthorized, nil},
		{"disabled", jenkinstest.Fault{}, func() error {
			_, err := c.Trigger(ctx, admin, mustPath(t, "frontend/legacy-site"), false, nil)
			return err
		}, jenkins.ErrConflict, nil},
		{"5xx", jenkinstest.Fault{Status: 502}, func() error { _, err := c.GetJob(ctx, bob, mustPath(t, "prod/deploy")); return err }, jenkins.ErrUnavailable,
			func(e *jenkins.Error) bool { return e.Status == 502 }},
		{"timeout", jenkinstest.Fault{Delay: 2 * time.Second}, func() error { _, err := c.GetJob(ctx, bob, mustPath(t, "prod/deploy")); return err }, jenkins.ErrUnavailable,
			func(e *jenkins.Error) bool { return e.Timeout }},
	}
	for _, tt := range tests {
		sim.SetFault(tt.fault)
		err := tt.do()
		var je *jenkins.Error
		if !errors.Is(err, tt.want) || !errors.As(err, &je) || tt.check != nil && !tt.check(je) {
			t.Errorf("%s: got %v, want %v", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "token") {
			t.Errorf("%s: error mentions a token: %v", tt.name, err)
		}
	}
	sim.SetFault(jenkinstest.Fault{})
}

// The client never follows a redirect: a Jenkins (or proxy) answer cannot
// send a request, with the user's credential, somewhere else.
func TestClient_NeverFollowsRedirects(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { elsewhere.Add(1) }))
	defer other.Close()
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/steal", http.StatusFound)
	}))
	defer evil.Close()
	c, err := jenkins.New(evil.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetJob(context.Background(), admin, mustPath(t, "a"))
	if err == nil || elsewhere.Load() != 0 {
		t.Errorf("redirect followed: err=%v, requests elsewhere=%d", err, elsewhere.Load())
	}
	// A redirect somewhere other than the build is not Jenkins's answer
	// to a stop: an error, and not followed.
	if err := c.StopBuild(context.Background(), admin, mustPath(t, "a"), 1); !errors.Is(err, jenkins.ErrUnavailable) {
		t.Errorf("a redirect elsewhere in answer to stop: %v, want ErrUnavailable", err)
	}
	if elsewhere.Load() != 0 {
		t.Error("stop followed the redirect")
	}
}

func TestClient_ResponseSizeLimit(t *testing.T) {
	t.Parallel()
	big := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"name":"%s"}`, strings.Repeat("x", 4096))
	}))
	defer big.Close()
	c, err := jenkins.New(big.URL, &jenkins.Options{MaxJSONBytes: 1024})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetJob(context.Background(), admin, mustPath(t, "a"))
	if !errors.Is(err, jenkins.ErrUnavailable) || !strings.Contains(err.Error(), "larger than 1024") {
		t.Errorf("oversized answer: %v", err)
	}
}

func TestClient_BadBaseURL(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"", "jenkins.example.com", "ftp://x/", "http://user:pw@x/", "http://x/?a=b", "http://x/#f"} {
		if _, err := jenkins.New(u, nil); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func TestCredential_NeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	for _, c := range []jenkins.Credential{{User: "u", APIToken: "s3cret-token"}, {User: "u", Bearer: "s3cret-token"}} {
		var logged strings.Builder
		slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "cred", c)
		for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), logged.String()} {
			if strings.Contains(s, "s3cret") {
				t.Errorf("secret printed: %s", s)
			}
		}
	}
}

func TestMe(t *testing.T) {
	t.Parallel()
	c := serve(t, jenkinstest.Sample(nil), "", nil)
	u, err := c.Me(context.Background(), jenkins.Credential{User: "carol", APIToken: "carol-token"})
	if err != nil || u.ID != "carol" || u.FullName != "Carol White" {
		t.Errorf("Me = %+v, %v", u, err)
	}
}

// listed is every job of l.
func listed(l *jenkins.Listing) []jenkins.JobSummary {
	out := make([]jenkins.JobSummary, l.Len())
	for i := range out {
		out[i] = l.Job(i)
	}
	return out
}

// coldInstance is folders×perFolder jobs, each with one finished build
// (every third failed), on a controller that has read no build record.
func coldInstance(t *testing.T, folders, perFolder int) *jenkinstest.Server {
	t.Helper()
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	for f := range folders {
		folder := fmt.Sprintf("team-%02d", f)
		if err := sim.AddFolder(folder); err != nil {
			t.Fatal(err)
		}
		for n := range perFolder {
			job := fmt.Sprintf("%s/job-%04d", folder, n)
			if err := sim.AddJob(job, jenkinstest.JobSpec{}); err != nil {
				t.Fatal(err)
			}
			result := "SUCCESS"
			if n%3 == 0 {
				result = "FAILURE"
			}
			if _, err := sim.AddBuild(job, jenkinstest.BuildSpec{Result: result}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return sim
}

// A listing reads no build record; the statuses of a page read about the
// page's records, in one request per folder it spans. Before, a listing
// asked for color and lastBuild of every job and a cold controller read
// every job's last build record (2,000 here) for a page of 50.
func TestListJobs_ReadsBuildRecordsOfOnePage(t *testing.T) {
	t.Parallel()
	sim := coldInstance(t, 4, 500)
	c := serve(t, sim, "", nil)
	l, err := c.ListJobs(context.Background(), admin, jobpath.Path{}, true)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2000 || sim.BuildRecordsRead() != 0 {
		t.Fatalf("listing: %d jobs, %d build records read; want 2000 and 0", l.Len(), sim.BuildRecordsRead())
	}
	sim.ResetRequests()
	from := 480 // a page across two folders: team-00's last 20, team-01's first 30
	st, err := c.JobStatuses(context.Background(), admin, l, from, from+50)
	if err != nil {
		t.Fatal(err)
	}
	if n := sim.BuildRecordsRead(); n != 50 {
		t.Errorf("a page of 50 read %d build records, want 50", n)
	}
	if n := len(sim.Requests()); n != 2 {
		t.Errorf("a page across two folders cost %d requests, want 2", n)
	}
	for i, s := range st {
		name := l.Name(from + i)
		var k int
		_, _ = fmt.Sscanf(name[strings.LastIndexByte(name, '-')+1:], "%d", &k)
		want := "blue"
		if k%3 == 0 {
			want = "red"
		}
		if !s.Known || s.Color != want || s.LastBuild != 1 {
			t.Errorf("%s: %+v, want %s #1", name, s, want)
		}
	}
}

// A page spread over more folders than MaxStatusRequests is asked through
// the folders' parent: the requests stay bounded and every status is read.
func TestJobStatuses_ManyFoldersCostBoundedRequests(t *testing.T) {
	t.Parallel()
	sim := coldInstance(t, 30, 2)
	c := serve(t, sim, "", nil)
	l, err := c.ListJobs(context.Background(), admin, jobpath.Path{}, true)
	if err != nil {
		t.Fatal(err)
	}
	sim.ResetRequests()
	st, err := c.JobStatuses(context.Background(), admin, l, 0, l.Len())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(sim.Requests()); n > jenkins.MaxStatusRequests {
		t.Errorf("60 jobs in 30 folders cost %d requests, more than %d", n, jenkins.MaxStatusRequests)
	}
	for i, s := range st {
		if !s.Known || s.LastBuild != 1 {
			t.Errorf("%s: %+v", l.Name(i), s)
		}
	}
}

// The streamed listing is bounded like every other answer: one byte over
// MaxJSONBytes is ErrTooLarge, exactly the bound is read.
func TestListJobs_ResponseSizeLimit(t *testing.T) {
	t.Parallel()
	body := `{"jobs":[{"name":"a","url":"http://j/job/a/"}]}`
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, body)
	}))
	defer hs.Close()
	for _, tc := range []struct {
		max    int64
		tooBig bool
	}{{int64(len(body)), false}, {int64(len(body)) - 1, true}} {
		c, err := jenkins.New(hs.URL, &jenkins.Options{MaxJSONBytes: tc.max})
		if err != nil {
			t.Fatal(err)
		}
		l, err := c.ListJobs(context.Background(), admin, jobpath.Path{}, true)
		if tc.tooBig {
			if !errors.Is(err, jenkins.ErrTooLarge) {
				t.Errorf("bound %d, answer %d bytes: %v, want ErrTooLarge", tc.max, len(body), err)
			}
			continue
		}
		if err != nil || l.Len() != 1 {
			t.Errorf("bound %d, answer %d bytes: %v", tc.max, len(body), err)
		}
	}
}
