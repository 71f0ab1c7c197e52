package authz

import (
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
)

func visibleTools(a *Authorizer, p identity.Principal) []string {
	var out []string
	for _, tool := range toolNames() {
		if a.Visible(context.Background(), p, tool) {
			out = append(out, tool)
		}
	}
	return out
}

var readToolNames = func() []string {
	var out []string
	for _, t := range catalog.All() {
		if t.Class != catalog.ClassSensitive {
			out = append(out, t.Name)
		}
	}
	slices.Sort(out)
	return out
}()

func with(base []string, more ...string) []string {
	out := append(slices.Clone(base), more...)
	slices.Sort(out)
	return out
}

func TestVisible(t *testing.T) {
	t.Parallel()
	example := exampleAuthz(t)
	def := New(nil)
	noScopes := identity.Principal{User: "alice"}
	for _, tc := range []struct {
		name string
		a    *Authorizer
		p    identity.Principal
		want []string
	}{
		{"default: guest sees only health", def, identity.Guest(), []string{"health"}},
		{"default: user sees everything", def, user("alice"), toolNames()},
		{"default: scopes do not hide tools", def, noScopes, toolNames()},
		{"default: local user sees everything", def, identity.Principal{User: "dev", Local: true}, toolNames()},
		{"example: guest sees only health", example, identity.Guest(), []string{"health"}},
		{"example: user without groups sees the read tools", example, user("dave"), readToolNames},
		{"example: developer sees the writes", example, user("alice", "developers"), toolNames()},
		// cancel_queue_item's resource is the server, outside prod.
		{"example: release sees the job writes (in prod)", example, user("bob", "release"), with(readToolNames, "trigger_job", "stop_build", "submit_input")},
		{"example: user123 sees trigger_job only", example, user("user123"), with(readToolNames, "trigger_job")},
		{"example: admin sees everything", example, user("carol", "admins"), toolNames()},
		{"example: scopes do not hide tools", example, identity.Principal{User: "alice", Groups: []string{"developers"}}, toolNames()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if diff := cmp.Diff(tc.want, visibleTools(tc.a, tc.p)); diff != "" {
				t.Errorf("visible tools (-want +got):\n%s", diff)
			}
		})
	}
}

// TestVisible_Probes pins the representative resources: a tool allowed on
// one named job, one folder, or only inside a nested folder is visible,
// and one allowed nowhere the principal can reach is not.
func TestVisible_Probes(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`
@id("one-job") permit (principal == User::"jo", action == Action::"stop_build", resource == Job::"ops/deep/cleanup");
@id("nested") permit (principal == User::"ned", action == Action::"trigger_job", resource in Folder::"ops/deep");
@id("cond") permit (principal == User::"cy", action == Action::"trigger_job", resource)
  when { resource in Folder::"qa" };
@id("listing") permit (principal == User::"li", action == Action::"list_all_jobs", resource in Folder::"ops");
@id("not-in-ops") forbid (principal == User::"ned", action, resource in Folder::"ops")
  unless { resource in Folder::"ops/deep" };
@id("server-only") permit (principal == User::"sv", action == Action::"trigger_job", resource is Server);
`), "p.cedar")
	for _, tc := range []struct {
		user, tool string
		want       bool
	}{
		{"jo", "stop_build", true},
		{"jo", "trigger_job", false},
		{"ned", "trigger_job", true},
		{"cy", "trigger_job", true},
		{"li", "list_all_jobs", true},
		{"li", "get_job", false},
		// trigger_job always names a job, so a permit on the server alone
		// does not make it callable.
		{"sv", "trigger_job", false},
		{"nobody", "trigger_job", false},
	} {
		if got := a.Visible(context.Background(), user(tc.user), tc.tool); got != tc.want {
			t.Errorf("Visible(%s, %s) = %v, want %v", tc.user, tc.tool, got, tc.want)
		}
	}
}

func TestProbeSet(t *testing.T) {
	t.Parallel()
	pl, err := compile([]byte(`
@id("a") permit (principal, action, resource in Folder::"a/b") when { resource == Job::"x/y" || resource in [Folder::"c"] };
`), "p.cedar")
	if err != nil {
		t.Fatal(err)
	}
	ps := newProbeSet(pl)
	names := func(ps []probe) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.resource.String())
		}
		return out
	}
	if diff := cmp.Diff([]string{`Job::"."`, `Job::"a/b/."`, `Job::"c/."`, `Job::"x/y"`}, names(ps.jobs)); diff != "" {
		t.Errorf("job probes (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{`Server::"butler"`, `Folder::"."`, `Folder::"a/b"`, `Folder::"c"`}, names(ps.listing)); diff != "" {
		t.Errorf("listing probes (-want +got):\n%s", diff)
	}
}
