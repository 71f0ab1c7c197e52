package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
)

// recorder keeps audit records.
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

// sessionFixture is BindSessions alone over a fake SDK that creates
// session "sess-1" for a request without a session id.
type sessionFixture struct {
	h       http.Handler
	audit   *recorder
	metrics *metrics.Metrics
	served  int // requests the fake SDK served
	mu      sync.Mutex
}

var bindNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newSessionFixture() *sessionFixture {
	f := &sessionFixture{audit: &recorder{}, metrics: metrics.New()}
	sdk := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.served++
		f.mu.Unlock()
		if r.Header.Get(sessionHeader) == "" {
			w.Header().Set(sessionHeader, "sess-1")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"result":{}}`))
	})
	f.h = BindSessions(newSessionOwners(SessionLimits{Idle: time.Hour}, nil, nil), f.audit, f.metrics, func() time.Time { return bindNow })(sdk)
	return f
}

// do sends a request as p on session (none when ""), and returns the
// answer and the request's scope.
func (f *sessionFixture) do(p identity.Principal, session, method string) (*httptest.ResponseRecorder, *request.Scope) {
	sc := &request.Scope{Principal: p, ID: request.NewID(), RemoteAddr: "203.0.113.7:41234"}
	req := httptest.NewRequest(method, "/mcp", nil)
	if session != "" {
		req.Header.Set(sessionHeader, session)
	}
	req = req.WithContext(request.NewContext(req.Context(), sc))
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec, sc
}

func (f *sessionFixture) servedCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.served
}

var (
	alice = identity.Principal{User: "alice", JenkinsUser: "jenkins-alice"}
	bob   = identity.Principal{User: "bob", ClientID: "cli"}
	guest = identity.Guest()
)

func TestBindSessions_ServesASessionOnlyToTheUserWhoCreatedIt(t *testing.T) {
	t.Parallel()
	type step struct {
		who     identity.Principal
		wantOK  bool
		comment string
	}
	tests := []struct {
		name    string
		creator identity.Principal
		steps   []step
	}{
		{
			name:    "created by alice",
			creator: alice,
			steps: []step{
				{who: bob, wantOK: false, comment: "another user"},
				{who: alice, wantOK: true, comment: "the owner, after a refusal"},
				{who: guest, wantOK: false, comment: "a guest on a user's session"},
				{who: alice, wantOK: true, comment: "the owner again"},
			},
		},
		{
			name:    "created by a guest",
			creator: guest,
			steps: []step{
				{who: guest, wantOK: true, comment: "the guest again"},
				{who: alice, wantOK: true, comment: "the first user takes it over"},
				{who: bob, wantOK: false, comment: "another user"},
				{who: guest, wantOK: false, comment: "a guest, once a user owns it"},
				{who: alice, wantOK: true, comment: "the new owner"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newSessionFixture()
			rec, _ := f.do(tt.creator, "", http.MethodPost)
			if rec.Code != http.StatusOK || rec.Header().Get(sessionHeader) != "sess-1" {
				t.Fatalf("creating the session: status %d, session %q", rec.Code, rec.Header().Get(sessionHeader))
			}
			var wantRecs []audit.Record
			for i, s := range tt.steps {
				before := f.servedCount()
				rec, sc := f.do(s.who, "sess-1", http.MethodPost)
				served := f.servedCount() > before
				if s.wantOK {
					if rec.Code != http.StatusOK || !served {
						t.Errorf("step %d (%s): status %d, served %v; want served", i, s.comment, rec.Code, served)
					}
					continue
				}
				if rec.Code != http.StatusForbidden || served {
					t.Errorf("step %d (%s): status %d, served %v; want 403 before the SDK", i, s.comment, rec.Code, served)
				}
				var body map[string]string
				if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != "forbidden" {
					t.Errorf("step %d (%s): body %q, want JSON error forbidden", i, s.comment, rec.Body.String())
				}
				user := s.who.User
				if s.who.Guest {
					user = "anonymous"
				}
				wantRecs = append(wantRecs, audit.Record{
					Time: bindNow, RequestID: sc.ID, RemoteAddr: sc.RemoteAddr,
					User: user, JenkinsUser: s.who.JenkinsUser, ClientID: s.who.ClientID,
					Decision: audit.Deny, Code: authz.CodeForbidden, Reason: "the MCP session belongs to another user",
				})
			}
			if diff := cmp.Diff(wantRecs, f.audit.all()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if got := counterValue(t, f.metrics, "butler_auth_failures_total", "session_user_mismatch"); got != float64(len(wantRecs)) {
				t.Errorf("butler_auth_failures_total{reason=session_user_mismatch} = %v, want %d", got, len(wantRecs))
			}
		})
	}
}

func TestBindSessions_RefusesBobOnAlicesSessionWithOneAuditRecord(t *testing.T) {
	t.Parallel()
	f := newSessionFixture()
	if rec, _ := f.do(alice, "", http.MethodPost); rec.Header().Get(sessionHeader) != "sess-1" {
		t.Fatal("no session created")
	}
	rec, sc := f.do(bob, "sess-1", http.MethodPost)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("bob: status %d, want 403", rec.Code)
	}
	want := []audit.Record{{
		Time: bindNow, RequestID: sc.ID, RemoteAddr: sc.RemoteAddr, User: "bob", ClientID: "cli",
		Decision: audit.Deny, Code: authz.CodeForbidden, Reason: "the MCP session belongs to another user",
	}}
	if diff := cmp.Diff(want, f.audit.all()); diff != "" {
		t.Errorf("audit records (-want +got):\n%s", diff)
	}
	if rec, _ := f.do(alice, "sess-1", http.MethodPost); rec.Code != http.StatusOK {
		t.Errorf("alice: status %d, want 200", rec.Code)
	}
	if n := len(f.audit.all()); n != 1 {
		t.Errorf("%d audit records after alice's request, want still 1", n)
	}
}

func TestBindSessions_LeavesUnknownSessionsToTheSDK(t *testing.T) {
	t.Parallel()
	f := newSessionFixture()
	rec, _ := f.do(bob, "never-created", http.MethodPost)
	if rec.Code != http.StatusOK || f.servedCount() != 1 {
		t.Errorf("status %d, served %d; want the request passed to the SDK", rec.Code, f.servedCount())
	}
	if recs := f.audit.all(); len(recs) != 0 {
		t.Errorf("audit records: %+v", recs)
	}
}

func TestBindSessions_DeleteByTheOwnerForgetsTheSession(t *testing.T) {
	t.Parallel()
	f := newSessionFixture()
	f.do(alice, "", http.MethodPost)
	if rec, _ := f.do(bob, "sess-1", http.MethodDelete); rec.Code != http.StatusForbidden {
		t.Fatalf("bob's DELETE: status %d, want 403", rec.Code)
	}
	if rec, _ := f.do(alice, "sess-1", http.MethodDelete); rec.Code != http.StatusOK {
		t.Fatalf("alice's DELETE: status %d, want 200", rec.Code)
	}
	// The binding is gone; the SDK answers for the ended session.
	before := f.servedCount()
	if rec, _ := f.do(bob, "sess-1", http.MethodPost); rec.Code != http.StatusOK || f.servedCount() != before+1 {
		t.Errorf("after DELETE: status %d; want the request left to the SDK", rec.Code)
	}
}

// counterValue returns the value of the counter family name's series
// whose only label has value label.
func counterValue(t *testing.T, m *metrics.Metrics, name, label string) float64 {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			if ls := s.GetLabel(); len(ls) == 1 && ls[0].GetValue() == label {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}
