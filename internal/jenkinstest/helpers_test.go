package jenkinstest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// call sends one request to h as user (token user+"-token"; "" is
// anonymous) and returns the recorded response.
func call(t *testing.T, h http.Handler, method, target, user string, opts ...func(*http.Request)) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://jenkins.test"+target, nil)
	if user != "" {
		r.SetBasicAuth(user, user+"-token")
	}
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// withForm sends an application/x-www-form-urlencoded body.
func withForm(v url.Values) func(*http.Request) {
	return func(r *http.Request) {
		r.Body = httpBody(v.Encode())
		r.ContentLength = int64(len(v.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
}

func withHeader(k, v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set(k, v) }
}

func httpBody(s string) *readCloser { return &readCloser{strings.NewReader(s)} }

type readCloser struct{ *strings.Reader }

func (readCloser) Close() error { return nil }

// getJSON GETs target as user, expects 200 and decodes the body.
func getJSON(t *testing.T, h http.Handler, target, user string) map[string]any {
	t.Helper()
	w := call(t, h, "GET", target, user)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s as %q: status %d, body %q", target, user, w.Code, w.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("GET %s: invalid JSON: %v\n%s", target, err, w.Body.String())
	}
	return m
}

// queuePath turns a Location header into the request path of the queue
// item's API.
func queuePath(t *testing.T, loc string) string {
	t.Helper()
	u, err := url.Parse(loc)
	if err != nil || !strings.Contains(u.Path, "/queue/item/") {
		t.Fatalf("bad Location %q", loc)
	}
	return u.Path + "api/json"
}

// newTestServer is a small instance on a fake clock: user alice
// (alice-token) with every permission, bob with Read only. Its quiet
// period is 0 unless opts sets one, so a triggered build of a job without
// its own starts at once.
func newTestServer(t *testing.T, opts *Options, jobs map[string]JobSpec) (*Server, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	o := Options{}
	if opts != nil {
		o = *opts
	}
	if o.QuietPeriod == 0 {
		o.QuietPeriod = NoQuietPeriod
	}
	o.Clock = clk
	s := New(&o)
	s.AddUser("alice", "Alice Smith", "alice-token")
	s.AddUser("bob", "Bob Jones", "bob-token")
	s.Grant("alice", "", PermRead, PermBuild, PermCancel)
	s.Grant("bob", "", PermRead)
	for p, spec := range jobs {
		if err := s.AddJob(p, spec); err != nil {
			t.Fatal(err)
		}
	}
	return s, clk
}

func str(m map[string]any, k string) string {
	v, _ := m[k].(string)
	return v
}

func itoa(n int) string { return strconv.Itoa(n) }

func contextWithTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// getJSONWith GETs target anonymously with opts, expects 200 and decodes
// the body.
func getJSONWith(t *testing.T, h http.Handler, target string, opts ...func(*http.Request)) map[string]any {
	t.Helper()
	w := call(t, h, "GET", target, "", opts...)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: status %d, body %q", target, w.Code, w.Body.String())
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		t.Fatalf("GET %s: invalid JSON: %v\n%s", target, err, w.Body.String())
	}
	return m
}
