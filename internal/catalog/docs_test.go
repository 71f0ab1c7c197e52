package catalog_test

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/catalog"
)

var update = flag.Bool("update", false, "rewrite docs/tools.md's generated tool table from the catalog")

const (
	toolsDoc   = "../../docs/tools.md"
	tableBegin = "<!-- BEGIN TOOL TABLE (generated from internal/catalog; do not edit) -->\n"
	tableEnd   = "<!-- END TOOL TABLE -->"
)

// markdownTable renders the catalog as docs/tools.md's summary table.
func markdownTable() string {
	yes := map[bool]string{true: "yes", false: "no"}
	var b strings.Builder
	b.WriteString("| tool | class | resource | default scopes | read-only | destructive | idempotent | open-world |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, t := range catalog.All() {
		scopes := "`" + catalog.DefaultScope + "`"
		switch {
		case t.DefaultScopes == nil:
		case len(t.DefaultScopes) == 0:
			scopes = "none"
		default:
			scopes = "`" + strings.Join(t.DefaultScopes, "`, `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s | %s | %s |\n", t.Name, t.Class, t.Resource, scopes,
			yes[t.ReadOnly], yes[t.Destructive], yes[t.Idempotent], yes[t.OpenWorld])
	}
	return b.String()
}

// TestDocs_ToolTableIsTheCatalog pins docs/tools.md's table to the
// catalog, so the docs cannot drift from the code. Run with -update after
// changing the catalog.
func TestDocs_ToolTableIsTheCatalog(t *testing.T) {
	data, err := os.ReadFile(toolsDoc)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, tableBegin), strings.Index(doc, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated tool table between %q and %q", toolsDoc, tableBegin, tableEnd)
	}
	got, want := doc[i+len(tableBegin):j], markdownTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(toolsDoc, []byte(doc[:i+len(tableBegin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's tool table differs from the catalog; run go test ./internal/catalog -run TestDocs -update\ngot:\n%s\nwant:\n%s", toolsDoc, got, want)
}

// TestDocs_EveryToolIsDescribed pins that docs/tools.md has a section for
// every tool of the catalog.
func TestDocs_EveryToolIsDescribed(t *testing.T) {
	data, err := os.ReadFile(toolsDoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range catalog.Names() {
		if !strings.Contains(string(data), "### `"+name+"`") {
			t.Errorf("%s has no section \"### `%s`\"", toolsDoc, name)
		}
	}
}

const (
	readme           = "../../README.md"
	readmeTableBegin = "<!-- BEGIN README TOOL TABLE (generated from internal/catalog; do not edit) -->\n"
	readmeTableEnd   = "<!-- END README TOOL TABLE -->"
)

// readmeTable renders the catalog as the README's tool table: what each
// tool is for, its bounds and its Jenkins request budget.
func readmeTable() string {
	var b strings.Builder
	b.WriteString("| tool | class | bounds | Jenkins requests a call |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, t := range catalog.All() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", t.Name, t.Class, t.Bounds, t.JenkinsRequests)
	}
	return b.String()
}

// TestDocs_ReadmeToolTableIsTheCatalog pins the README's tool table
// (bounds and Jenkins request budget) to the catalog. Run with -update
// after changing the catalog.
func TestDocs_ReadmeToolTableIsTheCatalog(t *testing.T) {
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	i, j := strings.Index(doc, readmeTableBegin), strings.Index(doc, readmeTableEnd)
	if i < 0 || j < i {
		t.Fatalf("%s has no generated tool table between %q and %q", readme, readmeTableBegin, readmeTableEnd)
	}
	got, want := doc[i+len(readmeTableBegin):j], readmeTable()
	if got == want {
		return
	}
	if *update {
		if err := os.WriteFile(readme, []byte(doc[:i+len(readmeTableBegin)]+want+doc[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s's tool table differs from the catalog; run go test ./internal/catalog -run TestDocs -update\ngot:\n%s\nwant:\n%s", readme, got, want)
}
