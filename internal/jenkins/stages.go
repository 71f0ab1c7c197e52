package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Pipeline builds, read as pipeline-stage-view's REST API (wfapi) reports
// them, their steps' logs through workflow-api's LogAction, and their
// input steps answered through pipeline-input-step's endpoints.
//
// pipeline-stage-view-plugin: rest-api/src/main/java/com/cloudbees/workflow/
// rest/endpoints/RunAPI.java (describe, pendingInputActions),
// FlowNodeAPI.java (a node's describe), external/RunExt.java,
// StageNodeExt.java (MAX_CHILD_NODES), AtomFlowNodeExt.java,
// FlowNodeLogExt.java (wfapi/log: only the last 10 KiB, as HTML, which is
// why step logs are read through LogAction instead),
// PendingInputActionsExt.java, InputParameterDefExt.java.
// workflow-support-plugin: LogStorageAction.getLogText (the step's whole
// log, an AnnotatedLargeText served at execution/node/<id>/log/logText/
// progressiveText with the console's rules).
// pipeline-input-step-plugin: InputStepExecution.java.

// ErrNotPipeline is wrapped (with ErrConflict) by the error of a
// Pipeline read on a build that is not a Pipeline build.
var ErrNotPipeline = errors.New("not a Pipeline build")

// Stage statuses, as pipeline-stage-view's StatusExt names them.
const (
	StageSuccess     = "SUCCESS"
	StageFailed      = "FAILED"
	StageUnstable    = "UNSTABLE"
	StageAborted     = "ABORTED"
	StageInProgress  = "IN_PROGRESS"
	StagePaused      = "PAUSED_PENDING_INPUT"
	StageNotExecuted = "NOT_EXECUTED"
)

// MaxStageSteps is how many steps of a stage pipeline-stage-view lists
// (StageNodeExt.MAX_CHILD_NODES): a stage with more shows only its first.
const MaxStageSteps = 100

// FlowError is the error a stage or step ended with (ErrorExt).
type FlowError struct {
	Message, Type string
}

// FlowNode is a stage or step of a Pipeline build: its id (the flow
// node's, unique in the build), name, StatusExt status, start and
// durations (pause: time spent waiting for input).
type FlowNode struct {
	ID, Name, Status string
	Start            time.Time
	DurationMS       int64
	PauseMS          int64
	Error            *FlowError
}

// PipelineRun is a Pipeline build as stage-view describes it.
type PipelineRun struct {
	Number     int64
	Status     string
	Start      time.Time
	DurationMS int64
	// PendingInput: the build waits for an input step's answer.
	PendingInput bool
	// Stages are in start order; stages in parallel branches are listed
	// after the stage holding the branches, each under its own name.
	Stages []FlowNode
}

// StageStep is a step of a stage; HasLog says whether it has a log.
type StageStep struct {
	FlowNode
	HasLog bool
}

// StageDetail is one stage with its steps.
type StageDetail struct {
	FlowNode
	Steps []StageStep
	// StepsCapped: the stage lists MaxStageSteps steps, so it may have
	// more that stage-view does not report.
	StepsCapped bool
}

type wireFlowNode struct {
	Links struct {
		Log *struct {
			Href string `json:"href"`
		} `json:"log"`
	} `json:"_links"`
	ID                  string `json:"id"`
	Name                string `json:"name"`
	Status              string `json:"status"`
	StartTimeMillis     int64  `json:"startTimeMillis"`
	DurationMillis      int64  `json:"durationMillis"`
	PauseDurationMillis int64  `json:"pauseDurationMillis"`
	Error               *struct {
		Message string `json:"message"`
		Type    string `json:"type"`
	} `json:"error"`
	StageFlowNodes []wireFlowNode `json:"stageFlowNodes"`
}

func (w *wireFlowNode) node() (FlowNode, error) {
	if _, err := strconv.ParseUint(w.ID, 10, 31); err != nil {
		return FlowNode{}, fmt.Errorf("flow node id %q is not a number", w.ID)
	}
	if !validStatus(w.Status) {
		return FlowNode{}, fmt.Errorf("flow node %s: unknown status %q", w.ID, w.Status)
	}
	n := FlowNode{ID: w.ID, Name: w.Name, Status: w.Status, DurationMS: max(w.DurationMillis, 0), PauseMS: max(w.PauseDurationMillis, 0)}
	if w.StartTimeMillis > 0 {
		n.Start = time.UnixMilli(w.StartTimeMillis).UTC()
	}
	if w.Error != nil {
		n.Error = &FlowError{Message: w.Error.Message, Type: w.Error.Type}
	}
	return n, nil
}

