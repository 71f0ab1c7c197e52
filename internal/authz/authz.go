// Package authz is Butler's authorization choke point. Every tools/call
// asks Decide, and tools/list asks Visible to filter, so no tool can skip a
// check.
//
// # Decision order
//
// A decision is taken in the order of docs/policy.md and the first denial is
// final:
//
//  1. Authentication: a guest reaches only guest-class tools, and a
//     non-guest must name a user (CodeUnauthenticated).
//  2. OAuth scope: the token must grant every scope Options.ToolScopes
//     returns for the tool (CodeInsufficientScope). Local (stdio)
//     principals have no token and skip this step.
//  3. Policy: one cedar.Authorize call over the Cedar policy set
//     (CodeForbidden). Deny unless some permit is satisfied and no forbid
//     is; any evaluation error in any policy is a denial too, with the
//     error in the reason.
//
// Jenkins's own permission is the last gate and is enforced by calling
// Jenkins with the user's credential, outside this package.
//
// # Entity model
//
// The policy sees (docs/policy.md):
//
//   - principal: User::"<user>" whose parents are Group::"<g>" for each
//     group of the token, or Guest::"anonymous" for a request without a
//     token. A local (stdio) principal is User::"<jenkins user>" with no
//     groups, and the policy applies to it as to anyone.
//   - action: Action::"<tool>", whose parent is Action::"write" for the
//     tools that change Jenkins (trigger_job, stop_build,
//     cancel_queue_item: the catalog's sensitive tools) and
//     Action::"read" for every other tool.
//   - resource: Job::"<canonical full path>" whose parents are
//     Folder::"<ancestor>" for each folder above it ("a/b/c" is in
//     Folder::"a" and Folder::"a/b"; Folder::"a/b" is itself in
//     Folder::"a"); for list_all_jobs with a folder, Folder::"<folder>"
//     with its ancestors; Server::"butler" when the call names no job (the
//     queue tools included: a queue item is not tied to a job here).
//   - context: {scopes: Set<String>, client_id: String, parameters:
//     Record}. parameters are a trigger's build parameters: JSON strings
//     are String, booleans Bool, integral numbers Long, other numbers the
//     String Butler sends Jenkins ("1.5"), arrays and objects the String of
//     their JSON text; null values are left out. Other tools have an empty
//     record, so a policy must test `context.parameters has X` before
//     reading X, or the evaluation error denies the call.
//
// Entity ids are matched exactly, as Cedar does: Job::"PROD/deploy" is not
// in Folder::"prod". Jenkins looks item names up without regard to case,
// so the caller must give Decide the path as Jenkins spells it (its
// fullName) before asking; this package parses the path with jobpath, so a
// path can never name another folder by its spelling ("a/../prod" is
// refused, "a%2Fb" is one segment).
package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
)

// Denial codes, as recorded in the audit log.
const (
	CodeUnauthenticated   = "unauthenticated"
	CodeInsufficientScope = "insufficient_scope"
	CodeForbidden         = "forbidden"
)

// Request is one question to the authorizer.
type Request struct {
	Principal identity.Principal
	// Tool is the tool's name; its class, action group and resource kind
	// come from the catalog. A tool the catalog does not have is denied.
	Tool string
	// Job is the canonical job path the call is about, "" when none. For
	// list_all_jobs it is the folder listed.
	Job string
	// Parameters are a trigger's build parameters (policy context).
	Parameters map[string]any
}

// Decision is the answer, with its reasons.
type Decision struct {
	Allow bool
	// Code says which check denied: CodeUnauthenticated,
	// CodeInsufficientScope or CodeForbidden. Empty when allowed.
	Code string
	// Reason says why, naming the tool, the resource and the policies; it
	// never carries a token or a parameter value.
	Reason string
	// RequiredScopes are the scopes the call needs (for the
	// insufficient_scope challenge), set when Code is CodeInsufficientScope.
	RequiredScopes []string
	// Policies are the ids of the policies that decided, when a policy
	// did: the satisfied permits of an allow, the satisfied forbids of a
	// forbid, the policies whose evaluation failed for an error denial,
	// none for a default denial (no permit satisfied).
	Policies []string
	// DependsOnParameters: other parameter values (a trigger's defaults
	// for those not given) could change this decision, because a policy
	// that decided it, or one that could have, reads context.parameters.
	// A caller that learns more parameters must decide again; a denial
	// without it is final whatever the parameters.
	DependsOnParameters bool
	// Confirm are the @confirm messages of the permits that allowed the
	// call, in source order without repeats: when it is not empty, the
	// call may run only after the person confirms it (CONTRACT §13). Empty
	// for a denial.
	Confirm []string
}

