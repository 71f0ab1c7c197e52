package tools

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/diagnose"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// diagnose_build (CONTRACT §14): the facts of a build read as the user,
// then internal/diagnose's analysis of them.
//
// A running build is diagnosed on what it has logged so far (result
// IN_PROGRESS, with a hint saying so), not refused: an agent watching a
// build fail wants the cause before the build winds down. A successful
// build is not read beyond the build itself: the answer says it
// succeeded, with no excerpts.

// Bounds of one diagnosis (the catalog's Bounds and JenkinsRequests state
// them). diagnoseTimeout is a variable so tests can shorten it.
var diagnoseTimeout = 20 * time.Second

const (
	// maxDiagnoseScan bounds the log text read, stage logs and console
	// together (the engine's default).
	maxDiagnoseScan = diagnose.DefaultMaxScanBytes
	// maxDiagnoseStages bounds the failed stages whose logs are read.
	maxDiagnoseStages = 8
	// maxDiagnoseStepLogs bounds the step logs read in all.
	maxDiagnoseStepLogs = 40
	// maxBuildsBack bounds the earlier builds read for the changes since
	// the last success.
	maxBuildsBack = 10
)

func addDiagnoseBuild(t *Toolset) (*def, error) {
	return add(t, spec[BuildIn, diagnose.Report]{
		name:   catalog.DiagnoseBuild,
		input:  buildSchema,
		target: func(in *BuildIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *BuildIn) (*diagnose.Report, error) {
			// A diagnosis streams logs as a search does: it takes one of
			// the search slots (searches.go), after the decision and the
			// credential, so a refused call holds none.
			release, busy := t.searches.acquire(c.principal.User)
			if busy != nil {
				return nil, busy
			}
			defer release()
			ctx, cancel := context.WithTimeout(ctx, diagnoseTimeout)
			defer cancel()
			g := &gatherer{t: t, c: c, job: c.target.job}
			defer g.close()
			b, err := g.gather(ctx, buildNumber(in.Build))
			if err != nil {
				return nil, err
			}
			return diagnose.Diagnose(ctx, b, &diagnose.Options{MaxScanBytes: maxDiagnoseScan})
		},
	})
}

// gatherer reads one build's facts as the caller.
type gatherer struct {
	t   *Toolset
	c   *call
	job jobpath.Path

	mu      sync.Mutex
	streams []io.Closer // opened logs, closed when the call ends
	steps   int         // step logs opened
}

func (g *gatherer) jenkins() *jenkins.Client { return g.t.deps.Jenkins }

func (g *gatherer) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.streams {
		s.Close()
	}
	g.streams = nil
}

// hidden reports whether err says the caller may not read a fact (or it
// does not exist): the fact is then left out.
func hidden(err error) bool {
	return errors.Is(err, jenkins.ErrNotFound) || errors.Is(err, jenkins.ErrForbidden)
}

// gather fills a diagnose.Build. Only the build's own read fails the
// call; a fact the caller may not read is left out.
func (g *gatherer) gather(ctx context.Context, number int64) (*diagnose.Build, error) {
	rec, err := g.jenkins().BuildRecord(ctx, g.c.cred, g.job, number, jenkins.ChangesOptions{MaxCommits: diagnose.MaxChanges, MaxPaths: 20})
	if err != nil {
		return nil, err
	}
	b := &diagnose.Build{Result: rec.Result, Pipeline: rec.IsPipeline()}
	if rec.Building {
		b.Result = ""
	}
	if b.Result == "SUCCESS" {
		return b, nil
	}
	b.Upstream = g.upstream(ctx, rec.Upstream)
	if b.Changes, err = g.changesSince(ctx, rec); err != nil {
		return nil, err
	}
	if err := g.tests(ctx, rec.Number, b); err != nil {
		return nil, err
	}
	if b.Pipeline {
		if err := g.stages(ctx, rec.Number, b); err != nil {
			return nil, err
		}
	}
	b.Console = g.lazy(ctx, func(ctx context.Context) (io.ReadCloser, error) {
		return g.jenkins().OpenConsoleText(ctx, g.c.cred, g.job, rec.Number)
	})
	return b, nil
}

