package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // counts the audit records in PostgreSQL
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// Fault tests take dependencies away under `butler serve` and check that it
// fails cleanly and recovers without a restart. They stop and start shared
// services (Redis), so they run only with BUTLER_FAULTS=1 (make faults),
// one at a time.
func faultsOnly(t *testing.T) {
	if os.Getenv("BUTLER_FAULTS") != "1" {
		t.Skip("set BUTLER_FAULTS=1 (make faults) to run the fault tests")
	}
}

// switchable is an HTTP handler that can be taken down: while down, every
// connection is closed without an answer, as an unreachable server's
// would be.
type switchable struct {
	h    http.Handler
	down atomic.Bool
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.down.Load() {
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	s.h.ServeHTTP(w, r)
}

// TestFault_IdPDown: with the identity provider unreachable, tokens signed
// with cached keys keep working; a token signed with a key Butler has not
// seen gets 503 with Retry-After (not 401: the token may be fine); when the
// IdP returns, that token works, without a restart.
func TestFault_IdPDown(t *testing.T) {
	faultsOnly(t)
	addr := freeAddr(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}},
		Resources: []string{"http://" + addr + "/mcp"}, Scopes: []string{"jenkins:read", "jenkins:build"}})
	if err != nil {
		t.Fatal(err)
	}
	sw := &switchable{h: idp.Handler()}
	srv := &http.Server{Handler: sw}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close(); idp.Close() })
	e := &idpEnv{idp: idp, issuer: issuer}
	sim := jenkinstest.Sample(nil)
	hs := newHTTPTestServer(t, sim)
	e.sim, e.jenkinsURL = sim, hs+"/"
	s := startServe(t, addr, serveConfig(addr, e, ""))
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`
	status := func(tok string) (int, string) {
		resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + tok}, body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}
	cached := e.token(t, "alice")
	if code, _ := status(cached); code != http.StatusOK {
		t.Fatalf("before the outage: %d", code)
	}
	if _, _, err := idp.RotateKey(); err != nil {
		t.Fatal(err)
	}
	unseen := e.token(t, "alice") // signed with a key Butler has not fetched
	sw.down.Store(true)
	if code, _ := status(cached); code != http.StatusOK {
		t.Errorf("IdP down: a token of a cached key got %d, want 200", code)
	}
	time.Sleep(1100 * time.Millisecond) // past jwks_min_refresh
	if code, retry := status(unseen); code != http.StatusServiceUnavailable || retry == "" {
		t.Errorf("IdP down: a token of an unknown key got %d (Retry-After %q), want 503 with Retry-After", code, retry)
	}
	sw.down.Store(false)
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, _ := status(unseen)
		if code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the IdP came back the new key's token still gets %d", code)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func newHTTPTestServer(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

// TestFault_JenkinsDownAndSlow: with Jenkins unreachable, or slower than
// jenkins.timeout, calls fail with jenkins_unavailable within the timeout;
// when it returns they succeed again.
func TestFault_JenkinsDownAndSlow(t *testing.T) {
	faultsOnly(t)
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "")
	s := a.serve(t, addr)
	cs, err := connectHTTP(t, s.url, a.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	if r := callTool(t, cs, "get_job", map[string]any{"job": "frontend/web-app"}); r.isError {
		t.Fatalf("before: %s", r.text)
	}
	for name, fault := range map[string]jenkinstest.Fault{"down (503)": {Status: 503}, "slow": {Delay: 5 * time.Second}} {
		a.sim.SetFault(fault)
		t0 := time.Now()
		r := callTool(t, cs, "get_job", map[string]any{"job": "frontend/web-app"})
		took := time.Since(t0)
		if !r.isError || !strings.HasPrefix(r.text, "jenkins_unavailable") || took > 4500*time.Millisecond {
			t.Errorf("Jenkins %s: %q after %s, want jenkins_unavailable within jenkins.timeout (3s)", name, r.text, took)
		}
		a.sim.SetFault(jenkinstest.Fault{})
		if r := callTool(t, cs, "get_job", map[string]any{"job": "frontend/web-app"}); r.isError {
			t.Errorf("after Jenkins %s recovered: %s", name, r.text)
		}
	}
}

// TestFault_RedisDown: with Redis stopped, the shared rate limit falls back
// to each replica's own and calls go on; when Redis is back, the shared
// budget applies again.
func TestFault_RedisDown(t *testing.T) {
	faultsOnly(t)
	redisURL := os.Getenv("BUTLER_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("needs BUTLER_TEST_REDIS_URL")
	}
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, "", "limits:\n  per_user_rps: 1000\n  burst: 1000\n  redis_url: "+redisURL+"\n")
	s := a.serve(t, addr)
	cs, err := connectHTTP(t, s.url, a.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	call := func() result { return callTool(t, cs, "whoami", nil) }
	if r := call(); r.isError {
		t.Fatalf("before: %s", r.text)
	}
	// redis-cli reports the closed connection of a shutdown as an error.
	_ = exec.Command("redis-cli", "-h", "127.0.0.1", "-p", "6379", "shutdown", "nosave").Run()
	t.Cleanup(startRedis)
	for range 5 {
		if r := call(); r.isError {
			t.Errorf("Redis down: %s, want the call served on the replica's own limit", r.text)
		}
	}
	startRedis()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		if out, _ := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping").Output(); strings.TrimSpace(string(out)) == "PONG" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := call(); r.isError {
		t.Errorf("after Redis came back: %s", r.text)
	}
}

// startRedis starts the machine's Redis as it is started before a session.
func startRedis() {
	if out, _ := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", "6379", "ping").Output(); strings.TrimSpace(string(out)) == "PONG" {
		return
	}
	_ = exec.Command("redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port", "6379", "--save", "",
		"--appendonly", "no", "--dir", "/var/lib/redis", "--logfile", "/var/log/redis/ci.log").Run()
	time.Sleep(500 * time.Millisecond)
}

// TestFault_PostgresRestartedUnderLoad: butler serve on PostgreSQL keeps
// answering while the database restarts under load (calls during the outage
// fail cleanly, never hang), recovers without a restart, and loses no audit
// record: each call's record is buffered and written once the database is
// back. It restarts the machine's PostgreSQL cluster.
func TestFault_PostgresRestartedUnderLoad(t *testing.T) {
	faultsOnly(t)
	dsn := os.Getenv("BUTLER_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("needs BUTLER_TEST_POSTGRES_DSN")
	}
	// A schema of its own, so the count is this test's records only.
	schema := fmt.Sprintf("fault_%d", time.Now().UnixNano())
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	scoped := dsn + sep + "search_path=" + schema
	addr := freeAddr(t)
	a := newAuthzEnv(t, addr, scoped, "limits:\n  per_user_rps: 100000\n  burst: 100000\n")
	s := a.serve(t, addr)
	cs, err := connectHTTP(t, s.url, a.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	var calls, failed atomic.Int64
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			t0 := time.Now()
			r, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "whoami"})
			calls.Add(1)
			if err != nil || r.IsError {
				failed.Add(1)
			}
			if d := time.Since(t0); d > 8*time.Second {
				t.Errorf("a call during the outage took %s", d)
			}
		}
	}()
	time.Sleep(2 * time.Second)
	cluster := "15"
	if out, err := exec.Command("bash", "-c", "ls /etc/postgresql").Output(); err == nil {
		cluster = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart").CombinedOutput(); err != nil {
		t.Fatalf("restarting PostgreSQL: %v %s", err, out)
	}
	time.Sleep(5 * time.Second)
	stop()
	<-done
	// Recovered without a restart.
	if r := callTool(t, cs, "whoami", nil); r.isError {
		t.Errorf("after the restart: %s", r.text)
	}
	calls.Add(1)
	t.Logf("%d calls during the run, %d failed cleanly", calls.Load(), failed.Load())
	// SIGTERM flushes the buffer; every call has its record.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err
	case <-time.After(60 * time.Second):
		t.Fatal("butler serve did not stop")
	}
	var rows int64
	if err := admin.QueryRow("SELECT count(*) FROM " + schema + ".audit_records WHERE tool = 'whoami'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != calls.Load() {
		t.Errorf("%d audit records for %d calls: records were lost", rows, calls.Load())
	}
}
