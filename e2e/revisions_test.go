package e2e

// MCP protocol revisions (CONTRACT §15): one `butler serve`, stateful or
// stateless, serves clients of every revision; tools/list answers are
// private; the guest allow-list follows the revision.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// revisions are the MCP revisions Butler must serve (CONTRACT §15).
var revisions = []string{"2025-06-18", "2025-11-25", "2026-07-28"}

// connectAt opens a client session pinned to MCP revision rev with token
// ("" for a guest): the go-sdk client tries server/discover first for
// 2026-07-28 and falls back to initialize at 2025-11-25 when the server
// does not offer it (go-sdk v1.8.0 mcp/client.go, Client.Connect).
func connectAt(t *testing.T, url, token, rev string) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: http.DefaultTransport}
	if token != "" {
		hc.Transport = bearer{token: token, base: http.DefaultTransport}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, nil).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: rev})
	if err != nil {
		t.Fatalf("connect at %s: %v", rev, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// serveInMode starts `butler serve` in mode (stateful or stateless) with
// extra auth keys (e.g. allow_guest).
func serveInMode(t *testing.T, mode, authExtra string) (*butlerServer, *idpEnv) {
	t.Helper()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	cfg := serveConfig(addr, e, "")
	if mode == "stateless" {
		cfg = strings.Replace(cfg, "server:\n", "server:\n  stateless: true\n", 1)
	}
	if authExtra != "" {
		cfg = strings.Replace(cfg, "auth:\n", "auth:\n"+authExtra, 1)
	}
	return startServe(t, addr, cfg), e
}

// TestServe_EveryRevisionInBothModes: a real client pinned to each
// revision, against a stateful and a stateless server, gets that revision,
// a private tool list and alice's tools.
func TestServe_EveryRevisionInBothModes(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stateful", "stateless"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s, e := serveInMode(t, mode, "")
			token := e.token(t, "alice")
			for _, rev := range revisions {
				t.Run(rev, func(t *testing.T) {
					cs := connectAt(t, s.url, token, rev)
					if got := cs.InitializeResult().ProtocolVersion; got != rev {
						t.Fatalf("negotiated %s, want %s", got, rev)
					}
					lt, err := cs.ListTools(context.Background(), nil)
					if err != nil {
						t.Fatalf("tools/list: %v", err)
					}
					if len(lt.Tools) < 2 {
						t.Errorf("tools/list: %d tools, want alice's", len(lt.Tools))
					}
					if lt.CacheScope != "private" {
						t.Errorf("tools/list cacheScope %q, want private (the list is per user)", lt.CacheScope)
					}
					// No prompts or resources are declared, so none are served.
					if _, err := cs.ListPrompts(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "-32601") && !strings.Contains(err.Error(), "not found") {
						t.Errorf("prompts/list at %s: %v, want method not found", rev, err)
					}
					if r := callTool(t, cs, "whoami", nil); r.isError || r.out["user"] != "alice" {
						t.Errorf("whoami at %s: %v", rev, r)
					}
				})
			}
			// The SDK's advice to its integrator never reaches the admin's log.
			if log := s.stderr.String(); strings.Contains(log, "StreamableHTTPOptions") || strings.Contains(log, "rejecting request with protocol version") {
				t.Errorf("the log carries the SDK's hint:\n%s", log)
			}
		})
	}
}

// sessionlessBody is a JSON-RPC request of MCP 2026-07-28: the revision,
// client info and capabilities in its _meta (SEP-2575).
func sessionlessBody(id int, method string, params map[string]any) string {
	if params == nil {
		params = map[string]any{}
	}
	params["_meta"] = map[string]any{
		"io.modelcontextprotocol/protocolVersion":    "2026-07-28",
		"io.modelcontextprotocol/clientInfo":         map[string]any{"name": "e2e", "version": "1"},
		"io.modelcontextprotocol/clientCapabilities": map[string]any{},
	}
	data, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": method, "params": params})
	if err != nil {
		panic(err)
	}
	return string(data)
}

