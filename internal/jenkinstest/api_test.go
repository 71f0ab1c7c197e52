package jenkinstest

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

func TestSetupErrors(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"f/j": {}})
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"job over existing job", s.AddJob("f/j", JobSpec{}), ErrExists},
		{"job differing in case", s.AddJob("F/J", JobSpec{}), ErrExists},
		{"job inside a job", s.AddJob("f/j/k", JobSpec{}), ErrExists},
		{"folder over a job", s.AddFolder("f/j"), ErrExists},
		{"traversal", s.AddJob("f/../x", JobSpec{}), jobpath.ErrInvalid},
		{"empty", s.AddFolder(""), jobpath.ErrInvalid},
		{"bad class", s.AddJob("x", JobSpec{Class: "hudson.maven.MavenModuleSet"}), ErrInvalidSpec},
		{"bad result", s.AddJob("x", JobSpec{Result: "MAYBE"}), ErrInvalidSpec},
		{"bad param type", s.AddJob("x", JobSpec{Params: []Param{{Name: "a", Type: "run"}}}), ErrInvalidSpec},
		{"choice without choices", s.AddJob("x", JobSpec{Params: []Param{{Name: "a", Type: "choice"}}}), ErrInvalidSpec},
		{"repeated param", s.AddJob("x", JobSpec{Params: []Param{{Name: "a", Type: "string"}, {Name: "a", Type: "text"}}}), ErrInvalidSpec},
		{"disable a folder", s.SetJobDisabled("f", true), ErrNotFound},
		{"disable nothing", s.SetJobDisabled("nope", true), ErrNotFound},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	if _, err := s.AddBuild("f", BuildSpec{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("build of a folder: %v", err)
	}
	if _, err := s.AddBuild("f/j", BuildSpec{Result: "GREAT"}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("bad build result: %v", err)
	}
	if err := s.AddFolder("f"); err != nil {
		t.Errorf("AddFolder of an existing folder: %v", err)
	}
}

func TestAddBuild_RunningBuildFinishesOnSchedule(t *testing.T) {
	t.Parallel()
	s, clk := newTestServer(t, &Options{Executors: 1}, map[string]JobSpec{"j": {Result: "FAILURE"}, "k": {}})
	n, err := s.AddBuild("j", BuildSpec{Building: true, Duration: 20 * time.Second, Log: []string{"x"}, UserID: "bob"})
	if err != nil || n != 1 {
		t.Fatalf("AddBuild: %d %v", n, err)
	}
	// It holds the only executor.
	loc := call(t, s, "POST", "/job/k/build", "alice").Header().Get("Location")
	if c := str(getJSON(t, s, queuePath(t, loc), "bob"), "_class"); c != "hudson.model.Queue$BuildableItem" {
		t.Errorf("k's item: %s", c)
	}
	clk.Advance(20 * time.Second)
	b := getJSON(t, s, "/job/j/1/api/json", "bob")
	if b["building"] != false || str(b, "result") != "FAILURE" {
		t.Errorf("build after its duration: %v", b)
	}
	if got := call(t, s, "GET", "/job/j/1/consoleText", "bob").Body.String(); got != "Started by user Bob Jones\nx\nFinished: FAILURE\n" {
		t.Errorf("console: %q", got)
	}
	k := getJSON(t, s, "/job/k/lastBuild/api/json", "bob")
	if k["timestamp"] != float64(t0.Add(20*time.Second).UnixMilli()) {
		t.Errorf("k started at %v, want when the executor freed", k["timestamp"])
	}
	if _, err := s.AddBuild("j", BuildSpec{Params: map[string]any{"X": true}}); err != nil {
		t.Fatal(err)
	}
	ps := getJSON(t, s, "/job/j/2/api/json?tree=actions[parameters[name,value]]", "bob")["actions"].([]any)[0].(map[string]any)
	if str(ps, "_class") != "hudson.model.ParametersAction" {
		t.Errorf("ad-hoc parameters: %v", ps)
	}
}

func TestSetExecutors(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, &Options{Executors: -1}, map[string]JobSpec{"j": {}})
	loc := call(t, s, "POST", "/job/j/build", "alice").Header().Get("Location")
	if c := str(getJSON(t, s, queuePath(t, loc), "bob"), "_class"); c != "hudson.model.Queue$BuildableItem" {
		t.Fatalf("with no executors: %s", c)
	}
	if n := getJSON(t, s, "/api/json?tree=numExecutors", "bob")["numExecutors"]; n != float64(0) {
		t.Errorf("numExecutors = %v", n)
	}
	s.SetExecutors(1)
	if c := str(getJSON(t, s, queuePath(t, loc), "bob"), "_class"); c != "hudson.model.Queue$LeftItem" {
		t.Errorf("after adding an executor: %s", c)
	}
}

