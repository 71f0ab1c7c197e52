package tools

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
)

// The Pipeline tools (CONTRACT §14): a build's stages, one stage's log,
// the input steps a build waits at, and answering one.

// StageOut is one stage of a Pipeline build.
type StageOut struct {
	ID         string  `json:"id" jsonschema:"the stage's id in this build; pass it to get_stage_log as stage"`
	Name       string  `json:"name"`
	Status     string  `json:"status" jsonschema:"SUCCESS, FAILED, UNSTABLE, ABORTED, IN_PROGRESS, PAUSED_PENDING_INPUT or NOT_EXECUTED"`
	StartTime  *string `json:"start_time" jsonschema:"when the stage started, RFC 3339 in UTC; null if it never ran"`
	DurationMS int64   `json:"duration_ms" jsonschema:"how long it ran (so far, while it runs), pauses included"`
	PauseMS    int64   `json:"pause_ms" jsonschema:"how long it waited for input"`
	Error      string  `json:"error,omitempty" jsonschema:"the error it ended with, if any"`
}

// StagesOut is a Pipeline build's stages.
type StagesOut struct {
	Build      int64      `json:"build" jsonschema:"number of the build described"`
	Status     string     `json:"status" jsonschema:"the build's status, in the stages' terms"`
	StartTime  *string    `json:"start_time" jsonschema:"RFC 3339 in UTC"`
	DurationMS int64      `json:"duration_ms"`
	Stages     []StageOut `json:"stages" jsonschema:"in start order; a stage holding parallel branches comes before the branches' own stages"`
}

func stageOut(n jenkins.FlowNode) StageOut {
	s := StageOut{ID: n.ID, Name: n.Name, Status: n.Status, StartTime: rfc3339Time(n.Start), DurationMS: n.DurationMS, PauseMS: n.PauseMS}
	if n.Status == jenkins.StageNotExecuted {
		s.StartTime = nil
	}
	if n.Error != nil {
		s.Error = cut(strings.TrimSpace(n.Error.Message), 2000)
	}
	return s
}

// pipelineError is the tool error of a Pipeline read on a build that is
// not a Pipeline build.
func pipelineError(err error, what string) error {
	if errors.Is(err, jenkins.ErrNotPipeline) {
		var je *jenkins.Error
		detail := ""
		if errors.As(err, &je) && je.Detail != "" {
			detail = " (" + je.Detail + ")"
		}
		return Errorf(CodeConflict, "not a Pipeline build: %s has no stages or input steps%s; use get_build_log for its console output", what, detail)
	}
	return err
}

func addGetPipelineStages(t *Toolset) (*def, error) {
	return add(t, spec[BuildIn, StagesOut]{
		name:   catalog.GetPipelineStages,
		input:  buildSchema,
		target: func(in *BuildIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *BuildIn) (*StagesOut, error) {
			r, err := t.deps.Jenkins.PipelineRun(ctx, c.cred, c.target.job, buildNumber(in.Build))
			if err != nil {
				return nil, pipelineError(err, c.target.what)
			}
			out := &StagesOut{Build: r.Number, Status: r.Status, StartTime: rfc3339Time(r.Start), DurationMS: r.DurationMS, Stages: make([]StageOut, 0, len(r.Stages))}
			for _, st := range r.Stages {
				out.Stages = append(out.Stages, stageOut(st))
			}
			return out, nil
		},
	})
}

// StageLogIn selects one stage's log.
type StageLogIn struct {
	Job       string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build     *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
	Stage     string `json:"stage" jsonschema:"the stage's id (from get_pipeline_stages), or its name when no other stage of the build has that name"`
	MaxBytes  int    `json:"max_bytes,omitempty" jsonschema:"most bytes of text to return, 1 to 1048576; default 65536"`
	TailLines *int   `json:"tail_lines,omitempty" jsonschema:"return only the stage's last N lines (1 to 10000)"`
}

// StageRef names a stage.
type StageRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// StageLogOut is a stage's console text.
type StageLogOut struct {
	Build     int64    `json:"build" jsonschema:"number of the build read"`
	Stage     StageRef `json:"stage"`
	Status    string   `json:"status" jsonschema:"the stage's status"`
	Text      string   `json:"text" jsonschema:"the console text of the stage's steps, in order"`
	Truncated bool     `json:"truncated" jsonschema:"the stage's text is longer: the start is kept, or the end with tail_lines"`
	Running   bool     `json:"running" jsonschema:"a step of the stage still writes to its log"`
}

