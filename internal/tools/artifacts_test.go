package tools_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// rangeLog records the Range header of each artifact request.
type rangeLog struct {
	mu     sync.Mutex
	ranges []string
}

func (l *rangeLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/artifact/") {
			l.mu.Lock()
			l.ranges = append(l.ranges, r.Method+" "+r.Header.Get("Range"))
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *rangeLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.ranges...)
}

// callRaw calls a tool and returns the whole result.
func (e *testEnv) callRaw(t *testing.T, tool string, args map[string]any) (*mcp.CallToolResult, map[string]any) {
	t.Helper()
	res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var out map[string]any
	data, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(data, &out)
	return res, out
}

// artifactData reads an artifact straight from the simulator as admin.
func artifactData(t *testing.T, e *testEnv, job string, build int64, path string) []byte {
	t.Helper()
	p, err := jenkins.ParseArtifactPath(path)
	if err != nil {
		t.Fatal(err)
	}
	jp := mustPath(t, job)
	c, err := e.jenkins.ReadArtifact(context.Background(), jenkins.Credential{User: "admin", APIToken: "admin-token"}, jp, build, p, 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return c.Data
}

func TestListArtifacts_SizesForPipelineNullForFreestyle(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	free := e.ok(t, "list_artifacts", map[string]any{"job": "frontend/web-app", "build": 5})
	arts := free["artifacts"].([]any)
	if len(arts) != 4 || free["truncated"] != false {
		t.Fatalf("web-app #5: %v", free)
	}
	var paths []string
	for _, a := range arts {
		m := a.(map[string]any)
		paths = append(paths, m["path"].(string))
		if m["size"] != nil {
			t.Errorf("freestyle %s: size %v, want null (api/json reports none)", m["path"], m["size"])
		}
	}
	if got := strings.Join(paths, ","); got != "dist/logo.png,dist/web-app-1.4.2.tar.gz,reports/coverage.txt,reports/test-output.log" {
		t.Errorf("paths %s", got)
	}
	e.sim.ResetRequests()
	pipe := e.ok(t, "list_artifacts", map[string]any{"job": "frontend/docs"})
	reqs := e.sim.Requests()
	if len(reqs) != 2 || !strings.HasSuffix(reqs[1].Path, "/3/wfapi/artifacts") {
		t.Errorf("Pipeline listing requests %+v, want api/json then wfapi/artifacts of #3", reqs)
	}
	for _, a := range pipe["artifacts"].([]any) {
		m := a.(map[string]any)
		want := len(artifactData(t, e, "frontend/docs", 3, m["path"].(string)))
		if m["size"] != float64(want) {
			t.Errorf("%s: size %v, want %d", m["path"], m["size"], want)
		}
	}
}

func TestListArtifacts_TruncatedOver1000(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	for _, n := range []int{1000, 1001} {
		var files []jenkinstest.Artifact
		for i := range n {
			files = append(files, jenkinstest.Artifact{Path: "out/f" + itoa(i), Data: []byte("x")})
		}
		job := "frontend/many" + itoa(n)
		if err := e.sim.AddJob(job, jenkinstest.JobSpec{Class: jenkinstest.ClassWorkflowJob}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.sim.AddBuild(job, jenkinstest.BuildSpec{Artifacts: files}); err != nil {
			t.Fatal(err)
		}
		out := e.ok(t, "list_artifacts", map[string]any{"job": job})
		if got := len(out["artifacts"].([]any)); got != 1000 || out["truncated"] != (n > 1000) {
			t.Errorf("%d files: %d listed, truncated %v", n, got, out["truncated"])
		}
	}
}

func TestListArtifacts_HiddenJobIsNotFound(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	hidden := e.fail(t, "list_artifacts", map[string]any{"job": "backend/api", "build": 4}, "not_found")
	missing := e.fail(t, "list_artifacts", map[string]any{"job": "backend/nope", "build": 4}, "not_found")
	if strings.Replace(hidden["message"].(string), "backend/api", "X", 1) != strings.Replace(missing["message"].(string), "backend/nope", "X", 1) {
		t.Errorf("hidden %q vs missing %q", hidden["message"], missing["message"])
	}
}

func TestGetArtifact_TextPagesAreByteExact(t *testing.T) {
	t.Parallel()
	var rl rangeLog
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{wrap: rl.wrap})
	want := artifactData(t, e, "frontend/web-app", 5, "reports/test-output.log")
	rl.mu.Lock()
	rl.ranges = nil
	rl.mu.Unlock()
	var got bytes.Buffer
	start := 0.0
	pages := 0
	for {
		out := e.ok(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/test-output.log", "start": start, "max_bytes": 9999})
		if out["kind"] != "text" || out["size"] != float64(len(want)) || out["start"] != start {
			t.Fatalf("page at %v: %v", start, out)
		}
		text := out["text"].(string)
		if len(text) > 9999 {
			t.Fatalf("page of %d bytes", len(text))
		}
		got.WriteString(text)
		pages++
		next := out["next_start"].(float64)
		if next != start+float64(len(text)) {
			t.Fatalf("next_start %v after %d bytes from %v", next, len(text), start)
		}
		start = next
		if out["more"] != true {
			break
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("paged text differs from the artifact (%d vs %d bytes)", got.Len(), len(want))
	}
	r := rl.all()
	if len(r) != pages || r[0] != "GET " {
		t.Fatalf("requests %v", r)
	}
	for i, h := range r[1:] {
		if !strings.HasPrefix(h, "GET bytes=") {
			t.Errorf("page %d sent %q, want a Range request", i+2, h)
		}
	}
	// At the very end: an empty page, nothing more.
	end := e.ok(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/test-output.log", "start": len(want)})
	if end["text"] != "" || end["more"] != false || end["next_start"] != float64(len(want)) {
		t.Errorf("at the end: %v", end)
	}
	// Past it: invalid_argument, told by one HEAD after Jenkins's 500.
	past := e.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/test-output.log", "start": len(want) + 1}, "invalid_argument")
	if !strings.Contains(past["message"].(string), "past the end") {
		t.Errorf("past the end: %v", past)
	}
}

func TestGetArtifact_BinaryBlobOnlyWhenItFits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	logo := artifactData(t, e, "frontend/web-app", 5, "dist/logo.png")
	for _, max := range []int{len(logo), len(logo) - 1} {
		res, out := e.callRaw(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "dist/logo.png", "max_bytes": max})
		if res.IsError || out["kind"] != "binary" || out["media_type"] != "image/png" || out["size"] != float64(len(logo)) {
			t.Fatalf("max_bytes %d: %v", max, out)
		}
		fits := max >= len(logo)
		if out["embedded"] != fits || out["text"] != nil {
			t.Errorf("max_bytes %d: embedded %v", max, out["embedded"])
		}
		if !fits {
			if len(res.Content) != 1 {
				t.Errorf("max_bytes %d: %d content items, want only the JSON", max, len(res.Content))
			}
			continue
		}
		if len(res.Content) != 2 {
			t.Fatalf("%d content items", len(res.Content))
		}
		r, ok := res.Content[1].(*mcp.EmbeddedResource)
		if !ok || r.Resource == nil || !bytes.Equal(r.Resource.Blob, logo) || r.Resource.MIMEType != "image/png" || !strings.HasSuffix(r.Resource.URI, "/job/frontend/job/web-app/5/artifact/dist/logo.png") {
			t.Errorf("resource %+v", res.Content[1])
		}
	}
	// A gzip's type from its name, and it is binary.
	_, out := e.callRaw(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "dist/web-app-1.4.2.tar.gz"})
	if out["kind"] != "binary" || !strings.Contains(out["media_type"].(string), "gzip") {
		t.Errorf("tar.gz: %v", out)
	}
}

func TestGetArtifact_PathTricksRefusedBeforeJenkins(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	e.sim.ResetRequests()
	for _, p := range []string{"..", "../../secrets.txt", "reports/../../x", "%2e%2e/x", "reports%2Fcoverage.txt", "/etc/passwd",
		"C:/x", "reports\\coverage.txt", "reports//coverage.txt", "reports/", "a\x00b", "a\nb", "./x", "*zip*/all.zip", "reports/*.txt",
		"a;jsessionid=1", "a\u202eb", ""} {
		e.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": p}, "invalid_argument")
	}
	if r := e.sim.Requests(); len(r) != 0 {
		t.Errorf("refused paths reached Jenkins: %+v", r)
	}
}

func TestGetArtifact_Bounds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	big := bytes.Repeat([]byte("0123456789abcdef"), (1<<20)/16+100)
	if _, err := e.sim.AddBuild("frontend/docs", jenkinstest.BuildSpec{Artifacts: []jenkinstest.Artifact{{Path: "big.txt", Data: big}}}); err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "get_artifact", map[string]any{"job": "frontend/docs", "build": 4, "path": "big.txt", "max_bytes": 1 << 20})
	if len(out["text"].(string)) != 1<<20 || out["more"] != true || out["next_start"] != float64(1<<20) {
		t.Errorf("max page: %d bytes, more %v", len(out["text"].(string)), out["more"])
	}
	for _, args := range []map[string]any{
		{"max_bytes": 1<<20 + 1}, {"max_bytes": 0}, {"start": -1}, {"build": 0}, {"path": strings.Repeat("a", jenkins.MaxArtifactPathLen+1)},
	} {
		a := map[string]any{"job": "frontend/docs", "build": 4, "path": "big.txt"}
		for k, v := range args {
			a[k] = v
		}
		e.fail(t, "get_artifact", a, "invalid_argument")
	}
	// The default page is 64 KiB.
	if d := e.ok(t, "get_artifact", map[string]any{"job": "frontend/docs", "build": 4, "path": "big.txt"}); len(d["text"].(string)) != 65536 {
		t.Errorf("default page %d bytes", len(d["text"].(string)))
	}
}

