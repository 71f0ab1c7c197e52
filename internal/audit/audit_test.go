package audit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/request"
)

// start is the fixed clock of these tests, in a zone other than UTC so that
// the conversion shows.
var start = time.Date(2030, 5, 17, 10, 30, 0, 123_456_789, time.FixedZone("CEST", 2*60*60))

func aliceScope() *request.Scope {
	return &request.Scope{
		Principal: identity.Principal{
			User:        "alice@example.com",
			JenkinsUser: "alice",
			ClientID:    "claude-desktop",
			Groups:      []string{"dev"},
			Scopes:      []string{"jenkins:read"},
		},
		ID:         "0123456789abcdef",
		RemoteAddr: "192.0.2.7:51234",
	}
}

func TestBegin_CopiesTheScope(t *testing.T) {
	t.Parallel()
	guest := &request.Scope{Principal: identity.Guest(), ID: "guestreq", RemoteAddr: "198.51.100.1:443"}
	tests := []struct {
		name  string
		scope *request.Scope
		want  audit.Record
	}{
		{
			name:  "user",
			scope: aliceScope(),
			want: audit.Record{
				Time: start.UTC(), RequestID: "0123456789abcdef", User: "alice@example.com", JenkinsUser: "alice",
				ClientID: "claude-desktop", Tool: catalog.GetJob, Resource: "team/app", Decision: audit.Allow,
				Reason: "allowed", DurationMS: 0, RemoteAddr: "192.0.2.7:51234",
			},
		},
		{
			name:  "guest is anonymous",
			scope: guest,
			want: audit.Record{
				Time: start.UTC(), RequestID: "guestreq", User: "anonymous", Tool: catalog.GetJob,
				Resource: "team/app", Decision: audit.Allow, Reason: "allowed", RemoteAddr: "198.51.100.1:443",
			},
		},
		{
			name:  "no scope",
			scope: nil,
			want: audit.Record{
				Time: start.UTC(), Tool: catalog.GetJob, Resource: "team/app", Decision: audit.Allow, Reason: "allowed",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := audit.Begin(start, tt.scope, catalog.GetJob).Resource("team/app").Allowed(start, nil)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBegin_TimeIsTheStartInUTC(t *testing.T) {
	t.Parallel()
	got := audit.Begin(start, aliceScope(), catalog.Health).Allowed(start.Add(time.Second), nil)
	if !got.Time.Equal(start) {
		t.Errorf("Time = %v, want the instant %v", got.Time, start)
	}
	if got.Time.Location() != time.UTC {
		t.Errorf("Time location = %v, want UTC", got.Time.Location())
	}
}

func TestBuilder_DurationIsEndMinusStartInMilliseconds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		d    time.Duration
		want int64
	}{
		{"zero", 0, 0},
		{"sub-millisecond truncates", 999 * time.Microsecond, 0},
		{"1.9ms truncates", 1900 * time.Microsecond, 1},
		{"1.5s", 1500 * time.Millisecond, 1500},
		{"an hour", time.Hour, 3_600_000},
		{"end before start is zero", -time.Second, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			end := start.Add(tt.d)
			for _, rec := range []audit.Record{
				audit.Begin(start, aliceScope(), catalog.GetJob).Allowed(end, nil),
				audit.Begin(start, aliceScope(), catalog.GetJob).Denied(end, "forbidden", "no"),
				audit.Begin(start, aliceScope(), catalog.GetJob).Failed(end, "jenkins_unavailable", "down"),
			} {
				if rec.DurationMS != tt.want {
					t.Errorf("%s: DurationMS = %d, want %d", rec.Decision, rec.DurationMS, tt.want)
				}
			}
		})
	}
}

func TestAllowed_ReasonNamesThePolicies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		policies []string
		want     string
	}{
		{"nil", nil, "allowed"},
		{"empty", []string{}, "allowed"},
		{"one", []string{"devs-read"}, "policy: devs-read"},
		{"two", []string{"a", "b"}, "policies: a, b"},
		{"three", []string{"a", "b", "c"}, "policies: a, b, c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := audit.Begin(start, aliceScope(), catalog.TriggerJob).Allowed(start, tt.policies)
			if got.Reason != tt.want {
				t.Errorf("Reason = %q, want %q", got.Reason, tt.want)
			}
			if got.Decision != audit.Allow || got.Code != "" {
				t.Errorf("Decision, Code = %q, %q; want %q, \"\"", got.Decision, got.Code, audit.Allow)
			}
		})
	}
}

func TestDeniedAndFailed_KeepCodeAndReason(t *testing.T) {
	t.Parallel()
	b := audit.Begin(start, aliceScope(), catalog.StopBuild).Resource("prod/deploy")
	denied := b.Denied(start, "insufficient_scope", "the token lacks jenkins:build")
	failed := b.Failed(start, "jenkins_unavailable", "Jenkins answered 502")
	want := []audit.Record{
		{Decision: audit.Deny, Code: "insufficient_scope", Reason: "the token lacks jenkins:build"},
		{Decision: audit.Error, Code: "jenkins_unavailable", Reason: "Jenkins answered 502"},
	}
	for i, got := range []audit.Record{denied, failed} {
		if got.Decision != want[i].Decision || got.Code != want[i].Code || got.Reason != want[i].Reason {
			t.Errorf("record %d: Decision, Code, Reason = %q, %q, %q; want %q, %q, %q",
				i, got.Decision, got.Code, got.Reason, want[i].Decision, want[i].Code, want[i].Reason)
		}
		if got.Tool != catalog.StopBuild || got.Resource != "prod/deploy" || got.User != "alice@example.com" {
			t.Errorf("record %d: Tool, Resource, User = %q, %q, %q", i, got.Tool, got.Resource, got.User)
		}
	}
}

