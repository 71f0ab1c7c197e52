package diagnose

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"unicode/utf8"
)

// Scan bounds. They bound memory whatever the logs hold: a scan holds one
// line buffer, the context lines of one excerpt being built and a fixed
// number of candidates per log.
const (
	// maxReadLine is the longest line read whole; the rest of a longer
	// line is skipped (it still counts as one line).
	maxReadLine = 64 << 10
	// maxLineBytes bounds a context line shown in an excerpt, and
	// maxDecisiveBytes the decisive line (Maven puts the cause at the end
	// of a long line).
	maxLineBytes     = 300
	maxDecisiveBytes = 1024
	// maxCandidates bounds the candidate excerpts a log keeps while it is
	// scanned (one per kind of line and stage); keepPerLog how many of
	// the best survive the end of their log.
	maxCandidates = 128
	keepPerLog    = 8
	// maxStageName bounds a stage name read from the console text.
	maxStageName = 200
	// maxDepth bounds the block nesting tracked in the console text.
	maxDepth = 256
)

// candidate is a line that may become an excerpt.
type candidate struct {
	log       string // "stage" or "console"
	stage     int    // index in Build.Stages, or -1
	stageName string // a console stage with no index
	line      int64
	start     int64
	lines     []string
	after     int // after-context lines still wanted
	frames    int // stack frames among them
	kind      string
	base      int // the line's own score
	rank      int // base plus the stage's weight
	logIndex  int // which log, in scan order
}

// end is the number of the candidate's last line.
func (c *candidate) end() int64 { return c.start + int64(len(c.lines)) - 1 }

// facts are what the scan learns besides excerpts, for the hints.
type facts struct {
	node    string // the last "Running on X" / "Building remotely on X"
	timeout string // "Timeout set to expire in 10 min" → "10 min"
	counts  map[string]int
}

// scanner scans logs for candidates.
type scanner struct {
	m           *matcher
	before      int
	afterLines  int
	budget      int64 // bytes left to read
	exhausted   bool  // the budget ran out with text left
	interrupted bool  // the context ended the scan
	facts       facts
	stageIndex  map[string]int // stage name → index, for unique names
	hasLog      []bool         // stage i's own log was scanned
	failedMsg   []failedMessage
	found       []*candidate
	logs        int

	// per log
	ring    ring
	pending []*candidate
	cands   []*candidate
	clean   []byte
	cur     []byte // the line being scanned, cleaned
}

type failedMessage struct {
	stage int
	msg   []byte // lowercased
}

// logSource is one log to scan.
type logSource struct {
	r       io.Reader
	stage   int  // index in Build.Stages, or -1
	console bool // the whole console text: track stage markers
}

// stageWeight is how much a line's rank gains from where it is: the
// failed stages' lines first, then the unstable's, the aborted's (a
// parallel branch aborted because another failed), lines outside any
// stage, and last the lines of stages that passed.
func stageWeight(status string, inStage bool) int {
	if !inStage {
		return 0
	}
	switch status {
	case "FAILED", "FAILURE":
		return 30
	case "UNSTABLE":
		return 20
	case "ABORTED":
		return 10
	default:
		return -30
	}
}

// scanLog reads one log to its end or until the budget or ctx ends,
// collecting candidates. Line numbers are 1-based within this log.
func (s *scanner) scanLog(ctx context.Context, b *Build, src logSource) error {
	if s.budget <= 0 {
		s.exhausted = true
		return nil
	}
	s.ring.init(s.before)
	s.pending, s.cands = s.pending[:0], s.cands[:0]
	lr := newLineReader(&io.LimitedReader{R: src.r, N: s.budget})
	var (
		lineNo int64
		stack  []blockEntry
		depth  int // nesting beyond stack's bound
		next   bool
	)
	logKind := "stage"
	if src.console {
		logKind = "console"
	}
	for {
		line, ok, err := lr.next()
		if err != nil {
			return err
		}
		if !ok {
			break
		}
		lineNo++
		if lineNo&1023 == 0 && ctx.Err() != nil {
			s.interrupted = true
			break
		}
		line = s.cleanLine(line)
		frame := isFrame(line)
		for i := 0; i < len(s.pending); {
			c := s.pending[i]
			c.lines = append(c.lines, display(line))
			// A stack trace's frames say little: the context ends at its
			// second frame.
			if c.after--; c.after == 0 || frame && c.frames > 0 {
				s.pending = slices.Delete(s.pending, i, i+1)
				continue
			}
			if frame {
				c.frames++
			}
			i++
		}
		if src.console && bytes.HasPrefix(line, pipelinePrefix) {
			stack, depth, next = trackBlock(line[len(pipelinePrefix):], stack, depth, next)
			s.ring.push(line)
			continue
		}
		s.noteFacts(line)
		kind, score := s.m.score(line)
		if kind != "" && score >= minScore {
			s.consider(b, src, logKind, stack, kind, score, lineNo)
		}
		s.ring.push(line)
	}
	s.budget -= lr.read()
	if s.budget <= 0 && lr.more() {
		s.exhausted = true
	}
	s.keepBest()
	s.logs++
	return nil
}