func TestGetArtifact_FolderMissingAndHidden(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleCarol, nil)
	e.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports"}, "invalid_argument")
	missing := e.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/nope.txt"}, "not_found")
	hidden := e.fail(t, "get_artifact", map[string]any{"job": "backend/api", "build": 4, "path": "reports/nope.txt"}, "not_found")
	if strings.Replace(missing["message"].(string), `build 5 of job "frontend/web-app"`, "X", 1) != strings.Replace(hidden["message"].(string), `build 4 of job "backend/api"`, "X", 1) {
		t.Errorf("missing %q vs hidden %q", missing["message"], hidden["message"])
	}
}

func TestGetArtifact_RedirectIsNeverFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{simOpts: func(o *jenkinstest.Options) { o.ResourceRootURL = "http://127.0.0.1:1/resources/" }})
	e.sim.ResetRequests()
	err := e.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt"}, "jenkins_unavailable")
	if !strings.Contains(err["message"].(string), "redirect") {
		t.Errorf("message %q", err["message"])
	}
	reqs := e.sim.Requests()
	if len(reqs) != 1 || reqs[0].Status != http.StatusFound {
		t.Errorf("requests %+v, want the one 302", reqs)
	}
}

func TestGetArtifact_ArtifactsPermission(t *testing.T) {
	t.Parallel()
	opts := &envOpts{simOpts: func(o *jenkinstest.Options) { o.ArtifactsPermission = true }}
	bob := newEnv(t, jenkinstest.SampleBob, opts)
	// Listing needs only Read; the file needs Run.Artifacts.
	bob.ok(t, "list_artifacts", map[string]any{"job": "frontend/web-app", "build": 5})
	err := bob.fail(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt"}, "forbidden")
	if err["required_permission"] != string(jenkinstest.PermArtifacts) {
		t.Errorf("error %v", err)
	}
	admin := newEnv(t, jenkinstest.SampleAdmin, opts)
	admin.ok(t, "get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt"})
}