func validStatus(s string) bool {
	switch s {
	case StageSuccess, StageFailed, StageUnstable, StageAborted, StageInProgress, StagePaused, StageNotExecuted:
		return true
	}
	return false
}

type wirePipelineRun struct {
	Links struct {
		PendingInputActions *struct {
			Href string `json:"href"`
		} `json:"pendingInputActions"`
	} `json:"_links"`
	ID              string         `json:"id"`
	Name            string         `json:"name"`
	Status          string         `json:"status"`
	StartTimeMillis int64          `json:"startTimeMillis"`
	DurationMillis  int64          `json:"durationMillis"`
	Stages          []wireFlowNode `json:"stages"`
}

// ParsePipelineRun decodes <build>/wfapi/describe.
func ParsePipelineRun(data []byte) (*PipelineRun, error) {
	var w wirePipelineRun
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	n, err := strconv.ParseInt(w.ID, 10, 64)
	if err != nil {
		// Before Jenkins 1.597 a run's id was its timestamp; its name is
		// then "#N".
		n, err = strconv.ParseInt(strings.TrimPrefix(w.Name, "#"), 10, 64)
	}
	if err != nil || n <= 0 {
		return nil, fmt.Errorf("run id %q / name %q is not a build number", w.ID, w.Name)
	}
	if !validStatus(w.Status) {
		return nil, fmt.Errorf("unknown run status %q", w.Status)
	}
	r := &PipelineRun{Number: n, Status: w.Status, DurationMS: max(w.DurationMillis, 0),
		PendingInput: w.Links.PendingInputActions != nil || w.Status == StagePaused, Stages: make([]FlowNode, 0, len(w.Stages))}
	if w.StartTimeMillis > 0 {
		r.Start = time.UnixMilli(w.StartTimeMillis).UTC()
	}
	for i := range w.Stages {
		st, err := w.Stages[i].node()
		if err != nil {
			return nil, err
		}
		r.Stages = append(r.Stages, st)
	}
	return r, nil
}

// ParseStageDetail decodes execution/node/<id>/wfapi/describe of a stage.
func ParseStageDetail(data []byte) (*StageDetail, error) {
	var w wireFlowNode
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.StageFlowNodes == nil {
		return nil, fmt.Errorf("flow node %s is not a stage", w.ID)
	}
	st, err := w.node()
	if err != nil {
		return nil, err
	}
	d := &StageDetail{FlowNode: st, Steps: make([]StageStep, 0, len(w.StageFlowNodes)), StepsCapped: len(w.StageFlowNodes) >= MaxStageSteps}
	for i := range w.StageFlowNodes {
		n, err := w.StageFlowNodes[i].node()
		if err != nil {
			return nil, err
		}
		d.Steps = append(d.Steps, StageStep{FlowNode: n, HasLog: w.StageFlowNodes[i].Links.Log != nil})
	}
	return d, nil
}

// notPipeline tells why a Pipeline read of a build got 404: the build is
// missing or hidden (the 404 stands), is not a Pipeline build
// (ErrNotPipeline), or is one on a Jenkins without pipeline-stage-view.
func (c *Client) notPipeline(ctx context.Context, cred Credential, job jobpath.Path, number int64, nf error) error {
	b, err := c.GetBuild(ctx, cred, job, number)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nf
		}
		return err
	}
	op := "describe Pipeline run " + buildName(job, number)
	if b.Class != "org.jenkinsci.plugins.workflow.job.WorkflowRun" {
		return &Error{Op: op, Status: http.StatusNotFound, Err: fmt.Errorf("%w: %w", ErrConflict, ErrNotPipeline),
			Detail: fmt.Sprintf("build %d is a %s, not a Pipeline build", b.Number, shortClass(b.Class))}
	}
	return &Error{Op: op, Status: http.StatusNotFound, Err: ErrUnavailable,
		Detail: "Jenkins has no wfapi for this Pipeline build: is the pipeline-stage-view plugin installed?"}
}

func shortClass(c string) string {
	if c == "" {
		return "build of another kind"
	}
	return c[strings.LastIndexByte(c, '.')+1:]
}

