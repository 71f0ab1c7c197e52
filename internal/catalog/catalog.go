// Package catalog declares Butler's tools: one entry per tool, holding
// every fact about it that is not its code (name, title, description for a
// model, class, the kind of resource it acts on, default OAuth scopes and
// MCP annotations).
//
// Every other layer reads the catalog instead of keeping its own list:
// config validates auth.tool_scopes keys and takes its defaults from it,
// authz derives the Cedar action group and resource type, tools registers
// exactly the catalog's tools (and refuses to start if one lacks a handler),
// metrics bounds its tool label by it, the admin commands resolve names
// with it, and docs/tools.md's table is generated from it. Adding a tool
// means writing its handler (internal/tools) and its entry here.
//
// The package sits on the lowest floor: it imports nothing of Butler's.
package catalog

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Class is how sensitive a tool is (docs/tools.md).
type Class int

// Tool classes.
const (
	ClassGuest         Class = iota // may be called without a token (health)
	ClassAuthenticated              // any authenticated user; touches no Jenkins job
	ClassRead                       // reads Jenkins as the user
	ClassSensitive                  // changes Jenkins as the user (trigger, stop, cancel)
)

// String returns the class name used in docs and messages.
func (c Class) String() string {
	switch c {
	case ClassGuest:
		return "guest"
	case ClassAuthenticated:
		return "authenticated"
	case ClassRead:
		return "read"
	case ClassSensitive:
		return "sensitive"
	}
	return "Class(" + strconv.Itoa(int(c)) + ")"
}

// Resource is the kind of thing a tool's call is about, which is what the
// policy's resource is built from.
type Resource int

// Resource kinds.
const (
	// ResourceServer: the call names nothing in Jenkins; the policy sees
	// Server::"butler".
	ResourceServer Resource = iota
	// ResourceJob: the call names a job by its full path; the policy sees
	// Job::"<path>" in its folders.
	ResourceJob
	// ResourceFolder: the call names a folder (list_all_jobs); the policy
	// sees Folder::"<path>", or Server::"butler" for the root.
	ResourceFolder
	// ResourceQueueItem: the call names a queue item; the policy sees the
	// queued item's job once Jenkins has said which it is, else
	// Server::"butler".
	ResourceQueueItem
)

// String returns the resource kind as docs name it.
func (r Resource) String() string {
	switch r {
	case ResourceServer:
		return "server"
	case ResourceJob:
		return "job"
	case ResourceFolder:
		return "folder"
	case ResourceQueueItem:
		return "queue item"
	}
	return "Resource(" + strconv.Itoa(int(r)) + ")"
}

// Action groups of the policy: every tool's Cedar action is a child of
// exactly one of them.
const (
	ActionRead  = "read"
	ActionWrite = "write"
)

// Unknown is the name that stands for any tool name a client sent that is
// not in the catalog, wherever such a name would otherwise become a metric
// label or an audit field.
const Unknown = "unknown"

// Tool is one tool's declaration.
type Tool struct {
	Name  string
	Title string
	// Description is written for a model: what the tool is for, when to
	// use another one instead, and its bounds.
	Description string
	Class       Class
	Resource    Resource
	// DefaultScopes are the OAuth scopes the tool needs unless
	// auth.tool_scopes says otherwise. Nil: the "default" entry of
	// auth.tool_scopes applies; empty and non-nil: no scope.
	DefaultScopes []string
	// MCP annotations, set truthfully.
	ReadOnly, Destructive, Idempotent, OpenWorld bool
	// Bounds says, for a reader of the README's tool table, what bounds
	// the call's input and answer (page sizes, caps, time limits).
	Bounds string
	// JenkinsRequests is the call's Jenkins request budget, as the README's
	// tool table states it: how many requests one call makes at most
	// (job tools add one path lookup per user and spelling, cached for a
	// minute, which the table counts as "+1 lookup").
	JenkinsRequests string
}

// ActionGroup is the policy's action group of the tool: ActionWrite for
// tools that change Jenkins, ActionRead for every other.
func (t Tool) ActionGroup() string {
	if t.Class == ClassSensitive {
		return ActionWrite
	}
	return ActionRead
}

