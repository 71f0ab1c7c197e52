package diagnose

import (
	"context"
	"fmt"
	"slices"
	"strings"
)

// Answer bounds (CONTRACT §14, diagnose_build). MaxReportBytes bounds the
// whole answer as encoding/json writes it; the others bound its parts so
// that the usual answer fits without dropping anything.
const (
	MaxReportBytes   = 16 << 10
	MaxExcerpts      = 5
	MaxFailingTests  = 10
	MaxChanges       = 20
	MaxHints         = 6
	MaxFailedStages  = 20
	MaxHintBytes     = 300
	MaxContextBefore = 5
	MaxContextAfter  = 10
	// MaxStageLogs bounds how many stage logs one analysis reads.
	MaxStageLogs = 50
	// DefaultMaxScanBytes bounds the text read from all logs together.
	DefaultMaxScanBytes int64 = 256 << 20
)

// Field bounds, in bytes.
const (
	maxIDBytes      = 64
	maxNameBytes    = 200
	maxAuthorBytes  = 100
	maxMessageBytes = 200 // a commit's first line
	maxTestMessage  = 300
	maxJobBytes     = 1024 // a job path's bound (CONTRACT §4)
	maxResultBytes  = 32
)

// Options are the limits of one analysis; nil means the defaults.
type Options struct {
	// MaxScanBytes bounds the log text read, over all logs; default
	// DefaultMaxScanBytes. The text past it is not read, and the report
	// says so.
	MaxScanBytes int64
	// ContextBefore and ContextAfter are the lines shown before and after
	// a decisive line: default 3 and 6, at most MaxContextBefore and
	// MaxContextAfter.
	ContextBefore, ContextAfter int
}

// Diagnose analyses a failed build: it reads the logs it is given once,
// line by line, keeping only a bounded number of candidate lines with
// their context, and returns a report of at most MaxReportBytes of JSON.
//
// For a Pipeline build it reads the logs of the failed stages (FAILED,
// then UNSTABLE, then ABORTED, in the order given) and then the console
// text, of which it takes only the lines that no stage log it read
// covers: those outside every stage (Jenkins prints a failed step's error
// after "[Pipeline] End of Pipeline"), attributed to the failed stage whose
// recorded error they contain, and those of stages whose log it was not
// given, attributed by the console's "[Pipeline] { (Name)" markers. The
// logs of stages that passed are not read: an "error" there did not fail
// the build.
//
// Excerpts come best first: a line's rank is its rule's score (see
// rules.go) plus the weight of its stage (failed, unstable, aborted, none,
// passed); among equals the earlier line wins. Each excerpt's line_number
// is 1-based within its log: the stage's log (Excerpt.Log "stage") or the
// whole console text ("console").
//
// Line numbers count from the start of the text given, so the tool gives
// whole logs (streamed: the scan holds no more than a line and its
// context) and lets Options.MaxScanBytes bound the reading.
//
// An error reading a log is returned (wrapped); when ctx ends, the scan
// stops and the report holds what was found, saying so in Omitted.
func Diagnose(ctx context.Context, b *Build, o *Options) (*Report, error) {
	opts := Options{MaxScanBytes: DefaultMaxScanBytes, ContextBefore: 3, ContextAfter: 6}
	if o != nil {
		if o.MaxScanBytes > 0 {
			opts.MaxScanBytes = o.MaxScanBytes
		}
		if o.ContextBefore > 0 {
			opts.ContextBefore = min(o.ContextBefore, MaxContextBefore)
		}
		if o.ContextAfter > 0 {
			opts.ContextAfter = min(o.ContextAfter, MaxContextAfter)
		}
	}
	r := &Report{
		Result:        result(b.Result),
		FailedStages:  []StageRef{},
		ErrorExcerpts: []Excerpt{},
		FailingTests:  []Test{},
		Changes:       []Change{},
		Hints:         []string{},
	}
	failed := failedStages(b.Stages)
	for _, i := range failed {
		if len(r.FailedStages) == MaxFailedStages {
			break
		}
		r.FailedStages = append(r.FailedStages, stageRef(&b.Stages[i]))
	}
	if len(failed) > MaxFailedStages {
		r.note(fmt.Sprintf("%d failed stages", len(failed)-MaxFailedStages))
	}

	s := newScanner(b, failed, opts)
	read := 0
	for _, i := range failed {
		st := &b.Stages[i]
		if st.Log == nil {
			continue
		}
		if read == MaxStageLogs {
			r.note(fmt.Sprintf("the logs of stages after the first %d failed ones", MaxStageLogs))
			break
		}
		read++
		s.hasLog[i] = true
		if err := s.scanLog(ctx, b, logSource{r: st.Log, stage: i}); err != nil {
			return nil, fmt.Errorf("diagnose: read the log of stage %q: %w", st.Name, err)
		}
		if s.interrupted {
			break
		}
	}
	if b.Console != nil && !s.interrupted {
		if err := s.scanLog(ctx, b, logSource{r: b.Console, stage: -1, console: true}); err != nil {
			return nil, fmt.Errorf("diagnose: read the console text: %w", err)
		}
	}
	if ctx.Err() != nil {
		// A log whose reader ended with ctx (the tool's streams end at
		// its deadline) was cut there too.
		s.interrupted = true
	}
	if s.exhausted {
		r.note(fmt.Sprintf("log text past the first %d MiB", opts.MaxScanBytes>>20))
	}
	if s.interrupted {
		r.note("log text after the scan's time limit")
	}

	chosen := choose(s.found)
	for _, c := range chosen {
		r.ErrorExcerpts = append(r.ErrorExcerpts, excerpt(b, c))
	}
	// The stage where the cause was found goes first: a parallel block's
	// stage fails with its failed branch, and the branch is the news.
	rank := map[string]int{}
	for i, e := range r.ErrorExcerpts {
		if e.Stage != nil && e.Stage.ID != "" {
			if _, ok := rank[e.Stage.ID]; !ok {
				rank[e.Stage.ID] = i
			}
		}
	}
	slices.SortStableFunc(r.FailedStages, func(a, b StageRef) int {
		ra, oka := rank[a.ID]
		rb, okb := rank[b.ID]
		switch {
		case oka && okb:
			return ra - rb
		case oka:
			return -1
		case okb:
			return 1
		}
		return 0
	})
	for i, t := range b.FailingTests {
		if i == MaxFailingTests {
			break
		}
		r.FailingTests = append(r.FailingTests, Test{
			Name:    bounded(t.Name, maxNameBytes),
			Class:   bounded(t.Class, maxNameBytes),
			Message: bounded(t.Message, maxTestMessage),
		})
	}
	r.FailingTestsTotal = max(b.FailingTestsTotal, len(b.FailingTests))
	for i, c := range b.Changes {
		if i == MaxChanges {
			break
		}
		r.Changes = append(r.Changes, Change{
			ID:        bounded(c.ID, maxIDBytes),
			Author:    bounded(c.Author, maxAuthorBytes),
			Message:   bounded(firstLine(c.Message), maxMessageBytes),
			Timestamp: bounded(c.Timestamp, 40),
		})
	}
	if len(b.Changes) > MaxChanges {
		r.note(fmt.Sprintf("%d older commits", len(b.Changes)-MaxChanges))
	}
	if b.Upstream != nil {
		r.Upstream = &Upstream{Job: bounded(b.Upstream.Job, maxJobBytes), Build: b.Upstream.Build}
	}
	r.Hints = hints(b, r, chosen, &s.facts)
	fit(r)
	return r, nil
}