// PipelineRun describes a Pipeline build (number 0: the last build) with
// its stages, from <build>/wfapi/describe. A build that is not a Pipeline
// build is an error wrapping ErrConflict and ErrNotPipeline (one more
// request, to the build, tells it from a missing one: both are 404 on
// wfapi).
func (c *Client) PipelineRun(ctx context.Context, cred Credential, job jobpath.Path, number int64) (*PipelineRun, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	r, err := getJSON(ctx, c, call{op: "describe Pipeline run " + buildName(job, number), rel: buildRel(job, number) + "wfapi/describe", cred: cred}, ParsePipelineRun)
	if errors.Is(err, ErrNotFound) {
		return nil, c.notPipeline(ctx, cred, job, number, err)
	}
	return r, err
}

func nodeRel(job jobpath.Path, number int64, id string) string {
	return buildRel(job, number) + "execution/node/" + url.PathEscape(id) + "/"
}

// Stage describes one stage of build number (not 0) with its steps, from
// execution/node/<stageID>/wfapi/describe. At most MaxStageSteps steps are
// listed (StepsCapped).
func (c *Client) Stage(ctx context.Context, cred Credential, job jobpath.Path, number int64, stageID string) (*StageDetail, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: fmt.Sprintf("describe stage %s of %s", stageID, buildName(job, number)),
		rel: nodeRel(job, number, stageID) + "wfapi/describe", cred: cred}, ParseStageDetail)
}

func stepLog(job jobpath.Path, number int64, stepID string) logRef {
	return logRef{op: fmt.Sprintf("read log of step %s of %s", stepID, buildName(job, number)),
		rel: nodeRel(job, number, stepID) + "log/logText/progressiveText"}
}

// StepLog reads a step's log (workflow-api's LogAction: the step's whole
// log) from byte offset start, at most maxBytes, with ReadLog's rules:
// console text (notes removed, LF line ends).
func (c *Client) StepLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, stepID string, start int64, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.readLog(ctx, cred, stepLog(job, number, stepID), start, maxBytes)
}

// StepLogTail is TailLog of a step's log.
func (c *Client) StepLogTail(ctx context.Context, cred Credential, job jobpath.Path, number int64, stepID string, lines, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.tailLog(ctx, cred, stepLog(job, number, stepID), lines, maxBytes)
}

// StageLogText is the console text of a stage's steps.
type StageLogText struct {
	Stage StageDetail
	Text  []byte
	// Truncated: the stage's text is longer than what Text holds (its
	// head is kept, or its tail with TailLines).
	Truncated bool
	// Running: a step still writes to its log.
	Running bool
	// StepsRead is how many step logs were read.
	StepsRead int
}

// StageLog returns the console text of a stage's steps, one after the
// other in the order stage-view lists them: at most maxBytes, the head
// of it, or with tailLines > 0 its last tailLines lines. It costs one
// request for the stage and one (two to three for a tail) per step log
// read, and stops reading once maxBytes is used.
func (c *Client) StageLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, stageID string, maxBytes, tailLines int) (*StageLogText, error) {
	st, err := c.Stage(ctx, cred, job, number, stageID)
	if err != nil {
		return nil, err
	}
	out := &StageLogText{Stage: *st, Truncated: st.StepsCapped}
	var logged []StageStep
	for _, s := range st.Steps {
		if s.HasLog {
			logged = append(logged, s)
		}
	}
	if tailLines <= 0 {
		for i, s := range logged {
			room := maxBytes - len(out.Text)
			if room <= 0 {
				out.Truncated = true
				break
			}
			chunk, err := c.StepLog(ctx, cred, job, number, s.ID, 0, room)
			if err != nil {
				return nil, err
			}
			out.StepsRead++
			out.Text = append(out.Text, chunk.Text...)
			out.Running = out.Running || chunk.Running
			if chunk.Next < chunk.Size {
				out.Truncated = true
				break
			}
			if i < len(logged)-1 && len(out.Text) >= maxBytes {
				out.Truncated = true
				break
			}
		}
		return out, nil
	}
	// The tail: steps from the last, until enough lines or bytes.
	var parts [][]byte
	lines, size := 0, 0
	for i := len(logged) - 1; i >= 0; i-- {
		if lines >= tailLines || size >= maxBytes {
			out.Truncated = true
			break
		}
		chunk, err := c.StepLogTail(ctx, cred, job, number, logged[i].ID, tailLines-lines, maxBytes-size)
		if err != nil {
			return nil, err
		}
		out.StepsRead++
		out.Running = out.Running || chunk.Running
		parts = append(parts, chunk.Text)
		lines += bytes.Count(bytes.TrimSuffix(chunk.Text, []byte{'\n'}), []byte{'\n'}) + 1
		if len(chunk.Text) == 0 {
			lines--
		}
		size += len(chunk.Text)
		if chunk.Start > 0 {
			out.Truncated = true
			break
		}
	}
	for i := len(parts) - 1; i >= 0; i-- {
		out.Text = append(out.Text, parts[i]...)
	}
	return out, nil
}

