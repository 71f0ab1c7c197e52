package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/server"
)

const (
	testMetadataURL = "https://butler.example/.well-known/oauth-protected-resource/mcp"
	testRemoteAddr  = "203.0.113.7:41234"

	// Tokens the fake verifier knows.
	aliceToken   = "alice-token"   // alice, scope jenkins:read
	builderToken = "builder-token" // bob, scopes jenkins:read jenkins:build
	carolToken   = "carol-token"   // carol, whose Jenkins user cannot be mapped
	expiredToken = "expired-token" // *authn.Error exp
	idpDownToken = "idp-down-token"
)

var (
	testScopesSupported = []string{"jenkins:read", "jenkins:build"}
	tokenExpiry         = time.Date(2031, 1, 2, 3, 4, 5, 0, time.UTC)
	auditNow            = time.Date(2030, 6, 7, 8, 9, 10, 0, time.FixedZone("CEST", 2*3600))
	wantNoToken         = `Bearer resource_metadata="` + testMetadataURL + `", scope="jenkins:read jenkins:build"`
)

// fakeVerifier stands in for the IdP.
type fakeVerifier struct{}

func (fakeVerifier) Verify(_ context.Context, token string) (*authn.Identity, error) {
	switch token {
	case aliceToken:
		return &authn.Identity{User: "alice", Groups: []string{"dev"}, Scopes: []string{"jenkins:read"}, ClientID: "claude-code", Expiry: tokenExpiry}, nil
	case builderToken:
		return &authn.Identity{User: "bob", Scopes: []string{"jenkins:read", "jenkins:build"}, ClientID: "cli", Expiry: tokenExpiry}, nil
	case carolToken:
		return &authn.Identity{User: "carol", Scopes: []string{"jenkins:read"}, Expiry: tokenExpiry}, nil
	case expiredToken:
		return nil, &authn.Error{Reason: "exp", Description: "the token has expired", Err: authn.ErrInvalidToken}
	case idpDownToken:
		return nil, fmt.Errorf("fetch jwks: %w", authn.ErrUnavailable)
	}
	return nil, &authn.Error{Reason: "signature", Description: "the signature does not verify", Err: authn.ErrInvalidToken}
}

func (fakeVerifier) Ready(context.Context) error { return nil }

// auditLog keeps the records it is given.
type auditLog struct {
	mu   sync.Mutex
	recs []audit.Record
}

func (l *auditLog) Record(_ context.Context, r audit.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r)
}

func (l *auditLog) all() []audit.Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]audit.Record(nil), l.recs...)
}

// scopeSpy is the next handler: it keeps the scope it was called with and
// the body it could read.
type scopeSpy struct {
	mu     sync.Mutex
	called int
	scope  *request.Scope
	body   string
}

func (s *scopeSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	sc, _ := request.FromContext(r.Context())
	s.mu.Lock()
	s.called++
	s.scope, s.body = sc, string(b)
	s.mu.Unlock()
	w.WriteHeader(http.StatusOK)
}

// authFixture is Authenticate alone, behind WithScope.
type authFixture struct {
	h       http.Handler
	audit   *auditLog
	metrics *metrics.Metrics
	next    *scopeSpy
	outer   *request.Scope // the scope WithScope made for the latest request
	mu      sync.Mutex
}

func newAuthFixture(t *testing.T, allowGuest bool) *authFixture {
	t.Helper()
	az, err := authz.NewWithPolicy(&authz.Options{
		ToolScopes: func(tool string) []string {
			if tool == "trigger_job" {
				return []string{"jenkins:build"}
			}
			return nil
		},
		AllowGuest: allowGuest,
	})
	if err != nil {
		t.Fatalf("authz: %v", err)
	}
	f := &authFixture{audit: &auditLog{}, metrics: metrics.New(), next: &scopeSpy{}}
	auth := server.Authenticate(server.AuthOptions{
		Verifier:   fakeVerifier{},
		Authorizer: az,
		JenkinsUser: func(user string) (string, error) {
			if user == "carol" {
				return "", errors.New("user template: no match")
			}
			return "jenkins-" + user, nil
		},
		MetadataURL:     testMetadataURL,
		ScopesSupported: testScopesSupported,
		Audit:           f.audit,
		Metrics:         f.metrics,
		Now:             func() time.Time { return auditNow },
	})
	capture := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc, _ := request.FromContext(r.Context())
			f.mu.Lock()
			f.outer = sc
			f.mu.Unlock()
			next.ServeHTTP(w, r)
		})
	}
	f.h = server.WithScope(capture(auth(f.next)))
	return f
}

