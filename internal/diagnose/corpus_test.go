package diagnose_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/diagnose"
	"github.com/butler-mcp/butler/internal/diagnose/corpus"
)

// buildOf is the Build the diagnose_build tool would fill for c: the
// stages with their logs and the whole console text.
func buildOf(c *corpus.Case) *diagnose.Build {
	b := &diagnose.Build{Result: c.Result, Pipeline: c.Pipeline, Console: strings.NewReader(c.Console)}
	for _, s := range c.Stages {
		b.Stages = append(b.Stages, diagnose.Stage{ID: s.ID, Name: s.Name, Status: s.Status,
			ErrorType: s.ErrorType, ErrorMessage: s.ErrorMessage, Log: strings.NewReader(s.Log)})
	}
	for _, t := range c.FailingTests {
		b.FailingTests = append(b.FailingTests, diagnose.Test{Name: t.Name, Class: t.Class, Message: t.Message})
	}
	for _, m := range c.Changes {
		b.Changes = append(b.Changes, diagnose.Commit{ID: m.ID, Author: m.Author, Message: m.Message, Timestamp: m.Timestamp, Paths: m.Paths})
	}
	if c.Upstream != nil {
		b.Upstream = &diagnose.Upstream{Job: c.Upstream.Job, Build: c.Upstream.Build}
	}
	return b
}

// hit reports whether the excerpt holds a line containing one of want.
func hit(e diagnose.Excerpt, want []string) bool {
	for _, l := range e.Lines {
		for _, w := range want {
			if strings.Contains(l, w) {
				return true
			}
		}
	}
	return false
}

// TestCorpus_FirstExcerptHoldsTheDecisiveLine measures the analysis on
// the corpus: for each case the first excerpt must hold the decisive line
// and point at the stage that failed, and the expected hint must be given.
// It logs "the excerpt contains the decisive line for N of M cases" and
// fails below M of M, except for cases marked as known misses (with the
// reason) in their case.json.
func TestCorpus_FirstExcerptHoldsTheDecisiveLine(t *testing.T) {
	cases, err := corpus.Cases()
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 12 {
		t.Fatalf("the corpus holds %d cases, want at least 12", len(cases))
	}
	found, known := 0, 0
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			problems, js := check(t, &c)
			switch {
			case len(problems) == 0 && c.Expect.KnownMiss != "":
				found++
				t.Errorf("marked as a known miss (%s) but found: remove known_miss", c.Expect.KnownMiss)
			case len(problems) == 0:
				found++
			case c.Expect.KnownMiss != "":
				known++
				t.Logf("known miss (%s): %s", c.Expect.KnownMiss, strings.Join(problems, "; "))
			default:
				t.Errorf("%s\nreport:\n%s", strings.Join(problems, "\n"), js)
			}
			if testing.Verbose() {
				t.Logf("report:\n%s", js)
			}
		})
	}
	t.Logf("the excerpt contains the decisive line for %d of %d cases (%d known misses)", found, len(cases), known)
	naive := 0
	for _, c := range cases {
		if naiveHit(&c) {
			naive++
		}
	}
	t.Logf("for comparison, the first line saying error, fail or exception (with the same context) holds it for %d of %d", naive, len(cases))
}

// naiveHit is what "the first line containing error" finds: the first
// such line of the first failed stage's log (else the console), with the
// same context as an excerpt (3 lines before, 6 after).
func naiveHit(c *corpus.Case) bool {
	log := c.Console
	for _, s := range c.Stages {
		if s.Status == "FAILED" && s.Log != "" {
			log = s.Log
			break
		}
	}
	lines := strings.Split(log, "\n")
	for i, l := range lines {
		low := strings.ToLower(l)
		if strings.Contains(low, "error") || strings.Contains(low, "fail") || strings.Contains(low, "exception") {
			return hit(diagnose.Excerpt{Lines: lines[max(0, i-3):min(len(lines), i+7)]}, c.Expect.Decisive)
		}
	}
	return false
}

// check diagnoses c and returns what the report gets wrong, and the
// report's JSON.
func check(t *testing.T, c *corpus.Case) ([]string, []byte) {
	t.Helper()
	r, err := diagnose.Diagnose(context.Background(), buildOf(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.MarshalIndent(r, "", "  ")
	var problems []string
	bad := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if n, _ := json.Marshal(r); len(n) > diagnose.MaxReportBytes {
		bad("answer is %d bytes, over %d", len(n), diagnose.MaxReportBytes)
	}
	if len(r.ErrorExcerpts) == 0 {
		bad("no excerpt")
		return problems, js
	}
	first := r.ErrorExcerpts[0]
	if !hit(first, c.Expect.Decisive) {
		bad("first excerpt does not hold %q", c.Expect.Decisive)
	}
	stage := ""
	if first.Stage != nil {
		stage = first.Stage.Name
	}
	if stage != c.Expect.Stage {
		bad("first excerpt's stage = %q, want %q", stage, c.Expect.Stage)
	}
	if c.Expect.Kind != "" && first.Kind != c.Expect.Kind {
		bad("first excerpt's kind = %q, want %q", first.Kind, c.Expect.Kind)
	}
	if c.Expect.Hint != "" && !strings.Contains(strings.Join(r.Hints, "\n"), c.Expect.Hint) {
		bad("no hint mentions %q; hints: %q", c.Expect.Hint, r.Hints)
	}
	if c.Pipeline && c.Expect.Stage != "" && (len(r.FailedStages) == 0 || r.FailedStages[0].Name != c.Expect.Stage) {
		bad("failed_stages = %v, want %q first", r.FailedStages, c.Expect.Stage)
	}
	return problems, js
}
