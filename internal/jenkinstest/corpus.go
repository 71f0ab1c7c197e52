package jenkinstest

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/diagnose/corpus"
)

// upstreamCause is hudson.model.Cause.UpstreamCause: the build of another
// job that triggered this one. It exports upstreamProject (the job's full
// name), upstreamBuild and upstreamUrl (the job's URL below the root),
// whether or not the reader may see that job: Jenkins does not filter
// causes by permission, which is why Butler checks the upstream job as the
// user before naming it. Jenkins: core/src/main/java/hudson/model/Cause.java,
// UpstreamCause (getUpstreamProject, getUpstreamBuild, getUpstreamUrl with
// @Exported(visibility=3), getShortDescription, print).
type upstreamCause struct {
	project string // full name
	build   int
	url     string // the job's URL path below the root, "job/a/job/b/"
}

// short is Messages.Cause_UpstreamCause_ShortDescription.
func (u *upstreamCause) short() string {
	return fmt.Sprintf("Started by upstream project %q build number %d", u.project, u.build)
}

// logLine is UpstreamCause.print: the project and the build as hyperlinks.
func (u *upstreamCause) logLine() string {
	return "Started by upstream project " + HyperlinkNote("/"+u.url, strconv.Quote(u.project)) +
		" build number " + HyperlinkNote("/"+u.url+strconv.Itoa(u.build)+"/", strconv.Itoa(u.build))
}

func upstreamCauseProps() []prop[cause] {
	isUp := func(c cause) bool { return c.upstream != nil }
	return []prop[cause]{
		{name: "upstreamBuild", has: isUp, write: func(e *enc, c cause, _ *tree) { e.int(int64(c.upstream.build)) }},
		{name: "upstreamProject", has: isUp, write: func(e *enc, c cause, _ *tree) { e.str(c.upstream.project) }},
		{name: "upstreamUrl", has: isUp, write: func(e *enc, c cause, _ *tree) { e.str(c.upstream.url) }},
	}
}

// CorpusBuild is what AddCorpusCase made of a case.
type CorpusBuild struct {
	// Job is the failed build's job; Build its number; LastSuccess the
	// number of the successful build before it.
	Job                string
	Build, LastSuccess int
	// Upstream and UpstreamBuild name the build that triggered it, when
	// the case has one.
	Upstream      string
	UpstreamBuild int
}

// AddCorpusCase adds one failed build of internal/diagnose/corpus as
// Jenkins would hold it: a job folder/<case name> (a Pipeline job for a
// Pipeline case; AddJob creates the folder) with a successful build, then
// the case's build, whose console text is exactly the case's, with its
// result, its test report (the case's failing tests), its change set (the
// case's commits) and, when the case has one, the UpstreamCause of a
// build of the upstream job (created at the case's upstream path, so that
// who may see it is decided by the grants of that path, not of folder).
//
// A Pipeline case's build has the flow graph stage-view reports: each
// stage the case's console opens, with the case's status and error, and
// its steps (the atom nodes of the "[Pipeline] <step>" lines within it,
// each with the lines printed until the next "[Pipeline]" line as its log).
// Node ids are those workflow-cps gives the console's nodes (corpus.Stage's
// ids). When the console cannot tell whose a line is (parallel branches
// interleave their lines), the stage gets one step whose log is the
// case's own log of the stage. What get_stage_log reads of a stage is so
// exactly the case's stage log.
//
// The case's upstream build number is not kept: the upstream job's build
// is a real one of the simulator, and the cause names it.
func (s *Server) AddCorpusCase(folder string, c corpus.Case) (CorpusBuild, error) {
	fail := func(err error) (CorpusBuild, error) {
		return CorpusBuild{}, fmt.Errorf("jenkinstest: corpus case %q: %w", c.Name, err)
	}
	out := CorpusBuild{Job: strings.TrimPrefix(folder+"/"+c.Name, "/")}
	spec := JobSpec{Description: c.Description, Duration: time.Minute}
	if c.Pipeline {
		spec.Class = ClassWorkflowJob
	}
	if err := s.AddJob(out.Job, spec); err != nil {
		return fail(err)
	}
	now := s.Now()
	start := now.Add(-2 * time.Hour)
	var up *upstreamCause
	if c.Upstream != nil {
		if err := s.AddJob(c.Upstream.Job, JobSpec{Description: "Triggers " + out.Job, Duration: time.Minute}); err != nil && !errors.Is(err, ErrExists) {
			return fail(err)
		}
		n, err := s.AddBuild(c.Upstream.Job, BuildSpec{Timestamp: start.Add(30 * time.Minute), Duration: time.Minute})
		if err != nil {
			return fail(err)
		}
		up = &upstreamCause{project: c.Upstream.Job, build: n}
		out.Upstream, out.UpstreamBuild = c.Upstream.Job, n
	}
	// The last success: an older commit, which the changes since it must
	// not list.
	okSpec := BuildSpec{Timestamp: start, Duration: time.Minute, Changes: []Commit{{
		ID: "1111111111111111111111111111111111111111", Author: "Jenkins Admin", Message: "Last change that built",
		Time: start.Add(-time.Hour), Paths: []ChangedFile{{EditType: "edit", File: "README.md"}},
	}}}
	var err error
	if c.Pipeline {
		out.LastSuccess, err = s.AddPipelineBuild(out.Job, PipelineBuildSpec{Timestamp: start, Pipeline: corpusPassing(c)})
		if err == nil {
			err = s.setChanges(out.Job, out.LastSuccess, okSpec)
		}
	} else {
		out.LastSuccess, err = s.AddBuild(out.Job, okSpec)
	}
	if err != nil {
		return fail(err)
	}
	b := BuildSpec{Result: c.Result, Timestamp: start.Add(time.Hour), Duration: 10 * time.Minute}
	for _, ch := range c.Changes {
		cm := Commit{ID: ch.ID, Author: ch.Author, Message: ch.Message}
		if t, err := time.Parse(time.RFC3339, ch.Timestamp); err == nil {
			cm.Time = t
		}
		for _, p := range ch.Paths {
			cm.Paths = append(cm.Paths, ChangedFile{EditType: "edit", File: p})
		}
		b.Changes = append(b.Changes, cm)
	}
	if len(c.FailingTests) > 0 {
		r := &TestReport{}
		for _, t := range c.FailingTests {
			r.Cases = append(r.Cases, TestCase{Class: t.Class, Name: t.Name, Status: "FAILED", ErrorDetails: t.Message})
		}
		b.Tests = r
	}
	if c.Pipeline {
		out.Build, err = s.addCorpusPipeline(out.Job, c, b, up)
	} else {
		b.Console = strings.NewReader(c.Console)
		if out.Build, err = s.AddBuild(out.Job, b); err == nil && up != nil {
			err = s.setUpstream(out.Job, out.Build, up)
		}
	}
	if err != nil {
		return fail(err)
	}
	return out, nil
}

