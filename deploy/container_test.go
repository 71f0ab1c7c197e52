package deploy

import (
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/devidp"
)

// buildah runs with its own vfs storage in a temporary directory (no
// overlay or fuse needed, nothing left in the machine's storage) and
// chroot isolation: this machine's cgroup v1/v2 hybrid makes crun refuse
// to create containers ("cgroups in hybrid mode not supported"), and chroot
// isolation needs no OCI runtime.
type buildahEnv struct {
	bin  string
	base []string
}

func newBuildah(t *testing.T) *buildahEnv {
	t.Helper()
	bin := systemTool(t, "buildah", "buildah")
	dir := t.TempDir()
	b := &buildahEnv{bin: bin, base: []string{"--storage-driver", "vfs", "--root", filepath.Join(dir, "root"), "--runroot", filepath.Join(dir, "run")}}
	t.Cleanup(func() {
		_, _ = runErr(dir, nil, time.Minute, bin, append(b.base, "rm", "--all")...)
		_, _ = runErr(dir, nil, time.Minute, bin, append(b.base, "rmi", "--all", "--force")...)
	})
	return b
}

func (b *buildahEnv) run(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "..", nil, timeout, b.bin, append(b.base, args...)...))
}

// builderImage makes the image for the Containerfile's build stage from
// this machine's Go (no registry is reachable here to pull golang:1.26):
// an empty image with CA certificates; GOROOT, the module cache and the
// build cache are mounted into the build (-v), with GOPROXY=off so the
// build uses only what is cached.
func (b *buildahEnv) builderImage(t *testing.T) string {
	t.Helper()
	ctr := b.run(t, time.Minute, "from", "scratch")
	mnt := b.run(t, time.Minute, "mount", ctr)
	for _, d := range []string{"etc/ssl/certs", "tmp", "usr/local/go", "gomodcache", "gocache"} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(mnt, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		missing(t, "CA certificates for the image: %v (apt-get install ca-certificates)", err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "etc/ssl/certs/ca-certificates.crt"), certs, 0o644); err != nil {
		t.Fatal(err)
	}
	b.run(t, time.Minute, "config", "--env", "HOME=/tmp", "--env", "GOPROXY=off", "--env", "GOTOOLCHAIN=local",
		"--env", "GOMODCACHE=/gomodcache", "--env", "GOCACHE=/gocache", ctr)
	b.run(t, 2*time.Minute, "commit", "--quiet", ctr, "localhost/butler-go-builder")
	b.run(t, time.Minute, "rm", ctr)
	return "localhost/butler-go-builder"
}

func goEnv(t *testing.T, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, ".", nil, time.Minute, "go", "env", name))
}