// NeedsConfirmation reports whether an allowed call may run only once the
// person has confirmed it.
func (d Decision) NeedsConfirmation() bool { return d.Allow && len(d.Confirm) > 0 }

// Options configure an Authorizer.
type Options struct {
	// ToolScopes returns the OAuth scopes a tool needs (all of them).
	// Nil: no tool needs a scope.
	ToolScopes func(tool string) []string
	// Policy is the Cedar policy source (the content of policy.file). Nil:
	// the built-in DefaultPolicy. A non-nil source with no policy in it
	// (an empty file) is an error, not the default: an operator who names
	// a file means that file.
	Policy []byte
	// PolicyName names the policy in positions and messages, typically the
	// file's name. Default "policy.cedar", or "default.cedar" for the
	// built-in policy.
	PolicyName string
	// AllowGuest lets requests without a token set up a session, list the
	// tools and call guest tools (auth.allow_guest). Default false: a
	// guest may do nothing.
	AllowGuest bool
}

// Authorizer takes decisions. It is safe for concurrent use: it holds only
// values computed by its constructor.
type Authorizer struct {
	allowGuest bool
	toolScopes func(string) []string
	name       string
	policies   policyList
	probes     probeSet
	// broken is why the policy could not be loaded (New only); every
	// policy step then denies, so a bad policy fails closed.
	broken error
}

// New returns an Authorizer. It cannot fail: if opts.Policy does not
// compile, the Authorizer denies every call at the policy step with the
// compile error as the reason. Use NewWithPolicy to see that error when
// loading a policy file.
func New(opts *Options) *Authorizer {
	a, err := NewWithPolicy(opts)
	if err != nil {
		a.broken = err
	}
	return a
}

// NewWithPolicy returns an Authorizer for opts.Policy (the built-in default
// when nil), or the problems ValidatePolicy reports for it. On error the
// returned Authorizer is non-nil and denies every call at the policy step.
func NewWithPolicy(opts *Options) (*Authorizer, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	a := &Authorizer{toolScopes: func(string) []string { return nil }, allowGuest: o.AllowGuest}
	if o.ToolScopes != nil {
		a.toolScopes = o.ToolScopes
	}
	src := o.Policy
	a.name = o.PolicyName
	if src == nil {
		src = defaultPolicy
		if a.name == "" {
			a.name = defaultPolicyName
		}
	}
	if a.name == "" {
		a.name = "policy.cedar"
	}
	pl, err := compile(src, a.name)
	if err != nil {
		a.broken = err
		return a, err
	}
	a.policies = pl
	a.probes = newProbeSet(pl)
	return a, nil
}

// PolicyName is the name the Authorizer's policy is known by in messages.
func (a *Authorizer) PolicyName() string { return a.name }

// NamesItems reports whether some policy names a Job or Folder entity.
// Cedar compares those ids exactly while Jenkins resolves item names
// case-insensitively, so callers must then decide on Jenkins's own
// spelling of a path (its fullName), not the caller's.
func (a *Authorizer) NamesItems() bool { return a.probes.namesItems }

// PolicyIDs returns the ids of the loaded policies, in source order.
func (a *Authorizer) PolicyIDs() []string {
	ids := make([]string, len(a.policies))
	for i, p := range a.policies {
		ids[i] = string(p.id)
	}
	return ids
}

// Decide answers whether req may run, checking authentication, then
// scopes, then the policy (see the package doc). Local (stdio) principals
// have no OAuth token, so scopes are not checked for them.
func (a *Authorizer) Decide(ctx context.Context, req Request) Decision {
	d, _ := a.decide(req)
	return d
}

// DecideWithoutScopes is Decide without the scope step: authentication,
// then the policy. It answers "would the policy allow this caller to call
// the tool on this resource?" for a caller that is not calling it: a
// listing shows a job when the policy would allow get_job on it (CONTRACT
// §10), whatever the scopes get_job needs, which its own call checks, as
// tools/list is filtered by the policy and not by scopes (CONTRACT §8).
func (a *Authorizer) DecideWithoutScopes(ctx context.Context, req Request) Decision {
	tool, ok := catalog.Lookup(req.Tool)
	if !ok {
		return Decision{Code: CodeForbidden, Reason: fmt.Sprintf("unknown tool %s", catalog.Quote(req.Tool))}
	}
	if d, done := a.authenticate(req.Principal, tool); done {
		return d
	}
	d, _, _ := a.policyStep(req, tool)
	return d
}