func newScanner(b *Build, failed []int, o Options) *scanner {
	s := &scanner{
		m:          newMatcher(),
		before:     o.ContextBefore,
		afterLines: o.ContextAfter,
		budget:     o.MaxScanBytes,
		facts:      facts{counts: map[string]int{}},
		stageIndex: map[string]int{},
		hasLog:     make([]bool, len(b.Stages)),
	}
	seen := map[string]int{}
	for _, st := range b.Stages {
		seen[st.Name]++
	}
	for i, st := range b.Stages {
		if seen[st.Name] == 1 {
			s.stageIndex[bounded(st.Name, maxStageName)] = i
		}
	}
	for _, i := range failed[:min(len(failed), MaxFailedStages)] {
		msg := firstLine(b.Stages[i].ErrorMessage)
		if len(msg) > 80 {
			msg = msg[:80]
		}
		// A short message ("script returned exit code 1") would attribute
		// every such line to one stage; it says too little to.
		if len(strings.TrimSpace(msg)) >= 16 {
			s.failedMsg = append(s.failedMsg, failedMessage{stage: i, msg: asciiLower(nil, []byte(msg))})
		}
	}
	return s
}

// failedStages returns the indexes of the stages that failed, were
// unstable or aborted, in that order.
func failedStages(stages []Stage) []int {
	var out []int
	for _, want := range []string{"FAILED", "UNSTABLE", "ABORTED"} {
		for i, st := range stages {
			if st.Status == want || want == "FAILED" && st.Status == "FAILURE" {
				out = append(out, i)
			}
		}
	}
	return out
}

// choose picks the excerpts: the best candidates, skipping one whose line
// an excerpt already chosen shows, and the generic ones ("error"
// somewhere, an exit code) once a specific one was found.
func choose(found []*candidate) []*candidate {
	sortCandidates(found)
	var out []*candidate
	for _, c := range found {
		if len(out) == MaxExcerpts {
			break
		}
		if len(out) > 0 && c.base < weakScore && out[0].base >= weakScore {
			continue
		}
		shown := false
		for _, o := range out {
			if o.log == c.log && o.stage == c.stage && o.stageName == c.stageName || o.log == "console" && c.log == "console" {
				if c.line >= o.start && c.line <= o.end() {
					shown = true
					break
				}
			}
		}
		if !shown {
			out = append(out, c)
		}
	}
	return out
}

func excerpt(b *Build, c *candidate) Excerpt {
	e := Excerpt{Log: c.log, LineNumber: c.line, StartLine: c.start, Lines: c.lines, Kind: c.kind}
	switch {
	case c.stage >= 0:
		ref := stageRef(&b.Stages[c.stage])
		e.Stage = &ref
	case c.stageName != "":
		e.Stage = &StageRef{Name: c.stageName}
	}
	return e
}

func stageRef(st *Stage) StageRef {
	return StageRef{ID: bounded(st.ID, maxIDBytes), Name: bounded(st.Name, maxNameBytes)}
}

// result is the report's result: Jenkins's, or IN_PROGRESS while the
// build runs.
func result(s string) string {
	if s == "" {
		return "IN_PROGRESS"
	}
	return bounded(s, maxResultBytes)
}

// bounded is s as valid UTF-8 without control characters, at most max
// bytes.
func bounded(s string, max int) string {
	return cutString([]byte(s), max)
}

func firstLine(s string) string {
	s = strings.TrimLeft(s, " \t\r\n")
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// note records that something was left out.
func (r *Report) note(what string) {
	r.Truncated = true
	r.Omitted = append(r.Omitted, what)
}
