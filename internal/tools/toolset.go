// Package tools defines Butler's MCP tools (docs/tools.md) and the one wrapper
// every tool call passes through.
//
// Tools are thin: they declare typed input and output structs (the JSON
// schemas are derived from them), say which job a call is about, and call
// Jenkins as the user. Everything else happens in the wrapper, in this
// order, for every tool: decode and validate the arguments, canonicalize the
// job path, ask the authorizer, fetch the user's Jenkins credential, run the
// tool, map any error to a tool error, and write exactly one audit record.
// No tool can skip a step because no tool is registered any other way.
package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/telemetry"
)

// Deps are the collaborators the tools need.
type Deps struct {
	Jenkins     *jenkins.Client
	Credentials credentials.Source
	Authorizer  *authz.Authorizer
	Audit       audit.Recorder
	// Scope returns the scope of a call: who it acts for, its request id
	// and the client's address. Over HTTP it is the scope the chain made
	// (request.FromExtra); in stdio mode, FixedPrincipal's.
	Scope func(ctx context.Context, extra *mcp.RequestExtra) *request.Scope
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Version is Butler's version, reported by health.
	Version string
	// ConnectURL is where a user links their Jenkins account (public_url +
	// /connect); empty in stdio mode.
	ConnectURL string
	// PollInterval is the first interval at which trigger_job polls the
	// queue while waiting for a build to start; it doubles up to four
	// times that. Default 250ms (so at most one poll a second).
	PollInterval time.Duration
	// Admit, if set, says whether a call may run at all: the audit log
	// must be able to take its record (audit.Writer.Accepting). A call it
	// refuses is answered unavailable before anything else happens.
	Admit func() error
	// Limiter, if set, bounds each user's calls (docs/tools.md rate_limited).
	Limiter ratelimit.Limiter
	// Observe, if set, is told of every call's outcome (for metrics).
	Observe func(tool, outcome, code string, d time.Duration)
	Logger  *slog.Logger
	// TracerProvider, if set, records a span for every call and its
	// policy decisions and credential lookup (tracing.go). Nil: tracing
	// off, and a caller's trace context is ignored.
	TracerProvider trace.TracerProvider
}

// Toolset is the set of Butler's tools, bound to their dependencies.
type Toolset struct {
	deps Deps
	defs []*def

	// canon remembers Jenkins's spelling of job paths (see
	// canonicalTarget), per user and exact spelling asked.
	canonMu sync.Mutex
	canon   map[string]canonEntry

	listings listings

	// searches bounds the log searches running at once (searches.go).
	searches searchSlots

	// tracer starts the spans of tracing.go when tracing, that is when
	// Deps.TracerProvider was given; otherwise no span is started at all.
	tracer  trace.Tracer
	tracing bool
	// waits bounds the wait_for_build calls waiting at once; stopping is
	// closed by Shutdown, which ends them (wait.go).
	waits    waitSlots
	stopping chan struct{}
	stopOnce sync.Once
}

type canonEntry struct {
	path  jobpath.Path
	until time.Time
}

// canonTTL and canonMax bound the canonical-path cache. A stale entry can
// only make the policy judge an item under its former spelling until it
// expires; the call itself still goes to Jenkins as the user.
const (
	canonTTL = 30 * time.Second
	canonMax = 10000
)

// def is a registered tool, type-erased.
type def struct {
	tool    *mcp.Tool
	entry   catalog.Tool
	handler mcp.ToolHandler
}

