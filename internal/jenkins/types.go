package jenkins

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// User is the Jenkins account a credential authenticates as (/me/api/json).
type User struct {
	ID       string
	FullName string
}

// JobSummary is one job of a listing.
type JobSummary struct {
	FullName  string // canonical path, "folder/sub/job"
	Class     string // Jenkins _class
	URL       string // as Jenkins reports it
	Color     string // ball color, e.g. "blue", "red_anime", "disabled"
	Buildable bool
	// LastBuild is the last build's number, 0 when the job never ran.
	LastBuild int64
}

// Job is the detail of one job.
type Job struct {
	Class           string
	Name            string
	FullName        string
	URL             string
	Description     string
	Color           string
	Buildable       bool
	InQueue         bool
	QueueID         int64 // the queued item, when InQueue
	NextBuildNumber int64
	// Numbers of the permalink builds; 0 when there is none.
	LastBuild, LastCompletedBuild, LastSuccessfulBuild, LastFailedBuild int64
	Parameters                                                          []ParamDef
}

// Parameter kinds, as reported in ParamDef.Kind.
const (
	ParamString   = "string"
	ParamText     = "text"
	ParamBoolean  = "boolean"
	ParamChoice   = "choice"
	ParamPassword = "password"
	// ParamFile is a file parameter (FileParameterDefinition). Jenkins
	// takes a value for one only as an uploaded file part and silently
	// drops a form value, so it cannot be given through Butler.
	ParamFile  = "file"
	ParamOther = "other"
)

// ParamDef is one parameter a job takes.
type ParamDef struct {
	Name        string
	Kind        string // one of the Param* constants
	JenkinsType string // Jenkins's own type, e.g. "StringParameterDefinition"
	Description string
	// Default keeps its JSON type (bool for booleans). Always nil for a
	// password parameter, whose default is a secret.
	Default any
	Choices []string
}

// QueueState is where a queue item is in its life.
type QueueState string

// Queue states.
const (
	QueueWaiting   QueueState = "waiting"   // in its quiet period
	QueueBlocked   QueueState = "blocked"   // e.g. the job is already running
	QueueBuildable QueueState = "buildable" // waiting for an executor
	QueueStarted   QueueState = "started"   // left the queue; a build exists
	QueueCancelled QueueState = "cancelled" // left the queue without a build
)

// QueueItem is a queued (or recently left) build request.
type QueueItem struct {
	ID       int64
	Class    string
	State    QueueState
	Why      string
	TaskName string
	TaskURL  string
	// TaskFullName is the job's full name, when Jenkins reported it.
	TaskFullName string
	BuildNumber  int64  // when started
	BuildURL     string // when started, as Jenkins reports it
	Parameters   map[string]any
}

// JobPath is the job the item is for: the task's fullName when Jenkins
// reported it, else the job path read from the task's URL. The URL's host
// and root are never trusted or compared: Jenkins reports URLs under its
// configured root URL (Jenkins.getRootUrl), which is usually not the
// address Butler calls, so only the job/<name>/job/<name> segments are
// read, from the first "job" segment on. ok is false when neither names a
// job (a task that is not a job, or a URL of another shape).
func (q *QueueItem) JobPath() (jobpath.Path, bool) {
	if q.TaskFullName != "" {
		p, err := jobpath.Parse(q.TaskFullName)
		return p, err == nil
	}
	return jobPathFromURL(q.TaskURL)
}

