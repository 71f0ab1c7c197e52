package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// demoOnly are the packages and modules that only the demo needs: the
// production build (-tags nodemo) must not carry them.
var (
	demoOnlyPackages = []string{
		"github.com/butler-mcp/butler/internal/demo",
		"github.com/butler-mcp/butler/internal/devidp",
		"github.com/butler-mcp/butler/internal/jenkinstest",
	}
	// go.opentelemetry.io/otel was on this list while only the dev IdP
	// (zitadel/oidc) pulled it in; it is a production dependency since
	// Butler exports traces (telemetry.traces), so it is no longer here.
	demoOnlyModules = []string{"github.com/zitadel/oidc/v3", "github.com/go-chi/chi/v5"}
)

// TestProductionBuild_HasNoDemoCode pins that `go build -tags nodemo`
// leaves out the simulator, the development IdP, the demo tokens and the
// modules only they need, and that its `butler demo` says so.
func TestProductionBuild_HasNoDemoCode(t *testing.T) {
	t.Parallel()
	deps, err := exec.Command("go", "list", "-deps", "-tags", "nodemo", "../cmd/butler").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range demoOnlyPackages {
		if strings.Contains(string(deps), p+"\n") {
			t.Errorf("the nodemo build imports %s", p)
		}
	}
	bin := filepath.Join(t.TempDir(), "butler")
	if out, err := exec.Command("go", "build", "-tags", "nodemo", "-o", bin, "../cmd/butler").CombinedOutput(); err != nil {
		t.Fatalf("go build -tags nodemo: %v\n%s", err, out)
	}
	mods, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range demoOnlyModules {
		if strings.Contains(string(mods), m) {
			t.Errorf("the nodemo binary carries module %s", m)
		}
	}
	cmd := exec.Command(bin, "demo")
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "without the demo") {
		t.Errorf("nodemo `butler demo`: %v %q; want exit 2 saying the demo is not in this build", err, out)
	}
	// The development build still has it (the README's first command).
	dev, err := exec.Command("go", "list", "-deps", "../cmd/butler").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(dev), demoOnlyPackages[0]+"\n") {
		t.Error("the default build lost the demo")
	}
}

// TestHelp_GoesToStdoutAndExitsZero pins -h for every command: usage on
// stdout, nothing on stderr, exit 0.
func TestHelp_GoesToStdoutAndExitsZero(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}, {"serve", "-h"}, {"stdio", "-h"}, {"link", "-h"},
		{"unlink", "-h"}, {"audit", "-h"}, {"check-config", "-h"}, {"policy", "-h"}, {"policy", "explain", "-h"},
		{"version", "-h"}, {"demo", "-h"}, {"demo", "token", "-h"}} {
		out, stderr, code := runButler(t, nil, args...)
		if code != 0 || !strings.Contains(out, "Usage") || stderr != "" {
			t.Errorf("butler %v: exit %d, stdout %q, stderr %q; want usage on stdout and exit 0", args, code, out, stderr)
		}
	}
}

// TestUsageErrors_AreOneLine pins that a bad flag or argument is one line
// on stderr (no usage dump) with exit 2, and that no error prefix is
// doubled ("butler demo: demo: ...").
func TestUsageErrors_AreOneLine(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"stdio", "--bogus"}, {"serve", "--config"}, {"audit", "--limit", "x"},
		{"demo", "--user", "eve"}, {"demo", "--jenkins-listen", "0.0.0.0:0"}, {"policy", "nosuch"}, {"version", "extra"}} {
		_, stderr, code := runButler(t, nil, args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != 2 || len(lines) != 1 || lines[0] == "" {
			t.Errorf("butler %v: exit %d, stderr %q; want exit 2 and one line", args, code, stderr)
		}
		if name := "butler " + args[0] + ": "; strings.Count(stderr, args[0]+": ") > 1 || !strings.HasPrefix(stderr, name) {
			t.Errorf("butler %v: stderr %q; want one %q prefix", args, stderr, name)
		}
	}
}

