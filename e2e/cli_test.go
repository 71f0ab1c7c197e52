package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	key := "TEST_VAULT_KEY=" + strings.Repeat("A", 43) + "="
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
