package tools

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
)

// BuildIn names a build.
type BuildIn struct {
	Job   string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
}

func buildTarget(job string, build *int64) (target, error) {
	tg, err := jobTarget(job)
	if err != nil {
		return tg, err
	}
	if build != nil {
		tg.what = fmt.Sprintf("build %d of job %q", *build, tg.job.String())
	} else {
		tg.what = fmt.Sprintf("the last build of job %q", tg.job.String())
	}
	return tg, nil
}

func buildNumber(b *int64) int64 {
	if b == nil {
		return 0
	}
	return *b
}

func buildSchema(s *jsonschema.Schema) { prop(s, "build").Minimum = ptr(1.0) }

// BuildOut describes a build.
type BuildOut struct {
	Number     int64          `json:"number"`
	Result     *string        `json:"result" jsonschema:"SUCCESS, FAILURE, UNSTABLE, ABORTED or NOT_BUILT; null while building"`
	Building   bool           `json:"building"`
	DurationMS int64          `json:"duration_ms" jsonschema:"run time in milliseconds; 0 while building"`
	Timestamp  int64          `json:"timestamp" jsonschema:"start time, milliseconds since the epoch"`
	StartedAt  string         `json:"started_at" jsonschema:"start time, RFC 3339 in UTC"`
	URL        string         `json:"url"`
	Causes     []string       `json:"causes" jsonschema:"why the build ran, e.g. 'Started by user Alice Smith'"`
	Parameters map[string]any `json:"parameters" jsonschema:"parameter values by name; password values are never shown (null)"`
}

func addGetBuild(t *Toolset) (*def, error) {
	return add(t, spec[BuildIn, BuildOut]{
		name:   catalog.GetBuild,
		input:  buildSchema,
		target: func(in *BuildIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *BuildIn) (*BuildOut, error) {
			b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, buildNumber(in.Build))
			if err != nil {
				return nil, err
			}
			return buildOut(b), nil
		},
	})
}

func buildOut(b *jenkins.Build) *BuildOut {
	out := &BuildOut{Number: b.Number, Building: b.Building, DurationMS: b.DurationMS, Timestamp: b.Timestamp,
		StartedAt: time.UnixMilli(b.Timestamp).UTC().Format(time.RFC3339), URL: b.URL,
		Causes: nonNil(b.Causes), Parameters: b.Parameters}
	if out.Parameters == nil {
		out.Parameters = map[string]any{}
	}
	if b.Result != "" {
		out.Result = ptr(b.Result)
	}
	return out
}

// StopIn names the build to stop.
type StopIn struct {
	Job   string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build int64  `json:"build" jsonschema:"number of the running build to stop"`
}

// StopOut is the outcome of a stop.
type StopOut struct {
	Stopped bool    `json:"stopped" jsonschema:"true if this call aborted a running build; false if it had already finished"`
	Result  *string `json:"result" jsonschema:"the build's result after the call (ABORTED once stopped); null if Jenkins is still winding it down"`
}

func addStopBuild(t *Toolset) (*def, error) {
	return add(t, spec[StopIn, StopOut]{
		name:  catalog.StopBuild,
		input: func(s *jsonschema.Schema) { prop(s, "build").Minimum = ptr(1.0) },
		target: func(in *StopIn) (target, error) {
			return buildTarget(in.Job, &in.Build)
		},
		run: func(ctx context.Context, c *call, in *StopIn) (*StopOut, error) {
			b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, in.Build)
			if err != nil {
				return nil, err
			}
			if !b.Building {
				return &StopOut{Stopped: false, Result: ptr(b.Result)}, nil
			}
			if err := t.deps.Jenkins.StopBuild(ctx, c.cred, c.target.job, in.Build); err != nil {
				return nil, err
			}
			// Jenkins aborts asynchronously; look briefly for the result.
			out := &StopOut{Stopped: true}
			deadline := time.Now().Add(3 * time.Second)
			for {
				b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, in.Build)
				if err == nil && !b.Building {
					out.Result = ptr(b.Result)
					return out, nil
				}
				if time.Now().After(deadline) {
					return out, nil
				}
				select {
				case <-ctx.Done():
					return out, nil
				case <-time.After(200 * time.Millisecond):
				}
			}
		},
	})
}

