package authz

import (
	"context"
	"slices"
	"strings"
	"testing"
)

// TestConfirm_ExamplePolicy: the example's prod-trigger-confirm permit makes
// every prod trigger it allows need confirmation, and nothing else.
func TestConfirm_ExamplePolicy(t *testing.T) {
	t.Parallel()
	a := exampleAuthz(t)
	ctx := context.Background()
	d := a.Decide(ctx, Request{Principal: user("rita", "release"), Tool: "trigger_job", Job: "prod/deploy"})
	if !d.Allow || !d.NeedsConfirmation() || !slices.Equal(d.Confirm, []string{"This starts a build in production."}) {
		t.Errorf("release trigger in prod: %+v, want an allow that needs confirmation", d)
	}
	if !slices.Contains(d.Policies, "prod-trigger-confirm") || !slices.Contains(d.Policies, "release-write-prod") {
		t.Errorf("policies = %v", d.Policies)
	}
	for _, req := range []Request{
		{Principal: user("rita", "release"), Tool: "stop_build", Job: "prod/deploy"},
		{Principal: user("rita", "release"), Tool: "get_job", Job: "prod/deploy"},
		{Principal: user("alice", "developers"), Tool: "trigger_job", Job: "frontend/web"},
	} {
		if d := a.Decide(ctx, req); !d.Allow || d.NeedsConfirmation() || len(d.Confirm) > 0 {
			t.Errorf("%s on %s: %+v, want an allow without confirmation", req.Tool, req.Job, d)
		}
	}
	// A denial never carries confirmation messages.
	if d := a.Decide(ctx, Request{Principal: user("alice", "developers"), Tool: "trigger_job", Job: "prod/deploy"}); d.Allow || len(d.Confirm) > 0 {
		t.Errorf("developer trigger in prod: %+v", d)
	}
}

// TestConfirm_OnlyTheAllowingPermitsCount: a @confirm permit that is not
// satisfied asks nothing; two satisfied ones ask both messages, once each.
func TestConfirm_OnlyTheAllowingPermitsCount(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("all") permit (principal, action, resource);
@id("c1") @confirm("first") permit (principal, action == Action::"trigger_job", resource in Folder::"prod");
@id("c2") @confirm("  second  ") permit (principal, action == Action::"trigger_job", resource);
@id("c3") @confirm("first") permit (principal, action == Action::"trigger_job", resource);
`), "p.cedar")
	ctx := context.Background()
	d := a.Decide(ctx, Request{Principal: user("alice"), Tool: "trigger_job", Job: "prod/deploy"})
	if !slices.Equal(d.Confirm, []string{"first", "second"}) {
		t.Errorf("prod: Confirm = %q", d.Confirm)
	}
	d = a.Decide(ctx, Request{Principal: user("alice"), Tool: "trigger_job", Job: "dev/deploy"})
	if !slices.Equal(d.Confirm, []string{"second", "first"}) {
		t.Errorf("dev: Confirm = %q", d.Confirm)
	}
	d = a.Decide(ctx, Request{Principal: user("alice"), Tool: "get_job", Job: "prod/deploy"})
	if d.NeedsConfirmation() {
		t.Errorf("get_job: %+v", d)
	}
}

// TestConfirm_BadAnnotationsRefused: an empty @confirm and a @confirm on a
// forbid are policy errors, not silently ignored.
func TestConfirm_BadAnnotationsRefused(t *testing.T) {
	t.Parallel()
	for src, want := range map[string]string{
		`@id("x") @confirm("") permit (principal, action, resource);`:                                                        "empty @confirm",
		`@id("x") @confirm("  ") permit (principal, action, resource);`:                                                      "empty @confirm",
		`@id("x") @confirm("sure?") forbid (principal, action, resource);`:                                                   "@confirm on a forbid",
		"@id(\"ok\") permit (principal, action, resource);\n@id(\"x\") @confirm(\"\") permit (principal, action, resource);": `p.cedar:2:1: policy "x": empty @confirm`,
	} {
		err := ValidatePolicy([]byte(src), "p.cedar")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}

// TestFormatExplanation_NeedsConfirmation: `policy explain` says
// "allow (needs confirmation: <message>)".
func TestFormatExplanation_NeedsConfirmation(t *testing.T) {
	t.Parallel()
	a := exampleAuthz(t)
	out := FormatExplanation(a.Explain(context.Background(), Request{Principal: user("rita", "release"), Tool: "trigger_job", Job: "prod/deploy"}))
	first, _, _ := strings.Cut(out, "\n")
	if want := "allow (needs confirmation: This starts a build in production.) release-write-prod prod-trigger-confirm"; first != want {
		t.Errorf("first line = %q, want %q\n%s", first, want, out)
	}
}