// New builds the toolset. It fails only if a tool's schema cannot be
// derived, which is a programming error caught by the tests.
func New(deps Deps) (*Toolset, error) {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.PollInterval <= 0 {
		deps.PollInterval = 250 * time.Millisecond
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Audit == nil {
		deps.Audit = audit.LogRecorder{Logger: deps.Logger}
	}
	if deps.Authorizer == nil {
		return nil, fmt.Errorf("tools: an Authorizer is required")
	}
	if deps.Scope == nil {
		return nil, fmt.Errorf("tools: a Scope function is required")
	}
	t := &Toolset{deps: deps, tracing: deps.TracerProvider != nil, stopping: make(chan struct{})}
	if t.tracing {
		t.tracer = deps.TracerProvider.Tracer(telemetry.TracerName)
	}
	t.listings.now = deps.Now
	handlers := map[string]*def{}
	for _, add := range []func(*Toolset) (*def, error){
		addHealth, addTime, addWhoami,
		addListAllJobs, addGetJob, addTriggerJob,
		addGetQueueItem, addCancelQueueItem,
		addGetBuild, addGetBuildLog, addSearchBuildLog, addStopBuild, addGetTestResults,
		addListArtifacts, addGetArtifact, addGetBuildChanges,
		addGetPipelineStages, addGetStageLog, addListPendingInputs, addSubmitInput,
		addListQueue, addListNodes, addWaitForBuild,
		addDiagnoseBuild,
	} {
		d, err := add(t)
		if err != nil {
			return nil, err
		}
		if handlers[d.entry.Name] != nil {
			return nil, fmt.Errorf("tools: %s has two handlers", d.entry.Name)
		}
		handlers[d.entry.Name] = d
	}
	// The catalog decides which tools exist and in what order they are
	// listed; a catalog entry without a handler is a programming error.
	entries := catalog.All()
	if err := catalog.Check(entries); err != nil {
		return nil, err
	}
	for _, e := range entries {
		d := handlers[e.Name]
		if d == nil {
			return nil, fmt.Errorf("tools: catalog tool %s has no handler", e.Name)
		}
		t.defs = append(t.defs, d)
	}
	return t, nil
}

// FixedPrincipal returns a Scope function for a server that acts for one
// principal (stdio): every call gets that principal and a new request id.
func FixedPrincipal(p identity.Principal) func(context.Context, *mcp.RequestExtra) *request.Scope {
	return func(context.Context, *mcp.RequestExtra) *request.Scope {
		return &request.Scope{Principal: p, ID: request.NewID()}
	}
}

// Register adds every tool to s and filters tools/list by the authorizer,
// so each caller sees only the tools it may call.
func (t *Toolset) Register(s *mcp.Server) {
	for _, d := range t.defs {
		s.AddTool(d.tool, d.handler)
	}
	s.AddReceivingMiddleware(t.filterList, t.auditUnknown)
}

// auditUnknown writes the record of a tools/call naming a tool that does
// not exist: the SDK answers it before any tool wrapper runs. The record
// says catalog.Unknown, with at most 64 bytes of the name in the reason.
func (t *Toolset) auditUnknown(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		if method == "tools/call" {
			if p, ok := req.GetParams().(*mcp.CallToolParamsRaw); ok && !catalog.Known(p.Name) {
				now := t.deps.Now()
				sc := t.scope(ctx, req.GetExtra())
				sctx, span := t.startUnknownSpan(ctx, p, req.GetExtra(), sc)
				t.record(sctx, audit.Begin(now, sc, catalog.Unknown).
					Failed(now, CodeInvalidArgument, "unknown tool "+catalog.Quote(p.Name)))
				span.End()
			}
		}
		return next(ctx, method, req)
	}
}

// Names returns the tool names, in registration order.
func (t *Toolset) Names() []string {
	out := make([]string, len(t.defs))
	for i, d := range t.defs {
		out[i] = d.tool.Name
	}
	return out
}

// Tools returns the tool definitions (schemas, annotations), for docs and
// tests.
func (t *Toolset) Tools() []*mcp.Tool {
	out := make([]*mcp.Tool, len(t.defs))
	for i, d := range t.defs {
		out[i] = d.tool
	}
	return out
}

