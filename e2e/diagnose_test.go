package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// TestServe_DiagnoseBuild drives diagnose_build through `butler serve` as
// alice, bob and carol against the demo instance's diagnosis folder
// (alice and bob may read it, carol may not): the answer points at the
// failed stage and its decisive line within 16 KiB; the upstream job
// platform/bom, which only alice may read, is named to her alone; carol's
// hidden job is not_found like a missing one; build numbers below 1 are
// invalid_argument; every Jenkins request carries the caller's own
// credential.
func TestServe_DiagnoseBuild(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	s := a.serve(t, addr)
	as := a.asEachUser(t, s.url, "alice", "bob", "carol")
	maven := map[string]any{"job": "diagnosis/maven-compile-error"}
	gradle := map[string]any{"job": "diagnosis/gradle-dependency-resolution"}
	for _, u := range []string{"alice", "bob"} {
		as(u, func(cs *mcp.ClientSession) {
			out := mustOK(t, cs, "diagnose_build", maven)
			data, _ := json.Marshal(out)
			if len(data) > 16<<10 {
				t.Errorf("%s: answer of %d bytes", u, len(data))
			}
			fs := out["failed_stages"].([]any)
			ex := out["error_excerpts"].([]any)
			if out["result"] != "FAILURE" || len(fs) == 0 || fs[0].(map[string]any)["name"] != "Build" || len(ex) == 0 ||
				!strings.Contains(strings.Join(asStrings(ex[0].(map[string]any)["lines"]), "\n"), "TaxCalculator.java:[42,31] cannot find symbol") {
				t.Errorf("%s: maven-compile-error diagnosed as %s", u, data)
			}
			up := mustOK(t, cs, "diagnose_build", gradle)
			got, has := up["upstream_cause"].(map[string]any)
			switch {
			case u == "alice" && (!has || got["job"] != "platform/bom"):
				t.Errorf("alice may read platform/bom: upstream cause %v", up["upstream_cause"])
			case u == "bob" && has:
				t.Errorf("bob may not read platform/bom, yet it is named: %v", got)
			}
			mustFail(t, cs, "diagnose_build", map[string]any{"job": "diagnosis/maven-compile-error", "build": 0}, "invalid_argument", 400)
			mustOK(t, cs, "diagnose_build", map[string]any{"job": "diagnosis/maven-compile-error", "build": 1})
		})
	}
	as("carol", func(cs *mcp.ClientSession) {
		hidden := mustFail(t, cs, "diagnose_build", maven, "not_found", 404)
		missing := mustFail(t, cs, "diagnose_build", map[string]any{"job": "diagnosis/maven-compile-errox"}, "not_found", 404)
		if strings.Replace(hidden["message"].(string), "maven-compile-error", "maven-compile-errox", 1) != missing["message"] {
			t.Errorf("hidden %q, missing %q", hidden["message"], missing["message"])
		}
		// carol reads her own failed build: frontend/web-app #6.
		out := mustOK(t, cs, "diagnose_build", map[string]any{"job": "frontend/web-app", "build": 6})
		if out["result"] != "FAILURE" || len(out["error_excerpts"].([]any)) == 0 {
			t.Errorf("carol's frontend/web-app #6: %v", out)
		}
	})
}

func asStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}
