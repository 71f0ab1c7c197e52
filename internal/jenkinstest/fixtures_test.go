package jenkinstest

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"
)

// fixtureDir holds JSON recorded from real Jenkins servers: the shared
// folder beside the repository root.
const fixtureDir = "../../testdata/jenkins"

// fixtureTargets maps each in-scope fixture to the simulator URL that
// answers for the analogous entity of fidelityServer, as admin.
var fixtureTargets = map[string]string{
	"job-info.json":                         "/job/fish/api/json",                        // parameterized job, running build, blocked item
	"node-jenkins/jobGet.json":              "/job/plain/api/json",                       // job without builds
	"node-jenkins/jobGetDisabled.json":      "/job/off/api/json",                         // disabled job
	"jobsInJenkinsFolder.json":              "/job/folder/api/json",                      // folder
	"jobsInRootFolder.json":                 "/api/json",                                 // root listing
	"node-jenkins/jobList.json":             "/api/json",                                 // root
	"build-info.json":                       "/job/fish/1/api/json",                      // build with parameters
	"build-info-empty-and-null-params.json": "/job/fish/1/api/json",                      // build with parameters
	"build-info-git-commit.json":            "/job/fish/1/api/json",                      // build with parameters (and git change sets)
	"build-info-no-params.json":             "/job/flow/1/api/json",                      // pipeline run without parameters
	"node-jenkins/buildGet.json":            "/job/simple/1/api/json",                    // freestyle build without parameters
	"queue.json":                            "/queue/api/json",                           // queue list
	"node-jenkins/queueList.json":           "/queue/api/json",                           // queue list
	"queueItemPending.json":                 "/queue/item/2/api/json",                    // blocked
	"queueItemNullTaskName.json":            "/queue/item/2/api/json",                    // blocked
	"queueItemMissingTaskUrl.json":          "/queue/item/3/api/json",                    // buildable
	"queueItemRunning.json":                 "/queue/item/1/api/json",                    // left, running
	"queueItemMultipleParameters.json":      "/queue/item/1/api/json",                    // left, running
	"queueItemEmptyParameterValue.json":     "/queue/item/1/api/json",                    // left, running
	"node-jenkins/queueItem.json":           "/queue/item/1/api/json",                    // left, running
	"queueItemCancelled.json":               "/queue/item/5/api/json",                    // left, cancelled
	"user.json":                             "/me/api/json",                              // current user
	"workflow.json":                         "/job/wf/1/wfapi/describe",                  // Pipeline run waiting at an input
	"pipeline-node.json":                    "/job/wf/1/execution/node/5/wfapi/describe", // its first stage, with steps
	"pipelineNodeLog.json":                  "/job/wf/1/execution/node/6/wfapi/log",      // a step's wfapi log
	"computer.json":                         "/computer/api/json",                        // nodes: built-in (running fish #4), an agent that failed to launch
}

// outOfScope lists fixtures of Jenkins APIs Butler does not use, which the
// simulator therefore does not serve.
var outOfScope = map[string]string{
	"api-token.json":    "API token generation (ApiTokenProperty/generateNewToken): Butler never creates tokens",
	"overall-load.json": "load statistics (/overallLoad/api/json)",
	"plugins.json":      "plugin manager (/pluginManager/api/json)",
	"runHistory.json": "pipeline-stage-view's job run list (JobAPI.doRuns), which Butler does not read: an array of the RunExt " +
		"that workflow.json is, compared as such in internal/jenkins's wire test",
}

// allowed lists differences the simulator has on purpose, by fixture
// ("*" for all) and path prefix of the problem.
var allowed = []struct{ file, path, why string }{
	{"*", ".culprits[]", "no SCM, hence no culprits"},
	{"build-info-git-commit.json", ".changeSets", "a freestyle build exports changeSet (AbstractBuild.getChangeSet), not changeSets: the fixture mixes in WorkflowRun's; TestChangeSetShape compares its change set with both"},
	{"*", ".actions[_class=com.jenkinsci.plugins.badge.action.BadgeSummaryAction]", "badge plugin action"},
	{"*", ".actions[_class=jenkins.metrics.impl.TimeInQueueAction]", "metrics plugin action"},
	{"build-info-no-params.json", ".builtOn", "current workflow-job's WorkflowRun exports no builtOn (the fixture mixes in AbstractBuild fields)"},
	{"build-info-no-params.json", ".changeSet", "WorkflowRun exports changeSets (a list), not changeSet"},
	{"jobsInRootFolder.json", ".jobs[_class=hudson.maven.MavenModuleSet]", "Maven plugin job type is not simulated"},
	{"jobsInRootFolder.json", ".jobs[_class=com.cloudbees.tiger.plugins.palace.templates.DockerSlaveTemplate]", "CloudBees agent template is not an item Butler handles"},
	{"queueItemMissingTaskUrl.json", ".task._class", "a pipeline node-block placeholder task, not a job: the simulator's tasks are jobs"},
}

