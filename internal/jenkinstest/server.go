package jenkinstest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Options configures a Server. The zero value (or nil) is a healthy
// Jenkins at the root path with two executors on the wall clock.
type Options struct {
	// Clock drives the simulation; nil means real time.
	Clock Clock
	// Executors is how many builds run at once across the instance;
	// 0 means 2, a negative number means none (nothing ever starts).
	Executors int
	// Prefix is the path Jenkins is served under, e.g. "/jenkins" ("" is
	// the root). Every URL the simulator emits includes it and every
	// request path must start with it, else 404.
	Prefix string
	// RequireCrumb makes POSTs need a valid crumb even with API-token
	// authentication. Real Jenkins exempts API tokens; this exists to test a
	// client's crumb retry.
	RequireCrumb bool
	// LeftItemTTL is how long a queue item that left the queue stays
	// readable; 0 means 5m, as in real Jenkins.
	LeftItemTTL time.Duration
	// BearerAuth, if set, accepts "Authorization: Bearer <token>" as the
	// jwt-auth-filter plugin does, mapping a token to a user id. An id not
	// added with AddUser is a user whose full name is its id.
	BearerAuth func(token string) (userID string, ok bool)
	// Version is the Jenkins version in the X-Jenkins header; "" means
	// DefaultVersion.
	Version string
	// RootURL is Jenkins's configured root URL (Manage Jenkins → System
	// → Jenkins URL), ending in "/": every URL in JSON answers is under it,
	// as Jenkins.getRootUrl makes them, whatever address the request came
	// to. "" means none is configured: Jenkins then falls back to the
	// request's own host (Jenkins.getRootUrlFromRequest). Redirects
	// (Location) are always made from the request (Stapler's
	// StaplerResponse.sendRedirect resolves the context path against it).
	RootURL string
}

// DefaultVersion is the Jenkins version the simulator claims by default:
// an LTS before 2.509, whose progressiveText strips console notes.
const DefaultVersion = "2.479.3"

// CurrentLTS is the newest Jenkins LTS release (tag jenkins-2.568.2 of
// jenkinsci/jenkins), which the demo claims: its progressiveText sends
// console notes raw (2.509 and later).
const CurrentLTS = "2.568.2"

const crumbField = "Jenkins-Crumb"

// Server is a simulated Jenkins controller; it is an http.Handler and is
// safe for concurrent use. See the package documentation for what it
// simulates.
type Server struct {
	clock          Clock
	prefix         string
	requireCrumb   bool
	leftTTL        time.Duration
	bearer         func(string) (string, bool)
	version        string
	configuredRoot string // Options.RootURL
	secret         []byte // signs sessions and crumbs
	instance       string // instance id: session cookie name, X-Jenkins-Session
	schema         *schema

	faultMu sync.Mutex
	fault   Fault

	logMu sync.Mutex
	reqs  []Request

	mu          sync.Mutex
	now         time.Time
	executors   int
	root        *item
	users       map[string]*user
	grants      map[string]map[string]perm // user -> path -> permissions
	nextQueueID int64
	queue       []*queueItem         // items in the queue, by id
	items       map[int64]*queueItem // readable items: queued and recently left
	left        []*queueItem         // left items, oldest first
	running     []*build
	listSeq     int64
}

