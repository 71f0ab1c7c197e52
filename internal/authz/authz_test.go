package authz

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
)

// allTools is every tool, with its class (docs/tools.md).
var allTools = map[string]catalog.Class{
	"health":                catalog.ClassGuest,
	"get_current_time_info": catalog.ClassAuthenticated,
	"whoami":                catalog.ClassAuthenticated,
	"list_all_jobs":         catalog.ClassRead,
	"get_job":               catalog.ClassRead,
	"get_queue_item":        catalog.ClassRead,
	"get_build":             catalog.ClassRead,
	"get_build_log":         catalog.ClassRead,
	"search_build_log":      catalog.ClassRead,
	"get_test_results":      catalog.ClassRead,
	"list_artifacts":        catalog.ClassRead,
	"get_artifact":          catalog.ClassRead,
	"get_build_changes":     catalog.ClassRead,
	"trigger_job":           catalog.ClassSensitive,
	"stop_build":            catalog.ClassSensitive,
	"cancel_queue_item":     catalog.ClassSensitive,
	"get_pipeline_stages":   catalog.ClassRead,
	"get_stage_log":         catalog.ClassRead,
	"list_pending_inputs":   catalog.ClassRead,
	"submit_input":          catalog.ClassSensitive,
	"list_queue":            catalog.ClassRead,
	"list_nodes":            catalog.ClassRead,
	"wait_for_build":        catalog.ClassRead,
	"diagnose_build":        catalog.ClassRead,
}

func toolNames() []string {
	names := make([]string, 0, len(allTools))
	for n := range allTools {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// jobFor returns a job argument fitting tool: the tools that name no job
// get "", list_all_jobs gets the folder part of job.
func jobFor(tool, job string) string {
	switch {
	case resourceOf(tool) == catalog.ResourceServer || resourceOf(tool) == catalog.ResourceQueueItem:
		return ""
	case resourceOf(tool) == catalog.ResourceFolder:
		if i := strings.LastIndex(job, "/"); i > 0 {
			return job[:i]
		}
		return ""
	}
	return job
}

func resourceOf(tool string) catalog.Resource {
	t, _ := catalog.Lookup(tool)
	return t.Resource
}

// TestCatalog_ClassesAsExpected pins each tool's class, on which the
// guest rule and the action groups depend.
func TestCatalog_ClassesAsExpected(t *testing.T) {
	t.Parallel()
	got := map[string]catalog.Class{}
	for _, tool := range catalog.All() {
		got[tool.Name] = tool.Class
	}
	if diff := cmp.Diff(allTools, got); diff != "" {
		t.Errorf("catalog classes (-want +got):\n%s", diff)
	}
}

func user(name string, groups ...string) identity.Principal {
	return identity.Principal{User: name, JenkinsUser: name, Groups: groups,
		Scopes: []string{"jenkins:read", "jenkins:build"}, ClientID: "test-client"}
}

func examplePolicy(t testing.TB) []byte {
	t.Helper()
	src, err := os.ReadFile("../../examples/policy.cedar")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

func mustNew(t testing.TB, src []byte, name string) *Authorizer {
	t.Helper()
	a, err := NewWithPolicy(&Options{Policy: src, PolicyName: name})
	if err != nil {
		t.Fatalf("NewWithPolicy(%s): %v", name, err)
	}
	return a
}

func exampleAuthz(t testing.TB) *Authorizer { return mustNew(t, examplePolicy(t), "policy.cedar") }

type decideCase struct {
	name     string
	p        identity.Principal
	tool     string
	job      string
	params   map[string]any
	allow    bool
	code     string
	policies []string
}

func runDecide(t *testing.T, a *Authorizer, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, ok := allTools[tc.tool]
			if !ok {
				t.Fatalf("unknown tool %q in test", tc.tool)
			}
			d := a.Decide(context.Background(), Request{Principal: tc.p, Tool: tc.tool, Job: tc.job, Parameters: tc.params})
			if d.Allow != tc.allow || d.Code != tc.code {
				t.Fatalf("Decide = allow %v code %q (%s), want allow %v code %q", d.Allow, d.Code, d.Reason, tc.allow, tc.code)
			}
			if diff := cmp.Diff(tc.policies, d.Policies); diff != "" {
				t.Errorf("Policies (-want +got):\n%s\nreason: %s", diff, d.Reason)
			}
			if !strings.Contains(d.Reason, tc.tool) {
				t.Errorf("Reason %q does not name the tool", d.Reason)
			}
		})
	}
}

