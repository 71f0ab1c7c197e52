package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/butler-mcp/butler/internal/catalog"
)

// FuzzParse checks that no input makes Parse, Validate or the accessors
// panic, and that a successful Parse gives a Config whose secrets the
// error messages never show.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"full.yaml", "serve.yaml"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"~",
		"- a\n- b\n",
		"server: {listen: ${A}, public_url: $${B}}\n",
		"server: &x {listen: *x}\n",
		"auth:\n  tool_scopes: {default: [], ${T}: [x]}\n",
		"limits: {burst: ${A}, per_user_rps: .nan}\n",
		"store:\n  dsn: postgres://u:${A}@h:x/db\n",
		"jenkins:\n  user_template: '{{range split \"\" .User}}{{.}}{{end}}'\n",
		"a: [\n",
		"log: {}\n---\nlog: {}\n",
		"<<: {server: {}}\n",
		"\"\\xff\": 1\n",
	} {
		f.Add([]byte(s))
	}
	env := envMap(map[string]string{"A": "1", "B": "x", "T": "get_job"})
	noFiles := &ValidateOptions{ReadFile: func(string) ([]byte, error) { return nil, errors.New("no files in fuzzing") }}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, env)
		var ps Problems
		if err != nil && !errors.As(err, &ps) {
			if c != nil {
				t.Fatalf("Parse returned a config with a syntax error: %v", err)
			}
			return
		}
		if err != nil && c == nil {
			t.Fatalf("Parse returned Problems without the partial config: %v", err)
		}
		for _, m := range []Mode{ModeServe, ModeCheck, ModeStdio, ModeAdmin, ModeLink, ModePolicy} {
			_ = c.ValidateWith(m, noFiles)
		}
		_ = c.ResourceURL()
		_ = c.Audiences()
		_ = c.Origins()
		for _, tool := range append(catalog.Names(), "unknown") {
			if c.ScopesFor(tool) == nil {
				t.Fatalf("ScopesFor(%q) = nil", tool)
			}
		}
		_, _ = c.JenkinsBaseURL()
		_, _ = c.JenkinsUserFor("alice@example.com")
		_, _, _ = c.VaultKeys()
		_, _ = c.WebSessionKey()
	})
}
