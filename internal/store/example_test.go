package store_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

func Example() {
	ctx := context.Background()
	s, err := store.Open(ctx, "sqlite::memory:") // or sqlite:/var/lib/butler/butler.db, postgres://...
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// The vault seals the token; the store keeps only the ciphertext.
	if err := s.PutCredential(ctx, store.Credential{User: "alice", JenkinsUser: "alice", Sealed: []byte("…ciphertext…"), KeyID: "k1"}); err != nil {
		panic(err)
	}
	if _, err := s.GetCredential(ctx, "bob"); errors.Is(err, store.ErrNotFound) {
		fmt.Println("bob has not linked Jenkins")
	}

	at := time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)
	err = s.AppendAudit(ctx, []audit.Record{
		{Time: at, User: "alice", Tool: "get_job", Resource: "team/app", Decision: "allow"},
		{Time: at.Add(time.Second), User: "alice", Tool: "trigger_job", Resource: "team/app", Decision: "deny", Code: "forbidden"},
	})
	if err != nil {
		panic(err)
	}
	recs, err := s.QueryAudit(ctx, store.AuditQuery{User: "alice"})
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Println(r.Time.Format(time.RFC3339), r.Tool, r.Decision)
	}
	// Output:
	// bob has not linked Jenkins
	// 2025-03-14T15:09:27Z trigger_job deny
	// 2025-03-14T15:09:26Z get_job allow
}