func (t *Toolset) filterList(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		res, err := next(ctx, method, req)
		if method != "tools/list" || err != nil {
			return res, err
		}
		lr, ok := res.(*mcp.ListToolsResult)
		if !ok {
			return res, err
		}
		p := t.scope(ctx, req.GetExtra()).Principal
		kept := make([]*mcp.Tool, 0, len(lr.Tools))
		for _, tool := range lr.Tools {
			if t.deps.Authorizer.Visible(ctx, p, tool.Name) {
				kept = append(kept, tool)
			}
		}
		out := *lr
		out.Tools = kept
		return &out, nil
	}
}

// target is what a call is about.
type target struct {
	job      jobpath.Path // zero when the call names no job
	hasJob   bool
	queueID  int64  // the queue item a queue tool names
	resource string // for the audit record
	// what names the target in error messages ("job \"a/b\"").
	what string
	// params are build parameters, for the policy's context.
	params map[string]any
	// detail, when set, is appended to resource in the audit record: what
	// else the call was about (an input step's id, the action, the
	// parameter names, never values).
	detail string
	// summary, when set, says what the call does in a confirmation
	// question (before "as <user>").
	summary string
	// queued is the queue item canonicalTarget read to learn its job, if
	// it did: a tool may take it as its own first look.
	queued *jenkins.QueueItem
}

// auditResource is the audit record's resource.
func (tg target) auditResource() string { return tg.resource + tg.detail }

func jobTarget(raw string) (target, error) {
	p, err := jobpath.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("job: %w", err)
	}
	return target{job: p, hasJob: true, resource: p.String(), what: fmt.Sprintf("job %q", p.String())}, nil
}

// call is what a tool's run function gets besides its input.
type call struct {
	principal identity.Principal
	cred      jenkins.Credential
	requestID string
	target    target
	req       *mcp.CallToolRequest
	// resolved is what the tool's resolve step read, for its run step.
	resolved any
}

// prepared is a call whose arguments are decoded and checked.
type prepared struct {
	target target
	// resolve, when set, reads from Jenkins (as the user, reads only) what
	// the decision needs beyond the arguments and returns the policy
	// context's parameters; the call is decided on them before run.
	resolve func(ctx context.Context, c *call) (map[string]any, error)
	exec    func(ctx context.Context, c *call) (any, error)
}

// spec is one tool's code: its catalog entry (by name) holds everything
// else about it.
type spec[In, Out any] struct {
	name string
	// input adjusts the derived input schema: bounds, defaults, enums.
	input func(s *jsonschema.Schema)
	// target validates the input further and names what the call is about.
	target func(in *In) (target, error)
	// resolve, when set, reads what the policy must see beyond the
	// arguments (a trigger's effective parameters) and returns the policy
	// context's parameters; what it sets in c.resolved reaches run.
	resolve func(ctx context.Context, c *call, in *In) (map[string]any, error)
	run     func(ctx context.Context, c *call, in *In) (*Out, error)
}

