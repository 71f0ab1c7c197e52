package catalog

// pipelineTools are the tools for Pipeline builds: their stages, a
// stage's log, and the input steps they wait at (CONTRACT §14).
func pipelineTools() []Tool {
	return []Tool{
		{
			Name: GetPipelineStages, Title: "List a Pipeline build's stages",
			Description: "Lists the stages of a Pipeline build (the last one unless build is given) with each stage's id, name, status " +
				"(SUCCESS, FAILED, UNSTABLE, ABORTED, IN_PROGRESS, PAUSED_PENDING_INPUT or NOT_EXECUTED), start time and duration, " +
				"as Jenkins's stage view shows them. Use it to find which stage failed, then get_stage_log with that stage's id to read only its output. " +
				"A freestyle build has no stages (conflict): use get_build_log for it.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "stages as Jenkins's stage view lists them, answer ≤ 4 MiB", JenkinsRequests: "1 +1 lookup (+1 to tell a build that is not a Pipeline build)",
		},
		{
			Name: GetStageLog, Title: "Read one stage's log",
			Description: "Returns the console output of one stage of a Pipeline build: the logs of the stage's steps, in order, as plain text. " +
				"Name the stage by its id from get_pipeline_stages, or by its name when no other stage has it (parallel branches often share names: " +
				"then pass the id). At most max_bytes of text; truncated=true means the stage printed more: the start is kept, " +
				"or with tail_lines the last lines (usually where a failure is explained). Cheaper than reading the whole build log.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds:          "`max_bytes` ≤ 1 MiB (64 KiB default), `tail_lines` ≤ 10,000; ≤ 100 steps of a stage (Jenkins's stage view lists no more)",
			JenkinsRequests: "2 + 1 per step log read (up to 3 per step with tail_lines) +1 lookup",
		},
		{
			Name: ListPendingInputs, Title: "List the inputs a Pipeline build waits for",
			Description: "Lists the input steps a Pipeline build is waiting at (the last build unless build is given): each input's id, message, " +
				"the proceed button's text, who may answer it (submitter: user ids and groups; absent means anyone who may build the job) " +
				"and the parameters it asks for (names, types, defaults, choices). Call it before submit_input.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "inputs and parameters as Jenkins holds them, answer ≤ 4 MiB", JenkinsRequests: "2 +1 lookup",
		},
		{
			Name: SubmitInput, Title: "Answer a Pipeline input step",
			Description: "Answers an input step a Pipeline build waits at, as you: action=proceed lets the build go on (with parameters, " +
				"checked against the input's own definitions first; list_pending_inputs lists them), action=abort stops the build. " +
				"Jenkins decides: with a submitter list you must be in it (or in one of its groups) or be an administrator, else you need " +
				"the Build permission; aborting is also allowed with the Cancel permission. An input can be answered once: do not retry a call that succeeded.",
			Class: ClassSensitive, Resource: ResourceJob, DefaultScopes: []string{scopeBuild},
			Destructive: true, OpenWorld: true,
			Bounds: "`parameters` ≤ 100, each value ≤ 64 KiB", JenkinsRequests: "4 (build's inputs, pending inputs, answer, result) +1 lookup",
		},
	}
}
