package jenkins

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/telemetry"
)

// startSpan starts the client span of one HTTP request to Jenkins, a child
// of the tool call's span in ctx. Its attributes follow the semantic
// conventions for HTTP clients, with two deliberate omissions: url.full
// has no query string (no value Butler sends there is needed to read a
// trace, and a later request might put one there that should not be
// recorded) and no request header or body is recorded, so neither a
// credential nor a build parameter value can reach a span.
func (c *Client) startSpan(ctx context.Context, cl call) (context.Context, trace.Span) {
	if c.tracer == nil {
		return ctx, noSpan
	}
	tmpl := strings.TrimSuffix(c.base.EscapedPath(), "/") + urlTemplate(cl.rel)
	ctx, span := c.tracer.Start(ctx, cl.method+" "+tmpl, trace.WithSpanKind(trace.SpanKindClient))
	if !span.IsRecording() {
		return ctx, span
	}
	span.SetAttributes(
		semconv.HTTPRequestMethodKey.String(cl.method),
		semconv.URLTemplate(tmpl),
		semconv.URLFull(c.root+cl.rel),
		semconv.ServerAddress(c.base.Hostname()),
		semconv.ServerPort(c.port()),
	)
	return ctx, span
}

// noSpan stands for the span of a request while tracing is off: it records
// nothing and costs nothing to end.
var noSpan = trace.SpanFromContext(context.Background())

// port is the port requests go to, for server.port.
func (c *Client) port() int {
	if p := c.base.Port(); p != "" {
		n, _ := strconv.Atoi(p)
		return n
	}
	if c.base.Scheme == "https" {
		return 443
	}
	return 80
}

// injectTraceparent sends the request span's trace context to Jenkins when
// Options.Traceparent is set: Jenkins's OpenTelemetry plugin continues it
// for a remote build trigger (RemoteSpanServletFilter, enabled by
// otel.instrumentation.jenkins.remote.span.enabled), so a build started
// through Butler joins the caller's trace. Only traceparent is sent, never
// the caller's tracestate or baggage.
func (c *Client) injectTraceparent(ctx context.Context, req *http.Request) {
	if !c.opts.Traceparent {
		return
	}
	if tp := telemetry.Traceparent(ctx); tp != "" {
		req.Header.Set(telemetry.TraceparentHeader, tp)
	}
}

// endSpan ends span for an answer with status (0 when none came) or err.
func endSpan(span trace.Span, status int, err error) {
	if span.IsRecording() {
		if status != 0 {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
		if e, ok := err.(*Error); ok && status == 0 {
			kind := "connection_failed"
			switch {
			case e.Timeout:
				kind = "timeout"
			case e.Detail == "request cancelled":
				kind = "cancelled"
			}
			span.SetAttributes(semconv.ErrorTypeKey.String(kind))
			span.SetStatus(codes.Error, kind)
		} else if status >= 400 {
			// HTTP client semantic conventions: a 4xx or 5xx answer is an
			// error of the client span; error.type is the status code.
			span.SetAttributes(semconv.ErrorTypeKey.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, "")
		}
	}
	span.End()
}

// tracedBody ends the request's span when the caller closes the body, so
// that a streamed answer (a console log) is timed to its last byte.
type tracedBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *tracedBody) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { b.span.End() })
	return err
}

// traceBody makes resp's body end span when closed; a span that records
// nothing ends at once.
func traceBody(resp *http.Response, span trace.Span) {
	if !span.IsRecording() {
		span.End()
		return
	}
	span.SetAttributes(semconv.HTTPResponseStatusCode(resp.StatusCode))
	resp.Body = &tracedBody{ReadCloser: resp.Body, span: span}
}

// urlTemplate is rel, an escaped path below Jenkins's root, with the
// segments that name things replaced by placeholders ("job/{name}/{number}/
// consoleText"), for span names and url.template: few distinct values
// whatever jobs exist, as span names must be.
func urlTemplate(rel string) string {
	if rel == "" {
		return "/"
	}
	segs := strings.Split(rel, "/")
	var b strings.Builder
	b.Grow(len(rel))
	for i := 0; i < len(segs); i++ {
		s := segs[i]
		b.WriteByte('/')
		switch {
		case s == "":
			continue
		case isDigits(s):
			b.WriteString("{number}")
			continue
		}
		b.WriteString(s)
		if i+1 >= len(segs) || segs[i+1] == "" {
			continue
		}
		switch s {
		case "job":
			i++
			b.WriteString("/{name}")
		case "view", "computer", "user":
			// computer/api/json is the list of nodes, computer/x/ one.
			if segs[i+1] != "api" {
				i++
				b.WriteString("/{name}")
			}
		case "input", "node":
			// An input step's id, a flow node's id (execution/node/<id>):
			// the caller may name either.
			i++
			b.WriteString("/{id}")
		case "label":
			i++
			b.WriteString("/{name}")
		case "artifact", "ws":
			// Everything below is a file path.
			b.WriteString("/{path}")
			if strings.HasSuffix(rel, "/") {
				b.WriteByte('/')
			}
			return b.String()
		}
	}
	return b.String()
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