// TestContainer_BuildsAStaticNonRootImageAndServes builds
// deploy/container/Containerfile, checks the image (empty base, non-root
// user, the store on a volume, a static binary without the demo), then
// runs it against a development IdP and calls /healthz, /readyz and
// /metrics.
func TestContainer_BuildsAStaticNonRootImageAndServes(t *testing.T) {
	b := newBuildah(t)
	builder := b.builderImage(t)
	start := time.Now()
	b.run(t, 15*time.Minute, "build", "--quiet", "--isolation", "chroot", "--layers=false",
		"-f", "deploy/container/Containerfile",
		"--build-arg", "GO_IMAGE="+builder,
		"--build-arg", "VERSION=v9.8.7-ci", "--build-arg", "COMMIT=0123abcd", "--build-arg", "DATE=2026-12-01T00:00:00Z",
		"-v", goEnv(t, "GOROOT")+":/usr/local/go:ro",
		"-v", goEnv(t, "GOMODCACHE")+":/gomodcache",
		"-v", goEnv(t, "GOCACHE")+":/gocache",
		"-t", "localhost/butler:ci", ".")
	t.Logf("image built in %v", time.Since(start).Round(time.Second))

	var inspect struct {
		OCIv1 struct {
			Config struct {
				User         string              `json:"User"`
				Volumes      map[string]any      `json:"Volumes"`
				ExposedPorts map[string]struct{} `json:"ExposedPorts"`
				Entrypoint   []string            `json:"Entrypoint"`
				Cmd          []string            `json:"Cmd"`
			} `json:"config"`
		} `json:"OCIv1"`
	}
	if err := json.Unmarshal([]byte(b.run(t, time.Minute, "inspect", "--type", "image", "localhost/butler:ci")), &inspect); err != nil {
		t.Fatal(err)
	}
	cfg := inspect.OCIv1.Config
	if cfg.User != "65532:65532" {
		t.Errorf("image user = %q, want 65532:65532 (non-root)", cfg.User)
	}
	if _, ok := cfg.Volumes["/var/lib/butler"]; !ok {
		t.Errorf("image volumes = %v, want /var/lib/butler", cfg.Volumes)
	}
	if _, ok := cfg.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v", cfg.ExposedPorts)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/usr/local/bin/butler" || strings.Join(cfg.Cmd, " ") != "serve --config /etc/butler/butler.yaml" {
		t.Errorf("entrypoint %v cmd %v", cfg.Entrypoint, cfg.Cmd)
	}

	ctr := b.run(t, time.Minute, "from", "--quiet", "localhost/butler:ci")
	mnt := b.run(t, time.Minute, "mount", ctr)
	// The whole file system: nothing but Butler, its config, users and
	// CA certificates (no shell, no package manager).
	var files []string
	_ = filepath.Walk(mnt, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(mnt, p)
			files = append(files, rel)
		}
		return nil
	})
	want := []string{"etc/butler/butler.yaml", "etc/group", "etc/passwd", "etc/ssl/certs/ca-certificates.crt", "usr/local/bin/butler", "var/lib/butler/README"}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("image files = %v, want %v", files, want)
	}
	st, err := os.Stat(filepath.Join(mnt, "var/lib/butler"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65532 {
		t.Errorf("/var/lib/butler is owned by %d, want 65532", sys.Uid)
	}
	f, err := elf.Open(filepath.Join(mnt, "usr/local/bin/butler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the image's butler is dynamically linked; the image has no libc")
		}
	}
	f.Close()
	mods := run(t, ".", nil, time.Minute, "go", "version", "-m", filepath.Join(mnt, "usr/local/bin/butler"))
	if !strings.Contains(mods, "-tags=nodemo") || strings.Contains(mods, "github.com/zitadel/oidc") {
		t.Errorf("the image's butler is not the production build:\n%s", mods)
	}

	// Run it: the image's own config, with free ports, against a
	// development IdP; the store on a directory standing for the volume.
	issuer, stop := startIdP(t)
	defer stop()
	addr, metricsAddr := freePort(t), freePort(t)
	cfgText, err := os.ReadFile(filepath.Join(mnt, "etc/butler/butler.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// buildah run's chroot isolation mounts the image's own VOLUME
	// /var/lib/butler as well as a -v at that path, in no fixed order, so
	// the stand-in volume is mounted at /data instead (the image's
	// /var/lib/butler is checked above to belong to the user).
	text := strings.NewReplacer("0.0.0.0:8080", addr, "0.0.0.0:9090", metricsAddr, "/var/lib/butler", "/data").Replace(string(cfgText))
	if text == string(cfgText) || !strings.Contains(text, "sqlite:/data/butler.db") {
		t.Fatalf("the image's butler.yaml no longer has the expected listen addresses and store:\n%s", cfgText)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "butler.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, 65532, 65532); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, append(b.base, "run", "--isolation", "chroot",
		"-v", dir+"/butler.yaml:/etc/butler/butler.yaml:ro", "-v", data+":/data",
		"-e", "BUTLER_PUBLIC_URL=http://"+addr, "-e", "BUTLER_ISSUER="+issuer,
		"-e", "BUTLER_JENKINS_URL=http://127.0.0.1:1/", "-e", "BUTLER_VAULT_KEY="+vaultKey,
		ctr, "--", "/usr/local/bin/butler", "serve", "--config", "/etc/butler/butler.yaml")...)
	cmd.Dir = ".."
	var out syncBuf
	cmd.Stdout, cmd.Stderr = &out, &out
	// Its own process group, so the test ends butler with buildah.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = cmd.Wait()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("butler in the image:\n%s", out.String())
		}
	}()
	waitStatus(t, "http://"+addr+"/healthz", 200, 30*time.Second, &out)
	waitStatus(t, "http://"+addr+"/readyz", 200, 30*time.Second, &out)
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(strings.Builder)
	_, _ = fmt.Fprint(body, readAll(resp))
	if !strings.Contains(body.String(), `butler_build_info{commit="0123abcd"`) || !strings.Contains(body.String(), `version="v9.8.7-ci"`) {
		t.Errorf("/metrics in the image lacks the build's butler_build_info:\n%.2000s", body.String())
	}
	// The store was created on the volume, by the non-root user.
	st, err = os.Stat(filepath.Join(data, "butler.db"))
	if err != nil {
		ents, _ := os.ReadDir(filepath.Join(mnt, "var/lib/butler"))
		t.Fatalf("no butler.db on the volume: %v (in the image: %v)", err, ents)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 65532 {
		t.Errorf("butler.db is owned by %d, want 65532 (butler runs as root?)", sys.Uid)
	}
}

// startIdP serves a development identity provider on loopback.
func startIdP(t *testing.T) (issuer string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer = "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}},
		Resources: []string{"http://127.0.0.1/mcp"}, Scopes: []string{"jenkins:read"}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(idp.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	return issuer, func() { srv.Close(); idp.Close() }
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitStatus(t *testing.T, url string, want int, within time.Duration, log fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(within)
	last := 0
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			last = resp.StatusCode
			resp.Body.Close()
			if last == want {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: %d, want %d within %v\n%s", url, last, want, within, log)
}