func TestGetBuildChanges_CommitsBoundedAndCredentialsStripped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleBob, nil)
	out := e.ok(t, "get_build_changes", map[string]any{"job": "frontend/web-app", "build": 5})
	commits := out["commits"].([]any)
	if len(commits) != 2 || out["truncated"] != false {
		t.Fatalf("web-app #5: %v", out)
	}
	c0 := commits[0].(map[string]any)
	if c0["id"] != "3f6c1e0d9b2a4c5e8f7a6b5c4d3e2f1a0b9c8d7e" || c0["author"] != "Alice Smith" ||
		!strings.HasPrefix(c0["message"].(string), "Cart: keep the coupon") || !strings.Contains(c0["message"].(string), "#412") {
		t.Errorf("commit %v", c0)
	}
	if ts, _ := c0["timestamp"].(string); !strings.HasSuffix(ts, "Z") || len(ts) != len("2026-11-29T17:00:00Z") {
		t.Errorf("timestamp %q", c0["timestamp"])
	}
	data, _ := json.Marshal(out)
	if bytes.Contains(data, []byte("ghp_")) || bytes.Contains(data, []byte("ci-bot")) {
		t.Errorf("answer carries the remote's credentials: %s", data)
	}
	if repos := out["repositories"].([]any); len(repos) != 1 || repos[0] != "https://git.example.com/frontend/web-app.git" {
		t.Errorf("repositories %v", repos)
	}
	// Pipeline: changeSets.
	if p := e.ok(t, "get_build_changes", map[string]any{"job": "frontend/docs", "build": 3}); len(p["commits"].([]any)) != 1 {
		t.Errorf("docs #3: %v", p)
	}
	// 60 paths: 50 kept, truncated.
	api := e.ok(t, "get_build_changes", map[string]any{"job": "backend/api", "build": 4})
	if c := api["commits"].([]any)[0].(map[string]any); len(c["paths"].([]any)) != 50 || api["truncated"] != true {
		t.Errorf("backend/api #4: %d paths, truncated %v", len(c["paths"].([]any)), api["truncated"])
	}
	// No changes recorded: an empty list.
	if n := e.ok(t, "get_build_changes", map[string]any{"job": "frontend/web-app", "build": 1}); len(n["commits"].([]any)) != 0 {
		t.Errorf("web-app #1: %v", n)
	}
	carol := newEnv(t, jenkinstest.SampleCarol, nil)
	carol.fail(t, "get_build_changes", map[string]any{"job": "backend/api", "build": 4}, "not_found")
}

