package tools_test

import (
	"slices"
	"testing"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/tools"
)

// The catalog is the one list of tools: the toolset registers exactly its
// tools, in its order, with its titles, descriptions and annotations.
func TestToolset_IsTheCatalog(t *testing.T) {
	t.Parallel()
	ts, err := tools.New(tools.Deps{Authorizer: authz.New(nil), Scope: tools.FixedPrincipal(identity.Principal{})})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := ts.Names(), catalog.Names(); !slices.Equal(got, want) {
		t.Fatalf("toolset tools = %v, catalog = %v", got, want)
	}
	for i, tool := range ts.Tools() {
		e := catalog.All()[i]
		a := tool.Annotations
		if tool.Title != e.Title || tool.Description != e.Description || a.ReadOnlyHint != e.ReadOnly ||
			*a.DestructiveHint != e.Destructive || a.IdempotentHint != e.Idempotent || *a.OpenWorldHint != e.OpenWorld {
			t.Errorf("%s: registered %+v with annotations %+v, catalog says %+v", tool.Name, tool, a, e)
		}
	}
}
