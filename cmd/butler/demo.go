//go:build !nodemo

package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/butler-mcp/butler/internal/demo"
)

// demoCommands are the commands of a build with the demo.
func demoCommands() []command {
	return []command{{"demo", "run a Jenkins simulator with sample data and Butler, for trying Butler out", runDemo}}
}

func runDemo(ctx context.Context, e *env, args []string) error {
	if len(args) > 0 && args[0] == "token" {
		return runDemoToken(ctx, e, args[1:])
	}
	fs := newFlags(e, "demo", "[--listen ADDR] [--stdio [--user alice|bob|carol|admin]]\n       butler demo token --user ID [--scope S]... [--listen ADDR]")
	listen := fs.String("listen", "127.0.0.1:8080", "loopback address for Butler's MCP endpoint")
	idpListen := fs.String("idp-listen", "127.0.0.1:0", "loopback address for the development identity provider")
	jenkinsListen := fs.String("jenkins-listen", "127.0.0.1:0", "loopback address for the Jenkins simulator")
	stdio := fs.Bool("stdio", false, "serve MCP over stdin/stdout as one user instead of HTTP with OAuth")
	user := fs.String("user", demo.DefaultUser, "with --stdio: demo user to act as (alice, bob, carol or admin)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !demo.IsUser(*user) {
		return usagef("--user must be one of %s, not %q", strings.Join(demo.Users(), ", "), *user)
	}
	for _, addr := range []string{*listen, *idpListen, *jenkinsListen} {
		if err := demo.CheckLoopback(addr); err != nil {
			return usagef("%v", err)
		}
	}
	return demo.Run(ctx, demo.Options{
		Stdout: e.stdout, Stderr: e.stderr, Version: version,
		Listen: *listen, IdPListen: *idpListen, JenkinsListen: *jenkinsListen,
		Stdio: *stdio, User: *user,
	})
}

func runDemoToken(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "demo token", "--user ID [--scope S]... [--listen ADDR]")
	user := fs.String("user", "", "demo user: alice, bob, carol or admin")
	listen := fs.String("listen", "", "the MCP address of the demo to ask, when several run (default: the only one)")
	var scopes stringList
	fs.Var(&scopes, "scope", "scope to grant (repeatable; default jenkins:read and jenkins:build)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !demo.IsUser(*user) {
		return usagef("--user must be one of %s", strings.Join(demo.Users(), ", "))
	}
	tok, err := demo.Token(ctx, demo.TokenOptions{User: *user, Scopes: scopes, Listen: *listen})
	if err != nil {
		return err
	}
	fmt.Fprint(e.stdout, tok)
	return nil
}
