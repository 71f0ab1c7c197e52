package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/server"
)

// shutdownGrace is how long in-flight calls get to finish after SIGTERM.
const shutdownGrace = 25 * time.Second

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
	logger := server.NewLogger(e.stderr, cfg.Log)
	app, err := server.NewApp(ctx, cfg, server.AppOptions{Version: version, Logger: logger})
	if err != nil {
		return err
	}
	defer closeApp(app, logger)
	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return serveApp(ctx, e, cfg, app, ln)
}

// closeApp flushes the audit log and releases the store after a shutdown.
func closeApp(app *server.App, logger *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := app.Close(ctx); err != nil {
		logger.Error("closing", "err", err)
	}
}

// serveApp serves app on ln (and /metrics on server.metrics_listen) until
// ctx ends, then shuts down gracefully.
func serveApp(ctx context.Context, e *env, cfg *config.Config, app *server.App, ln net.Listener) error {
	logger := server.NewLogger(e.stderr, cfg.Log)
	if cfg.Server.MetricsListen != "" {
		mln, err := net.Listen("tcp", cfg.Server.MetricsListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("metrics listen: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", app.Metrics)
		go func() { _ = server.ListenAndServe(ctx, mln, mux, time.Second, logger, nil) }()
	}
	logger.Info("butler serving", "listen", ln.Addr().String(), "mcp", cfg.ResourceURL(), "stateless", cfg.Server.Stateless)
	return server.ListenAndServe(ctx, ln, app.Handler, shutdownGrace, logger, app.Drain)
}