// fixtureCommit is build-info-git-commit.json's commit.
var fixtureCommit = Commit{ID: "d27afa0805201322d846d7defc29b82c88d9b5ce", Author: "username", AuthorEmail: "username@localhost",
	Message: "Commit comment\n", Time: time.Unix(1461091892, 0), Paths: []ChangedFile{{EditType: "add", File: "some/path/in/the/repository"}}}

// fidelityServer holds an entity analogous to each fixture; see
// fixtureTargets. Queue ids: 1 left (running fish #4), 2 blocked (fish),
// 3 and 4 buildable (no executor left), 5 cancelled.
func fidelityServer(t *testing.T) *Server {
	t.Helper()
	clk := NewFakeClock(t0)
	s := New(&Options{Clock: clk, Executors: 1})
	s.AddUser("admin", "Administrator", "admin-token")
	s.Grant("admin", "", PermAdminister)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.AddJob("fish", JobSpec{Duration: time.Minute, Params: []Param{
		{Name: "bear", Type: "boolean", Default: true, Description: "some bear"},
		{Name: "fish", Type: "string", Default: "salmon", Description: "some fish"},
	}}))
	// An agent Jenkins could not launch, as most of computer.json's.
	must(s.AddNode(NodeSpec{Name: "alpine", Executors: 1, LaunchFailed: true}))
	must(s.AddJob("plain", JobSpec{Description: "before"}))
	must(s.AddJob("off", JobSpec{Description: "before", Disabled: true}))
	must(s.AddJob("folder/Test Project", JobSpec{}))
	must(s.AddFolderSpec("mb", FolderSpec{Class: ClassMultiBranch}))
	must(s.AddJob("mb/main", JobSpec{Class: ClassWorkflowJob}))
	must(s.AddJob("flow", JobSpec{Class: ClassWorkflowJob}))
	must(s.AddJob("simple", JobSpec{}))
	must(s.AddJob("chicken", JobSpec{Params: []Param{{Name: "feet", Type: "boolean"}}}))
	must(s.AddJob("Freestyle", JobSpec{Params: []Param{{Name: "fish", Type: "string"}}}))
	must(s.AddJob("cancelme", JobSpec{Params: []Param{{Name: "a", Type: "string", Default: "4"}}}))
	for i := range 3 {
		b := BuildSpec{UserID: "admin", Params: map[string]any{"bear": true, "fish": "salmon"}, Timestamp: t0.Add(-time.Hour)}
		if i == 0 {
			// build-info*.json archived fish.txt; build-info-git-commit.json
			// built one git commit.
			b.Artifacts = []Artifact{{Path: "fish.txt", Data: []byte("salmon\n")}}
			b.Changes = []Commit{fixtureCommit}
		}
		_, err := s.AddBuild("fish", b)
		must(err)
	}
	_, err := s.AddBuild("flow", BuildSpec{UserID: "admin", Timestamp: t0.Add(-time.Hour), Changes: []Commit{fixtureCommit}})
	must(err)
	_, err = s.AddBuild("simple", BuildSpec{UserID: "admin", Timestamp: t0.Add(-time.Hour)})
	must(err)
	for _, p := range []string{
		"/job/fish/buildWithParameters?bear=true&fish=salmon", // 1: starts at once
		"/job/fish/buildWithParameters?bear=false",            // 2: blocked by fish #4
		"/job/chicken/buildWithParameters?feet=false",         // 3: buildable
		"/job/Freestyle/buildWithParameters?fish=bear",        // 4: buildable
		"/job/cancelme/build",                                 // 5: buildable, then cancelled
	} {
		if w := call(t, s, "POST", p, "admin"); w.Code != http.StatusCreated {
			t.Fatalf("%s: %d", p, w.Code)
		}
	}
	if w := call(t, s, "POST", "/queue/cancelItem?id=5", "admin"); w.Code != http.StatusNoContent {
		t.Fatalf("cancel: %d", w.Code)
	}
	// wf #1: a Pipeline run waiting at an input (stage 5 "Build" with
	// step 6, as pipeline-node.json numbers them).
	must(s.AddJob("wf", JobSpec{Class: ClassWorkflowJob}))
	_, err = s.AddPipelineBuild("wf", PipelineBuildSpec{UserID: "admin", Pipeline: PipelineSpec{Stages: []StageSpec{
		{Name: "Build", Steps: []StepSpec{{Function: "git", Name: "Git", Log: []string{" > git rev-parse --is-inside-work-tree"}},
			{Function: "sh", Log: []string{"+ mvn package"}}}},
		{Name: "Deploy", Steps: []StepSpec{{Input: &InputSpec{ID: "Ok", Message: "Deploy?"}}}},
	}}})
	must(err)
	clk.Advance(10 * time.Second)
	return s
}

