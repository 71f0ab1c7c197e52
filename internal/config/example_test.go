package config_test

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/butler-mcp/butler/internal/config"
)

// A command loads its config, validates it for what it is about to do, and
// prints every problem at once if there are any.
func ExampleLoad() {
	// Tests pass a fixed environment; a command passes config.OSGetenv.
	env := map[string]string{"BUTLER_VAULT_KEY": "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="}
	getenv := func(name string) (string, bool) { v, ok := env[name]; return v, ok }

	cfg, err := config.Load(filepath.Join("testdata", "serve.yaml"), getenv)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := cfg.Validate(config.ModeServe); err != nil {
		fmt.Println(err)
		return
	}
	jenkins, _ := cfg.JenkinsBaseURL()
	fmt.Println("resource:", cfg.ResourceURL())
	fmt.Println("audiences:", cfg.Audiences())
	fmt.Println("trigger_job needs:", cfg.ScopesFor("trigger_job"))
	fmt.Println("jenkins:", jenkins)
	fmt.Println("vault key:", cfg.Store.VaultKey)
	// Output:
	// resource: https://butler.example.com/mcp
	// audiences: [https://butler.example.com/mcp]
	// trigger_job needs: [jenkins:build]
	// jenkins: https://ci.example.com/
	// vault key: [redacted]
}

// Validate reports every problem, one a line; errors.As gives them as a
// list.
func ExampleConfig_Validate() {
	cfg, err := config.Parse([]byte(`
server:
  public_url: http://butler.example.com
auth:
  issuer: https://idp.example.com
  algorithms: [HS256]
jenkins:
  url: https://ci.example.com
store:
  vault_key: ${BUTLER_VAULT_KEY}
`), func(string) (string, bool) { return "", false })
	if err != nil {
		fmt.Println(err)
		return
	}
	err = cfg.Validate(config.ModeServe)
	var problems config.Problems
	if errors.As(err, &problems) {
		for _, p := range problems {
			fmt.Println(p.Field)
		}
	}
	fmt.Println(problems[len(problems)-1])
	// Output:
	// server.public_url
	// auth.algorithms[0]
	// store.vault_key
	// store.vault_key: required: the standard base64 of 32 random bytes that encrypt stored Jenkins tokens; generate one with: openssl rand -base64 32 (it is ${BUTLER_VAULT_KEY}, which is not set)
}
