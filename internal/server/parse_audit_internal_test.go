package server

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
)

// unparsableBodies are POST bodies the pre-parse refuses with a JSON-RPC
// parse error (docs/http.md "The request parse").
func unparsableBodies() map[string]string {
	batch := make([]string, maxBatch+1)
	for i := range batch {
		batch[i] = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami"}}`
	}
	// A duplicate key of 10 KB with control characters: the reason keeps
	// a short, escaped piece of it.
	long, _ := json.Marshal(strings.Repeat("k\x1b[31m\n", 2000))
	return map[string]string{
		"not JSON":        `{"jsonrpc":"2.0","id":1,"method":`,
		"trailing data":   `{"jsonrpc":"2.0","id":1,"method":"ping"} x`,
		"duplicate key":   `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"whoami",` + string(long) + `:1,` + string(long) + `:2}}`,
		"101-batch":       "[" + strings.Join(batch, ",") + "]",
		"not UTF-8":       "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		"not an object":   `"tools/call"`,
		"empty batch":     `[]`,
		"number in batch": `[1]`,
	}
}

// TestAuthenticate_ParseErrorOfAUserIsAudited pins CONTRACT §9 "one
// refused HTTP request, one record": a body with a valid token that cannot
// be parsed is answered 400 with a JSON-RPC parse error and leaves exactly
// one audit record (one per request, not per batch message), under the
// bounded tool label "unknown", decision error, code invalid_argument, with
// a short reason that holds no raw control character.
func TestAuthenticate_ParseErrorOfAUserIsAudited(t *testing.T) {
	t.Parallel()
	for name, body := range unparsableBodies() {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			next := 0
			h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { next++ }), WithScope, Authenticate(AuthOptions{
				Verifier: slowVerifier{release: closedChan()}, Authorizer: authz.New(nil), JenkinsUser: func(u string) (string, error) { return u, nil },
				Audit: rec,
			}))
			req := httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer good")
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			var answer struct {
				Error struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			if w.Code != http.StatusBadRequest || json.Unmarshal(w.Body.Bytes(), &answer) != nil || answer.Error.Code != -32700 || next != 0 {
				t.Fatalf("status %d, body %.200s, next called %d times; want 400 with a -32700 parse error, before MCP", w.Code, w.Body, next)
			}
			recs := rec.all()
			if len(recs) != 1 {
				t.Fatalf("%d audit records, want 1: %+v", len(recs), recs)
			}
			r := recs[0]
			if r.Tool != catalog.Unknown || r.Decision != audit.Error || r.Code != "invalid_argument" || r.User != "alice" ||
				r.RequestID == "" || r.RequestID != w.Header().Get(headerRequestID) {
				t.Errorf("record %+v", r)
			}
			if !strings.Contains(r.Reason, "parse error") || len(r.Reason) > 256 || strings.ContainsFunc(r.Reason, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				t.Errorf("reason %.300q (%d bytes): want a short escaped parse error", r.Reason, len(r.Reason))
			}
			if len(w.Body.String()) > 512 {
				t.Errorf("the answer is %d bytes: it must not echo the body", w.Body.Len())
			}
		})
	}
}

// TestAuthenticate_ParseErrorOfAGuestIsNotAudited: a guest's unparsable
// body (allow_guest) is answered the same way and costs no record: it is
// neither a tool call that reached MCP nor an authentication failure, and
// anonymous clients must not be able to fill the audit log. Without guest
// mode the same body is refused by authentication, with its one record.
func TestAuthenticate_ParseErrorOfAGuestIsNotAudited(t *testing.T) {
	t.Parallel()
	for _, guests := range []bool{true, false} {
		rec := &recorder{}
		h := Chain(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), WithScope, Authenticate(AuthOptions{
			Verifier: slowVerifier{release: closedChan()}, Authorizer: authz.New(&authz.Options{AllowGuest: guests}),
			JenkinsUser: func(u string) (string, error) { return u, nil }, Audit: rec,
		}))
		bodies := unparsableBodies()
		for _, body := range bodies {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/mcp", strings.NewReader(body)))
			want := http.StatusBadRequest
			if !guests {
				want = http.StatusUnauthorized
			}
			if w.Code != want {
				t.Errorf("allow_guest %v: %.60q got %d, want %d", guests, body, w.Code, want)
			}
		}
		recs := rec.all()
		switch {
		case guests && len(recs) != 0:
			t.Errorf("guests' parse errors wrote %d audit records, want none: %+v", len(recs), recs[0])
		case !guests && len(recs) != len(bodies):
			t.Errorf("%d requests refused by authentication wrote %d records, want one each", len(bodies), len(recs))
		}
	}
}