func TestDecide_DefaultPolicy(t *testing.T) {
	t.Parallel()
	a := New(nil)
	cases := []decideCase{
		{name: "guest may call health", p: identity.Guest(), tool: "health", allow: true, policies: []string{"guest-health"}},
		{name: "guest may not call whoami", p: identity.Guest(), tool: "whoami", code: CodeUnauthenticated},
		{name: "local user may trigger", p: identity.Principal{User: "dev", JenkinsUser: "dev", Local: true},
			tool: "trigger_job", job: "prod/deploy", allow: true, policies: []string{"users-all-tools"}},
	}
	for _, tool := range toolNames() {
		cases = append(cases, decideCase{name: "user may call " + tool, p: user("alice"), tool: tool,
			job: jobFor(tool, "prod/eu/deploy"), allow: true, policies: []string{"users-all-tools"}})
	}
	runDecide(t, a, cases)
}

func TestDecide_ExamplePolicy(t *testing.T) {
	t.Parallel()
	a := exampleAuthz(t)
	alice := user("alice", "developers")
	bob := user("bob", "release")
	carol := user("carol", "admins")
	dave := user("dave")
	erin := user("erin", "developers", "release")
	u123 := user("user123")
	runDecide(t, a, []decideCase{
		{name: "guest may call health", p: identity.Guest(), tool: "health", allow: true, policies: []string{"guest-health"}},
		{name: "guest may not call whoami", p: identity.Guest(), tool: "whoami", code: CodeUnauthenticated},
		{name: "user without groups may read", p: dave, tool: "get_build_log", job: "prod/deploy", allow: true, policies: []string{"users-read"}},
		{name: "user without groups may list a folder", p: dave, tool: "list_all_jobs", job: "prod", allow: true, policies: []string{"users-read"}},
		{name: "user without groups may not trigger", p: dave, tool: "trigger_job", job: "frontend/web", code: CodeForbidden},
		{name: "developer may trigger in frontend", p: alice, tool: "trigger_job", job: "frontend/web", allow: true,
			policies: []string{"developers-write-outside-prod"}},
		{name: "developer may stop a build outside prod", p: alice, tool: "stop_build", job: "backend/api", allow: true,
			policies: []string{"developers-write-outside-prod"}},
		{name: "developer may not trigger in prod", p: alice, tool: "trigger_job", job: "prod/deploy", code: CodeForbidden,
			policies: []string{"prod-write-release-only"}},
		{name: "developer may not trigger deep in prod", p: alice, tool: "trigger_job", job: "prod/eu/deploy", code: CodeForbidden,
			policies: []string{"prod-write-release-only"}},
		{name: "developer may still read prod", p: alice, tool: "get_job", job: "prod/deploy", allow: true, policies: []string{"users-read"}},
		{name: "release may trigger in prod", p: bob, tool: "trigger_job", job: "prod/deploy", allow: true,
			policies: []string{"release-write-prod", "prod-trigger-confirm"}},
		{name: "release may not trigger outside prod", p: bob, tool: "trigger_job", job: "frontend/web", code: CodeForbidden},
		{name: "user123 may trigger in frontend", p: u123, tool: "trigger_job", job: "frontend/web", allow: true,
			policies: []string{"user123-build-frontend"}},
		{name: "user123 may trigger deep in frontend", p: u123, tool: "trigger_job", job: "frontend/web/main", allow: true,
			policies: []string{"user123-build-frontend"}},
		{name: "user123 may not trigger in backend", p: u123, tool: "trigger_job", job: "backend/api", code: CodeForbidden},
		{name: "user123 may not stop in frontend", p: u123, tool: "stop_build", job: "frontend/web", code: CodeForbidden},
		{name: "user123 may not trigger a job named frontend", p: u123, tool: "trigger_job", job: "frontend", code: CodeForbidden},
		{name: "forbid wins over admins permit", p: carol, tool: "trigger_job", job: "prod/deploy", code: CodeForbidden,
			policies: []string{"prod-write-release-only"}},
		{name: "admin may trigger outside prod", p: carol, tool: "trigger_job", job: "backend/api", allow: true, policies: []string{"admins-all"}},
		{name: "production parameter forbidden to developers", p: alice, tool: "trigger_job", job: "frontend/web",
			params: map[string]any{"ENV": "production"}, code: CodeForbidden, policies: []string{"production-env-release-only"}},
		{name: "other parameter value allowed", p: alice, tool: "trigger_job", job: "frontend/web",
			params: map[string]any{"ENV": "staging"}, allow: true, policies: []string{"developers-write-outside-prod"}},
		{name: "production parameter allowed to release", p: erin, tool: "trigger_job", job: "frontend/web",
			params: map[string]any{"ENV": "production"}, allow: true, policies: []string{"developers-write-outside-prod"}},
		{name: "both permits reported", p: erin, tool: "trigger_job", job: "prod/deploy", allow: true,
			policies: []string{"release-write-prod", "prod-trigger-confirm"}},
		{name: "queue tools are on the server", p: alice, tool: "cancel_queue_item", allow: true,
			policies: []string{"developers-write-outside-prod"}},
		{name: "local principal has no groups and the policy applies", p: identity.Principal{User: "alice", JenkinsUser: "alice", Local: true},
			tool: "trigger_job", job: "frontend/web", code: CodeForbidden},

		// Cedar matches ids exactly. Jenkins does not care about case, so
		// the caller must canonicalize to Jenkins's spelling first (the
		// tools layer's job); this pins that authz itself does not.
		{name: "case differs: PROD is not prod to Cedar", p: alice, tool: "trigger_job", job: "PROD/deploy", allow: true,
			policies: []string{"developers-write-outside-prod"}},
		// Paths are parsed by jobpath before the resource is built.
		{name: "a folder named prod inside another is not prod", p: alice, tool: "trigger_job", job: "frontend/prod/deploy", allow: true,
			policies: []string{"developers-write-outside-prod"}},
		{name: "leading and trailing slashes still land in prod", p: alice, tool: "trigger_job", job: "/prod/deploy/", code: CodeForbidden,
			policies: []string{"prod-write-release-only"}},
		{name: "dot-dot cannot leave frontend", p: u123, tool: "trigger_job", job: "frontend/../prod/deploy", code: CodeForbidden},
		{name: "dot segment refused", p: u123, tool: "trigger_job", job: "frontend/./web", code: CodeForbidden},
		{name: "double slash refused", p: u123, tool: "trigger_job", job: "frontend//web", code: CodeForbidden},
		{name: "padded segment refused", p: u123, tool: "trigger_job", job: "frontend /web", code: CodeForbidden},
		{name: "encoded slash is one segment, not frontend", p: u123, tool: "trigger_job", job: "frontend%2Fweb", code: CodeForbidden},
	})
}