// jobPathFromURL reads the job path of an item URL (".../job/a/job/b/").
func jobPathFromURL(raw string) (jobpath.Path, bool) {
	u, err := url.Parse(raw)
	if err != nil {
		return jobpath.Path{}, false
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	first := slices.Index(parts, "job")
	if first < 0 {
		return jobpath.Path{}, false
	}
	parts = parts[first:]
	if len(parts)%2 != 0 {
		return jobpath.Path{}, false
	}
	var segs []string
	for i := 0; i < len(parts); i += 2 {
		if parts[i] != "job" {
			return jobpath.Path{}, false
		}
		seg, err := url.PathUnescape(parts[i+1])
		if err != nil {
			return jobpath.Path{}, false
		}
		segs = append(segs, seg)
	}
	p, err := jobpath.Parse(strings.Join(segs, "/"))
	if err != nil || !slices.Equal(p.Segments(), segs) {
		// A segment holding "/" (a multibranch %2F decoded) would be split
		// by Parse: refuse rather than guess.
		return jobpath.Path{}, false
	}
	return p, true
}

// Build is one run of a job.
type Build struct {
	Class      string
	Number     int64
	Result     string // "" while building
	Building   bool
	DurationMS int64
	Timestamp  int64 // start, milliseconds since the epoch
	URL        string
	QueueID    int64
	Causes     []string       // shortDescription of each cause
	Parameters map[string]any // password values are never included
}

// TestReport is the JUnit report of a build: its own (TestResult) or, for
// a matrix or Maven build, the aggregate of its children's
// (AggregatedTestResultAction), whose counts are Jenkins's totals.
type TestReport struct {
	Passed, Failed, Skipped int
	Cases                   []TestCase
}

// Test case statuses as the client reports them.
const (
	TestPassed  = "PASSED"
	TestFailed  = "FAILED"
	TestSkipped = "SKIPPED"
)

// TestCase is one test of a report.
type TestCase struct {
	// Child is, in an aggregated report, the child run the case belongs
	// to: a matrix configuration ("jdk=17") or a Maven module
	// ("com.example$core"); "" otherwise.
	Child string
	Suite string
	Class string
	Name  string
	// Status is PASSED, FAILED or SKIPPED, as the junit plugin reports it
	// since 1363. Older plugins report a regression or a fix as the status
	// REGRESSION or FIXED: that is then FAILED or PASSED, and Condition
	// says which.
	Status string
	// Condition is REGRESSION or FIXED when an older junit plugin said so
	// (newer ones do not export it: CaseResult.getCondition); "" otherwise.
	Condition    string
	ErrorDetails string
}

// Failed reports whether the case counts as a failure.
func (c TestCase) Failed() bool { return c.Status == TestFailed }

// wire types: the subset of Jenkins's JSON Butler reads. Nullable objects
// are pointers.

type buildRef struct {
	Number int64  `json:"number"`
	URL    string `json:"url"`
}

func (r *buildRef) number() int64 {
	if r == nil {
		return 0
	}
	return r.Number
}

type wireParamDef struct {
	Class        string   `json:"_class"`
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	Description  *string  `json:"description"`
	Choices      []string `json:"choices"`
	DefaultValue *struct {
		Value json.RawMessage `json:"value"`
	} `json:"defaultParameterValue"`
}

type wireAction struct {
	Class                string         `json:"_class"`
	ParameterDefinitions []wireParamDef `json:"parameterDefinitions"`
	Parameters           []struct {
		Class string          `json:"_class"`
		Name  string          `json:"name"`
		Value json.RawMessage `json:"value"`
	} `json:"parameters"`
	Causes []struct {
		ShortDescription string `json:"shortDescription"`
	} `json:"causes"`
}

type wireJob struct {
	Class       string  `json:"_class"`
	Name        string  `json:"name"`
	FullName    string  `json:"fullName"`
	URL         string  `json:"url"`
	Description *string `json:"description"`
	Color       string  `json:"color"`
	Buildable   bool    `json:"buildable"`
	InQueue     bool    `json:"inQueue"`
	QueueItem   *struct {
		ID int64 `json:"id"`
	} `json:"queueItem"`
	NextBuildNumber     int64        `json:"nextBuildNumber"`
	LastBuild           *buildRef    `json:"lastBuild"`
	LastCompletedBuild  *buildRef    `json:"lastCompletedBuild"`
	LastSuccessfulBuild *buildRef    `json:"lastSuccessfulBuild"`
	LastFailedBuild     *buildRef    `json:"lastFailedBuild"`
	Property            []wireAction `json:"property"`
	Actions             []wireAction `json:"actions"`
}

// ParseJob decodes a job's /api/json.
func ParseJob(data []byte) (*Job, error) {
	var w wireJob
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	j := &Job{
		Class: w.Class, Name: w.Name, FullName: w.FullName, URL: w.URL, Color: w.Color,
		Buildable: w.Buildable, InQueue: w.InQueue, NextBuildNumber: w.NextBuildNumber,
		LastBuild: w.LastBuild.number(), LastCompletedBuild: w.LastCompletedBuild.number(),
		LastSuccessfulBuild: w.LastSuccessfulBuild.number(), LastFailedBuild: w.LastFailedBuild.number(),
	}
	if w.Description != nil {
		j.Description = *w.Description
	}
	if w.QueueItem != nil {
		j.QueueID = w.QueueItem.ID
	}
	// Parameter definitions live in the ParametersDefinitionProperty; older
	// Jenkins (and some fixtures) also repeat them in actions.
	defs := paramDefs(w.Property)
	if defs == nil {
		defs = paramDefs(w.Actions)
	}
	for _, d := range defs {
		p, err := convertParamDef(d)
		if err != nil {
			return nil, err
		}
		j.Parameters = append(j.Parameters, p)
	}
	return j, nil
}

func paramDefs(as []wireAction) []wireParamDef {
	for _, a := range as {
		if len(a.ParameterDefinitions) > 0 {
			return a.ParameterDefinitions
		}
	}
	return nil
}

func convertParamDef(d wireParamDef) (ParamDef, error) {
	p := ParamDef{Name: d.Name, JenkinsType: d.Type, Kind: paramKind(d.Type, d.Class), Choices: d.Choices}
	if d.Description != nil {
		p.Description = *d.Description
	}
	if p.Kind == ParamPassword || d.DefaultValue == nil || len(d.DefaultValue.Value) == 0 {
		return p, nil
	}
	var v any
	if err := json.Unmarshal(d.DefaultValue.Value, &v); err != nil {
		return ParamDef{}, fmt.Errorf("parameter %q default: %w", d.Name, err)
	}
	p.Default = v
	return p, nil
}

// paramKind maps Jenkins's parameter definition type to Butler's kinds.
func paramKind(typ, class string) string {
	t := typ
	if t == "" {
		t = class[strings.LastIndexByte(class, '.')+1:]
	}
	switch t {
	case "StringParameterDefinition":
		return ParamString
	case "TextParameterDefinition":
		return ParamText
	case "BooleanParameterDefinition":
		return ParamBoolean
	case "ChoiceParameterDefinition":
		return ParamChoice
	case "PasswordParameterDefinition":
		return ParamPassword
	case "FileParameterDefinition":
		return ParamFile
	}
	return ParamOther
}

type wireQueueItem struct {
	Class      string       `json:"_class"`
	ID         int64        `json:"id"`
	Why        *string      `json:"why"`
	Blocked    bool         `json:"blocked"`
	Buildable  bool         `json:"buildable"`
	Cancelled  *bool        `json:"cancelled"`
	Actions    []wireAction `json:"actions"`
	Executable *buildRef    `json:"executable"`
	Task       struct {
		Name     *string `json:"name"`
		URL      string  `json:"url"`
		FullName string  `json:"fullName"`
	} `json:"task"`
}

// ParseQueueItem decodes /queue/item/N/api/json.
func ParseQueueItem(data []byte) (*QueueItem, error) {
	var w wireQueueItem
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	q := &QueueItem{ID: w.ID, Class: w.Class, TaskURL: w.Task.URL, TaskFullName: w.Task.FullName}
	if w.Task.Name != nil {
		q.TaskName = *w.Task.Name
	}
	if w.Why != nil {
		q.Why = *w.Why
	}
	params, err := parameterValues(w.Actions)
	if err != nil {
		return nil, err
	}
	q.Parameters = params
	cls := w.Class[strings.LastIndexByte(w.Class, '.')+1:]
	switch {
	case w.Executable != nil:
		q.State, q.BuildNumber, q.BuildURL = QueueStarted, w.Executable.Number, w.Executable.URL
	case w.Cancelled != nil && *w.Cancelled:
		q.State = QueueCancelled
	case cls == "Queue$WaitingItem":
		q.State = QueueWaiting
	case cls == "Queue$BlockedItem" || w.Blocked:
		q.State = QueueBlocked
	default:
		// Buildable and pending items, and a LeftItem whose build is being
		// created: waiting only for an executor to pick it up.
		q.State = QueueBuildable
		if cls == "Queue$LeftItem" && q.Why == "" {
			q.Why = "starting"
		}
	}
	return q, nil
}

type wireBuild struct {
	Class     string       `json:"_class"`
	Number    int64        `json:"number"`
	Result    *string      `json:"result"`
	Building  bool         `json:"building"`
	Duration  int64        `json:"duration"`
	Timestamp int64        `json:"timestamp"`
	URL       string       `json:"url"`
	QueueID   int64        `json:"queueId"`
	Actions   []wireAction `json:"actions"`
}

// ParseBuild decodes a build's /api/json.
func ParseBuild(data []byte) (*Build, error) {
	var w wireBuild
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	b := &Build{Class: w.Class, Number: w.Number, Building: w.Building, DurationMS: w.Duration,
		Timestamp: w.Timestamp, URL: w.URL, QueueID: w.QueueID, Causes: []string{}}
	if w.Result != nil {
		b.Result = *w.Result
	}
	for _, a := range w.Actions {
		for _, c := range a.Causes {
			b.Causes = append(b.Causes, c.ShortDescription)
		}
	}
	params, err := parameterValues(w.Actions)
	if err != nil {
		return nil, err
	}
	b.Parameters = params
	return b, nil
}

// parameterValues collects the ParametersAction values, leaving out the
// values of password parameters.
func parameterValues(as []wireAction) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range as {
		for _, p := range a.Parameters {
			if strings.HasSuffix(p.Class, "PasswordParameterValue") {
				out[p.Name] = nil
				continue
			}
			var v any
			if len(p.Value) > 0 {
				if err := json.Unmarshal(p.Value, &v); err != nil {
					return nil, fmt.Errorf("parameter %q: %w", p.Name, err)
				}
			}
			out[p.Name] = v
		}
	}
	return out, nil
}

