package diagnose_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/diagnose"
)

func run(t testing.TB, b *diagnose.Build, o *diagnose.Options) *diagnose.Report {
	t.Helper()
	r, err := diagnose.Diagnose(context.Background(), b, o)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if len(js) > diagnose.MaxReportBytes {
		t.Fatalf("answer is %d bytes, over %d", len(js), diagnose.MaxReportBytes)
	}
	if !utf8.Valid(js) {
		t.Fatal("answer is not UTF-8")
	}
	return r
}

func TestDiagnose_NoiseIsNotDecisive(t *testing.T) {
	t.Parallel()
	log := strings.Join([]string{
		"[INFO] Compiling 12 source files, 0 errors reported by error-prone",
		"[WARNING] ErrorHandler is deprecated: error handling moves to Errors",
		"+ grep -c error lint.txt",
		"[INFO] Tests run: 5, Failures: 0, Errors: 0, Skipped: 0",
		"worker: processed 10 batches, no failures",
		"src/app.ts(12,5): error TS2304: Cannot find name 'fetchUser'.",
		"ERROR: script returned exit code 2",
	}, "\n")
	r := run(t, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log)}, nil)
	if len(r.ErrorExcerpts) == 0 || r.ErrorExcerpts[0].LineNumber != 6 || r.ErrorExcerpts[0].Kind != "compile-error" {
		t.Fatalf("excerpts = %+v, want line 6 (the tsc error) first", r.ErrorExcerpts)
	}
}

func TestDiagnose_StageLineNumbersCountWithinTheStageLog(t *testing.T) {
	t.Parallel()
	b := &diagnose.Build{Result: "FAILURE", Pipeline: true, Stages: []diagnose.Stage{
		{ID: "6", Name: "Build", Status: "SUCCESS", Log: strings.NewReader("ok\n")},
		{ID: "12", Name: "Test", Status: "FAILED", Log: strings.NewReader("one\ntwo\nFATAL: no space left on device\nfour\n")},
	}}
	r := run(t, b, nil)
	e := r.ErrorExcerpts[0]
	if e.Log != "stage" || e.LineNumber != 3 || e.StartLine != 1 || e.Stage == nil || e.Stage.ID != "12" || e.Stage.Name != "Test" {
		t.Fatalf("excerpt = %+v, want line 3 of stage 12's log", e)
	}
	if len(r.FailedStages) != 1 || r.FailedStages[0] != (diagnose.StageRef{ID: "12", Name: "Test"}) {
		t.Fatalf("failed_stages = %+v", r.FailedStages)
	}
}

// failReader fails the test when read: a log that must not be read.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("the log of a stage that passed was read")
	return 0, io.EOF
}

func TestDiagnose_PassedStagesAreNotRead(t *testing.T) {
	t.Parallel()
	b := &diagnose.Build{Result: "FAILURE", Pipeline: true, Stages: []diagnose.Stage{
		{ID: "6", Name: "Lint", Status: "SUCCESS", Log: failReader{t}},
		{ID: "9", Name: "Test", Status: "FAILED", Log: strings.NewReader("--- FAIL: TestLogin (0.01s)\n")},
	}}
	r := run(t, b, nil)
	if r.ErrorExcerpts[0].Stage.Name != "Test" {
		t.Fatalf("excerpts = %+v", r.ErrorExcerpts)
	}
}

func TestDiagnose_ConsoleOnlyStagesComeFromTheMarkers(t *testing.T) {
	t.Parallel()
	console := "[Pipeline] Start of Pipeline\n[Pipeline] stage\n[Pipeline] { (Build)\nok\n[Pipeline] }\n" +
		"[Pipeline] stage\n[Pipeline] { (Deploy)\n[Pipeline] sh\n+ kubectl apply -f k8s/\n" +
		"error: You must be logged in to the server (Unauthorized)\n[Pipeline] }\n[Pipeline] End of Pipeline\n" +
		"ERROR: script returned exit code 1\nFinished: FAILURE\n"
	b := &diagnose.Build{Result: "FAILURE", Pipeline: true, Console: strings.NewReader(console), Stages: []diagnose.Stage{
		{ID: "3", Name: "Build", Status: "SUCCESS"}, {ID: "7", Name: "Deploy", Status: "FAILED"},
	}}
	r := run(t, b, nil)
	e := r.ErrorExcerpts[0]
	if e.Log != "console" || e.LineNumber != 10 || e.Stage == nil || e.Stage.ID != "7" {
		t.Fatalf("excerpt = %+v, want console line 10 in stage 7", e)
	}
}