// Tool names, for the code that refers to one tool in particular.
const (
	Health             = "health"
	GetCurrentTimeInfo = "get_current_time_info"
	Whoami             = "whoami"
	ListAllJobs        = "list_all_jobs"
	GetJob             = "get_job"
	TriggerJob         = "trigger_job"
	GetQueueItem       = "get_queue_item"
	CancelQueueItem    = "cancel_queue_item"
	GetBuild           = "get_build"
	GetBuildLog        = "get_build_log"
	SearchBuildLog     = "search_build_log"
	StopBuild          = "stop_build"
	GetTestResults     = "get_test_results"
	ListArtifacts      = "list_artifacts"
	GetArtifact        = "get_artifact"
	GetBuildChanges    = "get_build_changes"
	GetPipelineStages  = "get_pipeline_stages"
	GetStageLog        = "get_stage_log"
	ListPendingInputs  = "list_pending_inputs"
	SubmitInput        = "submit_input"
	ListQueue          = "list_queue"
	ListNodes          = "list_nodes"
	WaitForBuild       = "wait_for_build"
)

// Default OAuth scopes: DefaultScope is what a tool without DefaultScopes
// of its own needs (auth.tool_scopes's "default" entry unless configured);
// scopeBuild is what the tools that change Jenkins need.
const (
	DefaultScope = "jenkins:read"
	scopeBuild   = "jenkins:build"
)