// post sends body to /mcp with the given Authorization header values.
func (f *authFixture) post(body string, authorization ...string) *httptest.ResponseRecorder {
	method := http.MethodPost
	var rd io.Reader = strings.NewReader(body)
	if body == "" {
		method, rd = http.MethodGet, nil
	}
	req := httptest.NewRequest(method, "/mcp", rd)
	req.RemoteAddr = testRemoteAddr
	req.Header.Set("Content-Type", "application/json")
	for _, a := range authorization {
		req.Header.Add("Authorization", a)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func bearer(token string) string { return "Bearer " + token }

// rpc is one JSON-RPC request; tool and job are used for tools/call.
func rpc(id int, method, tool, job string) string {
	if method != "tools/call" {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{}}`, id, method)
	}
	args := "{}"
	if job != "" {
		args = fmt.Sprintf(`{"job":%q}`, job)
	}
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, id, tool, args)
}

func batch(msgs ...string) string { return "[" + strings.Join(msgs, ",") + "]" }

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`

// record is the audit record of a refusal of the request rec answers.
func (f *authFixture) record(rec *httptest.ResponseRecorder, p identity.Principal, tool, resource, decision, code, reason string) audit.Record {
	r := audit.Record{
		Time: auditNow.UTC(), RequestID: rec.Header().Get("X-Request-Id"), RemoteAddr: testRemoteAddr,
		User: p.User, JenkinsUser: p.JenkinsUser, ClientID: p.ClientID,
		Tool: tool, Resource: resource, Decision: decision, Code: code, Reason: reason,
	}
	return r
}

func TestAuthenticate_ChallengesARequestWithoutToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{"initialize", initialize},
		{"tools/list", rpc(2, "tools/list", "", "")},
		{"GET event stream", ""},
		{"not JSON-RPC", "hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, false)
			rec := f.post(tt.body)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if f.next.called != 0 {
				t.Error("next handler called without a token")
			}
			if diff := cmp.Diff(wantNoToken, rec.Header().Get("WWW-Authenticate")); diff != "" {
				t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
			}
			want := map[string]string{"error": "unauthorized", "error_description": "no bearer token"}
			if diff := cmp.Diff(want, jsonBody(t, rec)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			wantRecs := []audit.Record{f.record(rec, identity.Principal{}, "", "", audit.Deny, authz.CodeUnauthenticated, "no bearer token")}
			if diff := cmp.Diff(wantRecs, f.audit.all()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if got := counter(t, f.metrics, "butler_auth_failures_total", map[string]string{"reason": "missing_token"}); got != 1 {
				t.Errorf("butler_auth_failures_total{reason=missing_token} = %v, want 1", got)
			}
		})
	}
}

// TestAuthenticate_ARefusedRequestWritesOneRecord pins that a request
// refused before MCP writes exactly one audit record whatever its body
// holds (a batch of thousands of calls included), naming its first
// tools/call: what a caller without a token sends cannot grow the audit log
// or the metrics faster than its requests.
func TestAuthenticate_ARefusedRequestWritesOneRecord(t *testing.T) {
	t.Parallel()
	type call struct{ Tool, Resource, Decision, Code string }
	tests := []struct {
		name string
		body string
		want []call
	}{
		{
			name: "three tools/call",
			body: batch(
				rpc(1, "tools/call", "trigger_job", "frontend/web-app"),
				rpc(2, "tools/call", "get_build", "a/b"),
				rpc(3, "tools/call", "rm_rf_everything", ""),
			),
			want: []call{
				{"trigger_job", "frontend/web-app", audit.Deny, authz.CodeUnauthenticated},
			},
		},
		{
			name: "other methods in the batch are not audited",
			body: batch(rpc(1, "tools/list", "", ""), rpc(2, "tools/call", "whoami", ""), rpc(3, "ping", "", "")),
			want: []call{{"whoami", "", audit.Deny, authz.CodeUnauthenticated}},
		},
		{
			name: "a job path that does not parse is not a resource",
			body: rpc(1, "tools/call", "get_job", "a/../prod"),
			want: []call{{"get_job", "", audit.Deny, authz.CodeUnauthenticated}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, false)
			rec := f.post(tt.body)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			var got []call
			for _, r := range f.audit.all() {
				got = append(got, call{r.Tool, r.Resource, r.Decision, r.Code})
				if r.RequestID != rec.Header().Get("X-Request-Id") || r.RemoteAddr != testRemoteAddr || r.User != "" {
					t.Errorf("record %+v: want request id %s, remote addr %s, no user", r, rec.Header().Get("X-Request-Id"), testRemoteAddr)
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			for _, c := range tt.want {
				labels := map[string]string{"tool": c.Tool, "outcome": audit.Deny, "code": authz.CodeUnauthenticated}
				if n := counter(t, f.metrics, "butler_tool_calls_total", labels); n != 1 {
					t.Errorf("butler_tool_calls_total%v = %v, want 1", labels, n)
				}
			}
		})
	}
}

func TestAuthenticate_RefusesATokenThatFailsVerificationWithInvalidToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name          string
		authorization []string
		desc          string
		reason        string
	}{
		{"expired", []string{bearer(expiredToken)}, "the token has expired", "exp"},
		{"bad signature", []string{bearer("forged-token")}, "the signature does not verify", "signature"},
		{"another scheme", []string{"Basic YWxpY2U6cHc="}, "the Authorization header does not use the Bearer scheme", "malformed"},
		{"no credential", []string{"Bearer"}, "the Authorization header has no bearer token", "malformed"},
		{"two headers", []string{bearer(aliceToken), bearer(aliceToken)}, "the request has several Authorization headers", "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, true) // a bad token is never downgraded to a guest
			rec := f.post(initialize, tt.authorization...)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", rec.Code)
			}
			if f.next.called != 0 {
				t.Error("next handler called with a bad token")
			}
			wantHeader := wantNoToken + `, error="invalid_token", error_description="` + tt.desc + `"`
			if diff := cmp.Diff(wantHeader, rec.Header().Get("WWW-Authenticate")); diff != "" {
				t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
			}
			want := map[string]string{"error": "invalid_token", "error_description": tt.desc}
			if diff := cmp.Diff(want, jsonBody(t, rec)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			wantRecs := []audit.Record{f.record(rec, identity.Principal{}, "", "", audit.Deny, authz.CodeUnauthenticated, tt.desc)}
			if diff := cmp.Diff(wantRecs, f.audit.all()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if got := counter(t, f.metrics, "butler_auth_failures_total", map[string]string{"reason": tt.reason}); got != 1 {
				t.Errorf("butler_auth_failures_total{reason=%s} = %v, want 1", tt.reason, got)
			}
		})
	}
}

func TestAuthenticate_AnswersAnUnreachableIdPWith503AndRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		body     string
		wantTool string
	}{
		{"initialize", initialize, ""},
		{"tools/call", rpc(1, "tools/call", "get_job", "frontend/web-app"), "get_job"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, false)
			rec := f.post(tt.body, bearer(idpDownToken))
			if rec.Code != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", rec.Code)
			}
			if f.next.called != 0 {
				t.Error("next handler called while the IdP is down")
			}
			if got := rec.Header().Get("Retry-After"); got != "5" {
				t.Errorf("Retry-After %q, want 5", got)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != "" {
				t.Errorf("WWW-Authenticate %q on a 503, want none (the client must keep its token)", got)
			}
			if got := jsonBody(t, rec)["error"]; got != "temporarily_unavailable" {
				t.Errorf("body error %q, want temporarily_unavailable", got)
			}
			recs := f.audit.all()
			if len(recs) != 1 {
				t.Fatalf("%d audit records, want 1: %+v", len(recs), recs)
			}
			type got struct{ Tool, Decision, Code, RequestID, RemoteAddr string }
			want := got{tt.wantTool, audit.Error, "unavailable", rec.Header().Get("X-Request-Id"), testRemoteAddr}
			if diff := cmp.Diff(want, got{recs[0].Tool, recs[0].Decision, recs[0].Code, recs[0].RequestID, recs[0].RemoteAddr}); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}
			if n := counter(t, f.metrics, "butler_auth_failures_total", map[string]string{"reason": "unavailable"}); n != 1 {
				t.Errorf("butler_auth_failures_total{reason=unavailable} = %v, want 1", n)
			}
		})
	}
}