// TestDecide_EvaluationErrorDenies pins that a policy which fails to
// evaluate denies, even though Cedar skips it and would allow.
func TestDecide_EvaluationErrorDenies(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("all") permit (principal, action, resource);
@id("careless") forbid (principal, action == Action::"trigger_job", resource)
  when { context.parameters.MISSING == "yes" };
`), "p.cedar")
	req := Request{Principal: user("alice"), Tool: "trigger_job", Job: "a/b"}
	d := a.Decide(context.Background(), req)
	if d.Allow || d.Code != CodeForbidden {
		t.Fatalf("Decide = %+v, want a forbidden denial", d)
	}
	if diff := cmp.Diff([]string{"careless"}, d.Policies); diff != "" {
		t.Errorf("Policies (-want +got):\n%s", diff)
	}
	for _, want := range []string{"careless", "p.cedar:3:1", "MISSING", "trigger_job", `Job::"a/b"`} {
		if !strings.Contains(d.Reason, want) {
			t.Errorf("Reason %q lacks %q", d.Reason, want)
		}
	}
	// With the parameter present the policy evaluates, and "all" allows.
	req.Parameters = map[string]any{"MISSING": "no"}
	if d := a.Decide(context.Background(), req); !d.Allow {
		t.Errorf("with the parameter: %+v, want allowed", d)
	}
}

func TestDecide_EvaluationErrorReasonHidesParameterValues(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("all") permit (principal, action, resource);
@id("odd") forbid (principal, action, resource) when { ip(context.parameters.TOKEN).isIpv4() };
`), "p.cedar")
	secret := "s3cr3t-value-do-not-log"
	d := a.Decide(context.Background(), Request{Principal: user("alice"), Tool: "trigger_job",
		Job: "a/b", Parameters: map[string]any{"TOKEN": secret}})
	if d.Allow {
		t.Fatalf("Decide = %+v, want denied", d)
	}
	if strings.Contains(d.Reason, secret) {
		t.Errorf("Reason %q carries the parameter value", d.Reason)
	}
	e := a.Explain(context.Background(), Request{Principal: user("alice"), Tool: "trigger_job",
		Job: "a/b", Parameters: map[string]any{"TOKEN": secret}})
	for _, p := range e.Policies {
		if strings.Contains(p.Error, secret) {
			t.Errorf("Explain outcome %q carries the parameter value", p.Error)
		}
	}
}

