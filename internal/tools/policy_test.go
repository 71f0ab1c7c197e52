package tools_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/secret"
)

func examplePolicy(t *testing.T) []byte {
	t.Helper()
	src, err := os.ReadFile("../../examples/policy.cedar")
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// admin has every permission in Jenkins; as a plain developer (not in
// release) the example policy forbids writes in prod. The policy must win
// over Jenkins's permission, without any Jenkins request.
func adminAsDeveloper() *identity.Principal {
	return &identity.Principal{User: "admin", JenkinsUser: "admin", Groups: []string{"developers"}, Scopes: []string{"jenkins:read", "jenkins:build"}}
}

func TestPolicy_ForbidWinsOverJenkinsPermission(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: adminAsDeveloper(), policy: examplePolicy(t)})
	e.sim.ResetRequests()
	errObj := e.fail(t, "trigger_job", map[string]any{"job": "prod/deploy"}, "forbidden")
	if !strings.Contains(errObj["message"].(string), "prod-write-release-only") {
		t.Errorf("denial does not name the deciding policy: %v", errObj)
	}
	if reqs := e.sim.Requests(); len(reqs) != 0 {
		t.Errorf("a policy denial reached Jenkins: %+v", reqs)
	}
	// Outside prod the same user may build.
	e.ok(t, "trigger_job", map[string]any{"job": "frontend/web-app"})
	recs := e.audit.all()
	if recs[0].Decision != audit.Deny || recs[0].Code != "forbidden" || recs[0].Resource != "prod/deploy" {
		t.Errorf("audit of the policy denial: %+v", recs[0])
	}
}

// Jenkins resolves top-level item names case-insensitively; Cedar does
// not. A path spelled PROD/deploy must be judged as Jenkins's prod/deploy.
// (Below the top level Jenkins is case-sensitive: prod/Deploy names
// nothing.)
func TestPolicy_CaseTricksAreJudgedOnJenkinsSpelling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: adminAsDeveloper(), policy: examplePolicy(t)})
	for _, p := range []string{"PROD/deploy", "Prod/deploy", "prod/DEPLOY"} {
		errObj := e.fail(t, "trigger_job", map[string]any{"job": p}, "forbidden")
		if !strings.Contains(errObj["message"].(string), "prod-write-release-only") {
			t.Errorf("%s: %v", p, errObj)
		}
	}
	for _, r := range e.posts() {
		t.Errorf("Jenkins received a POST for a case trick: %+v", r)
	}
	// The audit record carries the path the policy judged: the caller's
	// when it was denied as written, else Jenkins's spelling.
	for _, r := range e.audit.all() {
		if !strings.EqualFold(r.Resource, "prod/deploy") || r.Resource == "PROD/deploy" || r.Resource == "Prod/deploy" {
			t.Errorf("audited resource %q", r.Resource)
		}
	}
}

// cancel_queue_item names no job: Butler learns it from the queue item and
// the policy decides on that job.
func TestPolicy_QueueItemJudgedOnItsJob(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: adminAsDeveloper(), policy: examplePolicy(t)})
	adminCred := jenkins.Credential{User: "admin", APIToken: jenkinstest.SampleAdminToken}
	prodJob, _ := jobpath.Parse("prod/deploy")
	id, err := e.jenkins.Trigger(context.Background(), adminCred, prodJob, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	errObj := e.fail(t, "cancel_queue_item", map[string]any{"queue_id": id}, "forbidden")
	if !strings.Contains(errObj["message"].(string), "prod-write-release-only") {
		t.Errorf("cancel of a prod item: %v", errObj)
	}
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": id}); q["state"] == "cancelled" {
		t.Error("prod item cancelled despite the policy")
	}
}