func TestAuthenticate_PutsTheVerifiedPrincipalInTheRequestScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		token string
		want  identity.Principal
	}{
		{
			name: "alice", token: aliceToken,
			want: identity.Principal{User: "alice", JenkinsUser: "jenkins-alice", Groups: []string{"dev"}, Scopes: []string{"jenkins:read"},
				ClientID: "claude-code", AccessToken: secret.String(aliceToken)},
		},
		{
			name: "unmappable Jenkins user is served without one", token: carolToken,
			want: identity.Principal{User: "carol", Scopes: []string{"jenkins:read"}, AccessToken: secret.String(carolToken)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, false)
			body := rpc(1, "tools/call", "get_build", "frontend/web-app")
			rec := f.post(body, bearer(tt.token))
			if rec.Code != http.StatusOK || f.next.called != 1 {
				t.Fatalf("status %d, next called %d times; want 200 from next", rec.Code, f.next.called)
			}
			sc := f.next.scope
			if sc == nil {
				t.Fatal("next handler saw no scope")
			}
			want := request.Scope{Principal: tt.want, ID: rec.Header().Get("X-Request-Id"), RemoteAddr: testRemoteAddr, Expiry: tokenExpiry}
			if diff := cmp.Diff(want, *sc); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
			if !hexID.MatchString(sc.ID) || sc.ID != f.outer.ID {
				t.Errorf("scope id %q, outer scope id %q: want the same 16 hex id", sc.ID, f.outer.ID)
			}
			if diff := cmp.Diff(request.Scope{ID: f.outer.ID, RemoteAddr: testRemoteAddr}, *f.outer); diff != "" {
				t.Errorf("the outer scope was changed (-want +got):\n%s", diff)
			}
			if f.next.body != body {
				t.Errorf("next read body %q, want the client's %q", f.next.body, body)
			}
			if recs := f.audit.all(); len(recs) != 0 {
				t.Errorf("audit records for an authenticated request: %+v", recs)
			}
		})
	}
}