func TestDiagnose_ReadErrorIsReturned(t *testing.T) {
	t.Parallel()
	boom := errors.New("jenkins went away")
	b := &diagnose.Build{Result: "FAILURE", Console: io.MultiReader(strings.NewReader("line\n"), errReader{boom})}
	if _, err := diagnose.Diagnose(context.Background(), b, nil); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestDiagnose_BoundsAtTheirLimitsAndPast(t *testing.T) {
	t.Parallel()
	for _, n := range []int{diagnose.MaxChanges, diagnose.MaxChanges + 1} {
		b := &diagnose.Build{Result: "FAILURE"}
		for i := range n {
			b.Changes = append(b.Changes, diagnose.Commit{ID: fmt.Sprintf("%040d", i), Author: "bob", Message: "fix\n\nbody"})
			b.FailingTests = append(b.FailingTests, diagnose.Test{Name: fmt.Sprintf("t%d", i), Message: strings.Repeat("x", 1000)})
		}
		r := run(t, b, nil)
		if len(r.Changes) != diagnose.MaxChanges || r.Changes[0].Message != "fix" {
			t.Errorf("%d commits: got %d, first message %q", n, len(r.Changes), r.Changes[0].Message)
		}
		if len(r.FailingTests) != diagnose.MaxFailingTests || r.FailingTestsTotal != n || len(r.FailingTests[0].Message) > 300 {
			t.Errorf("%d tests: got %d (total %d)", n, len(r.FailingTests), r.FailingTestsTotal)
		}
		if past := n > diagnose.MaxChanges; r.Truncated != past {
			t.Errorf("%d commits: truncated = %v, omitted %q", n, r.Truncated, r.Omitted)
		}
	}
	// Excerpts: one per kind and stage, at most MaxExcerpts.
	var log strings.Builder
	for _, l := range []string{"npm ERR! code E404", "fatal: repository not found", "No space left on device", "java.lang.OutOfMemoryError: Java heap space",
		"Killed", "panic: runtime error", "Connection reset by peer", "command not found", "--- FAIL: TestX"} {
		log.WriteString(strings.Repeat("filler line\n", 20) + l + "\n")
	}
	r := run(t, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log.String())}, nil)
	if len(r.ErrorExcerpts) != diagnose.MaxExcerpts {
		t.Errorf("got %d excerpts, want %d", len(r.ErrorExcerpts), diagnose.MaxExcerpts)
	}
	for _, e := range r.ErrorExcerpts {
		if len(e.Lines) > 1+3+6 {
			t.Errorf("excerpt has %d lines", len(e.Lines))
		}
	}
}

func TestDiagnose_HugeAnswerIsCutTo16KiBAndSaysSo(t *testing.T) {
	t.Parallel()
	// Lines of '<' cost six bytes each in JSON: five excerpts of ten such
	// lines would be 90 KB.
	wide := strings.Repeat("<", 1000)
	var log strings.Builder
	for _, l := range []string{"npm ERR! code E404 ", "fatal: ", "No space left on device ", "java.lang.OutOfMemoryError: ", "panic: "} {
		for range 4 {
			log.WriteString(wide + "\n")
		}
		log.WriteString(l + wide + "\n")
		for range 6 {
			log.WriteString(wide + "\n")
		}
	}
	b := &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log.String()), Upstream: &diagnose.Upstream{Job: strings.Repeat("<", 2000), Build: 3}}
	for i := range 30 {
		b.Changes = append(b.Changes, diagnose.Commit{ID: wide, Author: wide, Message: wide})
		b.FailingTests = append(b.FailingTests, diagnose.Test{Name: wide, Class: wide, Message: wide + fmt.Sprint(i)})
		b.Stages = append(b.Stages, diagnose.Stage{ID: wide, Name: wide + fmt.Sprint(i), Status: "FAILED"})
	}
	r := run(t, b, nil)
	if !r.Truncated || len(r.Omitted) == 0 {
		t.Fatalf("truncated = %v, omitted = %q", r.Truncated, r.Omitted)
	}
	if len(r.ErrorExcerpts) == 0 {
		t.Fatalf("the first excerpt was dropped; omitted %q", r.Omitted)
	}
}

func TestDiagnose_HostileLogs(t *testing.T) {
	t.Parallel()
	for name, log := range map[string]string{
		"no newline, 8 MB":  strings.Repeat("a", 8<<20) + " error: late",
		"binary":            "\x00\x01\xff\xfe ERROR: \x1b[31mbad\x1b[0m \xc3\x28\n\x00Killed\n",
		"ansi":              "\x1b[1;31merror:\x1b[0m build broke\n",
		"huge lines":        strings.Repeat(strings.Repeat("x", 100<<10)+" error\n", 50),
		"deep blocks":       strings.Repeat("[Pipeline] {\n", 10000) + "error: deep\n" + strings.Repeat("[Pipeline] }\n", 20000),
		"many stage labels": strings.Repeat("[Pipeline] stage\n[Pipeline] { (s)\nerror: x\n", 3000),
	} {
		r := run(t, &diagnose.Build{Result: "FAILURE", Pipeline: true, Console: strings.NewReader(log)}, nil)
		for _, e := range r.ErrorExcerpts {
			for _, l := range e.Lines {
				if len(l) > 1024 || strings.ContainsAny(l, "\x00\x1b\r\n") {
					t.Errorf("%s: line %q", name, l[:min(len(l), 80)])
				}
			}
		}
	}
}

