// Package export builds Butler's OpenTelemetry tracer provider: the OTLP
// exporter and the SDK that batches spans for it (docs/tracing.md).
// Package telemetry holds the names of what is recorded.
//
// Tracing is off unless an OTLP endpoint is configured. Off means a no-op
// tracer provider: no exporter, no goroutine, and spans that cost a few
// nanoseconds each. Nothing here touches OpenTelemetry's global state (no
// otel.SetTracerProvider, no global propagator or error handler): the
// provider is handed down explicitly from the composition root, so two
// Butlers in one process (tests) never share traces.
//
// Butler ignores the OTEL_* environment variables, with one exception. The
// one place tracing is configured is butler.yaml (telemetry.traces), decoded
// strictly like the rest of it; a value wanted from the environment is
// written there as ${NAME}. Every setting the OpenTelemetry SDK would
// otherwise take from its variables (endpoint, headers, TLS, compression,
// timeout, sampler, span limits, batching, service name) is passed
// explicitly, so a variable left over in a container can neither turn export
// on nor send spans somewhere else. The exception is OTEL_RESOURCE_ATTRIBUTES,
// which the SDK merges into every resource whatever it is given: it can add
// attributes (the OpenTelemetry Operator's k8s.pod.name) but not change
// service.name, which Butler sets.
package export

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/credentials"
)

// The OTLP transports of Options.Protocol.
const (
	// ProtocolHTTP is OTLP/HTTP with protobuf bodies (the OTLP default,
	// port 4318).
	ProtocolHTTP = "http"
	// ProtocolGRPC is OTLP/gRPC (port 4317).
	ProtocolGRPC = "grpc"
)

// DefaultHTTPPath is where OTLP/HTTP traces go below an endpoint given
// without a path (OTLP specification, "OTLP/HTTP Request").
const DefaultHTTPPath = "/v1/traces"

// Options configure the tracer provider. They are plain values: the
// composition root copies them from the config, so this package does not
// depend on its shape.
type Options struct {
	// Endpoint is the collector's URL, http:// or https://. Empty: tracing
	// is off and NewProvider returns a no-op provider. For ProtocolHTTP a
	// URL without a path gets DefaultHTTPPath.
	Endpoint string
	// Protocol is ProtocolHTTP (the default when empty) or ProtocolGRPC.
	Protocol string
	// RootCAs, when set, are the CAs trusted for an https endpoint instead
	// of the system pool.
	RootCAs *x509.CertPool
	// Headers are sent with every export (a collector's API key). They are
	// never logged.
	Headers map[string]string
	// SampleRatio is the fraction of new traces recorded, 0 to 1. A call
	// that continues a caller's trace follows the caller's sampling
	// decision (parent-based sampling).
	SampleRatio float64
	// ServiceName and ServiceVersion name Butler in the resource.
	ServiceName    string
	ServiceVersion string
	// Logger receives export failures (at most one line a minute).
	Logger *slog.Logger
}

// Provider is a tracer provider and the way to flush and stop it.
type Provider struct {
	trace.TracerProvider
	shutdown func(context.Context) error
}

// Enabled reports whether spans are recorded and exported.
func (p *Provider) Enabled() bool { return p.shutdown != nil }

// Shutdown exports the spans still queued and stops the exporter; ctx
// bounds how long it may take. It is a no-op when tracing is off.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.shutdown == nil {
		return nil
	}
	if err := p.shutdown(ctx); err != nil {
		return fmt.Errorf("export: flushing traces: %w", err)
	}
	return nil
}

// Disabled returns the provider of tracing off: a no-op.
func Disabled() *Provider { return &Provider{TracerProvider: noop.NewTracerProvider()} }

// Span and batch bounds. A span holds a few attributes of bounded size; the
// limits are a backstop, so no value a caller sends can make a span large.
const (
	maxQueuedSpans    = 4096 // spans waiting for export; more are dropped, never blocking a call
	maxExportBatch    = 512
	batchTimeout      = 5 * time.Second
	exportTimeout     = 10 * time.Second
	attrValueLimit    = 1024 // bytes of one string attribute
	attrCountLimit    = 32
	logFailuresEvery  = time.Minute
	instanceIDByteLen = 8
)