// upstream is the first upstream cause, if the caller may see its job:
// the policy would let them read it (as list_all_jobs decides) and
// Jenkins shows it to them. Jenkins exports the cause to every reader of
// the build, the upstream job's name included, so without these checks
// the name of a job hidden from the caller would leak.
func (g *gatherer) upstream(ctx context.Context, causes []jenkins.UpstreamCause) *diagnose.Upstream {
	if len(causes) == 0 {
		return nil
	}
	u := causes[0]
	p, err := jobpath.Parse(u.Project)
	if err != nil {
		return nil
	}
	if d := g.t.deps.Authorizer.Decide(ctx, authz.Request{Principal: g.c.principal, Tool: catalog.GetJob, Job: p.String()}); !d.Allow {
		return nil
	}
	canon, err := g.jenkins().CanonicalPath(ctx, g.c.cred, p)
	if err != nil {
		return nil
	}
	if canon.String() != p.String() {
		if d := g.t.deps.Authorizer.Decide(ctx, authz.Request{Principal: g.c.principal, Tool: catalog.GetJob, Job: canon.String()}); !d.Allow {
			return nil
		}
	}
	return &diagnose.Upstream{Job: canon.String(), Build: u.Build}
}

// changesSince are the commits of the build and of the builds before it
// back to the last successful one (at most maxBuildsBack of them), newest
// first, at most diagnose.MaxChanges+1 (one more tells the engine some
// were left out). A build that is gone (or hidden) is skipped; a read
// that fails ends the walk.
func (g *gatherer) changesSince(ctx context.Context, rec *jenkins.BuildRecord) ([]diagnose.Commit, error) {
	var out []diagnose.Commit
	take := func(ch *jenkins.Changes) {
		// Jenkins lists a change set's commits oldest first.
		for i := len(ch.Commits) - 1; i >= 0 && len(out) <= diagnose.MaxChanges; i-- {
			out = append(out, commitOf(ch.Commits[i]))
		}
	}
	take(rec.Changes)
	for k, walked := rec.Number-1, 0; k >= 1 && walked < maxBuildsBack && len(out) <= diagnose.MaxChanges; k, walked = k-1, walked+1 {
		r, err := g.jenkins().BuildRecord(ctx, g.c.cred, g.job, k, jenkins.ChangesOptions{MaxCommits: diagnose.MaxChanges + 1 - len(out), MaxPaths: 20})
		switch {
		case hidden(err):
			continue
		case err != nil:
			if ctx.Err() != nil {
				return out, nil
			}
			return nil, err
		}
		if r.Result == "SUCCESS" {
			break
		}
		take(r.Changes)
	}
	return out, nil
}

func commitOf(c jenkins.Commit) diagnose.Commit {
	out := diagnose.Commit{ID: c.ID, Author: c.Author, Message: c.Message}
	if c.Timestamp >= 0 {
		out.Timestamp = time.UnixMilli(c.Timestamp).UTC().Format(time.RFC3339)
	}
	for _, p := range c.Paths {
		out.Paths = append(out.Paths, p.File)
	}
	return out
}

// tests reads the failing tests of the build's report, if it has one the
// caller may read.
func (g *gatherer) tests(ctx context.Context, number int64, b *diagnose.Build) error {
	r, err := g.jenkins().TestReport(ctx, g.c.cred, g.job, number)
	switch {
	case hidden(err):
		return nil
	case err != nil:
		return err
	}
	for _, tc := range r.Cases {
		if tc.Failed() && len(b.FailingTests) < diagnose.MaxFailingTests {
			name := tc.Name
			if tc.Child != "" {
				name += " [" + tc.Child + "]"
			}
			b.FailingTests = append(b.FailingTests, diagnose.Test{Name: name, Class: tc.Class, Message: tc.ErrorDetails})
		}
	}
	b.FailingTestsTotal = max(r.Failed, len(b.FailingTests))
	return nil
}

