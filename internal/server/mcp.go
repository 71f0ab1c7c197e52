// Package server assembles Butler: the MCP server with its tools, the HTTP
// chain in front of it, and the stdio runner.
package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/tools"
)

// Instructions tell a model what Butler is for and how to use it well.
const Instructions = `Butler gives you access to Jenkins as the signed-in user: you can see and do exactly what that user's own Jenkins account may, nothing more.
Jobs are named by their full path, folders joined by '/', for example 'frontend/web-app'.
Typical flow: list_all_jobs or get_job to find a job and its parameters; trigger_job to start it (then get_queue_item / get_build to follow it); get_build_log with tail_lines, or search_build_log, to find why a build failed; get_test_results for failing tests.
Errors start with a code: not_found means the item does not exist or the user may not see it; forbidden means Jenkins or the policy denied the action; do not retry those unchanged.`

// NewMCPServer returns an MCP server exposing the toolset.
func NewMCPServer(ts *tools.Toolset, version string, logger *slog.Logger) *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "butler", Title: "Butler: Jenkins for AI agents", Version: version}, &mcp.ServerOptions{
		Instructions: Instructions,
		Logger:       logger,
		HasTools:     true,
	})
	ts.Register(s)
	return s
}

// RunStdio serves MCP over stdin/stdout until the client disconnects or
// ctx ends.
func RunStdio(ctx context.Context, s *mcp.Server) error {
	if err := s.Run(ctx, &mcp.StdioTransport{}); err != nil && ctx.Err() == nil {
		return fmt.Errorf("stdio: %w", err)
	}
	return nil
}
