package tools

import "sync"

// Bounds of the log searches running at once. A search streams a build's
// whole console through a matcher for up to 10 s (jenkins.SearchLog): a
// regular expression keeps a core busy for all of it, so without a bound a
// dozen searches would take every core from every other caller. The
// contract (CONTRACT §9) names no setting for this, so these are
// constants: enough for an agent that searches a log for two things at
// once, and for several users at a time on a small machine; a search over
// either bound is refused at once (rate_limited, with retry advice), not
// queued, so a refused caller holds nothing.
const (
	// MaxSearches is how many search_build_log calls may scan at once in
	// one Butler process.
	MaxSearches = 8
	// MaxSearchesPerUser is how many of them one user may run at once
	// (guests cannot search).
	MaxSearchesPerUser = 2
	// searchRetryAfter is the retry_after_seconds of a refused search:
	// most searches take well under a second; the slowest stop at 10 s.
	searchRetryAfter = 2
)

// searchSlots counts the searches running, in all and per user. Its map
// holds only users with a search running, so it is bounded by MaxSearches.
type searchSlots struct {
	mu      sync.Mutex
	running int
	perUser map[string]int
}

// acquire takes a slot for user, or returns the rate_limited error that
// says which bound is reached. release must be called once when the search
// ends.
func (s *searchSlots) acquire(user string) (release func(), _ *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *Error
	switch {
	case s.perUser[user] >= MaxSearchesPerUser:
		e = Errorf(CodeRateLimited, "you already have %d log searches running, the most one user may run at once: wait for them to finish (retry in %d s)",
			MaxSearchesPerUser, searchRetryAfter)
	case s.running >= MaxSearches:
		e = Errorf(CodeRateLimited, "%d log searches are running on this Butler, the most it runs at once: retry in %d s", MaxSearches, searchRetryAfter)
	}
	if e != nil {
		e.RetryAfterSeconds = searchRetryAfter
		return nil, e
	}
	if s.perUser == nil {
		s.perUser = map[string]int{}
	}
	s.running++
	s.perUser[user]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.running--
			if s.perUser[user]--; s.perUser[user] <= 0 {
				delete(s.perUser, user)
			}
		})
	}, nil
}
