package jenkinstest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// The Pipeline endpoints of a build: pipeline-stage-view's wfapi (run
// and node descriptions, node logs, pending inputs), workflow-api's step
// logs (a step's LogAction at execution/node/<id>/log) and the input
// step's answers (input/<id>/...). Only a Pipeline build (WorkflowRun)
// has them: the actions are added to WorkflowRun alone, so a freestyle
// build answers 404.
//
// pipeline-stage-view: rest-api/src/main/java/com/cloudbees/workflow/rest/
// endpoints/RunAPI.java (doDescribe, doPendingInputActions), FlowNodeAPI.java
// (doDescribe, doLog), external/RunExt.java, StageNodeExt.java,
// AtomFlowNodeExt.java, FlowNodeLogExt.java, PendingInputActionsExt.java,
// InputParameterDefExt.java; util/JsonResponse.java (Content-Type).
// pipeline-input-step: src/main/java/org/jenkinsci/plugins/workflow/support/
// steps/input/InputStepExecution.java (doProceed, doProceedEmpty, doSubmit,
// doAbort, canSettle, preSubmissionCheck, preAbortCheck).
// workflow-support: src/main/java/org/jenkinsci/plugins/workflow/support/
// actions/LogStorageAction.java (getLogText: LogStorage.stepLog).

// wfapiJSON is JsonResponse's Content-Type.
const wfapiJSON = "application/json; charset=UTF-8"

// maxNodeLogChars is FlowNodeLogExt.MAX_RETURN_CHARS: wfapi/log returns
// only the last 10 KiB of a step's log.
const maxNodeLogChars = 10 * 1024

// maxChildNodes is StageNodeExt.MAX_CHILD_NODES: a stage's description
// lists at most its first 100 steps.
const maxChildNodes = 100

// SetUserGroups sets the groups the security realm gives a user (the
// authorities of their Authentication, besides "authenticated"), as an
// input step's submitter list may name them.
func (s *Server) SetUserGroups(id string, groups ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.users[idKey(id)]; u != nil {
		u.groups = append([]string(nil), groups...)
	}
}

// routePipeline serves the Pipeline endpoints below a build; nil when rest
// is none of them.
func (s *Server) routePipeline(rc *reqCtx, b *build, p perm, rest []string) *reply {
	if b.pipe == nil || len(rest) == 0 {
		return nil
	}
	switch {
	case is(rest, "wfapi"), is(rest, "wfapi", "describe"):
		return api(rc, func() *reply { return jsonReply(s.runExt(rc, b)) })
	case is(rest, "wfapi", "pendingInputActions"):
		return api(rc, func() *reply { return jsonReply(s.pendingInputs(rc, b)) })
	case len(rest) >= 4 && rest[0] == "execution" && rest[1] == "node":
		n := b.pipe.node(rest[2])
		if n == nil || !n.started(rc.now) {
			return notFound()
		}
		switch tail := rest[3:]; {
		case is(tail, "wfapi"), is(tail, "wfapi", "describe"):
			return api(rc, func() *reply {
				if n.stage {
					return jsonReply(s.stageExt(rc, b, n, true))
				}
				return jsonReply(s.atomExt(rc, b, n))
			})
		case is(tail, "wfapi", "log"):
			return api(rc, func() *reply { return jsonReply(s.nodeLogExt(rc, b, n)) })
		case is(tail, "log"):
			if n.stage || !hasLog(n) {
				return notFound()
			}
			return api(rc, func() *reply { return htmlPage(n.name + " Console") })
		case is(tail, "log", "logText", "progressiveText"):
			if n.stage || !hasLog(n) {
				return notFound()
			}
			return api(rc, func() *reply { return progressiveBytes(rc, n.log, n.open(rc.now)) })
		}
		return notFound()
	case len(rest) == 3 && rest[0] == "input":
		return s.inputAnswer(rc, b, p, rest[1], rest[2])
	}
	return nil
}

func jsonReply(v any) *reply {
	data, err := json.Marshal(v)
	if err != nil {
		return textReply(http.StatusInternalServerError, err.Error())
	}
	return newReply(http.StatusOK, wfapiJSON, data)
}

// hasLog: the step asked for a listener, so it has a LogStorageAction.
func hasLog(n *flowNode) bool { return n.input != nil || len(n.log) > 0 || !n.stage && n.fn != "" }