// InputParam is a parameter an input step asks for.
type InputParam = ParamDef

// PendingInput is an input step a build waits at.
type PendingInput struct {
	ID, Message, ProceedText string
	// Submitter is the step's submitter list (user ids and groups,
	// comma-separated), "" when anyone with Item.Build may answer.
	Submitter  string
	Parameters []InputParam
}

type wirePendingInput struct {
	ID          string  `json:"id"`
	ProceedText *string `json:"proceedText"`
	Message     string  `json:"message"`
	Inputs      []struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description *string         `json:"description"`
		Definition  json.RawMessage `json:"definition"`
	} `json:"inputs"`
}

// ParsePendingInputs decodes <build>/wfapi/pendingInputActions.
func ParsePendingInputs(data []byte) ([]PendingInput, error) {
	var ws []wirePendingInput
	if err := json.Unmarshal(data, &ws); err != nil {
		return nil, err
	}
	out := make([]PendingInput, 0, len(ws))
	for _, w := range ws {
		p := PendingInput{ID: w.ID, Message: w.Message, Parameters: []InputParam{}}
		if w.ProceedText != nil {
			p.ProceedText = *w.ProceedText
		}
		for _, in := range w.Inputs {
			d := ParamDef{Name: in.Name, JenkinsType: in.Type, Kind: paramKind(in.Type, "")}
			if in.Description != nil {
				d.Description = *in.Description
			}
			var def struct {
				DefaultVal json.RawMessage `json:"defaultVal"`
				Choices    []string        `json:"choices"`
			}
			if len(in.Definition) > 0 {
				if err := json.Unmarshal(in.Definition, &def); err != nil {
					return nil, fmt.Errorf("input %q parameter %q: %w", w.ID, in.Name, err)
				}
			}
			d.Choices = def.Choices
			// InputParameterDefExt exports a password's default in clear:
			// it is never kept.
			if d.Kind != ParamPassword && len(def.DefaultVal) > 0 && string(def.DefaultVal) != "null" {
				var v any
				if err := json.Unmarshal(def.DefaultVal, &v); err != nil {
					return nil, fmt.Errorf("input %q parameter %q default: %w", w.ID, in.Name, err)
				}
				d.Default = v
			}
			p.Parameters = append(p.Parameters, d)
		}
		out = append(out, p)
	}
	return out, nil
}

const inputActionTree = "number,_class,actions[executions[id,input[id,submitter]]]"

type wireInputBuild struct {
	Class   string `json:"_class"`
	Number  int64  `json:"number"`
	Actions []struct {
		Executions []struct {
			ID    string `json:"id"`
			Input *struct {
				ID        string  `json:"id"`
				Submitter *string `json:"submitter"`
			} `json:"input"`
		} `json:"executions"`
	} `json:"actions"`
}

