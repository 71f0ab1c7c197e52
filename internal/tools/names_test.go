package tools_test

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/tools"
)

// The tool list is repeated where packages cannot import tools (config's
// tool_scopes keys, authz's action groups). A tool added here but not there
// would escape its scope settings or be policed as a read: this test pins
// them together.
func TestToolNames_AgreeAcrossPackages(t *testing.T) {
	t.Parallel()
	ts, err := tools.New(tools.Deps{Authorizer: authz.New(nil),
		Principal: func(context.Context, *mcp.RequestExtra) identity.Principal { return identity.Principal{} }})
	if err != nil {
		t.Fatal(err)
	}
	names := ts.Names()
	cfgNames := config.ToolNames()
	slices.Sort(names)
	slices.Sort(cfgNames)
	if !slices.Equal(names, cfgNames) {
		t.Errorf("config.ToolNames() = %v, tools = %v", cfgNames, names)
	}
	for _, name := range ts.Names() {
		class, _ := ts.Class(name)
		want := authz.ActionRead
		if class == authz.ClassSensitive {
			want = authz.ActionWrite
		}
		// Asked with a read class, authz must still know a write tool.
		if got := authz.ActionGroup(name, authz.ClassRead); got != want {
			t.Errorf("authz puts %s under Action::%q, want %q", name, got, want)
		}
		policy := fmt.Sprintf("permit (principal, action == Action::%q, resource);", name)
		if err := authz.ValidatePolicy([]byte(policy), "p.cedar"); err != nil {
			t.Errorf("a policy naming %s is refused: %v", name, err)
		}
	}
}
