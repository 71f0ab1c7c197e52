package app

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/telemetry/export"
)

// NewTracerProvider returns the tracer provider of telemetry.traces: a
// no-op one while no endpoint is configured, else one exporting over
// OTLP. The caller shuts it down (Provider.Shutdown flushes the spans
// still queued).
func NewTracerProvider(ctx context.Context, cfg *config.Config, version string, logger *slog.Logger) (*export.Provider, error) {
	tr := cfg.Telemetry.Traces
	if !tr.Enabled() {
		return export.Disabled(), nil
	}
	cas, err := tr.RootCAs(os.ReadFile)
	if err != nil {
		return nil, err
	}
	p, err := export.NewProvider(ctx, export.Options{
		Endpoint:       tr.OTLPEndpoint,
		Protocol:       tr.Protocol,
		RootCAs:        cas,
		Headers:        tr.HeaderValues(),
		SampleRatio:    tr.SampleRatio,
		ServiceName:    tr.ServiceName,
		ServiceVersion: version,
		Logger:         logger,
	})
	if err != nil {
		return nil, fmt.Errorf("telemetry.traces: %w", err)
	}
	logger.Info("tracing on", "otlp_endpoint", tr.OTLPEndpoint, "protocol", tr.Protocol, "sample_ratio", tr.SampleRatio)
	return p, nil
}
