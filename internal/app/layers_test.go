package app_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/butler-mcp/butler/"

// floors puts every production package on a floor: a package imports only
// packages on lower floors, so dependencies flow one way, with app as the
// root of everything the server runs (demo and the command sit above it).
var floors = map[string]int{
	"internal/catalog": 0, "internal/secret": 0, "internal/jobpath": 0, "internal/authn": 0, "internal/ratelimit": 0,
	"internal/devidp": 0, "internal/jenkinstest": 1, "internal/testsupport/hydra": 0,
	"internal/telemetry": 0, "internal/telemetry/export": 0, "internal/diagnose": 0, "internal/diagnose/corpus": 0,
	"internal/identity": 1, "internal/jenkins": 1, "internal/metrics": 1, "internal/config": 1,
	"internal/request": 2, "internal/authz": 2,
	"internal/audit":       3,
	"internal/store":       4,
	"internal/credentials": 5,
	"internal/tools":       6,
	"internal/connect":     6,
	"internal/server":      7,
	"internal/app":         8,
	"internal/demo":        9,
	"cmd/butler":           10,
	// Test support, not imported by production code.
	"internal/store/storetest": 5, "internal/store/sqlite": 5, "internal/store/postgres": 5,
	"e2e": 11,
	// The deployment artifacts' tests (deploy/).
	"deploy": 11,
}

// readers are the only packages that may import these.
var readers = map[string][]string{
	// The composition root: nothing below app depends on the config's shape.
	"internal/config": {"internal/app", "internal/demo", "cmd/butler"},
	// Demo and test doubles: never in what `butler serve` runs.
	"internal/demo":        {"cmd/butler"},
	"internal/devidp":      {"internal/demo"},
	"internal/jenkinstest": {"internal/demo"},
}

// TestImportGraph_OneWayLayers pins the package layering: every import
// goes to a lower floor, only app (and the demo and command above it) read
// the config, and only the demo imports the simulator and the dev IdP.
func TestImportGraph_OneWayLayers(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}:{{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkgPath, imports, _ := strings.Cut(line, ":")
		pkg := strings.TrimPrefix(pkgPath, module)
		floor, ok := floors[pkg]
		if !ok {
			t.Errorf("package %s has no floor: add it to floors", pkg)
			continue
		}
		for _, imp := range strings.Fields(imports) {
			dep, ours := strings.CutPrefix(imp, module)
			if !ours {
				continue
			}
			if f, ok := floors[dep]; ok && f >= floor {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports must go down", pkg, floor, dep, f)
			}
			if allowed, limited := readers[dep]; limited && !slices.Contains(allowed, pkg) {
				t.Errorf("%s imports %s, which only %v may import", pkg, dep, allowed)
			}
		}
	}
}