func TestGrant_CaseInsensitivePathAndAdminister(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"Team/j": {}})
	s.AddUser("eve", "Eve", "eve-token")
	s.Grant("eve", "team", PermRead)
	s.Grant("eve", "TEAM/j", PermBuild)
	if w := call(t, s, "POST", "/job/Team/job/j/build", "eve"); w.Code != http.StatusCreated {
		t.Errorf("eve builds: %d", w.Code)
	}
	s.AddUser("root", "Root", "root-token")
	s.Grant("root", "", PermAdminister)
	if w := call(t, s, "POST", "/job/Team/job/j/lastBuild/stop", "root"); w.Code != http.StatusFound {
		t.Errorf("administer stops: %d", w.Code)
	}
}

func TestSample_UsersItemsAndPermissions(t *testing.T) {
	t.Parallel()
	s, clk := sample(t)
	for _, u := range []struct{ id, name string }{{SampleAlice, "Alice Smith"}, {SampleBob, "Bob Jones"}, {SampleCarol, "Carol White"}, {SampleAdmin, "Jenkins Admin"}} {
		me := getJSON(t, s, "/me/api/json", u.id)
		if str(me, "id") != u.id || str(me, "fullName") != u.name {
			t.Errorf("%s: %v", u.id, me)
		}
	}
	jobs := []string{"frontend/web-app", "frontend/docs", "frontend/legacy-site", "frontend/Release Notes", "frontend/mobile/main",
		"frontend/mobile/feature%2Flogin", "backend/api", "backend/worker", "prod/deploy"}
	for _, j := range jobs {
		p, _ := jobpath.Parse(j)
		job := getJSON(t, s, "/"+p.URLPath()+"api/json", "admin")
		if str(job, "fullName") != j {
			t.Errorf("%s: fullName %v", j, job["fullName"])
		}
		if len(job["builds"].([]any)) == 0 {
			t.Errorf("%s has no builds", j)
		}
	}
	if c := str(getJSON(t, s, "/job/frontend/job/legacy-site/api/json", "bob"), "color"); c != "disabled" {
		t.Errorf("legacy-site color %q", c)
	}
	if c := str(getJSON(t, s, "/job/frontend/job/mobile/api/json", "bob"), "_class"); c != ClassMultiBranch {
		t.Errorf("mobile class %q", c)
	}
	if r := getJSON(t, s, "/job/frontend/job/web-app/lastFailedBuild/testReport/api/json", "bob"); r["failCount"] == float64(0) {
		t.Errorf("web-app's failed build has no failing tests")
	}
	if r := getJSON(t, s, "/job/backend/job/api/lastFailedBuild/testReport/api/json", "bob"); r["failCount"] == float64(0) {
		t.Errorf("api's failed build has no failing tests")
	}
	// Permission matrix: who may trigger what.
	for _, tc := range []struct {
		user, path string
		status     int
	}{
		{SampleAlice, "/job/frontend/job/web-app/build", 201},
		{SampleAlice, "/job/backend/job/api/build", 403},
		{SampleAlice, "/job/prod/job/deploy/build", 403},
		{SampleBob, "/job/frontend/job/docs/build", 403},
		{SampleCarol, "/job/frontend/job/docs/build", 201},
		{SampleCarol, "/job/backend/job/worker/build", 404},
		{SampleCarol, "/job/prod/job/deploy/build", 403},
		{SampleAdmin, "/job/prod/job/deploy/buildWithParameters?TARGET=us-east&CANARY=true", 201},
	} {
		if w := call(t, s, "POST", tc.path, tc.user); w.Code != tc.status {
			t.Errorf("%s POST %s: %d, want %d (%s)", tc.user, tc.path, w.Code, tc.status, w.Body.String())
		}
	}
	// Builds are short enough for a demo.
	clk.Advance(2 * time.Minute)
	b := getJSON(t, s, "/job/prod/job/deploy/lastBuild/api/json", "admin")
	if b["building"] != false || b["number"] != float64(4) {
		t.Errorf("deploy #4 after 2 minutes: %v", b)
	}
}

// TestConcurrentUse hammers one server from many goroutines on the real
// clock; run with -race.
func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	s := Sample(&Options{Executors: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			users := []string{SampleAlice, SampleBob, SampleCarol, SampleAdmin}
			for i := range 25 {
				u := users[(g+i)%len(users)]
				switch i % 5 {
				case 0:
					call(t, s, "POST", "/job/frontend/job/web-app/build", u)
				case 1:
					call(t, s, "GET", "/queue/api/json", u)
				case 2:
					call(t, s, "GET", "/api/json?tree=jobs[name,jobs[name,color,lastBuild[number]]]", u)
				case 3:
					call(t, s, "GET", "/job/frontend/job/web-app/lastBuild/logText/progressiveText?start=0", u)
				case 4:
					call(t, s, "POST", fmt.Sprintf("/queue/cancelItem?id=%d", i), u)
				}
			}
			s.Grant("bob", "prod", PermBuild)
			_ = s.Requests()
			_, _ = s.AddBuild("backend/worker", BuildSpec{})
		}()
	}
	wg.Wait()
	if n := len(s.Requests()); n != 8*25 {
		t.Errorf("logged %d requests, want %d", n, 8*25)
	}
	for _, r := range s.Requests() {
		if r.Status == 0 || strings.Contains(r.User, "token") {
			t.Errorf("bad log entry %+v", r)
		}
	}
}