// tools returns the catalog, in the order tools/list shows it. It is built
// on each call so that no caller can change it for another.
func tools() []Tool {
	return append([]Tool{
		{
			Name: Health, Title: "Check Butler and Jenkins health",
			Description: "Reports whether Butler is running and whether it can reach Jenkins. " +
				"Needs no login. Use it to tell a Jenkins outage apart from a problem with your own access.",
			Class: ClassGuest, Resource: ResourceServer, DefaultScopes: []string{},
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "none", JenkinsRequests: "1, anonymous",
		},
		{
			Name: GetCurrentTimeInfo, Title: "Get the current time",
			Description: "Returns the current date and time, in UTC or in an IANA time zone. " +
				"Use it to turn Jenkins timestamps (milliseconds since the epoch) into dates or to say how long ago a build ran.",
			Class: ClassAuthenticated, Resource: ResourceServer,
			ReadOnly: true,
			Bounds:   "none", JenkinsRequests: "0",
		},
		{
			Name: Whoami, Title: "Show who Butler acts for",
			Description: "Shows your identity as Butler sees it: your user id, the Jenkins account your calls run as, " +
				"your groups and token scopes, and whether your Jenkins account is linked. " +
				"Every Jenkins action you take through Butler runs with that Jenkins account's own permissions.",
			Class: ClassAuthenticated, Resource: ResourceServer,
			ReadOnly: true, Idempotent: true,
			Bounds: "none", JenkinsRequests: "0",
		},
		{
			Name: ListAllJobs, Title: "List Jenkins jobs",
			Description: "Lists the Jenkins jobs you can see, sorted by path, a page at a time (folders themselves are not listed). " +
				"By default it descends into every folder; give folder to list one folder, recursive=false for its direct jobs only. " +
				"If next_cursor is present, call again with it to get the next page. Jobs you may not see are never listed.",
			Class: ClassRead, Resource: ResourceFolder,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "`limit` ≤ 500 a page (cursor paging); the listing is cached per user", JenkinsRequests: "1 listing (cached) + at most 8 status requests a page",
		},
		{
			Name: GetJob, Title: "Get a Jenkins job",
			Description: "Describes one job: whether it can be built, its build parameters (names, types, defaults, choices), " +
				"its last, last successful and last failed build numbers, and whether a build is queued. " +
				"Call it before trigger_job to learn the parameters.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "parameters and choices as Jenkins holds them, answer ≤ 4 MiB", JenkinsRequests: "1 +1 lookup",
		},
		{
			Name: TriggerJob, Title: "Start a Jenkins build",
			Description: "Queues a build of a job, as you: Jenkins starts it only if your own Jenkins account has the Build permission on that job. " +
				"Pass parameters by name (get_job lists them); values are checked against the job's parameter definitions first. " +
				"Returns the queue item; with wait_for_start_seconds it waits for the build number. " +
				"To rebuild, give rebuild_of (a build number): its parameters are used, overridden by parameters; password values are never copied, " +
				"so give them again or they take their defaults. " +
				"Each call starts a new build, so do not retry a call that succeeded.",
			Class: ClassSensitive, Resource: ResourceJob, DefaultScopes: []string{scopeBuild},
			OpenWorld: true,
			Bounds:    "`wait_for_start_seconds` ≤ 60", JenkinsRequests: "2 (job, build) +1 lookup; +1 with rebuild_of; +1 per 2 s while waiting for the start",
		},
		{
			Name: GetQueueItem, Title: "Follow a queued build",
			Description: "Tells where a queued build request is: waiting, blocked, buildable, started (with its build number) or cancelled. " +
				"Jenkins forgets items about five minutes after they leave the queue; after that use get_job or get_build.",
			Class: ClassRead, Resource: ResourceQueueItem,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "none", JenkinsRequests: "1",
		},
		{
			Name: CancelQueueItem, Title: "Cancel a queued build",
			Description: "Removes a build request from the Jenkins queue before it starts, as you: Jenkins does it only if your own account " +
				"has the Cancel permission on the job. A build that already started cannot be cancelled here; use stop_build.",
			Class: ClassSensitive, Resource: ResourceQueueItem, DefaultScopes: []string{scopeBuild},
			Destructive: true, Idempotent: true, OpenWorld: true,
			Bounds: "none", JenkinsRequests: "2 (item, cancel)",
		},
		{
			Name: GetBuild, Title: "Get a Jenkins build",
			Description: "Describes one build of a job (the last one unless build is given): result, whether it is still running, " +
				"duration, start time, causes and parameters. Use get_build_log or search_build_log to read its console output.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "answer ≤ 4 MiB", JenkinsRequests: "1 +1 lookup",
		},
		{
			Name: GetBuildLog, Title: "Read a build's console log",
			Description: "Reads a build's console output a page at a time, so large logs fit your context: from byte offset start, " +
				"at most max_bytes, continuing with next_start while more is true. Use tail_lines to read just the end " +
				"(usually where a failure is explained), or search_build_log to find lines.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "`max_bytes` ≤ 1 MiB (64 KiB default), `tail_lines` ≤ 10,000", JenkinsRequests: "1–3 (progressiveText windows for tail_lines) +1 lookup",
		},
		{
			Name: SearchBuildLog, Title: "Search a build's console log",
			Description: "Finds the lines of a build's console output that contain pattern (literal text, or an RE2 regular expression " +
				"with regex=true), with line numbers and optional context lines. Much cheaper than reading a whole log: " +
				"search for 'ERROR', 'FAILED' or an exception name first.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "`max_matches` ≤ 1000 (50 default), `context_lines` ≤ 10, reads ≤ 64 MiB of log for ≤ 10 s; 2 at once a user, 8 a server", JenkinsRequests: "2 (build, streamed consoleText) +1 lookup",
		},
		{
			Name: StopBuild, Title: "Stop a running build",
			Description: "Aborts a running build, as you: Jenkins does it only if your own account has the Cancel permission on the job. " +
				"A build that already finished is left alone (stopped=false). To cancel a build that has not started yet, use cancel_queue_item.",
			Class: ClassSensitive, Resource: ResourceJob, DefaultScopes: []string{scopeBuild},
			Destructive: true, Idempotent: true, OpenWorld: true,
			Bounds: "none", JenkinsRequests: "2–3 +1 lookup",
		},
		{
			Name: GetTestResults, Title: "Get a build's test results",
			Description: "Summarizes the JUnit test report of a build (the last one unless build is given): counts of passed, failed " +
				"and skipped tests and the failing tests with their error messages. not_found when the build has no test report.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "≤ 1000 tests and failures listed", JenkinsRequests: "2 +1 lookup",
		},
		{
			Name: ListArtifacts, Title: "List a build's artifacts",
			Description: "Lists the files a build archived (the last build unless build is given), with their paths and sizes. " +
				"Sizes are known for Pipeline builds and null where Jenkins does not report them (freestyle builds). " +
				"Read a file with get_artifact, passing a path exactly as listed. At most 1000 files; truncated says there are more.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "≤ 1000 files listed", JenkinsRequests: "1–2 (build, Pipeline sizes) +1 lookup",
		},
		{
			Name: GetArtifact, Title: "Read a build artifact",
			Description: "Reads one archived file of a build, path as list_artifacts shows it (literal, not URL-encoded; no '..'). " +
				"A text file comes back as text a page at a time, like get_build_log: from byte offset start, at most max_bytes, " +
				"continuing with next_start while more is true. A binary file comes back as its size and media type, and its bytes " +
				"as an embedded resource only when it fits in max_bytes. Give build when paging, so every page is of the same build.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "`max_bytes` ≤ 1 MiB (64 KiB default) a page", JenkinsRequests: "1 (2 when start is past the end) +1 lookup",
		},
		{
			Name: GetBuildChanges, Title: "Get a build's SCM changes",
			Description: "Lists the commits a build built, as Jenkins recorded them at checkout (the last build unless build is given): " +
				"id, author, message, time and the files each touched, and the repositories fetched from (without credentials). " +
				"Use it to see what changed between a passing and a failing build; an empty list means Jenkins recorded no changes.",
			Class: ClassRead, Resource: ResourceJob,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "≤ 200 commits, ≤ 50 paths each, messages cut at 1000 characters", JenkinsRequests: "1 +1 lookup",
		},
		{
			Name: ListQueue, Title: "List the Jenkins build queue",
			Description: "Lists the builds waiting in the Jenkins queue that you may see: each item's queue id, job, state " +
				"(waiting: in its quiet period; blocked: e.g. a build of the job is already running; buildable: waiting for an executor), " +
				"Jenkins's explanation (why), when it entered the queue and whether Jenkins thinks it is stuck. " +
				"Use it to find out why a build has not started; for one item you already know use get_queue_item, " +
				"to wait for it to start or finish use wait_for_build. At most 1000 items (then truncated is true).",
			Class: ClassRead, Resource: ResourceServer,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "≤ 1000 items (`truncated`)", JenkinsRequests: "1",
		},
		{
			Name: ListNodes, Title: "List Jenkins nodes and executors",
			Description: "Lists Jenkins's nodes (built-in for the controller, and the agents): whether each is online and if not why, " +
				"its labels, how many executors it has and how many are busy, and the running builds on it that you may see " +
				"(an executor running a build you may not see counts as busy but its build is not named). " +
				"Use it when builds wait for an executor or a label (list_queue's why says so) to see which agents are offline or full. " +
				"At most 1000 nodes and 100 running builds a node (then truncated is true).",
			Class: ClassRead, Resource: ResourceServer,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "≤ 1000 nodes, ≤ 100 labels and ≤ 100 running builds a node (`truncated`)", JenkinsRequests: "1",
		},
		{
			Name: WaitForBuild, Title: "Wait for a build to start or finish",
			Description: "Waits until a build finishes, checking Jenkins every 2 seconds, and returns its result: give job and build " +
				"(a build number), or queue_id (from trigger_job) to follow a queued build until it starts and then finishes. " +
				"Returns state finished with result and duration_ms, or state timeout after timeout_seconds (60 by default, at most 600) " +
				"with the build_number if it started; call it again to keep waiting. Sends progress notifications when the request " +
				"asks for them, and stops when the request is cancelled. Prefer it to calling get_build in a loop. " +
				"A user may have 4 waits at once.",
			Class: ClassRead, Resource: ResourceQueueItem,
			ReadOnly: true, Idempotent: true, OpenWorld: true,
			Bounds: "`timeout_seconds` ≤ 600 (60 default); 4 waits at once a user, 64 a server", JenkinsRequests: "1 every 2 s while waiting (the first at once) +1 lookup",
		},
	}, append(pipelineTools(), diagnoseTools()...)...)
}