func TestDiagnose_ScanBudgetIsSaid(t *testing.T) {
	t.Parallel()
	log := strings.Repeat("filler\n", 200000) + "No space left on device\n"
	r := run(t, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log)}, &diagnose.Options{MaxScanBytes: 1 << 20})
	if len(r.ErrorExcerpts) != 0 || !r.Truncated || !strings.Contains(strings.Join(r.Omitted, ";"), "1 MiB") {
		t.Fatalf("report = %+v", r)
	}
}

func TestDiagnose_CancelledScanReturnsWhatItFound(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r, err := diagnose.Diagnose(ctx, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(strings.Repeat("x\n", 5000))}, nil)
	if err != nil || !r.Truncated {
		t.Fatalf("Diagnose = %+v, %v", r, err)
	}
}

func TestDiagnose_SuccessAndRunning(t *testing.T) {
	t.Parallel()
	if r := run(t, &diagnose.Build{Result: "SUCCESS"}, nil); len(r.Hints) != 1 || !strings.Contains(r.Hints[0], "succeeded") {
		t.Errorf("hints = %q", r.Hints)
	}
	if r := run(t, &diagnose.Build{}, nil); r.Result != "IN_PROGRESS" {
		t.Errorf("result = %q", r.Result)
	}
}

// FuzzDiagnose checks that no log makes Diagnose panic or answer more than
// MaxReportBytes of JSON, for a freestyle build and for a Pipeline whose
// failed stage has the same log.
func FuzzDiagnose(f *testing.F) {
	f.Add([]byte("[Pipeline] stage\n[Pipeline] { (Build)\nerror: x\n[Pipeline] }\nKilled\n"), "FAILED")
	f.Add([]byte("npm ERR! code E404\n\x1b[31m<<< FAILURE!\x1b\n\xff\xfe\r\rCannot contact a: b"), "ABORTED")
	f.Add([]byte(strings.Repeat("<", 5000)), "UNSTABLE")
	f.Fuzz(func(t *testing.T, log []byte, status string) {
		for _, b := range []*diagnose.Build{
			{Result: "FAILURE", Console: strings.NewReader(string(log))},
			{Result: status, Pipeline: true, Console: strings.NewReader(string(log)), Stages: []diagnose.Stage{
				{ID: string(log[:min(len(log), 8)]), Name: string(log[:min(len(log), 20)]), Status: status, ErrorMessage: string(log), Log: strings.NewReader(string(log))},
			}, Changes: []diagnose.Commit{{ID: string(log), Message: string(log), Paths: []string{string(log)}}}},
		} {
			run(t, b, nil)
		}
	})
}

// A shell's "+ command" trace echoes what a step runs, not what it
// printed: a command that mentions an error is not the error.
func TestDiagnose_ShellTraceIsNotOutput(t *testing.T) {
	t.Parallel()
	log := "+ echo 'watching for java.lang.OutOfMemoryError in the logs'\nwatching for java.lang.OutOfMemoryError in the logs\n" +
		"+ ./release.sh\nerror: release 1.2.0 already exists\n"
	r := run(t, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log)}, nil)
	// The echoed text itself (line 2) is output and does say
	// OutOfMemoryError; the trace line (1) must not outrank it.
	if e := r.ErrorExcerpts[0]; e.LineNumber == 1 {
		t.Fatalf("first excerpt is the shell trace: %+v", e)
	}
	log = "+ grep -c OutOfMemoryError app.log\n+ ./release.sh\nerror: release 1.2.0 already exists\n"
	r = run(t, &diagnose.Build{Result: "FAILURE", Console: strings.NewReader(log)}, nil)
	if e := r.ErrorExcerpts[0]; e.LineNumber != 3 {
		t.Fatalf("first excerpt = %+v, want line 3", e)
	}
}

// With only the console, a line of a stage that passed ranks below a
// plainer line of the stage that failed.
func TestDiagnose_FailedStageLinesComeBeforePassedStages(t *testing.T) {
	t.Parallel()
	console := "[Pipeline] stage\n[Pipeline] { (Lint)\nnpm ERR! code E404 (optional plugin, ignored)\n[Pipeline] }\n" +
		"[Pipeline] stage\n[Pipeline] { (Deploy)\nERROR: helm upgrade refused: release is locked\n[Pipeline] }\n"
	b := &diagnose.Build{Result: "FAILURE", Pipeline: true, Console: strings.NewReader(console), Stages: []diagnose.Stage{
		{ID: "3", Name: "Lint", Status: "SUCCESS"}, {ID: "8", Name: "Deploy", Status: "FAILED"},
	}}
	r := run(t, b, nil)
	if e := r.ErrorExcerpts[0]; e.Stage == nil || e.Stage.Name != "Deploy" {
		t.Fatalf("first excerpt = %+v, want the Deploy stage's", e)
	}
}