// corpusPassing is a passing run of the case's top-level stages.
func corpusPassing(c corpus.Case) PipelineSpec {
	var p PipelineSpec
	seen := map[string]bool{}
	for _, st := range c.Stages {
		if seen[st.Name] {
			continue
		}
		seen[st.Name] = true
		p.Stages = append(p.Stages, StageSpec{Name: st.Name, Steps: []StepSpec{{Function: "sh", Log: []string{"+ ./ci.sh " + strings.ToLower(st.Name), "ok"}}}})
	}
	return p
}

func (s *Server) buildOf(job string, n int) (*build, error) {
	j, err := s.job(job)
	if err != nil {
		return nil, err
	}
	for _, b := range j.builds {
		if b.number == n {
			return b, nil
		}
	}
	return nil, ErrNotFound
}

func (s *Server) setChanges(job string, n int, spec BuildSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.buildOf(job, n)
	if err != nil {
		return err
	}
	b.scm, err = newBuildSCM(spec)
	return err
}

func (s *Server) setUpstream(job string, n int, up *upstreamCause) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := s.buildOf(job, n)
	if err != nil {
		return err
	}
	b.causes = []cause{s.upstreamOf(up)}
	return nil
}

// upstreamOf is the cause naming up, with its job's URL; the caller holds
// s.mu.
func (s *Server) upstreamOf(up *upstreamCause) cause {
	u := *up
	if j, err := s.job(up.project); err == nil {
		u.url = j.urlPath
	}
	return cause{upstream: &u}
}

// stageResults maps stage-view's statuses (the case's) to the results
// the flow graph holds (statusExt maps them back).
var stageResults = map[string]string{
	"SUCCESS": "SUCCESS", "FAILED": "FAILURE", "FAILURE": "FAILURE", "UNSTABLE": "UNSTABLE",
	"ABORTED": "ABORTED", "NOT_EXECUTED": "NOT_EXECUTED",
}

// corpusStep is an atom node read from a case's console.
type corpusStep struct {
	id, line int
	fn       string
	log      strings.Builder
}

