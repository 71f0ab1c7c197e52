package authz

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/identity"
)

// FuzzDecide feeds arbitrary build parameters (the JSON a caller sends as
// trigger_job's parameters), job paths and groups through the Cedar
// request building and a decision under the example-like policy: nothing
// panics, a path the parser refuses is denied, and no parameter value
// appears in a reason.
func FuzzDecide(f *testing.F) {
	a, err := NewWithPolicy(&Options{Policy: []byte(`
@id("all") permit (principal, action, resource);
@id("prod") forbid (principal, action in Action::"write", resource in Folder::"prod") unless { principal in Group::"release" };
@id("env") forbid (principal, action == Action::"trigger_job", resource)
  when { context.parameters has ENV && context.parameters.ENV == "production" };
@id("num") forbid (principal, action, resource) when { context.parameters has N && context.parameters.N > 10 };
`)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(`{"ENV":"production","N":3}`, "prod/deploy", "release")
	f.Add(`{"N":1e300,"X":[1,{"a":null}],"Y":true}`, "a/../b", "")
	f.Add(`{"N":"11"}`, "", "g")
	f.Fuzz(func(t *testing.T, params, job, group string) {
		var p map[string]any
		if json.Unmarshal([]byte(params), &p) != nil {
			return
		}
		principal := identity.Principal{User: "u", JenkinsUser: "u", Groups: []string{group}, Scopes: []string{"jenkins:build"}}
		d := a.Decide(context.Background(), Request{Principal: principal, Tool: "trigger_job", Job: job, Parameters: p})
		if d.Allow && d.Code != "" {
			t.Fatalf("an allow with a code: %+v", d)
		}
		for _, v := range p {
			if s, ok := v.(string); ok && len(s) >= 8 && strings.Contains(d.Reason, s) {
				t.Fatalf("the reason %q carries a parameter value", d.Reason)
			}
		}
	})
}