func TestDecide_DefaultDenyWhenNoPolicyMatches(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`@id("only-bob") permit (principal == User::"bob", action, resource);`), "p.cedar")
	d := a.Decide(context.Background(), Request{Principal: user("alice"), Tool: "get_job", Job: "a/b"})
	if d.Allow || d.Code != CodeForbidden || d.Policies != nil {
		t.Fatalf("Decide = %+v, want a default denial with no policies", d)
	}
	if want := `no policy permits get_job on Job::"a/b" for User::"alice"`; d.Reason != want {
		t.Errorf("Reason = %q, want %q", d.Reason, want)
	}
}

func TestDecide_ScopesInContext(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("build-scope") permit (principal, action == Action::"trigger_job", resource)
  when { context.scopes.contains("jenkins:build") && context.client_id == "cli" };
`), "p.cedar")
	with := identity.Principal{User: "alice", Scopes: []string{"jenkins:read", "jenkins:build"}, ClientID: "cli"}
	without := identity.Principal{User: "alice", Scopes: []string{"jenkins:read"}, ClientID: "cli"}
	otherClient := identity.Principal{User: "alice", Scopes: []string{"jenkins:build"}, ClientID: "web"}
	for _, tc := range []struct {
		p     identity.Principal
		allow bool
	}{{with, true}, {without, false}, {otherClient, false}} {
		d := a.Decide(context.Background(), Request{Principal: tc.p, Tool: "trigger_job", Job: "a/b"})
		if d.Allow != tc.allow {
			t.Errorf("scopes %v client %q: %+v, want allow %v", tc.p.Scopes, tc.p.ClientID, d, tc.allow)
		}
	}
}

func TestDecide_ParametersInContext(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("typed") permit (principal, action == Action::"trigger_job", resource) when {
  context.parameters.ENV == "production" &&
  context.parameters.COUNT == 3 &&
  context.parameters.DRY == false &&
  context.parameters.RATIO == "1.5" &&
  context.parameters.LIST == "[\"a\",1]" &&
  !(context.parameters has NOTHING)
};
`), "p.cedar")
	params := map[string]any{"ENV": "production", "COUNT": float64(3), "DRY": false, "RATIO": 1.5, "LIST": []any{"a", 1}, "NOTHING": nil}
	req := Request{Principal: user("alice"), Tool: "trigger_job", Job: "a/b", Parameters: params}
	if d := a.Decide(context.Background(), req); !d.Allow {
		t.Fatalf("Decide = %+v, want allowed", d)
	}
	params["ENV"] = "staging"
	if d := a.Decide(context.Background(), req); d.Allow {
		t.Fatalf("ENV=staging: %+v, want denied", d)
	}
}

// TestDecide_ChecksRunInOrder pins that a permissive policy cannot undo
// the authentication and scope checks that come before it.
func TestDecide_ChecksRunInOrder(t *testing.T) {
	t.Parallel()
	a, err := NewWithPolicy(&Options{
		Policy:     []byte(`@id("anything") permit (principal, action, resource);`),
		ToolScopes: func(tool string) []string { return []string{"jenkins:build"} },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d := a.Decide(ctx, Request{Principal: identity.Guest(), Tool: "whoami"}); d.Code != CodeUnauthenticated {
		t.Errorf("guest whoami: %+v, want unauthenticated", d)
	}
	if d := a.Decide(ctx, Request{Principal: identity.Principal{}, Tool: "whoami"}); d.Code != CodeUnauthenticated {
		t.Errorf("no user: %+v, want unauthenticated", d)
	}
	d := a.Decide(ctx, Request{Principal: identity.Principal{User: "alice", Scopes: []string{"jenkins:read"}}, Tool: "trigger_job", Job: "a"})
	if d.Code != CodeInsufficientScope || !slices.Equal(d.RequiredScopes, []string{"jenkins:build"}) {
		t.Errorf("missing scope: %+v, want insufficient_scope for jenkins:build", d)
	}
	if d := a.Decide(ctx, Request{Principal: identity.Principal{User: "alice", Local: true}, Tool: "trigger_job", Job: "a"}); !d.Allow {
		t.Errorf("local principal: %+v, want allowed (no scopes checked)", d)
	}

	// And a scope that passes still meets the policy.
	strict := mustNew(t, []byte(`@id("bob") permit (principal == User::"bob", action, resource);`), "p.cedar")
	strict.toolScopes = a.toolScopes
	d = strict.Decide(ctx, Request{Principal: user("alice"), Tool: "trigger_job", Job: "a"})
	if d.Code != CodeForbidden {
		t.Errorf("policy after scopes: %+v, want forbidden", d)
	}
}

// TestDecide_UnknownToolIsDenied pins that a tool the catalog does not
// have is denied whatever the policy says: no name can escape the action
// groups by being new.
func TestDecide_UnknownToolIsDenied(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`@id("all") permit (principal, action, resource);`), "p.cedar")
	d := a.Decide(context.Background(), Request{Principal: user("carol", "admins"), Tool: "delete_job", Job: "prod/deploy"})
	if d.Allow || d.Code != CodeForbidden || !strings.Contains(d.Reason, `unknown tool "delete_job"`) {
		t.Errorf("Decide = %+v, want forbidden for an unknown tool", d)
	}
	if a.Visible(context.Background(), user("carol", "admins"), "delete_job") {
		t.Error("an unknown tool is visible")
	}
}

