package e2e

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// otlpCollector is a tiny OTLP/HTTP collector: it decodes each export's
// protobuf body (gzip or not) and keeps the spans with their resource.
type otlpCollector struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	resource []map[string]string
}

func (c *otlpCollector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "not an OTLP/HTTP protobuf export", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 32<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	for _, rs := range req.ResourceSpans {
		res := map[string]string{}
		for _, kv := range rs.GetResource().GetAttributes() {
			res[kv.Key] = kv.GetValue().GetStringValue()
		}
		for _, ss := range rs.ScopeSpans {
			for range ss.Spans {
				c.resource = append(c.resource, res)
			}
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	c.mu.Unlock()
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// withTraceparent adds a W3C traceparent header to every request.
type withTraceparent struct {
	tp   string
	base http.RoundTripper
}

func (w withTraceparent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("traceparent", w.tp)
	return w.base.RoundTrip(r)
}

func spanAttrs(s *tracepb.Span) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		v := kv.GetValue()
		switch {
		case v.GetArrayValue() != nil:
			var parts []string
			for _, e := range v.GetArrayValue().Values {
				parts = append(parts, e.GetStringValue())
			}
			m[kv.Key] = strings.Join(parts, ",")
		case v.GetIntValue() != 0:
			m[kv.Key] = fmt.Sprint(v.GetIntValue())
		default:
			m[kv.Key] = v.GetStringValue()
		}
	}
	return m
}

// TestServe_TracesExportedOverOTLP drives `butler serve` with tracing on,
// exporting OTLP/HTTP to an in-test collector: alice reads a build, carol
// asks for a job she may not see, bob triggers a build he may not start,
// each continuing a trace of their own through the traceparent header.
// After a graceful shutdown (which flushes), the collector holds each call's
// span in the caller's trace with its outcome, the Jenkins request spans
// below it, made with the caller's own credential, and no token or
// parameter value anywhere.
func TestServe_TracesExportedOverOTLP(t *testing.T) {
	t.Parallel()
	col := &otlpCollector{}
	cs := httptest.NewServer(col)
	defer cs.Close()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", fmt.Sprintf("telemetry:\n  traces:\n    otlp_endpoint: %s\n    service_name: butler-e2e\n", cs.URL))
	s := a.serve(t, addr)

	type step struct {
		user, tool string
		args       map[string]any
		decision   string
		code       string
		traceID    string
	}
	steps := []step{
		{"alice", "get_build", map[string]any{"job": "frontend/web-app"}, "allow", "", "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"},
		{"carol", "get_job", map[string]any{"job": "backend/api"}, "error", "not_found", "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3"},
		{"bob", "trigger_job", map[string]any{"job": "frontend/web-app", "parameters": map[string]any{}}, "deny", "forbidden", "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2"},
		{"bob", "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"BRANCH": "zq-e2e-value-8812"}}, "deny", "forbidden", "b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4"},
	}
	const parentSpan = "0102030405060708"
	var tokens []string
	for _, st := range steps {
		tok := a.token(t, st.user)
		tokens = append(tokens, tok)
		hc := &http.Client{Transport: withTraceparent{tp: "00-" + st.traceID + "-" + parentSpan + "-01", base: bearer{token: tok, base: http.DefaultTransport}}}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		session, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
			Connect(ctx, &mcp.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: hc}, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		a.sim.ResetRequests()
		r := callTool(t, session, st.tool, st.args)
		if code := ""; r.isError {
			code, _ = r.out["error"].(map[string]any)["code"].(string)
			if code != st.code {
				t.Errorf("%s %s: %s; want %s", st.user, st.tool, r.text, st.code)
			}
		} else if st.code != "" {
			t.Errorf("%s %s succeeded; want %s", st.user, st.tool, st.code)
		}
		for _, req := range a.sim.Requests() {
			if req.User != st.user {
				t.Errorf("%s's %s: Jenkins request %s %s made as %q", st.user, st.tool, req.Method, req.Path, req.User)
			}
		}
		session.Close()
		cancel()
	}
	// Graceful shutdown flushes the spans still queued.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("butler serve exit: %v\n%s", err, s.stderr.String())
		}
		s.done <- nil
	case <-time.After(20 * time.Second):
		t.Fatal("butler serve did not exit after SIGTERM")
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if len(col.spans) == 0 {
		t.Fatalf("the collector received no span\n%s", s.stderr.String())
	}
	for i, res := range col.resource {
		if res["service.name"] != "butler-e2e" {
			t.Fatalf("span %d resource %v; want service.name butler-e2e", i, res)
		}
	}
	byTrace := map[string][]*tracepb.Span{}
	for _, sp := range col.spans {
		id := fmt.Sprintf("%x", sp.TraceId)
		byTrace[id] = append(byTrace[id], sp)
	}
	for _, st := range steps {
		spans := byTrace[st.traceID]
		var call *tracepb.Span
		for _, sp := range spans {
			if sp.Name == "tools/call "+st.tool {
				call = sp
			}
		}
		if call == nil {
			t.Errorf("%s %s: no tools/call span in trace %s (%d spans)", st.user, st.tool, st.traceID, len(spans))
			continue
		}
		if fmt.Sprintf("%x", call.ParentSpanId) != parentSpan || call.Kind != tracepb.Span_SPAN_KIND_SERVER {
			t.Errorf("%s %s: parent %x kind %v; want the caller's span %s, server", st.user, st.tool, call.ParentSpanId, call.Kind, parentSpan)
		}
		ca := spanAttrs(call)
		if ca["butler.decision"] != st.decision || ca["error.type"] != st.code || ca["gen_ai.tool.name"] != st.tool {
			t.Errorf("%s %s: span attributes %v; want decision %s, error.type %q", st.user, st.tool, ca, st.decision, st.code)
		}
		var jenkinsSpans, policySpans int
		for _, sp := range spans {
			switch {
			case sp.Name == "policy":
				policySpans++
			case sp.Kind == tracepb.Span_SPAN_KIND_CLIENT:
				jenkinsSpans++
				if spanAttrs(sp)["http.response.status_code"] == "" {
					t.Errorf("Jenkins span %q has no status code", sp.Name)
				}
			}
		}
		if policySpans == 0 || jenkinsSpans == 0 {
			t.Errorf("%s %s: %d policy and %d Jenkins spans; want each", st.user, st.tool, policySpans, jenkinsSpans)
		}
	}
	secrets := append(tokens, jenkinstest.SampleAliceToken, jenkinstest.SampleBobToken, jenkinstest.SampleCarolToken, "zq-e2e-value-8812", e2eVaultKey)
	for _, sp := range col.spans {
		values := []string{sp.Name, sp.GetStatus().GetMessage()}
		for _, v := range spanAttrs(sp) {
			values = append(values, v)
		}
		for _, v := range values {
			for _, sec := range secrets {
				if strings.Contains(v, sec) {
					t.Errorf("span %q carries a secret or parameter value: %q", sp.Name, v)
				}
			}
			for _, u := range []string{"alice", "bob", "carol"} {
				if strings.Contains(v, u) {
					t.Errorf("span %q names user %s: %q", sp.Name, u, v)
				}
			}
		}
	}
}
