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
	// ErrExists is returned when an item with that name (as Jenkins looks
	// it up: case-insensitively at the top level) already exists, or when a
	// path goes through a job.
	ErrExists = errors.New("jenkinstest: item already exists")
	// ErrInvalidSpec is returned for an inconsistent JobSpec or BuildSpec.
	ErrInvalidSpec = errors.New("jenkinstest: invalid spec")
)

// Permission is a Jenkins permission id, as Jenkins prints it in
// X-Required-Permission.
type Permission string

// The permissions the simulator checks. Overall/Read (Hudson.Read, on the
// root) is needed for every URL but a few; Item.Read is needed to see an
// item (on the item and on every folder above it), Item.Discover alone lets
// a user learn that an item exists (403 instead of 404), Item.Build is
// needed to trigger it, Item.Cancel to stop its builds and cancel its queue
// items. Item.Read implies Item.Discover; Hudson.Administer implies all.
//
// Jenkins: core/src/main/java/hudson/model/Item.java (DISCOVER is implied
// by READ) and core/src/main/java/jenkins/model/Jenkins.java (READ,
// ADMINISTER).
const (
	PermOverallRead Permission = "hudson.model.Hudson.Read"
	PermDiscover    Permission = "hudson.model.Item.Discover"
	PermRead        Permission = "hudson.model.Item.Read"
	PermBuild       Permission = "hudson.model.Item.Build"
	PermCancel      Permission = "hudson.model.Item.Cancel"
	PermAdminister  Permission = "hudson.model.Hudson.Administer"
	// PermArtifacts is Run.ARTIFACTS, checked only with
	// Options.ArtifactsPermission (see artifacts.go).
	PermArtifacts Permission = "hudson.model.Run.Artifacts"
)

// The sids Jenkins's authorization strategies know besides user ids: Grant
// to Anonymous gives permissions to requests that carry no accepted
// credential, Grant to Authenticated to every authenticated user.
const (
	Anonymous     = "anonymous"
	Authenticated = "authenticated"
)

// perm is a set of the permissions above.
type perm uint8

const (
	pRead perm = 1 << iota
	pBuild
	pCancel
	pDiscover
	pOverallRead
	pArtifacts
	pAdminister // Hudson.Administer itself, which implies every other

	pAll = pRead | pBuild | pCancel | pDiscover | pOverallRead | pArtifacts | pAdminister
)

func permBits(p Permission) perm {
	switch p {
	case PermOverallRead:
		return pOverallRead
	case PermDiscover:
		return pDiscover
	case PermRead:
		return pRead | pDiscover
	case PermBuild:
		return pBuild
	case PermCancel:
		return pCancel
	case PermAdminister:
		return pAll
	case PermArtifacts:
		return pArtifacts
	}
	return 0
}

// Item classes the simulator knows.
const (
	ClassFreeStyle   = "hudson.model.FreeStyleProject"
	ClassWorkflowJob = "org.jenkinsci.plugins.workflow.job.WorkflowJob"
	ClassFolder      = "com.cloudbees.hudson.plugins.folder.Folder"
	ClassMultiBranch = "org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject"
	ClassOrgFolder   = "jenkins.branch.OrganizationFolder"
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
	// 0 means the instance's (Options.QuietPeriod, 5 s by default), as a
	// job without its own quiet period has in Jenkins
	// (AbstractProject.getQuietPeriod falls back to Jenkins.getQuietPeriod);
	// NoQuietPeriod (any negative value) is a job quiet period of 0.
	// Jenkins counts quiet periods in whole seconds: the rest is dropped.
	QuietPeriod time.Duration
	// Duration is how long each build runs; default 10s.
	Duration time.Duration
	Params   []Param
	// Log holds the console lines each build prints, spread evenly over
	// Duration; nil means a short plausible build script.
	Log []string
	// Result of new builds: "" (SUCCESS), SUCCESS, FAILURE or UNSTABLE.
	Result string
	// Tests, if set, is the test report of each build. A freestyle build
	// publishes it when it finishes; a Pipeline build when its "junit"
	// step runs, that is once the console line "[Pipeline] junit" has
	// been printed (the default Pipeline log has one), else when it
	// finishes.
	Tests *TestReport
}

