package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// e2eVaultKey is the vault key of the e2e processes: 32 fixed bytes that
// look random (check-config refuses a key such as 32 zero bytes), for tests
// only.
const e2eVaultKey = "aNVpVgjXz+pXrJF3Y2Sg6BDBOx5A/ud1aywaoxid7sQ="

// vaultKeyEnv is the vault key every e2e process shares.
var vaultKeyEnv = "BUTLER_VAULT_KEY=" + e2eVaultKey

// authzEnv is a Butler deployment with a store: a config file, its store,
// the users' linked Jenkins tokens.
type authzEnv struct {
	*idpEnv
	dir, cfgPath, dsn string
}

// newAuthzEnv writes a serve config using dsn (sqlite file by default) and
// extra YAML appended, and links alice, bob and carol with `butler link`.
func newAuthzEnv(t *testing.T, addr, dsn, extra string) *authzEnv {
	t.Helper()
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	dir := t.TempDir()
	if dsn == "" {
		dsn = "sqlite:" + filepath.Join(dir, "butler.db")
	}
	cfg := strings.Replace(serveConfig(addr, e, extra), `  dsn: "sqlite::memory:"`, "  dsn: "+dsn, 1)
	path := filepath.Join(dir, "butler.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &authzEnv{idpEnv: e, dir: dir, cfgPath: path, dsn: dsn}
	for user, tok := range map[string]string{"alice": jenkinstest.SampleAliceToken, "bob": jenkinstest.SampleBobToken, "carol": jenkinstest.SampleCarolToken} {
		a.link(t, user, tok, 0)
	}
	return a
}

// link runs `butler link` with token on stdin and checks its exit code.
func (a *authzEnv) link(t *testing.T, user, token string, wantCode int, extraArgs ...string) string {
	t.Helper()
	cmd := exec.Command(butlerBin, append([]string{"link", "--config", a.cfgPath, "--user", user}, extraArgs...)...)
	cmd.Env = append(os.Environ(), vaultKeyEnv)
	cmd.Stdin = strings.NewReader(token + "\n")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode {
		t.Fatalf("butler link --user %s: exit %d, want %d\n%s", user, code, wantCode, out.String())
	}
	return out.String()
}

// asEachUser connects one session for each of users to url and returns a
// runner: as(user, f) runs f with user's session, then checks (onlyAs) that
// every Jenkins request f caused carried user's own credential.
func (a *authzEnv) asEachUser(t *testing.T, url string, users ...string) func(user string, f func(cs *mcp.ClientSession)) {
	t.Helper()
	sessions := map[string]*mcp.ClientSession{}
	for _, u := range users {
		sessions[u] = connectElicit(t, url, a.token(t, u), "2025-11-25", nil)
	}
	return func(user string, f func(cs *mcp.ClientSession)) {
		t.Helper()
		a.sim.ResetRequests()
		f(sessions[user])
		onlyAs(t, a.sim, "", user)
	}
}

func (a *authzEnv) serve(t *testing.T, addr string) *butlerServer {
	t.Helper()
	data, err := os.ReadFile(a.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	return startServe(t, addr, string(data))
}

// auditRecords runs `butler audit --json` and decodes its lines.
func (a *authzEnv) auditRecords(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out, stderr, code := runButler(t, []string{vaultKeyEnv}, append([]string{"audit", "--config", a.cfgPath, "--json", "--limit", "10000"}, args...)...)
	if code != 0 {
		t.Fatalf("butler audit: exit %d: %s", code, stderr)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// waitAudit polls `butler audit` until done accepts the records, for up to
// 10 s, and returns the last records read.
func (a *authzEnv) waitAudit(t *testing.T, done func([]map[string]any) bool, args ...string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := a.auditRecords(t, args...)
		if done(recs) || time.Now().After(deadline) {
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLink_VerifiesTheTokenBelongsToTheUser(t *testing.T) {
	t.Parallel()
	a := newAuthzEnv(t, freeAddr(t), "", "")
	if out := a.link(t, "alice", jenkinstest.SampleAliceToken, 0); !strings.Contains(out, "linked alice to Jenkins user alice") {
		t.Errorf("link output: %q", out)
	}
	// Bob's token cannot be bound to alice: Jenkins says it is bob's.
	if out := a.link(t, "alice", jenkinstest.SampleBobToken, 1); !strings.Contains(out, "alice") {
		t.Errorf("link of someone else's token: %q", out)
	}
	if out := a.link(t, "alice", "wrong-token", 1); !strings.Contains(out, "rejected") {
		t.Errorf("link of a wrong token: %q", out)
	}
	if out := a.link(t, "alice", jenkinstest.SampleAliceToken, 1, "--jenkins-user", "admin"); !strings.Contains(out, "maps to") {
		t.Errorf("link to another Jenkins user than the mapping: %q", out)
	}
	a.link(t, "alice", "", 2)
	// The database never holds a token in plaintext.
	db, err := os.ReadFile(strings.TrimPrefix(a.dsn, "sqlite:"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{jenkinstest.SampleAliceToken, jenkinstest.SampleBobToken, jenkinstest.SampleCarolToken} {
		if bytes.Contains(db, []byte(tok)) {
			t.Errorf("the SQLite file holds %q in plaintext", tok)
		}
	}
	out, _, code := runButler(t, []string{vaultKeyEnv}, "unlink", "--config", a.cfgPath, "--user", "carol")
	if code != 0 || !strings.Contains(out, "unlinked carol") {
		t.Errorf("unlink: %d %q", code, out)
	}
	if _, stderr, code := runButler(t, []string{vaultKeyEnv}, "unlink", "--config", a.cfgPath, "--user", "carol"); code != 1 || !strings.Contains(stderr, "no Jenkins credential") {
		t.Errorf("second unlink: %d %q", code, stderr)
	}
}

// TestServe_ConfusedDeputy: through the real server with stored per-user
// credentials, each user can do exactly what their Jenkins account may,
// and every Jenkins request made for a call carries the caller's own
// credential.
func TestServe_ConfusedDeputy(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	s := a.serve(t, addr)
	clients := map[string]*clientOf{}
	for _, u := range []string{"alice", "bob", "carol"} {
		cs, err := connectHTTP(t, s.url, a.token(t, u))
		if err != nil {
			t.Fatal(err)
		}
		clients[u] = &clientOf{user: u, call: func(tool string, args map[string]any) result { return callTool(t, cs, tool, args) }}
	}
	a.sim.ResetRequests()

	// bob (read only) cannot trigger anything.
	for _, job := range []string{"frontend/web-app", "backend/api", "prod/deploy"} {
		if r := clients["bob"].call("trigger_job", map[string]any{"job": job}); !strings.HasPrefix(r.text, "forbidden: ") {
			t.Errorf("bob trigger %s: %s", job, r.text)
		}
	}
	// alice builds in frontend, not in backend.
	if r := clients["alice"].call("trigger_job", map[string]any{"job": "frontend/web-app"}); r.isError {
		t.Errorf("alice trigger frontend: %s", r.text)
	}
	if r := clients["alice"].call("trigger_job", map[string]any{"job": "backend/api"}); !strings.HasPrefix(r.text, "forbidden: ") {
		t.Errorf("alice trigger backend: %s", r.text)
	}
	// Path tricks never reach another folder.
	for _, p := range []string{"frontend/../backend/api", "frontend/%2e%2e/backend/api", "frontend%2F..%2Fbackend%2Fapi", "frontend/\u2024\u2024/backend/api", "backend./api", "frontend\uff0f..\uff0fbackend/api"} {
		if r := clients["alice"].call("trigger_job", map[string]any{"job": p}); !r.isError || strings.Contains(r.text, "queue") {
			t.Errorf("alice trigger %q: %s", p, r.text)
		}
	}
	// carol: a hidden job answers exactly like a missing one.
	hidden := clients["carol"].call("get_job", map[string]any{"job": "backend/api"})
	missing := clients["carol"].call("get_job", map[string]any{"job": "backend/nope"})
	if !hidden.isError || strings.Replace(hidden.text, "backend/api", "X", 1) != strings.Replace(missing.text, "backend/nope", "X", 1) {
		t.Errorf("carol hidden %q vs missing %q", hidden.text, missing.text)
	}

	for _, r := range a.sim.Requests() {
		if r.Method == "POST" && r.User == "bob" && r.Status < 400 {
			t.Errorf("Jenkins accepted a POST from bob: %+v", r)
		}
		if r.User != "alice" && r.User != "bob" && r.User != "carol" {
			t.Errorf("Jenkins request not made as a calling user: %+v", r)
		}
	}
	// Each call's Jenkins requests carry the caller's own credential: the
	// only POSTs alice's successful trigger made were hers.
	var alicePosts int
	for _, r := range a.sim.Requests() {
		if r.Method == "POST" && r.Status < 400 && strings.Contains(r.Path, "web-app") {
			if r.User != "alice" {
				t.Errorf("trigger of web-app made as %q", r.User)
			}
			alicePosts++
		}
	}
	if alicePosts != 1 {
		t.Errorf("%d POSTs for alice's one trigger", alicePosts)
	}

	// Call by call: every Jenkins request made during a user's tool call
	// carries that user's credential and no other.
	calls := []struct {
		tool string
		args map[string]any
	}{
		{"list_all_jobs", nil},
		{"get_job", map[string]any{"job": "frontend/web-app"}},
		{"get_build", map[string]any{"job": "frontend/web-app"}},
		{"get_build_log", map[string]any{"job": "frontend/web-app", "tail_lines": 5}},
		{"search_build_log", map[string]any{"job": "frontend/web-app", "pattern": "Finished"}},
		{"get_test_results", map[string]any{"job": "frontend/web-app", "build": 6}},
		{"trigger_job", map[string]any{"job": "frontend/docs"}},
		{"get_queue_item", map[string]any{"queue_id": 1}},
		{"cancel_queue_item", map[string]any{"queue_id": 1}},
		{"stop_build", map[string]any{"job": "frontend/web-app", "build": 6}},
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		for _, c := range calls {
			a.sim.ResetRequests()
			clients[user].call(c.tool, c.args)
			reqs := a.sim.Requests()
			if len(reqs) == 0 && c.tool != "cancel_queue_item" {
				t.Errorf("%s %s made no Jenkins request", user, c.tool)
			}
			for _, r := range reqs {
				if r.User != user || r.Auth != "basic" {
					t.Errorf("during %s's %s, Jenkins got a request as %q (%s): %s %s", user, c.tool, r.User, r.Auth, r.Method, r.Path)
				}
			}
		}
	}
}

type clientOf struct {
	user string
	call func(tool string, args map[string]any) result
}

// TestServe_PolicyAndToolList: a policy forbid wins over Jenkins's
// permission, and tools/list shows each user and the guest only what they
// may call.
func TestServe_PolicyAndToolList(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	policy, err := filepath.Abs("../examples/policy.cedar")
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthzEnv(t, addr, "", "policy:\n  file: "+policy+"\n")
	s := startServe(t, addr, strings.Replace(mustRead(t, a.cfgPath), "auth:\n", "auth:\n  allow_guest: true\n", 1))

	// The test IdP gives alice "developers", bob "qa": under the example
	// policy alice may write outside prod, bob may only read.
	alice, err := connectHTTP(t, s.url, a.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	aliceTools := toolNames(t, s.url, a.token(t, "alice"))
	bobTools := toolNames(t, s.url, a.token(t, "bob"))
	guestTools := toolNames(t, s.url, "")
	if !contains(aliceTools, "trigger_job") || contains(bobTools, "trigger_job") || len(guestTools) != 1 || guestTools[0] != "health" {
		t.Errorf("tools/list: alice %v, bob %v, guest %v", aliceTools, bobTools, guestTools)
	}
	a.sim.ResetRequests()
	// alice (developers) may not write in prod under the example policy:
	// the forbid wins and Jenkins is never asked.
	r := callTool(t, alice, "trigger_job", map[string]any{"job": "prod/deploy", "parameters": map[string]any{"TARGET": "eu-west"}})
	if !strings.HasPrefix(r.text, "forbidden: ") || !strings.Contains(r.text, "prod-write-release-only") {
		t.Errorf("alice trigger prod: %s", r.text)
	}
	for _, req := range a.sim.Requests() {
		if req.Method == "POST" {
			t.Errorf("a policy denial reached Jenkins: %+v", req)
		}
	}
	if r := callTool(t, alice, "trigger_job", map[string]any{"job": "frontend/web-app"}); r.isError {
		t.Errorf("alice trigger frontend: %s", r.text)
	}
	// The audit record's request id and address come from the server, not
	// from headers a client can send.
	spoof := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + a.token(t, "alice"),
		"X-Butler-Remote-Addr": "203.0.113.66:1", "X-Request-Id": "spoofed-id"}, toolCallBody("whoami", nil))
	if spoof.StatusCode != 200 {
		t.Fatalf("whoami: %d", spoof.StatusCode)
	}
	for _, r := range a.waitAudit(t, func(r []map[string]any) bool { return len(r) > 0 }, "--tool", "whoami") {
		if r["remote_addr"] == "203.0.113.66:1" || r["request_id"] == "spoofed-id" {
			t.Errorf("audit record took client-supplied metadata: %v", r)
		}
	}
	// Records reach the store in batches, off the request path.
	recs := a.waitAudit(t, func(recs []map[string]any) bool { return len(recs) > 0 }, "--user", "alice", "--decision", "deny")
	if len(recs) == 0 || recs[0]["code"] != "forbidden" || !strings.Contains(recs[0]["reason"].(string), "prod-write-release-only") {
		t.Errorf("audit of the policy denial: %v", recs)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func toolNames(t *testing.T, url, token string) []string {
	t.Helper()
	cs, err := connectHTTP(t, url, token)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tool := range res.Tools {
		out = append(out, tool.Name)
	}
	return out
}

// TestServe_AuditOneRecordPerCallUnderLoad: 50 concurrent clients, each
// call audited exactly once; SIGTERM right after loses none.
func TestServe_AuditOneRecordPerCallUnderLoad(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "limits:\n  per_user_rps: 10000\n  burst: 10000\n")
	s := a.serve(t, addr)
	const clients, calls = 50, 4
	tokens := map[string]string{"alice": a.token(t, "alice"), "bob": a.token(t, "bob"), "carol": a.token(t, "carol")}
	users := []string{"alice", "bob", "carol"}
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user := users[i%3]
			cs, err := connectHTTP(t, s.url, tokens[user])
			if err != nil {
				t.Error(err)
				return
			}
			for j := range calls {
				tool, args := "get_job", map[string]any{"job": "frontend/web-app"}
				if j%2 == 1 {
					tool, args = "trigger_job", map[string]any{"job": "backend/api"} // denied for all three
				}
				callTool(t, cs, tool, args)
			}
		}()
	}
	wg.Wait()
	// Stop the server right away: queued records must still be written.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-s.done:
		s.done <- nil
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	var toolRecs int
	perDecision := map[string]int{}
	for _, r := range a.auditRecords(t) {
		if r["tool"] == "get_job" || r["tool"] == "trigger_job" {
			toolRecs++
			perDecision[r["decision"].(string)]++
		}
		if _, err := time.Parse("2006-01-02T15:04:05.000Z", r["time"].(string)); err != nil {
			t.Errorf("audit time %v is not RFC 3339 UTC with milliseconds", r["time"])
		}
	}
	if toolRecs != clients*calls {
		t.Errorf("%d audit records for %d tool calls", toolRecs, clients*calls)
	}
	// get_job is allowed for everyone; trigger_job of backend/api is
	// denied by Jenkins for alice and bob, and not_found (an error) for
	// carol, who cannot see backend.
	carolClients := clients / 3
	if perDecision["allow"] != clients*calls/2 || perDecision["deny"] != (clients-carolClients)*calls/2 || perDecision["error"] != carolClients*calls/2 {
		t.Errorf("decisions: %v", perDecision)
	}
}

// TestServe_TwoReplicasSharePostgres: two stateless `butler serve`
// replicas behind one public URL, on one PostgreSQL database, see the same
// linked credentials and write one audit log.
func TestServe_TwoReplicasSharePostgres(t *testing.T) {
	t.Parallel()
	dsn := postgresSchema(t)
	addr1, addr2 := freeAddr(t), freeAddr(t)
	a := newAuthzEnv(t, addr1, dsn, "")
	cfg := strings.Replace(mustRead(t, a.cfgPath), "server:\n", "server:\n  stateless: true\n", 1)
	r1 := startServe(t, addr1, cfg)
	// The second replica listens elsewhere but has the same public URL, as
	// behind a load balancer.
	r2 := startServe(t, addr2, strings.Replace(cfg, "  listen: "+addr1, "  listen: "+addr2, 1))

	tok := a.token(t, "alice")
	for _, s := range []*butlerServer{r1, r2} {
		cs, err := connectHTTP(t, s.url, tok)
		if err != nil {
			t.Fatal(err)
		}
		if r := callTool(t, cs, "get_job", map[string]any{"job": "frontend/web-app"}); r.isError {
			t.Errorf("%s: %s", s.url, r.text)
		}
	}
	if recs := a.waitAudit(t, func(r []map[string]any) bool { return len(r) >= 2 }, "--tool", "get_job"); len(recs) != 2 {
		t.Fatalf("shared audit log has %d get_job records, want 2 (one per replica)", len(recs))
	}
	// Unlinking through the shared store stops both replicas within 5 s.
	if _, stderr, code := runButler(t, []string{vaultKeyEnv}, "unlink", "--config", a.cfgPath, "--user", "alice"); code != 0 {
		t.Fatalf("unlink: %s", stderr)
	}
	time.Sleep(5100 * time.Millisecond)
	for _, s := range []*butlerServer{r1, r2} {
		cs, err := connectHTTP(t, s.url, tok)
		if err != nil {
			t.Fatal(err)
		}
		if r := callTool(t, cs, "get_job", map[string]any{"job": "frontend/web-app"}); !strings.HasPrefix(r.text, "jenkins_account_not_linked: ") {
			t.Errorf("%s after unlink: %s", s.url, r.text)
		}
	}
	// The database never holds a token in plaintext.
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var dump string
	if err := conn.QueryRow(context.Background(), "SELECT coalesce(string_agg(row_to_json(c)::text || encode(c.sealed, 'escape'), ''), '') FROM credentials c").Scan(&dump); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{jenkinstest.SampleBobToken, jenkinstest.SampleCarolToken} {
		if !strings.Contains(dump, "bob") || strings.Contains(dump, tok) {
			t.Errorf("credentials table: missing rows, or holding %q in plaintext", tok)
		}
	}
}

// postgresSchema returns a DSN for a fresh schema of the test PostgreSQL
// (BUTLER_TEST_POSTGRES_DSN), dropped when the test ends.
func postgresSchema(t *testing.T) string {
	t.Helper()
	base := os.Getenv("BUTLER_TEST_POSTGRES_DSN")
	if base == "" {
		t.Skip("set BUTLER_TEST_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/test to run the PostgreSQL tests")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("BUTLER_TEST_POSTGRES_DSN is set but PostgreSQL is unreachable: %v", err)
	}
	defer conn.Close(ctx)
	schema := fmt.Sprintf("butler_e2e_%d", time.Now().UnixNano())
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), base)
		if err == nil {
			_, _ = c.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
			c.Close(context.Background())
		}
	})
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	return base + sep + "search_path=" + schema
}
