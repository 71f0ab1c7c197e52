package e2e

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/devidp"
)

// connectYAML turns on /connect with a confidential web client.
func connectYAML() string {
	key := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("s", 32)))
	return "web:\n  client_id: butler-web\n  client_secret: web-secret\n  session_key: " + key + "\n"
}

// formValue finds a hidden input's value in a page.
func formValue(t *testing.T, page, name string) string {
	t.Helper()
	_, rest, ok := strings.Cut(page, `name="`+name+`" value="`)
	if !ok {
		t.Fatalf("no %s field in the page:\n%s", name, page)
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

// pageClient is a browser-like HTTP client: cookies, redirects.
func pageClient(t *testing.T) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, Timeout: 20 * time.Second}
}

func readPage(t *testing.T, resp *http.Response, err error) (*http.Response, string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// A person links their own account: an MCP client that declared URL-mode
// elicitation is asked to open connect_url; the person signs in at the
// IdP there, a wrong token is refused, the right one links, the client's
// retried call succeeds as them, the page lists the call, and after
// unlinking the next call is refused again.
func TestConnect_SelfServiceLinking(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	base := "http://" + addr
	e := newIdPEnv(t, base+"/mcp")
	if err := e.idp.AddClient(devidp.ClientConfig{ID: "butler-web", Secret: "web-secret", Name: "Butler link page",
		RedirectURIs: []string{base + "/connect/callback"}}); err != nil {
		t.Fatal(err)
	}
	b := startServe(t, addr, serveConfig(addr, e, connectYAML()))

	hc := &http.Client{Transport: bearer{token: e.token(t, "carol"), base: http.DefaultTransport}}
	caps := &mcp.ClientCapabilities{Elicitation: &mcp.ElicitationCapabilities{URL: &mcp.URLElicitationCapabilities{}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e-agent", Version: "1"}, &mcp.ClientOptions{Capabilities: caps}).
		// 2025-11-25: the link page comes as the URLElicitationRequiredError
		// (-32042); the 2026-07-28 input-required form is tested in
		// internal/tools (TestNotLinked_URLElicitationRetryForm).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: b.url + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	call := func() (*mcp.CallToolResult, error) {
		return cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
	}
	wantElicitation := func(when string) {
		t.Helper()
		_, err := call()
		var rpcErr *jsonrpc.Error
		if !errors.As(err, &rpcErr) || rpcErr.Code != mcp.CodeURLElicitationRequired || !strings.Contains(string(rpcErr.Data), base+"/connect") {
			t.Fatalf("%s: want URLElicitationRequired with connect_url, got %v", when, err)
		}
	}
	wantElicitation("before linking")

	// The browser opens connect_url and signs in as carol at the IdP.
	browser := pageClient(t)
	read := func(resp *http.Response, err error) (*http.Response, string) { return readPage(t, resp, err) }
	resp, login := read(browser.Get(base + "/connect"))
	if resp.Request.URL.Host == addr || !strings.Contains(login, "Sign in as carol") {
		t.Fatalf("connect_url did not lead to the IdP's login: %s\n%s", resp.Request.URL, login)
	}
	form := url.Values{"id": {formValue(t, login, "id")}, "csrf": {formValue(t, login, "csrf")}, "user": {"carol"}}
	resp, page := read(browser.PostForm(resp.Request.URL.Scheme+"://"+resp.Request.URL.Host+"/login", form))
	if resp.Request.URL.String() != base+"/connect" || !strings.Contains(page, "Signed in as</dt><dd>carol") || !strings.Contains(page, "not linked") {
		t.Fatalf("after sign-in: %d at %s\n%s", resp.StatusCode, resp.Request.URL, page)
	}
	csrf := formValue(t, page, "csrf")
	post := func(v url.Values) (*http.Response, string) {
		req, _ := http.NewRequest(http.MethodPost, base+"/connect", strings.NewReader(v.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", base)
		return read(browser.Do(req))
	}

	resp, page = post(url.Values{"csrf": {csrf}, "action": {"link"}, "token": {"not-carols-token"}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "rejected") || !strings.Contains(page, "Nothing was stored") {
		t.Fatalf("wrong token: %d\n%s", resp.StatusCode, page)
	}
	wantElicitation("after a wrong token")

	resp, page = post(url.Values{"csrf": {csrf}, "action": {"link"}, "token": {"carol-token"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "Your Jenkins token is linked") {
		t.Fatalf("right token: %d\n%s", resp.StatusCode, page)
	}
	res, err := call()
	if err != nil || res.IsError {
		t.Fatalf("the retried call after linking: %v %+v", err, res)
	}

	// The page lists the call (the audit writer flushes within moments).
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, page = read(browser.Get(base + "/connect"))
		if strings.Contains(page, `<span class="tool">get_job</span> <span class="job">frontend/web-app</span>`) &&
			strings.Contains(page, `<span class="dec">allow</span>`) && strings.Contains(page, "client e2e") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page does not list the call:\n%s", page)
		}
		time.Sleep(100 * time.Millisecond)
	}

	resp, page = post(url.Values{"csrf": {csrf}, "action": {"unlink"}})
	if !strings.Contains(page, "unlinked") {
		t.Fatalf("unlink: %d\n%s", resp.StatusCode, page)
	}
	wantElicitation("after unlinking")

	// A POST without the CSRF token, or from another Origin, changes nothing.
	resp, _ = post(url.Values{"action": {"link"}, "token": {"carol-token"}})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", resp.StatusCode)
	}
	wantElicitation("after a POST without CSRF token")

	if strings.Contains(b.stderr.String(), "carol-token") {
		t.Error("the token is in butler's log")
	}
}
