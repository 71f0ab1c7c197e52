package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/config"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "--config FILE")
	path := fs.String("config", "", "config file (`FILE`)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(e, *path, config.ModeServe)
	if err != nil {
		return err
	}
	logger := app.NewLogger(e.stderr, cfg.Log)
	a, err := app.New(ctx, cfg, app.Options{Version: version, Commit: buildCommit(), Logger: logger})
	if err != nil {
		return err
	}
	defer closeApp(a, logger)
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	logger.Info("butler serving", "listen", ln.Addr().String(), "mcp", cfg.ResourceURL(), "stateless", cfg.Server.Stateless)
	return a.Serve(ctx, ln)
}

// closeApp flushes the audit log and releases the store after a shutdown.
func closeApp(a *app.App, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		logger.Error("closing", "err", err)
	}
}
