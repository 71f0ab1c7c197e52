package jenkinstest

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Errors returned by the Server's set-up methods.
var (
	// ErrNotFound is returned when the job named does not exist (or is a
	// folder).
	ErrNotFound = errors.New("jenkinstest: no such item")
	// ErrExists is returned when an item with that name (compared
	// case-insensitively, as Jenkins does) already exists, or when a path
	// goes through a job.
	ErrExists = errors.New("jenkinstest: item already exists")
	// ErrInvalidSpec is returned for an inconsistent JobSpec or BuildSpec.
	ErrInvalidSpec = errors.New("jenkinstest: invalid spec")
)

// Permission is a Jenkins permission id, as Jenkins prints it in
// X-Required-Permission.
type Permission string

// The permissions the simulator checks. Item.Read is needed to see an item
// (on the item and on every folder above it), Item.Build to trigger it,
// Item.Cancel to stop its builds and cancel its queue items. Hudson.Administer
// implies all of them.
const (
	PermRead       Permission = "hudson.model.Item.Read"
	PermBuild      Permission = "hudson.model.Item.Build"
	PermCancel     Permission = "hudson.model.Item.Cancel"
	PermAdminister Permission = "hudson.model.Hudson.Administer"
)

// perm is a set of the permissions above.
type perm uint8

const (
	pRead perm = 1 << iota
	pBuild
	pCancel

	pAll = pRead | pBuild | pCancel
)

func permBits(p Permission) perm {
	switch p {
	case PermRead:
		return pRead
	case PermBuild:
		return pBuild
	case PermCancel:
		return pCancel
	case PermAdminister:
		return pAll
	}
	return 0
}

// Item classes the simulator knows.
const (
	ClassFreeStyle   = "hudson.model.FreeStyleProject"
	ClassWorkflowJob = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
	ClassFolder      = "com.cloudbees.hudson.plugins.folder.Folder"
	ClassMultiBranch = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
)

// JobSpec describes a job: how its builds behave and what it looks like.
type JobSpec struct {
	// Class is ClassFreeStyle ("" means that) or ClassWorkflowJob.
	Class       string
	Description string
	Disabled    bool
	// Concurrent false: a second build of this job waits as a
	// Queue$BlockedItem while one runs.
	Concurrent bool
	// QuietPeriod: a new queue item is a Queue$WaitingItem for this long.
	QuietPeriod time.Duration
	// Duration is how long each build runs; default 10s.
	Duration time.Duration
	Params   []Param
	// Log holds the console lines each build prints, spread evenly over
	// Duration; nil means a short plausible build script.
	Log []string
	// Result of new builds: "" (SUCCESS), SUCCESS, FAILURE or UNSTABLE.
	Result string
	// Tests, if set, is the test report of each finished build.
	Tests *TestReport
}

// Param is a parameter definition of a job.
type Param struct {
	Name string
	// Type is "string", "text", "boolean", "choice" or "password".
	Type        string
	Description string
	// Default is a string (bool for "boolean"); ignored for "choice",
	// whose default is Choices[0].
	Default any
	Choices []string
}

// BuildSpec describes a past build added with AddBuild.
type BuildSpec struct {
	// Result is "" (SUCCESS), SUCCESS, FAILURE, UNSTABLE, ABORTED or
	// NOT_BUILT. A Building build ends with Result if set, else with its
	// job's JobSpec.Result.
	Result string
	// Building: the build is still running; it ends Duration after
	// Timestamp.
	Building bool
	// Params are the build's parameter values by name (string or bool).
	// A parameterized job's build gets defaults for missing ones.
	Params map[string]any
	// UserID gives the cause "Started by user <full name>"; "" gives
	// "Started by timer".
	UserID string
	// Log holds the console lines; nil means the job's. "Finished: RESULT"
	// is added when the build is finished.
	Log []string
	// Timestamp is the start; zero means now - Duration for a finished
	// build and now for a Building one.
	Timestamp time.Time
	// Duration of the build; zero means the job's Duration.
	Duration time.Duration
	// Tests is the build's test report; nil means none (Building builds
	// get the job's when they finish).
	Tests *TestReport
	// Console, if set, is the build's whole console text, read on demand
	// instead of stored: for logs too large to hold in memory. Log is then
	// ignored and no lines are added to it (no cause, no "Finished:"). Only
	// a finished build may have one.
	Console Console
}