// NewProvider returns the tracer provider of o: a no-op one when
// o.Endpoint is empty, else an SDK provider exporting over OTLP in batches.
// Creating the exporter opens no connection; spans that cannot be sent are
// dropped and the failure logged.
func NewProvider(ctx context.Context, o Options) (*Provider, error) {
	if o.Endpoint == "" {
		return Disabled(), nil
	}
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	exp, err := newExporter(ctx, o)
	if err != nil {
		return nil, err
	}
	if o.SampleRatio < 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("export: sample ratio %v is not between 0 and 1", o.SampleRatio)
	}
	name := o.ServiceName
	if name == "" {
		name = "butler"
	}
	res := resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(name),
		semconv.ServiceVersion(o.ServiceVersion),
		semconv.ServiceInstanceID(instanceID()),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SampleRatio))),
		sdktrace.WithSpanLimits(sdktrace.SpanLimits{
			AttributeValueLengthLimit:   attrValueLimit,
			AttributeCountLimit:         attrCountLimit,
			EventCountLimit:             8,
			LinkCountLimit:              4,
			AttributePerEventCountLimit: 8,
			AttributePerLinkCountLimit:  8,
		}),
		sdktrace.WithBatcher(&loggingExporter{SpanExporter: exp, log: logger, every: logFailuresEvery},
			sdktrace.WithMaxQueueSize(maxQueuedSpans),
			sdktrace.WithMaxExportBatchSize(maxExportBatch),
			sdktrace.WithBatchTimeout(batchTimeout),
			sdktrace.WithExportTimeout(exportTimeout)),
	)
	return &Provider{TracerProvider: tp, shutdown: tp.Shutdown}, nil
}

// newExporter returns the OTLP exporter of o, every option given
// explicitly so that no OTEL_EXPORTER_OTLP_* variable applies.
func newExporter(ctx context.Context, o Options) (sdktrace.SpanExporter, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("export: the OTLP endpoint must be an absolute http:// or https:// URL")
	}
	plain := u.Scheme == "http"
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	headers := make(map[string]string, len(o.Headers))
	for k, v := range o.Headers {
		headers[k] = v
	}
	switch o.Protocol {
	case "", ProtocolHTTP:
		if u.Path == "" || u.Path == "/" {
			u.Path = DefaultHTTPPath
		}
		opts := []otlptracehttp.Option{
			otlptracehttp.WithEndpointURL(u.String()),
			otlptracehttp.WithHeaders(headers),
			otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
			otlptracehttp.WithTimeout(exportTimeout),
		}
		if plain {
			opts = append(opts, otlptracehttp.WithInsecure())
		} else {
			opts = append(opts, otlptracehttp.WithTLSClientConfig(tlsCfg))
		}
		return otlptracehttp.New(ctx, opts...)
	case ProtocolGRPC:
		if u.Path != "" && u.Path != "/" {
			return nil, errors.New("export: an OTLP/gRPC endpoint has no path (grpc://host:4317 is written http://host:4317 or https://host:4317)")
		}
		opts := []otlptracegrpc.Option{
			otlptracegrpc.WithEndpoint(u.Host),
			otlptracegrpc.WithHeaders(headers),
			otlptracegrpc.WithCompressor("gzip"),
			otlptracegrpc.WithTimeout(exportTimeout),
		}
		if plain {
			opts = append(opts, otlptracegrpc.WithInsecure())
		} else {
			opts = append(opts, otlptracegrpc.WithTLSCredentials(credentials.NewTLS(tlsCfg)))
		}
		return otlptracegrpc.New(ctx, opts...)
	default:
		return nil, fmt.Errorf("export: protocol %q is not http or grpc", o.Protocol)
	}
}

// instanceID tells the replicas of one service apart in traces.
func instanceID() string {
	var b [instanceIDByteLen]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// loggingExporter reports export failures to Butler's log, at most once
// every interval, instead of to OpenTelemetry's global error handler, and
// tells the batch processor nothing went wrong: the spans are dropped
// either way, and a collector that is down must not flood the log.
type loggingExporter struct {
	sdktrace.SpanExporter
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	last    time.Time
	dropped int
}

func (e *loggingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	e.mu.Lock()
	e.dropped += len(spans)
	now := time.Now()
	if now.Sub(e.last) < e.every {
		e.mu.Unlock()
		return nil
	}
	n := e.dropped
	e.last, e.dropped = now, 0
	e.mu.Unlock()
	e.log.WarnContext(ctx, "exporting traces failed; spans dropped", "spans", n, "err", err)
	return nil
}