// Stages of a decision, as Explanation.Stage reports them.
const (
	StageAuthentication = "authentication"
	StageScope          = "scope"
	StagePolicy         = "policy"
)

// decide runs the checks in order and says which stage decided.
func (a *Authorizer) decide(req Request) (Decision, string) {
	tool, ok := catalog.Lookup(req.Tool)
	if !ok {
		return Decision{Code: CodeForbidden, Reason: fmt.Sprintf("unknown tool %s", catalog.Quote(req.Tool))}, StagePolicy
	}
	if d, done := a.authenticate(req.Principal, tool); done {
		return d, StageAuthentication
	}
	if d, done := a.checkScopes(req); done {
		return d, StageScope
	}
	d, _, _ := a.policyStep(req, tool)
	return d, StagePolicy
}

// Precheck runs the steps of Decide that do not depend on the resource:
// authentication and scope. A caller that learns the resource only from
// Jenkins (a queue item's job) asks it before Jenkins and Decide after;
// the first denial is final either way.
func (a *Authorizer) Precheck(req Request) Decision {
	tool, ok := catalog.Lookup(req.Tool)
	if !ok {
		return Decision{Code: CodeForbidden, Reason: fmt.Sprintf("unknown tool %s", catalog.Quote(req.Tool))}
	}
	if d, done := a.authenticate(req.Principal, tool); done {
		return d
	}
	if d, done := a.checkScopes(req); done {
		return d
	}
	return Decision{Allow: true}
}

// ScopeCheck is the scope step of Decide alone: a denial with
// CodeInsufficientScope and the scopes the call needs when p's token lacks
// one of them, else an allowing Decision. The HTTP layer asks it before MCP
// so that a client gets the step-up challenge of RFC 6750 §3.1; the tool
// wrapper asks Decide, which runs the same check.
func (a *Authorizer) ScopeCheck(p identity.Principal, tool string) Decision {
	if d, done := a.checkScopes(Request{Principal: p, Tool: tool}); done {
		return d
	}
	return Decision{Allow: true}
}

// SessionlessRevision is the first MCP revision without sessions and
// without the initialize handshake (SEP-2575): each request names its
// revision in the MCP-Protocol-Version header and in
// params._meta["io.modelcontextprotocol/protocolVersion"], and a client
// learns about the server with server/discover. Revisions are dates, so
// they compare as strings.
const SessionlessRevision = "2026-07-28"

// legacyGuestMethods are the MCP methods a guest may call, besides guest
// tools, in the revisions with sessions (2024-11-05 to 2025-11-25): set up
// a session, keep it alive and discover the tools.
var legacyGuestMethods = []string{"initialize", "ping", "tools/list", "logging/setLevel"}

// sessionlessGuestMethods are those of SessionlessRevision and later:
// server/discover replaces initialize, and ping and logging/setLevel no
// longer exist (SEP-2575, SEP-2577). subscriptions/listen is not for
// guests: it holds a stream open, and Butler's tool list never changes
// while it runs, so a guest has nothing to wait for.
var sessionlessGuestMethods = []string{"server/discover", "tools/list"}

