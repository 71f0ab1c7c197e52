package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/server"
)

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

// debugLogger returns a JSON logger at debug level writing to the returned
// buffer.
func debugLogger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

// counter returns the value of the counter family name whose labels are
// exactly labels, or 0 when there is no such series.
func counter(t *testing.T, m *metrics.Metrics, name string, labels map[string]string) float64 {
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
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if cmp.Equal(got, labels) {
				return s.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// counterSeries returns every series of the counter family name, as label
// maps, for diffs.
func counterSeries(t *testing.T, m *metrics.Metrics, name string) []map[string]string {
	t.Helper()
	families, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []map[string]string
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, s := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range s.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			out = append(out, got)
		}
	}
	return out
}

// jsonBody decodes a JSON error body.
func jsonBody(t *testing.T, rec *httptest.ResponseRecorder) map[string]string {
	t.Helper()
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q is not a JSON object of strings: %v", rec.Body.String(), err)
	}
	return body
}

// nextSpy is a next handler that records whether it was called.
type nextSpy struct {
	called bool
	r      *http.Request
}

func (n *nextSpy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.called = true
	n.r = r
	w.WriteHeader(http.StatusNoContent)
}

func TestWithScope_GivesEveryRequestAFreshIDAndTheRemoteAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		remoteAddr string
		clientID   string // X-Request-Id sent by the client, "" for none
	}{
		{name: "no client id", remoteAddr: "203.0.113.7:41234"},
		{name: "client id ignored", remoteAddr: "198.51.100.2:5000", clientID: "aaaaaaaaaaaaaaaa"},
		{name: "client id with injection ignored", remoteAddr: "[2001:db8::1]:443", clientID: "evil\nid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var seen []*request.Scope
			h := server.WithScope(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				sc, ok := request.FromContext(r.Context())
				if !ok {
					t.Fatal("no scope in the context")
				}
				seen = append(seen, sc)
			}))
			var headerIDs []string
			for range 2 {
				req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
				req.RemoteAddr = tt.remoteAddr
				if tt.clientID != "" {
					req.Header.Set("X-Request-Id", tt.clientID)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				headerIDs = append(headerIDs, rec.Header().Get("X-Request-Id"))
			}
			if len(seen) != 2 {
				t.Fatalf("next called %d times, want 2", len(seen))
			}
			for i, sc := range seen {
				if !hexID.MatchString(sc.ID) {
					t.Errorf("request %d: scope id %q is not 16 hex characters", i, sc.ID)
				}
				if sc.ID != headerIDs[i] {
					t.Errorf("request %d: X-Request-Id %q, scope id %q: want the same", i, headerIDs[i], sc.ID)
				}
				if tt.clientID != "" && sc.ID == tt.clientID {
					t.Errorf("request %d: the client's X-Request-Id was used", i)
				}
				want := request.Scope{ID: sc.ID, RemoteAddr: tt.remoteAddr}
				if diff := cmp.Diff(want, *sc); diff != "" {
					t.Errorf("request %d: scope (-want +got):\n%s", i, diff)
				}
			}
			if seen[0].ID == seen[1].ID {
				t.Errorf("two requests got the same id %q", seen[0].ID)
			}
		})
	}
}

func TestLogRequests_CountsByRouteWithUnknownPathsAsOther(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path  string
		route string
	}{
		{"/mcp", "/mcp"},
		{"/healthz", "/healthz"},
		{"/readyz", "/readyz"},
		{"/metrics", "/metrics"},
		{"/.well-known/oauth-protected-resource/mcp", "/.well-known"},
		{"/.well-known/oauth-protected-resource", "/.well-known"},
		{"/mcp/", "other"},
		{"/admin/../../etc/passwd", "other"},
		{"/random-" + strings.Repeat("x", 40), "other"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			t.Parallel()
			m := metrics.New()
			logger, _ := debugLogger()
			h := server.LogRequests(m, logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusTeapot)
			}))
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.URL.Path = tt.path
			h.ServeHTTP(httptest.NewRecorder(), req)
			want := []map[string]string{{"route": tt.route, "status": "418"}}
			if diff := cmp.Diff(want, counterSeries(t, m, "butler_http_requests_total")); diff != "" {
				t.Errorf("butler_http_requests_total series (-want +got):\n%s", diff)
			}
			if got := counter(t, m, "butler_http_requests_total", want[0]); got != 1 {
				t.Errorf("count = %v, want 1", got)
			}
		})
	}
}

func TestLogRequests_CountsAnImplicit200(t *testing.T) {
	t.Parallel()
	m := metrics.New()
	h := server.LogRequests(m, slog.New(slog.DiscardHandler))(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/healthz", nil))
	}
	// The /metrics text shows the same series.
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if want := `butler_http_requests_total{route="/healthz",status="200"} 3`; !strings.Contains(rec.Body.String(), want) {
		t.Errorf("/metrics lacks %q", want)
	}
}