// TestEntities_FolderChain pins the resource hierarchy: the job's parents
// are all its folders, and each folder is the child of its own parent.
func TestEntities_FolderChain(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("chain") permit (principal, action, resource in Folder::"a")
  when { Folder::"a/b" in Folder::"a" && resource in Folder::"a/b" };
`), "p.cedar")
	for _, tc := range []struct {
		tool, job string
		allow     bool
	}{
		{"get_job", "a/b/c", true},
		{"list_all_jobs", "a/b/c", true}, // Folder::"a/b/c", in a/b and a
		{"list_all_jobs", "a/b", true},   // `in` is reflexive: Folder::"a/b" in Folder::"a/b"
		{"get_job", "a/c", false},
		{"get_job", "b/a/b/c", false},
	} {
		d := a.Decide(context.Background(), Request{Principal: user("u"), Tool: tc.tool, Job: tc.job})
		if d.Allow != tc.allow {
			t.Errorf("%s %s: %+v, want allow %v", tc.tool, tc.job, d, tc.allow)
		}
	}
	getJob, _ := catalog.Lookup(catalog.GetJob)
	uid, ents, err := resourceEntities(getJob, "a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, e := range ents {
		var ps []string
		for p := range e.Parents.All() {
			ps = append(ps, p.String())
		}
		slices.Sort(ps)
		got[e.UID.String()] = ps
	}
	want := map[string][]string{
		`Folder::"a"`:   nil,
		`Folder::"a/b"`: {`Folder::"a"`},
		`Job::"a/b/c"`:  {`Folder::"a"`, `Folder::"a/b"`},
	}
	if diff := cmp.Diff(want, got); diff != "" || uid.String() != `Job::"a/b/c"` {
		t.Errorf("entities of %s (-want +got):\n%s", uid, diff)
	}
}

func TestParameterRecord(t *testing.T) {
	t.Parallel()
	r := parameterRecord(map[string]any{
		"s": "x", "b": true, "i": float64(42), "neg": float64(-7), "f": 0.25, "big": 1e20,
		"n": nil, "obj": map[string]any{"k": "v"}, "int": 5,
	})
	if want := `{"b":true, "big":"100000000000000000000", "f":"0.25", "i":42, "int":5, "neg":-7, "obj":"{\"k\":\"v\"}", "s":"x"}`; r.String() != want {
		t.Errorf("parameterRecord = %s\nwant             %s", r.String(), want)
	}
}

// TestNew_BrokenPolicyFailsClosed pins that New, which cannot return an
// error, denies everything rather than falling back to a permissive
// policy.
func TestNew_BrokenPolicyFailsClosed(t *testing.T) {
	t.Parallel()
	for _, src := range [][]byte{[]byte(`permit (principal, action, resource`), {}, []byte("// nothing\n")} {
		a := New(&Options{Policy: src, PolicyName: "bad.cedar"})
		d := a.Decide(context.Background(), Request{Principal: user("alice"), Tool: "get_job", Job: "a"})
		if d.Allow || d.Code != CodeForbidden || !strings.Contains(d.Reason, "bad.cedar") {
			t.Errorf("source %q: Decide = %+v, want a forbidden denial naming the file", src, d)
		}
		if a.Visible(context.Background(), user("alice"), "get_job") {
			t.Errorf("source %q: get_job visible", src)
		}
		if _, err := NewWithPolicy(&Options{Policy: src}); err == nil {
			t.Errorf("source %q: NewWithPolicy succeeded", src)
		}
	}
}

func TestNewWithPolicy_NilIsTheDefault(t *testing.T) {
	t.Parallel()
	a, err := NewWithPolicy(&Options{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"guest-health", "users-all-tools"}, a.PolicyIDs()); diff != "" {
		t.Errorf("PolicyIDs (-want +got):\n%s", diff)
	}
	if a.PolicyName() != "default.cedar" {
		t.Errorf("PolicyName = %q", a.PolicyName())
	}
}

// TestDecide_DependsOnParameters pins when a decision could change with
// other parameter values, which tells the tools whether a denial is final
// before they read a trigger's defaults.
func TestDecide_DependsOnParameters(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("all") permit (principal, action, resource);
@id("prod") forbid (principal, action, resource in Folder::"prod");
@id("env") forbid (principal, action == Action::"trigger_job", resource)
  when { context.parameters has ENV && context.parameters.ENV == "production" };
`), "p.cedar")
	for _, tc := range []struct {
		job    string
		params map[string]any
		allow  bool
		depend bool
	}{
		{"prod/deploy", nil, false, false},                        // the prod forbid reads no parameter: final
		{"a/b", map[string]any{"ENV": "production"}, false, true}, // denied by a rule on parameters
		{"a/b", map[string]any{"ENV": "staging"}, true, true},     // allowed, but a forbid reads parameters
	} {
		d := a.Decide(context.Background(), Request{Principal: user("u"), Tool: "trigger_job", Job: tc.job, Parameters: tc.params})
		if d.Allow != tc.allow || d.DependsOnParameters != tc.depend {
			t.Errorf("%s %v: allow %v depends %v, want %v %v", tc.job, tc.params, d.Allow, d.DependsOnParameters, tc.allow, tc.depend)
		}
	}
	noParams := mustNew(t, []byte(`@id("all") permit (principal, action, resource) when { context.client_id == "x" || true };`), "p.cedar")
	if d := noParams.Decide(context.Background(), Request{Principal: user("u"), Tool: "trigger_job", Job: "a"}); d.DependsOnParameters {
		t.Error("a policy reading only context.client_id depends on parameters")
	}
	whole := mustNew(t, []byte(`@id("ctx") forbid (principal, action, resource) when { context == {} }; @id("all") permit (principal, action, resource);`), "p.cedar")
	if d := whole.Decide(context.Background(), Request{Principal: user("u"), Tool: "trigger_job", Job: "a"}); !d.DependsOnParameters {
		t.Error("a policy reading the whole context does not count as reading parameters")
	}
}