// removedMethods are methods of the earlier revisions that
// SessionlessRevision removed. A guest's call of one is left to the MCP
// layer, which answers it 404 with JSON-RPC -32601 as SEP-2575 requires
// (go-sdk v1.8.0 mcp/server.go, ServerSession.handle): it reaches no tool
// and nobody's data, and a challenge would send the client to log in only
// to be told the method does not exist.
var removedMethods = []string{"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}

// GuestMay reports whether a request without a token may call method
// (and, for tools/call, tool) in MCP revision ("" when the request names
// none: an initialize, or a client of 2025-03-26 or older). It is false
// for everything unless guests are allowed; then guests may set up a
// session (or, from SessionlessRevision on, discover the server), list the
// tools, send notifications and call the catalog's guest tools.
func (a *Authorizer) GuestMay(revision, method, tool string) bool {
	switch {
	case !a.allowGuest:
		return false
	case method == "tools/call":
		t, ok := catalog.Lookup(tool)
		return ok && t.Class == catalog.ClassGuest
	case method == "" || strings.HasPrefix(method, "notifications/"):
		return true
	case revision >= SessionlessRevision:
		return slices.Contains(sessionlessGuestMethods, method) || slices.Contains(removedMethods, method)
	}
	return slices.Contains(legacyGuestMethods, method)
}

// AllowsGuests reports whether guests are allowed at all.
func (a *Authorizer) AllowsGuests() bool { return a.allowGuest }

func (a *Authorizer) checkScopes(req Request) (Decision, bool) {
	if req.Principal.Guest || req.Principal.Local {
		return Decision{}, false
	}
	need := a.toolScopes(req.Tool)
	var missing []string
	for _, s := range need {
		if !req.Principal.HasScope(s) {
			missing = append(missing, s)
		}
	}
	if len(missing) == 0 {
		return Decision{}, false
	}
	return Decision{Code: CodeInsufficientScope, RequiredScopes: slices.Clone(need),
		Reason: fmt.Sprintf("the token lacks scope %s needed by %s", strings.Join(missing, ", "), req.Tool)}, true
}

// buildRequest turns req, a call of tool, into a Cedar request and its
// entities.
func buildRequest(req Request, tool catalog.Tool) (*cedarRequest, error) {
	res, resEnts, err := resourceEntities(tool, req.Job)
	if err != nil {
		return nil, err
	}
	pe := principalEntity(req.Principal)
	ae := actionEntity(tool)
	ents := make(entityList, 0, 2+len(resEnts))
	ents = append(ents, pe, ae)
	ents = append(ents, resEnts...)
	return &cedarRequest{
		req: cedar.Request{
			Principal: pe.UID,
			Action:    ae.UID,
			Resource:  res,
			Context:   contextRecord(req.Principal, req.Parameters),
		},
		entities: ents,
	}, nil
}

// policyStep evaluates the policy set. It returns the Cedar request (nil
// when it could not be built) and Cedar's diagnostic for Explain.
func (a *Authorizer) policyStep(req Request, tool catalog.Tool) (Decision, *cedarRequest, cedar.Diagnostic) {
	if a.broken != nil {
		return Decision{Code: CodeForbidden, Reason: fmt.Sprintf("%s denied: the policy could not be loaded: %s",
			req.Tool, strings.ReplaceAll(a.broken.Error(), "\n", "; "))}, nil, cedar.Diagnostic{}
	}
	cr, err := buildRequest(req, tool)
	if err != nil {
		// The tools layer parses paths before asking, so this is a bug or
		// a new caller; deny rather than guess a resource.
		return Decision{Code: CodeForbidden, Reason: fmt.Sprintf("%s denied: %v", req.Tool, err)}, nil, cedar.Diagnostic{}
	}
	dec, diag := cedar.Authorize(a.policies, cr.entities, cr.req)
	d := a.judge(req, cr, dec, diag)
	d.DependsOnParameters = a.dependsOnParameters(d)
	return d, cr, diag
}

// dependsOnParameters tells whether d could change with other parameters:
// a denial by forbids or errors, if one of them reads parameters; a
// default denial, if some permit does; an allow, if any policy does.
func (a *Authorizer) dependsOnParameters(d Decision) bool {
	reads := map[cedar.PolicyID]bool{}
	anyReads, permitReads := false, false
	for _, p := range a.policies {
		if p.readsParameters {
			reads[p.id] = true
			anyReads = true
			if p.policy.Effect() == cedar.Permit {
				permitReads = true
			}
		}
	}
	switch {
	case d.Allow:
		return anyReads
	case len(d.Policies) == 0:
		return permitReads
	}
	for _, id := range d.Policies {
		if reads[cedar.PolicyID(id)] {
			return true
		}
	}
	return false
}

// judge turns Cedar's answer into a Decision. A satisfied forbid wins;
// then any evaluation error denies (Cedar itself would skip the failing
// policy, which could let a broken forbid fail open); then a satisfied
// permit allows; else nothing permits the call.
func (a *Authorizer) judge(req Request, cr *cedarRequest, dec cedar.Decision, diag cedar.Diagnostic) Decision {
	res := cr.req.Resource.String()
	ids := func() []string {
		out := make([]string, len(diag.Reasons))
		for i, r := range diag.Reasons {
			out[i] = string(r.PolicyID)
		}
		return out
	}
	switch {
	case dec == cedar.Deny && len(diag.Reasons) > 0:
		p := ids()
		return Decision{Code: CodeForbidden, Policies: p,
			Reason: fmt.Sprintf("%s %s %s %s on %s", policyWord(p), strings.Join(p, ", "), verb(len(p), "forbids", "forbid"), req.Tool, res)}
	case len(diag.Errors) > 0:
		p := make([]string, 0, len(diag.Errors))
		msgs := make([]string, 0, len(diag.Errors))
		for _, e := range diag.Errors {
			if !slices.Contains(p, string(e.PolicyID)) {
				p = append(p, string(e.PolicyID))
			}
			msgs = append(msgs, fmt.Sprintf("%s (%s): %s", e.PolicyID, position(e.Position), redact(e.Message, req.Parameters)))
		}
		return Decision{Code: CodeForbidden, Policies: p,
			Reason: fmt.Sprintf("%s on %s denied: policy evaluation failed: %s", req.Tool, res, strings.Join(msgs, "; "))}
	case dec == cedar.Allow:
		p := ids()
		return Decision{Allow: true, Policies: p, Confirm: a.confirmations(p),
			Reason: fmt.Sprintf("%s %s %s %s on %s", policyWord(p), strings.Join(p, ", "), verb(len(p), "permits", "permit"), req.Tool, res)}
	}
	return Decision{Code: CodeForbidden,
		Reason: fmt.Sprintf("no policy permits %s on %s for %s", req.Tool, res, cr.req.Principal)}
}

// confirmations are the @confirm messages of the policies ids, in source
// order, each once.
func (a *Authorizer) confirmations(ids []string) []string {
	var out []string
	for _, p := range a.policies {
		if p.confirm != "" && slices.Contains(ids, string(p.id)) && !slices.Contains(out, p.confirm) {
			out = append(out, p.confirm)
		}
	}
	return out
}

func policyWord(ids []string) string {
	if len(ids) == 1 {
		return "policy"
	}
	return "policies"
}

func verb(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// position formats a policy position as "file:line:col".
func position(p cedar.Position) string {
	if p.Line == 0 {
		return p.Filename
	}
	return fmt.Sprintf("%s:%d:%d", p.Filename, p.Line, p.Column)
}

// redact removes the string parameter values from an evaluation error
// message: an extension call on a parameter (decimal(context.parameters.X))
// may quote its argument, and a parameter may be a password. Values of one
// or two characters are left, since replacing them would garble the
// message and they hide nothing.
func redact(msg string, params map[string]any) string {
	for _, v := range params {
		if s, ok := v.(string); ok && len(s) >= 3 {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	return msg
}

// Visible reports whether the principal may see tool in tools/list: the
// authentication check, then whether the policy lets the principal call
// the tool on some resource. Scopes are not checked (docs/http.md), so a
// client can still discover a tool and step up to the scope it needs.
//
// "Some resource" is approximated by a few representative resources taken
// from the policy itself (see probeSet): enough for policies whose
// resource constraints are entity equality and folder hierarchy. The
// context is the principal's own scopes and client id with no parameters;
// a policy whose evaluation fails on that context is skipped, as Cedar
// does, rather than hiding the tool (Decide still denies such a call).
func (a *Authorizer) Visible(ctx context.Context, p identity.Principal, name string) bool {
	tool, ok := catalog.Lookup(name)
	if !ok {
		return false
	}
	if d, done := a.authenticate(p, tool); done {
		return d.Allow
	}
	if a.broken != nil {
		return false
	}
	pe := principalEntity(p)
	ae := actionEntity(tool)
	cctx := contextRecord(p, nil)
	ents := make(entityList, 0, 8)
	for _, pr := range a.probes.forTool(tool) {
		ents = append(ents[:0], pe, ae)
		ents = append(ents, pr.entities...)
		dec, _ := cedar.Authorize(a.policies, ents, cedar.Request{Principal: pe.UID, Action: ae.UID, Resource: pr.resource, Context: cctx})
		if dec == cedar.Allow {
			return true
		}
	}
	return false
}

// authenticate is the first check: a guest reaches only guest tools, and
// anyone else must name a user. It is the only place that decides what a
// guest may call.
func (a *Authorizer) authenticate(p identity.Principal, tool catalog.Tool) (Decision, bool) {
	if p.Guest && tool.Class != catalog.ClassGuest {
		return Decision{Code: CodeUnauthenticated, Reason: fmt.Sprintf("%s needs an authenticated user", tool.Name)}, true
	}
	if !p.Guest && p.User == "" {
		return Decision{Code: CodeUnauthenticated, Reason: "no user in the request"}, true
	}
	return Decision{}, false
}
