package deploy

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestRelease_GoReleaserCheckAndSnapshot runs `goreleaser check` on
// .goreleaser.yaml, then `goreleaser release --snapshot` twice for this
// machine's platform (the full matrix, linux/darwin/windows × amd64/arm64,
// is `make release-snapshot`: six cross builds are too slow for CI on two
// cores) and checks what it made: an archive with the production binary
// carrying version, commit and date, a CycloneDX SBOM, checksums that
// match, and the same bytes both times (reproducible).
func TestRelease_GoReleaserCheckAndSnapshot(t *testing.T) {
	goreleaser := goTool(t, "goreleaser")
	cdx := goTool(t, "cyclonedx-gomod")
	root := repoRoot(t)
	if fi, err := os.Stat(filepath.Join(root, ".git")); err == nil && !fi.IsDir() {
		// cyclonedx-gomod reads the main module's version with go-git,
		// which cannot resolve HEAD in a linked worktree ("git: reference
		// not found"); CI runs in a clone.
		missing(t, "%s is a linked git worktree, where cyclonedx-gomod cannot read the module's version: run this test in a clone", root)
	}
	env := []string{"PATH=" + filepath.Dir(cdx) + string(os.PathListSeparator) + os.Getenv("PATH")}
	out := run(t, root, env, 2*time.Minute, goreleaser, "check", "--config", ".goreleaser.yaml")
	t.Logf("goreleaser check: %s", strings.TrimSpace(lastLine(out)))

	data, err := os.ReadFile(filepath.Join(root, ".goreleaser.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	builds := cfg["builds"].([]any)
	b := builds[0].(map[string]any)
	for _, want := range []string{"linux", "darwin", "windows"} {
		if !strings.Contains(strings.Join(toStrings(b["goos"]), " "), want) {
			t.Errorf("the release does not build for %s", want)
		}
	}
	if strings.Join(toStrings(b["goarch"]), " ") != "amd64 arm64" || strings.Join(toStrings(b["tags"]), " ") != "nodemo" {
		t.Errorf("goarch %v tags %v; want amd64 arm64 and the nodemo production build", b["goarch"], b["tags"])
	}

	commit := strings.TrimSpace(run(t, root, nil, time.Minute, "git", "rev-parse", "HEAD"))
	commitDate := strings.TrimSpace(run(t, root, nil, time.Minute, "git", "log", "-1", "--format=%cI"))
	var sums [2]string
	for i := range 2 {
		b["goos"], b["goarch"] = []string{runtime.GOOS}, []string{runtime.GOARCH}
		// A child of the repository: the SBOM step runs in dist and names
		// the module as "..".
		dist, err := os.MkdirTemp(root, ".dist-test-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dist) })
		cfg["dist"] = dist
		derived, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "goreleaser.yaml")
		if err := os.WriteFile(path, derived, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		run(t, root, env, 10*time.Minute, goreleaser, "release", "--snapshot", "--clean", "--config", path)
		t.Logf("snapshot %d in %v", i+1, time.Since(start).Round(time.Second))
		sums[i] = checkDist(t, dist, commit, commitDate)
	}
	if sums[0] != sums[1] {
		t.Errorf("two snapshot releases of one commit differ (not reproducible):\n%s\n---\n%s", sums[0], sums[1])
	}
}

// checkDist checks one snapshot's dist folder and returns checksums.txt.
func checkDist(t *testing.T, dist, commit, commitDate string) string {
	t.Helper()
	sumsText, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var archive, sbom string
	sc := bufio.NewScanner(strings.NewReader(string(sumsText)))
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok {
			t.Fatalf("checksums.txt line %q", sc.Text())
		}
		f, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatalf("checksums.txt names %s: %v", name, err)
		}
		if h := sha256.Sum256(f); hex.EncodeToString(h[:]) != sum {
			t.Errorf("checksum of %s does not match", name)
		}
		switch {
		case strings.HasSuffix(name, ".tar.gz"):
			archive = name
		case strings.HasSuffix(name, ".cdx.json"):
			sbom = name
		}
	}
	if archive == "" || sbom == "" {
		t.Fatalf("checksums.txt has no archive or no SBOM:\n%s", sumsText)
	}

	// The archive: the binary, the docs and the systemd unit.
	dir := t.TempDir()
	got := untar(t, filepath.Join(dist, archive), dir)
	for _, want := range []string{"butler", "README.md", "docs/deploy.md", "deploy/systemd/butler.service", "examples/butler.yaml"} {
		if !got[want] {
			t.Errorf("the archive lacks %s (has %v)", want, got)
		}
	}
	bin := filepath.Join(dir, "butler")
	version := run(t, dir, nil, time.Minute, bin, "version")
	for _, want := range []string{"commit " + commit, "-snapshot+"} {
		if !strings.Contains(version, want) {
			t.Errorf("butler version lacks %q:\n%s", want, version)
		}
	}
	// The build date is the commit's (reproducible), in RFC 3339.
	wantDate, err := time.Parse(time.RFC3339, commitDate)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(version, "\ndate ")
	gotDate, err := time.Parse(time.RFC3339, strings.SplitN(rest, "\n", 2)[0])
	if err != nil || !gotDate.Equal(wantDate) {
		t.Errorf("butler version's date is not the commit's (%s): %v\n%s", commitDate, err, version)
	}
	if runtime.GOOS == "linux" {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("the release binary is dynamically linked")
			}
		}
		f.Close()
	}
	if out, _ := runErr(dir, nil, time.Minute, bin, "demo"); !strings.Contains(out, "without the demo") {
		t.Errorf("the release binary has the demo: %s", out)
	}

	// The SBOM: CycloneDX, Butler's real dependencies, not the demo's.
	var bom struct {
		BOMFormat  string `json:"bomFormat"`
		Components []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"components"`
	}
	data, err := os.ReadFile(filepath.Join(dist, sbom))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatalf("%s: %v", sbom, err)
	}
	names := map[string]bool{}
	for _, c := range bom.Components {
		names[c.Name] = true
	}
	if bom.BOMFormat != "CycloneDX" || !names["github.com/modelcontextprotocol/go-sdk"] || !names["github.com/cedar-policy/cedar-go"] {
		t.Errorf("SBOM %s: format %q, %d components, want CycloneDX with go-sdk and cedar-go", sbom, bom.BOMFormat, len(bom.Components))
	}
	if names["github.com/zitadel/oidc/v3"] {
		t.Errorf("the SBOM lists the demo's github.com/zitadel/oidc/v3")
	}
	t.Logf("%s: %d components", sbom, len(bom.Components))
	return string(sumsText)
}

func untar(t *testing.T, path, dir string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	names := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names[h.Name] = true
		if h.Name == "butler" {
			out, err := os.OpenFile(filepath.Join(dir, "butler"), os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, io.LimitReader(tr, 256<<20)); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
	return names
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, e := range l {
			s, _ := e.(string)
			out = append(out, s)
		}
	}
	if l, ok := v.([]string); ok {
		out = l
	}
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