func TestLogRequests_NeverLogsTheAuthorizationHeader(t *testing.T) {
	t.Parallel()
	const token = "eyJhbGciOiJSUzI1NiJ9.c3VwZXItc2VjcmV0.sig-XYZZY"
	tests := []struct {
		name   string
		status int
	}{
		{"served", http.StatusOK},
		{"refused", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, buf := debugLogger()
			h := server.WithScope(server.LogRequests(metrics.New(), logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.status)
			})))
			req := httptest.NewRequest(http.MethodPost, "/mcp?access_token="+token, strings.NewReader(`{}`))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Cookie", "session="+token)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			logged := buf.String()
			if logged == "" {
				t.Fatal("nothing logged at debug level")
			}
			for _, secret := range []string{token, "c3VwZXItc2VjcmV0", "XYZZY"} {
				if strings.Contains(logged, secret) {
					t.Errorf("log holds %q:\n%s", secret, logged)
				}
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("want one JSON line, got %q: %v", logged, err)
			}
			want := map[string]any{
				"msg": "http request", "method": "POST", "path": "/mcp",
				"status": float64(tt.status), "request_id": rec.Header().Get("X-Request-Id"),
			}
			got := map[string]any{}
			for k := range want {
				got[k] = line[k]
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("log line (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCheckOrigin_PassesRequestsWithoutOriginOrFromAllowedOrigins(t *testing.T) {
	t.Parallel()
	allow := func(origin string) bool { return origin == "https://app.example" }
	tests := []struct {
		name   string
		allow  func(string) bool
		origin []string // nil: no Origin header
	}{
		{name: "no origin", allow: allow},
		{name: "no origin and no allow function", allow: nil},
		{name: "allowed origin", allow: allow, origin: []string{"https://app.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := &nextSpy{}
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for _, o := range tt.origin {
				req.Header.Add("Origin", o)
			}
			rec := httptest.NewRecorder()
			server.CheckOrigin(tt.allow)(next).ServeHTTP(rec, req)
			if !next.called {
				t.Fatalf("next not called; status %d body %q", rec.Code, rec.Body.String())
			}
			if rec.Code != http.StatusNoContent {
				t.Errorf("status %d, want the next handler's 204", rec.Code)
			}
		})
	}
}

func TestCheckOrigin_RefusesOtherOriginsBeforeTheNextHandler(t *testing.T) {
	t.Parallel()
	allowApp := func(origin string) bool { return origin == "https://app.example" }
	tests := []struct {
		name   string
		allow  func(string) bool
		origin []string
	}{
		{name: "other origin", allow: allowApp, origin: []string{"https://evil.example"}},
		{name: "same host other scheme", allow: allowApp, origin: []string{"http://app.example"}},
		{name: "null origin", allow: allowApp, origin: []string{"null"}},
		{name: "empty origin", allow: allowApp, origin: []string{""}},
		{name: "allowed origin smuggled in a second header", allow: allowApp, origin: []string{"https://evil.example", "https://app.example"}},
		{name: "any origin when allow is nil", allow: nil, origin: []string{"https://app.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := &nextSpy{}
			req := httptest.NewRequest(http.MethodPost, "/mcp", nil)
			for _, o := range tt.origin {
				req.Header.Add("Origin", o)
			}
			rec := httptest.NewRecorder()
			server.CheckOrigin(tt.allow)(next).ServeHTTP(rec, req)
			if next.called {
				t.Error("next handler called for a refused origin")
			}
			if rec.Code != http.StatusForbidden {
				t.Errorf("status %d, want 403", rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			body := jsonBody(t, rec)
			if body["error"] != "forbidden_origin" || body["error_description"] == "" {
				t.Errorf("body %v, want error forbidden_origin with a description", body)
			}
		})
	}
}

func TestLimitBody_RefusesADeclaredOversizedBodyWithoutCallingNext(t *testing.T) {
	t.Parallel()
	const max = 16
	tests := []struct {
		name       string
		size       int
		wantStatus int
		wantNext   bool
	}{
		{name: "under", size: max - 1, wantStatus: http.StatusNoContent, wantNext: true},
		{name: "exactly max", size: max, wantStatus: http.StatusNoContent, wantNext: true},
		{name: "one over", size: max + 1, wantStatus: http.StatusRequestEntityTooLarge},
		{name: "far over", size: 10 * max, wantStatus: http.StatusRequestEntityTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			next := &nextSpy{}
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(strings.Repeat("a", tt.size)))
			if req.ContentLength != int64(tt.size) {
				t.Fatalf("ContentLength %d, want %d", req.ContentLength, tt.size)
			}
			rec := httptest.NewRecorder()
			server.LimitBody(max)(next).ServeHTTP(rec, req)
			if next.called != tt.wantNext {
				t.Errorf("next called = %v, want %v", next.called, tt.wantNext)
			}
			if rec.Code != tt.wantStatus {
				t.Errorf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusRequestEntityTooLarge {
				if body := jsonBody(t, rec); body["error"] != "request_too_large" {
					t.Errorf("body %v, want error request_too_large", body)
				}
			}
		})
	}
}

func TestLimitBody_StopsReadingAnUndeclaredOversizedBody(t *testing.T) {
	t.Parallel()
	const max = 16
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{name: "chunked under max", size: max},
		{name: "chunked over max", size: max + 1, wantErr: true},
		{name: "chunked far over max", size: 1 << 20, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var readErr error
			var read int
			called := false
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				b, err := io.ReadAll(r.Body)
				read, readErr = len(b), err
			})
			// io.MultiReader hides the length: the request is sent chunked.
			body := io.MultiReader(strings.NewReader(strings.Repeat("a", tt.size)))
			req := httptest.NewRequest(http.MethodPost, "/mcp", body)
			req.ContentLength = -1
			req.TransferEncoding = []string{"chunked"}
			server.LimitBody(max)(next).ServeHTTP(httptest.NewRecorder(), req)
			if !called {
				t.Fatal("next not called for a body of unknown length")
			}
			if !tt.wantErr {
				if readErr != nil || read != tt.size {
					t.Errorf("read %d bytes, err %v; want %d bytes, no error", read, readErr, tt.size)
				}
				return
			}
			var tooBig *http.MaxBytesError
			if !errors.As(readErr, &tooBig) {
				t.Fatalf("read error %v (%T), want *http.MaxBytesError", readErr, readErr)
			}
			if tooBig.Limit != max {
				t.Errorf("MaxBytesError.Limit %d, want %d", tooBig.Limit, max)
			}
			if read > max {
				t.Errorf("next read %d bytes, more than max %d", read, max)
			}
		})
	}
}