type wireTestSuites struct {
	Suites []struct {
		Name  string `json:"name"`
		Cases []struct {
			ClassName    string  `json:"className"`
			Name         string  `json:"name"`
			Status       string  `json:"status"`
			ErrorDetails *string `json:"errorDetails"`
		} `json:"cases"`
	} `json:"suites"`
}

type wireTestReport struct {
	PassCount  int  `json:"passCount"`
	FailCount  int  `json:"failCount"`
	SkipCount  int  `json:"skipCount"`
	TotalCount *int `json:"totalCount"`
	wireTestSuites
	// ChildReports is an aggregated report's (hudson.tasks.test.
	// AggregatedTestResultAction.getChildReports): each child run and its
	// TestResult. nil for a plain TestResult.
	ChildReports []struct {
		Child *struct {
			URL string `json:"url"`
		} `json:"child"`
		Result *wireTestSuites `json:"result"`
	} `json:"childReports"`
}

// ParseTestReport decodes a build's /testReport/api/json: a TestResult
// (passCount, failCount, skipCount, suites) or an aggregated report
// (failCount, skipCount, totalCount, childReports; no passCount).
func ParseTestReport(data []byte) (*TestReport, error) {
	var w wireTestReport
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	r := &TestReport{Passed: w.PassCount, Failed: w.FailCount, Skipped: w.SkipCount}
	if w.ChildReports == nil {
		r.Cases = appendCases(r.Cases, "", &w.wireTestSuites)
		return r, nil
	}
	if w.TotalCount != nil {
		r.Passed = max(*w.TotalCount-w.FailCount-w.SkipCount, 0)
	}
	for _, cr := range w.ChildReports {
		if cr.Result == nil {
			continue // a child without a report (AggregatedTestResultAction.ChildReport.result null)
		}
		child := ""
		if cr.Child != nil {
			child = childName(cr.Child.URL)
		}
		r.Cases = appendCases(r.Cases, child, cr.Result)
	}
	return r, nil
}