// consider makes the line just read a candidate if it is the first of
// its kind in its stage, or better than the worst candidate when the log
// already holds maxCandidates.
func (s *scanner) consider(b *Build, src logSource, logKind string, stack []blockEntry, kind string, score int, lineNo int64) {
	stage, name := src.stage, ""
	byMessage := false
	if src.console {
		stage, name = s.consoleStage(stack)
		if stage >= 0 && s.hasLog[stage] {
			return // the stage's own log was read: its lines are there
		}
		if stage < 0 && name == "" {
			if stage = s.failedStageNamed(s.m.lower); stage >= 0 {
				byMessage = true
			}
		}
	}
	s.facts.counts[kind]++
	inStage := stage >= 0 || name != ""
	status := ""
	if stage >= 0 {
		status = b.Stages[stage].Status
	}
	rank := score + stageWeight(status, inStage)
	if byMessage {
		// Attributed by the stage's recorded error, not found in its
		// log: a line of the stage's own log that says as much goes
		// first.
		rank -= 10
	}
	for _, c := range s.cands {
		if c.kind == kind && c.stage == stage && c.stageName == name {
			return
		}
	}
	if len(s.cands) >= maxCandidates {
		worst := 0
		for i, c := range s.cands {
			if c.rank < s.cands[worst].rank {
				worst = i
			}
		}
		if s.cands[worst].rank >= rank {
			return
		}
		w := s.cands[worst]
		s.cands = slices.Delete(s.cands, worst, worst+1)
		if i := slices.Index(s.pending, w); i >= 0 {
			s.pending = slices.Delete(s.pending, i, i+1)
		}
	}
	before := s.ring.strings()
	c := &candidate{
		log: logKind, stage: stage, stageName: name, line: lineNo,
		start: lineNo - int64(len(before)), lines: append(before, cutString(s.cur, maxDecisiveBytes)),
		after: s.afterLines, kind: kind, base: score, rank: rank, logIndex: s.logs,
	}
	s.cands = append(s.cands, c)
	if c.after > 0 {
		s.pending = append(s.pending, c)
	}
}

// keepBest keeps the log's keepPerLog best candidates.
func (s *scanner) keepBest() {
	sortCandidates(s.cands)
	if len(s.cands) > keepPerLog {
		s.cands = s.cands[:keepPerLog]
	}
	s.found = append(s.found, s.cands...)
	s.cands = nil
	s.pending = s.pending[:0]
}

// sortCandidates orders candidates best first: by rank, then the log
// scanned first (failed stages are scanned first), then the earlier line.
func sortCandidates(cs []*candidate) {
	slices.SortStableFunc(cs, func(a, b *candidate) int {
		if a.rank != b.rank {
			return b.rank - a.rank
		}
		if a.logIndex != b.logIndex {
			return a.logIndex - b.logIndex
		}
		switch {
		case a.line < b.line:
			return -1
		case a.line > b.line:
			return 1
		}
		return 0
	})
}

// consoleStage is the stage the console's current line belongs to: the
// innermost block opened as a stage. Its index is known when the build's
// stages hold exactly one stage of that name.
func (s *scanner) consoleStage(stack []blockEntry) (int, string) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i].stage {
			if idx, ok := s.stageIndex[stack[i].name]; ok {
				return idx, ""
			}
			return -1, stack[i].name
		}
	}
	return -1, ""
}

// failedStageNamed attributes a console line outside every stage (an
// error Jenkins prints after "End of Pipeline") to the failed stage whose
// recorded error message the line contains.
func (s *scanner) failedStageNamed(lower []byte) int {
	for _, f := range s.failedMsg {
		if bytes.Contains(lower, f.msg) {
			return f.stage
		}
	}
	return -1
}