// progressiveBytes is AnnotatedLargeText.doProgressiveText over a step's
// log, with the rules of the build's progressiveText (handlers.go).
func progressiveBytes(rc *reqCtx, log []byte, running bool) *reply {
	length := int64(len(log))
	start, err := strconv.ParseInt(rc.r.URL.Query().Get("start"), 10, 64)
	if err != nil || start < 0 || start > length {
		start = 0
	}
	end := length
	if running {
		end = writtenEnd(log, start)
	}
	var src = bytes.NewReader(clone(log[start:end]))
	size := length
	var body = newLineEndReader(src)
	if !rawProgressiveText(rc.s.version) {
		body = newLineEndReader(newPlainTextReader(src, false))
		size = end
	}
	rp := streamReply(http.StatusOK, "text/plain;charset=UTF-8", body)
	rp.header.Set("X-Text-Size", strconv.FormatInt(size, 10))
	if running {
		rp.header.Set("X-More-Data", "true")
	}
	return rp
}

type wfLink struct {
	Href string `json:"href"`
}

type wfLinks struct {
	Self                   wfLink  `json:"self"`
	Log                    *wfLink `json:"log,omitempty"`
	Console                *wfLink `json:"console,omitempty"`
	PendingInputActions    *wfLink `json:"pendingInputActions,omitempty"`
	NextPendingInputAction *wfLink `json:"nextPendingInputAction,omitempty"`
}

type wfError struct {
	Message string `json:"message"`
	Type    string `json:"type"`
}

// wfNode is FlowNodeExt (and the fields of its subclasses).
type wfNode struct {
	Links               wfLinks   `json:"_links"`
	ID                  string    `json:"id"`
	Name                string    `json:"name"`
	ExecNode            string    `json:"execNode"`
	Status              string    `json:"status"`
	Error               *wfError  `json:"error,omitempty"`
	StartTimeMillis     int64     `json:"startTimeMillis"`
	DurationMillis      int64     `json:"durationMillis"`
	PauseDurationMillis int64     `json:"pauseDurationMillis"`
	StageFlowNodes      *[]wfNode `json:"stageFlowNodes,omitempty"`
	ParentNodes         []string  `json:"parentNodes,omitempty"`
}

type wfRun struct {
	Links               wfLinks  `json:"_links"`
	ID                  string   `json:"id"`
	Name                string   `json:"name"`
	Status              string   `json:"status"`
	StartTimeMillis     int64    `json:"startTimeMillis"`
	EndTimeMillis       int64    `json:"endTimeMillis"`
	DurationMillis      int64    `json:"durationMillis"`
	QueueDurationMillis int64    `json:"queueDurationMillis"`
	PauseDurationMillis int64    `json:"pauseDurationMillis"`
	Stages              []wfNode `json:"stages"`
}

// wfPath is the path of b's item below the root, for the _links, as
// ModelUtil.getFullItemUrl makes them: the context path, then the item's
// URL.
func (rc *reqCtx) wfPath(b *build) string { return rc.s.prefix + "/" + buildPath(b) }

// statusExt is StatusExt of a node at now.
func statusExt(n *flowNode, now time.Time) string {
	switch {
	case n.waiting:
		return "PAUSED_PENDING_INPUT"
	case n.open(now):
		return "IN_PROGRESS"
	}
	switch n.result {
	case "FAILURE":
		return "FAILED"
	case "UNSTABLE", "ABORTED", "NOT_EXECUTED":
		return n.result
	}
	return "SUCCESS"
}

func millis(d time.Duration) int64 { return d.Milliseconds() }

func (n *flowNode) durationAt(now time.Time) time.Duration {
	if n.open(now) {
		return now.Sub(n.start)
	}
	return n.end.Sub(n.start)
}

func (n *flowNode) pauseAt(now time.Time) time.Duration {
	if n.waiting {
		return now.Sub(n.start)
	}
	return n.pause
}