func TestAuthenticate_AsksForTheToolsScopeOnToolsCallOnly(t *testing.T) {
	t.Parallel()
	alice := identity.Principal{User: "alice", JenkinsUser: "jenkins-alice", ClientID: "claude-code"}
	tests := []struct {
		name       string
		token      string
		body       string
		wantStatus int
		wantRecs   func(f *authFixture, rec *httptest.ResponseRecorder) []audit.Record
	}{
		{
			name: "trigger_job without jenkins:build", token: aliceToken,
			body:       rpc(1, "tools/call", "trigger_job", "frontend/web-app"),
			wantStatus: http.StatusForbidden,
			wantRecs: func(f *authFixture, rec *httptest.ResponseRecorder) []audit.Record {
				return []audit.Record{f.record(rec, alice, "trigger_job", "frontend/web-app", audit.Deny, authz.CodeInsufficientScope,
					"the token lacks scope jenkins:build needed by trigger_job")}
			},
		},
		{name: "tools/list with the same token", token: aliceToken, body: rpc(1, "tools/list", "", ""), wantStatus: http.StatusOK},
		{name: "initialize with the same token", token: aliceToken, body: initialize, wantStatus: http.StatusOK},
		{name: "a tool needing no scope", token: aliceToken, body: rpc(1, "tools/call", "get_build", "a/b"), wantStatus: http.StatusOK},
		{name: "trigger_job with jenkins:build", token: builderToken, body: rpc(1, "tools/call", "trigger_job", "a/b"), wantStatus: http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, false)
			rec := f.post(tt.body, bearer(tt.token))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d; body %s", rec.Code, tt.wantStatus, rec.Body.String())
			}
			if tt.wantStatus == http.StatusOK {
				if f.next.called != 1 {
					t.Errorf("next called %d times, want 1", f.next.called)
				}
				if recs := f.audit.all(); len(recs) != 0 {
					t.Errorf("audit records for a passed request: %+v", recs)
				}
				return
			}
			if f.next.called != 0 {
				t.Error("next handler called for a call lacking its scope")
			}
			wantHeader := `Bearer resource_metadata="` + testMetadataURL + `", scope="jenkins:build", error="insufficient_scope", error_description="the trigger_job tool needs scope jenkins:build"`
			if diff := cmp.Diff(wantHeader, rec.Header().Get("WWW-Authenticate")); diff != "" {
				t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
			}
			want := map[string]string{"error": "insufficient_scope", "error_description": "the token lacks scope jenkins:build needed by trigger_job"}
			if diff := cmp.Diff(want, jsonBody(t, rec)); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRecs(f, rec), f.audit.all()); diff != "" {
				t.Errorf("audit records (-want +got):\n%s", diff)
			}
			if n := counter(t, f.metrics, "butler_auth_failures_total", map[string]string{"reason": "insufficient_scope"}); n != 1 {
				t.Errorf("butler_auth_failures_total{reason=insufficient_scope} = %v, want 1", n)
			}
		})
	}
}

