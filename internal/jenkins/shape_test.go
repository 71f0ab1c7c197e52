package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// The wire fidelity test: every request the client sends is issued, as the
// client sends it (its own tree= queries, its own methods and paths), to
// the simulator, and each answer is checked against what real Jenkins
// sends: (a) every field of a JSON answer exists, with the same JSON type
// and a plausible _class, in the recorded fixtures of that kind of answer
// (a field only the simulator sends is a "simulator-only field", allowed
// only with the Jenkins source that exports it); (b) status codes and the
// headers Butler reads (Content-Type, X-Text-Size, X-More-Data, Location,
// X-Required-Permission) are Jenkins's. A request of a kind the table does
// not know fails the test, so a new request in the client needs a rule.

// wireRecord is one request the client sent and the simulator's answer.
type wireRecord struct {
	method, path string
	query        url.Values
	user         string
	status       int
	header       http.Header
	body         []byte
}

// recorder passes requests to the simulator and keeps each exchange.
type recorder struct {
	h    http.Handler
	mu   sync.Mutex
	recs []wireRecord
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	rw := httptest.NewRecorder()
	r.h.ServeHTTP(rw, req)
	for k, v := range rw.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rw.Code)
	_, _ = w.Write(rw.Body.Bytes())
	user, _, _ := req.BasicAuth()
	r.mu.Lock()
	r.recs = append(r.recs, wireRecord{method: req.Method, path: req.URL.EscapedPath(), query: req.URL.Query(), user: user,
		status: rw.Code, header: rw.Header().Clone(), body: rw.Body.Bytes()})
	r.mu.Unlock()
}

// wireKind is one kind of request the client sends, and what real Jenkins
// answers to it.
type wireKind struct {
	name   string
	method string
	path   *regexp.Regexp    // the escaped path
	tree   func(string) bool // matches the tree= query; nil: the request has none
	// other query parameters the request carries (tree aside)
	params []string
	// status codes Jenkins answers with; the first is the success.
	status []int
	// contentType of a 200, "" for none expected.
	contentType string
	// fixtures: the recorded answers of this kind. Shapes of fixtures
	// under a prefix are the shape of the same object nested there (a job
	// in a folder's jobs array is serialized by the same Stapler bean).
	fixtures []fixtureAt
	// source: for kinds without a recorded fixture, the shape Jenkins's
	// @Exported getters give, as a JSON document (see sourceShapes).
	source string
	// check tests headers and body beyond status and Content-Type.
	check func(t *testing.T, run wireRun, rec wireRecord)
}

// fixtureAt is a fixture file whose shape appears at prefix.
type fixtureAt struct{ file, prefix string }

var (
	listingFixtures = []fixtureAt{
		{"jobsInRootFolder.json", ""}, {"jobsInJenkinsFolder.json", ""}, {"node-jenkins/jobList.json", ""},
		{"jobsInJenkinsFolder.json", ".jobs[]"},
		{"job-info.json", ".jobs[]"}, {"node-jenkins/jobGet.json", ".jobs[]"}, {"node-jenkins/jobGetDisabled.json", ".jobs[]"},
	}
	jobFixtures = []fixtureAt{
		{"job-info.json", ""}, {"node-jenkins/jobGet.json", ""}, {"node-jenkins/jobGetDisabled.json", ""},
		{"jobsInJenkinsFolder.json", ""}, // CanonicalPath and Ping ask folders and the root
		{"jobsInRootFolder.json", ""},
	}
	buildFixtures = []fixtureAt{
		{"build-info.json", ""}, {"build-info-empty-and-null-params.json", ""}, {"build-info-git-commit.json", ""},
		{"build-info-no-params.json", ""}, {"node-jenkins/buildGet.json", ""},
	}
	// A run's description (workflow.json); runHistory.json is a job's
	// run list (JobAPI.doRuns) of the same RunExt.
	pipelineRunFixtures = []fixtureAt{{"workflow.json", ""}, {"runHistory.json", "[]~"}}
	queueFixtures       = []fixtureAt{
		{"queueItemPending.json", ""}, {"queueItemRunning.json", ""}, {"queueItemCancelled.json", ""},
		{"queueItemMultipleParameters.json", ""}, {"queueItemEmptyParameterValue.json", ""},
		{"queueItemMissingTaskUrl.json", ""}, {"queueItemNullTaskName.json", ""}, {"node-jenkins/queueItem.json", ""},
		// An item of the queue list is the same Queue.Item bean.
		{"queue.json", ".items[]~"}, {"node-jenkins/queueList.json", ".items[]~"},
	}
)