func TestBegin_NoToolLeavesToolAndReasonAlone(t *testing.T) {
	t.Parallel()
	got := audit.Begin(start, aliceScope(), "").Denied(start, "invalid_token", "the token expired")
	if got.Tool != "" || got.Reason != "the token expired" {
		t.Errorf("Tool, Reason = %q, %q; want \"\", %q", got.Tool, got.Reason, "the token expired")
	}
}

func TestBegin_UnknownToolIsRecordedAsUnknownWithItsNameQuotedInTheReason(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("x", 70)
	tests := []struct {
		name, sent, wantPrefix string
	}{
		{"short", "delete_everything", `tool "delete_everything": `},
		{"control characters escaped", "rm\n-rf\x1b[0m", `tool "rm\n-rf\x1b[0m": `},
		{"cut at 64 bytes", long, `tool "` + long[:64] + `"...: `},
		{"cut at a rune boundary", strings.Repeat("a", 63) + "€", `tool "` + strings.Repeat("a", 63) + `"...: `},
		{"reserved name unknown itself", catalog.Unknown, `tool "unknown": `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, rec := range []audit.Record{
				audit.Begin(start, aliceScope(), tt.sent).Allowed(start, nil),
				audit.Begin(start, aliceScope(), tt.sent).Denied(start, "not_found", "no such tool"),
				audit.Begin(start, aliceScope(), tt.sent).Failed(start, "internal", "boom"),
			} {
				if rec.Tool != catalog.Unknown {
					t.Errorf("%s: Tool = %q, want %q", rec.Decision, rec.Tool, catalog.Unknown)
				}
				if !strings.HasPrefix(rec.Reason, tt.wantPrefix) {
					t.Errorf("%s: Reason = %q, want prefix %q", rec.Decision, rec.Reason, tt.wantPrefix)
				}
				if strings.ContainsAny(rec.Reason, "\n\x1b") {
					t.Errorf("%s: Reason = %q holds a raw control character", rec.Decision, rec.Reason)
				}
			}
			got := audit.Begin(start, aliceScope(), tt.sent).Denied(start, "not_found", "no such tool")
			if want := tt.wantPrefix + "no such tool"; got.Reason != want {
				t.Errorf("Reason = %q, want %q", got.Reason, want)
			}
		})
	}
}

func TestBegin_HugeUnknownToolNameStaysSmall(t *testing.T) {
	t.Parallel()
	const size = 900 << 10
	// The longest escape QuoteToASCII writes per input byte is 4 bytes
	// (\xNN), so the prefix is at most "tool " + 2 quotes + 64*4 + "..." +
	// ": ".
	const maxPrefix = len("tool ") + 2 + 64*4 + len("...") + len(": ")
	for _, tt := range []struct{ name, unit string }{
		{"ASCII", "a"},
		{"control bytes", "\x01"},
		{"invalid UTF-8", "\xff"},
		{"two-byte runes", "é"},
		{"four-byte runes", "😀"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sent := strings.Repeat(tt.unit, size/len(tt.unit))
			const reason = "no such tool"
			rec := audit.Begin(start, aliceScope(), sent).Denied(start, "not_found", reason)
			if rec.Tool != catalog.Unknown {
				t.Errorf("Tool = %q, want %q", rec.Tool, catalog.Unknown)
			}
			prefix := len(rec.Tool) + len(rec.Reason) - len(reason)
			if prefix > len(catalog.Unknown)+maxPrefix {
				t.Errorf("Tool+Reason prefix is %d bytes, want at most %d: %q", prefix, len(catalog.Unknown)+maxPrefix, rec.Reason)
			}
			if tt.unit == "a" && prefix > 200 {
				t.Errorf("an ASCII name: Tool+Reason prefix is %d bytes, want at most 200", prefix)
			}
		})
	}
}

func TestBuilder_IsReusableForOneEvent(t *testing.T) {
	t.Parallel()
	// A Builder hands out copies: finishing it twice gives two independent
	// records and the first is not changed by the second.
	b := audit.Begin(start, aliceScope(), "bogus")
	first := b.Denied(start, "c1", "r1")
	second := b.Failed(start.Add(time.Millisecond), "c2", "r2")
	if first.Code != "c1" || first.Reason != `tool "bogus": r1` || first.DurationMS != 0 {
		t.Errorf("first = %+v", first)
	}
	if second.Code != "c2" || second.Reason != `tool "bogus": r2` || second.DurationMS != 1 {
		t.Errorf("second = %+v", second)
	}
	if first.Decision != audit.Deny || second.Decision != audit.Error {
		t.Errorf("decisions = %q, %q; want %q, %q", first.Decision, second.Decision, audit.Deny, audit.Error)
	}
}
