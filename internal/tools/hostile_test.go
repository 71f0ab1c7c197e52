package tools_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/secret"
)

// TestUnknownTool_IsAuditedAsUnknown pins that a call of a tool that does
// not exist (answered by the SDK, before any wrapper) writes one record,
// as tool "unknown" with at most 64 bytes of the name sent.
func TestUnknownTool_IsAuditedAsUnknown(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	name := "delete_everything_" + strings.Repeat("x", 900) + "\x1b[31m"
	if _, err := e.session.CallTool(context.Background(), &mcp.CallToolParams{Name: name}); err == nil {
		t.Fatal("calling an unknown tool succeeded")
	}
	recs := e.audit.all()
	if len(recs) != 1 {
		t.Fatalf("%d audit records, want 1", len(recs))
	}
	r := recs[0]
	if r.Tool != "unknown" || r.Decision != "error" || r.Code != "invalid_argument" || len(r.Reason) > 200 ||
		strings.Contains(r.Reason, "\x1b") || !strings.Contains(r.Reason, "delete_everything_") {
		t.Errorf("record %+v: want tool unknown, invalid_argument, the name cut and escaped", r)
	}
}

// TestNoJenkinsAccount_IsDeniedEveryJenkinsCall pins that a user whom
// jenkins.user_template maps to no account (JenkinsUser "") is refused
// before any credential is looked up or Jenkins is asked.
func TestNoJenkinsAccount_IsDeniedEveryJenkinsCall(t *testing.T) {
	t.Parallel()
	p := identity.Principal{User: "alice", Scopes: []string{"jenkins:read", "jenkins:build"}}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{principal: &p})
	e.sim.ResetRequests()
	for _, tool := range []string{"get_job", "trigger_job"} {
		errObj := e.fail(t, tool, map[string]any{"job": "frontend/web-app"}, "forbidden")
		if !strings.Contains(errObj["message"].(string), "no Jenkins account") {
			t.Errorf("%s: %v", tool, errObj)
		}
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("Jenkins was asked %d times for a user without an account", n)
	}
	e.ok(t, "whoami", nil) // tools that do not touch Jenkins still work
}

// rejectingSource hands out a credential Jenkins refuses and counts how
// often it is told so.
type rejectingSource struct{ rejected atomic.Int32 }

func (s *rejectingSource) For(context.Context, identity.Principal) (jenkins.Credential, error) {
	return jenkins.Credential{User: "alice", Bearer: secret.String("revoked")}, nil
}

func (s *rejectingSource) Linked(context.Context, identity.Principal) (bool, error) { return true, nil }

func (s *rejectingSource) Rejected(context.Context, identity.Principal, jenkins.Credential) {
	s.rejected.Add(1)
}

// TestRejectedCredential_IsDropped pins that a credential Jenkins refuses
// is reported to the source that cached it (an exchanged token is dropped,
// so the next call gets a new one).
func TestRejectedCredential_IsDropped(t *testing.T) {
	t.Parallel()
	src := &rejectingSource{}
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{creds: src})
	// Jenkins without jwt-auth-filter reads no bearer token: it runs the
	// request as anonymous, which is the credential's rejection.
	errObj := e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "jenkins_account_not_linked")
	if errObj["reason"] != "credential_rejected" || !strings.Contains(errObj["message"].(string), "anonymous") {
		t.Errorf("refused bearer token: %v", errObj)
	}
	if n := src.rejected.Load(); n != 1 {
		t.Errorf("the source was told of %d rejections, want 1", n)
	}
}

// TestAuditFull_RefusesCallsBeforeTheyRun pins that no call runs
// unaudited: when the audit log can take no more records (memory buffer
// and spool full, store down), calls are refused as unavailable before
// Jenkins is asked.
func TestAuditFull_RefusesCallsBeforeTheyRun(t *testing.T) {
	t.Parallel()
	full := func() error { return fmt.Errorf("%w: spool full", audit.ErrFull) }
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{admit: full})
	e.sim.ResetRequests()
	errObj := e.fail(t, "trigger_job", map[string]any{"job": "frontend/web-app"}, "unavailable")
	if errObj["retry_after_seconds"] == nil {
		t.Errorf("unavailable without retry_after_seconds: %v", errObj)
	}
	if n := len(e.sim.Requests()); n != 0 {
		t.Errorf("a call refused for a full audit log reached Jenkins %d times", n)
	}
}