// A batch refused for one call's scope refuses the whole request, with one
// audit record naming the call that lacks its scope.
func TestAuthenticate_ABatchRefusedForScopeWritesOneRecord(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t, false)
	rec := f.post(batch(rpc(1, "tools/call", "get_build", "a/b"), rpc(2, "tools/call", "trigger_job", "a/b")), bearer(aliceToken))
	if rec.Code != http.StatusForbidden {
		t.Fatalf("status %d, want 403", rec.Code)
	}
	var tools []string
	for _, r := range f.audit.all() {
		tools = append(tools, r.Tool)
	}
	if diff := cmp.Diff([]string{"trigger_job"}, tools); diff != "" {
		t.Errorf("audited tools (-want +got):\n%s", diff)
	}
}

func TestAuthenticate_LetsGuestsDoOnlyWhatTheAuthorizerAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		allowGuest bool
		body       string
		wantGuest  bool     // passed as a guest; else 401
		wantTools  []string // tools of the audit records of a refusal ("" for none)
	}{
		{name: "initialize", allowGuest: true, body: initialize, wantGuest: true},
		{name: "tools/list", allowGuest: true, body: rpc(1, "tools/list", "", ""), wantGuest: true},
		{name: "ping", allowGuest: true, body: rpc(1, "ping", "", ""), wantGuest: true},
		{name: "notification", allowGuest: true, body: `{"jsonrpc":"2.0","method":"notifications/initialized"}`, wantGuest: true},
		{name: "tools/call health", allowGuest: true, body: rpc(1, "tools/call", "health", ""), wantGuest: true},
		{name: "GET event stream", allowGuest: true, body: "", wantGuest: true},
		{name: "tools/call whoami", allowGuest: true, body: rpc(1, "tools/call", "whoami", ""), wantTools: []string{"whoami"}},
		{name: "tools/call unknown tool", allowGuest: true, body: rpc(1, "tools/call", "nope", ""), wantTools: []string{"unknown"}},
		{name: "batch hiding whoami behind tools/list", allowGuest: true,
			body: batch(rpc(1, "tools/list", "", ""), rpc(2, "tools/call", "health", ""), rpc(3, "tools/call", "whoami", "")), wantTools: []string{"whoami"}},
		{name: "other method", allowGuest: true, body: rpc(1, "resources/list", "", ""), wantTools: []string{""}},
		{name: "guests off: initialize", allowGuest: false, body: initialize, wantTools: []string{""}},
		{name: "guests off: tools/call health", allowGuest: false, body: rpc(1, "tools/call", "health", ""), wantTools: []string{"health"}},
		{name: "guests off: GET", allowGuest: false, body: "", wantTools: []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, tt.allowGuest)
			rec := f.post(tt.body)
			if !tt.wantGuest {
				if rec.Code != http.StatusUnauthorized || f.next.called != 0 {
					t.Fatalf("status %d, next called %d times; want 401 before next", rec.Code, f.next.called)
				}
				if diff := cmp.Diff(wantNoToken, rec.Header().Get("WWW-Authenticate")); diff != "" {
					t.Errorf("WWW-Authenticate (-want +got):\n%s", diff)
				}
				var tools []string
				for _, r := range f.audit.all() {
					tools = append(tools, r.Tool)
					if r.Decision != audit.Deny || r.Code != authz.CodeUnauthenticated || r.RequestID != rec.Header().Get("X-Request-Id") {
						t.Errorf("record %+v: want deny unauthenticated of this request", r)
					}
				}
				if diff := cmp.Diff(tt.wantTools, tools); diff != "" {
					t.Errorf("audited tools (-want +got):\n%s", diff)
				}
				return
			}
			if rec.Code != http.StatusOK || f.next.called != 1 {
				t.Fatalf("status %d, next called %d times; want the guest served; body %s", rec.Code, f.next.called, rec.Body.String())
			}
			want := request.Scope{Principal: identity.Guest(), ID: rec.Header().Get("X-Request-Id"), RemoteAddr: testRemoteAddr}
			if diff := cmp.Diff(want, *f.next.scope); diff != "" {
				t.Errorf("scope (-want +got):\n%s", diff)
			}
			if recs := f.audit.all(); len(recs) != 0 {
				t.Errorf("audit records for a served guest: %+v", recs)
			}
		})
	}
}

