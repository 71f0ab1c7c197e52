package diagnose_test

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/diagnose"
	"github.com/butler-mcp/butler/internal/diagnose/corpus"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// TestCorpus_ThroughTheClient puts every corpus case in the simulator,
// reads each build's console text the way the diagnose_build tool will
// (Butler's client, page by page, as the build's reader) and diagnoses
// the text the client returns: the console text a person sees must give
// the same first excerpt as the corpus's own text, and every request must
// carry the reading user's credential.
func TestCorpus_ThroughTheClient(t *testing.T) {
	t.Parallel()
	cases, err := corpus.Cases()
	if err != nil {
		t.Fatal(err)
	}
	sim := jenkinstest.New(nil)
	sim.AddUser("bob", "Bob Jones", "bob-token")
	sim.Grant("bob", "ci-failures", jenkinstest.PermRead)
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	client, err := jenkins.New(hs.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	bob := jenkins.Credential{User: "bob", APIToken: "bob-token"}
	for _, c := range cases {
		cb, err := sim.AddCorpusCase("ci-failures", c)
		if err != nil {
			t.Fatal(err)
		}
		job, n := cb.Job, cb.Build
		p, err := jobpath.Parse(job)
		if err != nil {
			t.Fatal(err)
		}
		var text strings.Builder
		for start := int64(0); ; {
			chunk, err := client.ReadLog(context.Background(), bob, p, int64(n), start, 64<<10)
			if err != nil {
				t.Fatalf("%s: %v", c.Name, err)
			}
			text.Write(chunk.Text)
			if !chunk.More() {
				break
			}
			start = chunk.Next
		}
		if text.String() != c.Console {
			t.Errorf("%s: the client's console text differs from the corpus's", c.Name)
			continue
		}
		b := buildOf(&c)
		b.Console = strings.NewReader(text.String())
		r, err := diagnose.Diagnose(context.Background(), b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.ErrorExcerpts) == 0 || !hit(r.ErrorExcerpts[0], c.Expect.Decisive) {
			t.Errorf("%s: first excerpt misses %q: %+v", c.Name, c.Expect.Decisive, r.ErrorExcerpts)
		}
	}
	for _, req := range sim.Requests() {
		if req.User != "bob" {
			t.Errorf("request %s %s as %q, want bob's own credential", req.Method, req.Path, req.User)
		}
	}
}