// maxStageArg bounds the stage argument.
const maxStageArg = 256

func addGetStageLog(t *Toolset) (*def, error) {
	return add(t, spec[StageLogIn, StageLogOut]{
		name: catalog.GetStageLog,
		input: func(s *jsonschema.Schema) {
			buildSchema(s)
			prop(s, "stage").MinLength = ptr(1)
			prop(s, "stage").MaxLength = ptr(maxStageArg)
			bounds(s, "max_bytes", 1, 1<<20)
			setDefault(s, "max_bytes", 65536)
			bounds(s, "tail_lines", 1, 10000)
		},
		target: func(in *StageLogIn) (target, error) {
			if err := plainArg("stage", in.Stage); err != nil {
				return target{}, err
			}
			return buildTarget(in.Job, in.Build)
		},
		run: func(ctx context.Context, c *call, in *StageLogIn) (*StageLogOut, error) {
			r, err := t.deps.Jenkins.PipelineRun(ctx, c.cred, c.target.job, buildNumber(in.Build))
			if err != nil {
				return nil, pipelineError(err, c.target.what)
			}
			st, err := findStage(r, in.Stage)
			if err != nil {
				return nil, err
			}
			tail := 0
			if in.TailLines != nil {
				tail = *in.TailLines
			}
			lg, err := t.deps.Jenkins.StageLog(ctx, c.cred, c.target.job, r.Number, st.ID, in.MaxBytes, tail)
			if err != nil {
				if errors.Is(err, jenkins.ErrNotFound) {
					return nil, Errorf(CodeNotFound, "stage %s of build %d of job %q not found (the build was deleted, or you may no longer see it)", st.ID, r.Number, c.target.job.String())
				}
				return nil, err
			}
			return &StageLogOut{Build: r.Number, Stage: StageRef{ID: st.ID, Name: st.Name}, Status: lg.Stage.Status,
				Text: validUTF8(lg.Text), Truncated: lg.Truncated, Running: lg.Running}, nil
		},
	})
}

// findStage is the stage of r that ref names: the stage with that id,
// else the one stage with that name.
func findStage(r *jenkins.PipelineRun, ref string) (jenkins.FlowNode, error) {
	var named []jenkins.FlowNode
	for _, st := range r.Stages {
		if st.ID == ref {
			return st, nil
		}
		if st.Name == ref {
			named = append(named, st)
		}
	}
	switch len(named) {
	case 1:
		return named[0], nil
	case 0:
		const most = 50
		var all []string
		for i, st := range r.Stages {
			if i == most {
				all = append(all, fmt.Sprintf("… (%d more)", len(r.Stages)-most))
				break
			}
			all = append(all, fmt.Sprintf("%s (id %s)", st.Name, st.ID))
		}
		if len(all) == 0 {
			return jenkins.FlowNode{}, Errorf(CodeNotFound, "build %d has no stages (yet)", r.Number)
		}
		return jenkins.FlowNode{}, Errorf(CodeNotFound, "build %d has no stage with id or name %q; its stages: %s", r.Number, ref, strings.Join(all, ", "))
	}
	ids := make([]string, len(named))
	for i, st := range named {
		ids[i] = st.ID
	}
	return jenkins.FlowNode{}, Errorf(CodeInvalidArgument, "%d stages of build %d are named %q (parallel branches or matrix cells): pass one of their ids as stage: %s",
		len(named), r.Number, ref, strings.Join(ids, ", "))
}

// plainArg refuses a name with control or format characters, which no
// stage or input id of Jenkins holds.
func plainArg(name, v string) error {
	for _, r := range v {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return Errorf(CodeInvalidArgument, "%s must not contain control characters", name)
		}
	}
	return nil
}

// InputOut is an input step a build waits at.
type InputOut struct {
	ID          string      `json:"id" jsonschema:"the input's id: pass it to submit_input as input_id"`
	Message     string      `json:"message"`
	ProceedText string      `json:"proceed_text" jsonschema:"the text of the proceed button"`
	Submitter   *string     `json:"submitter,omitempty" jsonschema:"who may answer: user ids and group names, comma-separated; absent when anyone with the Build permission may"`
	Parameters  []Parameter `json:"parameters" jsonschema:"values proceeding asks for; a password's default is never shown"`
}

// InputsOut lists the inputs a build waits at.
type InputsOut struct {
	Build  int64      `json:"build" jsonschema:"number of the build read"`
	Inputs []InputOut `json:"inputs" jsonschema:"empty when the build waits for none"`
}

