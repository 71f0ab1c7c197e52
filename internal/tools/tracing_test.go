package tools_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// tracedEnv is a test env whose spans go to an in-memory exporter.
func tracedEnv(t *testing.T, user string, o *envOpts) (*testEnv, *tracetest.InMemoryExporter) {
	t.Helper()
	if o == nil {
		o = &envOpts{}
	}
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	o.tracer = tp
	return newEnv(t, user, o), exp
}

func attrs(s tracetest.SpanStub) map[string]string {
	m := map[string]string{}
	for _, kv := range s.Attributes {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

// callSpan returns the one tools/call span and the others.
func callSpan(t *testing.T, spans tracetest.SpanStubs, tool string) (tracetest.SpanStub, []tracetest.SpanStub) {
	t.Helper()
	var root []tracetest.SpanStub
	var rest []tracetest.SpanStub
	for _, s := range spans {
		if s.Name == "tools/call "+tool {
			root = append(root, s)
		} else {
			rest = append(rest, s)
		}
	}
	if len(root) != 1 {
		t.Fatalf("%d spans named tools/call %s; want 1 (spans: %v)", len(root), tool, names(spans))
	}
	return root[0], rest
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// TestTracing_SuccessfulCallSpanTree pins the span tree of an allowed call:
// the tools/call span with the MCP semantic-convention attributes, and as
// its children the policy decision, the credential lookup and one span per
// Jenkins request, each with its HTTP status.
func TestTracing_SuccessfulCallSpanTree(t *testing.T) {
	t.Parallel()
	e, exp := tracedEnv(t, jenkinstest.SampleAlice, nil)
	e.sim.ResetRequests()
	e.ok(t, "get_build", map[string]any{"job": "frontend/web-app"})
	root, children := callSpan(t, exp.GetSpans(), "get_build")
	a := attrs(root)
	for k, v := range map[string]string{
		"mcp.method.name": "tools/call", "gen_ai.tool.name": "get_build", "gen_ai.operation.name": "execute_tool",
		"butler.tool.class": "read", "butler.decision": "allow", "butler.resource": "frontend/web-app",
		"butler.principal.kind": "local",
	} {
		if a[k] != v {
			t.Errorf("tools/call span: %s = %q; want %q", k, a[k], v)
		}
	}
	if a["butler.request_id"] == "" || a["error.type"] != "" || root.SpanKind != trace.SpanKindServer || root.Status.Code == codes.Error {
		t.Errorf("tools/call span: %v kind %v status %v", a, root.SpanKind, root.Status)
	}
	if _, ok := a["mcp.protocol.version"]; !ok {
		t.Error("tools/call span has no mcp.protocol.version")
	}
	var policy, creds, jenkinsSpans int
	for _, c := range children {
		if c.Parent.SpanID() != root.SpanContext.SpanID() || c.SpanContext.TraceID() != root.SpanContext.TraceID() {
			t.Errorf("span %q is not a child of the tools/call span", c.Name)
		}
		ca := attrs(c)
		switch {
		case c.Name == "policy":
			policy++
			if ca["butler.decision"] != "allow" || ca["butler.policy.stage"] != "decide" {
				t.Errorf("policy span: %v", ca)
			}
		case c.Name == "credentials":
			creds++
			if ca["butler.credential.source"] != "local" || c.Status.Code == codes.Error {
				t.Errorf("credentials span: %v %v", ca, c.Status)
			}
		case strings.HasPrefix(c.Name, "GET /job/{name}/job/{name}/"):
			jenkinsSpans++
			if ca["http.response.status_code"] != "200" || c.SpanKind != trace.SpanKindClient || ca["http.request.method"] != "GET" {
				t.Errorf("Jenkins span %q: %v", c.Name, ca)
			}
		default:
			t.Errorf("unexpected span %q", c.Name)
		}
	}
	if policy != 1 || creds != 1 || jenkinsSpans == 0 {
		t.Errorf("children: %d policy, %d credentials, %d Jenkins; want 1, 1, at least 1 (%v)", policy, creds, jenkinsSpans, names(children))
	}
	if got := len(e.sim.Requests()); got != jenkinsSpans {
		t.Errorf("%d Jenkins spans for %d Jenkins requests; want one each", jenkinsSpans, got)
	}
}

// TestTracing_DeniedByPolicy pins a denied call's spans: the denial on the
// tools/call span (error.type forbidden) and on the policy span with the
// forbidding policy's id, and no credential or Jenkins span, since nothing
// reached them.
func TestTracing_DeniedByPolicy(t *testing.T) {
	t.Parallel()
	policy := []byte(`@id("users-read-all") permit (principal, action, resource);
@id("no-web-app-builds") forbid (principal, action == Action::"get_build", resource == Job::"frontend/web-app");`)
	e, exp := tracedEnv(t, jenkinstest.SampleAlice, &envOpts{policy: policy})
	e.sim.ResetRequests()
	e.fail(t, "get_build", map[string]any{"job": "frontend/web-app"}, "forbidden")
	root, children := callSpan(t, exp.GetSpans(), "get_build")
	a := attrs(root)
	if a["butler.decision"] != "deny" || a["error.type"] != "forbidden" || root.Status.Code != codes.Error {
		t.Errorf("tools/call span: %v status %v; want deny, error.type forbidden, status error", a, root.Status)
	}
	if len(children) != 1 || children[0].Name != "policy" {
		t.Fatalf("children %v; want the policy decision alone", names(children))
	}
	pa := attrs(children[0])
	if pa["butler.decision"] != "deny" || pa["error.type"] != "forbidden" || !strings.Contains(pa["butler.policy.ids"], "no-web-app-builds") {
		t.Errorf("policy span: %v", pa)
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("%d Jenkins requests for a denied call", n)
	}
}

// TestTracing_JenkinsError pins a call that Jenkins fails: the Jenkins
// request's span has the 404 as http.response.status_code and error.type,
// and the tools/call span the tool error code.
func TestTracing_JenkinsError(t *testing.T) {
	t.Parallel()
	e, exp := tracedEnv(t, jenkinstest.SampleAlice, nil)
	e.fail(t, "get_build", map[string]any{"job": "frontend/no-such-job"}, "not_found")
	root, children := callSpan(t, exp.GetSpans(), "get_build")
	if a := attrs(root); a["butler.decision"] != "error" || a["error.type"] != "not_found" || root.Status.Code != codes.Error {
		t.Errorf("tools/call span: %v %v", a, root.Status)
	}
	found := false
	for _, c := range children {
		if a := attrs(c); a["http.response.status_code"] == "404" {
			found = true
			if a["error.type"] != "404" || c.Status.Code != codes.Error {
				t.Errorf("Jenkins 404 span: %v %v", a, c.Status)
			}
		}
	}
	if !found {
		t.Errorf("no Jenkins span with status 404 among %v", names(children))
	}
}

// TestTracing_NoSecretOrValueInAnySpan calls tools with a token, an API
// key-like credential and parameter values that are easy to find, then
// scans every span's name, attributes, events, status and resource for
// them.
func TestTracing_NoSecretOrValueInAnySpan(t *testing.T) {
	t.Parallel()
	values := []string{"release/zq-7731-branch", "zq-notes-9917", "zq-search-4242", "Zq/Nowhere-5151"}
	admin, adminSpans := tracedEnv(t, jenkinstest.SampleAdmin, nil)
	admin.ok(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"BRANCH": values[0], "ENV": "staging"}})
	// Bob may only read backend/api: Jenkins refuses, and the refusal must
	// not carry the values either.
	bob, bobSpans := tracedEnv(t, jenkinstest.SampleBob, nil)
	bob.fail(t, "trigger_job", map[string]any{"job": "backend/api", "parameters": map[string]any{"NOTES": values[1]}}, "forbidden")
	bob.ok(t, "search_build_log", map[string]any{"job": "frontend/web-app", "pattern": values[2]})
	bob.fail(t, "get_current_time_info", map[string]any{"timezone": values[3]}, "invalid_argument")
	secrets := append(values, jenkinstest.SampleAdminToken, jenkinstest.SampleBobToken)
	spans := append(adminSpans.GetSpans(), bobSpans.GetSpans()...)
	if len(spans) < 8 {
		t.Fatalf("only %d spans", len(spans))
	}
	check := func(where, v string) {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("%s holds %q: %q", where, s, v)
			}
		}
		if strings.Contains(v, "bob") || strings.Contains(v, "admin") {
			t.Errorf("%s names the user: %q", where, v)
		}
	}
	for _, s := range spans {
		check("span name", s.Name)
		check("span "+s.Name+" status", s.Status.Description)
		for _, kv := range append(append([]attribute.KeyValue(nil), s.Attributes...), s.Resource.Attributes()...) {
			check("attribute "+string(kv.Key)+" of "+s.Name, kv.Value.Emit())
		}
		for _, ev := range s.Events {
			check("event of "+s.Name, ev.Name)
			for _, kv := range ev.Attributes {
				check("event attribute of "+s.Name, kv.Value.Emit())
			}
		}
	}
}

