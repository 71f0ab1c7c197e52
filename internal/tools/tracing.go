package tools

import (
	"context"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/telemetry"
)

// Spans of a tool call (docs/tracing.md):
//
//	tools/call <tool>           SERVER, one per call
//	├── policy                  each decision the authorizer takes
//	├── credentials             the lookup of the caller's Jenkins credential
//	└── GET /job/{name}/...     each Jenkins request (package jenkins)
//
// What a span may carry is decided here, once: the tool, its class, the
// outcome (the audit decision and error code), the audit record's request
// id and resource, the policies that decided. Never a token, an API key,
// an argument or parameter value, an error message (it may quote a value),
// nor who the caller is: a user id is personal data, and traces often go
// to a backend with other readers and retention than the audit log; the
// request id leads from a trace to its audit record, which says who.

// maxPolicyIDs bounds the policy ids one span lists.
const maxPolicyIDs = 16

// startCallSpan starts the span of one tools/call, continuing the caller's
// trace when the request carries one (params._meta or the HTTP header).
func (t *Toolset) startCallSpan(ctx context.Context, req *mcp.CallToolRequest, entry catalog.Tool, sc *request.Scope) (context.Context, trace.Span) {
	if !t.tracing {
		// Tracing off: not even the caller's trace context is taken, so
		// nothing of it reaches Jenkins either.
		return ctx, noSpan
	}
	var meta map[string]any
	if req.Params != nil {
		meta = req.Params.Meta
	}
	protocol := ""
	if req.Session != nil {
		protocol = req.ProtocolVersion()
	}
	return t.startSpan(ctx, meta, req.Extra, protocol, &entry, sc)
}

// startUnknownSpan starts the span of a tools/call naming no tool Butler
// has: named "tools/call" alone, since the name sent is the caller's data.
func (t *Toolset) startUnknownSpan(ctx context.Context, p *mcp.CallToolParamsRaw, extra *mcp.RequestExtra, sc *request.Scope) (context.Context, trace.Span) {
	if !t.tracing {
		return ctx, noSpan
	}
	return t.startSpan(ctx, p.Meta, extra, "", nil, sc)
}

func (t *Toolset) startSpan(ctx context.Context, meta map[string]any, extra *mcp.RequestExtra, protocol string, entry *catalog.Tool, sc *request.Scope) (context.Context, trace.Span) {
	var header map[string][]string
	if extra != nil {
		header = extra.Header
	}
	ctx = telemetry.Extract(ctx, meta, header)
	name := "tools/call"
	if entry != nil {
		name += " " + entry.Name
	}
	ctx, span := t.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		attrs := []attribute.KeyValue{
			telemetry.MCPMethodName.String("tools/call"),
			telemetry.GenAIOperationName.String("execute_tool"),
			telemetry.RequestID.String(telemetry.Clip(sc.ID, 64)),
			telemetry.PrincipalKind.String(principalKind(sc.Principal)),
		}
		if entry != nil {
			attrs = append(attrs, telemetry.GenAIToolName.String(entry.Name), telemetry.ToolClass.String(entry.Class.String()))
		}
		if protocol != "" {
			attrs = append(attrs, telemetry.MCPProtocolVersion.String(telemetry.Clip(protocol, 32)))
		}
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// noSpan is the span of a call while tracing is off.
var noSpan = trace.SpanFromContext(context.Background())

// endCallSpan records the call's outcome, from its one audit record, on
// the call's span in ctx.
func endCallSpan(ctx context.Context, rec audit.Record) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(telemetry.Decision.String(rec.Decision))
	if rec.Resource != "" {
		span.SetAttributes(telemetry.Resource.String(telemetry.Clip(rec.Resource, 1100)))
	}
	if rec.Code != "" {
		// error.type is the tool error code (CONTRACT §4): a few known
		// values; the message is not recorded, since it may quote an
		// argument.
		span.SetAttributes(semconv.ErrorTypeKey.String(rec.Code))
		span.SetStatus(codes.Error, rec.Code)
	}
}

func principalKind(p identity.Principal) string {
	switch {
	case p.Guest:
		return "guest"
	case p.Local:
		return "local"
	}
	return "user"
}

// decide asks the authorizer about one target, in a span of its own.
func (t *Toolset) decide(ctx context.Context, r authz.Request) authz.Decision {
	if !t.tracing {
		return t.deps.Authorizer.Decide(ctx, r)
	}
	_, span := t.tracer.Start(ctx, "policy")
	d := t.deps.Authorizer.Decide(ctx, r)
	endPolicySpan(span, "decide", d)
	return d
}

// precheck is the authorizer's authentication and scope check, in a span.
func (t *Toolset) precheck(ctx context.Context, r authz.Request) authz.Decision {
	if !t.tracing {
		return t.deps.Authorizer.Precheck(r)
	}
	_, span := t.tracer.Start(ctx, "policy")
	d := t.deps.Authorizer.Precheck(r)
	endPolicySpan(span, "precheck", d)
	return d
}

func endPolicySpan(span trace.Span, stage string, d authz.Decision) {
	if span.IsRecording() {
		decision := "allow"
		if !d.Allow {
			decision = "deny"
		}
		span.SetAttributes(telemetry.PolicyStage.String(stage), telemetry.Decision.String(decision))
		if ids := d.Policies; len(ids) > 0 {
			if len(ids) > maxPolicyIDs {
				ids = ids[:maxPolicyIDs]
			}
			clipped := make([]string, len(ids))
			for i, id := range ids {
				clipped[i] = telemetry.Clip(id, 128)
			}
			span.SetAttributes(telemetry.PolicyIDs.StringSlice(clipped))
		}
		if !d.Allow {
			span.SetAttributes(semconv.ErrorTypeKey.String(d.Code))
			span.SetStatus(codes.Error, d.Code)
		}
	}
	span.End()
}

// credentialFor looks up the caller's Jenkins credential, in a span that
// says where it came from and whether it was found, never what it is.
func (t *Toolset) credentialFor(ctx context.Context, p identity.Principal) (jenkins.Credential, error) {
	if !t.tracing {
		return t.deps.Credentials.For(ctx, p)
	}
	ctx, span := t.tracer.Start(ctx, "credentials")
	cred, err := t.deps.Credentials.For(ctx, p)
	if span.IsRecording() {
		span.SetAttributes(telemetry.CredentialSource.String(credentialSource(t.deps.Credentials)))
		if err != nil {
			te := t.mapError(err, "credentials", "")
			span.SetAttributes(semconv.ErrorTypeKey.String(te.Code))
			span.SetStatus(codes.Error, te.Code)
		}
	}
	span.End()
	return cred, err
}

// credentialSource names the kind of a credential source, for spans.
func credentialSource(s credentials.Source) string {
	switch s.(type) {
	case *credentials.Stored:
		return "stored"
	case *credentials.Exchange:
		return "token_exchange"
	case credentials.Local, *credentials.Local:
		return "local"
	}
	return "other"
}