// runExt is RunExt.createNew wrapped (doDescribe without fullStages):
// stages without their stageFlowNodes, in start order.
func (s *Server) runExt(rc *reqCtx, b *build) wfRun {
	self := rc.wfPath(b) + "wfapi/"
	r := wfRun{Links: wfLinks{Self: wfLink{self + "describe"}}, ID: strconv.Itoa(b.number), Name: "#" + strconv.Itoa(b.number),
		StartTimeMillis: b.start.UnixMilli(), Stages: []wfNode{}}
	p := b.pipe
	switch {
	case !b.building:
		r.Status = statusOfResult(b.result)
		r.EndTimeMillis = b.start.Add(b.duration).UnixMilli()
	case p.waiting != nil:
		r.Status = "PAUSED_PENDING_INPUT"
		r.EndTimeMillis = rc.now.UnixMilli()
	default:
		r.Status = "IN_PROGRESS"
		r.EndTimeMillis = rc.now.UnixMilli()
	}
	if p.waiting != nil && b.building {
		r.Links.PendingInputActions = &wfLink{self + "pendingInputActions"}
		r.Links.NextPendingInputAction = &wfLink{self + "nextPendingInputAction"}
	}
	r.DurationMillis = max(0, r.EndTimeMillis-r.StartTimeMillis)
	for _, n := range p.nodes {
		if n.stage && n.started(rc.now) {
			r.Stages = append(r.Stages, s.stageExt(rc, b, n, false))
		}
	}
	return r
}

// statusOfResult is StatusExt.valueOf(Result).
func statusOfResult(r string) string {
	switch r {
	case "NOT_BUILT":
		return "NOT_EXECUTED"
	case "FAILURE":
		return "FAILED"
	case "ABORTED", "UNSTABLE":
		return r
	}
	return "SUCCESS"
}

func (s *Server) nodeBase(rc *reqCtx, b *build, n *flowNode) wfNode {
	base := rc.wfPath(b) + "execution/node/" + strconv.Itoa(n.id) + "/"
	out := wfNode{Links: wfLinks{Self: wfLink{base + "wfapi/describe"}}, ID: strconv.Itoa(n.id), Name: n.name,
		Status: statusExt(n, rc.now), StartTimeMillis: n.start.UnixMilli(), DurationMillis: millis(n.durationAt(rc.now)),
		PauseDurationMillis: millis(n.pauseAt(rc.now))}
	if out.Status == "NOT_EXECUTED" {
		out.StartTimeMillis, out.DurationMillis = 0, 0
	}
	if n.errType != "" && out.Status != "NOT_EXECUTED" {
		out.Error = &wfError{Message: n.errMsg, Type: n.errType}
	}
	return out
}

// stageExt is StageNodeExt: with its stageFlowNodes when full (a node
// description), without them in a run description (ChildHidingWrapper).
func (s *Server) stageExt(rc *reqCtx, b *build, st *flowNode, full bool) wfNode {
	out := s.nodeBase(rc, b, st)
	var pause time.Duration
	var steps []wfNode
	for _, n := range b.pipe.nodes {
		if n.stage || n.parent != st || !n.started(rc.now) {
			continue
		}
		pause += n.pauseAt(rc.now)
		if len(steps) < maxChildNodes {
			steps = append(steps, s.atomExt(rc, b, n))
		}
	}
	out.PauseDurationMillis = millis(pause)
	for _, n := range b.pipe.nodes {
		if n.parent == st && n.waiting {
			// StatusAndTiming.computeChunkStatus: a chunk whose run waits
			// for input in it is PAUSED_PENDING_INPUT.
			out.Status = "PAUSED_PENDING_INPUT"
		}
	}
	if full {
		if steps == nil {
			steps = []wfNode{}
		}
		out.StageFlowNodes = &steps
	}
	return out
}

// atomExt is AtomFlowNodeExt: a step, with its log links once it ran.
func (s *Server) atomExt(rc *reqCtx, b *build, n *flowNode) wfNode {
	out := s.nodeBase(rc, b, n)
	if hasLog(n) && out.Status != "NOT_EXECUTED" {
		base := rc.wfPath(b) + "execution/node/" + strconv.Itoa(n.id) + "/"
		out.Links.Log = &wfLink{base + "wfapi/log"}
		out.Links.Console = &wfLink{base + "log"}
	}
	for _, id := range n.parents {
		out.ParentNodes = append(out.ParentNodes, strconv.Itoa(id))
	}
	if out.ParentNodes == nil {
		out.ParentNodes = []string{}
	}
	return out
}

