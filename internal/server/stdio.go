package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/tools"
)

// NewLogger returns the debug logger the config asks for, writing to w.
func NewLogger(w io.Writer, c config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// NewJenkinsClient returns the Jenkins client of cfg: one keep-alive HTTP
// client for every user, trusting cfg's extra CA file if any.
func NewJenkinsClient(cfg *config.Config, logger *slog.Logger, observe func(string, int, time.Duration)) (*jenkins.Client, error) {
	t := jenkins.NewTransport()
	if cfg.Jenkins.TLSCAFile != "" {
		pem, err := os.ReadFile(cfg.Jenkins.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("jenkins.tls_ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("jenkins.tls_ca_file %s: no PEM certificate found", cfg.Jenkins.TLSCAFile)
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return jenkins.New(cfg.Jenkins.URL, &jenkins.Options{
		HTTPClient: &http.Client{Transport: t},
		Timeout:    cfg.Jenkins.Timeout,
		Logger:     logger,
		Observe:    observe,
	})
}

// NewStdioServer returns the MCP server of `butler stdio`: one local user,
// identified by the Jenkins credential in cfg, whose every Jenkins call uses
// that credential. There is no OAuth, so no scopes; the policy still applies.
func NewStdioServer(cfg *config.Config, version string, logger *slog.Logger) (*mcp.Server, error) {
	jc, err := NewJenkinsClient(cfg, logger, nil)
	if err != nil {
		return nil, err
	}
	az, err := LoadAuthorizer(cfg)
	if err != nil {
		return nil, err
	}
	user := cfg.Jenkins.User
	p := identity.Principal{User: user, JenkinsUser: user, Local: true}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: user, APIToken: cfg.Jenkins.APIToken.Reveal()}},
		Authorizer:  az,
		Audit:       audit.LogRecorder{Logger: logger},
		Principal:   func(context.Context, *mcp.RequestExtra) identity.Principal { return p },
		Version:     version,
		Logger:      logger,
	})
	if err != nil {
		return nil, err
	}
	return NewMCPServer(ts, version, logger), nil
}
