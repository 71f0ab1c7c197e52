package tools_test

import (
	"context"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/store"
)

// downStore is a store whose credential lookups never answer (a frozen
// database: they wait for their context) or, with fail set, fail at once
// with fail. The rest of store.Store is not used by these tests.
type downStore struct {
	store.Store
	fail error
}

func (s downStore) GetCredential(ctx context.Context, _ string) (store.Credential, error) {
	if s.fail != nil {
		return store.Credential{}, s.fail
	}
	<-ctx.Done()
	return store.Credential{}, fmt.Errorf("store: get credential: %w", ctx.Err())
}

// storedCreds is the per_user_token credential source over st with the
// store's deadline, as the app builds it.
func storedCreds(t *testing.T, st store.Store) credentials.Source {
	t.Helper()
	var k [32]byte
	copy(k[:], "0123456789abcdefghijklmnopqrstuv")
	v, err := credentials.NewVault(k, nil)
	if err != nil {
		t.Fatal(err)
	}
	return credentials.NewStored(store.WithTimeout(st, 100*time.Millisecond), v, nil, nil)
}

// A call that needs the store while it does not answer, or cannot be
// reached, fails within the store's deadline with "unavailable" (503, retry
// after a few seconds), not "internal" and not a hang.
func TestStoreUnavailable_ToolsAnswerUnavailable(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("store: get credential: %w", &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED})
	for _, st := range []struct {
		name string
		s    store.Store
	}{
		{"frozen", downStore{}},
		{"down", downStore{fail: refused}},
	} {
		for _, tc := range []struct {
			tool string
			args map[string]any
		}{
			{"get_job", map[string]any{"job": "frontend/web-app"}},
			{"whoami", nil},
		} {
			t.Run(st.name+"/"+tc.tool, func(t *testing.T) {
				t.Parallel()
				e := newEnv(t, jenkinstest.SampleAlice, &envOpts{creds: storedCreds(t, st.s)})
				start := time.Now()
				errObj := e.fail(t, tc.tool, tc.args, "unavailable")
				if el := time.Since(start); el > 5*time.Second {
					t.Errorf("%s took %v with a 100ms store deadline", tc.tool, el)
				}
				if errObj["status"] != float64(503) {
					t.Errorf("status = %v, want 503", errObj["status"])
				}
				if ra, _ := errObj["retry_after_seconds"].(float64); ra < 1 {
					t.Errorf("retry_after_seconds = %v, want a positive number", errObj["retry_after_seconds"])
				}
				recs := e.audit.all()
				if len(recs) != 1 || recs[0].Decision != audit.Error || recs[0].Code != "unavailable" {
					t.Errorf("audit records %+v, want one error record with code unavailable", recs)
				}
			})
		}
	}
}

// fullAudit is a credential source failing as the audit writer's admission
// does when neither its buffer nor its spool can take more.
type fullAudit struct{}

func (fullAudit) For(context.Context, identity.Principal) (jenkins.Credential, error) {
	return jenkins.Credential{}, fmt.Errorf("audit: 100000 records wait: %w", audit.ErrFull)
}

func (fullAudit) Linked(context.Context, identity.Principal) (bool, error) {
	return false, fmt.Errorf("audit: 100000 records wait: %w", audit.ErrFull)
}

func TestAuditFull_ToolsAnswerUnavailable(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, &envOpts{creds: fullAudit{}})
	errObj := e.fail(t, "get_job", map[string]any{"job": "frontend/web-app"}, "unavailable")
	if errObj["status"] != float64(503) {
		t.Errorf("status = %v, want 503", errObj["status"])
	}
}