// TestReport is a JUnit report attached to a build.
type TestReport struct{ Cases []TestCase }

// TestCase is one test case of a TestReport.
type TestCase struct {
	Suite, Class, Name string
	// Status is PASSED, FAILED, SKIPPED, REGRESSION or FIXED.
	Status       string
	ErrorDetails string
	Duration     float64 // seconds
}

// FolderSpec describes a folder added with AddFolderSpec.
type FolderSpec struct {
	// Class is ClassFolder ("" means that) or another folder-like class
	// such as ClassMultiBranch; it only changes the "_class" reported.
	Class       string
	Description string
}

// Fault makes every request fail or slow down; the zero Fault is healthy.
type Fault struct {
	// Status, if not 0, answers every request with it (e.g. 503).
	Status int
	// Delay is slept before answering; a request whose context ends first
	// gets no answer (logged with Status 0).
	Delay time.Duration
}

// Request is one entry of the request log.
type Request struct {
	Method string
	Path   string // r.URL.EscapedPath(), exactly as received
	Query  string // r.URL.RawQuery
	User   string // authenticated Jenkins user id; "" when anonymous or rejected
	Auth   string // "basic", "bearer", "none", or "invalid"
	Status int    // status the simulator answered (0: the client went away during a Fault delay)
	Crumb  bool   // a Jenkins-Crumb header was sent
}

type user struct {
	id, fullName string
	token        []byte
}

type item struct {
	name     string
	fullName string
	grantKey string // case-folded fullName, the key of grants
	key      string // case-folded name: Jenkins looks items up case-insensitively
	urlPath  string // "job/a/job/b/", each segment escaped
	parent   *item  // nil for the root
	folder   bool
	class    string
	desc     string

	children map[string]*item // by key
	kids     []*item          // sorted by key when !dirty
	dirty    bool

	spec      JobSpec
	builds    []*build // oldest first
	nextBuild int
}

type paramValue struct {
	name, typ string
	value     any // string or bool
}

type cause struct {
	userID, userName string // "" userID: timer
}

// logLine is the cause as Cause.print writes it to the log: a user's name
// is a hyperlink note to the user (ModelHyperlinkNote.encodeTo).
//
// Jenkins: core/src/main/java/hudson/model/Cause.java, UserIdCause.print.
func (c cause) logLine() string {
	if c.userID == "" {
		return "Started by timer"
	}
	return "Started by user " + HyperlinkNote("/user/"+strings.ToLower(c.userID), c.userName)
}

func (c cause) short() string {
	if c.userID == "" {
		return "Started by timer"
	}
	return "Started by user " + c.userName
}

type build struct {
	job      *item
	number   int
	queueID  int64
	params   []paramValue // nil: no ParametersAction
	cause    cause
	start    time.Time
	duration time.Duration // planned while building, actual afterwards
	building bool
	result   string // final result; planned while building
	lines    []string
	emitted  int
	log      []byte
	console  Console // the console text instead of log, when set
	tests    *TestReport
}

func (b *build) end() time.Time { return b.start.Add(b.duration) }

func (it *item) isJob() bool { return it.parent != nil && !it.folder }

func (it *item) sortedKids() []*item {
	if it.dirty {
		sort.Slice(it.kids, func(i, j int) bool {
			if it.kids[i].key != it.kids[j].key {
				return it.kids[i].key < it.kids[j].key
			}
			return it.kids[i].name < it.kids[j].name
		})
		it.dirty = false
	}
	return it.kids
}

func (it *item) lookup(name string) *item {
	if it.children == nil {
		return nil
	}
	return it.children[foldName(name)]
}

func foldName(s string) string { return strings.ToLower(s) }

func newRoot() *item {
	return &item{folder: true, class: "hudson.model.Hudson", children: map[string]*item{}}
}