type wfNodeLog struct {
	NodeID     string `json:"nodeId"`
	NodeStatus string `json:"nodeStatus"`
	Length     int64  `json:"length"`
	HasMore    bool   `json:"hasMore"`
	Text       string `json:"text,omitempty"`
	ConsoleURL string `json:"consoleUrl"`
}

// nodeLogExt is FlowNodeLogExt.create: the last 10 KiB of the step's log
// as HTML (AnnotatedLargeText.writeHtmlTo: console notes rendered as
// markup, the text escaped), which is why Butler never reads logs here.
func (s *Server) nodeLogExt(rc *reqCtx, b *build, n *flowNode) wfNodeLog {
	status := "SUCCESS"
	switch n.result {
	case "FAILURE":
		status = "FAILED"
	case "ABORTED":
		status = "ABORTED"
	}
	out := wfNodeLog{NodeID: strconv.Itoa(n.id), NodeStatus: status,
		ConsoleURL: rc.wfPath(b) + "execution/node/" + strconv.Itoa(n.id) + "/log"}
	if !hasLog(n) {
		out.ConsoleURL = ""
		return out
	}
	logLen := int64(len(n.log))
	out.Length = min(maxNodeLogChars, logLen)
	out.HasMore = logLen > maxNodeLogChars
	if logLen > 0 {
		out.Text = htmlEscape(string(stripNotes(nil, n.log[logLen-out.Length:])))
	}
	return out
}

type wfInputParam struct {
	Type        string         `json:"type"`
	Name        string         `json:"name"`
	Description string         `json:"description,omitempty"`
	Definition  map[string]any `json:"definition"`
}

type wfPendingInput struct {
	ID                  string         `json:"id"`
	ProceedText         string         `json:"proceedText,omitempty"`
	Message             string         `json:"message"`
	Inputs              []wfInputParam `json:"inputs"`
	ProceedURL          string         `json:"proceedUrl"`
	AbortURL            string         `json:"abortUrl"`
	RedirectApprovalURL string         `json:"redirectApprovalUrl"`
}

// pendingInputs is RunAPI.doPendingInputActions: the inputs the build
// waits for. The submitter is not among what it exports.
func (s *Server) pendingInputs(rc *reqCtx, b *build) []wfPendingInput {
	out := []wfPendingInput{}
	n := b.pipe.waiting
	if n == nil || !b.building {
		return out
	}
	in := n.input
	id := inputID(in)
	run := rc.wfPath(b)
	pi := wfPendingInput{ID: id, ProceedText: okText(in), Message: in.Message, Inputs: []wfInputParam{},
		ProceedURL:          run + "wfapi/inputSubmit?inputId=" + url.QueryEscape(id),
		AbortURL:            run + "input/" + url.PathEscape(id) + "/abort",
		RedirectApprovalURL: run + "input/"}
	for _, d := range in.Params {
		pi.Inputs = append(pi.Inputs, wfInputParam{Type: defType(d.Type), Name: d.Name, Description: d.Description, Definition: definitionMap(d)})
	}
	return append(out, pi)
}

// definitionMap is InputParameterDefExt.toDefinitionMap: defaultVal for
// boolean, string, password (its default in clear: the plugin exports
// it) and choice parameters, and a choice's choices.
func definitionMap(d Param) map[string]any {
	m := map[string]any{}
	switch d.Type {
	case "boolean", "string", "password":
		m["defaultVal"] = d.Default
	case "choice":
		m["defaultVal"] = d.Choices[0]
		m["choices"] = d.Choices
	}
	return m
}

// inputExec is the waiting input of b, as InputAction exports it in the
// build's api/json (InputAction.getExecutions, InputStepExecution.getId
// and getInput, InputStep's exported getters).
type inputExec struct {
	b *build
	n *flowNode
}

// inputActionOf is b's InputAction, for the build's actions: present
// once an input step ran, holding the executions still waiting.
func inputActionOf(b *build) (action, bool) {
	if b.pipe == nil {
		return action{}, false
	}
	for _, n := range b.pipe.nodes {
		if n.input != nil {
			a := action{class: "org.jenkinsci.plugins.workflow.support.steps.input.InputAction", inputs: []inputExec{}}
			if w := b.pipe.waiting; w != nil && b.building {
				a.inputs = append(a.inputs, inputExec{b: b, n: w})
			}
			return a, true
		}
	}
	return action{}, false
}