// failedStatus orders the stages whose logs are read as the engine reads
// them: failed, unstable, aborted.
var failedStatus = []string{jenkins.StageFailed, jenkins.StageUnstable, jenkins.StageAborted}

// stages reads the build's stages and gives the failed ones (at most
// maxDiagnoseStages) their logs: the logs of their steps, streamed one
// after the other when the engine reads them, at most
// maxDiagnoseStepLogs in all. A build stage-view cannot describe (no
// plugin, or hidden) is read from its console only.
func (g *gatherer) stages(ctx context.Context, number int64, b *diagnose.Build) error {
	r, err := g.jenkins().PipelineRun(ctx, g.c.cred, g.job, number)
	switch {
	case hidden(err), errors.Is(err, jenkins.ErrNotPipeline), errors.Is(err, jenkins.ErrUnavailable) && ctx.Err() == nil && !isTimeout(err):
		return nil
	case err != nil:
		return err
	}
	for _, st := range r.Stages {
		s := diagnose.Stage{ID: st.ID, Name: st.Name, Status: st.Status}
		if st.Error != nil {
			s.ErrorType, s.ErrorMessage = st.Error.Type, st.Error.Message
		}
		b.Stages = append(b.Stages, s)
	}
	read := 0
	for _, want := range failedStatus {
		for i := range b.Stages {
			st := &b.Stages[i]
			if st.Status != want || read == maxDiagnoseStages {
				continue
			}
			read++
			d, err := g.jenkins().Stage(ctx, g.c.cred, g.job, r.Number, st.ID)
			switch {
			case hidden(err):
				continue
			case err != nil:
				return err
			}
			var ids []string
			for _, s := range d.Steps {
				if s.HasLog && s.Status != jenkins.StageNotExecuted {
					ids = append(ids, s.ID)
				}
			}
			st.Log = g.stepLogs(ctx, r.Number, ids)
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var je *jenkins.Error
	return errors.As(err, &je) && je.Timeout
}

// stepLogs is a reader of the logs of steps ids, one after the other,
// each opened when the one before it ends.
func (g *gatherer) stepLogs(ctx context.Context, number int64, ids []string) io.Reader {
	readers := make([]io.Reader, 0, len(ids))
	for _, id := range slices.Clone(ids) {
		readers = append(readers, g.lazy(ctx, func(ctx context.Context) (io.ReadCloser, error) {
			g.mu.Lock()
			over := g.steps >= maxDiagnoseStepLogs
			if !over {
				g.steps++
			}
			g.mu.Unlock()
			if over {
				return nil, errStepBudget
			}
			return g.jenkins().OpenStepLog(ctx, g.c.cred, g.job, number, id)
		}))
	}
	return io.MultiReader(readers...)
}

var errStepBudget = errors.New("step log budget spent")

// lazy is a reader that opens its log when first read. A log the caller
// may not read (or over the step budget) reads as empty; so does the rest
// of one when the call's time is up (the engine then says the scan was
// cut); another failure is the reader's error.
func (g *gatherer) lazy(ctx context.Context, open func(context.Context) (io.ReadCloser, error)) io.Reader {
	return &lazyLog{g: g, ctx: ctx, open: open}
}

type lazyLog struct {
	g    *gatherer
	ctx  context.Context
	open func(context.Context) (io.ReadCloser, error)
	r    io.ReadCloser
	done bool
}

func (l *lazyLog) Read(p []byte) (int, error) {
	if l.done {
		return 0, io.EOF
	}
	if l.r == nil {
		r, err := l.open(l.ctx)
		switch {
		case err == nil:
		case hidden(err), errors.Is(err, errStepBudget), l.ctx.Err() != nil:
			l.done = true
			return 0, io.EOF
		default:
			return 0, err
		}
		l.r = r
		l.g.mu.Lock()
		l.g.streams = append(l.g.streams, r)
		l.g.mu.Unlock()
	}
	n, err := l.r.Read(p)
	if err != nil {
		l.done = true
		l.r.Close()
		if err == io.EOF || l.ctx.Err() != nil {
			return n, io.EOF
		}
	}
	return n, err
}