// corpusSteps reads a Pipeline console as corpus.SplitStages does (node
// ids counted from the "[Pipeline]" lines, a stage the block that
// "[Pipeline] stage" then "[Pipeline] { (Name)" opens) and returns the
// atom steps of each stage, by stage id, and the number of the last node.
// A "[Pipeline] <step>" line followed by "[Pipeline] {" starts a block
// step (node, withEnv, timeout), not an atom. mixed holds the stages
// with output lines outside any atom of theirs.
func corpusSteps(console string) (steps map[string][]*corpusStep, mixed map[string]bool, last int) {
	type block struct{ stage string }
	steps, mixed = map[string][]*corpusStep{}, map[string]bool{}
	var (
		stack     []block
		node      = 1
		stageNext bool
		pending   *corpusStep // the last atom candidate
		pendingOf string
		current   = map[string]*corpusStep{}
	)
	inner := func() string {
		for i := len(stack) - 1; i >= 0; i-- {
			if stack[i].stage != "" {
				return stack[i].stage
			}
		}
		return ""
	}
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lineNo := 0
	for sc.Scan() {
		line := sc.Text()
		lineNo++
		rest, ok := strings.CutPrefix(line, "[Pipeline] ")
		if !ok {
			if st := inner(); st != "" {
				if cur := current[st]; cur != nil {
					cur.log.WriteString(line)
					cur.log.WriteByte('\n')
				} else {
					mixed[st] = true
				}
			}
			continue
		}
		node++
		isBlockOpen := strings.HasPrefix(rest, "{")
		if pending != nil && isBlockOpen && strings.TrimSpace(rest) == "{" {
			// The candidate was a block step: not an atom.
			l := steps[pendingOf]
			steps[pendingOf] = l[:len(l)-1]
			if current[pendingOf] == pending {
				current[pendingOf] = nil
			}
		}
		pending = nil
		switch {
		case rest == "stage":
			stageNext = true
			continue
		case isBlockOpen:
			b := block{}
			if n := strings.TrimSpace(rest[1:]); stageNext && strings.HasPrefix(n, "(") && strings.HasSuffix(n, ")") {
				b.stage = strconv.Itoa(node)
			}
			stack = append(stack, b)
		case strings.HasPrefix(rest, "}"):
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case strings.HasPrefix(rest, "//"), rest == "Start of Pipeline", rest == "End of Pipeline", rest == "parallel":
		default:
			if st := inner(); st != "" {
				p := &corpusStep{id: node, line: lineNo, fn: strings.Fields(rest)[0]}
				steps[st] = append(steps[st], p)
				current[st] = p
				pending, pendingOf = p, st
			}
		}
		stageNext = false
	}
	return steps, mixed, node
}

// addCorpusPipeline adds the case's failed Pipeline build: its console
// text, and a flow graph of the case's stages and steps (see
// AddCorpusCase), finished.
func (s *Server) addCorpusPipeline(job string, c corpus.Case, spec BuildSpec, up *upstreamCause) (int, error) {
	steps, mixed, last := corpusSteps(c.Console)
	lines := strings.Count(c.Console, "\n") + 1
	start := spec.Timestamp
	// Each console line is a second of the build.
	at := func(line int) time.Time { return start.Add(time.Duration(line) * spec.Duration / time.Duration(lines)) }
	p := &pipeRun{nextID: last}
	for i, st := range c.Stages {
		id, err := strconv.Atoi(st.ID)
		if err != nil {
			return 0, fmt.Errorf("%w: stage id %q", ErrInvalidSpec, st.ID)
		}
		res, ok := stageResults[st.Status]
		if !ok {
			return 0, fmt.Errorf("%w: stage %q status %q", ErrInvalidSpec, st.Name, st.Status)
		}
		endLine := lines
		if i+1 < len(c.Stages) {
			endLine = c.Stages[i+1].Line
		}
		n := &flowNode{id: id, name: st.Name, stage: true, start: at(st.Line), end: at(endLine), result: res,
			errMsg: st.ErrorMessage, errType: st.ErrorType, parents: []int{id - 1}}
		if res == "SUCCESS" {
			n.errMsg, n.errType = "", ""
		}
		p.nodes = append(p.nodes, n)
		if res == "NOT_EXECUTED" {
			continue
		}
		own := steps[st.ID]
		var text strings.Builder
		for _, x := range own {
			text.WriteString(x.log.String())
		}
		if mixed[st.ID] || text.String() != st.Log {
			// The console cannot say which lines are this stage's own:
			// one step holds the case's log of the stage.
			x := &corpusStep{id: p.newID(), line: st.Line, fn: "sh"}
			x.log.WriteString(st.Log)
			own = []*corpusStep{x}
		}
		for k, x := range own {
			e := endLine
			if k+1 < len(own) {
				e = own[k+1].line
			}
			sn := &flowNode{id: x.id, name: stepDisplayName(StepSpec{Function: x.fn}), fn: x.fn, parent: n,
				start: at(x.line), end: at(e), result: "SUCCESS", log: []byte(x.log.String()), parents: []int{x.id - 1}}
			if k == len(own)-1 && res != "SUCCESS" {
				// The stage's last step is the one that threw.
				sn.result, sn.errMsg, sn.errType = res, st.ErrorMessage, st.ErrorType
			}
			p.nodes = append(p.nodes, sn)
		}
	}
	// Nodes in id order, as the flow graph lists them.
	slices.SortFunc(p.nodes, func(a, b *flowNode) int { return a.id - b.id })

	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	j, err := s.job(job)
	if err != nil {
		return 0, err
	}
	b := &build{job: j, queueID: -1, number: j.nextBuild, start: start, duration: spec.Duration, result: spec.Result,
		log: []byte(c.Console), tests: spec.Tests, published: true, pipe: p}
	b.causes = []cause{{}}
	if up != nil {
		b.causes = []cause{s.upstreamOf(up)}
	}
	if b.scm, err = newBuildSCM(spec); err != nil {
		return 0, err
	}
	j.nextBuild++
	j.builds = append(j.builds, b)
	return b.number, nil
}