func TestReadiness_AnswersReadyWhenEveryCheckPasses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		checks []server.ReadyCheck
	}{
		{name: "no checks"},
		{name: "all ok", checks: []server.ReadyCheck{
			{Name: "idp", Check: func(context.Context) error { return nil }},
			{Name: "store", Check: func(context.Context) error { return nil }},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logger, buf := debugLogger()
			rec := httptest.NewRecorder()
			server.Readiness(tt.checks, logger).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != http.StatusOK {
				t.Errorf("status %d, want 200", rec.Code)
			}
			if diff := cmp.Diff("ready\n", rec.Body.String()); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			if got := rec.Header().Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
			if buf.Len() != 0 {
				t.Errorf("logged while ready: %s", buf.String())
			}
		})
	}
}

func TestReadiness_NamesOnlyTheFailingCheckAndLogsItsError(t *testing.T) {
	t.Parallel()
	secretErr := errors.New("dial tcp 10.1.2.3:5432 secret-url: connection refused")
	ok := func(context.Context) error { return nil }
	tests := []struct {
		name     string
		checks   []server.ReadyCheck
		wantBody string
		wantRun  []string
	}{
		{
			name: "store fails",
			checks: []server.ReadyCheck{
				{Name: "idp", Check: ok},
				{Name: "store", Check: func(context.Context) error { return secretErr }},
			},
			wantBody: "not ready: store\n",
			wantRun:  []string{"idp", "store"},
		},
		{
			name: "first failure wins and later checks are not run",
			checks: []server.ReadyCheck{
				{Name: "store", Check: func(context.Context) error { return secretErr }},
				{Name: "idp", Check: func(context.Context) error { return errors.New("idp down") }},
			},
			wantBody: "not ready: store\n",
			wantRun:  []string{"store"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var ran []string
			checks := make([]server.ReadyCheck, len(tt.checks))
			for i, c := range tt.checks {
				checks[i] = server.ReadyCheck{Name: c.Name, Check: func(ctx context.Context) error {
					ran = append(ran, c.Name)
					if _, has := ctx.Deadline(); !has {
						t.Errorf("check %s got a context without deadline", c.Name)
					}
					return c.Check(ctx)
				}}
			}
			logger, buf := debugLogger()
			rec := httptest.NewRecorder()
			server.Readiness(checks, logger).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
			if rec.Code != http.StatusServiceUnavailable {
				t.Errorf("status %d, want 503", rec.Code)
			}
			if diff := cmp.Diff(tt.wantBody, rec.Body.String()); diff != "" {
				t.Errorf("body (-want +got):\n%s", diff)
			}
			for _, leak := range []string{"10.1.2.3", "5432", "secret-url", "dial tcp"} {
				if strings.Contains(rec.Body.String(), leak) {
					t.Errorf("body leaks %q: %q", leak, rec.Body.String())
				}
			}
			if diff := cmp.Diff(tt.wantRun, ran); diff != "" {
				t.Errorf("checks run (-want +got):\n%s", diff)
			}
			if !strings.Contains(buf.String(), secretErr.Error()) {
				t.Errorf("log lacks the check's error %q:\n%s", secretErr, buf.String())
			}
			if !strings.Contains(buf.String(), `"dependency":"store"`) {
				t.Errorf("log does not name the dependency:\n%s", buf.String())
			}
		})
	}
}
