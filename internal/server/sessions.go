package server

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/identity"
)

const sessionHeader = "Mcp-Session-Id"

// SessionLimits bound the MCP sessions Butler holds.
type SessionLimits struct {
	// Max is the most sessions in all (server.max_sessions).
	Max int
	// PerUser is the most sessions of one user, or of one client address
	// for guests (server.max_sessions_per_user).
	PerUser int
	// Idle closes a session unused that long (server.session_idle_timeout).
	Idle time.Duration
}

// sessionOwners binds each MCP session to the user who created it, so that
// nobody else's token is served on it. A session a guest created is bound
// to the first user who authenticates on it (the client logging in after a
// 401 keeps its session); from then on it is that user's, and the guest's
// open event streams on it end. The SDK binds sessions to TokenInfo.UserID
// as well; this also covers guest-created sessions, answers with a JSON
// error, and bounds how many sessions there are: when a user (or a guest
// address) is at its limit, or all sessions are taken, that user's oldest
// idle session is closed to make room, else the new session is refused.
type sessionOwners struct {
	limits SessionLimits
	// closeSession ends a session in the SDK (nil in unit tests).
	closeSession func(id string)
	now          func() time.Time

	mu     sync.Mutex
	owners map[string]*sessionOwner
	swept  time.Time
}

type sessionOwner struct {
	user  string // "" while only a guest has used it
	owner string // who the session counts against: user, or "guest:<host>"
	seen  time.Time
	// active counts the requests in progress on the session; a session
	// with one is not idle.
	active int
	// guestStreams end the guest's requests (event streams) on the session
	// when a user takes it over.
	guestStreams map[*int]context.CancelFunc
}

func newSessionOwners(limits SessionLimits, closeSession func(string), now func() time.Time) *sessionOwners {
	if limits.Idle <= 0 {
		limits.Idle = sessionIdle
	}
	if now == nil {
		now = time.Now
	}
	return &sessionOwners{limits: limits, closeSession: closeSession, now: now, owners: map[string]*sessionOwner{}}
}

// countKey is who a principal's sessions count against.
func countKey(p identity.Principal, r *http.Request) string {
	if !p.Guest {
		return "user:" + p.User
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "guest:" + host
}

// admission is the outcome of admit.
type admission int

const (
	admitted admission = iota
	refusedOwner
	refusedFull
)

// admit reports whether p may use the session the request names, or open
// a new one. For a request without a session it returns a writer that
// records the owner of the session the response creates. The returned done
// must be called when the request ends, with the status MCP answered.
func (s *sessionOwners) admit(w http.ResponseWriter, r *http.Request, p identity.Principal) (http.ResponseWriter, *http.Request, func(status int), admission) {
	user := p.User
	if p.Guest {
		user = ""
	}
	key := countKey(p, r)
	id := r.Header.Get(sessionHeader)
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if id == "" {
		if !s.makeRoom(key) {
			return w, r, nil, refusedFull
		}
		return &headerHook{ResponseWriter: w, onHeader: func(h http.Header) {
			if sid := h.Get(sessionHeader); sid != "" {
				s.mu.Lock()
				s.owners[sid] = &sessionOwner{user: user, owner: key, seen: s.now()}
				s.mu.Unlock()
			}
		}}, r, func(int) {}, admitted
	}
	o, ok := s.owners[id]
	if !ok {
		return w, r, func(int) {}, admitted // unknown to us: the SDK answers 404
	}
	switch {
	case o.user == "" && user != "":
		// A user takes over a guest's session: the guest's streams on it
		// end, and it counts against the user from now on.
		o.user, o.owner = user, key
		for _, cancel := range o.guestStreams {
			cancel()
		}
		o.guestStreams = nil
	case o.user != "" && o.user != user:
		return w, r, nil, refusedOwner
	}
	o.seen = now
	o.active++
	var handle *int
	if p.Guest {
		ctx, cancel := context.WithCancel(r.Context())
		handle = new(int)
		if o.guestStreams == nil {
			o.guestStreams = map[*int]context.CancelFunc{}
		}
		o.guestStreams[handle] = cancel
		r = r.WithContext(ctx)
	}
	method := r.Method
	return w, r, func(status int) {
		s.mu.Lock()
		defer s.mu.Unlock()
		o.active--
		o.seen = s.now()
		if handle != nil {
			if cancel, ok := o.guestStreams[handle]; ok {
				cancel()
				delete(o.guestStreams, handle)
			}
		}
		// The owner is forgotten only when MCP itself ended the session:
		// a DELETE it refused leaves the session, and its owner, as they
		// were.
		if method == http.MethodDelete && status >= 200 && status < 300 {
			delete(s.owners, id)
		}
	}, admitted
}

// makeRoom reports whether key may open one more session, closing key's
// oldest idle session when key or the whole table is at its limit. Called
// with s.mu held.
func (s *sessionOwners) makeRoom(key string) bool {
	mine := 0
	for _, o := range s.owners {
		if o.owner == key {
			mine++
		}
	}
	full := s.limits.Max > 0 && len(s.owners) >= s.limits.Max
	atLimit := s.limits.PerUser > 0 && mine >= s.limits.PerUser
	if !full && !atLimit {
		return true
	}
	var oldestID string
	var oldest *sessionOwner
	for id, o := range s.owners {
		if o.owner == key && o.active == 0 && (oldest == nil || o.seen.Before(oldest.seen)) {
			oldestID, oldest = id, o
		}
	}
	if oldest == nil {
		return false
	}
	delete(s.owners, oldestID)
	if s.closeSession != nil {
		go s.closeSession(oldestID) // the SDK takes its own locks
	}
	return true
}

// sweep forgets sessions idle past the limit (the SDK closes them on the
// same timeout).
func (s *sessionOwners) sweep(now time.Time) {
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	for id, o := range s.owners {
		if o.active == 0 && now.Sub(o.seen) > s.limits.Idle {
			delete(s.owners, id)
			if s.closeSession != nil {
				go s.closeSession(id)
			}
		}
	}
}

// len is the number of sessions known, for tests and metrics.
func (s *sessionOwners) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.owners)
}

// headerHook calls onHeader once, just before the header is written.
type headerHook struct {
	http.ResponseWriter
	onHeader func(http.Header)
	done     bool
}

func (h *headerHook) fire() {
	if !h.done {
		h.done = true
		h.onHeader(h.ResponseWriter.Header())
	}
}

func (h *headerHook) WriteHeader(code int) {
	h.fire()
	h.ResponseWriter.WriteHeader(code)
}

func (h *headerHook) Write(b []byte) (int, error) {
	h.fire()
	return h.ResponseWriter.Write(b)
}

func (h *headerHook) Flush() {
	h.fire()
	if f, ok := h.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (h *headerHook) Unwrap() http.ResponseWriter { return h.ResponseWriter }