// sourceShapes are the answers no fixture records, written from the
// @Exported getters of the Jenkins source (the values only give the JSON
// type; null means "string or null").
var sourceShapes = map[string]string{
	// Jenkins: core/src/main/java/hudson/security/csrf/CrumbIssuer.java,
	// getCrumbRequestField and getCrumb (both @Exported), the class is
	// DefaultCrumbIssuer (core/src/main/java/hudson/security/csrf/DefaultCrumbIssuer.java).
	"crumb": `{"_class":"hudson.security.csrf.DefaultCrumbIssuer","crumb":"","crumbRequestField":""}`,
	// pipeline-input-step-plugin: InputAction.getExecutions (@Exported),
	// InputStepExecution.getId and getInput (@Exported), InputStep.getId
	// and getSubmitter (@Exported, null without a submitter list); the
	// build's other actions, asked for fields they do not have, show only
	// their class (WorkflowRun's CauseAction, ParametersAction, junit's
	// TestResultAction, display-url-api's RunDisplayAction, workflow-job's
	// FlowGraphAction) or nothing (actions that are not exported beans).
	"inputAction": `{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":0,"actions":[{},
		{"_class":"hudson.model.CauseAction"},{"_class":"hudson.model.ParametersAction"},{"_class":"hudson.tasks.junit.TestResultAction"},
		{"_class":"org.jenkinsci.plugins.displayurlapi.actions.RunDisplayAction"},{"_class":"org.jenkinsci.plugins.workflow.job.views.FlowGraphAction"},
		{"_class":"org.jenkinsci.plugins.workflow.support.steps.input.InputAction","executions":[
			{"_class":"org.jenkinsci.plugins.workflow.support.steps.input.InputStepExecution","id":"",
			 "input":{"_class":"org.jenkinsci.plugins.workflow.support.steps.input.InputStep","id":"","submitter":null}}]}]}`,
	// pipeline-stage-view-plugin: rest-api/src/main/java/com/cloudbees/workflow/rest/external/PendingInputActionsExt.java
	// (id, proceedText, message, inputs, proceedUrl, abortUrl,
	// redirectApprovalUrl) and InputParameterDefExt.java (type, name,
	// description, definition: defaultVal and a choice's choices).
	"pendingInputs": `[{"id":"","proceedText":"","message":"","inputs":[{"type":"","name":"","description":"",
		"definition":{"defaultVal":null,"choices":[""]}}],"proceedUrl":"","abortUrl":"","redirectApprovalUrl":""}]`,
	// junit-plugin: src/main/java/hudson/tasks/junit/TestResult.java,
	// getFailCount, getPassCount, getSkipCount, getSuites (@Exported);
	// SuiteResult.java getName, getCases (@Exported); CaseResult.java
	// getClassName, getName, getStatus, getErrorDetails (@Exported). An
	// aggregated report (hudson.tasks.test.AggregatedTestResultAction's
	// result, e.g. hudson.maven.reporters.SurefireAggregatedReport) exports
	// totalCount and childReports[child, result] instead.
	"testReport": `{"_class":"hudson.tasks.junit.TestResult","failCount":0,"passCount":0,"skipCount":0,
		"suites":[{"_class":"hudson.tasks.junit.SuiteResult","name":"","cases":[{"_class":"hudson.tasks.junit.CaseResult","className":"","name":"","status":"","errorDetails":null}]}]}`,
}