// TestDecideWithoutScopes: the policy's answer for a caller who is not
// making the call (a listing asks it per job): authentication and the
// policy decide, the tool's OAuth scopes do not.
func TestDecideWithoutScopes(t *testing.T) {
	t.Parallel()
	a, err := NewWithPolicy(&Options{
		ToolScopes: func(string) []string { return []string{"jenkins:read"} },
		Policy: []byte(`@id("all") permit (principal, action, resource);
@id("no-prod") forbid (principal, action == Action::"get_job", resource in Folder::"prod");`),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	noScope := identity.Principal{User: "alice", JenkinsUser: "alice"}
	if d := a.Decide(ctx, Request{Principal: noScope, Tool: "get_job", Job: "a/b"}); d.Allow || d.Code != CodeInsufficientScope {
		t.Fatalf("Decide without the scope: %+v, want insufficient_scope", d)
	}
	for _, c := range []struct {
		p     identity.Principal
		tool  string
		job   string
		allow bool
		code  string
	}{
		{noScope, "get_job", "a/b", true, ""},
		{noScope, "get_job", "prod/deploy", false, CodeForbidden},
		{identity.Guest(), "get_job", "a/b", false, CodeUnauthenticated},
		{identity.Principal{}, "get_job", "a/b", false, CodeUnauthenticated},
		{noScope, "no_such_tool", "a/b", false, CodeForbidden},
	} {
		d := a.DecideWithoutScopes(ctx, Request{Principal: c.p, Tool: c.tool, Job: c.job})
		if d.Allow != c.allow || d.Code != c.code {
			t.Errorf("DecideWithoutScopes(%+v, %s, %s) = %+v, want allow %v code %q", c.p, c.tool, c.job, d, c.allow, c.code)
		}
	}
}
