package e2e

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// confirmPolicy lets users call everything and asks the person before any
// trigger in prod (CONTRACT §13).
const confirmPolicy = `@id("users-all")
permit (principal is User, action, resource);

@id("prod-trigger-confirm")
@confirm("This starts a build in production.")
permit (principal is User, action == Action::"trigger_job", resource in Folder::"prod");
`

// connectElicit opens an MCP session over Streamable HTTP on revision
// version, answering elicitations with handler (nil: the client declares
// no elicitation).
func connectElicit(t *testing.T, url, token, version string,
	handler func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)) *mcp.ClientSession {
	t.Helper()
	hc := &http.Client{Transport: bearer{token: token, base: http.DefaultTransport}}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "e2e", Version: "1"}, &mcp.ClientOptions{ElicitationHandler: handler}).
		Connect(ctx, &mcp.StreamableClientTransport{Endpoint: url + "/mcp", HTTPClient: hc}, &mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect (%s): %v", version, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// answerer answers every elicitation with action and counts the questions.
type answerer struct {
	mu       sync.Mutex
	action   string
	messages []string
}

func (a *answerer) handle(_ context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.messages = append(a.messages, req.Params.Message)
	return &mcp.ElicitResult{Action: a.action}, nil
}

func (a *answerer) asked() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.messages...)
}

// TestServe_ConfirmSensitiveCalls drives human confirmation through `butler
// serve`: on 2025-11-25 (a stateful server sends elicitation/create while
// the call waits) and on 2026-07-28 (a stateless server answers an
// input-required result and the client calls again with the answer).
func TestServe_ConfirmSensitiveCalls(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		version   string
		stateless bool
	}{
		{"2025-11-25 stateful", "2025-11-25", false},
		{"2026-07-28 stateless", "2026-07-28", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := freeAddr(t)
			dir := t.TempDir()
			policy := filepath.Join(dir, "policy.cedar")
			if err := os.WriteFile(policy, []byte(confirmPolicy), 0o600); err != nil {
				t.Fatal(err)
			}
			a := newAuthzEnv(t, addr, "", "policy:\n  file: "+policy+"\n")
			// Jenkins lets alice build in prod; only the policy asks first.
			a.sim.Grant(jenkinstest.SampleAlice, "prod", jenkinstest.PermBuild)
			cfg := mustRead(t, a.cfgPath)
			if tc.stateless {
				cfg = strings.Replace(cfg, "server:\n", "server:\n  stateless: true\n", 1)
			}
			s := startServe(t, addr, cfg)
			tok := a.token(t, "alice")
			args := map[string]any{"job": "prod/deploy", "parameters": map[string]any{"TARGET": "us-east"}}
			const summary = "Trigger prod/deploy #? as alice with CANARY=false, TARGET=us-east"
			a.sim.ResetRequests()
			posts := func() int {
				n := 0
				for _, r := range a.sim.Requests() {
					if r.Method == "POST" {
						n++
					}
				}
				return n
			}

			// Decline, then cancel: forbidden (declined), nothing posted.
			for _, action := range []string{"decline", "cancel"} {
				ans := &answerer{action: action}
				cs := connectElicit(t, s.url, tok, tc.version, ans.handle)
				out := mustFail(t, cs, "trigger_job", args, "forbidden", 403)
				if out["reason"] != "declined" {
					t.Errorf("%s: %v, want reason declined", action, out)
				}
				if q := ans.asked(); len(q) != 1 || !strings.Contains(q[0], "This starts a build in production.") || !strings.Contains(q[0], summary) {
					t.Errorf("%s: asked %q", action, q)
				}
			}
			if n := posts(); n != 0 {
				t.Fatalf("declined triggers reached Jenkins: %d POSTs", n)
			}

			// No elicitation: confirmation_required (428), naming the call.
			out := mustFail(t, connectElicit(t, s.url, tok, tc.version, nil), "trigger_job", args, "confirmation_required", 428)
			if out["confirmation"] != summary {
				t.Errorf("confirmation_required: %v", out)
			}

			// Pre-confirming in the arguments is an unknown argument; the
			// person is not asked.
			ans := &answerer{action: "accept"}
			cs := connectElicit(t, s.url, tok, tc.version, ans.handle)
			withConfirmed := map[string]any{"job": "prod/deploy", "parameters": map[string]any{"TARGET": "us-east"}, "confirmed": true}
			if out := mustFail(t, cs, "trigger_job", withConfirmed, "invalid_argument", 400); !strings.Contains(out["message"].(string), `unknown argument "confirmed"`) {
				t.Errorf("confirmed argument: %v", out)
			}
			if n := len(ans.asked()); n != 0 || posts() != 0 {
				t.Fatalf("pre-confirmed call: asked %d times, %d POSTs", n, posts())
			}

			// Accept: the build is queued, once.
			res := mustOK(t, cs, "trigger_job", args)
			if res["queue_id"] == nil || len(ans.asked()) != 1 || posts() != 1 {
				t.Errorf("accepted: %v, asked %d times, %d POSTs", res, len(ans.asked()), posts())
			}
			// A trigger outside prod asks nothing.
			mustOK(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"})
			if n := len(ans.asked()); n != 1 {
				t.Errorf("trigger outside prod asked: %d questions", n)
			}

			// The audit log says confirmed and declined.
			recs := a.waitAudit(t, func(r []map[string]any) bool {
				return countReason(r, "confirmed; ") >= 1 && countReason(r, "declined: ") >= 2
			},
				"--user", "alice", "--tool", "trigger_job")
			if countReason(recs, "confirmed; ") != 1 || countReason(recs, "declined: ") != 2 {
				t.Errorf("audit: %v", recs)
			}
			for _, r := range recs {
				if strings.HasPrefix(r["reason"].(string), "confirmed; ") && r["decision"] != "allow" ||
					strings.HasPrefix(r["reason"].(string), "declined: ") && (r["decision"] != "deny" || r["code"] != "forbidden") {
					t.Errorf("audit record %v", r)
				}
			}
		})
	}
}

// TestServe_ConfirmOldRevisionStateless: a stateless server cannot send a
// request to a 2025-11-25 client, so a call that needs confirmation is
// confirmation_required even though the client declared elicitation.
func TestServe_ConfirmOldRevisionStateless(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	policy := filepath.Join(t.TempDir(), "policy.cedar")
	if err := os.WriteFile(policy, []byte(confirmPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	a := newAuthzEnv(t, addr, "", "policy:\n  file: "+policy+"\n")
	a.sim.Grant(jenkinstest.SampleAlice, "prod", jenkinstest.PermBuild)
	s := startServe(t, addr, strings.Replace(mustRead(t, a.cfgPath), "server:\n", "server:\n  stateless: true\n", 1))
	ans := &answerer{action: "accept"}
	cs := connectElicit(t, s.url, a.token(t, "alice"), "2025-11-25", ans.handle)
	a.sim.ResetRequests()
	mustFail(t, cs, "trigger_job", map[string]any{"job": "prod/deploy"}, "confirmation_required", 428)
	for _, r := range a.sim.Requests() {
		if r.Method == "POST" {
			t.Errorf("an unconfirmed trigger reached Jenkins: %+v", r)
		}
	}
}

func countReason(recs []map[string]any, prefix string) int {
	n := 0
	for _, r := range recs {
		if s, _ := r["reason"].(string); strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}