// Jenkins reports a queue item's task URL under its configured root URL,
// usually not the address Butler calls: the item's job is still known (its
// fullName, else the job segments of the URL), so a forbid on prod still
// stops cancel_queue_item.
func TestPolicy_QueueItemJudgedOnItsJobUnderAPublicRootURL(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: adminAsDeveloper(), policy: examplePolicy(t),
		rootURL: "https://ci.example.com/jenkins/"})
	adminCred := jenkins.Credential{User: "admin", APIToken: jenkinstest.SampleAdminToken}
	prodJob, _ := jobpath.Parse("prod/deploy")
	id, err := e.jenkins.Trigger(context.Background(), adminCred, prodJob, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	errObj := e.fail(t, "cancel_queue_item", map[string]any{"queue_id": id}, "forbidden")
	if !strings.Contains(errObj["message"].(string), "prod-write-release-only") {
		t.Errorf("cancel of a prod item under a public root URL: %v", errObj)
	}
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": id}); q["job"] != "prod/deploy" || q["state"] == "cancelled" {
		t.Errorf("get_queue_item under a public root URL: %v", q)
	}
}

// A permit limited to a folder allows the queue tools on that folder's
// items: they are decided on the item's job, not on Server::"butler".
func TestPolicy_FolderPermitAllowsItsQueueItems(t *testing.T) {
	t.Parallel()
	policy := []byte(`@id("frontend-only") permit (principal, action, resource in Folder::"frontend");`)
	admin := &identity.Principal{User: "admin", JenkinsUser: "admin", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: admin, policy: policy})
	adminCred := jenkins.Credential{User: "admin", APIToken: jenkinstest.SampleAdminToken}
	for job, allowed := range map[string]bool{"frontend/web-app": true, "prod/deploy": false} {
		p, _ := jobpath.Parse(job)
		id, err := e.jenkins.Trigger(context.Background(), adminCred, p, job == "prod/deploy", nil)
		if err != nil {
			t.Fatal(err)
		}
		if allowed {
			e.ok(t, "get_queue_item", map[string]any{"queue_id": id})
			e.ok(t, "cancel_queue_item", map[string]any{"queue_id": id})
		} else {
			e.fail(t, "cancel_queue_item", map[string]any{"queue_id": id}, "forbidden")
		}
	}
}

func TestPolicy_ToolsListFollowsThePolicy(t *testing.T) {
	t.Parallel()
	plain := &identity.Principal{User: "bob", JenkinsUser: "bob", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleBob, &envOpts{principal: plain, policy: examplePolicy(t)})
	res, err := e.session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range res.Tools {
		if tool.Name == "trigger_job" || tool.Name == "stop_build" || tool.Name == "cancel_queue_item" {
			t.Errorf("a user with no group sees %s", tool.Name)
		}
	}
	if len(res.Tools) != 13 {
		t.Errorf("bob sees %d tools, want the 13 read tools", len(res.Tools))
	}
	e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "forbidden")
}

func TestRateLimit_PerUser(t *testing.T) {
	t.Parallel()
	clock := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	lim := ratelimit.NewMemory(0.5, 2, &ratelimit.MemoryOptions{Now: func() time.Time { return clock }})
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{limiter: lim})
	e.ok(t, "whoami", nil)
	e.ok(t, "whoami", nil)
	errObj := e.fail(t, "whoami", nil, "rate_limited")
	if errObj["status"] != float64(429) || errObj["retry_after_seconds"].(float64) < 1 {
		t.Errorf("rate limited error: %v", errObj)
	}
	last := e.audit.all()[2]
	if last.Decision != audit.Error || last.Code != "rate_limited" {
		t.Errorf("audit of a rate-limited call: %+v", last)
	}
}

// A user without a linked Jenkins account gets jenkins_account_not_linked
// with the link page; a client that supports URL elicitation is asked to
// open it (MCP 2025-11-25 URLElicitationRequiredError).
func TestNotLinked_ConnectURLAndElicitation(t *testing.T) {
	t.Parallel()
	connect := "https://butler.example.com/connect"
	p := &identity.Principal{User: "dave", JenkinsUser: "dave", Scopes: []string{"jenkins:read", "jenkins:build"}}
	plainClient := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: p, creds: credentials.NewMemory(nil), connectURL: connect})
	errObj := plainClient.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_account_not_linked")
	if errObj["connect_url"] != connect || errObj["status"] != float64(428) {
		t.Errorf("not linked: %v", errObj)
	}
	if who := plainClient.ok(t, "whoami", nil); who["jenkins_linked"] != false {
		t.Errorf("whoami of an unlinked user: %v", who)
	}

	caps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: p, creds: credentials.NewMemory(nil), connectURL: connect, caps: caps, protocol: "2025-11-25"})
	_, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeURLElicitationRequired || !strings.Contains(string(rpcErr.Data), connect) {
		t.Fatalf("client with URL elicitation: %v", err)
	}
	if recs := e.audit.all(); len(recs) != 1 || recs[0].Code != "jenkins_account_not_linked" {
		t.Errorf("audit of the elicitation: %+v", recs)
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("Jenkins got %d requests for a user without a credential", n)
	}
}