// TestAudit_MistypedSQLitePathIsRefused pins that `butler audit` (and
// unlink) on a SQLite file that does not exist fails instead of creating an
// empty database and printing nothing.
func TestAudit_MistypedSQLitePathIsRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db := filepath.Join(dir, "butlr.db")
	cfg := filepath.Join(dir, "butler.yaml")
	if err := os.WriteFile(cfg, []byte("jenkins:\n  url: http://127.0.0.1:1/\nstore:\n  dsn: sqlite:"+db+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"audit", "--config", cfg}, {"unlink", "--config", cfg, "--user", "alice"}} {
		_, stderr, code := runButler(t, nil, args...)
		if code != 1 || !strings.Contains(stderr, "does not exist") {
			t.Errorf("butler %v: exit %d %q; want 1 saying the database does not exist", args, code, stderr)
		}
	}
	if _, err := os.Stat(db); !os.IsNotExist(err) {
		t.Errorf("a database file was created: %v", err)
	}
}

// TestDemo_TwoDemosKeepTheirOwnState pins that two demos under one user
// never share a state file: `butler demo token` asks which one while both
// run, and stopping one leaves the other reachable.
func TestDemo_TwoDemosKeepTheirOwnState(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache")}
	first := freeAddr(t)
	startDemoIn(t, first, home)
	t.Run("second running", func(t *testing.T) {
		second := freeAddr(t)
		startDemoIn(t, second, home)
		if _, stderr, code := runButler(t, env, "demo", "token", "--user", "bob"); code != 1 || !strings.Contains(stderr, "2 demos are running") {
			t.Errorf("demo token with two demos: exit %d %q; want a request to name one", code, stderr)
		}
		for _, addr := range []string{first, second} {
			if out, stderr, code := runButler(t, env, "demo", "token", "--user", "bob", "--listen", addr); code != 0 || strings.Count(out, ".") != 2 {
				t.Errorf("demo token --listen %s: exit %d %q %s", addr, code, out, stderr)
			}
		}
	})
	// The second demo has stopped; the first one's state is intact.
	if out, stderr, code := runButler(t, env, "demo", "token", "--user", "bob"); code != 0 || strings.Count(out, ".") != 2 {
		t.Errorf("demo token after the second demo stopped: exit %d %q %s", code, out, stderr)
	}
}

// TestAudit_TableEscapesControlCharacters pins that `butler audit`'s table
// shows control characters escaped: a tool name or reason a client chose
// can neither forge a row nor drive the terminal.
func TestAudit_TableEscapesControlCharacters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "audit.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	forged := "x\n2026-01-01T00:00:00Z  allow  admin  trigger_job  prod/deploy\x1b[2J\x1b[31m\r\t\u202e"
	if err := st.AppendAudit(context.Background(), []audit.Record{{Time: time.Now(), RequestID: "r", User: "mallory" + forged,
		Tool: "unknown", Resource: forged, Decision: "error", Code: "invalid_argument", Reason: "tool " + forged}}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := filepath.Join(dir, "butler.yaml")
	if err := os.WriteFile(cfg, []byte("store:\n  dsn: "+dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runButler(t, nil, "audit", "--config", cfg)
	if code != 0 {
		t.Fatalf("audit: %d %s", code, stderr)
	}
	if lines := strings.Split(strings.TrimRight(out, "\n"), "\n"); len(lines) != 2 {
		t.Errorf("the table has %d lines for one record, want a header and one row:\n%s", len(lines), out)
	}
	for _, c := range []string{"\x1b", "\r", "\u202e"} {
		if strings.Contains(out, c) {
			t.Errorf("the table holds a raw %q", c)
		}
	}
}

// TestDemo_NewTeamMemberIsNotLinked pins the demo's onboarding story: dave
// starts without a linked Jenkins token, so his agent's call is refused
// with the demo's link page, where he can link his own.
func TestDemo_NewTeamMemberIsNotLinked(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := []string{"HOME=" + home, "XDG_CACHE_HOME=" + filepath.Join(home, "cache")}
	addr := freeAddr(t)
	mcpURL, _ := startDemoIn(t, addr, home)
	token, stderr, code := runButler(t, env, "demo", "token", "--user", "dave", "--listen", addr)
	if code != 0 {
		t.Fatalf("demo token --user dave: exit %d %s", code, stderr)
	}
	cs, err := connectHTTP(t, strings.TrimSuffix(mcpURL, "/mcp"), strings.TrimSpace(token))
	if err != nil {
		t.Fatal(err)
	}
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}})
	if err != nil {
		t.Fatal(err)
	}
	out, _ := res.StructuredContent.(map[string]any)
	e, _ := out["error"].(map[string]any)
	if !res.IsError || e["code"] != "jenkins_account_not_linked" || !strings.HasSuffix(fmt.Sprint(e["connect_url"]), "/connect") {
		t.Fatalf("dave's first call: %+v", res.StructuredContent)
	}
}