// TestServe_GuestAllowListFollowsTheRevision: a guest may discover, list
// and call guest tools in 2026-07-28; there ping and logging/setLevel do
// not exist (404, -32601, from the MCP layer), subscriptions/listen and
// other tools need a token; in 2025-11-25 a guest may initialize, ping and
// set the log level, and server/discover is not on its list.
func TestServe_GuestAllowListFollowsTheRevision(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"stateful", "stateless"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s, _ := serveInMode(t, mode, "  allow_guest: true\n")
			for _, tt := range []struct {
				name, body string
				status     int
				rpcError   float64
			}{
				{"server/discover", sessionlessBody(1, "server/discover", nil), 200, 0},
				{"tools/list", sessionlessBody(2, "tools/list", nil), 200, 0},
				{"tools/call health", sessionlessBody(3, "tools/call", map[string]any{"name": "health", "arguments": map[string]any{}}), 200, 0},
				{"ping (removed)", sessionlessBody(4, "ping", nil), 404, -32601},
				{"logging/setLevel (removed)", sessionlessBody(5, "logging/setLevel", map[string]any{"level": "debug"}), 404, -32601},
				{"initialize (removed)", sessionlessBody(6, "initialize", map[string]any{"protocolVersion": "2026-07-28", "capabilities": map[string]any{}, "clientInfo": map[string]any{"name": "e2e", "version": "1"}}), 404, -32601},
				{"subscriptions/listen", sessionlessBody(7, "subscriptions/listen", map[string]any{"notifications": map[string]any{"toolsListChanged": true}}), 401, 0},
				{"tools/call whoami", sessionlessBody(8, "tools/call", map[string]any{"name": "whoami", "arguments": map[string]any{}}), 401, 0},
				{"unknown method", sessionlessBody(9, "unknown/method", nil), 401, 0},
			} {
				t.Run("2026-07-28 "+tt.name, func(t *testing.T) {
					// The standard headers of 2026-07-28 (SEP-2243) repeat the
					// method and the tool named in the body.
					var msg struct {
						Method string `json:"method"`
						Params struct {
							Name string `json:"name"`
						} `json:"params"`
					}
					if err := json.Unmarshal([]byte(tt.body), &msg); err != nil {
						t.Fatal(err)
					}
					h := map[string]string{"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": msg.Method}
					if msg.Params.Name != "" {
						h["Mcp-Name"] = msg.Params.Name
					}
					a := hostilePost(t, s.url, h, tt.body)
					if a.status != tt.status {
						t.Fatalf("status %d, want %d: %s", a.status, tt.status, a.body)
					}
					if tt.status == 401 && !strings.Contains(a.header.Get("WWW-Authenticate"), "resource_metadata=") {
						t.Errorf("401 without the challenge: %q", a.header.Get("WWW-Authenticate"))
					}
					if tt.rpcError != 0 && a.rpcError() != tt.rpcError {
						t.Errorf("JSON-RPC error %v, want %v: %s", a.rpcError(), tt.rpcError, a.body)
					}
					if tt.status == 200 && (len(a.msgs) == 0 || a.msgs[0]["result"] == nil) {
						t.Errorf("no result: %s", a.body)
					}
					if tt.name == "tools/list" && len(a.msgs) > 0 {
						res, _ := a.msgs[0]["result"].(map[string]any)
						tools, _ := res["tools"].([]any)
						if len(tools) != 1 || res["cacheScope"] != "private" {
							t.Errorf("guest tools/list: %d tools, cacheScope %v; want health only, private", len(tools), res["cacheScope"])
						}
					}
				})
			}

			t.Run("2025-11-25", func(t *testing.T) {
				legacy := map[string]string{"Mcp-Protocol-Version": "2025-11-25"}
				a := hostilePost(t, s.url, nil, strings.Replace(initializeBody, "2025-06-18", "2025-11-25", 1))
				if a.status != 200 {
					t.Fatalf("guest initialize: %d %s", a.status, a.body)
				}
				if sid := a.header.Get("Mcp-Session-Id"); sid != "" {
					legacy["Mcp-Session-Id"] = sid
					if n := hostilePost(t, s.url, legacy, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.status != http.StatusAccepted {
						t.Fatalf("notifications/initialized: %d %s", n.status, n.body)
					}
				}
				for _, m := range []string{`"ping"`, `"logging/setLevel","params":{"level":"debug"}`} {
					body := fmt.Sprintf(`{"jsonrpc":"2.0","id":2,"method":%s}`, m)
					if a := hostilePost(t, s.url, legacy, body); a.status != 200 || a.rpcError() != 0 {
						t.Errorf("guest %s at 2025-11-25: %d %s", m, a.status, a.body)
					}
				}
				if a := hostilePost(t, s.url, legacy, `{"jsonrpc":"2.0","id":3,"method":"server/discover"}`); a.status != 401 {
					t.Errorf("guest server/discover at 2025-11-25: %d %s, want 401", a.status, a.body)
				}
			})
		})
	}
}

// TestServe_SessionlessRequestsOpenNoSession: on a stateful server, the
// requests of 2026-07-28 neither get a session nor count against
// max_sessions_per_user, so they never close a user's idle session of an
// older revision to make room.
func TestServe_SessionlessRequestsOpenNoSession(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, strings.Replace(serveConfig(addr, e, ""), "server:\n", "server:\n  max_sessions_per_user: 1\n", 1))
	token := e.token(t, "alice")
	legacy := connectAt(t, s.url, token, "2025-11-25")
	if legacy.ID() == "" {
		t.Fatal("the 2025-11-25 client got no session")
	}
	for range 3 {
		cs := connectAt(t, s.url, token, "2026-07-28")
		if cs.ID() != "" {
			t.Errorf("a 2026-07-28 client got session %q", cs.ID())
		}
		if r := callTool(t, cs, "whoami", nil); r.isError || r.out["user"] != "alice" {
			t.Errorf("2026-07-28 whoami: %v", r)
		}
	}
	// alice's one session was not closed to make room.
	if r := callTool(t, legacy, "whoami", nil); r.isError || r.out["user"] != "alice" {
		t.Errorf("the 2025-11-25 session after the 2026-07-28 calls: %v", r)
	}
}
