package app_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// readyVerifier is an identity provider that is always reachable.
type readyVerifier struct{}

func (readyVerifier) Verify(context.Context, string) (*authn.Identity, error) {
	return nil, errors.New("no tokens in this test")
}

func (readyVerifier) Ready(context.Context) error { return nil }

// Two keys that pass check-config.
const (
	readyKeyA = "aNVpVgjXz+pXrJF3Y2Sg6BDBOx5A/ud1aywaoxid7sQ="
	readyKeyB = "c48uiyPKjpYrcSasvQqxO0xt3AI4mIukhwnDUzssV/E="
)

func readyConfig(t *testing.T, dsn, key string) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Server.PublicURL = "https://butler.example.com"
	cfg.Auth.Issuer = "https://idp.example.com"
	cfg.Jenkins.URL = "http://127.0.0.1:1/"
	cfg.Store.DSN = config.DSN(dsn)
	cfg.Store.VaultKey = secret.String(key)
	cfg.Audit.SpoolDir = t.TempDir()
	return cfg
}

// readyz starts the app of cfg and returns what /readyz answers.
func readyz(t *testing.T, cfg *config.Config, o app.Options) (int, string) {
	t.Helper()
	o.Verifier = readyVerifier{}
	a, err := app.New(t.Context(), cfg, o)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	}()
	rec := httptest.NewRecorder()
	a.Handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, strings.TrimSpace(string(body))
}

// /readyz is not ready with a vault key that is not the one the database's
// credentials are sealed with: the first start seals a canary, a restart
// with the same key is ready, one with another key is not.
func TestReadyz_WrongVaultKeyIsNotReady(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "butler.db")
	if code, body := readyz(t, readyConfig(t, dsn, readyKeyA), app.Options{}); code != 200 || body != "ready" {
		t.Fatalf("first start: /readyz = %d %q, want 200 ready", code, body)
	}
	if code, body := readyz(t, readyConfig(t, dsn, readyKeyA), app.Options{}); code != 200 || body != "ready" {
		t.Errorf("restart with the same key: /readyz = %d %q, want 200 ready", code, body)
	}
	if code, body := readyz(t, readyConfig(t, dsn, readyKeyB), app.Options{}); code != 503 || body != "not ready: vault_key" {
		t.Errorf("restart with another key: /readyz = %d %q, want 503 not ready: vault_key", code, body)
	}
	// A rotation is ready: the new key, with the old one kept to read.
	rotated := readyConfig(t, dsn, readyKeyB)
	rotated.Store.VaultOldKeys = []secret.String{readyKeyA}
	if code, body := readyz(t, rotated, app.Options{}); code != 200 || body != "ready" {
		t.Errorf("rotated key: /readyz = %d %q, want 200 ready", code, body)
	}
}

// In token_exchange mode there is no vault and no canary.
func TestReadyz_TokenExchangeHasNoVaultKeyCheck(t *testing.T) {
	t.Parallel()
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "butler.db")
	cfg := readyConfig(t, dsn, "")
	cfg.Jenkins.Credentials = config.CredentialsTokenExchange
	code, body := readyz(t, cfg, app.Options{Credentials: credentials.NewMemory(nil)})
	if code != 200 || body != "ready" {
		t.Errorf("token_exchange: /readyz = %d %q, want 200 ready", code, body)
	}
	st, err := store.Open(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.GetSetting(t.Context(), credentials.CanarySetting); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("token_exchange mode wrote a vault key canary: %v", err)
	}
}

// frozenStore is a database that never answers: every call waits for its
// context.
type frozenStore struct{ store.Store }

func frozen(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func (frozenStore) Ping(ctx context.Context) error { return frozen(ctx) }
func (frozenStore) GetSetting(ctx context.Context, _ string) ([]byte, error) {
	return nil, frozen(ctx)
}
func (frozenStore) CreateSetting(ctx context.Context, _ string, _ []byte) (bool, error) {
	return false, frozen(ctx)
}
func (frozenStore) PutSetting(ctx context.Context, _ string, _ []byte) error { return frozen(ctx) }
func (frozenStore) ListCredentials(ctx context.Context) ([]store.Credential, error) {
	return nil, frozen(ctx)
}
func (frozenStore) GetCredential(ctx context.Context, _ string) (store.Credential, error) {
	return store.Credential{}, frozen(ctx)
}
func (frozenStore) AppendAudit(ctx context.Context, _ []audit.Record) error { return frozen(ctx) }

// A store given through Options gets store.timeout too: with it frozen,
// the app still starts and /readyz answers "not ready: store" at once,
// instead of both hanging for as long as the database does.
func TestNew_InjectedStoreHasTheDeadline(t *testing.T) {
	t.Parallel()
	cfg := readyConfig(t, "sqlite::memory:", readyKeyA)
	cfg.Store.Timeout = 100 * time.Millisecond
	done := make(chan struct{})
	var code int
	var body string
	go func() {
		defer close(done)
		code, body = readyz(t, cfg, app.Options{Store: frozenStore{}})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("app.New or /readyz hangs on a frozen store")
	}
	if code != 503 || body != "not ready: store" {
		t.Errorf("/readyz = %d %q, want 503 not ready: store", code, body)
	}
}

// The audit writer spools into audit.spool_dir: a directory that is not
// there is an error at start-up, not at the first outage.
func TestNew_AuditSpoolDirIsUsed(t *testing.T) {
	t.Parallel()
	cfg := readyConfig(t, "sqlite::memory:", readyKeyA)
	cfg.Audit.SpoolDir = filepath.Join(t.TempDir(), "missing")
	a, err := app.New(t.Context(), cfg, app.Options{Verifier: readyVerifier{}})
	if err == nil {
		a.Close(context.Background())
		t.Fatal("app.New with a missing audit.spool_dir succeeded")
	}
	if !strings.Contains(err.Error(), "audit.spool_dir") {
		t.Errorf("app.New = %v, want it to name audit.spool_dir", err)
	}
}
