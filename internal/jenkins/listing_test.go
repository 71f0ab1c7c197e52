package jenkins

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A listing keeps what Jenkins said: URLs it derives from the path are not
// stored but come back the same, URLs it does not (a name Jenkins encodes
// differently, another host) are kept as sent; children listed before
// their folder's name (Stapler's property order) are read; a folder cut at
// the tree depth is returned for its own request.
func TestListing_KeepsJenkinsAnswer(t *testing.T) {
	t.Parallel()
	data := []byte(`{"_class":"hudson.model.Hudson","jobs":[
		{"_class":"com.cloudbees.hudson.plugins.folder.Folder","jobs":[
			{"_class":"hudson.model.FreeStyleProject","buildable":true,"color":"blue","lastBuild":{"number":7},"name":"api","url":"https://ci.example.com/jenkins/job/backend/job/api/"},
			{"_class":"hudson.model.FreeStyleProject","buildable":false,"color":"disabled","lastBuild":null,"name":"a b(c)","url":"https://ci.example.com/jenkins/job/backend/job/a%20b(c)/"}
		],"name":"backend","url":"https://ci.example.com/jenkins/job/backend/"},
		{"name":"deep","url":"https://ci.example.com/jenkins/job/deep/","jobs":[{"name":"x"}]},
		{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowJob","buildable":true,"color":"red_anime","name":"deploy","url":"http://other-host:8080/job/deploy/"},
		{"name":"","url":"https://ci.example.com/jenkins/job/nameless/"}
	]}`)
	l, deeper, err := streamListing(data, "", true)
	if err != nil {
		t.Fatal(err)
	}
	var got []JobSummary
	for i := range l.Len() {
		got = append(got, l.Job(i))
	}
	want := []JobSummary{
		{FullName: "backend/a b(c)", Class: "hudson.model.FreeStyleProject", URL: "https://ci.example.com/jenkins/job/backend/job/a%20b(c)/"},
		{FullName: "backend/api", Class: "hudson.model.FreeStyleProject", URL: "https://ci.example.com/jenkins/job/backend/job/api/", Buildable: true},
		{FullName: "deploy", Class: "org.jenkinsci.plugins.workflow.job.WorkflowJob", URL: "http://other-host:8080/job/deploy/", Buildable: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}
	if len(deeper) != 1 || deeper[0].String() != "deep" {
		t.Errorf("cut-off folders: %v", deeper)
	}
	// Only the two URLs Butler would not write itself are stored.
	if len(l.urls) != 2 {
		t.Errorf("stored %d URLs, want 2 (the others are derived): %q", len(l.urls), l.urls)
	}
	if i := l.After("backend/api"); i != 2 || l.Name(i) != "deploy" {
		t.Errorf("After(backend/api) = %d", i)
	}
	f := l.Filter(func(name string) bool { return name != "backend/api" })
	if f.Len() != 2 || f.Name(0) != "backend/a b(c)" || f.Name(1) != "deploy" || l.Len() != 3 {
		t.Errorf("filter: %d jobs, original %d", f.Len(), l.Len())
	}
	if all := l.Filter(func(string) bool { return true }); all != l {
		t.Errorf("a filter keeping every job copied the listing")
	}
}

// A folder's listing derives its jobs' URLs below the folder's own URL.
func TestListing_FolderURLs(t *testing.T) {
	t.Parallel()
	data := []byte(`{"jobs":[{"name":"web","url":"https://ci/job/team/job/web/","color":"blue"},{"name":"sub","url":"https://ci/job/team/job/sub/","jobs":[{"name":"j","url":"https://ci/job/team/job/sub/job/j/"}]}]}`)
	l, _, err := streamListing(data, "team", true)
	if err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 || l.Job(0).URL != "https://ci/job/team/job/sub/job/j/" || l.Job(1).URL != "https://ci/job/team/job/web/" || len(l.urls) != 0 {
		t.Errorf("folder listing: %+v %+v urls=%q", l.Job(0), l.Job(1), l.urls)
	}
}
