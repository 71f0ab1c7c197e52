package config

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/secret"
)

// TestTelemetry_OffByDefault pins that tracing is off unless an endpoint
// is configured, with the documented defaults for the rest.
func TestTelemetry_OffByDefault(t *testing.T) {
	t.Parallel()
	c := validBase(t)
	tr := c.Telemetry.Traces
	if tr.Enabled() || tr.OTLPEndpoint != "" {
		t.Errorf("tracing is on by default: %+v", tr)
	}
	if tr.Protocol != "http" || tr.SampleRatio != 1 || tr.ServiceName != "butler" || !tr.JenkinsTraceparent || tr.Insecure {
		t.Errorf("defaults = %+v; want protocol http, sample_ratio 1, service_name butler, jenkins_traceparent true, insecure false", tr)
	}
	if err := c.ValidateWith(ModeServe, fakeFiles(t)); err != nil {
		t.Errorf("default config: %v", err)
	}
}

// TestTelemetry_ParsesEveryKey pins the key names of docs/configuration.md.
func TestTelemetry_ParsesEveryKey(t *testing.T) {
	t.Parallel()
	env := map[string]string{"HONEYCOMB_KEY": "hc-secret-123"}
	c, err := Parse([]byte(`
telemetry:
  traces:
    otlp_endpoint: https://otel.example.com:4318
    protocol: grpc
    insecure: false
    ca_file: ca.pem
    headers:
      x-honeycomb-team: ${HONEYCOMB_KEY}
    sample_ratio: 0.25
    service_name: butler-prod
    jenkins_traceparent: false
`), func(n string) (string, bool) { v, ok := env[n]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	tr := c.Telemetry.Traces
	if tr.OTLPEndpoint != "https://otel.example.com:4318" || tr.Protocol != "grpc" || tr.CAFile != "ca.pem" ||
		tr.SampleRatio != 0.25 || tr.ServiceName != "butler-prod" || tr.JenkinsTraceparent {
		t.Errorf("parsed %+v", tr)
	}
	if got := tr.HeaderValues()["x-honeycomb-team"]; got != "hc-secret-123" {
		t.Errorf("header value = %q", got)
	}
	if s := strings.Join([]string{tr.Headers["x-honeycomb-team"].String()}, ""); s != "[redacted]" {
		t.Errorf("a header value prints as %q; want it redacted", s)
	}
	_, err = Parse([]byte("telemetry:\n  traces:\n    otlp_endpiont: http://127.0.0.1:4318\n"), noEnv)
	var ps Problems
	if !errors.As(err, &ps) || !strings.Contains(err.Error(), `did you mean "otlp_endpoint"`) {
		t.Errorf("a mistyped key: %v; want an unknown-key problem with a suggestion", err)
	}
}

// TestTelemetry_Validate pins each rule of telemetry.traces, with the
// value at its limit accepted and one past it refused.
func TestTelemetry_Validate(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("s", 255)
	manyHeaders := map[string]secret.String{}
	for i := 0; i < maxTraceHeaders+1; i++ {
		manyHeaders["h"+strings.Repeat("x", i)] = "v"
	}
	for _, tc := range []struct {
		name  string
		set   func(*Traces)
		field string // "" when valid
		want  string
	}{
		{"loopback http", func(tr *Traces) { tr.OTLPEndpoint = "http://127.0.0.1:4318" }, "", ""},
		{"localhost http grpc", func(tr *Traces) { tr.OTLPEndpoint = "http://localhost:4317"; tr.Protocol = "grpc" }, "", ""},
		{"https with ca", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com"; tr.CAFile = "ca.pem" }, "", ""},
		{"http remote refused", func(tr *Traces) { tr.OTLPEndpoint = "http://otel.example.com:4318" }, "telemetry.traces.otlp_endpoint", "unencrypted"},
		{"http remote insecure", func(tr *Traces) { tr.OTLPEndpoint = "http://otel.example.com:4318"; tr.Insecure = true }, "", ""},
		{"insecure on https", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com"; tr.Insecure = true }, "telemetry.traces.insecure", "only to http://"},
		{"not a URL", func(tr *Traces) { tr.OTLPEndpoint = "otel.example.com:4318" }, "telemetry.traces.otlp_endpoint", "absolute http(s) URL"},
		{"query", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com/?k=v" }, "telemetry.traces.otlp_endpoint", "query"},
		{"user info", func(tr *Traces) { tr.OTLPEndpoint = "https://u:p@otel.example.com/" }, "telemetry.traces.otlp_endpoint", "user info"},
		{"grpc path", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com/v1/traces"; tr.Protocol = "grpc" }, "telemetry.traces.otlp_endpoint", "no path"},
		{"protocol", func(tr *Traces) { tr.Protocol = "http/protobuf" }, "telemetry.traces.protocol", "want http"},
		{"ratio 0", func(tr *Traces) { tr.SampleRatio = 0 }, "", ""},
		{"ratio 1", func(tr *Traces) { tr.SampleRatio = 1 }, "", ""},
		{"ratio over 1", func(tr *Traces) { tr.SampleRatio = 1.01 }, "telemetry.traces.sample_ratio", "from 0 to 1"},
		{"ratio negative", func(tr *Traces) { tr.SampleRatio = -0.1 }, "telemetry.traces.sample_ratio", "from 0 to 1"},
		{"ratio NaN", func(tr *Traces) { tr.SampleRatio = math.NaN() }, "telemetry.traces.sample_ratio", "from 0 to 1"},
		{"service name 255", func(tr *Traces) { tr.ServiceName = long }, "", ""},
		{"service name 256", func(tr *Traces) { tr.ServiceName = long + "s" }, "telemetry.traces.service_name", "255"},
		{"service name empty", func(tr *Traces) { tr.ServiceName = "" }, "telemetry.traces.service_name", "empty"},
		{"service name control", func(tr *Traces) { tr.ServiceName = "a\nb" }, "telemetry.traces.service_name", "control"},
		{"header name", func(tr *Traces) { tr.Headers = map[string]secret.String{"bad name": "v"} }, "telemetry.traces.headers.bad name", "header name"},
		{"header CRLF", func(tr *Traces) { tr.Headers = map[string]secret.String{"x-key": "a\r\nInjected: 1"} }, "telemetry.traces.headers.x-key", "line break"},
		{"header empty", func(tr *Traces) { tr.Headers = map[string]secret.String{"x-key": ""} }, "telemetry.traces.headers.x-key", "empty"},
		{"too many headers", func(tr *Traces) { tr.Headers = manyHeaders }, "telemetry.traces.headers", "at most 32"},
		{"ca without endpoint", func(tr *Traces) { tr.CAFile = "ca.pem" }, "telemetry.traces.ca_file", "tracing is off"},
		{"ca on http", func(tr *Traces) { tr.OTLPEndpoint = "http://127.0.0.1:4318"; tr.CAFile = "ca.pem" }, "telemetry.traces.ca_file", "only to https"},
		{"ca missing", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com"; tr.CAFile = "nope.pem" }, "telemetry.traces.ca_file", "cannot read"},
		{"ca not pem", func(tr *Traces) { tr.OTLPEndpoint = "https://otel.example.com"; tr.CAFile = "notpem.txt" }, "telemetry.traces.ca_file", "no PEM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validBase(t)
			tc.set(&c.Telemetry.Traces)
			err := c.ValidateWith(ModeServe, fakeFiles(t))
			if tc.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			var ps Problems
			if !errors.As(err, &ps) {
				t.Fatalf("want a problem on %s, got %v", tc.field, err)
			}
			for _, p := range ps {
				if p.Field == tc.field && strings.Contains(p.Message, tc.want) {
					return
				}
			}
			t.Fatalf("want a problem on %s saying %q, got:\n%v", tc.field, tc.want, err)
		})
	}
}

// TestTelemetry_HeaderValueNeverInProblems pins that no problem quotes a
// header value, which is a secret.
func TestTelemetry_HeaderValueNeverInProblems(t *testing.T) {
	t.Parallel()
	c := validBase(t)
	c.Telemetry.Traces.Headers = map[string]secret.String{"x-key": "top-secret-value\n"}
	err := c.ValidateWith(ModeServe, fakeFiles(t))
	if err == nil || strings.Contains(err.Error(), "top-secret-value") {
		t.Errorf("problems = %v; want one that does not show the value", err)
	}
}
