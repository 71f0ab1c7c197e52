package catalog

// DiagnoseBuild is the name of the tool that explains a failed build.
const DiagnoseBuild = "diagnose_build"

// diagnoseTools are the tools that combine the others' reads into an
// answer (CONTRACT §14).
func diagnoseTools() []Tool {
	return []Tool{
		{
			Name: DiagnoseBuild, Title: "Diagnose a failed build",
			Description: "Explains why a build failed (the last build unless build is given), in one answer of at most 16 KiB: " +
				"the failed stages, the log lines that look like the cause with a few lines of context (the most decisive first; " +
				"line_number counts lines of the stage's log, as get_stage_log returns it, or of the whole console when log is 'console'), " +
				"up to 10 failing tests, up to 20 commits since the last successful build, the build that triggered it and short hints. " +
				"Call it first when a build is red. Dig further with get_stage_log (a stage's whole output), search_build_log " +
				"(other lines of the console) or get_test_results (every failing test). A running build is diagnosed on its log so far " +
				"(result IN_PROGRESS); a successful one gets an answer that says so. Only the logs of stages that failed, were unstable " +
				"or aborted are read, plus the console text; at most 256 MiB of log for 20 s. Facts you may not read are left out. " +
				"truncated and omitted say what was left out to keep the answer small.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "answer ≤ 16 KiB; reads ≤ 256 MiB of log for ≤ 20 s: the logs of ≤ 8 failed stages (≤ 40 step logs) and the console; " +
				"≤ 20 commits from ≤ 11 builds; counts as a log search (2 at once a user, 8 a server)",
			JenkinsRequests: "≤ 63 +1 lookup: 1 (build, causes, commits) + ≤ 10 (earlier builds back to the last success) + 1 (upstream job, as you) " +
				"+ 1 (test report) + 1 (streamed consoleText); a Pipeline build + 1 (stages) + 1 per failed stage read (≤ 8) + 1 per step log (≤ 40)",
		},
	}
}