// The HTTP layer decides guest access and step-up on its own reading of
// the JSON-RPC body; the MCP SDK matches keys case-sensitively and takes
// params it cannot fit into Butler's shape, so both must read the same
// call.
func TestAuthenticate_ReadsTheToolCallTheSDKWillRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		allowGuest bool
		token      string
		body       string
		wantStatus int
	}{
		{name: "guest whoami hidden by a case variant key", allowGuest: true,
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","Name":"health"}}`,
			wantStatus: http.StatusUnauthorized},
		{name: "guest whoami hidden as ping", allowGuest: true,
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"whoami"}}`,
			wantStatus: http.StatusUnauthorized},
		{name: "guest whoami with array arguments", allowGuest: true,
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami","arguments":[]}}`,
			wantStatus: http.StatusUnauthorized},
		{name: "trigger_job without scope hidden by a case variant key", token: aliceToken,
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"trigger_job","NAME":"get_job","arguments":{"job":"a"}}}`,
			wantStatus: http.StatusForbidden},
		{name: "trigger_job without scope with string arguments", token: aliceToken,
			body:       `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"trigger_job","arguments":"x"}}`,
			wantStatus: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, tt.allowGuest)
			var auth []string
			if tt.token != "" {
				auth = []string{bearer(tt.token)}
			}
			rec := f.post(tt.body, auth...)
			if rec.Code != tt.wantStatus || f.next.called != 0 {
				t.Errorf("status %d, next called %d times; want %d before next", rec.Code, f.next.called, tt.wantStatus)
			}
		})
	}
}

func TestAuthenticate_AuditRecordTakesUserRequestIDAndRemoteAddrFromTheScope(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t, false)
	auth := server.Authenticate(server.AuthOptions{
		Verifier: fakeVerifier{}, Authorizer: authz.New(&authz.Options{ToolScopes: func(string) []string { return []string{"jenkins:build"} }}),
		JenkinsUser: func(u string) (string, error) { return "j-" + u, nil },
		MetadataURL: testMetadataURL, Audit: f.audit, Now: func() time.Time { return auditNow },
	})
	sc := &request.Scope{ID: "0123456789abcdef", RemoteAddr: "198.51.100.9:7"}
	tests := []struct {
		name  string
		token string
		want  audit.Record
	}{
		{"no token", "", audit.Record{User: ""}},
		{"insufficient scope", aliceToken, audit.Record{User: "alice", JenkinsUser: "j-alice", ClientID: "claude-code"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Not parallel: the subtests share the audit log.
			before := len(f.audit.all())
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(rpc(1, "tools/call", "get_job", "x")))
			req.RemoteAddr = "192.0.2.99:1" // the scope's address wins over the request's
			req.Header.Set("X-Request-Id", "ffffffffffffffff")
			if tt.token != "" {
				req.Header.Set("Authorization", bearer(tt.token))
			}
			req = req.WithContext(request.NewContext(req.Context(), sc))
			rec := httptest.NewRecorder()
			auth(&scopeSpy{}).ServeHTTP(rec, req)
			recs := f.audit.all()[before:]
			if len(recs) != 1 {
				t.Fatalf("%d audit records, want 1", len(recs))
			}
			type who struct{ User, JenkinsUser, ClientID, RequestID, RemoteAddr string }
			want := who{tt.want.User, tt.want.JenkinsUser, tt.want.ClientID, sc.ID, sc.RemoteAddr}
			got := who{recs[0].User, recs[0].JenkinsUser, recs[0].ClientID, recs[0].RequestID, recs[0].RemoteAddr}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("audit record (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAuthenticate_RefusesABodyOverTheLimitWith413(t *testing.T) {
	t.Parallel()
	f := newAuthFixture(t, true)
	h := server.LimitBody(64)(f.h)
	req := httptest.NewRequest(http.MethodPost, "/mcp", io.MultiReader(strings.NewReader(rpc(1, "tools/call", "health", "")+strings.Repeat(" ", 100))))
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge || f.next.called != 0 {
		t.Fatalf("status %d, next called %d times; want 413 before next", rec.Code, f.next.called)
	}
	if got := jsonBody(t, rec)["error"]; got != "request_too_large" {
		t.Errorf("body error %q, want request_too_large", got)
	}
}

// rpcAt is a JSON-RPC request of a sessionless revision (2026-07-28):
// the revision in params._meta.
func rpcAt(id int, method string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`, id, method)
}