var (
	pipelinePrefix = []byte("[Pipeline] ")
	runningOn      = []byte("Running on ")
	buildingOn     = []byte("Building remotely on ")
	buildingIn     = []byte("Building on ")
	timeoutSet     = []byte("Timeout set to expire in ")
)

// isFrame reports whether line is a stack frame ("\tat a.B.c(B.java:1)",
// "\t... 4 more").
func isFrame(line []byte) bool {
	if len(line) == 0 || line[0] != ' ' && line[0] != '\t' {
		return false
	}
	t := bytes.TrimLeft(line, " \t")
	return bytes.HasPrefix(t, []byte("at ")) || bytes.HasPrefix(t, []byte("... "))
}

// noteFacts records the node a build runs on and its timeout.
func (s *scanner) noteFacts(line []byte) {
	switch {
	case bytes.HasPrefix(line, runningOn):
		s.facts.node = nodeName(line[len(runningOn):])
	case bytes.HasPrefix(line, buildingOn):
		s.facts.node = nodeName(line[len(buildingOn):])
	case bytes.HasPrefix(line, buildingIn):
		s.facts.node = nodeName(line[len(buildingIn):])
	case bytes.HasPrefix(line, timeoutSet):
		t := bytes.TrimRight(line[len(timeoutSet):], " .")
		s.facts.timeout = display(t)
	}
}

// nodeName is the first word of "agent-3 in /home/…" or "agent-3 (linux)
// in workspace …".
func nodeName(rest []byte) string {
	if i := bytes.IndexAny(rest, " \t"); i >= 0 {
		rest = rest[:i]
	}
	if len(rest) > 100 {
		rest = rest[:100]
	}
	return display(rest)
}

// blockEntry is a block opened in the console text by "[Pipeline] {".
type blockEntry struct {
	name  string
	stage bool
}

// trackBlock follows the console's block structure: "[Pipeline] stage"
// then "[Pipeline] { (Build)" opens stage Build; "[Pipeline] {" opens an
// unnamed block (node, withEnv, a parallel branch is "{ (Branch: x)");
// "[Pipeline] }" closes the innermost. This is how workflow-job prints
// the flow graph (WorkflowRun's GraphL, "[Pipeline] " + the node's display
// function name); parallel branches interleave their lines, so a line of
// one branch may be taken for another's (the stage logs do not have that
// problem).
func trackBlock(rest []byte, stack []blockEntry, depth int, stageNext bool) ([]blockEntry, int, bool) {
	switch {
	case bytes.Equal(rest, []byte("stage")):
		return stack, depth, true
	case bytes.HasPrefix(rest, []byte("{")):
		e := blockEntry{stage: stageNext}
		if n := bytes.TrimSpace(rest[1:]); len(n) > 2 && n[0] == '(' && n[len(n)-1] == ')' {
			n = n[1 : len(n)-1]
			if len(n) > maxStageName {
				n = n[:maxStageName]
			}
			e.name = display(n)
		} else {
			e.stage = false
		}
		if len(stack) >= maxDepth {
			return stack, depth + 1, false
		}
		return append(stack, e), depth, false
	case bytes.HasPrefix(rest, []byte("}")):
		if depth > 0 {
			return stack, depth - 1, false
		}
		if len(stack) > 0 {
			stack = stack[:len(stack)-1]
		}
		return stack, depth, false
	}
	return stack, depth, false
}

// cleanLine is the line as a person sees it on a terminal: the text after
// its last carriage return (a progress bar redraws its line), without
// ANSI escape sequences. It returns line itself when there is nothing to
// clean, and remembers the result for cleanCopy.
func (s *scanner) cleanLine(line []byte) []byte {
	if i := bytes.LastIndexByte(line, '\r'); i >= 0 {
		if rest := line[i+1:]; len(bytes.TrimSpace(rest)) > 0 {
			line = rest
		} else if j := bytes.LastIndexByte(line[:i], '\r'); j >= 0 {
			line = line[j+1 : i]
		} else {
			line = line[:i]
		}
	}
	if bytes.IndexByte(line, 0x1b) >= 0 {
		s.clean = stripANSI(s.clean[:0], line)
		line = s.clean
	}
	s.cur = line
	return line
}

