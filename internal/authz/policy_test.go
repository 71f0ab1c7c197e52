package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestValidatePolicy_ShippedPoliciesAreValid(t *testing.T) {
	t.Parallel()
	if err := ValidatePolicy(DefaultPolicy(), "default.cedar"); err != nil {
		t.Errorf("default policy: %v", err)
	}
	if err := ValidatePolicy(examplePolicy(t), "policy.cedar"); err != nil {
		t.Errorf("example policy: %v", err)
	}
	// Every shipped policy names itself.
	for name, src := range map[string][]byte{"default": DefaultPolicy(), "example": examplePolicy(t)} {
		a := mustNew(t, src, name)
		for _, id := range a.PolicyIDs() {
			if strings.HasPrefix(id, "policy") {
				t.Errorf("%s: policy %q has no @id", name, id)
			}
		}
	}
}

func TestValidatePolicy_Problems(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		src  string
		want []string // substrings, one problem each
	}{
		{"syntax error with its position",
			"permit (principal, action, resource);\n\npermit (principal, action, resource) when { 1 + };",
			[]string{"authz: policy.cedar:3:50: syntax error: invalid primary (near \";\")"}},
		{"unterminated string",
			"permit (principal == User::\"al, action, resource);",
			[]string{"authz: policy.cedar:1:"}},
		{"unknown entity type in the scope",
			`permit (principal is Usr, action, resource);`,
			[]string{"authz: policy.cedar:1:1: policy \"policy0\": unknown entity type Usr"}},
		{"unknown entity type in a condition",
			`@id("p") permit (principal, action, resource) when { resource in Project::"x" };`,
			[]string{`policy "p": unknown entity type Project`}},
		{"unknown entity type in an is test",
			`@id("p") permit (principal, action, resource) unless { resource is Pipeline };`,
			[]string{`policy "p": unknown entity type Pipeline`}},
		{"namespaced type",
			`permit (principal, action, resource == Butler::Job::"a");`,
			[]string{`unknown entity type Butler::Job`}},
		{"unknown action (a typo)",
			`@id("f") forbid (principal, action == Action::"trigger", resource);`,
			[]string{`policy "f": unknown action Action::"trigger"`}},
		{"unknown action in a set",
			`permit (principal, action in [Action::"read", Action::"deploy"], resource);`,
			[]string{`unknown action Action::"deploy"`}},
		{"non-canonical folder",
			`forbid (principal, action, resource in Folder::"prod/");`,
			[]string{`Folder::"prod/" is not a canonical job path`}},
		{"dot-dot job",
			`forbid (principal, action, resource == Job::"a/../b");`,
			[]string{`Job::"a/../b" is not a canonical job path`}},
		{"wrong guest and server",
			`permit (principal == Guest::"bob", action, resource == Server::"jenkins");`,
			[]string{`Guest::"bob" never matches`, `Server::"jenkins" never matches`}},
		{"duplicate ids",
			"@id(\"x\") permit (principal, action, resource);\n@id(\"x\") permit (principal, action, resource);",
			[]string{`authz: policy.cedar:2:1: policy "x": duplicate policy id`}},
		{"empty id",
			`@id("") permit (principal, action, resource);`,
			[]string{`empty @id`}},
		{"every problem at once",
			"@id(\"a\") forbid (principal, action == Action::\"trigger\", resource);\n@id(\"b\") permit (principal is Usr, action, resource);",
			[]string{`policy "a": unknown action`, `policy "b": unknown entity type Usr`}},
		{"empty source", "", []string{"authz: policy.cedar: contains no policy"}},
		{"only comments", "// nothing yet\n", []string{"contains no policy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ValidatePolicy([]byte(tc.src), "policy.cedar")
			if err == nil {
				t.Fatalf("ValidatePolicy succeeded, want %q", tc.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Errorf("got %d problems, want %d:\n%v", len(lines), len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Errorf("error %T is not a *PolicyError", err)
			}
		})
	}
}

func TestValidatePolicy_SyntaxErrorPosition(t *testing.T) {
	t.Parallel()
	err := ValidatePolicy([]byte("permit (principal, action, resource)\n  when { context.x == };"), "p.cedar")
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Line != 2 || pe.Column == 0 || pe.File != "p.cedar" {
		t.Fatalf("err = %#v, want a PolicyError at line 2", err)
	}
	if !strings.HasPrefix(err.Error(), "authz: p.cedar:2:") {
		t.Errorf("Error() = %q", err)
	}
}

func TestValidatePolicy_GeneratedIDs(t *testing.T) {
	t.Parallel()
	a := mustNew(t, []byte(`permit (principal, action == Action::"health", resource);
@id("named") permit (principal is User, action, resource);
permit (principal, action == Action::"whoami", resource);`), "p.cedar")
	if got, want := strings.Join(a.PolicyIDs(), " "), "policy0 named policy2"; got != want {
		t.Errorf("PolicyIDs = %q, want %q", got, want)
	}
}

// TestValidatePolicy_RefusesDeepNesting pins that a policy nested deeper
// than MaxNesting is refused with a clear error, not a stack overflow.
func TestValidatePolicy_RefusesDeepNesting(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"a million !":   "permit (principal, action, resource) when { " + strings.Repeat("!", 1000000) + "true };",
		"deep brackets": "permit (principal, action, resource) when { " + strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300) + " };",
		"deep sets":     "permit (principal, action, resource) when { " + strings.Repeat("[", 300) + strings.Repeat("]", 300) + " == [] };",
	} {
		err := ValidatePolicy([]byte(src), "deep.cedar")
		if err == nil || !strings.Contains(err.Error(), "nested deeper than 200") {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Ordinary policies, with != and negative numbers, pass.
	ok := `permit (principal, action, resource) when { !(context.client_id != "x") && -1 < 2 && "a(b" == "a(b" }; // ((((`
	if err := ValidatePolicy([]byte(ok), "ok.cedar"); err != nil {
		t.Errorf("an ordinary policy: %v", err)
	}
}