// postAt is post with an MCP-Protocol-Version header (none when rev is "").
func (f *authFixture) postAt(rev, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
	req.RemoteAddr = testRemoteAddr
	req.Header.Set("Content-Type", "application/json")
	if rev != "" {
		req.Header.Set("Mcp-Protocol-Version", rev)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, req)
	return rec
}

func TestAuthenticate_GuestAllowListFollowsTheRevision(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		rev, body string
		wantGuest bool
	}{
		{name: "2026: server/discover", rev: "2026-07-28", body: rpcAt(1, "server/discover"), wantGuest: true},
		{name: "2026: tools/list", rev: "2026-07-28", body: rpcAt(1, "tools/list"), wantGuest: true},
		{name: "2026: ping is removed, the SDK answers 404", rev: "2026-07-28", body: rpcAt(1, "ping"), wantGuest: true},
		{name: "2026: logging/setLevel is removed, the SDK answers 404", rev: "2026-07-28", body: rpcAt(1, "logging/setLevel"), wantGuest: true},
		{name: "2026: subscriptions/listen holds a stream", rev: "2026-07-28", body: rpcAt(1, "subscriptions/listen")},
		{name: "2026: resources/list", rev: "2026-07-28", body: rpcAt(1, "resources/list")},
		{name: "2026: unknown method", rev: "2026-07-28", body: rpcAt(1, "unknown/method")},
		{name: "2026 named only in _meta: server/discover", body: rpcAt(1, "server/discover"), wantGuest: true},
		{name: "2025-11-25: server/discover is not a method", rev: "2025-11-25", body: rpc(1, "server/discover", "", "")},
		{name: "2025-11-25: ping", rev: "2025-11-25", body: rpc(1, "ping", "", ""), wantGuest: true},
		{name: "2025-11-25: logging/setLevel", rev: "2025-11-25", body: rpc(1, "logging/setLevel", "", ""), wantGuest: true},
		{name: "no header: initialize", body: initialize, wantGuest: true},
		{name: "no header: server/discover", body: rpc(1, "server/discover", "", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := newAuthFixture(t, true)
			rec := f.postAt(tt.rev, tt.body)
			if tt.wantGuest {
				if rec.Code != http.StatusOK || f.next.called != 1 {
					t.Fatalf("status %d, next called %d times; want the guest passed on; body %s", rec.Code, f.next.called, rec.Body.String())
				}
				return
			}
			if rec.Code != http.StatusUnauthorized || f.next.called != 0 {
				t.Fatalf("status %d, next called %d times; want 401 before next", rec.Code, f.next.called)
			}
		})
	}
}
