package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// hostileVaultKeyEnv is the vault key of the hostile suite's processes: 32
// random bytes (fixed, so a failed run can be replayed), not the all-zero
// key of the other tests. Appended after vaultKeyEnv, it wins (os/exec
// keeps the last value of a duplicated variable).
const hostileVaultKeyEnv = "BUTLER_VAULT_KEY=c48uiyPKjpYrcSasvQqxO0xt3AI4mIukhwnDUzssV/E="

// hostileOpts shape one hostile deployment.
type hostileOpts struct {
	// Sim, if set, replaces the Sample simulator's options (Executors,
	// RootURL, ...).
	Sim *jenkinstest.Options
	// Server, Auth are YAML lines added under server: and auth: (each line
	// indented by two spaces by the caller); Extra is appended at the top
	// level (policy:, limits:).
	Server, Auth, Extra string
	// Issuer replaces the development IdP's issuer (an unreachable one).
	Issuer string
	// DSN replaces the SQLite file store.
	DSN string
	// Link are the users (of alice, bob and carol) linked with their
	// sample Jenkins tokens.
	Link []string
	// JenkinsTimeout is jenkins.timeout (default 3s).
	JenkinsTimeout string
}

// hostileEnv is a `butler serve` deployment for the hostile suite: the
// development IdP and a Jenkins simulator in this process, a config file,
// a store.
type hostileEnv struct {
	*idpEnv
	addr, dir, cfgPath, dsn string
	jenkins                 *httptest.Server
}

func newHostileEnv(t *testing.T, o hostileOpts) *hostileEnv {
	t.Helper()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	h := &hostileEnv{idpEnv: e, addr: addr, dir: t.TempDir()}
	if o.Sim != nil {
		e.sim = jenkinstest.Sample(o.Sim)
		h.jenkins = httptest.NewServer(e.sim)
		t.Cleanup(h.jenkins.Close)
		e.jenkinsURL = h.jenkins.URL + "/"
	}
	issuer := e.issuer
	if o.Issuer != "" {
		issuer = o.Issuer
	}
	h.dsn = o.DSN
	if h.dsn == "" {
		h.dsn = "sqlite:" + filepath.Join(h.dir, "butler.db")
	}
	cfg := fmt.Sprintf("server:\n  listen: %[1]s\n  public_url: http://%[1]s\n%[2]sauth:\n  issuer: %[3]s\n  jwks_min_refresh: 1s\n%[4]s"+
		"jenkins:\n  url: %[5]s\n  timeout: 3s\nstore:\n  dsn: %[6]q\nlog:\n  level: debug\n%[7]s",
		addr, o.Server, issuer, o.Auth, e.jenkinsURL, h.dsn, o.Extra)
	if o.JenkinsTimeout != "" {
		cfg = strings.Replace(cfg, "  timeout: 3s\n", "  timeout: "+o.JenkinsTimeout+"\n", 1)
	}
	h.cfgPath = filepath.Join(h.dir, "butler.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if len(o.Link) > 0 {
		tokens := map[string]string{"alice": jenkinstest.SampleAliceToken, "bob": jenkinstest.SampleBobToken, "carol": jenkinstest.SampleCarolToken}
		link := func(user string) error {
			cmd := exec.Command(butlerBin, "link", "--config", h.cfgPath, "--user", user)
			cmd.Env = append(os.Environ(), vaultKeyEnv, hostileVaultKeyEnv)
			cmd.Stdin = strings.NewReader(tokens[user] + "\n")
			if out, err := cmd.CombinedOutput(); err != nil {
				return fmt.Errorf("butler link --user %s: %v\n%s", user, err, out)
			}
			return nil
		}
		// The first `butler link` creates the store; the others then run
		// at once.
		if err := link(o.Link[0]); err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, len(o.Link))
		for _, u := range o.Link[1:] {
			go func() { errs <- link(u) }()
		}
		for range o.Link[1:] {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	return h
}

// serve starts `butler serve` on the env's config.
func (h *hostileEnv) serve(t *testing.T) *butlerServer {
	t.Helper()
	return startServe(t, h.addr, mustRead(t, h.cfgPath), hostileVaultKeyEnv)
}

// audit runs `butler audit --json --limit 10000` and decodes its lines.
func (h *hostileEnv) audit(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out, stderr, code := runButler(t, []string{vaultKeyEnv, hostileVaultKeyEnv}, append([]string{"audit", "--config", h.cfgPath, "--json", "--limit", "10000"}, args...)...)
	if code != 0 {
		t.Fatalf("butler audit: exit %d: %s", code, stderr)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 4<<20), 4<<20)
	for sc.Scan() {
		var r map[string]any
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// settledAudit waits (up to 10 s) until at least want records are stored,
// then a further settle for stragglers, and returns them all: a test that
// bounds the records from above sees every record that was going to come.
func (h *hostileEnv) settledAudit(t *testing.T, want int, settle time.Duration, args ...string) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if recs := h.audit(t, args...); len(recs) >= want || time.Now().After(deadline) {
			break
		}
		time.Sleep(150 * time.Millisecond)
	}
	time.Sleep(settle)
	return h.audit(t, args...)
}