// TestsIn selects a build's test results.
type TestsIn struct {
	Job         string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build       *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
	OnlyFailing bool   `json:"only_failing,omitempty" jsonschema:"list only failing tests; default false lists every test (up to 1000)"`
}

// TestFailure is a failing test.
type TestFailure struct {
	Name      string `json:"name"`
	Class     string `json:"class"`
	Child     string `json:"child,omitempty" jsonschema:"in a matrix or Maven build, the configuration (e.g. 'jdk=17') or module the test ran in"`
	Condition string `json:"condition,omitempty" jsonschema:"REGRESSION when the test passed in the previous build (reported only by older Jenkins junit plugins)"`
	Message   string `json:"message" jsonschema:"the failure's error message (cut at 2000 characters)"`
}

// TestCase is one test.
type TestCase struct {
	Name      string `json:"name"`
	Class     string `json:"class"`
	Child     string `json:"child,omitempty" jsonschema:"in a matrix or Maven build, the configuration (e.g. 'jdk=17') or module the test ran in"`
	Status    string `json:"status" jsonschema:"PASSED, FAILED or SKIPPED"`
	Condition string `json:"condition,omitempty" jsonschema:"REGRESSION (failed, passed before) or FIXED (passed, failed before); reported only by older Jenkins junit plugins (before 1363), absent otherwise"`
}

// TestsOut summarizes a test report.
type TestsOut struct {
	Build     int64         `json:"build" jsonschema:"number of the build whose report this is"`
	Building  bool          `json:"building" jsonschema:"true while the build still runs: a Pipeline publishes tests as its junit steps run, so the report holds those recorded so far"`
	Passed    int           `json:"passed"`
	Failed    int           `json:"failed"`
	Skipped   int           `json:"skipped"`
	Failures  []TestFailure `json:"failures" jsonschema:"failing tests (up to 1000)"`
	Tests     []TestCase    `json:"tests,omitempty" jsonschema:"every test, unless only_failing (up to 1000)"`
	Truncated bool          `json:"truncated" jsonschema:"true when a list was cut at 1000 entries"`
}

const maxTests = 1000

func addGetTestResults(t *Toolset) (*def, error) {
	return add(t, spec[TestsIn, TestsOut]{
		name:   catalog.GetTestResults,
		input:  buildSchema,
		target: func(in *TestsIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *TestsIn) (*TestsOut, error) {
			// Read the build first: it names the build (the last one when
			// none was given) and says whether it still runs, so the
			// report read next is of that very build.
			b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, buildNumber(in.Build))
			if err != nil {
				return nil, err
			}
			r, err := t.deps.Jenkins.TestReport(ctx, c.cred, c.target.job, b.Number)
			if err != nil {
				if errors.Is(err, jenkins.ErrNotFound) {
					if b.Building {
						return nil, Errorf(CodeNotFound, "no test report for build %d of job %q yet: it is still running and has published no tests so far", b.Number, c.target.job.String())
					}
					return nil, Errorf(CodeNotFound, "no test report for %s (the build has none, does not exist, or you may not see it)", c.target.what)
				}
				return nil, err
			}
			out := &TestsOut{Build: b.Number, Building: b.Building, Passed: r.Passed, Failed: r.Failed, Skipped: r.Skipped, Failures: []TestFailure{}}
			for _, tc := range r.Cases {
				if tc.Failed() {
					if len(out.Failures) == maxTests {
						out.Truncated = true
					} else {
						out.Failures = append(out.Failures, TestFailure{Name: tc.Name, Class: tc.Class, Child: tc.Child, Condition: tc.Condition, Message: cut(tc.ErrorDetails, 2000)})
					}
				}
				if !in.OnlyFailing {
					if len(out.Tests) == maxTests {
						out.Truncated = true
					} else {
						out.Tests = append(out.Tests, TestCase{Name: tc.Name, Class: tc.Class, Child: tc.Child, Status: tc.Status, Condition: tc.Condition})
					}
				}
			}
			return out, nil
		},
	})
}

func cut(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