func (it *item) addChild(name string, folder bool, class string) *item {
	fullName := name
	if it.parent != nil {
		fullName = it.fullName + "/" + name
	}
	c := &item{
		name:      name,
		fullName:  fullName,
		grantKey:  foldName(fullName),
		key:       foldName(name),
		urlPath:   it.urlPath + "job/" + jobpath.EscapeSegment(name) + "/",
		parent:    it,
		folder:    folder,
		class:     class,
		nextBuild: 1,
	}
	if folder {
		c.children = map[string]*item{}
	}
	it.children[c.key] = c
	it.kids = append(it.kids, c)
	it.dirty = true
	return c
}

// AddUser adds (or replaces) a user; Basic authentication is id:apiToken.
func (s *Server) AddUser(id, fullName, apiToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fullName == "" {
		fullName = id
	}
	s.users[id] = &user{id: id, fullName: fullName, token: []byte(apiToken)}
}

// AddFolder creates the folder at path (a canonical job path, see
// jobpath.Parse) and any missing folder above it. An existing folder is not
// an error; an existing job is.
func (s *Server) AddFolder(path string) error {
	return s.AddFolderSpec(path, FolderSpec{})
}

// AddFolderSpec is AddFolder with a class and description for the folder at
// path itself (missing parents are plain folders).
func (s *Server) AddFolderSpec(path string, spec FolderSpec) error {
	p, err := jobpath.Parse(path)
	if err != nil {
		return fmt.Errorf("jenkinstest: add folder %q: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := s.ensureFolders(p.Segments())
	if err != nil {
		return fmt.Errorf("jenkinstest: add folder %q: %w", path, err)
	}
	if spec.Class != "" {
		f.class = spec.Class
	}
	if spec.Description != "" {
		f.desc = spec.Description
	}
	return nil
}

func (s *Server) ensureFolders(segs []string) (*item, error) {
	cur := s.root
	for _, seg := range segs {
		next := cur.lookup(seg)
		switch {
		case next == nil:
			next = cur.addChild(seg, true, ClassFolder)
		case !next.folder:
			return nil, fmt.Errorf("%w: %q is a job, not a folder", ErrExists, next.fullName)
		case next.name != seg:
			return nil, fmt.Errorf("%w: %q differs only in case from %q", ErrExists, seg, next.fullName)
		}
		cur = next
	}
	return cur, nil
}

// AddJob creates the job at path, creating missing parent folders (plain
// Folders) on the way.
func (s *Server) AddJob(path string, spec JobSpec) error {
	p, err := jobpath.Parse(path)
	if err != nil {
		return fmt.Errorf("jenkinstest: add job %q: %w", path, err)
	}
	spec, err = normalizeJob(spec)
	if err != nil {
		return fmt.Errorf("jenkinstest: add job %q: %w", path, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	parent, err := s.ensureFolders(p.Parent().Segments())
	if err != nil {
		return fmt.Errorf("jenkinstest: add job %q: %w", path, err)
	}
	if parent.lookup(p.Name()) != nil {
		return fmt.Errorf("jenkinstest: add job %q: %w", path, ErrExists)
	}
	j := parent.addChild(p.Name(), false, spec.Class)
	j.spec = spec
	j.desc = spec.Description
	return nil
}

func validParamType(t string) bool {
	switch t {
	case "string", "text", "boolean", "choice", "password":
		return true
	}
	return false
}

func normalizeJob(spec JobSpec) (JobSpec, error) {
	switch spec.Class {
	case "":
		spec.Class = ClassFreeStyle
	case ClassFreeStyle, ClassWorkflowJob:
	default:
		return spec, fmt.Errorf("%w: unsupported job class %q", ErrInvalidSpec, spec.Class)
	}
	if spec.Duration <= 0 {
		spec.Duration = 10 * time.Second
	}
	if spec.QuietPeriod < 0 {
		spec.QuietPeriod = 0
	}
	switch spec.Result {
	case "":
		spec.Result = "SUCCESS"
	case "SUCCESS", "FAILURE", "UNSTABLE":
	default:
		return spec, fmt.Errorf("%w: result %q", ErrInvalidSpec, spec.Result)
	}
	seen := map[string]bool{}
	params := make([]Param, len(spec.Params))
	for i, p := range spec.Params {
		if p.Name == "" || seen[p.Name] {
			return spec, fmt.Errorf("%w: parameter name %q empty or repeated", ErrInvalidSpec, p.Name)
		}
		seen[p.Name] = true
		if !validParamType(p.Type) {
			return spec, fmt.Errorf("%w: parameter %q: type %q", ErrInvalidSpec, p.Name, p.Type)
		}
		p.Choices = append([]string(nil), p.Choices...)
		switch p.Type {
		case "boolean":
			switch d := p.Default.(type) {
			case bool:
			case nil:
				p.Default = false
			case string:
				p.Default = d == "true"
			default:
				return spec, fmt.Errorf("%w: parameter %q: default %T", ErrInvalidSpec, p.Name, p.Default)
			}
		case "choice":
			if len(p.Choices) == 0 {
				return spec, fmt.Errorf("%w: choice parameter %q has no choices", ErrInvalidSpec, p.Name)
			}
			p.Default = p.Choices[0]
		default:
			switch d := p.Default.(type) {
			case string:
			case nil:
				p.Default = ""
			default:
				p.Default = fmt.Sprint(d)
			}
		}
		params[i] = p
	}
	spec.Params = params
	spec.Log = append([]string(nil), spec.Log...)
	return spec, nil
}

// job finds the job at path; callers hold s.mu.
func (s *Server) job(path string) (*item, error) {
	p, err := jobpath.Parse(path)
	if err != nil {
		return nil, err
	}
	cur := s.root
	for _, seg := range p.Segments() {
		if cur.children == nil {
			return nil, ErrNotFound
		}
		if cur = cur.lookup(seg); cur == nil {
			return nil, ErrNotFound
		}
	}
	if !cur.isJob() {
		return nil, fmt.Errorf("%w: %q is a folder", ErrNotFound, path)
	}
	return cur, nil
}

// AddBuild adds a past build (or, with Building, a running one, which
// occupies an executor) to job and returns its number. Its queueId is -1,
// as Jenkins reports for builds whose queue item it does not know, so queue
// ids still start at 1.
func (s *Server) AddBuild(job string, b BuildSpec) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.advance()
	j, err := s.job(job)
	if err != nil {
		return 0, fmt.Errorf("jenkinstest: add build to %q: %w", job, err)
	}
	nb := &build{job: j, queueID: -1, building: b.Building}
	nb.duration = b.Duration
	if nb.duration <= 0 {
		nb.duration = j.spec.Duration
	}
	nb.result = b.Result
	switch nb.result {
	case "":
		nb.result = "SUCCESS"
		if b.Building {
			nb.result = j.spec.Result
		}
	case "SUCCESS", "FAILURE", "UNSTABLE", "ABORTED", "NOT_BUILT":
	default:
		return 0, fmt.Errorf("jenkinstest: add build to %q: %w: result %q", job, ErrInvalidSpec, b.Result)
	}
	nb.start = b.Timestamp
	if nb.start.IsZero() {
		nb.start = now
		if !b.Building {
			nb.start = now.Add(-nb.duration)
		}
	}
	if b.Console != nil && b.Building {
		return 0, fmt.Errorf("jenkinstest: add build to %q: %w: a running build cannot have a Console", job, ErrInvalidSpec)
	}
	nb.params, err = buildParams(j, b.Params)
	if err != nil {
		return 0, fmt.Errorf("jenkinstest: add build to %q: %w", job, err)
	}
	nb.cause = s.causeFor(b.UserID)
	nb.lines = b.Log
	if nb.lines == nil {
		nb.lines = jobLines(j)
	}
	nb.lines = append([]string(nil), nb.lines...)
	nb.tests = b.Tests
	nb.number = j.nextBuild
	j.nextBuild++
	j.builds = append(j.builds, nb)
	if b.Console != nil {
		nb.console = b.Console
		return nb.number, nil
	}
	nb.log = append(nb.log, nb.cause.logLine()...)
	nb.log = append(nb.log, '\n')
	if b.Building {
		if nb.tests == nil {
			nb.tests = j.spec.Tests
		}
		s.running = append(s.running, nb)
		// A build whose end is already past finishes at its own end time.
		s.advance()
	} else {
		nb.emitAll()
		nb.finishLog()
	}
	return nb.number, nil
}

func (s *Server) causeFor(userID string) cause {
	if userID == "" {
		return cause{}
	}
	name := userID
	if u := s.users[userID]; u != nil {
		name = u.fullName
	}
	return cause{userID: userID, userName: name}
}

// buildParams turns AddBuild's map into ordered values: the job's
// definitions first (defaults for missing values), then unknown names
// sorted.
func buildParams(j *item, m map[string]any) ([]paramValue, error) {
	if len(j.spec.Params) == 0 && len(m) == 0 {
		return nil, nil
	}
	out := []paramValue{}
	used := map[string]bool{}
	for _, d := range j.spec.Params {
		v, ok := m[d.Name]
		if !ok {
			out = append(out, paramValue{name: d.Name, typ: d.Type, value: d.Default})
			continue
		}
		used[d.Name] = true
		switch d.Type {
		case "boolean":
			switch x := v.(type) {
			case bool:
			case string:
				v = x == "true"
			default:
				return nil, fmt.Errorf("%w: parameter %q: %T value", ErrInvalidSpec, d.Name, v)
			}
		default:
			if _, ok := v.(string); !ok {
				v = fmt.Sprint(v)
			}
		}
		out = append(out, paramValue{name: d.Name, typ: d.Type, value: v})
	}
	var extra []string
	for k := range m {
		if !used[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		v := m[k]
		if bv, ok := v.(bool); ok {
			out = append(out, paramValue{name: k, typ: "boolean", value: bv})
			continue
		}
		if _, ok := v.(string); !ok {
			v = fmt.Sprint(v)
		}
		out = append(out, paramValue{name: k, typ: "string", value: v})
	}
	return out, nil
}

// Grant gives user the permissions on path (a full name, compared
// case-insensitively like item names) and on everything below it; "" is the
// whole instance. Grants add up; there is no revoke. The path need not
// exist yet.
func (s *Server) Grant(user, path string, perms ...Permission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path = foldName(strings.Trim(path, "/"))
	g := s.grants[user]
	if g == nil {
		g = map[string]perm{}
		s.grants[user] = g
	}
	for _, p := range perms {
		g[path] |= permBits(p)
	}
}

// SetJobDisabled disables or enables a job. Items already queued stay.
func (s *Server) SetJobDisabled(job string, disabled bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j, err := s.job(job)
	if err != nil {
		return fmt.Errorf("jenkinstest: disable %q: %w", job, err)
	}
	j.spec.Disabled = disabled
	return nil
}

// SetExecutors changes the number of executors (negative: none) and lets
// waiting builds start if executors were added.
func (s *Server) SetExecutors(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	s.executors = max(n, 0)
	s.dispatch(s.now)
}

// SetFault makes every following request fail or slow down as f says; the
// zero Fault restores normal service.
func (s *Server) SetFault(f Fault) {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	s.fault = f
}

func (s *Server) getFault() Fault {
	s.faultMu.Lock()
	defer s.faultMu.Unlock()
	return s.fault
}

// maxRequests bounds the request log of a long-running demo.
const maxRequests = 100_000

func (s *Server) logRequest(r Request) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if len(s.reqs) >= 2*maxRequests {
		s.reqs = append(s.reqs[:0:0], s.reqs[len(s.reqs)-maxRequests:]...)
	}
	s.reqs = append(s.reqs, r)
}

// Requests returns a copy of the request log, oldest first. It holds at
// least the last 100,000 requests. Credentials are never logged.
func (s *Server) Requests() []Request {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// ResetRequests empties the request log.
func (s *Server) ResetRequests() {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	s.reqs = nil
}

// Now returns the simulator's time after bringing the simulation up to the
// clock: a test can call it to make state changes happen without a request.
func (s *Server) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.advance()
}