// simOnly lists fields only the simulator's answers have, by kind and
// path prefix, each with the Jenkins source that exports it. Most are
// because the fixtures are older than what Butler talks to: job-info.json
// and build-info*.json come from a Jenkins 1.x, before Stapler wrote
// "_class" (stapler core/src/main/java/org/kohsuke/stapler/export/ExportConfig.java:
// ClassAttributeBehaviour.IF_NEEDED, written by JSONDataWriter.startObject
// whenever an object's class differs from the declared type), and they
// were read at the default depth, while Butler's tree= queries reach
// nested objects.
var simOnly = []struct{ kind, path, why string }{
	// The answer's own class, where the fixtures of that kind are Jenkins
	// 1.x without _class: each is named in the fixtures' other answers.
	{"*", "._class=hudson.model.FreeStyleProject: ", "core/src/main/java/hudson/model/FreeStyleProject.java; in jobsInRootFolder.json's jobs"},
	{"*", "._class=org.jenkinsci.plugins.workflow.job.WorkflowJob: ", "workflow-job's WorkflowJob; in jobsInRootFolder.json's jobs"},
	{"*", "._class=org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject: ", "workflow-multibranch's project; in jobsInRootFolder.json's jobs"},
	{"build", "._class=hudson.model.FreeStyleBuild: ", "core/src/main/java/hudson/model/FreeStyleBuild.java; in queueItemRunning.json's executable"},
	{"queue item", "._class=hudson.model.Queue$WaitingItem: ", "core/src/main/java/hudson/model/Queue.java, WaitingItem: an item in its quiet period, which no fixture caught"},
	{"*", ".lastBuild._class", "Job.getLastBuild is @Exported with declared type RunT (core/src/main/java/hudson/model/Job.java): IF_NEEDED writes the Run's class"},
	{"*", ".jobs[].lastBuild._class", "as .lastBuild._class, for a job in a folder's jobs"},
	{"job", ".lastCompletedBuild._class", "Job.getLastCompletedBuild @Exported (core/src/main/java/hudson/model/Job.java)"},
	{"job", ".lastSuccessfulBuild._class", "Job.getLastSuccessfulBuild @Exported (core/src/main/java/hudson/model/Job.java)"},
	{"job", ".lastFailedBuild._class", "Job.getLastFailedBuild @Exported (core/src/main/java/hudson/model/Job.java)"},
	{"job", ".lastFailedBuild.number", "Run.getNumber @Exported (core/src/main/java/hudson/model/Run.java); job-info.json never failed (lastFailedBuild null)"},
	{"job", ".fullName", "AbstractItem.getFullName is @Exported (core/src/main/java/hudson/model/AbstractItem.java); the fixtures' Jenkins did not export it yet"},
	{"canonical path", ".fullName", "AbstractItem.getFullName is @Exported (core/src/main/java/hudson/model/AbstractItem.java)"},
	{"job", ".property[]._class", "Job.getAllProperties is @Exported(name = \"property\") (core/src/main/java/hudson/model/Job.java); " +
		"its elements are JobProperty subclasses such as ParametersDefinitionProperty; the fixtures' properties are empty or without _class"},
	{"job", ".property[].parameterDefinitions[]._class", "ParameterDefinition subclasses of core (core/src/main/java/hudson/model/*ParameterDefinition.java); " +
		"job-info.json's definitions (Jenkins 1.x, under actions[]) have no _class"},
	{"job", ".property[].parameterDefinitions[].choices", "ChoiceParameterDefinition.getChoices is @Exported (core/src/main/java/hudson/model/ChoiceParameterDefinition.java); no fixture has a choice parameter"},
	{"job", ".property[].parameterDefinitions[].defaultParameterValue._class", "ParameterDefinition.getDefaultParameterValue is @Exported with declared type ParameterValue " +
		"(core/src/main/java/hudson/model/ParameterDefinition.java): IF_NEEDED writes the value's class"},
	{"build", ".actions[]._class=hudson.model.ParametersAction", "core/src/main/java/hudson/model/ParametersAction.java; build-info*.json (Jenkins 1.x) have it without _class"},
	{"build", ".actions[]._class=hudson.tasks.junit.TestResultAction", "junit-plugin src/main/java/hudson/tasks/junit/TestResultAction.java: " +
		"a build with a report has it; with Butler's tree it exports no field, only its class"},
	{"build", ".actions[].parameters[]._class", "ParametersAction.getParameters @Exported, declared ParameterValue (core/src/main/java/hudson/model/ParametersAction.java)"},
	{"build", ".actions[].causes[]._class=hudson.triggers.TimerTrigger$TimerTriggerCause", "core/src/main/java/hudson/triggers/TimerTrigger.java, TimerTriggerCause: a build started by cron"},
	{"queue item", ".actions[].parameters[]._class=hudson.model.", "ParameterValue subclasses of core (BooleanParameterValue, TextParameterValue, PasswordParameterValue in " +
		"core/src/main/java/hudson/model/); the fixtures' items have only string parameters"},
	{"queue item", ".task.fullName", "AbstractItem.getFullName is @Exported (core/src/main/java/hudson/model/AbstractItem.java); " +
		"at the default depth a nested task shows only its top-visibility properties, Butler asks for it by tree"},
	// workflow.json, runHistory.json and pipeline-node.json come from a
	// stage-view of 2014; the fields below came later (pipeline-stage-view-plugin
	// rest-api/src/main/java/com/cloudbees/workflow/rest/external/).
	{"pipeline run", ".pauseDurationMillis", "RunExt.getPauseDurationMillis (RunExt.java)"},
	{"pipeline run", ".queueDurationMillis", "RunExt.getQueueDurationMillis (RunExt.java)"},
	{"pipeline run", ".stages[].error", "FlowNodeExt.getError, @JsonInclude NON_NULL: a failed stage (FlowNodeExt.java, ErrorExt.java)"},
	{"pipeline run", ".stages[].execNode", "FlowNodeExt.getExecNode (FlowNodeExt.java)"},
	{"pipeline run", ".stages[].pauseDurationMillis", "FlowNodeExt.getPauseDurationMillis (FlowNodeExt.java)"},
	{"stage", ".error", "FlowNodeExt.getError: a failed stage (FlowNodeExt.java)"},
	{"stage", ".execNode", "FlowNodeExt.getExecNode (FlowNodeExt.java)"},
	{"stage", ".pauseDurationMillis", "FlowNodeExt.getPauseDurationMillis (FlowNodeExt.java)"},
	{"stage", ".stageFlowNodes[]._links.console", "FlowNodeLinks.getConsole, set by AtomFlowNodeExt.create during a request (AtomFlowNodeExt.java)"},
	{"stage", ".stageFlowNodes[].error", "FlowNodeExt.getError: a failed step (FlowNodeExt.java)"},
	{"stage", ".stageFlowNodes[].execNode", "FlowNodeExt.getExecNode (FlowNodeExt.java)"},
	{"stage", ".stageFlowNodes[].pauseDurationMillis", "FlowNodeExt.getPauseDurationMillis (FlowNodeExt.java)"},
	// The queue and node lists: queue.json, queueList.json and
	// computer.json come from Jenkins 1.x, before _class, at the default
	// depth (executors and offline causes as {}).
	{"queue", "._class: ", "hudson.model.Queue (core/src/main/java/hudson/model/Queue.java, @ExportedBean); the item list's items have their _class in queue.json's"},
	{"nodes", "._class: ", "hudson.model.ComputerSet (core/src/main/java/hudson/model/ComputerSet.java, @ExportedBean)"},
	{"nodes", ".computer[]._class: ", "Computer subclasses: Hudson$MasterComputer (core/src/main/java/hudson/model/Hudson.java, jenkins/model/Jenkins.java) and hudson.slaves.SlaveComputer"},
	{"nodes", ".computer[].assignedLabels", "Computer.getAssignedLabels is @Exported (core/src/main/java/hudson/model/Computer.java), newer than the fixture; LabelAtom.getName @Exported"},
	{"nodes", ".computer[].executors[]._class: ", "hudson.model.Executor (core/src/main/java/hudson/model/Executor.java, @ExportedBean)"},
	{"nodes", ".computer[].executors[].idle", "Executor.isIdle is @Exported (core/src/main/java/hudson/model/Executor.java); the fixture's executors are at the default depth ({})"},
	{"nodes", ".computer[].executors[].currentExecutable", "Executor.getCurrentExecutableForApi is @Exported(name = \"currentExecutable\") (core/src/main/java/hudson/model/Executor.java), " +
		"the build (Run.getNumber, getUrl @Exported) to a user with Item.READ on it"},
	{"nodes", ".computer[].offlineCause._class: ", "OfflineCause subclasses (core/src/main/java/hudson/slaves/OfflineCause.java); the fixture's causes are at the default depth ({})"},
	{"nodes", ".computer[].offlineCause.description", "SimpleOfflineCause.toString is @Exported(name = \"description\") (core/src/main/java/hudson/slaves/OfflineCause.java)"},
}

