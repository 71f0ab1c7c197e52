package app_test

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/butler-mcp/butler/internal/config"
)

// spanNames is an OTLP/HTTP collector that keeps the names of the spans it
// receives.
type spanNames struct {
	mu    sync.Mutex
	names []string
}

func (c *spanNames) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		body = zr
	}
	data, _ := io.ReadAll(body)
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				c.names = append(c.names, s.Name)
			}
		}
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
}

func (c *spanNames) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

// TestNew_TracingExportsAndCloseFlushes pins the wiring of telemetry.traces:
// with an endpoint, a call through the whole HTTP stack is traced, and
// Close exports the spans still queued (the batch would wait 5 s); without
// one, nothing is exported.
func TestNew_TracingExportsAndCloseFlushes(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{true, false} {
		col := &spanNames{}
		srv := httptest.NewServer(col)
		t.Cleanup(srv.Close)
		s := newStack(t, stackOpts{fixedToken: true, configure: func(c *config.Config) {
			if on {
				c.Telemetry.Traces.OTLPEndpoint = srv.URL
			}
		}})
		cs := s.client(t, func() string { return benchToken })
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
		if err != nil || res.IsError {
			t.Fatalf("get_job: %v %v", err, res)
		}
		if err := s.app.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		got := strings.Join(col.get(), ",")
		switch {
		case on && !strings.Contains(got, "tools/call get_job") || on && !strings.Contains(got, "GET /job/{name}/job/{name}/api/json"):
			t.Errorf("tracing on: exported %q before Close returned; want the call's spans", got)
		case !on && got != "":
			t.Errorf("tracing off: exported %q", got)
		}
	}
}