func TestFixtureShapes(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(fixtureDir); err != nil {
		t.Fatalf("fixtures not found at %s: %v", fixtureDir, err)
	}
	var files []string
	err := filepath.WalkDir(fixtureDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".json") {
			rel, _ := filepath.Rel(fixtureDir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	seen := map[string]bool{}
	used := map[int]bool{}
	s := fidelityServer(t)
	compared := 0
	for _, f := range files {
		seen[f] = true
		if _, ok := outOfScope[f]; ok {
			continue
		}
		target, ok := fixtureTargets[f]
		if !ok {
			t.Errorf("fixture %s is neither mapped to a simulator URL nor listed as out of scope", f)
			continue
		}
		raw, err := os.ReadFile(filepath.Join(fixtureDir, f))
		if err != nil {
			t.Fatal(err)
		}
		var fix any
		if err := json.Unmarshal(raw, &fix); err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		got := decode(t, call(t, s, "GET", target, "admin").Body.Bytes())
		var problems []string
		compareShape("", fix, got, &problems)
		for _, p := range problems {
			if !isAllowed(f, p, used) {
				t.Errorf("%s vs GET %s: %s", f, target, p)
			}
		}
		compared++
	}
	for f := range fixtureTargets {
		if !seen[f] {
			t.Errorf("mapped fixture %s is missing from %s", f, fixtureDir)
		}
	}
	for i, a := range allowed {
		if !used[i] {
			t.Errorf("allowlist entry %s %s (%s) matches no difference any more: remove it", a.file, a.path, a.why)
		}
	}
	if compared < len(fixtureTargets) {
		t.Errorf("compared %d fixtures, want %d", compared, len(fixtureTargets))
	}
}

func isAllowed(file, problem string, used map[int]bool) bool {
	for i, a := range allowed {
		if (a.file == "*" || a.file == file) && strings.HasPrefix(problem, a.path) {
			used[i] = true
			return true
		}
	}
	return false
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// compareShape reports where got lacks a field of fix or has it with
// another JSON type or "_class". null in fix matches anything. Each element
// of a fixture array must match some element of got's array (so an action
// is matched by its "_class", or by its keys when the fixture has none).
func compareShape(path string, fix, got any, problems *[]string) {
	if fix == nil {
		return
	}
	if jsonType(fix) != jsonType(got) {
		*problems = append(*problems, fmt.Sprintf("%s: fixture has %s, simulator %s", path, jsonType(fix), jsonType(got)))
		return
	}
	switch f := fix.(type) {
	case map[string]any:
		g := got.(map[string]any)
		keys := make([]string, 0, len(f))
		for k := range f {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			switch {
			case !ok:
				*problems = append(*problems, fmt.Sprintf("%s.%s: missing", path, k))
			case k == "_class" && f[k] != gv:
				*problems = append(*problems, fmt.Sprintf("%s._class: fixture %v, simulator %v", path, f[k], gv))
			default:
				compareShape(path+"."+k, f[k], gv, problems)
			}
		}
	case []any:
		g := got.([]any)
		for _, fe := range f {
			ep := path + "[]"
			if m, ok := fe.(map[string]any); ok && m["_class"] != nil {
				ep = fmt.Sprintf("%s[_class=%v]", path, m["_class"])
			}
			if len(g) == 0 {
				*problems = append(*problems, ep+": fixture has elements, simulator none")
				break
			}
			var best []string
			for i, ge := range g {
				var ps []string
				compareShape(ep, fe, ge, &ps)
				if len(ps) == 0 {
					best = nil
					break
				}
				if i == 0 || len(ps) < len(best) {
					best = ps
				}
			}
			if best != nil {
				*problems = append(*problems, fmt.Sprintf("%s: no matching element; closest: %s", ep, strings.Join(best, "; ")))
			}
		}
	}
}

// TestConsoleTextShape compares the recorded console texts' form: the
// cause on the first line, "Finished: RESULT" on the last.
func TestConsoleTextShape(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat(fixtureDir); err != nil {
		t.Fatalf("fixtures not found at %s: %v", fixtureDir, err)
	}
	s, _ := sample(t)
	ours := strings.Split(strings.TrimSuffix(call(t, s, "GET", "/job/frontend/job/docs/1/consoleText", "admin").Body.String(), "\n"), "\n")
	for _, f := range []string{"progressive-text.txt", "node-jenkins/consoleText.txt", "build-consoleText.txt"} {
		raw, err := os.ReadFile(filepath.Join(fixtureDir, f))
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
		if !strings.HasPrefix(lines[0], "Started by ") || !strings.HasPrefix(ours[0], "Started by ") {
			t.Errorf("%s: first lines %q / %q", f, lines[0], ours[0])
		}
		if last := lines[len(lines)-1]; last != "Finished: SUCCESS" || ours[len(ours)-1] != last {
			t.Errorf("%s: last lines %q / %q", f, last, ours[len(ours)-1])
		}
	}
}

// unusedFixtures are the recorded files no test reads, each with why.
var unusedFixtures = map[string]string{
	"build-number.txt":    "Run's buildNumber plain-text view (/job/x/lastBuild/buildNumber): Butler reads numbers from api/json",
	"build-timestamp.txt": "Run's buildTimestamp plain-text view: Butler reads timestamps from api/json",
}

// notFixtures are the files of testdata/jenkins that are not responses.
var notFixtures = map[string]bool{"README.md": true, "LICENSE-jenkins-rest.txt": true, "node-jenkins/LICENSE": true}

// TestFixtureInventory keeps testdata/jenkins and its README in step with
// the tests: every file the README names exists, and every recorded file
// is read by some test (a quoted name in a test file of internal/jenkins
// or internal/jenkinstest, outside this inventory), is a fixture of an API
// Butler does not use (outOfScope), or is listed in unusedFixtures with a
// reason. A fresh clone runs every fidelity test: a missing fixture fails.
func TestFixtureInventory(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join(fixtureDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	named := regexp.MustCompile("`([A-Za-z0-9._/-]+\\.(?:json|txt))`").FindAllSubmatch(readme, -1)
	if len(named) == 0 {
		t.Fatal("README.md names no fixture file")
	}
	for _, m := range named {
		name := string(m[1])
		if _, err := os.Stat(filepath.Join(fixtureDir, name)); err != nil {
			if _, err2 := os.Stat(filepath.Join(fixtureDir, "node-jenkins", name)); err2 != nil {
				t.Errorf("README.md names %s, which is missing: %v", name, err)
			}
		}
	}
	// The test sources that read fixtures, without this inventory's lists.
	var src strings.Builder
	for _, dir := range []string{".", "../jenkins"} {
		files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no test files in %s: %v", dir, err)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			text := string(b)
			if i := strings.Index(text, "// unusedFixtures are"); i >= 0 {
				text = text[:i]
			}
			src.WriteString(text)
		}
	}
	all := src.String()
	count := 0
	err = filepath.WalkDir(fixtureDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(fixtureDir, p)
		rel = filepath.ToSlash(rel)
		if notFixtures[rel] {
			return nil
		}
		count++
		_, out := outOfScope[rel]
		_, unused := unusedFixtures[rel]
		used := strings.Contains(all, `"`+rel+`"`)
		switch {
		case unused && used:
			t.Errorf("%s is listed as unused but a test reads it: remove it from unusedFixtures", rel)
		case !out && !unused && !used:
			t.Errorf("fixture %s is read by no test: use it, or list it in unusedFixtures or outOfScope with a reason", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name := range unusedFixtures {
		if _, err := os.Stat(filepath.Join(fixtureDir, name)); err != nil {
			t.Errorf("unusedFixtures lists %s, which is missing: %v", name, err)
		}
	}
	if count < 30 {
		t.Errorf("only %d fixtures in %s", count, fixtureDir)
	}
}
