package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

func runButler(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(butlerBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

func TestVersion(t *testing.T) {
	t.Parallel()
	out, _, code := runButler(t, nil, "version")
	if code != 0 || !strings.Contains(out, "butler ") || !strings.Contains(out, "go go1.") {
		t.Errorf("version: %d %q", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{}, {"nosuch"}, {"stdio"}, {"stdio", "--bogus"}, {"check-config"}, {"demo", "--user", "eve"}, {"demo", "--jenkins-listen", "0.0.0.0:0"}} {
		_, stderr, code := runButler(t, nil, args...)
		if code != 2 || stderr == "" {
			t.Errorf("butler %v: exit %d, stderr %q; want 2 with a message", args, code, stderr)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("server:\n  public_url: https://butler.example.com\nauth:\n  issuer: https://idp.example.com\njenkins:\n  url: https://jenkins.example.com\nstore:\n  vault_key: ${TEST_VAULT_KEY}\n"), 0o600)
	key := "TEST_VAULT_KEY=" + e2eVaultKey
	if out, stderr, code := runButler(t, []string{key}, "check-config", "--config", good); code != 0 {
		t.Errorf("good config: exit %d\n%s%s", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("server:\n  public_url: ftp://x\n  lisen: 1\nauth:\n  algorithms: [none, HS256]\njenkins:\n  url: \"\"\n"), 0o600)
	_, stderr, code := runButler(t, nil, "check-config", "--config", bad)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != 1 || len(lines) < 3 {
		t.Errorf("bad config: exit %d, %d problem lines:\n%s", code, len(lines), stderr)
	}
	for _, want := range []string{"lisen", "none"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("problems do not mention %q:\n%s", want, stderr)
		}
	}
	stdioCfg := filepath.Join(dir, "stdio.yaml")
	os.WriteFile(stdioCfg, []byte("jenkins:\n  url: http://127.0.0.1:8080/\n"), 0o600)
	if _, stderr, code := runButler(t, []string{"JENKINS_USER=alice", "JENKINS_API_TOKEN=t"}, "check-config", "--config", stdioCfg, "--mode", "stdio"); code != 0 {
		t.Errorf("stdio config: exit %d: %s", code, stderr)
	}
	if _, _, code := runButler(t, []string{"JENKINS_USER=", "JENKINS_API_TOKEN="}, "check-config", "--config", stdioCfg, "--mode", "stdio"); code != 1 {
		t.Errorf("stdio config without credential: exit %d, want 1", code)
	}
}

func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy, _ := filepath.Abs("../examples/policy.cedar")
	cfg := filepath.Join(dir, "butler.yaml")
	os.WriteFile(cfg, []byte("policy:\n  file: "+policy+"\n"), 0o600)
	for _, tc := range []struct {
		args      []string
		code      int
		firstLine string
	}{
		{[]string{"--user", "alice", "--group", "developers", "--tool", "trigger_job", "--job", "frontend/web-app"}, 0, "allow developers-write-outside-prod"},
		{[]string{"--user", "alice", "--group", "developers", "--tool", "trigger_job", "--job", "prod/deploy"}, 3, "deny prod-write-release-only"},
		{[]string{"--user", "bob", "--group", "release", "--tool", "trigger_job", "--job", "prod/deploy"}, 0,
			"allow (needs confirmation: This starts a build in production.) release-write-prod prod-trigger-confirm"},
		{[]string{"--user", "bob", "--group", "release", "--tool", "stop_build", "--job", "prod/deploy"}, 0, "allow release-write-prod"},
		{[]string{"--user", "dave", "--tool", "trigger_job", "--job", "frontend/web-app"}, 3, "deny"},
		{[]string{"--user", "dave", "--tool", "get_job", "--job", "backend/api"}, 0, "allow users-read"},
		{[]string{"--guest", "--tool", "health"}, 0, "allow guest-health"},
		{[]string{"--guest", "--tool", "whoami"}, 3, "deny"},
		{[]string{"--user", "alice", "--group", "developers", "--scope", "jenkins:read", "--tool", "trigger_job", "--job", "frontend/web-app"}, 3, "deny"},
	} {
		out, stderr, code := runButler(t, nil, append([]string{"policy", "explain", "--config", cfg}, tc.args...)...)
		first, _, _ := strings.Cut(out, "\n")
		if code != tc.code || first != tc.firstLine {
			t.Errorf("policy explain %v: exit %d, first line %q (stderr %q); want %d %q", tc.args, code, first, stderr, tc.code, tc.firstLine)
		}
	}
	// The built-in default: users may call everything, guests only health.
	os.WriteFile(cfg, []byte("log:\n  level: warn\n"), 0o600)
	if out, _, code := runButler(t, nil, "policy", "explain", "--config", cfg, "--user", "x", "--tool", "stop_build", "--job", "a/b"); code != 0 || !strings.HasPrefix(out, "allow ") {
		t.Errorf("default policy: %d %q", code, out)
	}
	if _, _, code := runButler(t, nil, "policy", "explain", "--config", cfg, "--user", "x", "--tool", "nosuch"); code != 2 {
		t.Errorf("unknown tool: exit %d, want 2", code)
	}
}

func TestCheckConfig_Policy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.cedar")
	os.WriteFile(bad, []byte("permit (principal, action == Action::\"trigger\", resource);\nforbid (principal is Robot, action, resource);\n"), 0o600)
	cfg := filepath.Join(dir, "butler.yaml")
	os.WriteFile(cfg, []byte("jenkins:\n  url: http://127.0.0.1:1/\npolicy:\n  file: "+bad+"\n"), 0o600)
	_, stderr, code := runButler(t, []string{"JENKINS_USER=alice", "JENKINS_API_TOKEN=t"}, "check-config", "--config", cfg, "--mode", "stdio")
	if code != 1 || !strings.Contains(stderr, "trigger") || !strings.Contains(stderr, "Robot") || !strings.Contains(stderr, "bad.cedar:1") {
		t.Errorf("bad policy: exit %d\n%s", code, stderr)
	}
	good, _ := filepath.Abs("../examples/policy.cedar")
	os.WriteFile(cfg, []byte("jenkins:\n  url: http://127.0.0.1:1/\npolicy:\n  file: "+good+"\n"), 0o600)
	if _, stderr, code := runButler(t, []string{"JENKINS_USER=alice", "JENKINS_API_TOKEN=t"}, "check-config", "--config", cfg, "--mode", "stdio"); code != 0 {
		t.Errorf("example policy: exit %d\n%s", code, stderr)
	}
}

func TestAuditCommand_Filters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dsn := "sqlite:" + filepath.Join(dir, "audit.db")
	st, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	var recs []audit.Record
	for i, r := range []struct{ user, tool, decision string }{
		{"alice", "get_job", "allow"}, {"bob", "trigger_job", "deny"}, {"alice", "trigger_job", "allow"},
		{"carol", "get_job", "error"}, {"alice", "get_build", "allow"},
	} {
		recs = append(recs, audit.Record{Time: now.Add(time.Duration(i-10) * time.Minute), RequestID: fmt.Sprint("r", i), User: r.user, Tool: r.tool, Decision: r.decision, Code: "", Reason: "ok"})
	}
	recs = append(recs, audit.Record{Time: now.Add(-3 * time.Hour), RequestID: "old", User: "alice", Tool: "get_job", Decision: "allow"})
	if err := st.AppendAudit(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	st.Close()
	cfg := filepath.Join(dir, "butler.yaml")
	os.WriteFile(cfg, []byte("store:\n  dsn: "+dsn+"\n"), 0o600)
	ids := func(args ...string) []string {
		out, stderr, code := runButler(t, nil, append([]string{"audit", "--config", cfg, "--json"}, args...)...)
		if code != 0 {
			t.Fatalf("audit %v: %d %s", args, code, stderr)
		}
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r map[string]any
			if line == "" {
				continue
			}
			json.Unmarshal([]byte(line), &r)
			got = append(got, r["request_id"].(string))
		}
		return got
	}
	check := func(got []string, want ...string) {
		t.Helper()
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Errorf("got %v, want %v", got, want)
		}
	}
	check(ids(), "r4", "r3", "r2", "r1", "r0", "old") // newest first
	check(ids("--user", "alice"), "r4", "r2", "r0", "old")
	check(ids("--tool", "trigger_job"), "r2", "r1")
	check(ids("--decision", "deny"), "r1")
	check(ids("--since", "1h"), "r4", "r3", "r2", "r1", "r0")
	check(ids("--limit", "2"), "r4", "r3")
	check(ids("--user", "alice", "--tool", "get_job", "--since", "1h"), "r0")
	out, _, code := runButler(t, nil, "audit", "--config", cfg, "--limit", "1")
	if code != 0 || !strings.HasPrefix(out, "TIME") || !strings.Contains(out, "get_build") {
		t.Errorf("text output: %q", out)
	}
	if _, _, code := runButler(t, nil, "audit", "--config", cfg, "--decision", "maybe"); code != 2 {
		t.Errorf("bad --decision: exit %d", code)
	}
}