// inputActionProps are InputAction's exported properties, for the
// action schema.
func inputActionProps(sc *schema) []prop[action] {
	has := func(a action) bool { return a.inputs != nil }
	step := &objType[inputExec]{class: fixed[inputExec]("org.jenkinsci.plugins.workflow.support.steps.input.InputStep"), props: []prop[inputExec]{
		{name: "cancel", write: func(e *enc, _ inputExec, _ *tree) { e.str("Abort") }},
		{name: "id", write: func(e *enc, x inputExec, _ *tree) { e.str(inputID(x.n.input)) }},
		{name: "message", write: func(e *enc, x inputExec, _ *tree) { e.str(x.n.input.Message) }},
		{name: "ok", write: func(e *enc, x inputExec, _ *tree) { e.str(okText(x.n.input)) }},
		{name: "parameters", write: func(e *enc, x inputExec, t *tree) {
			writeArray(e, x.n.input.Params, t, func(e *enc, p Param) { writeObject(e, sc.paramDef, p, t) })
		}},
		{name: "submitter", write: func(e *enc, x inputExec, _ *tree) { e.strOrNull(x.n.input.Submitter) }},
		{name: "submitterParameter", write: func(e *enc, x inputExec, _ *tree) { e.strOrNull(x.n.input.SubmitterParameter) }},
	}}
	exec := &objType[inputExec]{class: fixed[inputExec]("org.jenkinsci.plugins.workflow.support.steps.input.InputStepExecution"), props: []prop[inputExec]{
		{name: "displayName", write: func(e *enc, x inputExec, _ *tree) {
			m := x.n.input.Message
			if len(m) >= 32 {
				m = m[:32] + "..."
			}
			e.str(m)
		}},
		{name: "id", write: func(e *enc, x inputExec, _ *tree) { e.str(inputID(x.n.input)) }},
		{name: "input", write: func(e *enc, x inputExec, t *tree) { writeObject(e, step, x, t) }},
		{name: "settled", write: func(e *enc, _ inputExec, _ *tree) { e.boolean(false) }},
	}}
	return []prop[action]{
		{name: "executions", has: has, write: func(e *enc, a action, t *tree) {
			writeArray(e, a.inputs, t, func(e *enc, x inputExec) { writeObject(e, exec, x, t) })
		}},
		{name: "waitingForInput", has: has, write: func(e *enc, a action, _ *tree) { e.boolean(len(a.inputs) > 0) }},
	}
}

// authorities are the names canSettle compares with the submitter list:
// the user's id (with the user id strategy) and their authorities (with
// the group id strategy): their groups and "authenticated". Jenkins's
// default strategies compare case-insensitively.
func (rc *reqCtx) authorities() []string {
	if rc.user == nil {
		return []string{Anonymous}
	}
	return append([]string{Authenticated}, rc.user.groups...)
}

// isAdmin: Jenkins.get().hasPermission(Jenkins.ADMINISTER).
func (rc *reqCtx) isAdmin() bool { return rc.rootPerm()&pAdminister != 0 }

// canSettle is InputStepExecution.canSettle: without a submitter list,
// Item.Build on the job; with one, an administrator, or a user whose id
// or one of whose authorities is in the list (comma-separated, each
// trimmed, compared case-insensitively by the default IdStrategy).
func (rc *reqCtx) canSettle(in *InputSpec, p perm) bool {
	if in.Submitter == "" {
		return p&pBuild != 0
	}
	if rc.isAdmin() {
		return true
	}
	for _, sub := range strings.Split(in.Submitter, ",") {
		sub = strings.TrimSpace(sub)
		if idKey(rc.name()) == idKey(sub) {
			return true
		}
		for _, a := range rc.authorities() {
			if strings.EqualFold(a, sub) {
				return true
			}
		}
	}
	return false
}

// failure is hudson.model.Failure as Jenkins renders it: the error view
// (AbstractModelObject/error.jelly) sets status 400 and X-Error to the
// message. Jenkins: core/src/main/java/hudson/model/Failure.java,
// core/src/main/resources/hudson/model/AbstractModelObject/error.jelly.
func failure(msg string) *reply {
	rp := newReply(http.StatusBadRequest, "text/html;charset=utf-8", []byte(
		"<!DOCTYPE html><html><head><title>Jenkins</title></head><body><h1>Error</h1><p>"+htmlEscape(msg)+"</p></body></html>\n"))
	rp.header.Set("X-Error", msg)
	return rp
}

