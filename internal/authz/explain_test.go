package authz

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/identity"
)

func TestFormatExplanation_FirstLine(t *testing.T) {
	t.Parallel()
	a := exampleAuthz(t)
	for _, tc := range []struct {
		name  string
		req   Request
		first string
	}{
		{"allow with the deciding permit",
			Request{Principal: user("alice", "developers"), Tool: "trigger_job", Job: "frontend/web"},
			"allow developers-write-outside-prod"},
		{"deny with the deciding forbid",
			Request{Principal: user("alice", "developers"), Tool: "trigger_job", Job: "prod/deploy"},
			"deny prod-write-release-only"},
		{"default deny names no policy",
			Request{Principal: user("dave"), Tool: "trigger_job", Job: "frontend/web"},
			"deny"},
		{"authentication denial names no policy",
			Request{Principal: identity.Guest(), Tool: "whoami"},
			"deny"},
		{"several permits",
			Request{Principal: user("carol", "admins", "developers"), Tool: "get_job", Job: "a"},
			"allow users-read admins-all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := a.Explain(context.Background(), tc.req)
			out := FormatExplanation(e)
			first, _, _ := strings.Cut(out, "\n")
			if first != tc.first {
				t.Errorf("first line = %q, want %q\n%s", first, tc.first, out)
			}
			if d := a.Decide(context.Background(), tc.req); !cmp.Equal(d, e.Decision) {
				t.Errorf("Explain decision %+v differs from Decide %+v", e.Decision, d)
			}
		})
	}
}

func TestExplain_Detail(t *testing.T) {
	t.Parallel()
	a := exampleAuthz(t)
	e := a.Explain(context.Background(), Request{Principal: user("alice", "developers"), Tool: "trigger_job",
		Job: "prod/eu/deploy", Parameters: map[string]any{"ENV": "production"}})
	if e.Stage != StagePolicy {
		t.Errorf("Stage = %q", e.Stage)
	}
	want := &CedarRequest{
		Principal: `User::"alice"`, PrincipalParents: []string{`Group::"developers"`},
		Action: `Action::"trigger_job"`, ActionParents: []string{`Action::"write"`},
		Resource: `Job::"prod/eu/deploy"`, ResourceParents: []string{`Folder::"prod"`, `Folder::"prod/eu"`},
		Context: `{"client_id":"test-client", "parameters":{"ENV":"production"}, "scopes":["jenkins:read", "jenkins:build"]}`,
	}
	if diff := cmp.Diff(want, e.Request); diff != "" {
		t.Errorf("Request (-want +got):\n%s", diff)
	}
	outcomes := map[string]string{}
	for _, p := range e.Policies {
		outcomes[p.ID] = p.Outcome
	}
	wantOutcomes := map[string]string{
		"guest-health":                  OutcomeNotSatisfied,
		"users-read":                    OutcomeNotSatisfied,
		"developers-write-outside-prod": OutcomeNotSatisfied,
		"release-write-prod":            OutcomeNotSatisfied,
		"user123-build-frontend":        OutcomeNotSatisfied,
		"admins-all":                    OutcomeNotSatisfied,
		"prod-write-release-only":       OutcomeSatisfied,
		"production-env-release-only":   OutcomeSatisfied,
		"prod-trigger-confirm":          OutcomeNotSatisfied,
	}
	if diff := cmp.Diff(wantOutcomes, outcomes); diff != "" {
		t.Errorf("outcomes (-want +got):\n%s", diff)
	}
	out := FormatExplanation(e)
	for _, s := range []string{
		"deny prod-write-release-only production-env-release-only\n",
		`request: principal User::"alice" in [Group::"developers"], action Action::"trigger_job" in [Action::"write"], resource Job::"prod/eu/deploy" in [Folder::"prod", Folder::"prod/eu"]`,
		"policies in policy.cedar:\n",
		"  forbid prod-write-release-only (policy.cedar:",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}
}

func TestExplain_ErrorOutcome(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("all") permit (principal, action, resource);
@id("careless") forbid (principal, action, resource) when { context.parameters.ENV == "x" };
`), "p.cedar")
	e := a.Explain(context.Background(), Request{Principal: user("u"), Tool: "get_job", Job: "a"})
	out := FormatExplanation(e)
	if !strings.HasPrefix(out, "deny careless\n") {
		t.Errorf("output:\n%s", out)
	}
	if len(e.Policies) != 2 || e.Policies[1].Outcome != OutcomeError || !strings.Contains(e.Policies[1].Error, "ENV") {
		t.Errorf("Policies = %+v", e.Policies)
	}
}
