package jenkins_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// opsInstance has a parameterized job "p" (with a file parameter), a plain
// job "j", a long-running job "long" and a matrix-like job "m" with an
// aggregated report. admin may do anything.
func opsInstance(t *testing.T, opts *jenkinstest.Options) *jenkinstest.Server {
	t.Helper()
	sim := jenkinstest.New(opts)
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	for path, spec := range map[string]jenkinstest.JobSpec{
		"p": {QuietPeriod: 30 * time.Second, Params: []jenkinstest.Param{
			{Name: "S", Type: "string", Default: "d"},
			{Name: "UPLOAD", Type: "file", Description: "a file"},
		}},
		"j":    {QuietPeriod: 30 * time.Second},
		"long": {QuietPeriod: jenkinstest.NoQuietPeriod, Duration: time.Hour},
		"m":    {},
	} {
		if err := sim.AddJob(path, spec); err != nil {
			t.Fatal(err)
		}
	}
	return sim
}

func TestTriggerBuild_MergedWhenJenkinsAnswers303(t *testing.T) {
	t.Parallel()
	c := serve(t, opsInstance(t, nil), "", nil)
	ctx := context.Background()
	first, err := c.TriggerBuild(ctx, admin, mustPath(t, "p"), true, map[string][]string{"S": {"x"}})
	if err != nil || first.Merged {
		t.Fatalf("first trigger: %+v %v", first, err)
	}
	again, err := c.TriggerBuild(ctx, admin, mustPath(t, "p"), true, map[string][]string{"S": {"x"}})
	if err != nil || !again.Merged || again.ID != first.ID {
		t.Errorf("identical trigger: %+v %v, want merged into %d", again, err, first.ID)
	}
	other, err := c.TriggerBuild(ctx, admin, mustPath(t, "p"), true, map[string][]string{"S": {"y"}})
	if err != nil || other.Merged || other.ID == first.ID {
		t.Errorf("different parameters: %+v %v", other, err)
	}
}

func TestTriggerBuild_OnlyJenkinsOwnAnswersAreSuccess(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		status int
		loc    string
	}{
		// A proxy sending the request to a login page.
		{"302 to a login page", http.StatusFound, "https://sso.example.com/login?next=/queue/item/5/"},
		// ParameterizedJobMixIn.doBuild's sendRedirect(".") when the
		// queue refused the item (a QueueDecisionHandler veto).
		{"302 to the job", http.StatusFound, "/job/j/"},
		{"200 with a queue item", http.StatusOK, "/queue/item/5/"},
		{"201 without a queue item", http.StatusCreated, "/job/j/"},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", tc.loc)
			w.WriteHeader(tc.status)
		}))
		c, err := jenkins.New(hs.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		q, err := c.TriggerBuild(context.Background(), admin, mustPath(t, "j"), false, nil)
		if !errors.Is(err, jenkins.ErrUnavailable) {
			t.Errorf("%s: %+v %v, want ErrUnavailable", tc.name, q, err)
		}
		hs.Close()
	}
}

func TestStopBuild_OnlyARedirectToTheBuildIsSuccess(t *testing.T) {
	t.Parallel()
	sim := opsInstance(t, &jenkinstest.Options{Prefix: "/ci"})
	c := serve(t, sim, "/ci", nil)
	ctx := context.Background()
	if _, err := c.TriggerBuild(ctx, admin, mustPath(t, "long"), false, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.StopBuild(ctx, admin, mustPath(t, "long"), 1); err != nil {
		t.Errorf("stop through the simulator: %v", err)
	}
	for _, tc := range []struct {
		name   string
		status int
		loc    string
		ok     bool
	}{
		{"absolute redirect to the build", http.StatusFound, "http://jenkins.example.com/job/a/1/", true},
		{"path redirect to the build", http.StatusFound, "/job/a/1/", true},
		{"login page", http.StatusFound, "https://sso.example.com/login?from=%2Fjob%2Fa%2F1%2Fstop", false},
		{"Jenkins login", http.StatusFound, "/login?from=%2Fjob%2Fa%2F1%2Fstop", false},
		{"another build", http.StatusFound, "/job/a/2/", false},
		{"303 to the build", http.StatusSeeOther, "/job/a/1/", false},
		{"200", http.StatusOK, "", false},
		{"204", http.StatusNoContent, "", false},
	} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tc.loc != "" {
				w.Header().Set("Location", tc.loc)
			}
			w.WriteHeader(tc.status)
		}))
		c, err := jenkins.New(hs.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = c.StopBuild(ctx, admin, mustPath(t, "a"), 1)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, jenkins.ErrUnavailable) {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && strings.Contains(err.Error(), "sso.example.com") {
			t.Errorf("%s: the error repeats the redirect target: %v", tc.name, err)
		}
		hs.Close()
	}
}

