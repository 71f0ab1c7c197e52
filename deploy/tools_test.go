package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// requireEnv makes a missing tool a failure rather than a skip (CI).
const requireEnv = "BUTLER_REQUIRE_DEPLOY"

// missing skips the test, or fails it under BUTLER_REQUIRE_DEPLOY=1, saying
// precisely what is missing.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s (%s=1)", msg, requireEnv)
	}
	t.Skip(msg)
}

var (
	toolMu    sync.Mutex
	toolPaths = map[string]string{}
)

// goTool returns the binary of a Go tool pinned under ../tools, building it
// on first use (tools/build.sh caches it by the hash of its go.mod and
// go.sum).
func goTool(t *testing.T, name string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command("bash", "../tools/build.sh", name)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		missing(t, "%s: tools/build.sh %s failed: %v\n%s", name, name, err, stderr.String())
	}
	p := strings.TrimSpace(stdout.String())
	toolPaths[name] = p
	return p
}

// systemTool returns a tool from PATH (a Debian package).
func systemTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, "%s is not installed: apt-get install %s", name, pkg)
	}
	return p
}

// run runs a command from dir with extra environment and returns its
// combined output; it fails the test when the command fails.
func run(t *testing.T, dir string, env []string, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	out, err := runErr(dir, env, timeout, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return out
}

func runErr(dir string, env []string, timeout time.Duration, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// repoRoot is the repository's root directory.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

var (
	butlerOnce sync.Once
	butlerBin  string
	butlerErr  error
	butlerOut  string
)

// productionButler builds the production butler (-tags nodemo) once for
// the package.
func productionButler(t *testing.T) string {
	t.Helper()
	butlerOnce.Do(func() {
		dir, err := os.MkdirTemp("", "butler-deploy-")
		if err != nil {
			butlerErr = err
			return
		}
		butlerBin = filepath.Join(dir, "butler")
		butlerOut, butlerErr = runErr("..", nil, 5*time.Minute, "go", "build", "-tags", "nodemo", "-o", butlerBin, "./cmd/butler")
	})
	if butlerErr != nil {
		t.Fatalf("go build -tags nodemo: %v\n%s", butlerErr, butlerOut)
	}
	return butlerBin
}

// syncBuf is a bytes.Buffer safe for a process's output and the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
