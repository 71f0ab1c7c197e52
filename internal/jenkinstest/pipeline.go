package jenkinstest

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Pipeline builds: a flow graph of stages and steps, as workflow-cps
// records it (FlowNodes with sequential ids) and pipeline-stage-view
// reports it (wfapi.go).
//
// A Pipeline build added with AddPipelineBuild is a list of timed console
// events: each line a step prints belongs to that step's node (its
// LogStorage stepLog) and to the build's console (overallLog), in time
// order. A build whose pipeline reaches an input step waits there
// (PAUSED_PENDING_INPUT) until the input is answered through
// input/<id>/proceed, proceedEmpty or abort (or submit); what follows it
// is laid out only then, from the moment of the answer.

// PipelineSpec is the script of a Pipeline build: its top-level stages,
// in order.
type PipelineSpec struct {
	Stages []StageSpec
}

// StageSpec is one stage. A stage either runs Steps, or runs Parallel
// branches (each with its own nested stages), as declarative Pipeline's
// "parallel" does.
type StageSpec struct {
	Name     string
	Steps    []StepSpec
	Parallel []BranchSpec
	// Skipped: the stage's "when" condition was false; stage-view reports
	// it NOT_EXECUTED.
	Skipped bool
}

// BranchSpec is one branch of a parallel stage: its nested stages.
type BranchSpec struct {
	Name   string
	Stages []StageSpec
}

// StepSpec is one step (an atom node of the flow graph).
type StepSpec struct {
	// Function is the step's function name ("sh", "echo", "junit"), Name
	// its display name ("Shell Script", "Print Message"); Name "" means a
	// name derived from Function.
	Function, Name string
	// Log holds the lines the step prints.
	Log      []string
	Duration time.Duration // default 1s
	// Result: "" (SUCCESS), FAILURE (the step throws: Error says why) or
	// UNSTABLE (the step marks the build and stage unstable, as junit does
	// with failing tests).
	Result string
	Error  string
	// Input, if set, makes the step an input step that waits for an answer.
	Input *InputSpec
}

// InputSpec is an input step: InputStep's id, message, ok, submitter,
// submitterParameter and parameters.
type InputSpec struct {
	// ID "" is InputStep.getId's default: the capitalized digest of the
	// message (the simulator uses a short stand-in).
	ID, Message, OK string
	// Submitter is a comma-separated list of user ids and group names
	// ("" means anyone with Item.Build); SubmitterParameter, if set, is
	// the name of an extra value holding the approver's id.
	Submitter, SubmitterParameter string
	Params                        []Param
	// AnsweredBy, if set, is the user who approved the input already
	// (after the step's Duration): the build goes on past it.
	AnsweredBy string
}

// flowNode is one node of a Pipeline build's flow graph that stage-view
// reports: a stage (its body start node, which carries the LabelAction) or
// a step (an atom node).
type flowNode struct {
	id      int
	name    string
	fn      string // step function name; "" for a stage
	stage   bool
	parent  *flowNode // the enclosing stage of a step or nested stage
	parents []int     // graph parents (AtomFlowNodeExt.parentNodes)

	start, end time.Time // end zero while running or waiting
	pause      time.Duration
	result     string // SUCCESS, FAILURE, UNSTABLE, ABORTED, NOT_EXECUTED, or "" while open
	errMsg     string
	errType    string

	log   []byte // the step's own log (LogStorage.stepLog), as emitted so far
	input *InputSpec
	// waiting: an input step not yet answered.
	waiting bool
}

// pipeEvent is a console line due at a time, belonging to node (0: the
// overall log only, such as "[Pipeline] stage").
type pipeEvent struct {
	at   time.Time
	node *flowNode
	line string
}

// pipeRun is the flow graph and console timeline of one Pipeline build.
type pipeRun struct {
	spec    PipelineSpec
	nodes   []*flowNode // stages and steps, by id order
	events  []pipeEvent
	emitted int
	nextID  int
	// resume is where the script continues after the waiting input: the
	// stage index and the step index of the input in it.
	resumeStage, resumeStep int
	waiting                 *flowNode
	stageNode               *flowNode // the stage the waiting input is in
	failed                  bool      // a step failed: later stages are skipped
	unstable                bool
	aborted                 bool
}

