package corpus_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/diagnose/corpus"
)

// TestCases_AreConsoleTextAsButlerReadsIt checks every case is what the
// client would return (UTF-8, LF line ends, no console notes), that its
// expectations name text the logs hold, and that a Pipeline case's
// expected stage failed.
func TestCases_AreConsoleTextAsButlerReadsIt(t *testing.T) {
	t.Parallel()
	cases, err := corpus.Cases()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cases {
		if !utf8.ValidString(c.Console) || strings.ContainsAny(c.Console, "\r\x1b") || !strings.HasSuffix(c.Console, "\n") {
			t.Errorf("%s: console.log is not console text as the client returns it", c.Name)
		}
		if n := strings.Count(c.Console, "\n"); n < 30 {
			t.Errorf("%s: %d lines, want a realistic log", c.Name, n)
		}
		if !strings.HasPrefix(c.Console, "Started by ") || !strings.Contains(c.Console, "\nFinished: "+c.Result+"\n") {
			t.Errorf("%s: does not start and end as a Jenkins console does for result %s", c.Name, c.Result)
		}
		if len(c.Expect.Decisive) == 0 {
			t.Errorf("%s: no decisive line", c.Name)
		}
		for _, d := range c.Expect.Decisive {
			if !strings.Contains(c.Console, d) && !inStages(c, d) {
				t.Errorf("%s: decisive %q is in no log", c.Name, d)
			}
		}
		if c.Pipeline != strings.Contains(c.Console, "[Pipeline] Start of Pipeline") {
			t.Errorf("%s: pipeline = %v, but the console says otherwise", c.Name, c.Pipeline)
		}
		ids := map[string]bool{}
		failed := false
		for _, s := range c.Stages {
			if ids[s.ID] {
				t.Errorf("%s: stage id %s twice", c.Name, s.ID)
			}
			ids[s.ID] = true
			failed = failed || s.Name == c.Expect.Stage && (s.Status == "FAILED" || s.Status == "UNSTABLE" || s.Status == "ABORTED")
		}
		if c.Pipeline && c.Expect.Stage != "" && !failed {
			t.Errorf("%s: expected stage %q did not fail, nor was unstable or aborted", c.Name, c.Expect.Stage)
		}
	}
}

func inStages(c corpus.Case, s string) bool {
	for _, st := range c.Stages {
		if strings.Contains(st.Log, s) {
			return true
		}
	}
	return false
}

func TestSplitStages_StepOutputGoesToTheInnermostStage(t *testing.T) {
	t.Parallel()
	console := "[Pipeline] Start of Pipeline\n[Pipeline] node\nRunning on a in /w\n[Pipeline] {\n" +
		"[Pipeline] stage\n[Pipeline] { (Build)\n[Pipeline] sh\n+ make\nbuilt\n[Pipeline] }\n[Pipeline] // stage\n" +
		"[Pipeline] stage\n[Pipeline] { (Deploy)\n[Pipeline] withEnv\n[Pipeline] {\n+ deploy\n[Pipeline] }\n[Pipeline] // withEnv\n[Pipeline] }\n[Pipeline] // stage\n" +
		"[Pipeline] }\n[Pipeline] // node\n[Pipeline] End of Pipeline\nFinished: SUCCESS\n"
	got := corpus.SplitStages(console)
	want := []corpus.Stage{
		{ID: "6", Name: "Build", Log: "+ make\nbuilt\n", Line: 6},
		{ID: "11", Name: "Deploy", Log: "+ deploy\n", Line: 13},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("SplitStages (-want +got):\n%s", diff)
	}
}
