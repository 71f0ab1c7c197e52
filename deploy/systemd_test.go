package deploy

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSystemd_UnitVerifiesAndIsSandboxed runs systemd-analyze verify (any
// complaint fails: it exits 0 on unknown keys and bad values) and
// systemd-analyze security on the unit, and pins the sandboxing the
// deployment guide promises.
func TestSystemd_UnitVerifiesAndIsSandboxed(t *testing.T) {
	sa := systemTool(t, "systemd-analyze", "systemd")
	unit, err := filepath.Abs("systemd/butler.service")
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"DynamicUser=yes", "ProtectSystem=strict", "StateDirectory=butler",
		"LoadCredential=vault-key:/etc/butler/credentials/vault-key", "NoNewPrivileges=yes", "CapabilityBoundingSet=\n",
		`$CREDENTIALS_DIRECTORY/vault-key`, "ExecStart=", "ExecStartPre="} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
	if strings.Contains(string(text), "BUTLER_VAULT_KEY=") && regexp.MustCompile(`(?m)^Environment=.*BUTLER_VAULT_KEY`).Match(text) {
		t.Error("the unit puts the vault key in Environment=")
	}
	// verify checks every directive and that the commands exist; run it on
	// a copy whose butler path is a real production binary.
	dir := t.TempDir()
	bin := productionButler(t)
	copyUnit := filepath.Join(dir, "butler.service")
	if err := os.WriteFile(copyUnit, []byte(strings.ReplaceAll(string(text), "/usr/local/bin/butler", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runErr(dir, []string{"SYSTEMD_LOG_LEVEL=notice"}, time.Minute, sa, "verify", copyUnit)
	if err != nil || strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = runErr(dir, nil, time.Minute, sa, "security", "--offline=yes", "--no-pager", copyUnit)
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for butler\.service: ([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no exposure level:\n%s", out)
	}
	level, _ := strconv.ParseFloat(m[1], 64)
	t.Logf("systemd-analyze security: exposure %.1f", level)
	if level > 2.0 {
		t.Errorf("exposure level %.1f, want at most 2.0 (OK):\n%s", level, out)
	}
}
