package tools

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// The listing cache holds at most maxJobs jobs in all its listings: a new
// listing pushes out the oldest ones until it fits, and one larger than
// the bound alone is still served and held alone.
func TestListings_BoundTheJobsHeld(t *testing.T) {
	t.Parallel()
	hs := httptest.NewServer(jenkinstest.Sample(nil))
	defer hs.Close()
	c, err := jenkins.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	cred := jenkins.Credential{User: jenkinstest.SampleAdmin, APIToken: jenkinstest.SampleAdminToken}
	fetches := 0
	fetch := func(ctx context.Context) (*jenkins.Listing, error) {
		fetches++
		return c.ListJobs(ctx, cred, jobpath.Path{}, true)
	}
	whole, err := fetch(context.Background())
	if err != nil || whole.Len() < 4 {
		t.Fatalf("sample listing: %d jobs, %v", whole.Len(), err)
	}
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	l := &listings{now: func() time.Time { return now }, maxJobs: whole.Len() * 3 / 2}
	ctx := context.Background()
	for _, key := range []string{"a", "b"} {
		now = now.Add(time.Second) // b is the newer
		if _, err := l.get(ctx, key, fetch); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := l.entries["a"]; ok || len(l.entries) != 1 {
		t.Errorf("two listings of %d jobs held under a bound of %d: %d entries", whole.Len(), l.maxJobs, len(l.entries))
	}
	// b is still held: no fetch.
	before := fetches
	if _, err := l.get(ctx, "b", fetch); err != nil || fetches != before {
		t.Errorf("the newer listing was not kept: %d fetches, %v", fetches-before, err)
	}
	// A listing larger than the bound alone is served and held alone.
	l.maxJobs = 1
	if got, err := l.get(ctx, "c", fetch); err != nil || got.Len() != whole.Len() || len(l.entries) != 1 {
		t.Errorf("oversized listing: %v, %d entries", err, len(l.entries))
	}
}