func inputParams(ps []jenkins.ParamDef) []Parameter {
	out := make([]Parameter, 0, len(ps))
	for _, p := range ps {
		d := p.Default
		if p.Kind == jenkins.ParamPassword {
			d = nil
		}
		out = append(out, Parameter{Name: p.Name, Type: p.Kind, Description: p.Description, Default: d, Choices: p.Choices})
	}
	return out
}

func addListPendingInputs(t *Toolset) (*def, error) {
	return add(t, spec[BuildIn, InputsOut]{
		name:   catalog.ListPendingInputs,
		input:  buildSchema,
		target: func(in *BuildIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *BuildIn) (*InputsOut, error) {
			n, ins, err := t.deps.Jenkins.PendingInputs(ctx, c.cred, c.target.job, buildNumber(in.Build))
			if err != nil {
				return nil, pipelineError(err, c.target.what)
			}
			out := &InputsOut{Build: n, Inputs: make([]InputOut, 0, len(ins))}
			for _, p := range ins {
				o := InputOut{ID: p.ID, Message: p.Message, ProceedText: p.ProceedText, Parameters: inputParams(p.Parameters)}
				if p.Submitter != "" {
					o.Submitter = ptr(p.Submitter)
				}
				out.Inputs = append(out.Inputs, o)
			}
			return out, nil
		},
	})
}

