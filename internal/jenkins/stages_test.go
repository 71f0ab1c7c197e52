package jenkins

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// TestSubmitInput_RefusalIsForbidden: Jenkins refuses an answer with a
// hudson.model.Failure, a 400 with X-Error (or, rendered on its 500 page,
// the same message): both are ErrForbidden with Jenkins's message; any
// other 500 stays ErrUnavailable, and only a 200 is a success.
func TestSubmitInput_RefusalIsForbidden(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		h       http.HandlerFunc
		want    error
		message string
	}{
		{"400 Failure", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("X-Error", "You need to be ops to submit this.")
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(400)
		}, ErrForbidden, "You need to be ops to submit this."},
		{"500 page with the Failure", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(500)
			_, _ = w.Write([]byte("<html><body><h1>Oops</h1><p>You need to have Job/Cancel permissions to cancel this.</p></body></html>"))
		}, ErrForbidden, "You need to have Job/Cancel permissions to cancel this."},
		{"other 500", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(500) }, ErrUnavailable, ""},
		{"400 without X-Error", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(400) }, ErrBadRequest, ""},
		{"a redirect is not an answer", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/login", http.StatusFound)
		}, ErrUnavailable, ""},
		{"200", func(w http.ResponseWriter, _ *http.Request) {}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var path, form string
			hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				path = r.URL.EscapedPath()
				_ = r.ParseForm()
				form = r.PostForm.Get("json")
				tc.h(w, r)
			}))
			defer hs.Close()
			c, err := New(hs.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			job, _ := jobpath.Parse("a/b")
			err = c.SubmitInput(context.Background(), Credential{User: "u", APIToken: "t"}, job, 3, "Go on", true,
				[]InputValue{{"ENV", "prod"}, {"DRY", true}})
			if path != "/job/a/job/b/3/input/Go%20on/proceed" || form != `{"parameter":[{"name":"ENV","value":"prod"},{"name":"DRY","value":true}]}` {
				t.Errorf("sent %s json=%s", path, form)
			}
			if tc.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var je *Error
			if !errors.Is(err, tc.want) || !errors.As(err, &je) || je.Detail != tc.message && tc.message != "" {
				t.Fatalf("err %v, want %v with %q", err, tc.want, tc.message)
			}
		})
	}
}

// TestParsePipeline_Fixtures: the recorded stage-view answers parse.
func TestParsePipeline_Fixtures(t *testing.T) {
	t.Parallel()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("../../testdata/jenkins", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	r, err := ParsePipelineRun(read("workflow.json"))
	if err != nil || r.Number != 16 || r.Status != StagePaused || len(r.Stages) != 3 || r.Stages[2].Name != "Deploy" || !r.PendingInput {
		t.Fatalf("workflow.json: %+v %v", r, err)
	}
	st, err := ParseStageDetail(read("pipeline-node.json"))
	if err != nil || len(st.Steps) != 2 || !st.Steps[0].HasLog || st.Steps[1].Name != "Shell Script" {
		t.Fatalf("pipeline-node.json: %+v %v", st, err)
	}
	if _, err := ParseStageDetail(read("workflow.json")); err == nil {
		t.Error("a run description parsed as a stage")
	}
	if _, err := ParsePipelineRun([]byte(`{"id":"1","name":"#1","status":"WEIRD","stages":[]}`)); err == nil || !strings.Contains(err.Error(), "WEIRD") {
		t.Errorf("unknown status: %v", err)
	}
}

// FuzzParsePipeline feeds Jenkins-controlled JSON to the stage-view
// parsers: they return an error or a value, never panic, and never accept
// a node id that is not a number (ids go into URLs).
func FuzzParsePipeline(f *testing.F) {
	for _, s := range []string{
		`{"id":"16","name":"#16","status":"SUCCESS","stages":[{"id":"5","name":"B","status":"FAILED","error":{"message":"x","type":"y"}}]}`,
		`{"id":"5","name":"B","status":"SUCCESS","stageFlowNodes":[{"_links":{"log":{"href":"x"}},"id":"6","name":"s","status":"SUCCESS"}]}`,
		`[{"id":"Go","proceedText":"OK","message":"m","inputs":[{"type":"ChoiceParameterDefinition","name":"E","definition":{"defaultVal":"a","choices":["a","b"]}}]}]`,
		`{"id":"../x","status":"SUCCESS","stages":[{"id":"../../a","status":"SUCCESS"}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if r, err := ParsePipelineRun(data); err == nil {
			for _, st := range r.Stages {
				if strings.Trim(st.ID, "0123456789") != "" {
					t.Fatalf("stage id %q accepted", st.ID)
				}
			}
		}
		if st, err := ParseStageDetail(data); err == nil {
			for _, s := range st.Steps {
				if strings.Trim(s.ID, "0123456789") != "" {
					t.Fatalf("step id %q accepted", s.ID)
				}
			}
		}
		_, _ = ParsePendingInputs(data)
	})
}
