package tools_test

import (
	"cmp"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/tools"
)

var sampleTokens = map[string]string{
	jenkinstest.SampleAlice: jenkinstest.SampleAliceToken,
	jenkinstest.SampleBob:   jenkinstest.SampleBobToken,
	jenkinstest.SampleCarol: jenkinstest.SampleCarolToken,
	jenkinstest.SampleAdmin: jenkinstest.SampleAdminToken,
}

// recorder keeps audit records for assertions.
type recorder struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (r *recorder) Record(_ context.Context, rec audit.Record) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
}

func (r *recorder) all() []audit.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Record(nil), r.recs...)
}

// testEnv is a Butler toolset for one Jenkins user of the Sample instance,
// reached by an MCP client over in-memory transports.
type testEnv struct {
	sim     *jenkinstest.Server
	clock   *jenkinstest.FakeClock
	session *mcp.ClientSession
	audit   *recorder
	jenkins *jenkins.Client
	tools   *tools.Toolset
}

type envOpts struct {
	principal  *identity.Principal
	timeout    time.Duration
	jenkins    string // base URL override
	policy     []byte // Cedar policy; nil: the built-in default
	limiter    ratelimit.Limiter
	creds      credentials.Source // nil: the user's sample token
	connectURL string
	caps       *mcp.ClientCapabilities
	rootURL    string        // the simulator's configured root URL
	poll       time.Duration // trigger_job's first poll interval; 0: 10ms
	admit      func() error  // tools.Deps.Admit
	// wrap, if set, stands in front of the simulator (a proxy).
	wrap func(http.Handler) http.Handler
	// simOpts adjusts the simulator's options before it is made.
	simOpts func(*jenkinstest.Options)
	// elicit, if set, is the client's elicitation handler.
	elicit func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)
	// protocol is the MCP revision the client asks for; "" for the SDK's
	// default.
	protocol string
	// noMultiRoundTrip turns off the client's automatic answering of
	// input-required results (2026-07-28), so a test sees them.
	noMultiRoundTrip bool
	// tracer, if set, records the toolset's and the Jenkins client's spans
	// (tracing_test.go).
	tracer trace.TracerProvider
}

func newEnv(t *testing.T, user string, o *envOpts) *testEnv {
	t.Helper()
	if o == nil {
		o = &envOpts{}
	}
	clock := jenkinstest.NewFakeClock(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	so := jenkinstest.Options{Clock: clock, RootURL: o.rootURL}
	if o.simOpts != nil {
		o.simOpts(&so)
	}
	sim := jenkinstest.Sample(&so)
	var h http.Handler = sim
	if o.wrap != nil {
		h = o.wrap(sim)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	base := hs.URL + "/"
	if o.jenkins != "" {
		base = o.jenkins
	}
	timeout := o.timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	jc, err := jenkins.New(base, &jenkins.Options{Timeout: timeout, TracerProvider: o.tracer, Traceparent: o.tracer != nil})
	if err != nil {
		t.Fatal(err)
	}
	p := identity.Principal{User: user, JenkinsUser: user, Local: true}
	if o.principal != nil {
		p = *o.principal
	}
	rec := &recorder{}
	az, err := authz.NewWithPolicy(&authz.Options{ToolScopes: scopesFor, Policy: o.policy, PolicyName: "test.cedar"})
	if err != nil {
		t.Fatal(err)
	}
	var creds credentials.Source = credentials.Local{Credential: jenkins.Credential{User: user, APIToken: secret.String(tokenOf(user))}}
	if o.creds != nil {
		creds = o.creds
	}
	ts, err := tools.New(tools.Deps{
		Jenkins:      jc,
		Credentials:  creds,
		Authorizer:   az,
		Limiter:      o.limiter,
		ConnectURL:   o.connectURL,
		Audit:        rec,
		Scope:        tools.FixedPrincipal(p),
		Now:          clock.Now,
		Version:      "test",
		PollInterval: cmp.Or(o.poll, 10*time.Millisecond),
		Admit:        o.admit,
		Logger:       slog.New(slog.DiscardHandler),

		TracerProvider: o.tracer,
	})
	if err != nil {
		t.Fatal(err)
	}
	cs := connectWith(t, ts, &mcp.ClientOptions{Capabilities: o.caps, ElicitationHandler: o.elicit,
		MultiRoundTrip: &mcp.MultiRoundTripOptions{Disabled: o.noMultiRoundTrip}}, &mcp.ClientSessionOptions{ProtocolVersion: o.protocol})
	return &testEnv{sim: sim, clock: clock, session: cs, audit: rec, jenkins: jc, tools: ts}
}

func tokenOf(user string) string {
	if tok, ok := sampleTokens[user]; ok {
		return tok
	}
	return "wrong-token"
}

// connect serves ts to an MCP client over in-memory transports.
func connect(tb testing.TB, ts *tools.Toolset, caps *mcp.ClientCapabilities) *mcp.ClientSession {
	tb.Helper()
	return connectWith(tb, ts, &mcp.ClientOptions{Capabilities: caps}, nil)
}

// connectWith is connect with the client's options and session options.
func connectWith(tb testing.TB, ts *tools.Toolset, co *mcp.ClientOptions, so *mcp.ClientSessionOptions) *mcp.ClientSession {
	tb.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "butler", Version: "test"}, nil)
	ts.Register(server)
	st, ct := mcp.NewInMemoryTransports()
	ctx := context.Background()
	ss, err := server.Connect(ctx, st, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, co).Connect(ctx, ct, so)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cs.Close() })
	return cs
}