// SubmitInputIn answers an input step.
type SubmitInputIn struct {
	Job        string         `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build      int64          `json:"build" jsonschema:"number of the build waiting at the input"`
	InputID    string         `json:"input_id" jsonschema:"the input's id, from list_pending_inputs"`
	Action     string         `json:"action" jsonschema:"proceed (let the build go on) or abort (stop the build)"`
	Parameters map[string]any `json:"parameters,omitempty" jsonschema:"values for the input's parameters by name (proceed only); omitted ones take their defaults"`
}

// SubmitInputOut is the outcome of an answer.
type SubmitInputOut struct {
	Submitted   bool   `json:"submitted" jsonschema:"Jenkins took the answer"`
	Action      string `json:"action" jsonschema:"proceed or abort"`
	BuildStatus string `json:"build_status" jsonschema:"the build's result after the call (SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_BUILT), or IN_PROGRESS while it still runs"`
}

// maxInputID bounds input_id (InputStep ids are short identifiers).
const maxInputID = 256

// submitPlan is what submit_input's resolve step read for its run step.
type submitPlan struct {
	values []jenkins.InputValue
}

func addSubmitInput(t *Toolset) (*def, error) {
	return add(t, spec[SubmitInputIn, SubmitInputOut]{
		name: catalog.SubmitInput,
		input: func(s *jsonschema.Schema) {
			prop(s, "build").Minimum = ptr(1.0)
			prop(s, "input_id").MinLength = ptr(1)
			prop(s, "input_id").MaxLength = ptr(maxInputID)
			prop(s, "action").Enum = []any{"proceed", "abort"}
			prop(s, "parameters").MaxProperties = ptr(100)
		},
		target: func(in *SubmitInputIn) (target, error) {
			if err := plainArg("input_id", in.InputID); err != nil {
				return target{}, err
			}
			if in.Action == "abort" && len(in.Parameters) > 0 {
				return target{}, Errorf(CodeInvalidArgument, "parameters are given only to proceed; an abort takes none")
			}
			tg, err := buildTarget(in.Job, &in.Build)
			if err != nil {
				return tg, err
			}
			tg.params = in.Parameters
			tg.detail = inputDetail(in.InputID, in.Action, in.Parameters)
			verb := "Proceed"
			if in.Action == "abort" {
				verb = "Abort"
			}
			tg.summary = fmt.Sprintf("%s input %s of build %d of %s", verb, strconv.Quote(in.InputID), in.Build, strconv.Quote(tg.job.String())) +
				paramNames(in.Parameters)
			return tg, nil
		},
		// Read the build's pending inputs as the user first: an input that
		// is not waiting is not_found before anything is posted, the
		// values are checked against the input's own parameter
		// definitions (as trigger_job checks a job's), and the policy
		// decides on the values Jenkins will get.
		resolve: func(ctx context.Context, c *call, in *SubmitInputIn) (map[string]any, error) {
			_, ins, err := t.deps.Jenkins.PendingInputs(ctx, c.cred, c.target.job, in.Build)
			if err != nil {
				return nil, pipelineError(err, c.target.what)
			}
			var step *jenkins.PendingInput
			ids := make([]string, 0, len(ins))
			for i := range ins {
				ids = append(ids, strconv.Quote(ins[i].ID))
				if ins[i].ID == in.InputID {
					step = &ins[i]
				}
			}
			if step == nil {
				waits := "it waits for no input"
				if len(ids) > 0 {
					waits = "it waits for: " + strings.Join(ids, ", ")
				}
				return nil, Errorf(CodeNotFound, "build %d of job %q has no pending input %q (%s), or you may not see it", in.Build, c.target.job.String(), in.InputID, waits)
			}
			plan := submitPlan{}
			if in.Action == "proceed" && len(step.Parameters) > 0 {
				if _, err := buildParams(step.Parameters, in.Parameters); err != nil {
					return nil, withoutValues(err, in.Parameters)
				}
				plan.values = inputValues(step.Parameters, in.Parameters)
			} else if len(in.Parameters) > 0 {
				return nil, Errorf(CodeInvalidArgument, "input %q takes no parameters, but %d were given", in.InputID, len(in.Parameters))
			}
			c.resolved = plan
			return effectiveParams(step.Parameters, in.Parameters), nil
		},
		run: func(ctx context.Context, c *call, in *SubmitInputIn) (*SubmitInputOut, error) {
			plan := c.resolved.(submitPlan)
			err := t.deps.Jenkins.SubmitInput(ctx, c.cred, c.target.job, in.Build, in.InputID, in.Action == "proceed", plan.values)
			if err != nil {
				var je *jenkins.Error
				switch {
				case errors.Is(err, jenkins.ErrForbidden) && errors.As(err, &je) && je.Detail != "":
					return nil, Errorf(CodeForbidden, "Jenkins refused your answer to input %q of %s: %s", in.InputID, c.target.what, je.Detail)
				case errors.Is(err, jenkins.ErrNotFound):
					return nil, Errorf(CodeNotFound, "input %q of %s is no longer pending (someone answered it, or the build ended)", in.InputID, c.target.what)
				}
				return nil, err
			}
			out := &SubmitInputOut{Submitted: true, Action: in.Action, BuildStatus: jenkins.StageInProgress}
			if b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, c.target.job, in.Build); err == nil && !b.Building && b.Result != "" {
				out.BuildStatus = b.Result
			}
			return out, nil
		},
	})
}

// inputValues are the values sent to proceed: each parameter given, else
// its default (what Jenkins's form would send), as JSON values of their
// type; a password without a given value is left out (its default is
// never read).
func inputValues(defs []jenkins.ParamDef, given map[string]any) []jenkins.InputValue {
	out := make([]jenkins.InputValue, 0, len(defs))
	for _, d := range defs {
		v, ok := given[d.Name]
		if !ok || v == nil {
			if d.Kind == jenkins.ParamPassword || d.Kind == jenkins.ParamFile || d.Default == nil {
				continue
			}
			v = d.Default
		}
		s, err := paramValue(d, v)
		if err != nil {
			continue // checked by buildParams before
		}
		if d.Kind == jenkins.ParamBoolean {
			out = append(out, jenkins.InputValue{Name: d.Name, Value: s == "true"})
		} else {
			out = append(out, jenkins.InputValue{Name: d.Name, Value: s})
		}
	}
	return out
}

// inputDetail is what the audit record adds to the build: the input's id,
// the action and the names of the parameters given (never their values).
func inputDetail(id, action string, params map[string]any) string {
	return fmt.Sprintf(" input %s %s", catalog.Quote(id), action) + paramNames(params)
}

// paramNames is " with parameters A, B" (sorted), or "".
func paramNames(params map[string]any) string {
	if len(params) == 0 {
		return ""
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, shownValue(k))
	}
	slices.Sort(names)
	return " with parameters " + strings.Join(names, ", ")
}

// withoutValues is trigger_job's validation error with the values given
// taken out of its message: the message becomes the audit record's
// reason, which for submit_input holds parameter names, never values.
func withoutValues(err error, given map[string]any) error {
	var te *Error
	if !errors.As(err, &te) {
		return err
	}
	msg := te.Message
	for _, v := range given {
		if s, ok := v.(string); ok && s != "" {
			msg = strings.ReplaceAll(msg, strconv.Quote(s), "the value given")
		}
	}
	out := *te
	out.Message = msg
	return &out
}