func TestGetBuildChanges_MessageCutAt1000Characters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	long := strings.Repeat("é", 1500)
	if _, err := e.sim.AddBuild("frontend/docs", jenkinstest.BuildSpec{Changes: []jenkinstest.Commit{{ID: "abc", Author: "A", Message: long}}}); err != nil {
		t.Fatal(err)
	}
	out := e.ok(t, "get_build_changes", map[string]any{"job": "frontend/docs", "build": 4})
	if m := out["commits"].([]any)[0].(map[string]any)["message"].(string); m != strings.Repeat("é", 1000) {
		t.Errorf("message of %d characters", len([]rune(m)))
	}
}

func TestTriggerJob_RebuildOfCopiesParametersButNoPassword(t *testing.T) {
	t.Parallel()
	el := &elicitations{action: "accept"}
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: releaser(), elicit: el.handle, policy: []byte(`
@id("all") permit (principal, action, resource);
@id("confirm") @confirm("Sure?") permit (principal, action == Action::"trigger_job", resource);
`)})
	// backend/api #4 ran with BRANCH=main, ENV=production, DRY_RUN=false,
	// NOTES, and a DEPLOY_TOKEN.
	out := e.ok(t, "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 4, "parameters": map[string]any{"NOTES": "again"}})
	if pw := out["passwords_not_copied"].([]any); len(pw) != 1 || pw[0] != "DEPLOY_TOKEN" || out["rebuild_of"] != float64(4) {
		t.Errorf("answer %v", out)
	}
	asked := el.all()
	if len(asked) != 1 || !strings.Contains(asked[0].Message, "Trigger backend/api #? as admin with BRANCH=main, DRY_RUN=false, ENV=production, NOTES=again") ||
		strings.Contains(asked[0].Message, "DEPLOY_TOKEN") {
		t.Fatalf("question %+v", asked)
	}
	q, err := e.jenkins.QueueItem(context.Background(), jenkins.Credential{User: "admin", APIToken: "admin-token"}, int64(out["queue_id"].(float64)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"BRANCH": "main", "ENV": "production", "DRY_RUN": false, "NOTES": "again", "DEPLOY_TOKEN": nil}
	for k, v := range want {
		if q.Parameters[k] != v {
			t.Errorf("queued %s=%v, want %v (all: %v)", k, q.Parameters[k], v, q.Parameters)
		}
	}
	// A missing build is not_found before anything is posted.
	e.sim.ResetRequests()
	e.fail(t, "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 99}, "not_found")
	if len(e.posts()) != 0 {
		t.Errorf("posts %v", e.posts())
	}
	e.fail(t, "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 0}, "invalid_argument")
}

func TestTriggerJob_RebuildOfDecidedOnItsEffectiveParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, &envOpts{principal: &identity.Principal{User: "admin", JenkinsUser: "admin", Scopes: []string{"jenkins:read", "jenkins:build"}}, policy: []byte(`
@id("all") permit (principal, action, resource);
@id("no-prod") forbid (principal, action == Action::"trigger_job", resource) when { context.parameters has ENV && context.parameters.ENV == "production" };
`)})
	e.sim.ResetRequests()
	err := e.fail(t, "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 4}, "forbidden")
	if !strings.Contains(err["message"].(string), "no-prod") || len(e.posts()) != 0 {
		t.Errorf("rebuild of a production build: %v, posts %v", err, e.posts())
	}
	// Overriding ENV makes it a staging build, which is allowed.
	e.ok(t, "trigger_job", map[string]any{"job": "backend/api", "rebuild_of": 4, "parameters": map[string]any{"ENV": "staging"}})
}

func mustPath(t *testing.T, s string) jobpath.Path {
	t.Helper()
	p, err := jobpath.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func itoa(n int) string { return strconv.Itoa(n) }
