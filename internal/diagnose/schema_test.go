package diagnose_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/diagnose"
)

// The tool will use Report as its typed output: its schema must infer,
// name the contract's fields, and describe them for a model.
func TestReport_SchemaNamesTheContractFields(t *testing.T) {
	t.Parallel()
	s, err := jsonschema.For[diagnose.Report](nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"result", "failed_stages", "error_excerpts", "failing_tests", "changes_since_last_success", "upstream_cause", "hints", "truncated"} {
		p, ok := s.Properties[f]
		if !ok {
			t.Errorf("no property %q", f)
			continue
		}
		if p.Description == "" {
			t.Errorf("property %q has no description", f)
		}
	}
	ex := s.Properties["error_excerpts"].Items
	for _, f := range []string{"stage", "line_number", "lines"} {
		if _, ok := ex.Properties[f]; !ok {
			t.Errorf("error_excerpts[] has no %q", f)
		}
	}
	// A report validates against its own schema.
	r := run(t, &diagnose.Build{Result: "FAILURE", Pipeline: true, Upstream: &diagnose.Upstream{Job: "a/b", Build: 2},
		Stages:       []diagnose.Stage{{ID: "7", Name: "Build", Status: "FAILED", Log: strings.NewReader("Killed\n")}},
		FailingTests: []diagnose.Test{{Name: "t"}}, Changes: []diagnose.Commit{{ID: "abc", Author: "bob", Message: "m"}}}, nil)
	resolved, err := s.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(r)
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	if err := resolved.Validate(v); err != nil {
		t.Fatalf("report does not validate: %v\n%s", err, js)
	}
}