// PendingInputs lists the input steps build number (0: the last build)
// waits at, with their submitter lists: the build's InputAction (in its
// api/json, which names the build and its submitters) and stage-view's
// pendingInputActions (messages, parameters), which does not export the
// submitter. It returns the build's number too.
func (c *Client) PendingInputs(ctx context.Context, cred Credential, job jobpath.Path, number int64) (int64, []PendingInput, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	b, err := getJSON(ctx, c, call{op: "get input steps of " + buildName(job, number), rel: buildRel(job, number) + "api/json",
		query: url.Values{"tree": {inputActionTree}}, cred: cred}, func(data []byte) (*wireInputBuild, error) {
		var w wireInputBuild
		return &w, json.Unmarshal(data, &w)
	})
	if err != nil {
		return 0, nil, err
	}
	if b.Class != "org.jenkinsci.plugins.workflow.job.WorkflowRun" {
		return b.Number, nil, &Error{Op: "get input steps of " + buildName(job, number), Err: fmt.Errorf("%w: %w", ErrConflict, ErrNotPipeline),
			Detail: fmt.Sprintf("build %d is a %s, not a Pipeline build", b.Number, shortClass(b.Class))}
	}
	submitters := map[string]string{}
	for _, a := range b.Actions {
		for _, e := range a.Executions {
			if e.Input != nil && e.Input.Submitter != nil {
				submitters[e.ID] = *e.Input.Submitter
			}
		}
	}
	ins, err := getJSON(ctx, c, call{op: "get pending inputs of " + buildName(job, b.Number), rel: buildRel(job, b.Number) + "wfapi/pendingInputActions", cred: cred}, ParsePendingInputs)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return b.Number, nil, c.notPipeline(ctx, cred, job, b.Number, err)
		}
		return b.Number, nil, err
	}
	for i := range ins {
		ins[i].Submitter = submitters[ins[i].ID]
	}
	return b.Number, ins, nil
}

// InputValue is one parameter value given to an input step: a string, or
// a bool for a boolean parameter.
type InputValue struct {
	Name  string
	Value any
}

// SubmitInput answers input step inputID of build number (not 0): proceed,
// with values (input/<id>/proceed with Jenkins's "json" form field) or
// without (input/<id>/proceedEmpty), or abort (input/<id>/abort). It never
// uses input/<id>/submit, which aborts when no "proceed" field is sent.
// Jenkins decides as the user (InputStepExecution.canSettle) and refuses
// with a hudson.model.Failure: a 400 carrying X-Error, or its 500 error
// page; either is ErrForbidden, with Jenkins's message as Detail.
func (c *Client) SubmitInput(ctx context.Context, cred Credential, job jobpath.Path, number int64, inputID string, proceed bool, values []InputValue) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	rel := buildRel(job, number) + "input/" + jobpath.EscapeSegment(inputID) + "/"
	cl := call{cred: cred, form: url.Values{}}
	switch {
	case !proceed:
		cl.op, cl.rel = fmt.Sprintf("abort input %q of %s", inputID, buildName(job, number)), rel+"abort"
	case len(values) == 0:
		cl.op, cl.rel = fmt.Sprintf("proceed input %q of %s", inputID, buildName(job, number)), rel+"proceedEmpty"
	default:
		cl.op, cl.rel = fmt.Sprintf("proceed input %q of %s", inputID, buildName(job, number)), rel+"proceed"
		type jv struct {
			Name  string `json:"name"`
			Value any    `json:"value"`
		}
		ps := make([]jv, len(values))
		for i, v := range values {
			ps[i] = jv{v.Name, v.Value}
		}
		data, err := json.Marshal(map[string]any{"parameter": ps})
		if err != nil {
			return fmt.Errorf("jenkins: %s: %w", cl.op, err)
		}
		cl.form.Set("json", string(data))
	}
	resp, err := c.post(ctx, cl)
	if err != nil {
		var je *Error
		if errors.As(err, &je) {
			if msg, ok := inputRefusal(je); ok {
				je.Err, je.Detail = ErrForbidden, msg
			}
		}
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable,
			Detail: "not Jenkins's answer to an input (200); a login page or proxy in front of Jenkins? The input may still wait"}
	}
	return nil
}

// inputRefusal reads the refusal of an input answer: a Failure's X-Error
// (400), or the Failure's message on a 500 error page (where an older
// Jenkins rendered it), which says the user needs to be a submitter or to
// have a permission.
func inputRefusal(e *Error) (string, bool) {
	switch {
	case e.Status == http.StatusBadRequest && e.xError != "":
		return safeMessage(e.xError), true
	case e.Status == http.StatusInternalServerError:
		if i := bytes.Index(e.snippet, []byte("You need to ")); i >= 0 {
			msg := e.snippet[i:]
			if j := bytes.IndexAny(msg, "<\r\n"); j >= 0 {
				msg = msg[:j]
			}
			return safeMessage(string(msg)), true
		}
	}
	return "", false
}

// safeMessage is Jenkins's message without control characters, cut to
// 300 bytes at a character boundary.
func safeMessage(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
	if len(s) > 300 {
		s = string(trimToRune([]byte(s[:300])))
	}
	return s
}