// butlerRequests drives the client through every operation that sends a
// request, against sim.
func butlerRequests(t *testing.T, c *Client, clk *jenkinstest.FakeClock) {
	t.Helper()
	ctx := context.Background()
	admin := Credential{User: "admin", APIToken: "admin-token"}
	bob := Credential{User: "bob", APIToken: "bob-token"}
	p := func(s string) jobpath.Path {
		t.Helper()
		jp, err := jobpath.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return jp
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err := c.Ping(ctx)
	must("ping", err)
	_, err = c.Me(ctx, admin)
	must("me", err)
	l, err := c.ListJobs(ctx, admin, jobpath.Path{}, true)
	must("list", err)
	_, err = c.ListJobs(ctx, admin, p("frontend"), false)
	must("list frontend", err)
	_, err = c.JobStatuses(ctx, admin, l, 0, l.Len())
	must("statuses", err)
	for _, j := range []string{"frontend/web-app", "backend/api", "frontend/docs", "frontend/legacy-site", "prod/deploy"} {
		_, err = c.GetJob(ctx, admin, p(j))
		must("job "+j, err)
	}
	_, err = c.CanonicalPath(ctx, admin, p("FRONTEND/web-app"))
	must("canonical", err)
	_, err = c.CanonicalPath(ctx, admin, p("frontend"))
	must("canonical folder", err)
	_, err = c.GetBuild(ctx, admin, p("frontend/web-app"), 6)
	must("build", err)
	_, err = c.GetBuild(ctx, admin, p("backend/api"), 0)
	must("last build", err)
	_, err = c.GetBuild(ctx, admin, p("frontend/docs"), 0)
	must("pipeline build", err)
	_, err = c.TestReport(ctx, admin, p("frontend/web-app"), 6)
	must("tests", err)
	_, err = c.ReadLog(ctx, admin, p("frontend/web-app"), 6, 0, 1<<20)
	must("log", err)
	pat, err := CompilePattern("ERROR", false, false)
	must("pattern", err)
	_, err = c.SearchLog(ctx, admin, p("frontend/web-app"), 6, pat, SearchOptions{})
	must("search", err)

	// Pipeline builds: stages (and a freestyle build, which has none), a
	// stage's steps and their logs, the inputs a build waits at, answers
	// refused (400) and taken (200).
	release := p("frontend/release")
	prun, err := c.PipelineRun(ctx, admin, release, 2)
	must("pipeline run", err)
	if _, err := c.PipelineRun(ctx, admin, p("frontend/web-app"), 6); !errors.Is(err, ErrNotPipeline) {
		t.Fatalf("freestyle pipeline run: %v", err)
	}
	for _, st := range prun.Stages {
		if st.Status == StageFailed {
			_, err = c.StageLog(ctx, admin, release, 2, st.ID, 1<<20, 0)
			must("stage log", err)
			_, err = c.StageLog(ctx, admin, release, 2, st.ID, 1<<20, 3)
			must("stage log tail", err)
		}
	}
	_, _, err = c.PendingInputs(ctx, admin, release, 3)
	must("pending inputs", err)
	if err := c.SubmitInput(ctx, bob, release, 3, "Release", false, nil); !errors.Is(err, ErrForbidden) {
		t.Fatalf("bob's abort: %v", err)
	}
	must("proceed", c.SubmitInput(ctx, admin, release, 3, "Release", true, []InputValue{{"TARGET", "us-east"}}))
	must("proceed empty", c.SubmitInput(ctx, admin, p("frontend/site-preview"), 1, "Publish", true, nil))

	// Triggers: a new item (201), the same parameters again (303), a job
	// without parameters (201), one refused for a missing permission.
	params := url.Values{"BRANCH": {"main"}, "ENV": {"staging"}}
	q1, err := c.TriggerBuild(ctx, admin, p("backend/api"), true, params)
	must("trigger", err)
	q2, err := c.TriggerBuild(ctx, admin, p("backend/api"), true, params)
	must("trigger again", err)
	if !q2.Merged || q2.ID != q1.ID {
		t.Fatalf("second trigger: %+v, first %+v", q2, q1)
	}
	_, err = c.QueueItem(ctx, admin, q1.ID)
	must("queue item waiting", err)
	must("cancel", c.CancelQueueItem(ctx, admin, q1.ID))
	_, err = c.QueueItem(ctx, admin, q1.ID)
	must("queue item cancelled", err)
	if _, err := c.Trigger(ctx, bob, p("frontend/web-app"), false, nil); err == nil {
		t.Fatal("bob may not build frontend/web-app")
	}
	run, err := c.Trigger(ctx, admin, p("frontend/web-app"), false, nil)
	must("trigger web-app", err)
	clk.Advance(10 * time.Second) // past the 3 s quiet period, into the 30 s build
	q, err := c.QueueItem(ctx, admin, run)
	must("queue item running", err)
	if q.BuildNumber == 0 {
		t.Fatalf("web-app did not start: %+v", q)
	}
	_, err = c.ReadLog(ctx, admin, p("frontend/web-app"), q.BuildNumber, 0, 1<<20)
	must("running log", err)
	_, err = c.ListQueue(ctx, admin)
	must("queue", err)
	_, err = c.ListNodes(ctx, admin) // web-app's build runs on linux-agent-1
	must("nodes", err)
	_, err = c.ListNodes(ctx, bob) // the same, hidden from bob
	must("nodes as bob", err)
	must("stop", c.StopBuild(ctx, admin, p("frontend/web-app"), q.BuildNumber))
	butlerArtifactRequests(t, c)
}

// shape is the set of paths a JSON document has, each with its JSON types
// and, for "_class", its values. Array elements are at path+"[]".
type shape map[string]map[string]bool

func (sh shape) add(path, what string) {
	if sh[path] == nil {
		sh[path] = map[string]bool{}
	}
	sh[path][what] = true
}

// walk records v at path. A null is recorded as "null", which matches any
// type: a fixture's null field is a field Jenkins exports that happened to
// be empty.
func (sh shape) walk(path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		sh.add(path, "object")
		for k, e := range x {
			if k == "_class" {
				if c, ok := e.(string); ok {
					sh.add(path+"._class", "="+c)
				}
			}
			sh.walk(path+"."+k, e)
		}
	case []any:
		sh.add(path, "array")
		for _, e := range x {
			sh.walk(path+"[]", e)
		}
	default:
		sh.add(path, jsonType(v))
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// collapseJobs rewrites the path of a job nested in a folder's jobs (any
// depth) to the path of a job in the answer's own jobs array: a tree
// query of depth n serializes the same beans n times.
func collapseJobs(path string) string {
	for strings.Contains(path, ".jobs[].jobs[]") {
		path = strings.Replace(path, ".jobs[].jobs[]", ".jobs[]", 1)
	}
	return path
}

// simulatorOnly reports, sorted, each path of got that want lacks, each
// JSON type it has there that want never has, and each _class value want
// never has there.
func simulatorOnly(want, got shape, norm func(string) string) []string {
	var out []string
	missing := map[string]bool{}
	for path := range got {
		if _, ok := want[norm(path)]; !ok {
			missing[path] = true
		}
	}
	for path, whats := range got {
		w, ok := want[norm(path)]
		if !ok {
			if !missing[parentPath(path)] { // only the topmost of a missing subtree
				out = append(out, path+": simulator-only field")
			}
			continue
		}
		for what := range whats {
			switch {
			case strings.HasPrefix(what, "="):
				if !w[what] {
					out = append(out, path+what+": simulator-only _class value")
				}
			case what == "null" || w["null"] || w[what]:
			default:
				out = append(out, fmt.Sprintf("%s: simulator sends %s, Jenkins %v", path, what, keys(w)))
			}
		}
	}
	sort.Strings(out)
	return out
}

// parentPath is the path of the object or array holding path's value.
func parentPath(path string) string {
	if p, ok := strings.CutSuffix(path, "[]"); ok {
		return p
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		if !strings.HasPrefix(k, "=") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// fixtureShape is the union of the shapes of fs. A prefix ending in "~"
// re-roots the fixture: the shape at the prefix (without "~") is used as
// the document's own.
func fixtureShape(t *testing.T, fs []fixtureAt, source string) shape {
	t.Helper()
	sh := shape{}
	addDoc := func(name string, raw []byte, prefix string) {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.HasSuffix(prefix, "~") {
			sub := shape{}
			sub.walk("", v)
			from := strings.TrimSuffix(prefix, "~")
			for p, w := range sub {
				if rest, ok := strings.CutPrefix(p, from); ok {
					for what := range w {
						sh.add(rest, what)
					}
				}
			}
			return
		}
		sh.walk(prefix, v)
	}
	for _, f := range fs {
		addDoc(f.file, readFixture(t, f.file), f.prefix)
	}
	if source != "" {
		addDoc("source shape", []byte(sourceShapes[source]), "")
	}
	return sh
}

// wireRun is what the checks know of the run that made the records.
type wireRun struct {
	version string
	running string // path of the build that was running, ".../N/"
}

func treeIs(fs ...func() string) func(string) bool {
	return func(tree string) bool {
		for _, f := range fs {
			if tree == f() {
				return true
			}
		}
		return false
	}
}

// listTreeAny matches listTree(d) for any depth the client may ask.
func listTreeAny(tree string) bool {
	for d := 1; d <= 16; d++ {
		if tree == listTree(d) {
			return true
		}
	}
	return false
}

var statusRange = regexp.MustCompile(`^(.*)\{[0-9]+,[0-9]+\}$`)

// statusTreeAny matches statusTree(d) with a {M,N} range.
func statusTreeAny(tree string) bool {
	m := statusRange.FindStringSubmatch(tree)
	if m == nil {
		return false
	}
	for d := 0; d <= 16; d++ {
		if m[1] == statusTree(d) {
			return true
		}
	}
	return false
}

const (
	itemPath  = `(/job/[^/]+)+/`
	buildPath = itemPath + `([0-9]+|lastBuild)/`
)

func wireKinds() []wireKind {
	json200 := "application/json;charset=utf-8"
	text200 := "text/plain;charset=utf-8"
	c := func(s string) func() string { return func() string { return s } }
	return append([]wireKind{
		// Ping sends no credential: anonymous without Overall/Read gets
		// the 403 login page (HudsonAuthenticationEntryPoint.commence),
		// which still carries X-Jenkins, all the client reads.
		{name: "ping", method: "GET", path: regexp.MustCompile(`^/api/json$`), tree: treeIs(c("_class")),
			status: []int{403}},
		{name: "me", method: "GET", path: regexp.MustCompile(`^/me/api/json$`), tree: treeIs(c("id,fullName"), c("id")),
			status: []int{200}, contentType: json200, fixtures: []fixtureAt{{"user.json", ""}}},
		{name: "listing", method: "GET", path: regexp.MustCompile(`^(/job/[^/]+)*/api/json$`), tree: listTreeAny,
			status: []int{200}, contentType: json200, fixtures: listingFixtures},
		{name: "statuses", method: "GET", path: regexp.MustCompile(`^(/job/[^/]+)*/api/json$`), tree: statusTreeAny,
			status: []int{200}, contentType: json200, fixtures: listingFixtures},
		{name: "job", method: "GET", path: regexp.MustCompile(`^` + itemPath + `api/json$`), tree: treeIs(c(jobTree)),
			status: []int{200}, contentType: json200, fixtures: jobFixtures},
		{name: "canonical path", method: "GET", path: regexp.MustCompile(`^` + itemPath + `api/json$`), tree: treeIs(c("fullName")),
			status: []int{200}, contentType: json200, fixtures: jobFixtures},
		{name: "build", method: "GET", path: regexp.MustCompile(`^` + buildPath + `api/json$`), tree: treeIs(c(buildTree)),
			status: []int{200}, contentType: json200, fixtures: buildFixtures},
		{name: "test report", method: "GET", path: regexp.MustCompile(`^` + buildPath + `testReport/api/json$`), tree: treeIs(c(testTree)),
			status: []int{200}, contentType: json200, source: "testReport"},
		{name: "queue item", method: "GET", path: regexp.MustCompile(`^/queue/item/[0-9]+/api/json$`), tree: treeIs(c(queueItemTree)),
			status: []int{200}, contentType: json200, fixtures: queueFixtures},
		{name: "crumb", method: "GET", path: regexp.MustCompile(`^/crumbIssuer/api/json$`),
			status: []int{200}, contentType: json200, source: "crumb"},
		{name: "progressiveText", method: "GET", path: regexp.MustCompile(`^` + buildPath + `logText/progressiveText$`), params: []string{"start"},
			status: []int{200}, contentType: text200, check: checkProgressiveText},
		{name: "consoleText", method: "GET", path: regexp.MustCompile(`^` + buildPath + `consoleText$`),
			status: []int{200}, contentType: text200, check: checkConsoleText},
		{name: "trigger", method: "POST", path: regexp.MustCompile(`^` + itemPath + `(build|buildWithParameters)$`),
			status: []int{201, 303, 403}, check: checkTrigger},
		{name: "cancelItem", method: "POST", path: regexp.MustCompile(`^/queue/cancelItem$`), params: []string{"id"},
			status: []int{204}, check: checkCancel},
		{name: "stop", method: "POST", path: regexp.MustCompile(`^` + buildPath + `stop$`),
			status: []int{302}, check: checkStop},
		{name: "pipeline run", method: "GET", path: regexp.MustCompile(`^` + buildPath + `wfapi/describe$`),
			status: []int{200, 404}, contentType: wfapiJSON, fixtures: pipelineRunFixtures},
		{name: "stage", method: "GET", path: regexp.MustCompile(`^` + buildPath + `execution/node/[0-9]+/wfapi/describe$`),
			status: []int{200}, contentType: wfapiJSON, fixtures: []fixtureAt{{"pipeline-node.json", ""}}},
		{name: "step log", method: "GET", path: regexp.MustCompile(`^` + buildPath + `execution/node/[0-9]+/log/logText/progressiveText$`), params: []string{"start"},
			status: []int{200}, contentType: text200, check: checkProgressiveText},
		{name: "input action", method: "GET", path: regexp.MustCompile(`^` + buildPath + `api/json$`), tree: treeIs(c(inputActionTree)),
			status: []int{200}, contentType: json200, source: "inputAction"},
		{name: "pending inputs", method: "GET", path: regexp.MustCompile(`^` + buildPath + `wfapi/pendingInputActions$`),
			status: []int{200}, contentType: wfapiJSON, source: "pendingInputs"},
		{name: "input answer", method: "POST", path: regexp.MustCompile(`^` + buildPath + `input/[^/]+/(proceed|proceedEmpty|abort)$`),
			status: []int{200, 400}, check: checkInputAnswer},
		{name: "queue", method: "GET", path: regexp.MustCompile(`^/queue/api/json$`), tree: treeIs(c(queueListTree)),
			status: []int{200}, contentType: json200, fixtures: []fixtureAt{{"queue.json", ""}, {"node-jenkins/queueList.json", ""}}},
		{name: "nodes", method: "GET", path: regexp.MustCompile(`^/computer/api/json$`), tree: treeIs(c(nodesTree)),
			status: []int{200}, contentType: json200, fixtures: []fixtureAt{{"computer.json", ""}}},
	}, artifactWireKinds()...)
}

// TestWire_AgainstRealJenkins sends every request the client sends to the
// simulator, for a Jenkins before 2.509 and the current LTS, and checks
// each answer against real Jenkins (see wireKinds, simOnly).
func TestWire_AgainstRealJenkins(t *testing.T) {
	t.Parallel()
	kinds := wireKinds()
	usedAllow := make([]bool, len(simOnly))
	var allowMu sync.Mutex
	for _, version := range []string{jenkinstest.DefaultVersion, jenkinstest.CurrentLTS} {
		t.Run(version, func(t *testing.T) {
			clk := jenkinstest.NewFakeClock(time.Date(2025, 3, 4, 12, 0, 0, 0, time.UTC))
			sim := jenkinstest.Sample(&jenkinstest.Options{Clock: clk, Version: version})
			rec := &recorder{h: sim}
			hs := httptest.NewServer(rec)
			defer hs.Close()
			c, err := New(hs.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			butlerRequests(t, c, clk)

			// A Jenkins that wants a crumb even with an API token: the
			// client's crumb request and retry.
			crumbSim := jenkinstest.Sample(&jenkinstest.Options{Clock: clk, Version: version, RequireCrumb: true})
			crumbRec := &recorder{h: crumbSim}
			chs := httptest.NewServer(crumbRec)
			defer chs.Close()
			cc, err := New(chs.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := cc.Trigger(context.Background(), Credential{User: "admin", APIToken: "admin-token"}, mustJobPath(t, "frontend/docs"), false, nil); err != nil {
				t.Fatalf("trigger with crumb: %v", err)
			}

			run := wireRun{version: version}
			for _, r := range rec.recs {
				if r.method == "POST" && strings.HasSuffix(r.path, "/stop") {
					run.running = strings.TrimSuffix(r.path, "stop")
				}
			}
			if run.running == "" {
				t.Fatal("no build was stopped")
			}
			seen := make([]map[int]bool, len(kinds))
			reported := map[string]bool{}
			for _, r := range append(rec.recs, crumbRec.recs...) {
				i := classify(kinds, r)
				if i < 0 {
					t.Errorf("%s %s?%s: a request of no known kind; add it to wireKinds", r.method, r.path, r.query.Encode())
					continue
				}
				k := kinds[i]
				if seen[i] == nil {
					seen[i] = map[int]bool{}
				}
				seen[i][r.status] = true
				checkRecord(t, k, run, r, reported, func(problem string) bool {
					for j, a := range simOnly {
						if (a.kind == "*" || a.kind == k.name) && strings.HasPrefix(problem, a.path) {
							allowMu.Lock()
							usedAllow[j] = true
							allowMu.Unlock()
							return true
						}
					}
					return false
				})
			}
			for i, k := range kinds {
				for _, st := range k.status {
					if !seen[i][st] {
						t.Errorf("%s: the client's requests never got a %d; butlerRequests must cover every answer Jenkins gives", k.name, st)
					}
				}
			}
		})
	}
	for j, a := range simOnly {
		if !usedAllow[j] {
			t.Errorf("simOnly entry %s %s matches no simulator-only field any more: remove it", a.kind, a.path)
		}
	}
}

func mustJobPath(t *testing.T, s string) jobpath.Path {
	t.Helper()
	p, err := jobpath.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// classify returns the index of the one kind r is, or -1.
func classify(kinds []wireKind, r wireRecord) int {
	found := -1
	for i, k := range kinds {
		if r.method != k.method || !k.path.MatchString(r.path) {
			continue
		}
		tree, hasTree := r.query["tree"]
		if (k.tree == nil) == hasTree || (hasTree && (len(tree) != 1 || !k.tree(tree[0]))) {
			continue
		}
		other := slices.Sorted(func(yield func(string) bool) {
			for q := range r.query {
				if q != "tree" && !yield(q) {
					return
				}
			}
		})
		if !slices.Equal(other, slices.Sorted(slices.Values(k.params))) {
			continue
		}
		if found >= 0 {
			return -1 // ambiguous: the table is wrong
		}
		found = i
	}
	return found
}

// checkRecord checks one answer against real Jenkins; allowed says
// whether a simulator-only field is on the allow-list.
func checkRecord(t *testing.T, k wireKind, run wireRun, r wireRecord, reported map[string]bool, allowed func(string) bool) {
	t.Helper()
	where := fmt.Sprintf("%s: %s %s?%s", k.name, r.method, r.path, r.query.Encode())
	if !slices.Contains(k.status, r.status) {
		t.Errorf("%s: status %d, Jenkins answers %v", where, r.status, k.status)
		return
	}
	if got := r.header.Get("X-Jenkins"); got != run.version {
		t.Errorf("%s: X-Jenkins %q, want %q", where, got, run.version)
	}
	if r.status == http.StatusOK && k.contentType != "" && !sameMediaType(r.header.Get("Content-Type"), k.contentType) {
		t.Errorf("%s: Content-Type %q, Jenkins sends %q", where, r.header.Get("Content-Type"), k.contentType)
	}
	if k.check != nil {
		k.check(t, run, r)
	}
	if r.status != http.StatusOK || (k.fixtures == nil && k.source == "") {
		return
	}
	var got any
	if err := json.Unmarshal(r.body, &got); err != nil {
		t.Errorf("%s: not JSON: %v", where, err)
		return
	}
	gs := shape{}
	gs.walk("", got)
	norm := func(p string) string { return p }
	if k.name == "listing" || k.name == "statuses" {
		norm = collapseJobs
	}
	for _, p := range simulatorOnly(fixtureShape(t, k.fixtures, k.source), gs, norm) {
		if !allowed(p) && !reported[k.name+p] {
			reported[k.name+p] = true
			t.Errorf("%s: %s", where, p)
		}
	}
}

// sameMediaType compares Content-Types as HTTP does: type and parameter
// names and the charset value case-insensitively (Jetty writes the
// charset as its MimeTypes cache spells it, Stapler as "UTF-8").
func sameMediaType(got, want string) bool {
	gt, gp, err1 := mime.ParseMediaType(got)
	wt, wp, err2 := mime.ParseMediaType(want)
	if err1 != nil || err2 != nil || gt != wt || len(gp) != len(wp) {
		return false
	}
	for k, v := range wp {
		if !strings.EqualFold(gp[k], v) {
			return false
		}
	}
	return true
}

// checkProgressiveText: LargeText.doProgressTextImpl sets X-Text-Size to
// the offset the next request starts from, and X-More-Data: true only
// while the text is not complete (the build runs). Stapler:
// core/src/main/java/org/kohsuke/stapler/framework/io/LargeText.java,
// doProgressTextImpl.
func checkProgressiveText(t *testing.T, run wireRun, r wireRecord) {
	t.Helper()
	size, err := strconv.ParseInt(r.header.Get("X-Text-Size"), 10, 64)
	if err != nil || size < 0 {
		t.Errorf("progressiveText %s: X-Text-Size %q", r.path, r.header.Get("X-Text-Size"))
	}
	running := strings.HasPrefix(r.path, run.running)
	if more := r.header.Get("X-More-Data"); (more == "true") != running || (!running && more != "") {
		t.Errorf("progressiveText %s (running %v): X-More-Data %q", r.path, running, more)
	}
	if !bytes.Contains(r.body, []byte("\r\n")) || bytes.Contains(bytes.ReplaceAll(r.body, []byte("\r\n"), nil), []byte("\n")) {
		t.Errorf("progressiveText %s: lines not ended by CR LF (LineEndNormalizingWriter)", r.path)
	}
	// Before 2.509 the text carries no console notes and X-Text-Size
	// counts the stored bytes written, at least the text's length.
	if !rawNotes(run.version) {
		if bytes.Contains(r.body, []byte("\x1b[8mha:")) {
			t.Errorf("progressiveText %s on %s: console notes sent", r.path, run.version)
		}
	} else if int64(len(r.body)) > size+int64(bytes.Count(r.body, []byte("\r\n"))) {
		t.Errorf("progressiveText %s: %d bytes sent, X-Text-Size %d", r.path, len(r.body), size)
	}
}

// checkConsoleText: Run.doConsoleText writes text/plain, no X-Text-Size.
// Jenkins: core/src/main/java/hudson/model/Run.java, doConsoleText.
func checkConsoleText(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	if r.header.Get("X-Text-Size") != "" || r.header.Get("X-More-Data") != "" {
		t.Errorf("consoleText %s: progressiveText headers", r.path)
	}
	if bytes.Contains(r.body, []byte("\x1b[8mha:")) {
		t.Errorf("consoleText %s: console notes sent (Run.doConsoleText strips them)", r.path)
	}
}

var queueLocation = regexp.MustCompile(`^http://[^/]+/queue/item/[0-9]+/$`)

// checkTrigger: 201 (a new item) and 303 (folded into a queued one) carry
// the item's absolute URL in Location (ParameterizedJobMixIn.doBuild,
// ParametersDefinitionProperty.buildWithParameters: rsp.sendRedirect(SC_CREATED
// or SC_SEE_OTHER, req.getContextPath() + '/' + item.getUrl()), which
// Stapler makes absolute); a 403 is a missing permission, named in
// X-Required-Permission (AccessDeniedException3.reportAsHeaders), or
// CrumbFilter's refusal, which names none. Jenkins:
// core/src/main/java/jenkins/model/ParameterizedJobMixIn.java,
// core/src/main/java/hudson/model/ParametersDefinitionProperty.java,
// core/src/main/java/hudson/security/AccessDeniedException3.java,
// core/src/main/java/hudson/security/csrf/CrumbFilter.java.
func checkTrigger(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	switch r.status {
	case http.StatusCreated, http.StatusSeeOther:
		if !queueLocation.MatchString(r.header.Get("Location")) {
			t.Errorf("trigger %s %d: Location %q", r.path, r.status, r.header.Get("Location"))
		}
	case http.StatusForbidden:
		perm := r.header.Get("X-Required-Permission")
		crumb := bytes.Contains(r.body, []byte("No valid crumb"))
		if crumb == (perm != "") || (!crumb && perm != "hudson.model.Item.Build") {
			t.Errorf("trigger %s 403: X-Required-Permission %q, crumb refusal %v", r.path, perm, crumb)
		}
		if !crumb && r.header.Get("X-You-Are-Authenticated-As") != r.user {
			t.Errorf("trigger %s 403: X-You-Are-Authenticated-As %q, want %q", r.path, r.header.Get("X-You-Are-Authenticated-As"), r.user)
		}
	}
}

// checkCancel: Queue.doCancelItem answers HttpResponses.status(SC_NO_CONTENT)
// with an empty body. Jenkins: core/src/main/java/hudson/model/Queue.java,
// doCancelItem.
func checkCancel(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	if len(r.body) != 0 {
		t.Errorf("cancelItem: body %q", r.body)
	}
}

// checkStop: HttpResponses.forwardToPreviousPage without a Referer
// redirects (302) to "." against the request: the build. Jenkins:
// core/src/main/java/hudson/model/AbstractBuild.java, doStop;
// org.kohsuke.stapler.HttpResponses.forwardToPreviousPage.
func checkStop(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil || !loc.IsAbs() || loc.EscapedPath() != strings.TrimSuffix(r.path, "stop") {
		t.Errorf("stop %s: Location %q", r.path, r.header.Get("Location"))
	}
}

// wfapiJSON is pipeline-stage-view's JsonResponse Content-Type
// (rest-api/src/main/java/com/cloudbees/workflow/util/JsonResponse.java).
const wfapiJSON = "application/json; charset=UTF-8"

// checkInputAnswer: InputStepExecution's doProceed, doProceedEmpty and
// doAbort answer HttpResponses.ok() (200, no body); a refusal is a
// hudson.model.Failure rendered by the error view: 400 with X-Error
// (core/src/main/resources/hudson/model/AbstractModelObject/error.jelly),
// never a 403.
func checkInputAnswer(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	switch r.status {
	case http.StatusOK:
		if len(r.body) != 0 {
			t.Errorf("input answer %s: body %q", r.path, r.body)
		}
	case http.StatusBadRequest:
		if !strings.HasPrefix(r.header.Get("X-Error"), "You need to ") {
			t.Errorf("input answer %s 400: X-Error %q", r.path, r.header.Get("X-Error"))
		}
	}
}
