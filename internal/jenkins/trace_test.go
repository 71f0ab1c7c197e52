package jenkins

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/butler-mcp/butler/internal/jobpath"
)

func TestURLTemplate(t *testing.T) {
	t.Parallel()
	for rel, want := range map[string]string{
		"":                                   "/",
		"me/api/json":                        "/me/api/json",
		"job/a/job/b%2Fc/api/json":           "/job/{name}/job/{name}/api/json",
		"job/a/42/consoleText":               "/job/{name}/{number}/consoleText",
		"job/a/lastBuild/api/json":           "/job/{name}/lastBuild/api/json",
		"queue/item/17/api/json":             "/queue/item/{number}/api/json",
		"queue/cancelItem":                   "/queue/cancelItem",
		"job/a/3/artifact/dist/app.tar.gz":   "/job/{name}/{number}/artifact/{path}",
		"job/a/3/input/Ship-It/proceedEmpty": "/job/{name}/{number}/input/{id}/proceedEmpty",
		"job/a/":                             "/job/{name}/",
		"job/":                               "/job/",
		"computer/api/json":                  "/computer/api/json",
		"job/a/3/execution/node/zq-stage/wfapi/describe": "/job/{name}/{number}/execution/node/{id}/wfapi/describe",
		"computer/agent-1/api/json":                      "/computer/{name}/api/json",
		"label/linux/api/json":                           "/label/{name}/api/json",
	} {
		if got := urlTemplate(rel); got != want {
			t.Errorf("urlTemplate(%q) = %q; want %q", rel, got, want)
		}
	}
}

// TestRequestSpans pins one client span per Jenkins request with the HTTP
// semantic-convention attributes, a query string and credentials never
// recorded, and the traceparent sent only when asked.
func TestRequestSpans(t *testing.T) {
	t.Parallel()
	var gotTraceparent []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotTraceparent = append(gotTraceparent, r.Header.Get("traceparent"))
		switch {
		case strings.HasSuffix(r.URL.Path, "/job/missing/api/json"):
			http.NotFound(w, r)
		default:
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"_class":"hudson.model.FreeStyleProject","name":"app","fullName":"app","url":"http://x/job/app/","buildable":true}`)
		}
	}))
	defer srv.Close()
	for _, propagate := range []bool{false, true} {
		gotTraceparent = nil
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		c, err := New(srv.URL+"/ci/", &Options{TracerProvider: tp, Traceparent: propagate})
		if err != nil {
			t.Fatal(err)
		}
		ctx, parent := tp.Tracer("test").Start(context.Background(), "tools/call get_job")
		cred := Credential{User: "alice", APIToken: "tok-123456"}
		if _, err := c.GetJob(ctx, cred, mustPath(t, "app")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.GetJob(ctx, cred, mustPath(t, "missing")); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing job: %v", err)
		}
		parent.End()
		spans := exp.GetSpans()
		if len(spans) != 3 {
			t.Fatalf("%d spans; want 2 requests and the parent", len(spans))
		}
		ok, missing := spans[0], spans[1]
		if ok.Name != "GET /ci/job/{name}/api/json" || ok.SpanKind.String() != "client" {
			t.Errorf("span %q kind %v", ok.Name, ok.SpanKind)
		}
		if ok.Parent.SpanID() != parent.SpanContext().SpanID() {
			t.Error("the request span is not a child of the call's span")
		}
		attrs := attrMap(ok.Attributes)
		want := map[string]string{
			"http.request.method":       "GET",
			"url.template":              "/ci/job/{name}/api/json",
			"url.full":                  srv.URL + "/ci/job/app/api/json",
			"server.address":            "127.0.0.1",
			"http.response.status_code": "200",
		}
		for k, v := range want {
			if attrs[k] != v {
				t.Errorf("%s = %q; want %q", k, attrs[k], v)
			}
		}
		if m := attrMap(missing.Attributes); m["http.response.status_code"] != "404" || m["error.type"] != "404" || missing.Status.Code != codes.Error {
			t.Errorf("404 span: %v status %v", m, missing.Status)
		}
		for _, s := range spans {
			for _, kv := range s.Attributes {
				v := kv.Value.Emit()
				if strings.Contains(v, "tok-123456") || strings.Contains(v, "tree=") || strings.Contains(v, "?") {
					t.Errorf("span %q attribute %s = %q carries a token or a query", s.Name, kv.Key, v)
				}
			}
		}
		for i, h := range gotTraceparent {
			if propagate != (h != "") {
				t.Errorf("propagate=%v: request %d traceparent %q", propagate, i, h)
			}
			if propagate && !strings.Contains(h, parent.SpanContext().TraceID().String()) {
				t.Errorf("traceparent %q is not of the call's trace", h)
			}
		}
	}
}

// TestRequestSpans_OffByDefault pins that a client without a tracer
// provider sends no traceparent and starts no span.
func TestRequestSpans_OffByDefault(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("traceparent") != "" {
			t.Error("a traceparent was sent with tracing off")
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	c, err := New(srv.URL, &Options{Traceparent: true})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.GetJob(context.Background(), Credential{User: "a", APIToken: "t"}, mustPath(t, "x"))
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func mustPath(t *testing.T, raw string) jobpath.Path {
	t.Helper()
	p, err := jobpath.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
