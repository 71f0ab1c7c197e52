package diagnose_test

import (
	"context"
	"encoding/json"
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
		ok := t.Run(c.Name, func(t *testing.T) {
			r, err := diagnose.Diagnose(context.Background(), buildOf(&c), nil)
			if err != nil {
				t.Fatal(err)
			}
			js, _ := json.MarshalIndent(r, "", "  ")
			if len(js) > diagnose.MaxReportBytes {
				t.Errorf("answer is %d bytes, over %d", len(js), diagnose.MaxReportBytes)
			}
			if len(r.ErrorExcerpts) == 0 {
				t.Fatalf("no excerpt; report:\n%s", js)
			}
			first := r.ErrorExcerpts[0]
			if !hit(first, c.Expect.Decisive) {
				t.Errorf("first excerpt does not hold %q; report:\n%s", c.Expect.Decisive, js)
			}
			stage := ""
			if first.Stage != nil {
				stage = first.Stage.Name
			}
			if stage != c.Expect.Stage {
				t.Errorf("first excerpt's stage = %q, want %q", stage, c.Expect.Stage)
			}
			if c.Expect.Kind != "" && first.Kind != c.Expect.Kind {
				t.Errorf("first excerpt's kind = %q, want %q", first.Kind, c.Expect.Kind)
			}
			if c.Expect.Hint != "" && !strings.Contains(strings.Join(r.Hints, "\n"), c.Expect.Hint) {
				t.Errorf("no hint mentions %q; hints: %q", c.Expect.Hint, r.Hints)
			}
			if c.Pipeline && c.Expect.Stage != "" {
				if len(r.FailedStages) == 0 || r.FailedStages[0].Name != c.Expect.Stage {
					t.Errorf("failed_stages = %v, want %q first", r.FailedStages, c.Expect.Stage)
				}
			}
			if testing.Verbose() {
				t.Logf("report:\n%s", js)
			}
		})
		switch {
		case ok:
			found++
		case c.Expect.KnownMiss != "":
			known++
			t.Logf("%s: known miss: %s", c.Name, c.Expect.KnownMiss)
		}
	}
	t.Logf("the excerpt contains the decisive line for %d of %d cases (%d known misses)", found, len(cases), known)
}