// Jenkins's spelling of a path is asked once per user and spelling, then
// remembered for a while: a policy naming folders costs one extra request
// per new path, not per call.
func TestPolicy_CanonicalPathRemembered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: adminAsDeveloper(), policy: examplePolicy(t)})
	resolves := func() int {
		n := 0
		for _, r := range e.sim.Requests() {
			if r.Query == "tree=fullName" {
				n++
			}
		}
		return n
	}
	for range 3 {
		e.ok(t, "get_job", map[string]any{"job": "FRONTEND/web-app"})
	}
	if n := resolves(); n != 1 {
		t.Errorf("%d resolve requests for 3 calls on one spelling, want 1", n)
	}
	e.ok(t, "get_job", map[string]any{"job": "Frontend/web-app"})
	if n := resolves(); n != 2 {
		t.Errorf("a new spelling must be resolved on its own: %d", n)
	}
	e.clock.Advance(31 * time.Second)
	e.ok(t, "get_job", map[string]any{"job": "FRONTEND/web-app"})
	if n := resolves(); n != 3 {
		t.Errorf("after the TTL the spelling is asked again: %d", n)
	}
}

// TestPolicy_TriggerDecidedOnEffectiveParameters pins that a trigger is
// decided on what Jenkins will run with: leaving a parameter out does not
// sidestep a rule on its default, a permit on a default holds when it is
// left out, and password values never reach the policy.
func TestPolicy_TriggerDecidedOnEffectiveParameters(t *testing.T) {
	t.Parallel()
	policy := []byte(`
@id("all") permit (principal, action, resource);
@id("no-main") forbid (principal, action == Action::"trigger_job", resource)
  when { context.parameters has BRANCH && context.parameters.BRANCH == "main" };
@id("no-token-rules") forbid (principal, action == Action::"trigger_job", resource)
  when { context.parameters has DEPLOY_TOKEN };
`)
	admin := &identity.Principal{User: "admin", JenkinsUser: "admin", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: admin, policy: policy})
	// BRANCH's default is main: omitting it is forbidden like giving it.
	for _, params := range []map[string]any{{}, {"BRANCH": "main"}} {
		errObj := e.fail(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": params}, "forbidden")
		if !strings.Contains(errObj["message"].(string), "no-main") {
			t.Errorf("trigger with %v: %v", params, errObj)
		}
	}
	if p := e.posts(); len(p) != 0 {
		t.Errorf("a forbidden trigger was posted: %+v", p)
	}
	// Another branch, and a password given by name: allowed (the password
	// value is not in the policy's context).
	e.ok(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"BRANCH": "dev", "DEPLOY_TOKEN": "s3cret"}})

	// A permit that holds only on a default still allows a call that
	// leaves the parameter out.
	permitDryRun := []byte(`@id("dry-run-only") permit (principal, action == Action::"trigger_job", resource)
  when { context.parameters has DRY_RUN && context.parameters.DRY_RUN == true };
@id("reads") permit (principal, action == Action::"get_job", resource);`)
	d := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: admin, policy: permitDryRun})
	d.ok(t, "trigger_job", map[string]any{"job": "backend/api"})
	d.fail(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"DRY_RUN": false}}, "forbidden")
}

