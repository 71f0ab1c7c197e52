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
	// Executors is the built-in node's number of executors: how many
	// builds run at once when no agent is added (AddNode adds the
	// agents'); 0 means 2, a negative number means none.
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
	// added with AddUser is a user whose full name is its id. A token it
	// refuses is ignored, as the plugin's filter does ("If validation fails
	// for any reason the filter will ignore the token and let the request
	// continue"): the request runs as anonymous, with Anonymous's grants,
	// and skips the crumb check (JwtBearerTokenCrumbExclusion drives the
	// chain itself for a bearer token, valid or not).
	// Jenkins: jwt-auth-filter-plugin README.md and
	// src/main/java/io/jenkins/plugins/jwt/auth/filter/JwtBearerTokenCrumbExclusion.java.
	BearerAuth func(token string) (userID string, ok bool)
	// BearerChallenge makes a refused bearer token a 401 with
	// WWW-Authenticate: Bearer ... error="invalid_token" instead, as the
	// plugin's ProtectedResourceChallengeFilter answers on a path
	// configured as a protected resource.
	BearerChallenge bool
	// NoImplicitOverallRead: authenticated users have Overall/Read only
	// when granted it (Grant(user or Authenticated, "", PermOverallRead)).
	// By default every authenticated user has it, as in the usual matrix
	// set-up that grants "authenticated" Overall/Read.
	NoImplicitOverallRead bool
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
	// QuietPeriod is the instance's quiet period (Manage Jenkins → System
	// → Quiet period), used by jobs without their own: 0 means 5 s, as
	// Jenkins.getQuietPeriod defaults to; NoQuietPeriod (any negative
	// value) means 0.
	QuietPeriod time.Duration
	// LegacyJUnitStatus makes test cases report REGRESSION and FIXED as
	// junit plugins before 1363 did; by default a case's status is only
	// PASSED, FAILED or SKIPPED (CaseResult.getStatus).
	LegacyJUnitStatus bool
	// ArtifactsPermission turns on Run.ARTIFACTS, as the system property
	// hudson.security.ArtifactsPermission=true does: downloading an
	// artifact then needs PermArtifacts besides Item.Read (listing them
	// does not). See artifacts.go.
	ArtifactsPermission bool
	// ResourceRootURL, if set, is Jenkins's resource root URL (Manage
	// Jenkins → Security → Resource Root URL): artifact files are then
	// answered with a 302 to it instead of their bytes. See artifacts.go.
	ResourceRootURL string
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
	bearerCh       bool
	version        string
	configuredRoot string // Options.RootURL
	quietPeriod    time.Duration
	legacyJUnit    bool
	artifactsPerm  bool   // Options.ArtifactsPermission
	resourceRoot   string // Options.ResourceRootURL
	secret         []byte // signs sessions and crumbs
	instance       string // instance id: session cookie name, X-Jenkins-Session
	schema         *schema

	records buildRecords // which build records Jenkins has read from disk

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
	nodes       []*node // agents, by name (nodes.go); executors is the built-in node's
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
	switch {
	case o.QuietPeriod == 0:
		o.QuietPeriod = 5 * time.Second
	case o.QuietPeriod < 0:
		o.QuietPeriod = 0
	}
	prefix := strings.TrimRight(o.Prefix, "/")
	if prefix != "" && !strings.HasPrefix(prefix, "/") {
		prefix = "/" + prefix
	}
	secret := make([]byte, 32)
	_, _ = rand.Read(secret)
	inst := make([]byte, 4)
	_, _ = rand.Read(inst)
	s := &Server{
		clock:          o.Clock,
		prefix:         prefix,
		requireCrumb:   o.RequireCrumb,
		configuredRoot: o.RootURL,
		quietPeriod:    o.QuietPeriod,
		legacyJUnit:    o.LegacyJUnitStatus,
		artifactsPerm:  o.ArtifactsPermission,
		resourceRoot:   o.ResourceRootURL,
		leftTTL:        o.LeftItemTTL,
		bearer:         o.BearerAuth,
		bearerCh:       o.BearerChallenge,
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
	if !o.NoImplicitOverallRead {
		s.grants[Authenticated] = map[string]perm{"": pOverallRead}
	}
	return s
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
// response never tells one from the other. It is Jenkins's own 404 page,
// HTML (web.xml maps 404 to Jenkins.generateNotFoundResponse, which
// renders _404.jelly), reduced to its text. Jenkins:
// core/src/main/java/jenkins/model/Jenkins.java, generateNotFoundResponse;
// core/src/main/resources/jenkins/model/Jenkins/_404.jelly.
const notFoundBody = "<!DOCTYPE html><html><head><title>Not Found [Jenkins]</title></head>" +
	"<body><h1>Oops!</h1><h2>Not Found</h2>" +
	"<p>This page may not exist, or you may not have permission to see it.</p>" +
	"<a href=\"/\">Back to Jenkins</a></body></html>\n"

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
	user     *user           // nil: anonymous
	grants   map[string]perm // the user's (or Anonymous's) grants
	group    map[string]perm // Authenticated's grants, for a user
	rootURL  string          // the root URL of JSON answers: absolute, with the prefix and a trailing "/"
	rootJSON []byte          // rootURL escaped for a JSON string
	// selfURL is the root as this request reached it, for Location.
	selfURL string
	now     time.Time
}

