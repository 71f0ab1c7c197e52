package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/server"
)

// sdkSpy stands in for the SDK's streamable handler: it keeps what the
// SDK would see.
type sdkSpy struct {
	called        int
	tokenInfo     *auth.TokenInfo
	authorization []string
	ctx           context.Context
}

func (s *sdkSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.called++
	s.tokenInfo = auth.TokenInfoFromContext(r.Context())
	s.authorization = r.Header.Values("Authorization")
	s.ctx = r.Context()
	w.WriteHeader(http.StatusAccepted)
}

// withScope attaches sc to every request, as Authenticate does.
func withScope(sc *request.Scope, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(request.NewContext(r.Context(), sc)))
	})
}

func TestServeMCP_HandsTheScopeToTheSDKAsTokenInfo(t *testing.T) {
	t.Parallel()
	const clientToken = "eyJ.client-secret-token.sig"
	expiry := time.Now().Add(10 * time.Minute).Truncate(time.Second)
	tests := []struct {
		name      string
		scope     request.Scope
		wantUser  string
		wantScope []string
	}{
		{
			name: "user",
			scope: request.Scope{ID: "00112233445566ff", RemoteAddr: testRemoteAddr, Expiry: expiry,
				Principal: identity.Principal{User: "alice", Scopes: []string{"jenkins:read"}, AccessToken: secret.String(clientToken)}},
			wantUser: "alice", wantScope: []string{"jenkins:read"},
		},
		{
			name:     "guest",
			scope:    request.Scope{ID: "aabbccddeeff0011", RemoteAddr: testRemoteAddr, Principal: identity.Guest()},
			wantUser: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := tt.scope
			spy := &sdkSpy{}
			h := withScope(&sc, server.ServeMCP(spy, 0))
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initialize))
			req.Header.Set("Authorization", "Bearer "+clientToken)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusAccepted || spy.called != 1 {
				t.Fatalf("status %d, SDK called %d times; want the SDK's 202; body %q", rec.Code, spy.called, rec.Body.String())
			}
			ti := spy.tokenInfo
			if ti == nil {
				t.Fatal("the SDK saw no TokenInfo")
			}
			if ti.UserID != tt.wantUser {
				t.Errorf("TokenInfo.UserID %q, want %q", ti.UserID, tt.wantUser)
			}
			if diff := cmp.Diff(tt.wantScope, ti.Scopes); diff != "" {
				t.Errorf("TokenInfo.Scopes (-want +got):\n%s", diff)
			}
			if sc.Expiry.IsZero() {
				if !ti.Expiration.After(time.Now()) {
					t.Errorf("guest TokenInfo.Expiration %v is not in the future", ti.Expiration)
				}
			} else if !ti.Expiration.Equal(expiry) {
				t.Errorf("TokenInfo.Expiration %v, want the scope's %v", ti.Expiration, expiry)
			}
			extra := &mcp.RequestExtra{TokenInfo: ti}
			got, ok := request.FromExtra(extra)
			if !ok || got != &sc {
				t.Errorf("FromExtra = %p, %v; want the chain's scope %p", got, ok, &sc)
			}
			if got := server.ScopeOf(context.Background(), extra); got != &sc {
				t.Errorf("ScopeOf = %p, want the chain's scope %p", got, &sc)
			}
			if inCtx, _ := request.FromContext(spy.ctx); inCtx != &sc {
				t.Errorf("the SDK's request context carries scope %p, want %p", inCtx, &sc)
			}
		})
	}
}

func TestServeMCP_NeverPassesTheCallersTokenToTheSDK(t *testing.T) {
	t.Parallel()
	const clientToken = "eyJ.client-secret-token.sig"
	tests := []struct {
		name   string
		header []string
	}{
		{"bearer token", []string{"Bearer " + clientToken}},
		{"no header", nil},
		{"two headers", []string{"Bearer " + clientToken, "Basic " + clientToken}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := &request.Scope{ID: "0011223344556677", Expiry: time.Now().Add(time.Hour),
				Principal: identity.Principal{User: "alice", AccessToken: secret.String(clientToken)}}
			spy := &sdkSpy{}
			h := withScope(sc, server.ServeMCP(spy, 0))
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initialize))
			for _, v := range tt.header {
				req.Header.Add("Authorization", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			if spy.called != 1 {
				t.Fatalf("SDK called %d times, want 1", spy.called)
			}
			if len(spy.authorization) != 1 {
				t.Fatalf("the SDK saw Authorization %q, want one placeholder header", spy.authorization)
			}
			if got := spy.authorization[0]; strings.Contains(got, clientToken) || !strings.HasPrefix(got, "Bearer ") {
				t.Errorf("the SDK saw Authorization %q: want a bearer placeholder, not the caller's token", got)
			}
			// The caller's request is left as it was.
			if diff := cmp.Diff(tt.header, req.Header.Values("Authorization")); diff != "" {
				t.Errorf("the caller's request was changed (-want +got):\n%s", diff)
			}
		})
	}
}

func TestServeMCP_RefusesARequestWithoutScopeOrWithAnExpiredOne(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		scope     *request.Scope // nil: none attached
		clockSkew time.Duration
		wantSDK   bool
	}{
		{name: "no scope", scope: nil},
		{name: "expired", scope: &request.Scope{ID: "1", Principal: identity.Principal{User: "alice"}, Expiry: time.Now().Add(-time.Minute)}},
		{name: "expired within the clock skew", clockSkew: 5 * time.Minute, wantSDK: true,
			scope: &request.Scope{ID: "2", Principal: identity.Principal{User: "alice"}, Expiry: time.Now().Add(-time.Minute)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spy := &sdkSpy{}
			var h http.Handler = server.ServeMCP(spy, tt.clockSkew)
			if tt.scope != nil {
				h = withScope(tt.scope, h)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(initialize)))
			if got := spy.called == 1; got != tt.wantSDK {
				t.Fatalf("SDK called = %v, want %v (status %d)", got, tt.wantSDK, rec.Code)
			}
			if !tt.wantSDK && rec.Code != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", rec.Code)
			}
		})
	}
}

func TestScopeOf_IsNilForARequestWithoutScope(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		extra *mcp.RequestExtra
	}{
		{"nil extra", nil},
		{"no token info", &mcp.RequestExtra{}},
		{"token info from elsewhere", &mcp.RequestExtra{TokenInfo: &auth.TokenInfo{UserID: "mallory", Extra: map[string]any{"butler.scope": "forged"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := server.ScopeOf(context.Background(), tt.extra); got != nil {
				t.Errorf("ScopeOf = %+v, want nil", got)
			}
		})
	}
}