func scopesFor(tool string) []string {
	switch tool {
	case "health":
		return nil
	case "trigger_job", "stop_build", "cancel_queue_item", "submit_input":
		return []string{"jenkins:build"}
	}
	return []string{"jenkins:read"}
}

// call calls a tool and returns its structured content decoded into a map,
// failing the test on a protocol error.
func (e *testEnv) call(t *testing.T, tool string, args map[string]any) (map[string]any, bool) {
	t.Helper()
	res, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	var out map[string]any
	data, _ := json.Marshal(res.StructuredContent)
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("%s: structured content %s: %v", tool, data, err)
	}
	if len(res.Content) != 1 {
		t.Fatalf("%s: %d content items, want 1", tool, len(res.Content))
	}
	text := res.Content[0].(*mcp.TextContent).Text
	if res.IsError {
		code := out["error"].(map[string]any)["code"].(string)
		if !strings.HasPrefix(text, code+": ") {
			t.Errorf("%s: error text %q does not start with its code %q", tool, text, code)
		}
	}
	return out, res.IsError
}

// ok calls a tool that must succeed.
func (e *testEnv) ok(t *testing.T, tool string, args map[string]any) map[string]any {
	t.Helper()
	out, isErr := e.call(t, tool, args)
	if isErr {
		t.Fatalf("%s(%v) failed: %v", tool, args, out["error"])
	}
	return out
}

// fail calls a tool that must fail with code and returns the error object.
func (e *testEnv) fail(t *testing.T, tool string, args map[string]any, code string) map[string]any {
	t.Helper()
	out, isErr := e.call(t, tool, args)
	if !isErr {
		t.Fatalf("%s(%v) succeeded with %v, want %s", tool, args, out, code)
	}
	errObj := out["error"].(map[string]any)
	if errObj["code"] != code {
		t.Fatalf("%s(%v) failed with %v, want %s", tool, args, errObj, code)
	}
	return errObj
}

// posts returns the POST requests the simulator received.
func (e *testEnv) posts() []jenkinstest.Request {
	var out []jenkinstest.Request
	for _, r := range e.sim.Requests() {
		if r.Method == "POST" {
			out = append(out, r)
		}
	}
	return out
}