// stripANSI appends src without its ANSI escape sequences (CSI "ESC [ …
// final", OSC "ESC ] … BEL/ST", and two-byte "ESC x").
func stripANSI(dst, src []byte) []byte {
	for i := 0; i < len(src); i++ {
		c := src[i]
		if c != 0x1b {
			dst = append(dst, c)
			continue
		}
		if i+1 >= len(src) {
			break
		}
		switch src[i+1] {
		case '[':
			j := i + 2
			for j < len(src) && (src[j] < 0x40 || src[j] > 0x7e) {
				j++
			}
			i = j
		case ']':
			j := i + 2
			for j < len(src) && src[j] != 0x07 && !(src[j] == 0x1b && j+1 < len(src) && src[j+1] == '\\') {
				j++
			}
			if j < len(src) && src[j] == 0x1b {
				j++
			}
			i = j
		default:
			i++
		}
	}
	return dst
}

// display is a line as an excerpt shows it: valid UTF-8, no control
// characters but tabs, at most maxLineBytes bytes (a longer line is cut at
// a character boundary and ends with "…").
func display(b []byte) string {
	return cutString(b, maxLineBytes)
}

// cutString is b as valid UTF-8 without control characters (tabs kept),
// at most max bytes: a longer text is cut at a character boundary and ends
// with "…" (within max).
func cutString(b []byte, max int) string {
	out := make([]byte, 0, min(len(b), max+3))
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r < 0x20 && r != '\t' || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			continue
		}
		if len(out)+utf8.RuneLen(r) > max {
			for len(out) > max-len("…") {
				_, n := utf8.DecodeLastRune(out)
				out = out[:len(out)-n]
			}
			return string(append(out, "…"...))
		}
		out = utf8.AppendRune(out, r) // an invalid byte becomes U+FFFD
	}
	return string(out)
}

// ring keeps the last n lines read, in buffers it reuses, each cut to
// maxLineBytes plus room for the cut's character.
type ring struct {
	lines [][]byte
	head  int
	count int
}

func (r *ring) init(n int) {
	if len(r.lines) != n {
		r.lines = make([][]byte, n)
	}
	r.head, r.count = 0, 0
}

func (r *ring) push(line []byte) {
	n := len(r.lines)
	if n == 0 {
		return
	}
	if len(line) > maxLineBytes+4 {
		line = line[:maxLineBytes+4]
	}
	i := (r.head + r.count) % n
	if r.count == n {
		i = r.head
		r.head = (r.head + 1) % n
	} else {
		r.count++
	}
	r.lines[i] = append(r.lines[i][:0], line...)
}

// strings returns the lines held, oldest first, as display shows them.
func (r *ring) strings() []string {
	out := make([]string, r.count, r.count+1)
	for k := range out {
		out[k] = display(r.lines[(r.head+k)%len(r.lines)])
	}
	return out
}

// lineReader splits a log into lines without copying them.
type lineReader struct {
	cr   *countingReader
	br   *bufio.Reader
	long []byte
	done bool
}

type countingReader struct {
	r *io.LimitedReader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newLineReader(r *io.LimitedReader) *lineReader {
	cr := &countingReader{r: r}
	return &lineReader{cr: cr, br: bufio.NewReaderSize(cr, maxReadLine)}
}

// read is how many bytes were read from the log.
func (lr *lineReader) read() int64 { return lr.cr.n }

// more reports whether the log goes on past the limit.
func (lr *lineReader) more() bool {
	if lr.cr.r.N > 0 {
		return false
	}
	var one [1]byte
	n, _ := lr.cr.r.R.Read(one[:])
	return n > 0
}

// next returns the next line without its "\n", cut to maxReadLine (the
// rest skipped). The last line counts even without a newline. line is
// valid until the next call; ok is false at the end.
func (lr *lineReader) next() (line []byte, ok bool, err error) {
	if lr.done {
		return nil, false, nil
	}
	frag, err := lr.br.ReadSlice('\n')
	switch {
	case err == nil:
		return frag[:len(frag)-1], true, nil
	case errors.Is(err, io.EOF):
		lr.done = true
		return frag, len(frag) > 0, nil
	case errors.Is(err, bufio.ErrBufferFull):
		lr.long = append(lr.long[:0], frag...)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = lr.br.ReadSlice('\n')
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			lr.done = true
		default:
			return nil, false, fmt.Errorf("reading log: %w", err)
		}
		return lr.long, true, nil
	default:
		return nil, false, fmt.Errorf("reading log: %w", err)
	}
}
