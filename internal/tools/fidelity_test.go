package tools_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

func TestTriggerJob_FileParameterIsInvalidArgument(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	if err := e.sim.AddJob("frontend/upload", jenkinstest.JobSpec{QuietPeriod: 5 * time.Second, Params: []jenkinstest.Param{
		{Name: "ARTIFACT", Type: "file", Description: "the file to publish"},
		{Name: "CHANNEL", Type: "string", Default: "beta"},
	}}); err != nil {
		t.Fatal(err)
	}
	j := e.ok(t, "get_job", map[string]any{"job": "frontend/upload"})
	p := j["parameters"].([]any)[0].(map[string]any)
	if p["type"] != "file" || p["default"] != nil {
		t.Errorf("file parameter in get_job: %v", p)
	}
	// Jenkins would drop the value and build without the file.
	errObj := e.fail(t, "trigger_job", map[string]any{"job": "frontend/upload", "parameters": map[string]any{"ARTIFACT": "release.zip"}}, "invalid_argument")
	if !strings.Contains(errObj["message"].(string), "file parameter") {
		t.Errorf("message: %v", errObj["message"])
	}
	if posts := e.posts(); len(posts) != 0 {
		t.Errorf("a value for a file parameter reached Jenkins: %+v", posts)
	}
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/upload", "parameters": map[string]any{"CHANNEL": "stable"}})
	q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]})
	if q["state"] != "waiting" {
		t.Errorf("trigger without the file: %v", q)
	}
}

func TestTriggerJob_MergedIntoTheQueuedItem(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	// Parameterized: buildWithParameters answers 303 for a duplicate.
	args := map[string]any{"job": "prod/deploy", "parameters": map[string]any{"TARGET": "us-east"}}
	first := e.ok(t, "trigger_job", args)
	again := e.ok(t, "trigger_job", args)
	if first["merged"] != false || again["merged"] != true || again["queue_id"] != first["queue_id"] {
		t.Errorf("identical parameterized triggers: %v then %v", first, again)
	}
	other := e.ok(t, "trigger_job", map[string]any{"job": "prod/deploy", "parameters": map[string]any{"TARGET": "eu-west"}})
	if other["merged"] != false || other["queue_id"] == first["queue_id"] {
		t.Errorf("other parameters: %v", other)
	}
	// Without parameters, build answers 201 for a duplicate too; the job's
	// queued item tells.
	a := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	b := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	if a["merged"] != false || b["merged"] != true || a["queue_id"] != b["queue_id"] {
		t.Errorf("identical plain triggers: %v then %v", a, b)
	}
	// The fold kept the first due time (3 s quiet period): it starts at +3 s.
	e.clock.Advance(3 * time.Second)
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": a["queue_id"]}); q["state"] != "started" {
		t.Errorf("folded item after the first quiet period: %v", q)
	}
}

// loginProxy stands in front of Jenkins and answers the requests deny
// selects with a redirect to a login page, as an SSO proxy does when it
// does not recognize the session.
func loginProxy(deny func(*http.Request) bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if deny(r) {
				w.Header().Set("Location", "https://sso.example.com/login?next="+url.QueryEscape(r.URL.Path))
				w.WriteHeader(http.StatusFound)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func TestStopBuild_ARedirectToALoginPageIsNotAStop(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{wrap: loginProxy(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/stop") })})
	if _, err := e.sim.AddBuild("frontend/web-app", jenkinstest.BuildSpec{Building: true, Duration: time.Hour}); err != nil {
		t.Fatal(err)
	}
	errObj := e.fail(t, "stop_build", map[string]any{"job": "frontend/web-app", "build": 7}, "jenkins_unavailable")
	if strings.Contains(errObj["message"].(string), "sso.example.com") {
		t.Errorf("message repeats the redirect: %v", errObj["message"])
	}
	b := e.ok(t, "get_build", map[string]any{"job": "frontend/web-app", "build": 7})
	if b["building"] != true {
		t.Errorf("the build should still run: %v", b)
	}
}

func TestCancelQueueItem_ARedirectIsNotACancellation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{wrap: loginProxy(func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "/cancelItem") })})
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	e.fail(t, "cancel_queue_item", map[string]any{"queue_id": out["queue_id"]}, "jenkins_unavailable")
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]}); q["state"] != "waiting" {
		t.Errorf("the item should still wait: %v", q)
	}
}

func TestGetTestResults_AggregatedReport(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	if err := e.sim.AddJob("frontend/matrix", jenkinstest.JobSpec{}); err != nil {
		t.Fatal(err)
	}
	agg := &jenkinstest.TestReport{Children: []jenkinstest.ChildReport{
		{Name: "jdk=17", Cases: []jenkinstest.TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "REGRESSION", ErrorDetails: "boom"}}},
		{Name: "jdk=21", Cases: []jenkinstest.TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "SKIPPED"}}},
	}}
	if _, err := e.sim.AddBuild("frontend/matrix", jenkinstest.BuildSpec{Tests: agg}); err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "get_test_results", map[string]any{"job": "frontend/matrix"})
	if out["passed"] != float64(2) || out["failed"] != float64(1) || out["skipped"] != float64(1) || out["build"] != float64(1) || out["building"] != false {
		t.Errorf("aggregated counts: %v", out)
	}
	f := out["failures"].([]any)
	if len(f) != 1 || f[0].(map[string]any)["child"] != "jdk=17" || f[0].(map[string]any)["message"] != "boom" {
		t.Errorf("failures: %v", f)
	}
	if n := len(out["tests"].([]any)); n != 4 {
		t.Errorf("%d tests, want 4", n)
	}
	// junit 1363+ (the simulator's default): a regression is FAILED.
	if st := out["tests"].([]any)[1].(map[string]any); st["status"] != "FAILED" || st["condition"] != nil {
		t.Errorf("status of a regression on a current junit plugin: %v", st)
	}
}

func TestGetTestResults_RunningPipeline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	tests := &jenkinstest.TestReport{Cases: []jenkinstest.TestCase{{Class: "a.B", Name: "one", Status: "PASSED"}, {Class: "a.B", Name: "two", Status: "FAILED"}}}
	if err := e.sim.AddJob("frontend/pipe", jenkinstest.JobSpec{Class: jenkinstest.ClassWorkflowJob, Duration: 21 * time.Second, Tests: tests}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.sim.AddBuild("frontend/pipe", jenkinstest.BuildSpec{Building: true}); err != nil {
		t.Fatal(err)
	}
	errObj := e.fail(t, "get_test_results", map[string]any{"job": "frontend/pipe"}, "not_found")
	if !strings.Contains(errObj["message"].(string), "still running") {
		t.Errorf("before the junit step: %v", errObj["message"])
	}
	e.clock.Advance(15 * time.Second) // the junit step of the default Pipeline log
	out := e.ok(t, "get_test_results", map[string]any{"job": "frontend/pipe"})
	if out["building"] != true || out["build"] != float64(1) || out["passed"] != float64(1) || out["failed"] != float64(1) {
		t.Errorf("report of the running pipeline: %v", out)
	}
}
