package e2e

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
	_ "modernc.org/sqlite" // reads the audit table after the run

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// soakMix is what the soak's clients call, in turn.
var soakMix = []struct {
	tool string
	args map[string]any
}{
	{"whoami", nil},
	{"get_job", map[string]any{"job": "frontend/web-app"}},
	{"list_all_jobs", map[string]any{"limit": 20}},
	{"get_build", map[string]any{"job": "backend/api"}},
	{"get_build_log", map[string]any{"job": "backend/api", "tail_lines": 20}},
	{"search_build_log", map[string]any{"job": "backend/api", "pattern": "ERROR"}},
	{"get_test_results", map[string]any{"job": "backend/api"}},
}

// TestSoak drives `butler serve` with 50 concurrent MCP clients for
// BUTLER_SOAK_SECONDS (make soak: 300; CI: 60) on a mix of tools, then
// stops it with SIGTERM, and checks: no call failed, RSS and goroutines
// stayed flat (start, middle and end are logged), and the audit table holds
// exactly one record per call. It logs p50/p99 per tool. butler runs
// without the race detector here (its memory is what is measured).
func TestSoak(t *testing.T) {
	secs, _ := strconv.Atoi(os.Getenv("BUTLER_SOAK_SECONDS"))
	if secs <= 0 {
		t.Skip("set BUTLER_SOAK_SECONDS (make soak) to run the soak test")
	}
	const clients = 50
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	dir := t.TempDir()
	db := filepath.Join(dir, "butler.db")
	cfg := fmt.Sprintf(`server:
  listen: %[1]s
  public_url: http://%[1]s
  max_sessions_per_user: %[4]d
auth:
  issuer: %[2]s
jenkins:
  url: %[3]s
  timeout: 10s
store:
  dsn: sqlite:%[5]s
limits:
  per_user_rps: 100000
  burst: 100000
log:
  level: warn
`, addr, e.issuer, e.jenkinsURL, clients+10, db)
	cfgPath := filepath.Join(dir, "butler.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &authzEnv{idpEnv: e, dir: dir, cfgPath: cfgPath, dsn: "sqlite:" + db}
	a.link(t, "alice", jenkinstest.SampleAliceToken, 0)
	// The soak measures memory, so it runs butler as shipped: the race
	// detector's shadow memory grows with every goroutine the run has
	// started and would hide a leak, or fake one. Every other test runs
	// the race-detecting build.
	bin := filepath.Join(t.TempDir(), "butler")
	build := exec.Command("go", "build", "-o", bin, "../cmd/butler")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building butler without the race detector: %v\n%s", err, out)
	}
	s := startServeBin(t, bin, addr, cfg)
	token := e.token(t, "alice")

	sessions := make([]*mcp.ClientSession, clients)
	for i := range sessions {
		cs, err := connectHTTP(t, s.url, token)
		if err != nil {
			t.Fatal(err)
		}
		sessions[i] = cs
	}
	type sample struct {
		rssKB, goroutines int64
	}
	measure := func() sample {
		return sample{rssKB: rssKB(t, s.cmd.Process.Pid), goroutines: gauge(t, s.url, "go_goroutines")}
	}
	var (
		calls, failures atomic.Int64
		throttled       atomic.Int64 // searches refused for the per-user bound
		mu              sync.Mutex
		latency         = map[string][]time.Duration{}
	)
	ctx, stop := context.WithTimeout(context.Background(), time.Duration(secs)*time.Second)
	defer stop()
	// Warm up, then take the first sample.
	for _, cs := range sessions[:5] {
		for _, m := range soakMix {
			if _, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: m.tool, Arguments: m.args}); err != nil {
				t.Fatal(err)
			}
			calls.Add(1)
		}
	}
	start := measure()
	var samples []sample
	go func() {
		tick := time.NewTicker(time.Duration(secs) * time.Second / 2)
		defer tick.Stop()
		select {
		case <-tick.C:
			mu.Lock()
			samples = append(samples, measure())
			mu.Unlock()
		case <-ctx.Done():
		}
	}()
	var wg sync.WaitGroup
	for i, cs := range sessions {
		wg.Go(func() {
			for n := i; ctx.Err() == nil; n++ {
				m := soakMix[n%len(soakMix)]
				t0 := time.Now()
				res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: m.tool, Arguments: m.args})
				d := time.Since(t0)
				calls.Add(1)
				if wait, ok := searchThrottled(m.tool, res); ok {
					// Fifty clients of one user run more searches at once
					// than one user may (tools.MaxSearchesPerUser): the
					// refusal is the bound working, and the client does
					// what it says, waits and goes on.
					throttled.Add(1)
					select {
					case <-time.After(wait):
					case <-ctx.Done():
					}
					continue
				}
				if err != nil || res.IsError {
					if failures.Add(1) <= 5 {
						t.Errorf("%s: %v %v", m.tool, err, res)
					}
					continue
				}
				mu.Lock()
				latency[m.tool] = append(latency[m.tool], d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	end := measure()
	for _, cs := range sessions {
		cs.Close()
	}
	mu.Lock()
	middle := start
	if len(samples) > 0 {
		middle = samples[0]
	}
	mu.Unlock()
	t.Logf("soak: %d clients, %d s, %d calls (%.0f/s), %d failed, %d searches refused for the per-user bound and retried",
		clients, secs, calls.Load(), float64(calls.Load())/float64(secs), failures.Load(), throttled.Load())
	t.Logf("RSS MiB start/middle/end: %.1f / %.1f / %.1f; goroutines: %d / %d / %d",
		float64(start.rssKB)/1024, float64(middle.rssKB)/1024, float64(end.rssKB)/1024, start.goroutines, middle.goroutines, end.goroutines)
	for _, m := range soakMix {
		d := latency[m.tool]
		slices.Sort(d)
		if len(d) == 0 {
			continue
		}
		t.Logf("%-18s n=%6d p50=%8s p99=%8s", m.tool, len(d), d[len(d)/2].Round(time.Microsecond), d[len(d)*99/100].Round(time.Microsecond))
	}
	if failures.Load() != 0 {
		t.Errorf("%d calls failed", failures.Load())
	}
	// Flat: the end is within 25 % (and 16 MiB) of the middle, goroutines
	// within 100, once the load's working set is reached.
	if end.rssKB > middle.rssKB*5/4+16<<10 {
		t.Errorf("RSS grew from %d KiB (middle) to %d KiB (end)", middle.rssKB, end.rssKB)
	}
	if end.goroutines > middle.goroutines+100 {
		t.Errorf("goroutines grew from %d (middle) to %d (end)", middle.goroutines, end.goroutines)
	}
	// SIGTERM flushes every record; then the table must hold one per call.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		s.done <- err // for startServe's cleanup
	case <-time.After(60 * time.Second):
		t.Fatal("butler serve did not stop within 60 s of SIGTERM")
	}
	conn, err := sql.Open("sqlite", "file:"+db+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var rows int64
	if err := conn.QueryRow(`SELECT count(*) FROM audit_records WHERE tool <> ''`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if rows != calls.Load() {
		t.Errorf("the audit table holds %d tool records for %d calls", rows, calls.Load())
	}
}

// rssKB is the resident set size of process pid, in KiB.
func rssKB(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return n
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// gauge reads one unlabelled gauge from /metrics.
func gauge(t *testing.T, base, name string) int64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return int64(f)
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// searchThrottled reports whether res is search_build_log's refusal for
// the per-user or per-server bound on concurrent searches, and how long it
// says to wait.
func searchThrottled(tool string, res *mcp.CallToolResult) (time.Duration, bool) {
	if tool != "search_build_log" || res == nil || !res.IsError {
		return 0, false
	}
	out, _ := res.StructuredContent.(map[string]any)
	e, _ := out["error"].(map[string]any)
	if e["code"] != "rate_limited" {
		return 0, false
	}
	secs, _ := e["retry_after_seconds"].(float64)
	return time.Duration(min(max(secs, 0.1), 2) * float64(time.Second)), true
}