// NoQuietPeriod as a JobSpec.QuietPeriod or Options.QuietPeriod is a quiet
// period of zero: a new queue item may start at once.
const NoQuietPeriod time.Duration = -1

// Param is a parameter definition of a job.
type Param struct {
	Name string
	// Type is "string", "text", "boolean", "choice", "password" or "file"
	// (hudson.model.FileParameterDefinition: no default, and a value
	// only from a multipart file upload).
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
	// Artifacts, Changes and RemoteURLs: what the build archived and the
	// SCM changes it built (see artifacts.go, changes.go).
	Artifacts  []Artifact
	Changes    []Commit
	RemoteURLs []string
}

// TestReport is a JUnit report attached to a build.
type TestReport struct {
	Cases []TestCase
	// Children, if set, makes the report an aggregated one, as a matrix
	// or Maven build has (hudson.tasks.test.AggregatedTestResultAction):
	// one report per child run (matrix configuration or Maven module),
	// counted together; Cases is then ignored.
	Children []ChildReport
	// Class is the aggregated report's class: "" means
	// "hudson.matrix.MatrixTestResult"; a Maven build's is
	// "hudson.maven.reporters.SurefireAggregatedReport". Ignored without
	// Children.
	Class string
}

// ChildReport is the report of one child run of an aggregated TestReport.
type ChildReport struct {
	// Name is the child's URL segment below the job: a matrix
	// configuration such as "jdk=17", or a Maven module such as
	// "com.example$core". The child runs themselves are not simulated:
	// only their reference (number, url) appears in the report.
	Name  string
	Cases []TestCase
}

// TestCase is one test case of a TestReport.
type TestCase struct {
	Suite, Class, Name string
	// Status is PASSED, FAILED, SKIPPED, REGRESSION or FIXED. REGRESSION
	// and FIXED are what junit plugins before 1363 report; a newer one
	// (the default, see Options.LegacyJUnitStatus) reports them as FAILED
	// and PASSED (CaseResult.getStatus).
	Status       string
	ErrorDetails string
	Duration     float64 // seconds
}

// FolderSpec describes a folder added with AddFolderSpec.
type FolderSpec struct {
	// Class is ClassFolder ("" means that) or another folder-like class
	// such as ClassMultiBranch or ClassOrgFolder. It changes the "_class"
	// reported and, for those two, how child names are looked up: a
	// multibranch project or organization folder also finds a child by
	// the decoded and the encoded spelling of its name (see lookup).
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
	groups       []string // the security realm's groups (SetUserGroups)
}

type item struct {
	name     string
	fullName string
	grantKey string // fullName with its first segment case-folded, the key of grants
	key      string // the key in the parent's children: the name, case-folded at the top level only
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
	// upstream, when set, makes the cause an UpstreamCause (corpus.go).
	upstream *upstreamCause
}

// logLine is the cause as Cause.print writes it to the log: a user's name
// is a hyperlink note to the user (ModelHyperlinkNote.encodeTo).
//
// Jenkins: core/src/main/java/hudson/model/Cause.java, UserIdCause.print.
func (c cause) logLine() string {
	if c.upstream != nil {
		return c.upstream.logLine()
	}
	if c.userID == "" {
		return "Started by timer"
	}
	return "Started by user " + HyperlinkNote("/user/"+strings.ToLower(c.userID), c.userName)
}