func add[In, Out any](t *Toolset, s spec[In, Out]) (*def, error) {
	entry, ok := catalog.Lookup(s.name)
	if !ok {
		return nil, fmt.Errorf("tools: %s is not in the catalog", s.name)
	}
	in, err := jsonschema.For[In](nil)
	if err != nil {
		return nil, fmt.Errorf("tools: %s input schema: %w", s.name, err)
	}
	if in.Properties == nil {
		in.Properties = map[string]*jsonschema.Schema{}
	}
	if s.input != nil {
		s.input(in)
	}
	resolved, err := in.Resolve(nil)
	if err != nil {
		return nil, fmt.Errorf("tools: %s input schema: %w", s.name, err)
	}
	result, err := jsonschema.For[Out](nil)
	if err != nil {
		return nil, fmt.Errorf("tools: %s output schema: %w", s.name, err)
	}
	// A failed call's structuredContent is {"error": {...}} (docs/tools.md);
	// the output schema admits it, so clients that validate structured
	// content against the schema (the TypeScript SDK does, even when
	// isError is set) still hand the error to the model.
	errShape, err := jsonschema.For[errorResult](nil)
	if err != nil {
		return nil, fmt.Errorf("tools: error schema: %w", err)
	}
	out := &jsonschema.Schema{Type: "object", AnyOf: []*jsonschema.Schema{result, errShape}}
	portableNullable(out)
	destructive, openWorld := entry.Destructive, entry.OpenWorld
	tool := &mcp.Tool{
		Name:         entry.Name,
		Title:        entry.Title,
		Description:  entry.Description,
		InputSchema:  in,
		OutputSchema: out,
		Annotations: &mcp.ToolAnnotations{
			Title:           entry.Title,
			ReadOnlyHint:    entry.ReadOnly,
			DestructiveHint: &destructive,
			IdempotentHint:  entry.Idempotent,
			OpenWorldHint:   &openWorld,
		},
	}
	d := &def{tool: tool, entry: entry}
	d.handler = func(ctx context.Context, req *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return t.invoke(ctx, req, entry, func(ctx context.Context) (prepared, error) {
			v, err := decodeArgs[In](req.Params.Arguments, resolved)
			if err != nil {
				return prepared{}, err
			}
			var pp prepared
			if s.target != nil {
				if pp.target, err = s.target(v); err != nil {
					return prepared{}, err
				}
			}
			if s.resolve != nil {
				pp.resolve = func(ctx context.Context, c *call) (map[string]any, error) { return s.resolve(ctx, c, v) }
			}
			pp.exec = func(ctx context.Context, c *call) (any, error) {
				o, err := s.run(ctx, c, v)
				if err != nil {
					return nil, err
				}
				return o, nil
			}
			return pp, nil
		})
	}
	return d, nil
}

// decodeArgs validates raw arguments against the input schema, with
// defaults applied, and decodes them.
func decodeArgs[In any](raw json.RawMessage, resolved *jsonschema.Resolved) (*In, error) {
	m := map[string]any{}
	if trimmed := bytes.TrimSpace(raw); len(trimmed) > 0 && string(trimmed) != "null" {
		if err := json.Unmarshal(trimmed, &m); err != nil {
			return nil, Errorf(CodeInvalidArgument, "arguments must be a JSON object")
		}
	}
	if err := checkArgs(resolved.Schema(), m); err != nil {
		return nil, Errorf(CodeInvalidArgument, "%v", err)
	}
	if err := resolved.ApplyDefaults(&m); err != nil {
		return nil, Errorf(CodeInvalidArgument, "arguments: %s", schemaMessage(err))
	}
	if err := resolved.Validate(m); err != nil {
		return nil, Errorf(CodeInvalidArgument, "arguments: %s", schemaMessage(err))
	}
	data, err := json.Marshal(m)
	if err != nil {
		return nil, Errorf(CodeInvalidArgument, "arguments cannot be encoded")
	}
	v := new(In)
	if err := json.Unmarshal(data, v); err != nil {
		return nil, Errorf(CodeInvalidArgument, "arguments: %v", err)
	}
	return v, nil
}

// schemaMessage shortens a jsonschema validation error to its useful part.
func schemaMessage(err error) string {
	s := err.Error()
	s = strings.ReplaceAll(s, "validating root: ", "")
	s = strings.ReplaceAll(s, "validating /properties/", "")
	return s
}

// scope returns the call's scope. A call that reaches a tool without one
// (a transport that did not go through the HTTP chain) acts as a guest,
// which can call only guest tools: it fails closed.
func (t *Toolset) scope(ctx context.Context, extra *mcp.RequestExtra) *request.Scope {
	if s := t.deps.Scope(ctx, extra); s != nil {
		return s
	}
	return &request.Scope{Principal: identity.Guest(), ID: request.NewID()}
}

