// Package telemetry names the spans and attributes Butler records for
// OpenTelemetry tracing and carries W3C trace context in and out
// (docs/tracing.md). It depends on the OpenTelemetry API
// alone; package export builds the SDK provider that records and exports
// spans. Nothing here uses OpenTelemetry's global state.
package telemetry

import (
	"unicode/utf8"

	"go.opentelemetry.io/otel/attribute"
)

// Attribute keys Butler sets that the OpenTelemetry semantic conventions
// name but the Go semconv package of this SDK (v1.43.0) does not carry: the
// MCP server conventions (semantic-conventions docs/gen-ai/mcp.md), whose
// tools/call span is named "tools/call <tool>" with these attributes.
const (
	MCPMethodName      = attribute.Key("mcp.method.name")
	MCPProtocolVersion = attribute.Key("mcp.protocol.version")
	GenAIToolName      = attribute.Key("gen_ai.tool.name")
	GenAIOperationName = attribute.Key("gen_ai.operation.name")
)

// Butler's own attribute keys.
const (
	// RequestID is the id of the call's audit record (audit request_id):
	// the way from a trace to who made the call, which spans do not carry.
	RequestID = attribute.Key("butler.request_id")
	// ToolClass is the tool's class: guest, authenticated, read, sensitive.
	ToolClass = attribute.Key("butler.tool.class")
	// Decision is the audit decision: allow, deny or error.
	Decision = attribute.Key("butler.decision")
	// Resource is what the call was about, as in the audit record (a job's
	// full name, a queue item).
	Resource = attribute.Key("butler.resource")
	// PrincipalKind is user, guest or local (stdio): never who.
	PrincipalKind = attribute.Key("butler.principal.kind")
	// PolicyStage is precheck (authentication and scope only) or decide.
	PolicyStage = attribute.Key("butler.policy.stage")
	// PolicyIDs are the ids of the policies that decided.
	PolicyIDs = attribute.Key("butler.policy.ids")
	// CredentialSource is where the caller's Jenkins credential came
	// from: stored, token_exchange, local or other.
	CredentialSource = attribute.Key("butler.credential.source")
)

// TracerName is the instrumentation scope of every Butler span.
const TracerName = "github.com/butler-mcp/butler"

// Clip returns s cut to at most n bytes on a rune boundary, for values that
// come from a caller.
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