// oops is Jenkins's 500 page for an exception out of a web method
// (an IllegalArgumentException from ParameterDefinition.createValue, a
// form without its json field).
func oops(msg string) *reply {
	return newReply(http.StatusInternalServerError, "text/html;charset=utf-8", []byte(
		"<!DOCTYPE html><html><head><title>Jenkins [Jenkins]</title></head><body><h1>Oops!</h1>"+
			"<p>A problem occurred while processing the request.</p><pre>"+htmlEscape(msg)+"</pre></body></html>\n"))
}

// inputAnswer is POST input/<id>/<verb>: InputAction.getDynamic(id) finds
// the waiting execution (404 when none has that id), then its doProceed,
// doProceedEmpty, doSubmit or doAbort.
func (s *Server) inputAnswer(rc *reqCtx, b *build, p perm, id, verb string) *reply {
	w := b.pipe.waiting
	if w == nil || !b.building || inputID(w.input) != id {
		return notFound()
	}
	switch verb {
	case "proceed", "proceedEmpty", "submit", "abort":
	default:
		return notFound()
	}
	if rc.r.Method != http.MethodPost {
		// @RequirePOST.
		return methodNotAllowed("POST")
	}
	if err := parseForm(rc.r); err != nil {
		return textReply(http.StatusBadRequest, "Bad form: "+err.Error())
	}
	in := w.input
	if verb == "submit" {
		// doSubmit: proceed only when the form has a "proceed" field;
		// anything else aborts the build.
		verb = "abort"
		if hasFormValue(rc.r, "proceed") {
			verb = "proceed"
		}
	}
	if verb == "abort" {
		// preAbortCheck: Item.Cancel, or one who may settle.
		if p&pCancel == 0 && !rc.canSettle(in, p) {
			if in.Submitter != "" {
				return failure("You need to be '" + in.Submitter + "' (or have Job/Cancel permissions) to cancel this.")
			}
			return failure("You need to have Job/Cancel permissions to cancel this.")
		}
		s.settle(b, false, rc.user, rc.now)
		return newReply(http.StatusOK, "", nil)
	}
	// preSubmissionCheck.
	if !rc.canSettle(in, p) {
		if in.Submitter != "" {
			return failure("You need to be " + in.Submitter + " to submit this.")
		}
		return failure("You need to have Job/Build permissions to submit this.")
	}
	if verb == "proceed" {
		if rp := checkInputForm(rc.r, in); rp != nil {
			return rp
		}
	}
	s.settle(b, true, rc.user, rc.now)
	return newReply(http.StatusOK, "", nil)
}

// checkInputForm is InputStepExecution.parseValue's reading of the form:
// StaplerRequest.getSubmittedForm needs the "json" field; each element
// of its "parameter" (an object or an array) names a parameter of the
// step, whose definition's createValue reads "value".
func checkInputForm(r *http.Request, in *InputSpec) *reply {
	raw := formValue(r, "json")
	if raw == "" {
		return oops("javax.servlet.ServletException: This page expects a form submission but had only {}")
	}
	var form map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &form); err != nil {
		return oops("net.sf.json.JSONException: " + err.Error())
	}
	var params []map[string]any
	if pr, ok := form["parameter"]; ok {
		if err := json.Unmarshal(pr, &params); err != nil {
			var one map[string]any
			if err := json.Unmarshal(pr, &one); err != nil {
				return oops("net.sf.json.JSONException: " + err.Error())
			}
			params = []map[string]any{one}
		}
	}
	for _, jo := range params {
		name, _ := jo["name"].(string)
		var def *Param
		for i := range in.Params {
			if in.Params[i].Name == name {
				def = &in.Params[i]
			}
		}
		if def == nil {
			return oops("java.lang.IllegalArgumentException: No such parameter definition: " + name)
		}
		if def.Type == "choice" {
			v, _ := jo["value"].(string)
			ok := false
			for _, c := range def.Choices {
				ok = ok || c == v
			}
			if !ok {
				return oops("java.lang.IllegalArgumentException: Illegal choice for parameter " + name + ": " + v)
			}
		}
	}
	return nil
}