// invoke is the wrapper every tool call passes through.
func (t *Toolset) invoke(ctx context.Context, req *mcp.CallToolRequest, entry catalog.Tool,
	prepare func(context.Context) (prepared, error)) (*mcp.CallToolResult, error) {
	start := t.deps.Now()
	sc := t.scope(ctx, req.GetExtra())
	ctx, span := t.startCallSpan(ctx, req, entry, sc)
	defer span.End()
	ctx = request.NewContext(ctx, sc)
	if sc.Done != nil {
		// A call whose client went away stops (request.Scope.Done).
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-sc.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	rec := audit.Begin(start, sc, entry.Name)
	out, tg, v, err := t.run(ctx, req, sc, entry, prepare)
	rec.Resource(tg.auditResource())
	if err == nil && v.ask != nil {
		// 2026-07-28: the person is asked through the client, which calls
		// again with the answer; this round ran nothing that changes
		// Jenkins. Its record says so, and the retry gets its own.
		t.record(ctx, rec.Denied(t.deps.Now(), CodeConfirmationRequired, "asked the person to confirm; the client calls again with the answer"))
		return v.ask, nil
	}
	var res *mcp.CallToolResult
	if err == nil {
		res, err = success(out)
	}
	if err == nil {
		r := rec.Allowed(t.deps.Now(), v.policies)
		if v.confirmed {
			// CONTRACT §13: the audit record says confirmed.
			r.Reason = "confirmed; " + r.Reason
		}
		t.record(ctx, r)
		return res, nil
	}
	te := t.mapError(err, tg.whatOr(entry.Name), sc.ID)
	if te.Code == CodeInternal {
		t.deps.Logger.ErrorContext(ctx, "tool failed", "tool", entry.Name, "request_id", sc.ID, "err", err)
	}
	te.RequestID = sc.ID
	if IsDenial(te.Code) {
		t.record(ctx, rec.Denied(t.deps.Now(), te.Code, te.Message))
	} else {
		t.record(ctx, rec.Failed(t.deps.Now(), te.Code, te.Message))
	}
	if te.Code == CodeNotLinked && te.ConnectURL != "" && supportsURLElicitation(req) {
		// Ask the client to open the link page for the user instead of
		// failing silently.
		ask := &mcp.ElicitParams{
			Mode:          "url",
			URL:           te.ConnectURL,
			ElicitationID: sc.ID,
			Message:       "Butler needs your Jenkins API token to act as you in Jenkins. Open this page to link your Jenkins account, then retry.",
		}
		if !multiRoundTrip(req) {
			// MCP 2025-11-25: the URLElicitationRequiredError (-32042).
			return nil, mcp.URLElicitationRequiredError([]*mcp.ElicitParams{ask})
		}
		// 2026-07-28 and later: an input-required result; the client
		// opens the page and calls again, and the retry runs the whole
		// call anew (linked by then, it succeeds). A person who declined
		// or cancelled opening the page gets the plain answer.
		if !answeredConnect(req) {
			return &mcp.CallToolResult{InputRequests: mcp.InputRequestMap{connectInputKey: ask}}, nil
		}
	}
	return failure(te), nil
}

// connectInputKey names the link-page request in a 2026-07-28
// input-required result.
const connectInputKey = "butler_connect"

// answeredConnect reports whether the call is the retry of one that asked
// the client to open the link page, and the person did not accept.
func answeredConnect(req *mcp.CallToolRequest) bool {
	if req.Params == nil || req.Params.InputResponses == nil {
		return false
	}
	resp, ok := req.Params.InputResponses[connectInputKey]
	if !ok {
		return false
	}
	res, ok := resp.(*mcp.ElicitResult)
	return !ok || res.Action != "accept"
}

// supportsURLElicitation reports whether the client declared URL-mode
// elicitation: when it initialized, or (2026-07-28) in the request.
func supportsURLElicitation(req *mcp.CallToolRequest) bool {
	if req == nil || req.Session == nil {
		return false
	}
	caps := req.ClientCapabilities()
	return caps != nil && caps.Elicitation != nil && caps.Elicitation.URL != nil
}

// record writes the call's one audit record and its metrics.
func (t *Toolset) record(ctx context.Context, rec audit.Record) {
	endCallSpan(ctx, rec)
	t.deps.Audit.Record(ctx, rec)
	if t.deps.Observe != nil {
		t.deps.Observe(rec.Tool, rec.Decision, rec.Code, time.Duration(rec.DurationMS)*time.Millisecond)
	}
}

func (tg target) whatOr(tool string) string {
	if tg.what != "" {
		return tg.what
	}
	return tool
}

// verdict is how the checks of run let a call go ahead.
type verdict struct {
	policies  []string // the ids of the policies that allowed the call
	confirmed bool     // the person confirmed it (@confirm)
	// ask, when set, is the input-required result that asks the person to
	// confirm (2026-07-28): the call has not run.
	ask *mcp.CallToolResult
}

// run takes a call through validation, the rate limit, the decision, the
// person's confirmation when a policy asks for it, and the tool itself.
//
// The decision is taken before anything reaches Jenkins whenever the
// arguments are enough to take it. It is taken (again) after Jenkins has
// been read, as the user, when they are not: a policy that names jobs or
// folders decides on Jenkins's spelling of the path (Jenkins resolves names
// case-insensitively, Cedar does not) and on a queue item's job; a policy
// that reads parameters decides a trigger on its effective parameters
// (defaults included). Nothing that changes Jenkins runs before the final
// decision.
func (t *Toolset) run(ctx context.Context, req *mcp.CallToolRequest, sc *request.Scope, entry catalog.Tool,
	prepare func(context.Context) (prepared, error)) (_ any, _ target, v verdict, err error) {
	p := sc.Principal
	var sent *jenkins.Credential // the credential Jenkins was asked with, if any
	defer func() {
		if sent != nil && errors.Is(err, jenkins.ErrUnauthorized) {
			// Jenkins refused the credential (a 401, or it ran the request
			// as anonymous), whichever request of the call found it: the
			// source drops an exchanged token and marks a stored one
			// rejected, so it is not sent again until the user links
			// again (a realm may count each one as a failed password).
			if r, ok := t.deps.Credentials.(credentials.Rejecter); ok {
				r.Rejected(ctx, p, *sent)
			}
		}
	}()
	if t.deps.Admit != nil {
		// No call runs unaudited: when the audit log can take no more
		// records, calls are refused.
		if err := t.deps.Admit(); err != nil {
			return nil, target{}, verdict{}, err
		}
	}
	pp, err := prepare(ctx)
	tg := pp.target
	if err != nil {
		return nil, tg, verdict{}, err
	}
	if err := t.limit(ctx, sc); err != nil {
		return nil, tg, verdict{}, err
	}
	// A queue tool under a policy that names jobs or folders is decided on
	// the queued item's job, which only Jenkins can tell: before asking
	// it, only authentication and scope are checked.
	final := entry.Resource == catalog.ResourceQueueItem && t.deps.Authorizer.NamesItems()
	var allowed authz.Decision // the decision that lets the call run
	if final {
		if d := t.precheck(ctx, authz.Request{Principal: p, Tool: entry.Name}); !d.Allow {
			return nil, tg, verdict{}, decisionError(d)
		}
	} else {
		d := t.authorize(ctx, p, entry, tg)
		switch {
		case !d.Allow && (pp.resolve == nil || !d.DependsOnParameters):
			return nil, tg, verdict{}, decisionError(d) // final whatever Jenkins would say
		case !d.Allow:
			final = true // effective parameters may decide otherwise
		default:
			allowed = d
		}
	}
	c := &call{principal: p, requestID: sc.ID, target: tg, req: req}
	if entry.Class == catalog.ClassRead || entry.Class == catalog.ClassSensitive {
		if p.JenkinsUser == "" {
			// jenkins.user_template gave no account for this user: no
			// credential may be used for them, stored or exchanged.
			return nil, tg, verdict{}, Errorf(CodeForbidden, "no Jenkins account for this user (jenkins.user_template gives none)")
		}
		cred, err := t.credentialFor(ctx, p)
		if err != nil {
			return nil, tg, verdict{}, err
		}
		c.cred = cred
		sent = &cred
		if t.deps.Authorizer.NamesItems() {
			canon, changed, err := t.canonicalTarget(ctx, cred, tg)
			if errors.Is(err, errUnknownQueueJob) {
				if entry.ReadOnly {
					// A reader must not learn more of an item than of a
					// missing one.
					return nil, tg, verdict{}, Errorf(CodeNotFound, "%s does not exist, or you may not see it", tg.what)
				}
				return nil, tg, verdict{}, Errorf(CodeForbidden, "cannot tell which job this queue item is for, so the policy cannot allow it")
			}
			if err != nil {
				return nil, tg, verdict{}, err
			}
			if changed {
				tg, c.target, final = canon, canon, true
			}
		}
		if pp.resolve != nil {
			params, err := pp.resolve(ctx, c)
			if err != nil {
				return nil, tg, verdict{}, err
			}
			tg.params, c.target.params, final = params, params, true
		}
	}
	if final {
		if allowed = t.authorize(ctx, p, entry, tg); !allowed.Allow {
			return nil, tg, verdict{}, decisionError(allowed)
		}
	}
	v.policies = allowed.Policies
	if allowed.NeedsConfirmation() {
		// Last, so that the person is asked about the call as it will run
		// (the canonical job, the effective parameters), and only about a
		// call every other check allows; before anything changes Jenkins.
		ask, err := t.confirm(ctx, req, p, entry, tg, allowed)
		if err != nil || ask != nil {
			return nil, tg, verdict{ask: ask}, err
		}
		v.confirmed = true
	}
	out, err := pp.exec(ctx, c)
	return out, tg, v, err
}

// authorize asks the authorizer about one target.
func (t *Toolset) authorize(ctx context.Context, p identity.Principal, entry catalog.Tool, tg target) authz.Decision {
	return t.decide(ctx, authz.Request{
		Principal: p, Tool: entry.Name, Job: tg.job.String(), Parameters: tg.params,
	})
}

// decisionError is the tool error of a denial.
func decisionError(dec authz.Decision) error {
	e := Errorf(dec.Code, "%s", dec.Reason)
	if dec.Code == authz.CodeInsufficientScope {
		e.RequiredScopes = dec.RequiredScopes
	}
	return e
}

// errUnknownQueueJob: Jenkins did not say which job a queue item is for.
var errUnknownQueueJob = errors.New("the queue item's job is unknown")

// canonicalTarget returns tg with the path Jenkins itself uses: the
// item's fullName, or for a queue item, its job. changed is false when
// there is nothing to resolve or the spelling was already Jenkins's.
func (t *Toolset) canonicalTarget(ctx context.Context, cred jenkins.Credential, tg target) (target, bool, error) {
	switch {
	case tg.hasJob:
		canon, err := t.canonicalPath(ctx, cred, tg.job)
		if err != nil {
			return tg, false, err
		}
		if canon.String() == tg.job.String() {
			return tg, false, nil
		}
		out := tg
		out.job, out.resource = canon, canon.String()
		out.what = strings.Replace(tg.what, fmt.Sprintf("%q", tg.job.String()), fmt.Sprintf("%q", canon.String()), 1)
		return out, true, nil
	case tg.queueID > 0:
		q, err := t.deps.Jenkins.QueueItem(ctx, cred, tg.queueID)
		if err != nil {
			return tg, false, err
		}
		job, ok := q.JobPath()
		if !ok {
			return tg, false, errUnknownQueueJob
		}
		out := tg
		out.job, out.hasJob, out.queued = job, true, q
		out.resource = fmt.Sprintf("%s (%s)", tg.resource, job.String())
		return out, true, nil
	}
	return tg, false, nil
}

// canonicalPath is Jenkins's spelling of path, asked as the user and
// remembered for canonTTL per user and exact spelling (never folded: two
// spellings Jenkins tells apart must never share an entry).
func (t *Toolset) canonicalPath(ctx context.Context, cred jenkins.Credential, path jobpath.Path) (jobpath.Path, error) {
	key := cred.User + "\x00" + path.String()
	now := t.deps.Now()
	t.canonMu.Lock()
	e, ok := t.canon[key]
	t.canonMu.Unlock()
	if ok && now.Before(e.until) {
		return e.path, nil
	}
	canon, err := t.deps.Jenkins.CanonicalPath(ctx, cred, path)
	if err != nil {
		return jobpath.Path{}, err
	}
	t.canonMu.Lock()
	if t.canon == nil || len(t.canon) >= canonMax {
		t.canon = map[string]canonEntry{}
	}
	t.canon[key] = canonEntry{path: canon, until: now.Add(canonTTL)}
	t.canonMu.Unlock()
	return canon, nil
}

// limit spends one unit of the caller's rate limit.
func (t *Toolset) limit(ctx context.Context, sc *request.Scope) error {
	if t.deps.Limiter == nil {
		return nil
	}
	d, err := t.deps.Limiter.Allow(ctx, sc.LimitKey())
	if err != nil || d.Allowed {
		return nil // the limiter fails open: it protects Jenkins, it must not lock users out
	}
	e := Errorf(CodeRateLimited, "too many calls: wait %d s and retry", d.RetryAfterSeconds())
	e.RetryAfterSeconds = d.RetryAfterSeconds()
	return e
}

// MaxAnswerBytes bounds a tool's answer: the JSON of its result as sent,
// the structured content and its copy as text content together (CONTRACT
// §9: "any tool answer is at most 4 MiB of JSON"; a client receives both).
// Every tool pages or truncates below it by itself; this is the backstop
// that holds whatever Jenkins returns.
const MaxAnswerBytes = 4 << 20

// answerBytes is what a result carrying data (the JSON of a tool's output)
// as structured content and as text costs on the wire: data itself, and
// data again as a JSON string. data comes from json.Marshal, so it is
// valid UTF-8 with every control character and <, >, & already escaped:
// quoting it escapes only its quotes and backslashes, one more byte each.
func answerBytes(data []byte) int {
	return 2*len(data) + 2 + bytes.Count(data, []byte{'"'}) + bytes.Count(data, []byte{'\\'})
}

func success(out any) (*mcp.CallToolResult, error) {
	data, err := json.Marshal(out)
	if err != nil {
		return nil, fmt.Errorf("tools: encoding output: %w", err)
	}
	var extra []mcp.Content
	if x, ok := out.(withContent); ok {
		extra = x.extraContent()
	}
	if n := answerBytes(data) + contentBytes(extra); n > MaxAnswerBytes {
		return nil, Errorf(CodeInvalidArgument, "the answer would be %.1f MiB, over Butler's %d MiB limit: ask for less (a smaller limit or max_bytes, one folder)",
			float64(n)/(1<<20), MaxAnswerBytes>>20)
	}
	return &mcp.CallToolResult{
		Content:           append([]mcp.Content{&mcp.TextContent{Text: string(data)}}, extra...),
		StructuredContent: json.RawMessage(data),
	}, nil
}

// errorResult is the structured content of a failed call.
type errorResult struct {
	Error *Error `json:"error"`
}

func failure(e *Error) *mcp.CallToolResult {
	return &mcp.CallToolResult{
		IsError:           true,
		Content:           []mcp.Content{&mcp.TextContent{Text: e.Code + ": " + e.Message}},
		StructuredContent: errorResult{Error: e},
	}
}

// Helpers for schema adjustments.

func prop(s *jsonschema.Schema, name string) *jsonschema.Schema {
	p, ok := s.Properties[name]
	if !ok {
		panic(fmt.Sprintf("tools: schema has no property %q", name))
	}
	return p
}

func bounds(s *jsonschema.Schema, name string, lo, hi float64) {
	p := prop(s, name)
	p.Minimum, p.Maximum = &lo, &hi
}

func setDefault(s *jsonschema.Schema, name string, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	prop(s, name).Default = data
}
