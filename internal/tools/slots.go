package tools

import "sync"

// slotLimits bound one kind of long-running call (log scans, waits): how
// many may run at once in the process and for one user, and what a refused
// caller is told. userBusy and serverBusy are format strings taking the
// bound and retryAfter.
type slotLimits struct {
	total, perUser, retryAfter int
	userBusy, serverBusy       string
}

// slots counts the calls of one kind running, in all and per user. Its map
// holds only users with a call running, so it is bounded by the limits'
// total. The zero value is ready to use.
type slots struct {
	mu      sync.Mutex
	running int
	perUser map[string]int
}

// acquire takes a slot for user under l, or returns the rate_limited error
// that says which bound is reached (refused at once, never queued, so a
// refused caller holds nothing). release must be called when the call
// ends; calling it again does nothing.
func (s *slots) acquire(user string, l slotLimits) (release func(), _ *Error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var e *Error
	switch {
	case s.perUser[user] >= l.perUser:
		e = Errorf(CodeRateLimited, l.userBusy, l.perUser, l.retryAfter)
	case s.running >= l.total:
		e = Errorf(CodeRateLimited, l.serverBusy, l.total, l.retryAfter)
	}
	if e != nil {
		e.RetryAfterSeconds = l.retryAfter
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
