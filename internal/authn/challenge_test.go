package authn

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChallengeString(t *testing.T) {
	t.Parallel()
	const rm = "https://butler.example.com/.well-known/oauth-protected-resource/mcp"
	tests := []struct {
		name string
		c    Challenge
		want string
	}{
		{"no token", Challenge{ResourceMetadata: rm, Scopes: []string{"jenkins:read", "jenkins:build"}},
			`Bearer resource_metadata="` + rm + `", scope="jenkins:read jenkins:build"`},
		{"invalid token", Challenge{ResourceMetadata: rm, Scopes: []string{"jenkins:read"}, Error: "invalid_token", Description: "the token expired at 2026-03-01T12:00:00Z"},
			`Bearer resource_metadata="` + rm + `", scope="jenkins:read", error="invalid_token", error_description="the token expired at 2026-03-01T12:00:00Z"`},
		{"insufficient scope", Challenge{ResourceMetadata: rm, Scopes: []string{"jenkins:build"}, Error: "insufficient_scope"},
			`Bearer resource_metadata="` + rm + `", scope="jenkins:build", error="insufficient_scope"`},
		{"quotes, backslashes and a newline", Challenge{Error: "invalid_token", Description: "say \"hi\"\\ there\r\nX-Injected: yes\x00\x7f"},
			`Bearer error="invalid_token", error_description="say \"hi\"\\ thereX-Injected: yes"`},
		{"non-ASCII", Challenge{Description: "café"}, `Bearer error_description="caf?"`},
		{"nothing", Challenge{}, "Bearer"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// The challenge of a real failure: the description names the check and
// nothing of the token.
func TestChallenge_FromAVerifyError(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	c := f.idp.claims(f.clock)
	c["aud"] = "https://other.example.com/mcp"
	tok := sign(t, ecKey(), c)
	_, err := f.v.Verify(t.Context(), tok)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
	h := Challenge{ResourceMetadata: "https://b/.well-known/oauth-protected-resource/mcp", Error: "invalid_token", Description: e.Description}.String()
	if !strings.Contains(h, `error_description="the token's audience does not include `+testAudience+`"`) {
		t.Errorf("challenge %s", h)
	}
	for _, part := range strings.Split(tok, ".") {
		if strings.Contains(h, part) {
			t.Errorf("the challenge contains part of the token")
		}
	}
}

func TestResourceMetadataHandler(t *testing.T) {
	t.Parallel()
	h := ResourceMetadataHandler(ResourceMetadata{
		Resource:             "https://butler.example.com/mcp",
		AuthorizationServers: []string{"https://idp.example.com/realms/eng"},
		ScopesSupported:      []string{"jenkins:read", "jenkins:build"},
		ResourceName:         "Butler",
	})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/.well-known/oauth-protected-resource/mcp", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET: %d", rec.Code)
	}
	wantHeaders := map[string]string{
		"Content-Type":                "application/json",
		"Cache-Control":               "public, max-age=3600",
		"Access-Control-Allow-Origin": "*",
	}
	for k, v := range wantHeaders {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s: %q, want %q", k, got, v)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"resource":                 "https://butler.example.com/mcp",
		"authorization_servers":    []any{"https://idp.example.com/realms/eng"},
		"scopes_supported":         []any{"jenkins:read", "jenkins:build"},
		"bearer_methods_supported": []any{"header"},
		"resource_name":            "Butler",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("document (-want +got):\n%s", diff)
	}

	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodHead, "/", nil))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d, body %d bytes, Content-Length %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Length"))
	}

	req := httptest.NewRequest(http.MethodOptions, "/", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "mcp-protocol-version")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent || rec.Header().Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(rec.Header().Get("Access-Control-Allow-Methods"), "GET") ||
		rec.Header().Get("Access-Control-Allow-Headers") != "mcp-protocol-version" {
		t.Errorf("OPTIONS: %d %v", rec.Code, rec.Header())
	}

	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") == "" {
			t.Errorf("%s: %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}

func TestBearerToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		headers   []string // Authorization header values
		url       string
		token     string
		present   bool
		malformed bool
	}{
		{"Bearer", []string{"Bearer abc.def-_~+/="}, "/", "abc.def-_~+/=", true, false},
		{"lower-case scheme", []string{"bearer x"}, "/", "x", true, false},
		{"upper-case scheme", []string{"BEARER x"}, "/", "x", true, false},
		{"no header", nil, "/", "", false, false},
		{"query string ignored", nil, "/mcp?access_token=secret", "", false, false},
		{"query string ignored with a header", []string{"Bearer x"}, "/mcp?access_token=secret", "x", true, false},
		{"two spaces", []string{"Bearer  x"}, "/", "", true, true},
		{"Basic", []string{"Basic dXNlcjpwYXNz"}, "/", "", true, true},
		{"Bearer alone", []string{"Bearer"}, "/", "", true, true},
		{"Bearer and a space", []string{"Bearer "}, "/", "", true, true},
		{"empty", []string{""}, "/", "", true, true},
		{"two credentials", []string{"Bearer x y"}, "/", "", true, true},
		{"a comma", []string{"Bearer x, Basic y"}, "/", "", true, true},
		{"a tab", []string{"Bearer\tx"}, "/", "", true, true},
		{"two headers", []string{"Bearer x", "Bearer y"}, "/", "", true, true},
		{"scheme prefix", []string{"Bearerx y"}, "/", "", true, true},
		{"padding inside", []string{"Bearer a=b"}, "/", "", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.url, strings.NewReader("access_token=fromform"))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			for _, h := range tt.headers {
				r.Header.Add("Authorization", h)
			}
			token, present, err := BearerToken(r)
			if token != tt.token || present != tt.present {
				t.Errorf("got %q, %v; want %q, %v", token, present, tt.token, tt.present)
			}
			if !tt.malformed {
				if err != nil {
					t.Errorf("error %v", err)
				}
				return
			}
			if e, ok := errors.AsType[*Error](err); !ok || e.Reason != ReasonMalformed || !errors.Is(err, ErrInvalidToken) {
				t.Errorf("error %v, want malformed invalid token", err)
			}
		})
	}
}
