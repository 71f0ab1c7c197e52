//go:build nodemo

package main

import "context"

// demoCommands are the commands of a build without the demo: `butler demo`
// says so instead of being an unknown command.
func demoCommands() []command {
	return []command{{"demo", "not in this build (built with -tags nodemo; use a development build)", func(context.Context, *env, []string) error {
		return usagef("this butler was built without the demo (-tags nodemo); run `go run ./cmd/butler demo` from a source checkout")
	}}}
}