func (rc *reqCtx) rootPerm() perm { return rc.grants[""] | rc.group[""] }

// childPerm derives an item's permissions from its parent's: a grant on a
// folder covers everything below it.
func (rc *reqCtx) childPerm(parent perm, it *item) perm {
	if parent == pAll {
		return pAll
	}
	return parent | rc.grants[it.grantKey] | rc.group[it.grantKey]
}

// jobPerm is what the user holds on it through every grant above it,
// whether or not they may read the folders on the way (an item's ACL
// inherits its folders' grants).
func (rc *reqCtx) jobPerm(it *item) perm {
	var chain []*item
	for x := it; x.parent != nil; x = x.parent {
		chain = append(chain, x)
	}
	p := rc.rootPerm()
	for i := len(chain) - 1; i >= 0; i-- {
		p = rc.childPerm(p, chain[i])
	}
	return p
}

// name is who the request runs as, as Jenkins's Authentication.getName.
func (rc *reqCtx) name() string {
	if rc.user == nil {
		return Anonymous
	}
	return rc.user.id
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
		if failure == errBearerChallenge {
			// jwt-auth-filter's ProtectedResourceChallengeFilter.handle.
			rp := newReply(http.StatusUnauthorized, "application/json;charset=UTF-8",
				[]byte(`{"error":"invalid_token","error_description":"The access token is expired or invalid"}`))
			rp.header.Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="The access token is expired or invalid"`)
			return rp
		}
		// Jenkins: core/src/main/java/jenkins/security/BasicHeaderProcessor.java
		// answers a rejected API token with 401 (BasicHeaderApiTokenAuthenticator).
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
		rc.grants, rc.group = s.grants[idKey(u.id)], s.grants[Authenticated]
	} else {
		rc.grants = s.grants[Anonymous]
	}
	if r.Method == http.MethodPost && (u == nil && !s.bearerExempt(r) || u != nil && s.requireCrumb) && !s.validCrumb(r, u) {
		// CrumbFilter: API tokens and bearer tokens (valid or not, see
		// Options.BearerAuth) are exempt; a POST without credentials is
		// not. Jenkins: core/src/main/java/hudson/security/csrf/CrumbFilter.java.
		return textReply(http.StatusForbidden, "No valid crumb was included in the request")
	}
	segs, ok := splitPath(rest)
	if !ok {
		return textReply(http.StatusBadRequest, "Bad Request")
	}
	if rc.rootPerm()&pOverallRead == 0 && !alwaysReadable(segs) {
		// Jenkins.getTarget checks Overall/Read for every URL but the
		// ALWAYS_READABLE_PATHS and unprotected root actions.
		// Jenkins: core/src/main/java/jenkins/model/Jenkins.java,
		// Jenkins.getTarget, isSubjectToMandatoryReadPermissionCheck.
		return rc.accessDenied(PermOverallRead, "Overall/Read")
	}
	return s.route(rc, segs)
}

// alwaysReadable reports whether Jenkins serves the path without
// Overall/Read: of what the simulator serves, only /whoAmI (an
// UnprotectedRootAction).
func alwaysReadable(segs []string) bool {
	return len(segs) > 0 && segs[0] == "whoAmI"
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
	return requestOrigin(r) + s.prefix + "/"
}

// requestOrigin is the scheme, host and port the request came to.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// errBearerChallenge is authenticate's failure for a refused bearer token
// with Options.BearerChallenge.
const errBearerChallenge = "Invalid bearer token"

// authenticate checks the Authorization header: Basic id:apiToken, or
// Bearer when Options.BearerAuth is set. failure is the 401 message; a
// credential Jenkins ignores (a scheme no filter handles, a bearer token
// jwt-auth-filter refused) is kind "invalid" with no failure: the request
// runs as anonymous.
//
// Jenkins: core/src/main/java/jenkins/security/BasicHeaderProcessor.java
// handles only "Basic"; a wrong API token is a 401 there.
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
		known := s.users[idKey(id)]
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
			return nil, "invalid", "" // no filter reads it
		}
		id, ok := s.bearer(cred)
		if !ok || id == "" {
			if s.bearerCh {
				return nil, "invalid", errBearerChallenge
			}
			return nil, "invalid", "" // ignored by jwt-auth-filter
		}
		s.mu.Lock()
		known := s.users[idKey(id)]
		s.mu.Unlock()
		if known == nil {
			known = &user{id: id, fullName: id}
		}
		return known, "bearer", ""
	}
	return nil, "invalid", "" // no filter reads it
}

// bearerExempt reports whether r carries a bearer token that
// jwt-auth-filter's JwtBearerTokenCrumbExclusion exempts from the crumb
// check, valid or not.
func (s *Server) bearerExempt(r *http.Request) bool {
	scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return s.bearer != nil && strings.EqualFold(scheme, "bearer")
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
	id := Anonymous
	if u != nil {
		id = u.id
	}
	return s.mac("crumb", id, session)[:32]
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

// buildRecords models AbstractLazyLoadRunMap (core/src/main/java/jenkins/
// model/lazy/AbstractLazyLoadRunMap.java, getByNumber and load): Jenkins
// reads a build's record (builds/N/build.xml) from disk the first time
// something asks for it, and keeps it. A job's color (Job.getIconColor
// and Run.getIconColor walk from the newest build down to the newest
// finished one) and its permalinks (lastBuild and the
// others, PermalinkProjectAction.Permalink.resolve) ask for builds from the
// newest down to the one they name; on a controller that just started,
// every job listed with those fields costs such reads.
type buildRecords struct {
	mu   sync.Mutex
	read map[*build]struct{}
}

// touch records that Jenkins read the records of j's builds from the
// newest down to b (all of them when b is nil).
func (r *buildRecords) touch(j *item, b *build) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.read == nil {
		r.read = map[*build]struct{}{}
	}
	for i := len(j.builds) - 1; i >= 0; i-- {
		r.read[j.builds[i]] = struct{}{}
		if j.builds[i] == b {
			return
		}
	}
}

// BuildRecordsRead is the number of build records Jenkins has read from
// disk since it started (see buildRecords): the cost on a cold controller
// of the requests it answered.
func (s *Server) BuildRecordsRead() int {
	s.records.mu.Lock()
	defer s.records.mu.Unlock()
	return len(s.records.read)
}
