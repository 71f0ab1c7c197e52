package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/request"
	"github.com/butler-mcp/butler/internal/tools"
)

// heldLogs is a Jenkins whose console text starts and then stalls until
// release: a search of it stays in progress, as a slow regex over a big
// log does, for as long as a test needs.
type heldLogs struct {
	arrived chan struct{} // one value per log request
	release chan struct{}
	once    sync.Once
}

func newHeldLogs() *heldLogs {
	return &heldLogs{arrived: make(chan struct{}, 100), release: make(chan struct{})}
}

func (h *heldLogs) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/consoleText") {
		http.NotFound(w, r)
		return
	}
	// consoleText, which a search reads: no offsets, the stripped text.
	w.Header().Set("Content-Type", "text/plain;charset=UTF-8")
	fmt.Fprint(w, "one\nERROR first\ntwo\n")
	w.(http.Flusher).Flush()
	h.arrived <- struct{}{}
	select {
	case <-h.release:
	case <-r.Context().Done():
	case <-time.After(20 * time.Second): // a broken test fails, it does not hang
	}
}

func (h *heldLogs) open() { h.once.Do(func() { close(h.release) }) }

// wait waits for n more log requests to reach Jenkins.
func (h *heldLogs) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-h.arrived:
		case <-time.After(10 * time.Second):
			t.Fatal("a search did not reach Jenkins")
		}
	}
}

// searchUsers serves Butler's tools to an MCP client; each call acts as the
// user last passed to as (all of them admin in Jenkins).
type searchUsers struct {
	cs   *mcp.ClientSession
	mu   sync.Mutex
	user string
}

func newSearchUsers(t *testing.T, h http.Handler) *searchUsers {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL, &jenkins.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	su := &searchUsers{user: "u0"}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: adminForAll{},
		Authorizer:  authz.New(nil),
		Scope: func(context.Context, *mcp.RequestExtra) *request.Scope {
			su.mu.Lock()
			defer su.mu.Unlock()
			return &request.Scope{Principal: identity.Principal{User: su.user, JenkinsUser: "admin", Local: true}, ID: request.NewID()}
		},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	su.cs = connect(t, ts, nil)
	return su
}

// adminForAll gives every user Jenkins's admin account: the searches of
// different users reach the same Jenkins.
type adminForAll struct{}

func (adminForAll) For(context.Context, identity.Principal) (jenkins.Credential, error) {
	return jenkins.Credential{User: "admin", APIToken: "admin-token"}, nil
}

func (adminForAll) Linked(context.Context, identity.Principal) (bool, error) { return true, nil }

func (su *searchUsers) as(user string) {
	su.mu.Lock()
	su.user = user
	su.mu.Unlock()
}

// start runs a regex search as user in the background; its result arrives
// on the returned channel.
func (su *searchUsers) start(t *testing.T, user string) <-chan *searchResult {
	su.as(user)
	ch := make(chan *searchResult, 1)
	go func() {
		// Not search(): t.Fatal must not be called from this goroutine.
		r := &searchResult{isError: true}
		res, err := su.cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "search_build_log",
			Arguments: map[string]any{"job": "big", "build": 1, "pattern": "ERR(OR)?", "regex": true}})
		if err != nil {
			r.text = err.Error()
		} else if data, err := json.Marshal(res.StructuredContent); err == nil && json.Unmarshal(data, &r.out) == nil {
			r.isError = res.IsError
		}
		ch <- r
	}()
	return ch
}

func wantBusy(t *testing.T, r *searchResult, took time.Duration, words string) {
	t.Helper()
	if !r.isError || r.out.Error == nil || r.out.Error.Code != tools.CodeRateLimited || !strings.Contains(r.out.Error.Message, words) {
		t.Fatalf("search over the bound: %+v (%s), want rate_limited saying %q", r.out.Error, r.text, words)
	}
	if r.out.Error.RetryAfterSeconds < 1 {
		t.Errorf("refusal without retry_after_seconds: %+v", r.out.Error)
	}
	if !strings.HasPrefix(r.text, "rate_limited: ") {
		t.Errorf("error text %q", r.text)
	}
	if took > 2*time.Second {
		t.Errorf("the refusal took %v: a search over the bound must not wait for a slot", took)
	}
}

// TestSearchBuildLog_BoundedPerUser: a user has at most
// MaxSearchesPerUser searches running; one more is rate_limited at once,
// with retry advice, while another user can still search, and the slots
// come back when the searches end.
func TestSearchBuildLog_BoundedPerUser(t *testing.T) {
	t.Parallel()
	h := newHeldLogs()
	defer h.open()
	su := newSearchUsers(t, h)
	var held []<-chan *searchResult
	for range tools.MaxSearchesPerUser {
		held = append(held, su.start(t, "alice"))
		h.wait(t, 1)
	}
	su.as("alice")
	start := time.Now()
	r := search(t, su.cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR"})
	wantBusy(t, r, time.Since(start), "log searches running, the most one user may run at once")
	// Another user is not held up by alice's searches.
	bob := su.start(t, "bob")
	h.wait(t, 1)
	h.open()
	for _, ch := range append(held, bob) {
		if r := <-ch; r.isError || len(r.out.Matches) != 1 {
			t.Errorf("a held search: error %+v (%s), %d matches", r.out.Error, r.text, len(r.out.Matches))
		}
	}
	// The slots are free again.
	su.as("alice")
	if r := search(t, su.cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR"}); r.isError {
		t.Errorf("a search after the others ended: %+v", r.out.Error)
	}
}

// TestSearchBuildLog_BoundedPerServer: at most MaxSearches searches run at
// once in all, whoever runs them; one more is rate_limited at once.
func TestSearchBuildLog_BoundedPerServer(t *testing.T) {
	t.Parallel()
	h := newHeldLogs()
	defer h.open()
	su := newSearchUsers(t, h)
	var held []<-chan *searchResult
	for i := range tools.MaxSearches {
		held = append(held, su.start(t, fmt.Sprintf("user%d", i)))
		h.wait(t, 1)
	}
	su.as("latecomer")
	start := time.Now()
	r := search(t, su.cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR", "regex": true})
	wantBusy(t, r, time.Since(start), "log searches are running on this Butler")
	h.open()
	for _, ch := range held {
		if r := <-ch; r.isError {
			t.Errorf("a held search: %+v (%s)", r.out.Error, r.text)
		}
	}
	if r := search(t, su.cs, map[string]any{"job": "big", "build": 1, "pattern": "ERROR"}); r.isError {
		t.Errorf("a search after the others ended: %+v", r.out.Error)
	}
}
