package tools

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
)

// TestOutputSchemas_HaveNoTypeArrays: no output schema node carries a type
// array (the MCP Inspector's strict check warns on each, 49 of its 53
// warnings before), and a nullable field still admits null and its value.
func TestOutputSchemas_HaveNoTypeArrays(t *testing.T) {
	t.Parallel()
	ts, err := New(Deps{Authorizer: authz.New(nil), Scope: FixedPrincipal(identity.Principal{})})
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range ts.Tools() {
		data, err := json.Marshal(tool.OutputSchema)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), `"type":[`) {
			t.Errorf("%s: output schema has a type array: %s", tool.Name, data)
		}
	}
	type row struct {
		Error *struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	s, err := jsonschema.For[row](nil)
	if err != nil {
		t.Fatal(err)
	}
	portableNullable(s)
	resolved, err := s.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []map[string]any{{"error": nil}, {"error": map[string]any{"code": "x"}}} {
		if err := resolved.Validate(v); err != nil {
			t.Errorf("%v: %v", v, err)
		}
	}
	if err := resolved.Validate(map[string]any{"error": "x"}); err == nil {
		t.Error("a string error was accepted")
	}
}
