package main

import (
	"context"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/server"
)

func runStdio(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "stdio", "--config FILE")
	path := fs.String("config", "", "config file (`FILE`); JENKINS_USER and JENKINS_API_TOKEN fill jenkins.user and jenkins.api_token")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *path, config.ModeStdio)
	if err != nil {
		return err
	}
	logger := app.NewLogger(e.stderr, cfg.Log) // stdout carries the protocol
	s, err := app.NewStdio(cfg, version, logger)
	if err != nil {
		return err
	}
	return server.RunStdio(ctx, s)
}
