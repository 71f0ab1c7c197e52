package server

import (
	"net/http"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/identity"
)

const sessionHeader = "Mcp-Session-Id"

// sessionOwners binds each MCP session to the user who created it, so that
// nobody else's token is served on it (docs/http.md). A session a guest
// created is bound to the first user who authenticates on it (the client
// logging in after a 401 keeps its session); from then on it is that user's.
// The SDK binds sessions to TokenInfo.UserID as well; this also covers
// guest-created sessions, and answers with a JSON error.
type sessionOwners struct {
	mu     sync.Mutex
	owners map[string]*sessionOwner
	idle   time.Duration
	swept  time.Time
}

type sessionOwner struct {
	user string // "" while only a guest has used it
	seen time.Time
}

func newSessionOwners(idle time.Duration) *sessionOwners {
	return &sessionOwners{owners: map[string]*sessionOwner{}, idle: idle}
}

// admit reports whether p may use the session the request names. For a
// request without a session it returns a writer that records the owner of
// the session the response creates. On refusal it has written a 403.
func (s *sessionOwners) admit(w http.ResponseWriter, r *http.Request, p identity.Principal) (http.ResponseWriter, bool) {
	owner := p.User
	if p.Guest {
		owner = ""
	}
	id := r.Header.Get(sessionHeader)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(now)
	if id == "" {
		return &headerHook{ResponseWriter: w, onHeader: func(h http.Header) {
			if sid := h.Get(sessionHeader); sid != "" {
				s.mu.Lock()
				s.owners[sid] = &sessionOwner{user: owner, seen: time.Now()}
				s.mu.Unlock()
			}
		}}, true
	}
	o, ok := s.owners[id]
	if !ok {
		return w, true // unknown to us: the SDK answers 404
	}
	switch {
	case o.user == "" && owner != "":
		o.user = owner
	case o.user != "" && o.user != owner:
		writeJSONError(w, http.StatusForbidden, "forbidden", "this MCP session belongs to another user; start a new session")
		return w, false
	}
	o.seen = now
	if r.Method == http.MethodDelete {
		delete(s.owners, id)
	}
	return w, true
}

func (s *sessionOwners) sweep(now time.Time) {
	if now.Sub(s.swept) < time.Minute {
		return
	}
	s.swept = now
	for id, o := range s.owners {
		if now.Sub(o.seen) > s.idle {
			delete(s.owners, id)
		}
	}
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