func appendCases(out []TestCase, child string, w *wireTestSuites) []TestCase {
	for _, s := range w.Suites {
		for _, c := range s.Cases {
			tc := TestCase{Child: child, Suite: s.Name, Class: c.ClassName, Name: c.Name, Status: c.Status}
			switch c.Status {
			case "REGRESSION":
				tc.Status, tc.Condition = TestFailed, c.Status
			case "FIXED":
				tc.Status, tc.Condition = TestPassed, c.Status
			}
			if c.ErrorDetails != nil {
				tc.ErrorDetails = *c.ErrorDetails
			}
			out = append(out, tc)
		}
	}
	return out
}

// childName reads a child run's name from its URL, ".../job/m/<name>/<n>/":
// the segment before the build number.
func childName(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	parts := strings.Split(strings.Trim(u.EscapedPath(), "/"), "/")
	if len(parts) < 2 {
		return ""
	}
	name, err := url.PathUnescape(parts[len(parts)-2])
	if err != nil {
		return ""
	}
	return name
}

type wireUser struct {
	ID       string `json:"id"`
	FullName string `json:"fullName"`
}

// ParseUser decodes /me/api/json.
func ParseUser(data []byte) (*User, error) {
	var w wireUser
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.ID == "" {
		return nil, fmt.Errorf("no user id")
	}
	return &User{ID: w.ID, FullName: w.FullName}, nil
}