// New returns a Server with no users, no items and no grants; nil opts
// means the defaults.
func New(opts *Options) *Server {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	switch {
	case o.Executors == 0:
		o.Executors = 2
	case o.Executors < 0:
		o.Executors = 0
	}
	if o.LeftItemTTL <= 0 {
		o.LeftItemTTL = 5 * time.Minute
	}
	if o.Version == "" {
		o.Version = DefaultVersion
	}
	prefix := strings.TrimRight(o.Prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	inst := make([]byte, 4)
	_, _ = rand.Read(inst)
	return &Server{
		clock:          o.Clock,
		prefix:         prefix,
		requireCrumb:   o.RequireCrumb,
		configuredRoot: o.RootURL,
		leftTTL:        o.LeftItemTTL,
		bearer:         o.BearerAuth,
		version:        o.Version,
		secret:         secret,
		instance:       hex.EncodeToString(inst),
		schema:         newSchema(),
		now:            o.Clock.Now(),
		executors:      o.Executors,
		root:           newRoot(),
		users:          map[string]*user{},
		grants:         map[string]map[string]perm{},
		items:          map[int64]*queueItem{},
	}
}

// reply is a response built under the lock and written after it.
type reply struct {
	status int
	header http.Header
	body   []byte
	stream io.Reader // instead of body: copied to the client after the lock
}

// streamReply answers with the content of r, read only while it is
// written (a generated console is never held in memory).
func streamReply(status int, contentType string, r io.Reader) *reply {
	rp := newReply(status, contentType, nil)
	rp.stream = r
	return rp
}

func newReply(status int, contentType string, body []byte) *reply {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return &reply{status: status, header: h, body: body}
}

func textReply(status int, msg string) *reply {
	return newReply(status, "text/plain;charset=utf-8", []byte(msg+"\n"))
}

// notFoundBody is the same for every missing or invisible thing, so a
// response never tells one from the other.
const notFoundBody = "<html><head><meta http-equiv=\"Content-Type\" content=\"text/html;charset=utf-8\"/>" +
	"<title>Error 404 Not Found</title></head><body><h2>HTTP ERROR 404 Not Found</h2></body></html>\n"

func notFound() *reply {
	return newReply(http.StatusNotFound, "text/html;charset=utf-8", []byte(notFoundBody))
}

func methodNotAllowed(allow string) *reply {
	r := textReply(http.StatusMethodNotAllowed, "Method Not Allowed")
	r.header.Set("Allow", allow)
	return r
}

// ServeHTTP answers one request as Jenkins would. Order of checks: Fault
// delay, Fault status, path prefix (404), credentials (401), anonymous
// (403), crumb (403, with RequireCrumb), then the endpoint with its item
// visibility (404) and permission (403) checks.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := Request{
		Method: r.Method,
		Path:   r.URL.EscapedPath(),
		Query:  r.URL.RawQuery,
		Crumb:  r.Header.Get(crumbField) != "",
	}
	f := s.getFault()
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			_, rec.Auth, _ = s.authenticate(r)
			s.logRequest(rec)
			return
		}
	}
	rp := s.handle(r, &rec, f)
	rec.Status = rp.status
	s.logRequest(rec)

	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	h.Set("X-Jenkins", s.version)
	h.Set("X-Hudson", "1.395")
	h.Set("X-Jenkins-Session", s.instance)
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(rp.status)
	if r.Method != http.MethodHead {
		if rp.stream != nil {
			_, _ = io.Copy(w, rp.stream)
		} else {
			_, _ = w.Write(rp.body)
		}
	}
}

// reqCtx is what a handler knows about the request it serves.
type reqCtx struct {
	s        *Server
	r        *http.Request
	user     *user // nil: anonymous
	grants   map[string]perm
	rootURL  string // the root URL of JSON answers: absolute, with the prefix and a trailing "/"
	rootJSON []byte // rootURL escaped for a JSON string
	// selfURL is the root as this request reached it, for Location.
	selfURL string
	now     time.Time
}

func (rc *reqCtx) rootPerm() perm { return rc.grants[""] }

// childPerm derives an item's permissions from its parent's: a grant on a
// folder covers everything below it.
func (rc *reqCtx) childPerm(parent perm, it *item) perm {
	if parent == pAll {
		return pAll
	}
	return parent | rc.grants[it.grantKey]
}

// permOf returns the user's permissions on it and whether the user can see
// it: Read on it and on every folder above it.
func (rc *reqCtx) permOf(it *item) (perm, bool) {
	var chain []*item
	for x := it; x.parent != nil; x = x.parent {
		chain = append(chain, x)
	}
	p := rc.rootPerm()
	for i := len(chain) - 1; i >= 0; i-- {
		p = rc.childPerm(p, chain[i])
		if p&pRead == 0 {
			return p, false
		}
	}
	return p, true
}

