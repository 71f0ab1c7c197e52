// Package audit records who did what through Butler: one Record per
// tools/call and per authentication failure (CONTRACT §6). A Record never
// holds a token or credential.
package audit

import (
	"context"
	"log/slog"
	"time"
)

// Decisions.
const (
	Allow = "allow" // the tool ran and succeeded
	Deny  = "deny"  // stopped by authentication, scope, policy or Jenkins permission
	Error = "error" // any other failure
)

// Record is one audited event.
type Record struct {
	Time        time.Time `json:"time"`
	RequestID   string    `json:"request_id"`
	User        string    `json:"user"`
	JenkinsUser string    `json:"jenkins_user"`
	ClientID    string    `json:"client_id"`
	Tool        string    `json:"tool"`
	Resource    string    `json:"resource"`
	Decision    string    `json:"decision"`
	Code        string    `json:"code"`
	Reason      string    `json:"reason"`
	DurationMS  int64     `json:"duration_ms"`
	RemoteAddr  string    `json:"remote_addr"`
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