func TestCancelQueueItem_Only204IsSuccess(t *testing.T) {
	t.Parallel()
	c := serve(t, opsInstance(t, nil), "", nil)
	ctx := context.Background()
	q, err := c.TriggerBuild(ctx, admin, mustPath(t, "j"), false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CancelQueueItem(ctx, admin, q.ID); err != nil {
		t.Errorf("cancel through the simulator: %v", err)
	}
	for _, status := range []int{http.StatusOK, http.StatusFound, http.StatusSeeOther} {
		hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "https://sso.example.com/login")
			w.WriteHeader(status)
		}))
		c, err := jenkins.New(hs.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CancelQueueItem(ctx, admin, 7); !errors.Is(err, jenkins.ErrUnavailable) {
			t.Errorf("cancelItem answered %d: %v, want ErrUnavailable", status, err)
		}
		hs.Close()
	}
}

func TestGetJob_FileParameter(t *testing.T) {
	t.Parallel()
	c := serve(t, opsInstance(t, nil), "", nil)
	j, err := c.GetJob(context.Background(), admin, mustPath(t, "p"))
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Parameters) != 2 || j.Parameters[1].Kind != jenkins.ParamFile || j.Parameters[1].Default != nil {
		t.Errorf("parameters: %+v", j.Parameters)
	}
}

func TestTestReport_AggregatedCountsAndCases(t *testing.T) {
	t.Parallel()
	sim := opsInstance(t, nil)
	agg := &jenkinstest.TestReport{Class: "hudson.maven.reporters.SurefireAggregatedReport", Children: []jenkinstest.ChildReport{
		{Name: "com.example$core", Cases: []jenkinstest.TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "FAILED", ErrorDetails: "boom"}}},
		{Name: "com.example$web", Cases: []jenkinstest.TestCase{{Class: "c.D", Name: "three", Status: "SKIPPED"}, {Class: "c.D", Name: "four", Status: "PASSED"}, {Class: "c.D", Name: "five", Status: "PASSED"}}},
	}}
	if _, err := sim.AddBuild("m", jenkinstest.BuildSpec{Tests: agg}); err != nil {
		t.Fatal(err)
	}
	c := serve(t, sim, "", nil)
	r, err := c.TestReport(context.Background(), admin, mustPath(t, "m"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if r.Passed != 3 || r.Failed != 1 || r.Skipped != 1 || len(r.Cases) != 5 {
		t.Fatalf("aggregated report: %+v", r)
	}
	if tc := r.Cases[1]; tc.Child != "com.example$core" || !tc.Failed() || tc.ErrorDetails != "boom" {
		t.Errorf("case of a child: %+v", tc)
	}
}

func TestTestReport_StatusOfOldAndNewJUnit(t *testing.T) {
	t.Parallel()
	cases := []jenkinstest.TestCase{
		{Class: "a.B", Name: "regressed", Status: "REGRESSION"},
		{Class: "a.B", Name: "fixed", Status: "FIXED"},
		{Class: "a.B", Name: "failed", Status: "FAILED"},
		{Class: "a.B", Name: "skipped", Status: "SKIPPED"},
	}
	for _, legacy := range []bool{false, true} {
		sim := opsInstance(t, &jenkinstest.Options{LegacyJUnitStatus: legacy})
		if _, err := sim.AddBuild("m", jenkinstest.BuildSpec{Tests: &jenkinstest.TestReport{Cases: cases}}); err != nil {
			t.Fatal(err)
		}
		r, err := serve(t, sim, "", nil).TestReport(context.Background(), admin, mustPath(t, "m"), 1)
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			status, condition string
			failed            bool
		}{{"FAILED", "REGRESSION", true}, {"PASSED", "FIXED", false}, {"FAILED", "", true}, {"SKIPPED", "", false}}
		for i, w := range want {
			tc := r.Cases[i]
			cond := w.condition
			if !legacy {
				cond = "" // junit 1363 and later do not tell
			}
			if tc.Status != w.status || tc.Condition != cond || tc.Failed() != w.failed {
				t.Errorf("legacy %t, %s: %+v, want status %s condition %q", legacy, tc.Name, tc, w.status, cond)
			}
		}
	}
}
