package tools_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// A multibranch project finds a branch job by several spellings
// (MultiBranchProject.getItem: the name, NameEncoder-decoded, -encoded):
// a forbid on the branch job's fullName must hold whichever spelling the
// caller sends, and nothing that changes Jenkins may run.
func TestPolicy_BranchSpellingsJudgedOnFullName(t *testing.T) {
	t.Parallel()
	policy := []byte(`@id("all") permit (principal, action, resource);
@id("no-login-branch") forbid (principal, action, resource == Job::"frontend/mobile/feature%2Flogin");`)
	admin := &identity.Principal{User: "admin", JenkinsUser: "admin", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: admin, policy: policy})
	for _, spelling := range []string{
		"frontend/mobile/feature%2Flogin",   // the fullName: denied as written
		"frontend/mobile/feature%252Flogin", // Jenkins decodes once, the project decodes again
		"FRONTEND/mobile/feature%252Flogin", // and the top level folds case
	} {
		for _, tool := range []string{"get_job", "trigger_job", "get_build"} {
			errObj := e.fail(t, tool, map[string]any{"job": spelling}, "forbidden")
			if !strings.Contains(errObj["message"].(string), "no-login-branch") {
				t.Errorf("%s %s: %v", tool, spelling, errObj)
			}
		}
	}
	for _, r := range e.posts() {
		t.Errorf("Jenkins received a POST for a branch spelling: %+v", r)
	}
	for _, r := range e.audit.all() {
		if r.Resource != "frontend/mobile/feature%2Flogin" {
			t.Errorf("audited resource %q, want the fullName", r.Resource)
		}
	}
	// The branch's siblings are not touched by the forbid.
	if out := e.ok(t, "get_job", map[string]any{"job": "frontend/mobile/main"}); out["full_name"] != "frontend/mobile/main" {
		t.Errorf("sibling: %v", out)
	}
}

// A user who may only discover an item (Item.Discover without Item.Read:
// Jenkins answers 403 without X-Required-Permission) learns no more
// through Butler than of a missing one: not_found, the same message.
func TestDiscoverOnly_AnsweredAsNotFound(t *testing.T) {
	t.Parallel()
	dora := identity.Principal{User: "dora", JenkinsUser: "dora", Local: true}
	e := newEnv(t, "dora", &envOpts{principal: &dora,
		creds: credentials.Local{Credential: jenkins.Credential{User: "dora", APIToken: "dora-token"}}})
	e.sim.AddUser("dora", "Dora", "dora-token")
	e.sim.Grant("dora", "backend", jenkinstest.PermDiscover)
	e.sim.Grant("dora", "frontend", jenkinstest.PermRead)
	adminCred := jenkins.Credential{User: "admin", APIToken: jenkinstest.SampleAdminToken}
	api, _ := jobpath.Parse("backend/api")
	id, err := e.jenkins.Trigger(context.Background(), adminCred, api, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	same := func(tool string, hidden, missing map[string]any) {
		t.Helper()
		h := strings.NewReplacer("backend/api", "X", "frontend/nothing", "X").Replace(hidden["message"].(string))
		m := strings.NewReplacer("backend/api", "X", "frontend/nothing", "X").Replace(missing["message"].(string))
		if h != m || hidden["status"] != missing["status"] || hidden["required_permission"] != nil {
			t.Errorf("%s: discover-only %v, missing %v", tool, hidden, missing)
		}
	}
	for _, tool := range []string{"get_job", "get_build", "get_build_log", "trigger_job"} {
		same(tool, e.fail(t, tool, map[string]any{"job": "backend/api"}, "not_found"),
			e.fail(t, tool, map[string]any{"job": "frontend/nothing"}, "not_found"))
	}
	hidden := e.fail(t, "get_queue_item", map[string]any{"queue_id": id}, "not_found")
	missing := e.fail(t, "get_queue_item", map[string]any{"queue_id": id + 1000}, "not_found")
	if strings.ReplaceAll(hidden["message"].(string), strconv.FormatInt(id, 10), "N") != strings.ReplaceAll(missing["message"].(string), strconv.FormatInt(id+1000, 10), "N") {
		t.Errorf("queue item: %v vs %v", hidden, missing)
	}
	if out, isErr := e.call(t, "list_all_jobs", map[string]any{"folder": "backend"}); !isErr {
		t.Errorf("listing a discover-only folder: %v", out)
	}
}

// Without Overall/Read Jenkins refuses everything with a 403 naming
// hudson.model.Hudson.Read: Butler says forbidden and which permission.
func TestWithoutOverallRead_Forbidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{simOpts: func(o *jenkinstest.Options) { o.NoImplicitOverallRead = true }})
	for _, tc := range []struct {
		tool string
		args map[string]any
	}{
		{"get_job", map[string]any{"job": "frontend/web-app"}},
		{"list_all_jobs", nil},
		{"trigger_job", map[string]any{"job": "frontend/web-app"}},
	} {
		errObj := e.fail(t, tc.tool, tc.args, "forbidden")
		if errObj["required_permission"] != "hudson.model.Hudson.Read" || strings.Contains(errObj["message"].(string), "<") {
			t.Errorf("%s: %v", tc.tool, errObj)
		}
	}
}

// A stored API token Jenkins rejects is reported as rejected, marked in
// the store, and not sent again (a realm may count each attempt as a
// failed password) until the user links again; the mark holds for another
// replica reading the same store.
func TestRejectedStoredToken_SentOnceUntilRelinked(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, err := store.Open(ctx, "sqlite::memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var k [32]byte
	for i := range k {
		k[i] = byte(i*7 + 1)
	}
	v, err := credentials.NewVault(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	stored := credentials.NewStored(st, v, nil, nil)
	if err := stored.Link(ctx, "alice", "alice", secret.String("revoked-token")); err != nil {
		t.Fatal(err)
	}
	p := identity.Principal{User: "alice", JenkinsUser: "alice", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: &p, creds: stored, connectURL: "https://butler.example.com/connect"})
	e.sim.ResetRequests()
	rejectedAsks := func() int {
		n := 0
		for _, r := range e.sim.Requests() {
			if r.Auth == "invalid" {
				n++
			}
		}
		return n
	}
	for i := range 3 {
		errObj := e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_account_not_linked")
		if errObj["reason"] != "credential_rejected" || errObj["connect_url"] != "https://butler.example.com/connect" {
			t.Errorf("call %d: %v", i, errObj)
		}
	}
	if n := rejectedAsks(); n != 1 {
		t.Errorf("Jenkins received the rejected token %d times, want 1", n)
	}
	if rec, err := st.GetCredential(ctx, "alice"); err != nil || rec.RejectedAt.IsZero() {
		t.Errorf("the store holds no rejected mark: %+v, %v", rec, err)
	}
	if out := e.ok(t, "whoami", nil); out["jenkins_linked"] != false {
		t.Errorf("whoami after the rejection: %v", out)
	}
	// Another replica (a fresh source on the same store) does not send it either.
	other := credentials.NewStored(st, v, nil, nil)
	if _, err := other.For(ctx, p); err == nil {
		t.Error("another replica hands out the rejected token")
	}
	// Linking again clears the mark.
	if err := stored.Link(ctx, "alice", "alice", secret.String(jenkinstest.SampleAliceToken)); err != nil {
		t.Fatal(err)
	}
	if out := e.ok(t, "get_job", map[string]any{"job": "frontend/web-app"}); out["full_name"] != "frontend/web-app" {
		t.Errorf("after re-linking: %v", out)
	}
	if n := rejectedAsks(); n != 1 {
		t.Errorf("after re-linking, %d rejected requests", n)
	}
}