// TestTracing_ContinuesCallersTrace pins W3C trace context propagation: a
// traceparent in the request's _meta makes the call's span a child of the
// caller's, and the Jenkins requests carry a traceparent of that trace
// (and never the caller's tracestate).
func TestTracing_ContinuesCallersTrace(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var sent []http.Header
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			sent = append(sent, r.Header.Clone())
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	e, exp := tracedEnv(t, jenkinstest.SampleAlice, &envOpts{wrap: wrap})
	res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"},
		Meta: mcp.Meta{"traceparent": "00-" + traceID + "-" + parentID + "-01", "tracestate": "vendor=zq-state"},
	})
	if err != nil || res.IsError {
		t.Fatalf("get_job: %v %v", err, res)
	}
	root, _ := callSpan(t, exp.GetSpans(), "get_job")
	if root.SpanContext.TraceID().String() != traceID || root.Parent.SpanID().String() != parentID || !root.Parent.IsRemote() {
		t.Errorf("tools/call span trace %s parent %s; want the caller's trace %s and parent %s", root.SpanContext.TraceID(), root.Parent.SpanID(), traceID, parentID)
	}
	if ts := root.SpanContext.TraceState().String(); ts != "" {
		t.Errorf("the caller's tracestate was taken: %q", ts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(sent) == 0 {
		t.Fatal("no Jenkins request")
	}
	for _, h := range sent {
		if tp := h.Get("traceparent"); !strings.HasPrefix(tp, "00-"+traceID+"-") || strings.Contains(tp, parentID) {
			t.Errorf("Jenkins got traceparent %q; want one of trace %s with Butler's own span id", tp, traceID)
		}
		if h.Get("tracestate") != "" {
			t.Errorf("Jenkins got tracestate %q", h.Get("tracestate"))
		}
	}
}

// TestTracing_OffIgnoresCallersTrace pins that with tracing off no span is
// recorded and a caller's traceparent is not passed on to Jenkins.
func TestTracing_OffIgnoresCallersTrace(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var tps []string
	wrap := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			tps = append(tps, r.Header.Get("traceparent"))
			mu.Unlock()
			h.ServeHTTP(w, r)
		})
	}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{wrap: wrap})
	res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{
		Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"},
		Meta: mcp.Meta{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	})
	if err != nil || res.IsError {
		t.Fatalf("get_job: %v %v", err, res)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, tp := range tps {
		if tp != "" {
			t.Errorf("tracing off, Jenkins got traceparent %q", tp)
		}
	}
}

// TestTracing_UnknownTool pins that a call of a tool that does not exist
// has a span named tools/call alone: the name sent is not recorded.
func TestTracing_UnknownTool(t *testing.T) {
	t.Parallel()
	e, exp := tracedEnv(t, jenkinstest.SampleAlice, nil)
	res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: "zq-no-such-tool"})
	if err == nil && !res.IsError {
		t.Fatal("an unknown tool succeeded")
	}
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "tools/call" {
		t.Fatalf("spans %v; want one named tools/call", names(spans))
	}
	a := attrs(spans[0])
	if a["error.type"] != "invalid_argument" || a["butler.decision"] != "error" {
		t.Errorf("unknown tool span: %v", a)
	}
	for k, v := range a {
		if strings.Contains(v, "zq-no-such-tool") {
			t.Errorf("%s = %q carries the name sent", k, v)
		}
	}
}
