package app_test

import (
	"log/slog"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// zitadel/oidc (inside the development IdP) logs its routes through
	// the process's default logger; keep benchmark output readable.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
