package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/butler-mcp/butler/internal/authz"

	"github.com/butler-mcp/butler/internal/config"
)

func runCheckConfig(_ context.Context, e *env, args []string) error {
	fs := newFlags(e, "check-config", "--config FILE [--mode serve|stdio|admin]")
	path := fs.String("config", "", "config file to check (`FILE`)")
	mode := fs.String("mode", "serve", "check for which command: serve (also demo), stdio, or admin (link, unlink, audit)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return usagef("--config is required")
	}
	m, ok := map[string]config.Mode{"serve": config.ModeCheck, "stdio": config.ModeStdio, "admin": config.ModeLink}[*mode]
	if !ok {
		return usagef("--mode must be serve, stdio or admin, not %q", *mode)
	}
	cfg, err := config.Load(*path, e.getenv)
	if cfg == nil {
		return printProblems(e, err)
	}
	// Structural problems (unknown keys, wrong types) and semantic ones
	// (missing values, bad URLs) are reported together.
	if m == config.ModeStdio {
		cfg.ApplyStdioEnv(e.getenv)
	}
	verr := cfg.Validate(m)
	var perr error
	if cfg.Policy.File != "" {
		if src, rerr := os.ReadFile(cfg.Policy.File); rerr == nil {
			perr = authz.ValidatePolicy(src, cfg.Policy.File)
		}
	}
	if err != nil || verr != nil || perr != nil {
		return printProblems(e, err, verr, perr)
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return nil
}

// printProblems writes every problem on its own line and returns the
// failure exit.
func printProblems(e *env, errs ...error) error {
	for _, err := range errs {
		var ps config.Problems
		switch {
		case err == nil:
		case errors.As(err, &ps):
			for _, p := range ps {
				fmt.Fprintln(e.stderr, p.String())
			}
		default:
			for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
				fmt.Fprintln(e.stderr, line)
			}
		}
	}
	return exitError{exitFailure}
}