func (c cause) short() string {
	if c.upstream != nil {
		return c.upstream.short()
	}
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
	causes   []cause      // CauseAction.getCauses: each cause as often as it was folded in
	start    time.Time
	duration time.Duration // planned while building, actual afterwards
	building bool
	// onNode and onExecutor are where the build runs (nodes.go): the
	// node's name ("" the built-in node) and the executor's number.
	onNode     string
	onExecutor int
	result     string // final result; planned while building
	lines      []string
	emitted    int
	log        []byte
	console    Console // the console text instead of log, when set
	tests      *TestReport
	// published: the build has attached its test report (a Pipeline's
	// junit step ran, or the build finished).
	published bool
	scm       buildSCM // artifacts and change log (artifacts.go)
	// pipe is the flow graph of a build added with AddPipelineBuild
	// (pipeline.go); nil for every other build.
	pipe *pipeRun
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

// lookup is ItemGroup.getItem(name), without the permission check.
//
// Only the root folds case: Jenkins.items is a map ordered by
// String.CASE_INSENSITIVE_ORDER, while a folder's children are the map
// ItemGroupMixIn.loadChildren builds when the folder is loaded, a plain
// CopyOnWriteMap.Tree, so below the top level names are case-sensitive
// once Jenkins has restarted (which is the state the simulator models).
// Jenkins: core/src/main/java/jenkins/model/Jenkins.java (field items,
// Jenkins.getItem); core/src/main/java/hudson/model/ItemGroupMixIn.java,
// ItemGroupMixIn.loadChildren; cloudbees-folder-plugin
// src/main/java/com/cloudbees/hudson/plugins/folder/AbstractFolder.java,
// AbstractFolder.onLoad.
//
// A multibranch project or an organization folder then tries the name
// NameEncoder-decoded (when it holds a "%") and NameEncoder-encoded, so
// "feature%2Flogin", "feature/login" and "feature%252Flogin" all reach the
// branch job named "feature%2Flogin". Jenkins: branch-api-plugin
// src/main/java/jenkins/branch/MultiBranchProject.java,
// MultiBranchProject.getItem; OrganizationFolder.getItem.
func (it *item) lookup(name string) *item {
	if it.children == nil {
		return nil
	}
	if it.parent == nil {
		return it.children[foldName(name)]
	}
	if c := it.children[name]; c != nil {
		return c
	}
	if it.class != ClassMultiBranch && it.class != ClassOrgFolder {
		return nil
	}
	if strings.Contains(name, "%") {
		if c := it.children[nameDecode(name)]; c != nil {
			return c
		}
	}
	return it.children[nameEncode(name)]
}

func foldName(s string) string { return strings.ToLower(s) }

// childKey is the key of a child named name in it's children.
func (it *item) childKey(name string) string {
	if it.parent == nil {
		return foldName(name)
	}
	return name
}

// grantKeyOf is the key of grants for an item's full name: its top-level
// segment is case-folded, as Jenkins finds it whatever its case; the rest
// is exact.
func grantKeyOf(fullName string) string {
	top, rest, ok := strings.Cut(fullName, "/")
	if !ok {
		return foldName(top)
	}
	return foldName(top) + "/" + rest
}

// nameEncode is branch-api's NameEncoder.encode: the names of branch jobs.
// Jenkins: branch-api-plugin src/main/java/jenkins/branch/NameEncoder.java,
// NameEncoder.encode.
func nameEncode(name string) string {
	switch name {
	case "":
		return "%00"
	case ".":
		return "%2E"
	case "..":
		return "%2E."
	}
	var b strings.Builder
	for _, c := range name {
		switch c {
		case '#':
			b.WriteString("%23")
		case '%':
			b.WriteString("%25")
		case '/':
			b.WriteString("%2F")
		case '?':
			b.WriteString("%3F")
		case '[':
			b.WriteString("%5B")
		case ']':
			b.WriteString("%5D")
		case '\\':
			b.WriteString("%5C")
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// unescapeName is the character "%" + a + b stands for in NameEncoder's
// escapes, or 0.
func unescapeName(a, b rune) rune {
	switch string([]rune{a, b}) {
	case "23":
		return '#'
	case "25":
		return '%'
	case "2F":
		return '/'
	case "3F":
		return '?'
	case "5B":
		return '['
	case "5C":
		return '\\'
	case "5D":
		return ']'
	}
	return 0
}

// nameDecode is NameEncoder.decode, quirks included: only the escapes
// nameEncode writes (upper-case hex) are decoded, others are kept, and an
// escape cut by the end of the name is dropped. Jenkins: branch-api-plugin
// src/main/java/jenkins/branch/NameEncoder.java, NameEncoder.decode.
func nameDecode(name string) string {
	if !strings.Contains(name, "%") {
		return name
	}
	switch name {
	case "%00":
		return ""
	case "%2E":
		return "."
	case "%2E.":
		return ".."
	}
	var b strings.Builder
	state := 0
	var match rune
	for _, c := range name {
		switch state {
		case 1:
			if c == '2' || c == '3' || c == '5' {
				match, state = c, 2
			} else {
				b.WriteRune('%')
				b.WriteRune(c)
				state = 0
			}
		case 2:
			if dec := unescapeName(match, c); dec != 0 {
				b.WriteRune(dec)
			} else {
				b.WriteRune('%')
				b.WriteRune(match)
				b.WriteRune(c)
			}
			state = 0
		default:
			if c == '%' {
				state = 1
			} else {
				b.WriteRune(c)
			}
		}
	}
	return b.String()
}

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
		grantKey:  grantKeyOf(fullName),
		key:       it.childKey(name),
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

// idKey is the key of a user id: Jenkins's default IdStrategy is
// case-insensitive, so "Alice" and "alice" are one user.
// Jenkins: core/src/main/java/jenkins/model/IdStrategy.java,
// IdStrategy.CaseInsensitive.keyFor (id.toLowerCase(Locale.ENGLISH)).
func idKey(id string) string { return strings.ToLower(id) }

// AddUser adds (or replaces) a user; Basic authentication is id:apiToken,
// the id compared case-insensitively as Jenkins does; /me reports the id
// given here.
func (s *Server) AddUser(id, fullName, apiToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if fullName == "" {
		fullName = id
	}
	s.users[idKey(id)] = &user{id: id, fullName: fullName, token: []byte(apiToken)}
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
	case "string", "text", "boolean", "choice", "password", "file":
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
		spec.QuietPeriod = NoQuietPeriod
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
		case "file":
			// ParameterDefinition.getDefaultParameterValue: null.
			p.Default = nil
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
	nb.causes = []cause{s.causeFor(b.UserID)}
	nb.lines = b.Log
	if nb.lines == nil {
		nb.lines = jobLines(j)
	}
	nb.lines = append([]string(nil), nb.lines...)
	nb.tests = b.Tests
	if nb.scm, err = newBuildSCM(b); err != nil {
		return 0, fmt.Errorf("jenkinstest: add build to %q: %w", job, err)
	}
	nb.number = j.nextBuild
	j.nextBuild++
	j.builds = append(j.builds, nb)
	if b.Console != nil {
		nb.console = b.Console
		return nb.number, nil
	}
	nb.startLog()
	if b.Building {
		if nb.tests == nil {
			nb.tests = j.spec.Tests
		}
		s.assignExecutor(nb)
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
	if u := s.users[idKey(userID)]; u != nil {
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
			if d.Type == "file" {
				// No file, no value: FileParameterDefinition has no default.
				continue
			}
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

// Grant gives user (a user id, Anonymous or Authenticated) the permissions
// on path (a full name whose top-level segment is compared
// case-insensitively, like item names) and on everything below it; "" is
// the whole instance, where PermOverallRead and PermAdminister belong.
// Grants add up; there is no revoke. The path need not exist yet.
func (s *Server) Grant(user, path string, perms ...Permission) {
	s.mu.Lock()
	defer s.mu.Unlock()
	path = grantKeyOf(strings.Trim(path, "/"))
	g := s.grants[idKey(user)]
	if g == nil {
		g = map[string]perm{}
		s.grants[idKey(user)] = g
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

// SetExecutors changes the number of the built-in node's executors
// (negative: none) and lets waiting builds start if executors were added.
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
