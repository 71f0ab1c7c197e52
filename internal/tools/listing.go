package tools

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// Bounds of the listing cache: paging through a listing costs one Jenkins
// listing, not one per page.
const (
	listingTTL = 30 * time.Second
	// listingMax bounds the listings held; the oldest goes first.
	listingMax = 64
	// listingMaxJobs bounds the jobs held in all listings together (24
	// bytes each plus the full name: some 50 MiB at most). A listing
	// larger than this alone is still served, and held until the next.
	listingMaxJobs = 1_000_000
)

// listings remembers, per caller and folder, the jobs a listing showed
// them (Jenkins's answer filtered by the policy) for listingTTL, and merges
// concurrent fetches of the same listing into one.
type listings struct {
	now   func() time.Time
	group singleflight.Group
	// maxJobs is the bound on the jobs held; 0 means listingMaxJobs.
	maxJobs int

	mu      sync.Mutex
	entries map[string]listingEntry
}

type listingEntry struct {
	jobs  *jenkins.Listing
	until time.Time
}

// listingKey names a listing: who asks (user, groups, the Jenkins account,
// and the policy context's scopes and client id, since both Jenkins and the
// policy answer per caller: a `when` on context.client_id must not see
// another client's listing) and what (folder, recursion).
func listingKey(p identity.Principal, cred jenkins.Credential, folder jobpath.Path, recursive bool) string {
	groups := slices.Clone(p.Groups)
	slices.Sort(groups)
	scopes := slices.Clone(p.Scopes)
	slices.Sort(scopes)
	return strings.Join([]string{p.User, cred.User, strings.Join(groups, "\x01"), strings.Join(scopes, "\x01"),
		p.ClientID, folder.String(), strconv.FormatBool(recursive)}, "\x00")
}

// get returns the listing of key, fetching it with fetch when it is not
// held or has expired.
func (l *listings) get(ctx context.Context, key string, fetch func(context.Context) (*jenkins.Listing, error)) (*jenkins.Listing, error) {
	now := l.now()
	l.mu.Lock()
	e, ok := l.entries[key]
	l.mu.Unlock()
	if ok && now.Before(e.until) {
		return e.jobs, nil
	}
	v, err, _ := l.group.Do(key, func() (any, error) {
		jobs, err := fetch(context.WithoutCancel(ctx))
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.entries == nil {
			l.entries = map[string]listingEntry{}
		}
		l.evict(jobs.Len())
		l.entries[key] = listingEntry{jobs: jobs, until: l.now().Add(listingTTL)}
		return jobs, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*jenkins.Listing), nil
}

// evict makes room for a listing of n jobs: expired listings go, then the
// oldest, until at most listingMax listings and listingMaxJobs jobs remain
// with the new one. l.mu is held.
func (l *listings) evict(n int) {
	now := l.now()
	held := 0
	for k, e := range l.entries {
		if !now.Before(e.until) {
			delete(l.entries, k)
			continue
		}
		held += e.jobs.Len()
	}
	maxJobs := l.maxJobs
	if maxJobs == 0 {
		maxJobs = listingMaxJobs
	}
	for len(l.entries) > 0 && (len(l.entries) >= listingMax || held+n > maxJobs) {
		oldest := ""
		for k, e := range l.entries {
			if oldest == "" || e.until.Before(l.entries[oldest].until) {
				oldest = k
			}
		}
		held -= l.entries[oldest].jobs.Len()
		delete(l.entries, oldest)
	}
}

// visibleJobs keeps the jobs the policy lets p call get_job on: a job a
// policy hides is hidden from listings too. When no policy names a job or
// folder, the decision is the same for every job, so it is taken once.
//
// The question is the policy's (the policy would allow get_job on it for
// that caller), asked with the caller's own context (scopes, client id);
// get_job's OAuth scopes are not part of it (scope and policy are separate
// checks): the call of list_all_jobs has passed its own scope check, and a
// get_job call will check get_job's.
func (t *Toolset) visibleJobs(ctx context.Context, p identity.Principal, jobs *jenkins.Listing) *jenkins.Listing {
	allowed := func(name string) bool {
		return t.deps.Authorizer.DecideWithoutScopes(ctx, authz.Request{Principal: p, Tool: catalog.GetJob, Job: name}).Allow
	}
	if !t.deps.Authorizer.NamesItems() {
		if jobs.Len() == 0 || allowed(jobs.Name(0)) {
			return jobs
		}
		return jobs.Filter(func(string) bool { return false })
	}
	return jobs.Filter(allowed)
}

// listJobs is the listing of folder for the call's caller, from the cache
// or from Jenkins, filtered by the policy.
func (t *Toolset) listJobs(ctx context.Context, c *call, folder jobpath.Path, recursive bool) (*jenkins.Listing, error) {
	key := listingKey(c.principal, c.cred, folder, recursive)
	jobs, err := t.listings.get(ctx, key, func(ctx context.Context) (*jenkins.Listing, error) {
		jobs, err := t.deps.Jenkins.ListJobs(ctx, c.cred, folder, recursive)
		if err != nil {
			return nil, err
		}
		return t.visibleJobs(ctx, c.principal, jobs), nil
	})
	if errors.Is(err, jenkins.ErrTooLarge) {
		e := Errorf(CodeJenkinsUnavailable, "Jenkins's job listing is larger than Butler reads (32 MiB); list one folder at a time with folder, and recursive=false for the largest")
		return nil, e
	}
	return jobs, err
}
