package jenkins

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// The wire kinds of the artifact and change-set requests (see wireKinds):
// what real Jenkins answers each, from the fixtures where they record it,
// else from the source.

// artifactsFixtures: build-info.json and build-info-git-commit.json archived
// fish.txt (Run.getArtifacts's relativePath, fileName, displayPath).
var artifactsFixtures = []fixtureAt{{"build-info.json", ""}, {"build-info-git-commit.json", ""}}

// changesFixtures: build-info-git-commit.json's git change set, a
// GitChangeSetList of GitChangeSets (its changeSets list is the one a
// Pipeline build exports; a freestyle build's changeSet is the same bean).
var changesFixtures = []fixtureAt{{"build-info-git-commit.json", ""}, {"build-info-no-params.json", ""}, {"node-jenkins/buildGet.json", ""}}

func init() {
	// pipeline-stage-view-plugin rest-api/src/main/java/com/cloudbees/workflow/rest/external/BuildArtifactExt.java:
	// Jackson writes id, name, path, url (strings) and size (a long); no
	// fixture records wfapi/artifacts.
	sourceShapes["stageViewArtifacts"] = `[{"id":"","name":"","path":"","url":"","size":0}]`
	simOnly = append(simOnly,
		struct{ kind, path, why string }{"changes", ".changeSet", "AbstractBuild.getChangeSet is @Exported (core/src/main/java/hudson/model/AbstractBuild.java); the fixtures' freestyle builds were read by a Jenkins that wrote changeSets"},
		struct{ kind, path, why string }{"*", ".actions[]._class=hudson.plugins.git.util.BuildData", "git-plugin src/main/java/hudson/plugins/git/util/BuildData.java: the fixtures' builds fetched nothing with the git plugin"},
		struct{ kind, path, why string }{"changes", ".actions[].remoteUrls", "BuildData.getRemoteUrls is @Exported (git-plugin src/main/java/hudson/plugins/git/util/BuildData.java)"},
		struct{ kind, path, why string }{"changes", ".actions[]._class=", "asked for actions[remoteUrls], Stapler writes every action with its class (the build kind's entries name them)"},
		struct{ kind, path, why string }{"changes", "._class=hudson.model.FreeStyleBuild: ", "core/src/main/java/hudson/model/FreeStyleBuild.java; in queueItemRunning.json's executable"},
		struct{ kind, path, why string }{"artifacts", "._class", "the build's class (FreeStyleBuild, WorkflowRun), which build-info*.json (Jenkins 1.x, before Stapler wrote _class) lack"},
	)
}

func artifactWireKinds() []wireKind {
	json200 := "application/json;charset=utf-8"
	return []wireKind{
		{name: "artifacts", method: "GET", path: regexp.MustCompile(`^` + buildPath + `api/json$`), tree: func(s string) bool { return strings.HasPrefix(s, "number,artifacts[") },
			status: []int{200}, contentType: json200, fixtures: artifactsFixtures},
		{name: "stage view artifacts", method: "GET", path: regexp.MustCompile(`^` + buildPath + `wfapi/artifacts$`),
			status: []int{200}, contentType: "application/json; charset=UTF-8", source: "stageViewArtifacts"},
		{name: "changes", method: "GET", path: regexp.MustCompile(`^` + buildPath + `api/json$`), tree: func(s string) bool { return strings.HasPrefix(s, "number,changeSet[") },
			status: []int{200}, contentType: json200, fixtures: changesFixtures},
		{name: "artifact", method: "GET", path: regexp.MustCompile(`^` + buildPath + `artifact/.+$`),
			status: []int{200, 206, 302, 404, 500}, check: checkArtifact},
		{name: "artifact size", method: "HEAD", path: regexp.MustCompile(`^` + buildPath + `artifact/.+$`),
			status: []int{200}},
	}
}

// butlerArtifactRequests drives the artifact and change-set requests
// against the Sample instance: listings of a freestyle and a Pipeline build,
// whole and ranged reads, a folder (302), a missing file (404), a start
// past the end (500, then HEAD), and change sets of both kinds.
func butlerArtifactRequests(t *testing.T, c *Client) {
	t.Helper()
	ctx := context.Background()
	admin := Credential{User: "admin", APIToken: "admin-token"}
	for _, j := range []struct {
		job string
		n   int64
	}{{"frontend/web-app", 5}, {"frontend/docs", 3}, {"frontend/docs", 0}} {
		if _, err := c.ListArtifacts(ctx, admin, mustJobPath(t, j.job), j.n, 1000); err != nil {
			t.Fatalf("list artifacts %s #%d: %v", j.job, j.n, err)
		}
		if _, err := c.BuildChanges(ctx, admin, mustJobPath(t, j.job), j.n, ChangesOptions{}); err != nil {
			t.Fatalf("changes %s #%d: %v", j.job, j.n, err)
		}
	}
	web := mustJobPath(t, "frontend/web-app")
	ap := func(s string) ArtifactPath {
		p, err := ParseArtifactPath(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	if _, err := c.ReadArtifact(ctx, admin, web, 5, ap("reports/coverage.txt"), 0, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadArtifact(ctx, admin, web, 5, ap("reports/coverage.txt"), 100, 100); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadArtifact(ctx, admin, web, 5, ap("reports"), 0, 100); !errors.Is(err, ErrArtifactIsDirectory) {
		t.Fatalf("folder: %v", err)
	}
	if _, err := c.ReadArtifact(ctx, admin, web, 5, ap("reports/nope.txt"), 0, 100); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing: %v", err)
	}
	if _, err := c.ReadArtifact(ctx, admin, web, 5, ap("reports/coverage.txt"), 1<<30, 100); !errors.Is(err, ErrRangeNotSatisfiable) {
		t.Fatalf("past the end: %v", err)
	}
}

// checkArtifact: DirectoryBrowserSupport and Stapler's serveStaticResource
// answer a file with Accept-Ranges and Content-Length, a Range with 206
// and Content-Range, a folder with a 302 to its "/" form. Jenkins:
// core/src/main/java/hudson/model/DirectoryBrowserSupport.java; stapler
// core/src/main/java/org/kohsuke/stapler/Stapler.java.
func checkArtifact(t *testing.T, _ wireRun, r wireRecord) {
	t.Helper()
	switch r.status {
	case http.StatusOK, http.StatusPartialContent:
		if r.header.Get("Accept-Ranges") != "bytes" || r.header.Get("Content-Length") == "" || r.header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("artifact %s: headers %v", r.path, r.header)
		}
		if (r.status == http.StatusPartialContent) != (r.header.Get("Content-Range") != "") {
			t.Errorf("artifact %s %d: Content-Range %q", r.path, r.status, r.header.Get("Content-Range"))
		}
	case http.StatusFound:
		if !strings.HasSuffix(r.header.Get("Location"), r.path+"/") {
			t.Errorf("artifact folder %s: Location %q", r.path, r.header.Get("Location"))
		}
	}
}