func (s *Server) handle(r *http.Request, rec *Request, f Fault) *reply {
	u, kind, failure := s.authenticate(r)
	rec.Auth = kind
	if u != nil {
		rec.User = u.id
	}
	if f.Status != 0 {
		return textReply(f.Status, http.StatusText(f.Status))
	}
	rest, ok := s.stripPrefix(rec.Path)
	if !ok {
		return notFound()
	}
	if failure != "" {
		rp := textReply(http.StatusUnauthorized, failure)
		rp.header.Set("WWW-Authenticate", `Basic realm="Jenkins"`)
		return rp
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	rc := &reqCtx{s: s, r: r, user: u, now: now, rootURL: s.rootURL(r), selfURL: s.requestRoot(r)}
	rc.rootJSON = appendEscaped(nil, rc.rootURL)
	if u != nil {
		rc.grants = s.grants[u.id]
	}
	if u == nil {
		// Anonymous has no permission at all, not even Overall/Read. (Real
		// Jenkins would first answer an anonymous POST with the crumb
		// error; both are 403.)
		rp := textReply(http.StatusForbidden, "Authentication required")
		rp.header.Set("X-You-Are-Authenticated-As", "anonymous")
		return rp
	}
	if r.Method == http.MethodPost && s.requireCrumb && !s.validCrumb(r, u) {
		return textReply(http.StatusForbidden, "No valid crumb was included in the request")
	}
	segs, ok := splitPath(rest)
	if !ok {
		return textReply(http.StatusBadRequest, "Bad Request")
	}
	return s.route(rc, segs)
}

func (s *Server) stripPrefix(path string) (string, bool) {
	if s.prefix == "" {
		return path, true
	}
	if path == s.prefix {
		return "/", true
	}
	if strings.HasPrefix(path, s.prefix+"/") {
		return path[len(s.prefix):], true
	}
	return "", false
}

// splitPath splits an escaped path into segments, decoding each once: a
// job named "feature%2Flogin" arrives as "feature%252Flogin", while a raw
// "%2F" decodes to a "/" inside one segment and names nothing.
func splitPath(p string) ([]string, bool) {
	var segs []string
	for _, raw := range strings.Split(p, "/") {
		if raw == "" {
			continue
		}
		seg, err := url.PathUnescape(raw)
		if err != nil {
			return nil, false
		}
		segs = append(segs, seg)
	}
	return segs, true
}

// rootURL is the root of the URLs in JSON answers (Jenkins.getRootUrl):
// the configured one, else the request's.
func (s *Server) rootURL(r *http.Request) string {
	if s.configuredRoot != "" {
		return s.configuredRoot
	}
	return s.requestRoot(r)
}

// requestRoot is the root as the request reached it.
func (s *Server) requestRoot(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + s.prefix + "/"
}

// authenticate checks the Authorization header: Basic id:apiToken, or
// Bearer when Options.BearerAuth is set. failure is the 401 message.
func (s *Server) authenticate(r *http.Request) (u *user, kind, failure string) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, "none", ""
	}
	scheme, cred, _ := strings.Cut(h, " ")
	cred = strings.TrimSpace(cred)
	switch strings.ToLower(scheme) {
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(cred)
		if err != nil {
			return nil, "invalid", "Invalid Basic authentication header"
		}
		id, token, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, "invalid", "Invalid Basic authentication header"
		}
		s.mu.Lock()
		known := s.users[id]
		s.mu.Unlock()
		want := []byte("\x00no such user")
		if known != nil {
			want = known.token
		}
		// Compare even for unknown users so timing does not reveal ids.
		match := subtle.ConstantTimeCompare([]byte(token), want) == 1
		if known == nil || !match || len(known.token) == 0 {
			return nil, "invalid", "Invalid password/token for user: " + id
		}
		return known, "basic", ""
	case "bearer":
		if s.bearer == nil {
			return nil, "invalid", "Bearer authentication is not enabled"
		}
		id, ok := s.bearer(cred)
		if !ok || id == "" {
			return nil, "invalid", "Invalid bearer token"
		}
		s.mu.Lock()
		known := s.users[id]
		s.mu.Unlock()
		if known == nil {
			known = &user{id: id, fullName: id}
		}
		return known, "bearer", ""
	}
	return nil, "invalid", "Unsupported authentication scheme"
}

func (s *Server) cookieName() string { return "JSESSIONID." + s.instance }

func (s *Server) mac(parts ...string) string {
	m := hmac.New(sha256.New, s.secret)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return hex.EncodeToString(m.Sum(nil))
}

// session returns the request's session id if its cookie carries one this
// server issued. Sessions are signed rather than stored, so a long demo
// does not accumulate them.
func (s *Server) session(r *http.Request) (string, bool) {
	c, err := r.Cookie(s.cookieName())
	if err != nil {
		return "", false
	}
	id, sig, ok := strings.Cut(c.Value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.mac("session", id)[:16])) {
		return "", false
	}
	return c.Value, true
}

func (s *Server) newSession() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	return id + "." + s.mac("session", id)[:16]
}

// crumbFor binds a crumb to a user and a session, as DefaultCrumbIssuer
// does since Jenkins 2.176 (SECURITY-626).
func (s *Server) crumbFor(u *user, session string) string {
	return s.mac("crumb", u.id, session)[:32]
}

func (s *Server) validCrumb(r *http.Request, u *user) bool {
	got := r.Header.Get(crumbField)
	if u == nil || got == "" {
		return false
	}
	sess, ok := s.session(r)
	if !ok {
		return false
	}
	return hmac.Equal([]byte(got), []byte(s.crumbFor(u, sess)))
}

// render writes one object as Jenkins's JSON API does, shaped by the
// request's tree parameter or, without one, by def (depth=0).
func (s *Server) render(rc *reqCtx, def string, p perm, write func(e *enc, t *tree)) *reply {
	q := rc.r.URL.Query()
	spec := def
	if v := q.Get("tree"); v != "" {
		spec = v
	}
	t, err := parseTree(spec)
	if err != nil {
		return textReply(http.StatusBadRequest, "Invalid tree parameter: "+err.Error())
	}
	e := &enc{b: make([]byte, 0, 4096), rc: rc, sc: s.schema, perm: p}
	write(e, t)
	body := e.b
	if q.Get("pretty") == "true" {
		var buf bytes.Buffer
		if json.Indent(&buf, body, "", "  ") == nil {
			body = buf.Bytes()
		}
	}
	return newReply(http.StatusOK, "application/json;charset=utf-8", body)
}

func escapePathSegment(s string) string { return jobpath.EscapeSegment(s) }
