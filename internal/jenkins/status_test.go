package jenkins

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

// A job Jenkins no longer reports where the listing saw it (renamed or
// deleted since) comes back unknown, never with another job's status.
func TestJobStatuses_JobGoneSinceTheListing(t *testing.T) {
	t.Parallel()
	l, _, err := streamListing([]byte(`{"jobs":[{"name":"a","url":"http://j/job/a/"},{"name":"b","url":"http://j/job/b/"},{"name":"c","url":"http://j/job/c/"}]}`), "", true)
	if err != nil {
		t.Fatal(err)
	}
	var tree string
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tree = r.URL.Query().Get("tree")
		// "b" was deleted: "c" moved up to its position.
		_, _ = w.Write([]byte(`{"jobs":[{"name":"a","color":"blue","lastBuild":{"number":4}},{"name":"c","color":"red","lastBuild":null}]}`))
	}))
	defer hs.Close()
	c, err := New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := c.JobStatuses(context.Background(), Credential{User: "u", APIToken: "t"}, l, 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if tree != "jobs[name,color,lastBuild[number]]{0,3}" {
		t.Errorf("tree = %q", tree)
	}
	want := []JobStatus{{Color: "blue", LastBuild: 4, Known: true}, {}, {Color: "red", Known: true}}
	for i := range want {
		if st[i] != want[i] {
			t.Errorf("%s: %+v, want %+v", l.Name(i), st[i], want[i])
		}
	}
}