// hostileRSS is the resident set size of process pid (VmRSS), in KiB.
func hostileRSS(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("reading the status of butler (pid %d): %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no VmRSS for pid %d", pid)
	return 0
}

// hostileScrape returns butler's /metrics.
func hostileScrape(t *testing.T, s *butlerServer) string {
	t.Helper()
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	return string(body)
}

// hostileMetric is the value of the unlabelled series name in a scrape.
func hostileMetric(t *testing.T, scraped, name string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(scraped)
	if m == nil {
		t.Fatalf("/metrics has no %s", name)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hostileGoroutines is butler's go_goroutines gauge.
func hostileGoroutines(t *testing.T, s *butlerServer) float64 {
	t.Helper()
	return hostileMetric(t, hostileScrape(t, s), "go_goroutines")
}

// hostileAnswer is what a raw MCP POST got back.
type hostileAnswer struct {
	status int
	header http.Header
	body   string
	// msgs are the JSON-RPC messages of the answer (a JSON body, or the
	// data lines of an event stream).
	msgs []map[string]any
}

// hostilePost posts body to /mcp with headers and reads the whole answer,
// bounded by a 30 s client timeout.
func hostilePost(t *testing.T, url string, headers map[string]string, body string) hostileAnswer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/mcp", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("POST /mcp: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	a := hostileAnswer{status: resp.StatusCode, header: resp.Header, body: string(data)}
	decode := func(b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return
		}
		if b[0] == '[' {
			var batch []map[string]any
			if json.Unmarshal(b, &batch) == nil {
				a.msgs = append(a.msgs, batch...)
			}
			return
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			a.msgs = append(a.msgs, m)
		}
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		for _, line := range strings.Split(a.body, "\n") {
			if d, ok := strings.CutPrefix(line, "data:"); ok {
				decode([]byte(d))
			}
		}
	} else {
		decode(data)
	}
	return a
}

// hostileHeaders are the headers of a request with token on session sid
// (either may be "").
func hostileHeaders(token, sid string) map[string]string {
	h := map[string]string{"Mcp-Protocol-Version": "2025-06-18"}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	if sid != "" {
		h["Mcp-Session-Id"] = sid
	}
	return h
}

// hostileSession initializes an MCP session over raw HTTP (token "" for a
// guest) and returns its id.
func hostileSession(t *testing.T, url, token string) string {
	t.Helper()
	a := hostilePost(t, url, hostileHeaders(token, ""), initializeBody)
	sid := a.header.Get("Mcp-Session-Id")
	if a.status != 200 || sid == "" {
		t.Fatalf("initialize: %d session %q: %s", a.status, sid, a.body)
	}
	if n := hostilePost(t, url, hostileHeaders(token, sid), `{"jsonrpc":"2.0","method":"notifications/initialized"}`); n.status != http.StatusAccepted {
		t.Fatalf("notifications/initialized: %d %s", n.status, n.body)
	}
	return sid
}

// rpcError is the JSON-RPC error code of the first message of a, or 0.
func (a hostileAnswer) rpcError() float64 {
	if len(a.msgs) == 0 {
		return 0
	}
	e, _ := a.msgs[0]["error"].(map[string]any)
	code, _ := e["code"].(float64)
	return code
}

// hostileProxy forwards connections to target until closed; close also cuts
// every connection in progress, as a network partition would.
type hostileProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func newHostileProxy(t *testing.T, target string) *hostileProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hostileProxy{ln: ln, target: target}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				u.Close()
				return
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *hostileProxy) addr() string { return p.ln.Addr().String() }

func (p *hostileProxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}