// All returns every tool, in the order tools/list shows them. The slice is
// the caller's own.
func All() []Tool { return tools() }

// Names returns every tool's name, in catalog order.
func Names() []string {
	all := tools()
	out := make([]string, len(all))
	for i, t := range all {
		out[i] = t.Name
	}
	return out
}

// Lookup returns the tool of that exact name.
func Lookup(name string) (Tool, bool) {
	for _, t := range tools() {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// Known reports whether name is a tool of the catalog.
func Known(name string) bool {
	_, ok := Lookup(name)
	return ok
}

// Label returns name if it is a tool of the catalog, else Unknown: the
// only values a metric label or an audit record's tool field may take, so
// that what a client sends can never grow either.
func Label(name string) string {
	if Known(name) {
		return name
	}
	return Unknown
}

// maxQuoted bounds how much of an unknown tool name Quote keeps.
const maxQuoted = 64

// Quote returns at most the first 64 bytes of a client-sent tool name
// (cut at a UTF-8 boundary), with control characters escaped, for a
// message or an audit reason about an unknown tool.
func Quote(name string) string {
	end := 0
	for end < len(name) {
		_, w := utf8.DecodeRuneInString(name[end:])
		if end+w > maxQuoted {
			break
		}
		end += w
	}
	q := strconv.QuoteToASCII(name[:end])
	if end < len(name) {
		q += "..."
	}
	return q
}

// Check reports whether the catalog is well formed: names unique and
// lower_snake_case, every class and resource known, titles and
// descriptions present, annotations consistent with the class. The tools
// package calls it at start-up and the tests pin it.
func Check(all []Tool) error {
	var problems []string
	seen := map[string]bool{}
	for _, t := range all {
		switch {
		case t.Name == "" || strings.Trim(t.Name, "abcdefghijklmnopqrstuvwxyz_") != "":
			problems = append(problems, fmt.Sprintf("tool %q: a name is lower_snake_case", t.Name))
		case t.Name == Unknown:
			problems = append(problems, fmt.Sprintf("tool %q: the name is reserved", t.Name))
		case seen[t.Name]:
			problems = append(problems, fmt.Sprintf("tool %q: declared twice", t.Name))
		}
		seen[t.Name] = true
		if t.Title == "" || t.Description == "" {
			problems = append(problems, fmt.Sprintf("tool %q: needs a title and a description", t.Name))
		}
		if t.Bounds == "" || t.JenkinsRequests == "" {
			problems = append(problems, fmt.Sprintf("tool %q: bounds and Jenkins request budget are stated (\"none\" / \"0\" when there are none)", t.Name))
		}
		if t.Class < ClassGuest || t.Class > ClassSensitive {
			problems = append(problems, fmt.Sprintf("tool %q: unknown class %d", t.Name, t.Class))
		}
		if t.Resource < ResourceServer || t.Resource > ResourceQueueItem {
			problems = append(problems, fmt.Sprintf("tool %q: unknown resource kind %d", t.Name, t.Resource))
		}
		if t.ReadOnly == (t.Class == ClassSensitive) {
			problems = append(problems, fmt.Sprintf("tool %q: a %s tool must %sbe read-only", t.Name, t.Class, map[bool]string{true: "not ", false: ""}[t.Class == ClassSensitive]))
		}
		if t.ReadOnly && t.Destructive {
			problems = append(problems, fmt.Sprintf("tool %q: a read-only tool is not destructive", t.Name))
		}
		if t.Class == ClassGuest && len(t.DefaultScopes) > 0 {
			problems = append(problems, fmt.Sprintf("tool %q: a guest tool needs no scope", t.Name))
		}
		if t.Class != ClassGuest && t.DefaultScopes != nil && len(t.DefaultScopes) == 0 {
			problems = append(problems, fmt.Sprintf("tool %q: only guest tools default to no scope", t.Name))
		}
		if slices.Contains(t.DefaultScopes, "") {
			problems = append(problems, fmt.Sprintf("tool %q: empty scope", t.Name))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("catalog: %s", strings.Join(problems, "; "))
	}
	return nil
}
