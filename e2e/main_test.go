// Package e2e drives the real butler binary as its users would: an MCP
// client over stdio (and, later, HTTP) against the Jenkins simulator.
package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// butlerBin is the binary built once for the whole package.
var butlerBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "butler-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	butlerBin = filepath.Join(dir, "butler")
	build := exec.Command("go", "build", "-race", "-o", butlerBin, "../cmd/butler")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building butler:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
