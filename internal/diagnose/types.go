package diagnose

import "io"

// Build is what the diagnose_build tool learns about one build, each fact
// read from Jenkins as the calling user. Every field may be empty: the
// analysis uses what it is given and says less when it is given less.
type Build struct {
	// Result is Jenkins's result: SUCCESS, UNSTABLE, FAILURE, NOT_BUILT,
	// ABORTED, or "" while the build runs.
	Result string
	// Pipeline is true for a Pipeline (workflow-job) build.
	Pipeline bool
	// Stages are the build's stages in the order wfapi/describe lists
	// them, each with its own log when the tool read it.
	Stages []Stage
	// Console is the whole console text (or as much of it as the tool
	// read): console notes removed, LF line ends, as Butler's client
	// returns it. For a freestyle build it is the only log; for a Pipeline
	// it is read for what the stage logs do not hold (the errors Jenkins
	// prints after "[Pipeline] End of Pipeline", or every stage's lines
	// when Stages carry no logs). Nil when not read.
	Console io.Reader
	// FailingTests are the failed test cases of the build's test report,
	// in the report's order; FailingTestsTotal is how many failed in all
	// (0 means len(FailingTests)).
	FailingTests      []Test
	FailingTestsTotal int
	// Changes are the commits since the last successful build, newest
	// first (the change sets of this build and of the failed builds
	// before it).
	Changes []Commit
	// Upstream is the build that triggered this one, from its
	// UpstreamCause; nil when it was not triggered by another build.
	Upstream *Upstream
}

// Stage is one stage of a Pipeline build, as wfapi/describe reports it.
type Stage struct {
	// ID is the stage's flow node id; Name its name.
	ID, Name string
	// Status is stage-view's status: SUCCESS, FAILED, UNSTABLE, ABORTED,
	// IN_PROGRESS, PAUSED_PENDING_INPUT or NOT_EXECUTED.
	Status string
	// ErrorType and ErrorMessage are the stage's error (wfapi's
	// error.type and error.message), when it has one.
	ErrorType, ErrorMessage string
	// Log is the stage's console text: the logs of its steps, in order,
	// console notes removed, LF line ends. Nil when not read.
	Log io.Reader
}

// Test is one failed test case.
type Test struct {
	Name    string `json:"name" jsonschema:"the test case's name"`
	Class   string `json:"class,omitempty" jsonschema:"the test case's class or suite"`
	Message string `json:"message,omitempty" jsonschema:"the failure's message, at most 300 bytes"`
}

// Commit is one change since the last successful build.
type Commit struct {
	ID, Author, Message string
	// Timestamp is RFC 3339 UTC, or "".
	Timestamp string
	// Paths are the files the commit changed, when known: a path the
	// error names makes the commit a suspect (see Report.Hints).
	Paths []string
}

// Upstream names the build that triggered a build.
type Upstream struct {
	Job   string `json:"job" jsonschema:"full name of the upstream job"`
	Build int64  `json:"build" jsonschema:"number of the upstream build"`
}

// Report is diagnose_build's answer (CONTRACT §14): at most MaxReportBytes
// of JSON, every field bounded.
type Report struct {
	Result        string     `json:"result" jsonschema:"the build's result: SUCCESS, UNSTABLE, FAILURE, NOT_BUILT, ABORTED, or IN_PROGRESS while it runs"`
	FailedStages  []StageRef `json:"failed_stages" jsonschema:"the stages that failed, were unstable or aborted: those where an excerpt was found first, then failed, unstable, aborted; empty for a freestyle build"`
	ErrorExcerpts []Excerpt  `json:"error_excerpts" jsonschema:"the lines that look like the cause of the failure, with context, the most decisive first; excerpts from the failed stages come before the others"`
	FailingTests  []Test     `json:"failing_tests" jsonschema:"at most 10 failed tests of the build's test report"`
	// FailingTestsTotal counts all failed tests, also those not listed.
	FailingTestsTotal int       `json:"failing_tests_total" jsonschema:"how many tests failed in all"`
	Changes           []Change  `json:"changes_since_last_success" jsonschema:"at most 20 commits since the last successful build, newest first"`
	Upstream          *Upstream `json:"upstream_cause,omitempty" jsonschema:"the build that triggered this one"`
	Hints             []string  `json:"hints" jsonschema:"short, specific suggestions drawn from the excerpts and facts"`
	Truncated         bool      `json:"truncated" jsonschema:"true when something was left out to keep the answer within its bounds; omitted says what"`
	Omitted           []string  `json:"omitted,omitempty" jsonschema:"what was left out, e.g. '2 excerpts' or 'context lines'"`
}

// StageRef names a stage.
type StageRef struct {
	ID   string `json:"id" jsonschema:"the stage's flow node id, as get_stage_log takes it; empty when only the stage's name is known"`
	Name string `json:"name" jsonschema:"the stage's name"`
}

// Excerpt is a decisive line of a log with lines around it.
type Excerpt struct {
	// Stage is the stage the line belongs to, when known.
	Stage *StageRef `json:"stage,omitempty" jsonschema:"the stage whose log holds the line, when known"`
	// Log says which log LineNumber and StartLine count in: "stage" (the
	// stage's log, as get_stage_log returns it) or "console" (the whole
	// console text, as get_build_log and search_build_log read it).
	Log string `json:"log" jsonschema:"which log line_number counts lines of: 'stage' (the stage's log, get_stage_log) or 'console' (the whole console text, get_build_log / search_build_log)"`
	// LineNumber is the 1-based number of the decisive line in that log.
	LineNumber int64 `json:"line_number" jsonschema:"1-based number of the decisive line in that log"`
	// StartLine is the 1-based number of Lines[0].
	StartLine int64    `json:"start_line" jsonschema:"1-based number of the first line of lines"`
	Lines     []string `json:"lines" jsonschema:"the decisive line with a few lines before and after it; long lines are cut and end with '…'"`
	// Kind names the rule that found the line.
	Kind string `json:"kind" jsonschema:"what the line was recognised as, e.g. 'maven-compile-error', 'agent-offline', 'oom-killed'"`
}

// Change is one commit in the answer.
type Change struct {
	ID        string `json:"id" jsonschema:"commit id"`
	Author    string `json:"author"`
	Message   string `json:"message" jsonschema:"first line of the commit message, at most 200 bytes"`
	Timestamp string `json:"timestamp,omitempty" jsonschema:"RFC 3339 UTC"`
}
