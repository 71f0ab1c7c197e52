package jenkins

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// The reads diagnose_build makes besides those of the other tools: a
// build with its causes (an UpstreamCause names the build that triggered
// it) and its change sets in one request, and logs streamed rather than
// paged: the console text (Run.doConsoleText) and a step's log
// (workflow-support's LogStorageAction, progressiveText from 0).
//
// Jenkins: core/src/main/java/hudson/model/Cause.java (UpstreamCause:
// upstreamProject is the job's full name, upstreamBuild its number,
// @Exported(visibility=3), and exported to any reader of the build, also
// when the upstream job is hidden from them), core/src/main/java/hudson/
// model/Run.java (doConsoleText).

// UpstreamCause is a build's Cause.UpstreamCause: the job (its full name
// as Jenkins reports it, unchecked) and the build that triggered it.
type UpstreamCause struct {
	Project string
	Build   int64
}

// BuildRecord is a build with what a diagnosis needs of it beyond
// GetBuild: its upstream causes and its commits.
type BuildRecord struct {
	Build
	Upstream []UpstreamCause
	Changes  *Changes
}

type wireBuildRecord struct {
	wireChangesBuild
	Class    string  `json:"_class"`
	Result   *string `json:"result"`
	Building bool    `json:"building"`
	Time     int64   `json:"timestamp"`
	Duration int64   `json:"duration"`
	URL      string  `json:"url"`
	Actions  []struct {
		Causes []struct {
			Class           string `json:"_class"`
			UpstreamProject string `json:"upstreamProject"`
			UpstreamBuild   int64  `json:"upstreamBuild"`
		} `json:"causes"`
	} `json:"actions"`
}

// maxUpstreamCauses bounds the causes read (CauseAction folds a cause in
// as often as identical requests were merged).
const maxUpstreamCauses = 20

func recordTree(o ChangesOptions) string {
	return fmt.Sprintf("number,result,building,timestamp,duration,url,actions[causes[shortDescription,upstreamProject,upstreamBuild]{0,%d}],", maxUpstreamCauses) +
		changeSetsTree(o)
}

// ParseBuildRecord decodes a build's api/json as BuildRecord asks for it.
func ParseBuildRecord(data []byte, o ChangesOptions) (*BuildRecord, error) {
	var w wireBuildRecord
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	if w.Number <= 0 {
		return nil, fmt.Errorf("build number %d", w.Number)
	}
	r := &BuildRecord{Build: Build{Class: w.Class, Number: w.Number, Building: w.Building, Timestamp: w.Time, DurationMS: w.Duration, URL: w.URL}}
	if w.Result != nil {
		r.Result = *w.Result
	}
	for _, a := range w.Actions {
		for _, c := range a.Causes {
			if c.Class == "hudson.model.Cause$UpstreamCause" && c.UpstreamProject != "" && c.UpstreamBuild > 0 && len(r.Upstream) < maxUpstreamCauses {
				r.Upstream = append(r.Upstream, UpstreamCause{Project: c.UpstreamProject, Build: c.UpstreamBuild})
			}
		}
	}
	w.wireChangesBuild.Actions = nil
	r.Changes = changesOf(&w.wireChangesBuild, o)
	return r, nil
}

// BuildRecord returns build number (0: the last build) with its result,
// its upstream causes and its commits (bounded by o, as BuildChanges), in
// one request as the user.
func (c *Client) BuildRecord(ctx context.Context, cred Credential, job jobpath.Path, number int64, o ChangesOptions) (*BuildRecord, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if o.MaxCommits <= 0 {
		o.MaxCommits = 200
	}
	if o.MaxPaths <= 0 {
		o.MaxPaths = 50
	}
	return getJSON(ctx, c, call{op: "get " + buildName(job, number), rel: buildRel(job, number) + "api/json",
		query: url.Values{"tree": {recordTree(o)}}, cred: cred}, func(data []byte) (*BuildRecord, error) { return ParseBuildRecord(data, o) })
}

// IsPipeline reports whether the build is a Pipeline build (WorkflowRun).
func (b *Build) IsPipeline() bool { return b.Class == "org.jenkinsci.plugins.workflow.job.WorkflowRun" }

// OpenConsoleText streams build number's whole console text
// (Run.doConsoleText: console notes removed on every Jenkins version),
// with LF line ends. The caller reads it as far as it likes and closes
// it; ctx bounds the request and the reading (the client's per-call
// timeout bounds only the wait for the answer to start).
func (c *Client) OpenConsoleText(ctx context.Context, cred Credential, job jobpath.Path, number int64) (io.ReadCloser, error) {
	return c.openStream(ctx, call{op: "read console text of " + buildName(job, number), method: http.MethodGet,
		rel: buildRel(job, number) + "consoleText", cred: cred})
}

// OpenStepLog streams the whole log of step stepID of build number (not
// 0) as console text (notes removed, LF line ends), from
// execution/node/<id>/log/logText/progressiveText?start=0. The caller
// closes it.
func (c *Client) OpenStepLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, stepID string) (io.ReadCloser, error) {
	lg := stepLog(job, number, stepID)
	return c.openStream(ctx, call{op: lg.op, method: http.MethodGet, rel: lg.rel, query: url.Values{"start": {"0"}}, cred: cred})
}

// openStream sends cl and returns its body as console text. The client's
// timeout bounds the wait for the answer; ctx, the rest.
func (c *Client) openStream(ctx context.Context, cl call) (io.ReadCloser, error) {
	reqCtx, cancel := context.WithCancelCause(ctx)
	timer := time.AfterFunc(c.opts.Timeout, func() { cancel(errNoAnswer) })
	resp, err := c.do(reqCtx, cl)
	timer.Stop()
	if context.Cause(reqCtx) == errNoAnswer {
		if err == nil {
			resp.Body.Close()
		}
		cancel(nil)
		return nil, &Error{Op: cl.op, Err: ErrUnavailable, Timeout: true, Detail: "timed out"}
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	return &consoleStream{body: resp.Body, br: newBufReader(resp.Body), cancel: func() { cancel(nil) }}, nil
}

// newBufReader is the line buffer of a consoleStream: lines longer than
// 64 KiB pass in pieces.
func newBufReader(r io.Reader) *bufio.Reader { return bufio.NewReaderSize(r, 64<<10) }

// consoleStream turns a log's body into console text line by line:
// console notes removed, CR LF as LF. A line longer than its 64 KiB buffer
// passes in pieces, each cleaned alone (a note cut by a piece's end is
// dropped).
type consoleStream struct {
	body   io.ReadCloser
	br     *bufio.Reader
	cancel func()
	out    []byte // cleaned text not yet returned
	line   []byte
	err    error
}

func (s *consoleStream) Read(p []byte) (int, error) {
	for len(s.out) == 0 {
		if s.err != nil {
			return 0, s.err
		}
		frag, err := s.br.ReadSlice('\n')
		switch {
		case err == nil:
			frag = bytes.TrimSuffix(frag[:len(frag)-1], []byte{'\r'})
			s.line = stripNotes(s.line[:0], frag, false)
			s.line = append(s.line, '\n')
		case errors.Is(err, bufio.ErrBufferFull):
			s.line = stripNotes(s.line[:0], frag, true)
		default:
			s.line = stripNotes(s.line[:0], frag, false)
			s.err = err
		}
		s.out = s.line
	}
	n := copy(p, s.out)
	s.out = s.out[n:]
	return n, nil
}

func (s *consoleStream) Close() error {
	err := s.body.Close()
	s.cancel()
	return err
}
