package tools

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

// searchLimits are the search bounds as slots applies them.
var searchLimits = slotLimits{
	total: MaxSearches, perUser: MaxSearchesPerUser, retryAfter: searchRetryAfter,
	userBusy:   "you already have %d log searches running, the most one user may run at once: wait for them to finish (retry in %d s)",
	serverBusy: "%d log searches are running on this Butler, the most it runs at once: retry in %d s",
}

// searchSlots counts the searches running (search_build_log and
// diagnose_build's log scans).
type searchSlots struct{ slots }

// acquire takes a search slot for user (see slots.acquire).
func (s *searchSlots) acquire(user string) (release func(), _ *Error) {
	return s.slots.acquire(user, searchLimits)
}
