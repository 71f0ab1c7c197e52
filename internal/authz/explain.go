package authz

import (
	"context"
	"fmt"
	"slices"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/butler-mcp/butler/internal/catalog"
)

// Explanation is a decision with the detail behind it, for `butler policy
// explain`.
type Explanation struct {
	// Decision is exactly what Decide returns for the same request.
	Decision Decision
	// Stage is the check that decided: StageAuthentication, StageScope or
	// StagePolicy.
	Stage string
	// PolicyName is the policy's file name.
	PolicyName string
	// Request is the request as Cedar sees it; nil when it cannot be built
	// (an invalid job path, or a policy that did not load).
	Request *CedarRequest
	// Policies is each policy's outcome for Request, evaluated one at a
	// time, in source order, whatever the stage that decided. Empty when
	// Request is nil.
	Policies []PolicyOutcome
}

// CedarRequest is a request in Cedar's syntax, with each entity's parents.
type CedarRequest struct {
	Principal        string   // User::"alice"
	PrincipalParents []string // Group::"developers", ...
	Action           string   // Action::"trigger_job"
	ActionParents    []string // Action::"write"
	Resource         string   // Job::"prod/deploy"
	ResourceParents  []string // Folder::"prod", ...
	Context          string   // {"client_id":"", "parameters":{}, "scopes":[...]}
}

// Outcomes of one policy for one request.
const (
	OutcomeSatisfied    = "satisfied"
	OutcomeNotSatisfied = "not satisfied"
	OutcomeError        = "error"
)

// PolicyOutcome is what one policy says about a request.
type PolicyOutcome struct {
	ID       string
	Effect   string // "permit" or "forbid"
	Position string // file:line:col of the policy
	Outcome  string // OutcomeSatisfied, OutcomeNotSatisfied or OutcomeError
	Error    string // the evaluation error, for OutcomeError
}

// Explain decides req as Decide does and reports how: the stage that
// decided, the request as Cedar saw it and every policy's outcome.
func (a *Authorizer) Explain(ctx context.Context, req Request) Explanation {
	d, stage := a.decide(req)
	e := Explanation{Decision: d, Stage: stage, PolicyName: a.name}
	if a.broken != nil {
		return e
	}
	tool, ok := catalog.Lookup(req.Tool)
	if !ok {
		return e
	}
	cr, err := buildRequest(req, tool)
	if err != nil {
		return e
	}
	e.Request = describe(cr)
	for _, p := range a.policies {
		_, diag := cedar.Authorize(policyList{p}, cr.entities, cr.req)
		o := PolicyOutcome{ID: string(p.id), Effect: "permit", Position: position(p.policy.Position()), Outcome: OutcomeNotSatisfied}
		if p.policy.Effect() == cedar.Forbid {
			o.Effect = "forbid"
		}
		switch {
		case len(diag.Errors) > 0:
			o.Outcome, o.Error = OutcomeError, redact(diag.Errors[0].Message, req.Parameters)
		case len(diag.Reasons) > 0:
			o.Outcome = OutcomeSatisfied
		}
		e.Policies = append(e.Policies, o)
	}
	return e
}

func describe(cr *cedarRequest) *CedarRequest {
	parents := func(uid cedar.EntityUID) []string {
		ent, ok := cr.entities.Get(uid)
		if !ok {
			return nil
		}
		var out []string
		for p := range ent.Parents.All() {
			out = append(out, p.String())
		}
		slices.Sort(out)
		return out
	}
	return &CedarRequest{
		Principal: cr.req.Principal.String(), PrincipalParents: parents(cr.req.Principal),
		Action: cr.req.Action.String(), ActionParents: parents(cr.req.Action),
		Resource: cr.req.Resource.String(), ResourceParents: parents(cr.req.Resource),
		Context: cr.req.Context.String(),
	}
}

// FormatExplanation renders e for `butler policy explain` (docs/policy.md).
// The first line is the decision and the ids of the policies that decided
// it, "allow users-read" or "deny prod-release-only", or "deny" alone when
// no policy decided (nothing permits the call, or an earlier check
// denied). The next lines say why, show the request as Cedar sees it and
// list every policy's outcome. An allow that needs the person's
// confirmation starts "allow (needs confirmation: <message>)", the
// messages of several @confirm permits joined by "; ".
func FormatExplanation(e Explanation) string {
	var b strings.Builder
	word := "deny"
	if e.Decision.Allow {
		word = "allow"
	}
	if e.Decision.NeedsConfirmation() {
		// CONTRACT §13: "allow (needs confirmation: <message>)".
		word = fmt.Sprintf("allow (needs confirmation: %s)", strings.Join(e.Decision.Confirm, "; "))
	}
	b.WriteString(strings.Join(append([]string{word}, e.Decision.Policies...), " "))
	b.WriteByte('\n')
	switch {
	case e.Decision.Allow:
		fmt.Fprintf(&b, "allowed: %s\n", e.Decision.Reason)
	case e.Stage != StagePolicy:
		fmt.Fprintf(&b, "%s at the %s check, before the policy: %s\n", e.Decision.Code, e.Stage, e.Decision.Reason)
	default:
		fmt.Fprintf(&b, "%s: %s\n", e.Decision.Code, e.Decision.Reason)
	}
	if r := e.Request; r != nil {
		fmt.Fprintf(&b, "request: principal %s%s, action %s%s, resource %s%s, context %s\n",
			r.Principal, in(r.PrincipalParents), r.Action, in(r.ActionParents), r.Resource, in(r.ResourceParents), r.Context)
	}
	if len(e.Policies) > 0 {
		fmt.Fprintf(&b, "policies in %s:\n", e.PolicyName)
		for _, p := range e.Policies {
			fmt.Fprintf(&b, "  %-6s %s (%s): %s", p.Effect, p.ID, p.Position, p.Outcome)
			if p.Error != "" {
				fmt.Fprintf(&b, ": %s", p.Error)
			}
			b.WriteByte('\n')
		}
	}
	return b.String()
}

func in(parents []string) string {
	if len(parents) == 0 {
		return ""
	}
	return " in [" + strings.Join(parents, ", ") + "]"
}
