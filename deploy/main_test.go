package deploy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if butlerBin != "" {
		os.RemoveAll(filepath.Dir(butlerBin))
	}
	os.Exit(code)
}