func (p *pipeRun) newID() int {
	p.nextID++
	return p.nextID
}

// node returns the stage or step node of id.
func (p *pipeRun) node(id string) *flowNode {
	n, err := strconv.Atoi(id)
	if err != nil || strconv.Itoa(n) != id {
		return nil
	}
	for _, fn := range p.nodes {
		if fn.id == n {
			return fn
		}
	}
	return nil
}

func (p *pipeRun) say(at time.Time, n *flowNode, line string) {
	p.events = append(p.events, pipeEvent{at: at, node: n, line: line})
}

// pipeLine is a "[Pipeline] ..." line with the NewNodeConsoleNote
// workflow-job writes before it (WorkflowRun.GraphL.logNodeMessage).
func pipeLine(id int, text string) string { return pipelineNote(id) + "[Pipeline] " + text }

func stepDisplayName(s StepSpec) string {
	if s.Name != "" {
		return s.Name
	}
	switch s.Function {
	case "sh":
		return "Shell Script"
	case "echo":
		return "Print Message"
	case "junit":
		return "Archive JUnit-formatted test results"
	case "input":
		return "Wait for interactive input"
	case "":
		return "Shell Script"
	}
	return s.Function
}

func validStage(st StageSpec, top bool) error {
	if st.Name == "" {
		return fmt.Errorf("%w: a stage needs a name", ErrInvalidSpec)
	}
	if len(st.Steps) > 0 && len(st.Parallel) > 0 {
		return fmt.Errorf("%w: stage %q has both steps and parallel branches", ErrInvalidSpec, st.Name)
	}
	for _, s := range st.Steps {
		switch s.Result {
		case "", "SUCCESS", "FAILURE", "UNSTABLE":
		default:
			return fmt.Errorf("%w: step result %q", ErrInvalidSpec, s.Result)
		}
		if s.Input != nil {
			if !top {
				return fmt.Errorf("%w: the simulator models input steps only in top-level stages", ErrInvalidSpec)
			}
			if _, err := normalizeJob(JobSpec{Params: s.Input.Params}); err != nil {
				return err
			}
		}
	}
	for _, b := range st.Parallel {
		for _, n := range b.Stages {
			if err := validStage(n, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// inputID is InputStep.getId for spec: its id, else a stand-in for the
// capitalized digest of the message.
func inputID(in *InputSpec) string {
	if in.ID != "" {
		return in.ID
	}
	var h uint32 = 2166136261
	for _, c := range []byte(in.Message) {
		h = (h ^ uint32(c)) * 16777619
	}
	return "D" + strconv.FormatUint(uint64(h), 16)
}

// layout lays the script out from stage si, step ti on, starting at t; it
// stops at an input step (which then waits) and returns the end time.
func (p *pipeRun) layout(t time.Time, si, ti int, b *build) time.Time {
	for ; si < len(p.spec.Stages); si++ {
		st := p.spec.Stages[si]
		var stage *flowNode
		if ti == 0 {
			stage = p.openStage(t, st, nil)
			if p.failed || p.aborted || st.Skipped {
				t = p.skipStage(t, stage, p.failed || p.aborted)
				continue
			}
		} else {
			stage = p.stageNode
		}
		if len(st.Parallel) > 0 {
			t = p.parallel(t, stage, st.Parallel)
		} else {
			var stop bool
			t, stop = p.steps(t, stage, st.Steps, ti, si, b)
			if stop {
				return t
			}
		}
		ti = 0
		t = p.closeStage(t, stage)
	}
	return t
}

// openStage starts a stage block: the stage step's start node, then its
// body's start node, which is the stage stage-view reports.
func (p *pipeRun) openStage(t time.Time, st StageSpec, parent *flowNode) *flowNode {
	startID := p.newID()
	p.say(t, nil, pipeLine(startID, "stage"))
	n := &flowNode{id: p.newID(), name: st.Name, stage: true, parent: parent, start: t, parents: []int{startID}}
	p.nodes = append(p.nodes, n)
	p.say(t, nil, pipeLine(n.id, "{ ("+st.Name+")"))
	return n
}

// skipStage is declarative Pipeline's Utils.markStageSkippedForConditional
// or ...ForFailure: the stage runs no step and says why.
func (p *pipeRun) skipStage(t time.Time, n *flowNode, forFailure bool) time.Time {
	if forFailure {
		p.say(t, nil, "Stage \""+n.name+"\" skipped due to earlier failure(s)")
	} else {
		p.say(t, nil, "Stage \""+n.name+"\" skipped due to when conditional")
	}
	n.result, n.end = "NOT_EXECUTED", t
	return p.closeStage(t, n)
}

func (p *pipeRun) closeStage(t time.Time, n *flowNode) time.Time {
	if n.result == "" {
		n.result = p.stageResult(n)
	}
	for _, c := range p.nodes {
		// The stage's block end node carries the error its body threw.
		if c.parent == n && c.errType != "" && n.errType == "" {
			n.errMsg, n.errType = c.errMsg, c.errType
		}
	}
	if n.end.IsZero() {
		n.end = t
	}
	endID := p.newID()
	p.say(t, nil, pipeLine(endID, "}"))
	p.newID() // the stage step's end node
	p.say(t, nil, pipeLine(endID+1, "// stage"))
	return t
}

// stageResult is the stage's status from its steps (StageNodeExt: a
// failed step fails the stage) and nested stages.
func (p *pipeRun) stageResult(stage *flowNode) string {
	res := "SUCCESS"
	rank := map[string]int{"SUCCESS": 0, "UNSTABLE": 1, "ABORTED": 2, "FAILURE": 3}
	for _, n := range p.nodes {
		if n.parent != stage || n.result == "" || n.result == "NOT_EXECUTED" {
			continue
		}
		if rank[n.result] > rank[res] {
			res = n.result
		}
	}
	return res
}

// steps runs steps[from:] of stage; stop is true when an input step now
// waits.
func (p *pipeRun) steps(t time.Time, stage *flowNode, steps []StepSpec, from, si int, b *build) (time.Time, bool) {
	for i := from; i < len(steps); i++ {
		s := steps[i]
		{
			n := &flowNode{id: p.newID(), name: stepDisplayName(s), fn: s.Function, parent: stage, start: t, input: s.Input}
			if n.fn == "" {
				n.fn = "sh"
			}
			if s.Input != nil {
				n.fn = "input"
				n.name = stepDisplayName(StepSpec{Function: "input", Name: s.Name})
			}
			if len(p.nodes) > 0 {
				n.parents = []int{n.id - 1}
			}
			p.nodes = append(p.nodes, n)
			p.say(t, nil, pipeLine(n.id, n.fn))
			if s.Input != nil {
				// InputStepExecution.start prints the message and the
				// two POST links (POSTHyperlinkNote).
				p.say(t, n, s.Input.Message)
				base := "/" + strings.TrimPrefix(buildPath(b), "/") + "input/" + url.PathEscape(inputID(s.Input)) + "/"
				p.say(t, n, EncodeNote("hudson.console.POSTHyperlinkNote", base+"proceedEmpty", okText(s.Input))+okText(s.Input)+
					" or "+EncodeNote("hudson.console.POSTHyperlinkNote", base+"abort", "Abort")+"Abort")
				if s.Input.AnsweredBy == "" {
					n.waiting = true
					p.waiting, p.stageNode = n, stage
					p.resumeStage, p.resumeStep = si, i
					return t, true
				}
				dur := max(s.Duration, time.Second)
				p.say(t.Add(dur), n, "Approved by "+HyperlinkNote("/user/"+strings.ToLower(s.Input.AnsweredBy), s.Input.AnsweredBy))
				t = t.Add(dur)
				n.end, n.pause, n.result = t, dur, "SUCCESS"
				continue
			}
			dur := s.Duration
			if dur <= 0 {
				dur = time.Second
			}
			for k, l := range s.Log {
				p.say(t.Add(dur/time.Duration(len(s.Log)+1)*time.Duration(k+1)), n, l)
			}
			t = t.Add(dur)
			n.end = t
			switch s.Result {
			case "FAILURE":
				n.result, n.errMsg, n.errType = "FAILURE", s.Error, "hudson.AbortException"
				if n.errMsg == "" {
					n.errMsg = "script returned exit code 1"
				}
				p.say(t, nil, "ERROR: "+n.errMsg)
				p.failed = true
				return t, false
			case "UNSTABLE":
				n.result = "UNSTABLE"
				p.unstable = true
			default:
				n.result = "SUCCESS"
			}
		}
	}
	return t, false
}

// parallel runs the branches of a parallel stage side by side from t and
// returns when the last one ends.
func (p *pipeRun) parallel(t time.Time, stage *flowNode, branches []BranchSpec) time.Time {
	p.say(t, nil, pipeLine(p.newID(), "parallel"))
	end := t
	before, anyFailed := p.failed, false
	for _, br := range branches {
		// Branches run side by side: one failing does not skip another
		// (no failFast).
		p.failed = before
		id := p.newID()
		p.say(t, nil, pipeLine(id, "{ (Branch: "+br.Name+")"))
		bt := t
		for _, st := range br.Stages {
			n := p.openStage(bt, st, stage)
			if st.Skipped || p.failed {
				bt = p.skipStage(bt, n, p.failed && !st.Skipped)
				continue
			}
			bt, _ = p.steps(bt, n, st.Steps, 0, -1, nil)
			bt = p.closeStage(bt, n)
		}
		p.say(bt, nil, pipeLine(p.newID(), "}"))
		anyFailed = anyFailed || p.failed
		if bt.After(end) {
			end = bt
		}
	}
	p.failed = anyFailed
	p.say(end, nil, pipeLine(p.newID(), "// parallel"))
	// The parallel stage's own status counts its nested stages.
	res := "SUCCESS"
	for _, n := range p.nodes {
		if n.stage && n.parent == stage && n.result == "FAILURE" {
			res = "FAILURE"
		} else if n.stage && n.parent == stage && n.result == "UNSTABLE" && res == "SUCCESS" {
			res = "UNSTABLE"
		}
	}
	stage.result, stage.end = res, end
	sortEvents(p.events)
	return end
}

func sortEvents(evs []pipeEvent) {
	slices.SortStableFunc(evs, func(a, b pipeEvent) int { return a.at.Compare(b.at) })
}

func okText(in *InputSpec) string {
	if in.OK != "" {
		return in.OK
	}
	return "Proceed" // InputStep.getOk: Messages.proceed()
}

// result is the build's result once the script ended.
func (p *pipeRun) result() string {
	switch {
	case p.aborted:
		return "ABORTED"
	case p.failed:
		return "FAILURE"
	case p.unstable:
		return "UNSTABLE"
	}
	return "SUCCESS"
}

// emitUntil appends to the build's log, and each line's step log, the
// events due by t.
func (p *pipeRun) emitUntil(b *build, t time.Time, all bool) {
	for p.emitted < len(p.events) {
		ev := p.events[p.emitted]
		if !all && ev.at.After(t) {
			return
		}
		b.log = append(b.log, ev.line...)
		b.log = append(b.log, '\n')
		if ev.node != nil {
			ev.node.log = append(ev.node.log, ev.line...)
			ev.node.log = append(ev.node.log, '\n')
		}
		if string(stripNotes(nil, []byte(ev.line))) == junitStepLine {
			b.published = true
		}
		p.emitted++
	}
}

// started reports whether n has started by now (a node planned for later
// is not in the flow graph yet).
func (n *flowNode) started(now time.Time) bool { return !n.start.After(now) }

// open reports whether n runs (or waits) at now.
func (n *flowNode) open(now time.Time) bool {
	return n.waiting || n.end.IsZero() || n.end.After(now)
}

// PipelineBuildSpec describes a Pipeline build added with
// AddPipelineBuild.
type PipelineBuildSpec struct {
	Pipeline PipelineSpec
	// UserID: who started it ("" is a timer).
	UserID string
	// Timestamp is the start; zero means now minus the script's duration
	// (now for a build that waits at an input).
	Timestamp time.Time
	Params    map[string]any
}

// AddPipelineBuild adds a Pipeline build of job (a ClassWorkflowJob) that
// ran spec's script: finished, or waiting at its first input step.
func (s *Server) AddPipelineBuild(job string, spec PipelineBuildSpec) (int, error) {
	for _, st := range spec.Pipeline.Stages {
		if err := validStage(st, true); err != nil {
			return 0, fmt.Errorf("jenkinstest: add pipeline build to %q: %w", job, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	j, err := s.job(job)
	if err != nil {
		return 0, fmt.Errorf("jenkinstest: add pipeline build to %q: %w", job, err)
	}
	if j.spec.Class != ClassWorkflowJob {
		return 0, fmt.Errorf("jenkinstest: add pipeline build to %q: %w: not a Pipeline job", job, ErrInvalidSpec)
	}
	b := &build{job: j, queueID: -1, number: j.nextBuild}
	b.params, err = buildParams(j, spec.Params)
	if err != nil {
		return 0, fmt.Errorf("jenkinstest: add pipeline build to %q: %w", job, err)
	}
	b.causes = []cause{s.causeFor(spec.UserID)}
	p := &pipeRun{spec: spec.Pipeline, nextID: 2} // 2 is the FlowStartNode
	b.pipe = p
	// Lay the script out once from time zero to learn its length.
	start := spec.Timestamp
	if start.IsZero() {
		probe := &pipeRun{spec: spec.Pipeline, nextID: 2}
		// A finished build ended now; one that waits reached its input now.
		end := probe.layout(time.Time{}, 0, 0, b)
		start = now.Add(-end.Sub(time.Time{}) - time.Millisecond)
	}
	b.start = start
	p.say(start, nil, pipeLine(p.newID(), "Start of Pipeline"))
	end := p.layout(start.Add(time.Millisecond), 0, 0, b)
	j.nextBuild++
	j.builds = append(j.builds, b)
	b.startLog()
	if p.waiting != nil {
		b.building, b.result = true, ""
		b.duration = end.Sub(start)
		p.emitUntil(b, now, false)
		return b.number, nil
	}
	p.say(end, nil, pipeLine(p.newID(), "End of Pipeline"))
	b.result = p.result()
	b.duration = end.Sub(start)
	p.emitUntil(b, end, true)
	b.finishLog()
	return b.number, nil
}

// settle answers the waiting input of b at time t as user u: proceed
// (approved) or abort (rejected), and lays out the rest of the script from
// t. The build then runs (s.running) until its new end.
func (s *Server) settle(b *build, proceed bool, u *user, t time.Time) {
	p := b.pipe
	n := p.waiting
	p.emitUntil(b, t, false)
	n.waiting = false
	n.end = t
	n.pause = t.Sub(n.start)
	who := Anonymous
	if u != nil {
		who = HyperlinkNote("/user/"+strings.ToLower(u.id), u.fullName)
	}
	if proceed {
		// InputStepExecution.proceed: "Approved by <user>".
		p.say(t, n, "Approved by "+who)
		n.result = "SUCCESS"
	} else {
		// Rejection (a FlowInterruptedException cause) prints
		// "Rejected by <user>"; the step and the build are ABORTED.
		p.say(t, n, "Rejected by "+who)
		n.result, n.errType = "ABORTED", "org.jenkinsci.plugins.workflow.steps.FlowInterruptedException"
		p.aborted = true
	}
	p.waiting = nil
	var end time.Time
	if proceed {
		end = p.layout(t, p.resumeStage, p.resumeStep+1, b)
	} else {
		end = p.closeStage(t, p.stageNode)
		end = p.layout(end, p.resumeStage+1, 0, b)
	}
	if p.waiting != nil {
		// Another input further on: the build waits again.
		b.duration = end.Sub(b.start)
		p.emitUntil(b, t, false)
		return
	}
	p.say(end, nil, pipeLine(p.newID(), "End of Pipeline"))
	b.result = p.result()
	b.duration = end.Sub(b.start)
	if !end.After(t) {
		p.emitUntil(b, end, true)
		b.building = false
		b.finishLog()
		return
	}
	p.emitUntil(b, t, false)
	s.running = append(s.running, b)
}

// interrupt is the build being stopped at t (WorkflowRun.doStop): what
// runs or waits ends ABORTED, what was planned after t never happens.
func (p *pipeRun) interrupt(t time.Time) {
	p.aborted = true
	p.waiting = nil
	kept := p.nodes[:0]
	for _, n := range p.nodes {
		if n.start.After(t) {
			continue
		}
		if n.waiting || n.end.IsZero() || n.end.After(t) {
			n.waiting, n.end, n.result = false, t, "ABORTED"
		}
		kept = append(kept, n)
	}
	p.nodes = kept
	evs := p.events[:p.emitted]
	p.events = evs
}
