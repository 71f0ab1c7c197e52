package tools_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/tools"
)

// listingEnv is one toolset over the Sample instance, as Jenkins's admin,
// whose calls act as the principal last given to as: one Butler serving
// the same user through several clients and tokens.
type listingEnv struct {
	*testEnv
	mu sync.Mutex
	p  identity.Principal
}

func newListingEnv(t *testing.T, policy string, toolScopes func(string) []string) *listingEnv {
	t.Helper()
	sim := jenkinstest.Sample(nil)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.NewWithPolicy(&authz.Options{ToolScopes: toolScopes, Policy: []byte(policy), PolicyName: "test.cedar"})
	if err != nil {
		t.Fatal(err)
	}
	le := &listingEnv{}
	rec := &recorder{}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: jenkinstest.SampleAdmin, APIToken: secret.String(jenkinstest.SampleAdminToken)}},
		Authorizer:  az,
		Audit:       rec,
		Scope: func(context.Context, *mcp.RequestExtra) *request.Scope {
			le.mu.Lock()
			defer le.mu.Unlock()
			return &request.Scope{Principal: le.p, ID: request.NewID()}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	le.testEnv = &testEnv{sim: sim, session: connect(t, ts, nil), audit: rec, jenkins: jc}
	return le
}

func (le *listingEnv) as(clientID string, scopes ...string) {
	le.mu.Lock()
	defer le.mu.Unlock()
	le.p = identity.Principal{User: jenkinstest.SampleAdmin, JenkinsUser: jenkinstest.SampleAdmin, ClientID: clientID, Scopes: scopes}
}

// listAll pages through list_all_jobs with args and returns every name.
func (le *listingEnv) listAll(t *testing.T, args map[string]any) []string {
	t.Helper()
	var names []string
	page := map[string]any{"limit": 3}
	for k, v := range args {
		page[k] = v
	}
	for range 100 {
		out := le.ok(t, "list_all_jobs", page)
		names = append(names, jobNames(out)...)
		next, _ := out["next_cursor"].(string)
		if next == "" {
			return names
		}
		page["cursor"] = next
	}
	t.Fatal("paging does not end")
	return nil
}

func under(names []string, folder string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, folder+"/") {
			out = append(out, n)
		}
	}
	return out
}

// TestPolicy_ListingsDecideOnTheCallersContext pins CONTRACT §10 for a
// policy whose `when` reads the request context: a job is listed only if
// the policy would allow get_job on it for that caller, and the caller's
// client id is part of the context. The same user listing through an
// allowed client and then through a client the policy distrusts must not
// get the first client's listing from the cache (one toolset, within the
// cache's 30 s).
func TestPolicy_ListingsDecideOnTheCallersContext(t *testing.T) {
	t.Parallel()
	policy := `@id("all") permit (principal, action, resource);
@id("no-backend-for-untrusted") forbid (principal, action == Action::"get_job", resource in Folder::"backend")
  when { context.client_id == "untrusted-agent" };
@id("no-prod-without-admin-scope") forbid (principal, action == Action::"get_job", resource in Folder::"prod")
  unless { context.scopes.contains("jenkins:admin") };`
	le := newListingEnv(t, policy, scopesFor)

	le.as("ide", "jenkins:read", "jenkins:admin")
	trusted := le.listAll(t, nil)
	if len(under(trusted, "backend")) == 0 || len(under(trusted, "prod")) == 0 {
		t.Fatalf("the trusted client's listing lacks backend or prod: %v", trusted)
	}
	le.as("untrusted-agent", "jenkins:read", "jenkins:admin")
	if got := le.listAll(t, nil); len(under(got, "backend")) != 0 {
		t.Errorf("the listing through client untrusted-agent shows %v, which the policy forbids it to read", under(got, "backend"))
	}
	le.fail(t, "get_job", map[string]any{"job": "backend/api"}, "forbidden")
	le.as("ide", "jenkins:read")
	if got := le.listAll(t, nil); len(under(got, "prod")) != 0 || len(under(got, "backend")) == 0 {
		t.Errorf("the listing without scope jenkins:admin: prod %v, backend %v; want no prod, all of backend", under(got, "prod"), under(got, "backend"))
	}
	// The folder's own listing follows the same per-job decision.
	le.as("untrusted-agent", "jenkins:read", "jenkins:admin")
	if got := le.listAll(t, map[string]any{"folder": "backend"}); len(got) != 0 {
		t.Errorf("listing folder backend through untrusted-agent: %v, want none", got)
	}
}

// TestPolicy_ListingsFollowThePolicyNotGetJobsScopes: CONTRACT §10 says a
// job is listed when "the policy would allow get_job on it"; the policy is
// the Cedar step (§5.3), not the OAuth scope step (§5.2), just as tools/list
// is filtered by the policy and not by scopes (§8). A token with the scope
// list_all_jobs needs but not the one get_job needs still sees the jobs the
// policy lets it read (and may step up to call get_job).
func TestPolicy_ListingsFollowThePolicyNotGetJobsScopes(t *testing.T) {
	t.Parallel()
	scopes := func(tool string) []string {
		switch tool {
		case "list_all_jobs":
			return []string{"jenkins:list"}
		case "health":
			return nil
		}
		return []string{"jenkins:read"}
	}
	for _, policy := range []string{
		// No policy names an item: one decision for the whole listing.
		`@id("all") permit (principal, action, resource);`,
		// A policy names a folder: a decision per job.
		`@id("all") permit (principal, action, resource);
@id("no-backend") forbid (principal, action == Action::"get_job", resource in Folder::"backend");`,
	} {
		le := newListingEnv(t, policy, scopes)
		le.as("ide", "jenkins:list")
		got := le.listAll(t, nil)
		if len(under(got, "frontend")) == 0 || len(under(got, "prod")) == 0 {
			t.Errorf("policy %q: a token with jenkins:list but not jenkins:read lists %v; want the jobs the policy lets it read", policy, got)
		}
		if strings.Contains(policy, "no-backend") && len(under(got, "backend")) != 0 {
			t.Errorf("the listing shows %v, which the policy forbids reading", under(got, "backend"))
		}
		le.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "insufficient_scope")
	}
}

// TestPolicy_ListingFolderForbidAloneDoesNotHideJobs pins the contract's
// words from the other side: the per-job test is get_job, so a forbid on
// list_all_jobs of a folder refuses listing that folder, while its jobs,
// which the policy lets the caller read, still appear in a listing of the
// root; a forbid on get_job in the folder hides them there too.
func TestPolicy_ListingFolderForbidAloneDoesNotHideJobs(t *testing.T) {
	t.Parallel()
	le := newListingEnv(t, `@id("all") permit (principal, action, resource);
@id("no-backend-listing") forbid (principal, action == Action::"list_all_jobs", resource in Folder::"backend");`, scopesFor)
	le.as("ide", "jenkins:read")
	le.fail(t, "list_all_jobs", map[string]any{"folder": "backend"}, "forbidden")
	root := le.listAll(t, nil)
	if !slices.Contains(root, "backend/api") {
		t.Errorf("the root listing hides backend/api, which the policy lets the caller read: %v", root)
	}
	le.ok(t, "get_job", map[string]any{"job": "backend/api"})
}