func TestToolsList_EveryToolHasSchemasAndTruthfulAnnotations(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	res, err := e.session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	writes := map[string]bool{"trigger_job": true, "stop_build": true, "cancel_queue_item": true, "submit_input": true}
	destructive := map[string]bool{"stop_build": true, "cancel_queue_item": true, "submit_input": true}
	want := []string{"health", "get_current_time_info", "whoami", "list_all_jobs", "get_job", "trigger_job",
		"get_queue_item", "cancel_queue_item", "get_build", "get_build_log", "search_build_log", "stop_build", "get_test_results",
		"list_artifacts", "get_artifact", "get_build_changes",
		"get_pipeline_stages", "get_stage_log", "list_pending_inputs", "submit_input",
		"list_queue", "list_nodes", "wait_for_build", "diagnose_build"}
	got := map[string]*mcp.Tool{}
	for _, tool := range res.Tools {
		got[tool.Name] = tool
	}
	for _, name := range want {
		tool, ok := got[name]
		if !ok {
			t.Errorf("tool %s missing", name)
			continue
		}
		if len(tool.Description) < 60 {
			t.Errorf("%s: description too thin for a model: %q", name, tool.Description)
		}
		if tool.InputSchema == nil || tool.OutputSchema == nil {
			t.Errorf("%s: missing input or output schema", name)
		}
		a := tool.Annotations
		if a == nil || a.DestructiveHint == nil || a.OpenWorldHint == nil {
			t.Errorf("%s: annotations not all set: %+v", name, a)
			continue
		}
		if a.ReadOnlyHint == writes[name] {
			t.Errorf("%s: readOnlyHint %t", name, a.ReadOnlyHint)
		}
		if *a.DestructiveHint != destructive[name] {
			t.Errorf("%s: destructiveHint %t", name, *a.DestructiveHint)
		}
		if name == "trigger_job" && a.IdempotentHint {
			t.Errorf("trigger_job claims to be idempotent")
		}
		if name == "get_current_time_info" && *a.OpenWorldHint {
			t.Errorf("get_current_time_info claims an open world")
		}
	}
	if len(res.Tools) != len(want) {
		t.Errorf("%d tools, want %d", len(res.Tools), len(want))
	}
}

// Every successful output must validate against the tool's declared output
// schema: the schema is a promise to the client.
func TestOutputs_MatchOutputSchemas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	res, err := e.session.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	schemas := map[string]*jsonschema.Resolved{}
	for _, tool := range res.Tools {
		data, _ := json.Marshal(tool.OutputSchema)
		var s jsonschema.Schema
		if err := json.Unmarshal(data, &s); err != nil {
			t.Fatal(err)
		}
		r, err := s.Resolve(nil)
		if err != nil {
			t.Fatalf("%s output schema: %v", tool.Name, err)
		}
		schemas[tool.Name] = r
	}
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"health", nil},
		{"get_current_time_info", map[string]any{"timezone": "Asia/Kolkata"}},
		{"whoami", nil},
		{"list_all_jobs", map[string]any{"limit": 2}},
		{"get_job", map[string]any{"job": "backend/api"}},
		{"get_build", map[string]any{"job": "backend/api"}},
		{"get_build_log", map[string]any{"job": "frontend/web-app", "max_bytes": 100}},
		{"get_build_log", map[string]any{"job": "frontend/web-app", "tail_lines": 5}},
		{"search_build_log", map[string]any{"job": "frontend/web-app", "build": 6, "pattern": "error", "ignore_case": true, "context_lines": 1}},
		{"get_test_results", map[string]any{"job": "frontend/web-app", "build": 6}},
		{"trigger_job", map[string]any{"job": "frontend/web-app"}},
		{"get_queue_item", map[string]any{"queue_id": 1}},
		{"cancel_queue_item", map[string]any{"queue_id": 1}},
		{"list_artifacts", map[string]any{"job": "frontend/docs", "build": 3}},
		{"get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "reports/coverage.txt"}},
		{"get_artifact", map[string]any{"job": "frontend/web-app", "build": 5, "path": "dist/logo.png", "max_bytes": 10}},
		{"get_build_changes", map[string]any{"job": "frontend/web-app", "build": 5}},
		{"diagnose_build", map[string]any{"job": "diagnosis/junit-test-failure"}},
		{"diagnose_build", map[string]any{"job": "diagnosis/gradle-dependency-resolution"}},
		{"diagnose_build", map[string]any{"job": "diagnosis/npm-eresolve", "build": 1}},
	}
	for _, c := range calls {
		out := e.ok(t, c.tool, c.args)
		if err := schemas[c.tool].Validate(out); err != nil {
			t.Errorf("%s output %v does not match its schema: %v", c.tool, out, err)
		}
	}
}
