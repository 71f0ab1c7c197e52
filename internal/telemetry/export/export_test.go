package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
)

// collector is a tiny OTLP/HTTP receiver: it decodes each export request's
// protobuf body and keeps the spans and the request headers.
type collector struct {
	mu      sync.Mutex
	spans   []*tracepb.Span
	headers []http.Header
	paths   []string
	res     map[string]string
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 16<<20))
	if err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.add(&req, r.Header.Clone(), r.URL.Path)
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

func (c *collector) add(req *coltrace.ExportTraceServiceRequest, h http.Header, path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.headers = append(c.headers, h)
	c.paths = append(c.paths, path)
	for _, rs := range req.ResourceSpans {
		c.res = map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			c.res[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
}

func (c *collector) names() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.spans {
		out = append(out, s.Name)
	}
	return out
}

// grpcCollector is the same over OTLP/gRPC.
type grpcCollector struct {
	coltrace.UnimplementedTraceServiceServer
	c *collector
}

func (g *grpcCollector) Export(ctx context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	h := http.Header{}
	for k, vs := range md {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	g.c.add(req, h, "")
	return &coltrace.ExportTraceServiceResponse{}, nil
}

func TestDisabled_IsNoop(t *testing.T) {
	t.Parallel()
	p, err := NewProvider(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Enabled() {
		t.Error("a provider without an endpoint is enabled")
	}
	_, span := p.Tracer("x").Start(context.Background(), "s")
	if span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("the disabled provider records spans")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Error(err)
	}
}

// TestNewProvider_ExportsOTLP pins export over both protocols to a
// collector: spans arrive on shutdown (the flush), at /v1/traces for an
// HTTP endpoint without a path, with the configured headers and resource.
func TestNewProvider_ExportsOTLP(t *testing.T) {
	t.Parallel()
	for _, proto := range []string{ProtocolHTTP, ProtocolGRPC} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			c := &collector{}
			var endpoint string
			if proto == ProtocolHTTP {
				srv := httptest.NewServer(c)
				t.Cleanup(srv.Close)
				endpoint = srv.URL
			} else {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				gs := grpc.NewServer()
				coltrace.RegisterTraceServiceServer(gs, &grpcCollector{c: c})
				go gs.Serve(ln)
				t.Cleanup(gs.Stop)
				endpoint = "http://" + ln.Addr().String()
			}
			p, err := NewProvider(context.Background(), Options{
				Endpoint: endpoint, Protocol: proto, SampleRatio: 1, ServiceName: "butler-test", ServiceVersion: "1.2.3",
				Headers: map[string]string{"x-api-key": "k-123"},
			})
			if err != nil {
				t.Fatal(err)
			}
			_, span := p.Tracer("test").Start(context.Background(), "tools/call health")
			span.End()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			if got := c.names(); len(got) != 1 || got[0] != "tools/call health" {
				t.Fatalf("collector got %v", got)
			}
			if c.headers[0].Get("x-api-key") != "k-123" {
				t.Errorf("headers %v lack x-api-key", c.headers[0])
			}
			if proto == ProtocolHTTP && c.paths[0] != DefaultHTTPPath {
				t.Errorf("exported to %q; want %s", c.paths[0], DefaultHTTPPath)
			}
			if c.res["service.name"] != "butler-test" || c.res["service.version"] != "1.2.3" || c.res["service.instance.id"] == "" {
				t.Errorf("resource %v", c.res)
			}
		})
	}
}

// TestNewProvider_IgnoresOTELEnvironment pins that no OTEL_* variable
// changes where spans go, what is sent with them or whether they are
// sampled. The one the SDK always applies, OTEL_RESOURCE_ATTRIBUTES, adds
// resource attributes (a Kubernetes pod's name) but cannot rename the
// service.
func TestNewProvider_IgnoresOTELEnvironment(t *testing.T) {
	elsewhere := &collector{}
	other := httptest.NewServer(elsewhere)
	defer other.Close()
	for k, v := range map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        other.URL,
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": other.URL + "/v1/traces",
		"OTEL_EXPORTER_OTLP_HEADERS":         "x-from-env=leak",
		"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "x-from-env=leak",
		"OTEL_TRACES_SAMPLER":                "always_off",
		"OTEL_SERVICE_NAME":                  "from-env",
		"OTEL_RESOURCE_ATTRIBUTES":           "service.name=from-env,leak=1",
		"OTEL_BSP_MAX_QUEUE_SIZE":            "1",
		"OTEL_SDK_DISABLED":                  "true",
	} {
		t.Setenv(k, v)
	}
	c := &collector{}
	srv := httptest.NewServer(c)
	defer srv.Close()
	p, err := NewProvider(context.Background(), Options{Endpoint: srv.URL, SampleRatio: 1})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		_, span := p.Tracer("test").Start(context.Background(), "s")
		span.End()
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(c.names()); n != 3 {
		t.Errorf("collector got %d spans; want 3 (sampler, queue size or endpoint taken from the environment?)", n)
	}
	if n := len(elsewhere.names()); n != 0 {
		t.Errorf("the OTEL_EXPORTER_OTLP_ENDPOINT server got %d spans", n)
	}
	for _, h := range c.headers {
		if h.Get("x-from-env") != "" {
			t.Error("a header from OTEL_EXPORTER_OTLP_HEADERS was sent")
		}
	}
	if c.res["service.name"] != "butler" || c.res["leak"] != "1" {
		t.Errorf("resource %v: want service.name butler and OTEL_RESOURCE_ATTRIBUTES's other attributes", c.res)
	}
}

// TestExportFailure_LoggedOnceAndDropped pins that a collector that is
// down costs a log line a minute, no error handler noise, and never a
// blocked call.
func TestExportFailure_LoggedOnceAndDropped(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusBadRequest)
	}))
	defer srv.Close()
	var buf syncBuffer
	p, err := NewProvider(context.Background(), Options{Endpoint: srv.URL, SampleRatio: 1, Headers: map[string]string{"x-api-key": "k-secret-77"},
		Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	tr := p.Tracer("t")
	for i := 0; i < 3; i++ {
		_, s := tr.Start(context.Background(), "s")
		s.End()
		if err := p.TracerProvider.(interface{ ForceFlush(context.Context) error }).ForceFlush(context.Background()); err != nil {
			t.Fatalf("flush: %v", err)
		}
	}
	_ = p.Shutdown(context.Background())
	out := buf.String()
	if n := strings.Count(out, "exporting traces failed"); n != 1 {
		t.Errorf("%d failure lines; want 1 a minute:\n%s", n, out)
	}
	if strings.Contains(out, "k-secret-77") {
		t.Error("the log shows an export header value")
	}
}

func TestNewProvider_RefusesBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{
		{Endpoint: "collector:4318"},
		{Endpoint: "ftp://collector"},
		{Endpoint: "http://127.0.0.1:4318", Protocol: "thrift"},
		{Endpoint: "http://127.0.0.1:4317/x", Protocol: ProtocolGRPC},
		{Endpoint: "http://127.0.0.1:4318", SampleRatio: 2},
	} {
		if p, err := NewProvider(context.Background(), o); err == nil {
			_ = p.Shutdown(context.Background())
			t.Errorf("NewProvider(%+v) accepted", o)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
