// Package audit records who did what through Butler: one Record per
// tools/call and per refused request (docs/operations.md, "Audit log"). A
// Record never holds a token or credential.
//
// Record is the one type of an audit record in Butler: the store keeps it,
// the writer batches it, the log line and `butler audit` print it. Records
// are made only by Begin and a Builder's Allowed, Denied or Failed, so every
// layer fills the same fields the same way.
package audit

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/request"
)

// Decisions.
const (
	Allow = "allow" // the tool ran and succeeded
	Deny  = "deny"  // stopped by authentication, scope, policy or Jenkins permission
	Error = "error" // any other failure
)

// Record is one audited event.
type Record struct {
	Time        time.Time `json:"time"`         // when it began; kept at millisecond precision
	RequestID   string    `json:"request_id"`   // the request id of the HTTP request
	User        string    `json:"user"`         // the user id; "anonymous" for a guest, "" when authentication failed
	JenkinsUser string    `json:"jenkins_user"` // the Jenkins user the call acted as, if any
	ClientID    string    `json:"client_id"`    // the OAuth client (client_id, azp or cid)
	Tool        string    `json:"tool"`         // a tool of the catalog, catalog.Unknown, or "" for a request with no tools/call
	Resource    string    `json:"resource"`     // the canonical job path, or what else the call was about
	Decision    string    `json:"decision"`     // Allow, Deny or Error
	Code        string    `json:"code"`         // the tool error code, or the denial's (forbidden, insufficient_scope, ...)
	Reason      string    `json:"reason"`       // why, for a human: the policies that decided, Jenkins's message
	DurationMS  int64     `json:"duration_ms"`  // how long it took
	RemoteAddr  string    `json:"remote_addr"`  // the client's address
}

// Builder makes the record of one event. The zero value is not useful;
// use Begin.
type Builder struct {
	rec   Record
	start time.Time
	// sent is the tool name as the client sent it, when it is not a tool
	// of the catalog.
	sent string
}

// Begin starts the record of an event of request s that began at start.
// tool is the tool name as the client sent it ("" for a request that
// called no tool): a name the catalog does not have is recorded as
// catalog.Unknown, and at most its first 64 bytes go into the reason.
func Begin(start time.Time, s *request.Scope, tool string) *Builder {
	b := &Builder{start: start, rec: Record{Time: start.UTC()}}
	if s != nil {
		p := s.Principal
		b.rec.RequestID, b.rec.RemoteAddr = s.ID, s.RemoteAddr
		b.rec.User, b.rec.JenkinsUser, b.rec.ClientID = p.User, p.JenkinsUser, p.ClientID
		if p.Guest {
			b.rec.User = p.Name()
		}
	}
	if tool != "" {
		b.rec.Tool = catalog.Label(tool)
		if b.rec.Tool == catalog.Unknown {
			b.sent = tool
		}
	}
	return b
}

// Resource sets what the event was about (a canonical job path).
func (b *Builder) Resource(res string) *Builder {
	b.rec.Resource = res
	return b
}

// Allowed is the record of a call that ran and succeeded; policies are
// the ids of the policies that allowed it.
func (b *Builder) Allowed(end time.Time, policies []string) Record {
	reason := "allowed"
	switch len(policies) {
	case 0:
	case 1:
		reason = "policy: " + policies[0]
	default:
		reason = "policies: " + strings.Join(policies, ", ")
	}
	return b.finish(end, Allow, "", reason)
}

// Denied is the record of an event stopped by authentication, scope,
// policy or Jenkins permission; code says which.
func (b *Builder) Denied(end time.Time, code, reason string) Record {
	return b.finish(end, Deny, code, reason)
}

// Failed is the record of any other failure; code is its tool error code.
func (b *Builder) Failed(end time.Time, code, reason string) Record {
	return b.finish(end, Error, code, reason)
}

func (b *Builder) finish(end time.Time, decision, code, reason string) Record {
	r := b.rec
	r.Decision, r.Code, r.Reason = decision, code, reason
	if b.sent != "" {
		r.Reason = "tool " + catalog.Quote(b.sent) + ": " + reason
	}
	if d := end.Sub(b.start); d > 0 {
		r.DurationMS = d.Milliseconds()
	}
	return r
}

// Recorder accepts records. Implementations must not block the request
// path for long and must be safe for concurrent use.
type Recorder interface {
	Record(ctx context.Context, r Record)
}

// LogRecorder writes each record as one structured log line.
type LogRecorder struct {
	Logger *slog.Logger
}

// Record logs r at info level under the message "audit".
func (l LogRecorder) Record(ctx context.Context, r Record) {
	l.Logger.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.Time("time", r.Time),
		slog.String("request_id", r.RequestID),
		slog.String("user", r.User),
		slog.String("jenkins_user", r.JenkinsUser),
		slog.String("client_id", r.ClientID),
		slog.String("tool", r.Tool),
		slog.String("resource", r.Resource),
		slog.String("decision", r.Decision),
		slog.String("code", r.Code),
		slog.String("reason", r.Reason),
		slog.Int64("duration_ms", r.DurationMS),
		slog.String("remote_addr", r.RemoteAddr),
	)
}