// TestPolicy_ListingsHideWhatThePolicyForbidsReading pins that a folder the
// policy forbids reading is hidden from listings at the root too, and that
// paging through a listing stays consistent.
func TestPolicy_ListingsHideWhatThePolicyForbidsReading(t *testing.T) {
	t.Parallel()
	policy := []byte(`@id("all") permit (principal, action, resource);
@id("no-backend") forbid (principal, action in Action::"read", resource in Folder::"backend");`)
	admin := &identity.Principal{User: "admin", JenkinsUser: "admin", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: admin, policy: policy})
	var names []string
	args := map[string]any{"limit": 2}
	for page := 0; ; page++ {
		out := e.ok(t, "list_all_jobs", args)
		names = append(names, jobNames(out)...)
		next, _ := out["next_cursor"].(string)
		if next == "" {
			break
		}
		args = map[string]any{"limit": 2, "cursor": next}
		if page > 50 {
			t.Fatal("paging does not end")
		}
	}
	if len(names) == 0 {
		t.Fatal("the listing is empty")
	}
	for _, n := range names {
		if strings.HasPrefix(n, "backend/") {
			t.Errorf("the listing shows %s, in a folder the policy forbids reading", n)
		}
	}
	e.fail(t, "get_job", map[string]any{"job": "backend/api"}, "forbidden")
}

// TestListAllJobs_PagingCostsOneJenkinsListing pins the listing cache:
// paging through a listing asks Jenkins once, not once per page.
func TestListAllJobs_PagingCostsOneJenkinsListing(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	e.sim.ResetRequests()
	args := map[string]any{"limit": 1}
	pages := 0
	for {
		out := e.ok(t, "list_all_jobs", args)
		pages++
		next, _ := out["next_cursor"].(string)
		if next == "" {
			break
		}
		args = map[string]any{"limit": 1, "cursor": next}
	}
	listing, statuses := 0, 0
	for _, r := range e.sim.Requests() {
		switch {
		case !strings.Contains(r.Path, "api/json") || !strings.Contains(r.Query, "jobs"):
		case strings.Contains(r.Query, "color"):
			statuses++ // one page's statuses
		default:
			listing++
		}
	}
	if pages < 3 || listing != 1 {
		t.Errorf("%d pages cost %d Jenkins listings, want 1", pages, listing)
	}
	if statuses != pages {
		t.Errorf("%d pages of one job cost %d status requests, want one each", pages, statuses)
	}
}

// On MCP 2026-07-28 the link page is asked for with an input-required
// result (URL mode): the client opens it, the person links, and the
// retried call runs as them. A person who declines opening it gets the
// plain jenkins_account_not_linked answer, and nothing reaches Jenkins.
func TestNotLinked_URLElicitationRetryForm(t *testing.T) {
	t.Parallel()
	connect := "https://butler.example.com/connect"
	caps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	p := &identity.Principal{User: "alice", JenkinsUser: "alice", Scopes: []string{"jenkins:read"}}
	for _, tc := range []struct {
		action string
		linked bool
	}{{"accept", true}, {"decline", false}, {"cancel", false}} {
		t.Run(tc.action, func(t *testing.T) {
			t.Parallel()
			store := credentials.NewMemory(nil)
			var asked []*mcp.ElicitParams
			e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: p, creds: store, connectURL: connect, caps: caps, protocol: "2026-07-28",
				elicit: func(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
					asked = append(asked, req.Params)
					if tc.linked {
						// The person opens the page and links their token.
						store.Set("alice", jenkins.Credential{User: "alice", APIToken: secret.String(tokenOf("alice"))})
					}
					return &mcp.ElicitResult{Action: tc.action}, nil
				}})
			res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
			if err != nil {
				t.Fatal(err)
			}
			if len(asked) != 1 || asked[0].Mode != "url" || asked[0].URL != connect {
				t.Fatalf("asked %d times: %+v", len(asked), asked)
			}
			if tc.linked {
				if res.IsError {
					t.Fatalf("the retried call after linking failed: %+v", res.StructuredContent)
				}
				return
			}
			out, _ := res.StructuredContent.(map[string]any)
			errObj, _ := out["error"].(map[string]any)
			if !res.IsError || errObj["code"] != "jenkins_account_not_linked" || errObj["connect_url"] != connect {
				t.Fatalf("declined: %+v", res.StructuredContent)
			}
			if n := len(e.sim.Requests()); n != 0 {
				t.Errorf("Jenkins got %d requests for a user without a credential", n)
			}
		})
	}
}
