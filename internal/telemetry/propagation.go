package telemetry

import (
	"context"
	"net/http"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// TraceparentHeader is the W3C Trace Context header (and MCP _meta key)
// that carries a caller's trace.
const TraceparentHeader = "traceparent"

// traceContext is the W3C Trace Context propagator. It is a value with no
// state: using it needs no global propagator.
var traceContext propagation.TraceContext

// onlyTraceparent is a carrier that offers the propagator a traceparent and
// nothing else, so that a caller's tracestate (vendor data of any content,
// up to 32 entries) is neither taken into Butler's spans nor passed on.
type onlyTraceparent struct{ value string }

func (c *onlyTraceparent) Get(key string) string {
	if key == TraceparentHeader {
		return c.value
	}
	return ""
}

func (c *onlyTraceparent) Set(key, value string) {
	if key == TraceparentHeader {
		c.value = value
	}
}

func (c *onlyTraceparent) Keys() []string { return []string{TraceparentHeader} }

// maxTraceparent is longer than any traceparent of W3C Trace Context
// version 00 (55 characters); later versions may append fields, which the
// propagator ignores. Anything longer is not parsed at all.
const maxTraceparent = 256

// Extract returns ctx continuing the caller's trace: the traceparent of
// the MCP request's params._meta (the MCP semantic conventions' carrier),
// else of its HTTP request header. An absent or malformed traceparent
// leaves ctx as it is (the call starts a new trace). Only traceparent is
// read: tracestate and baggage are ignored.
func Extract(ctx context.Context, meta map[string]any, header http.Header) context.Context {
	tp, _ := meta[TraceparentHeader].(string)
	if tp == "" && header != nil {
		tp = header.Get(TraceparentHeader)
	}
	if tp == "" || len(tp) > maxTraceparent {
		return ctx
	}
	return traceContext.Extract(ctx, &onlyTraceparent{value: tp})
}

// Traceparent returns the traceparent header value of the span in ctx, or
// "" when ctx has no valid span context.
func Traceparent(ctx context.Context) string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ""
	}
	var c onlyTraceparent
	traceContext.Inject(ctx, &c)
	return c.value
}
