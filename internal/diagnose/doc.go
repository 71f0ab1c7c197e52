// Package diagnose finds why a Jenkins build failed, from the facts the
// diagnose_build tool reads as the calling user: the build's result, its
// Pipeline stages each with its own log (or the whole console text), its
// failing tests, the commits since the last successful build and the
// build that triggered it. It does no I/O of its own and knows nothing of
// Jenkins's API: the tool fills a Build, Diagnose answers with a Report.
//
// # What diagnose_build will do (CONTRACT §14)
//
// diagnose_build (class read; input job, build?) answers one question: why
// did this build fail, and what should be done about it. The tool reads,
// each request with the caller's own Jenkins credential:
//
//   - the build (get_build's request) for its result and upstream cause;
//   - for a Pipeline build, its stages (wfapi/describe, as get_pipeline_stages)
//     and the logs of the stages that failed, were unstable or aborted (as
//     get_stage_log); the logs of stages that passed are not read;
//   - the console text, for what the stage logs do not hold: Jenkins prints
//     a failed step's error after "[Pipeline] End of Pipeline", outside
//     every stage; for a freestyle build it is the only log;
//   - the failing tests of the build's test report (get_test_results with
//     only_failing), when there is one;
//   - the change sets of this build and of the failed builds before it, back
//     to the last successful one (get_build_changes).
//
// A fact the caller may not read (Jenkins answers 403 or 404 for it) is
// left out rather than failing the call, except the build itself, whose
// not_found / forbidden the tool returns as every tool does.
//
// The answer, at most MaxReportBytes (16 KiB) of JSON, holds the result,
// the failed stages worst first, up to MaxExcerpts error excerpts (the most
// decisive line of each kind, with context; the failed stages' first), up
// to MaxFailingTests failing tests, up to MaxChanges commits, the upstream
// cause, and up to MaxHints short hints ("the agent linux-4 went offline
// during the build: rerun it and check node linux-4"). When the answer
// would be bigger, the least useful parts go first (the later excerpts'
// context, the later excerpts, the tests' messages, ...), and truncated and
// omitted say what went.
//
// # How lines are found
//
// Every log is read once, line by line, holding one line buffer, a few
// context lines and a bounded set of candidate lines; lines over 64 KiB are
// cut, only a line's first 2 KiB are matched, and at most
// Options.MaxScanBytes are read in all. A line is scored by the rules in
// rules.go: specific causes (a compiler error with file and line, Gradle's
// "> Could not resolve g:a:v", "npm ERR! ERESOLVE", "Agent went offline
// during the build", "Killed", MissingMethodException, "Could not find
// credentials entry with ID") score high; wrappers that only say that
// something failed ("ERROR: script returned exit code 1", "BUILD
// FAILURE") score low; noise (Maven's [INFO] and [WARNING] lines, "0
// errors" counts, a shell's "+ command" trace, stack frames, "[Pipeline]"
// structure) lowers a line's score or rules it out. The corpus in
// internal/diagnose/corpus holds the failures the rules were written
// against; TestCorpus measures them.
package diagnose
