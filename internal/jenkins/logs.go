package jenkins

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// LogChunk is a piece of a build's console text.
type LogChunk struct {
	Text []byte
	// Start is the byte offset Text begins at; Next the offset just after it.
	Start, Next int64
	// Size is the length of the whole log when it was read (X-Text-Size).
	Size int64
	// Running is true while the build still writes to the log
	// (X-More-Data).
	Running bool
}

// More reports whether text remains after Next or may still come.
func (l *LogChunk) More() bool { return l.Next < l.Size || l.Running }

// logAnswer is Jenkins's answer to logText/progressiveText.
type logAnswer struct {
	resp    *http.Response
	size    int64 // X-Text-Size
	running bool  // X-More-Data
	raw     bool  // console notes are sent raw (Jenkins 2.509 and later)
}

// logRef names a progressive log: a build's console, or a Pipeline step's
// log (stages.go), both AnnotatedLargeText's progressiveText.
type logRef struct {
	op  string // what reading it is, for errors
	rel string // escaped path of its progressiveText
}

func buildLog(job jobpath.Path, number int64) logRef {
	return logRef{op: "read log of " + buildName(job, number), rel: buildRel(job, number) + "logText/progressiveText"}
}

// openLog requests the progressive console text from byte offset start.
// The caller reads the body as far as it likes and closes it.
func (c *Client) openLog(ctx context.Context, cred Credential, lg logRef, start int64) (*logAnswer, error) {
	op := lg.op
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, rel: lg.rel,
		query: url.Values{"start": {strconv.FormatInt(start, 10)}}, cred: cred})
	if err != nil {
		return nil, err
	}
	size, err := strconv.ParseInt(resp.Header.Get("X-Text-Size"), 10, 64)
	if err != nil || size < 0 {
		drain(resp)
		return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "no X-Text-Size in the answer"}
	}
	return &logAnswer{resp: resp, size: size, running: resp.Header.Get("X-More-Data") == "true", raw: rawNotes(resp.Header.Get("X-Jenkins"))}, nil
}

// end is the stored offset after a body that was read whole, from start,
// of which the decoder consumed stored bytes. Before 2.509, and on any
// version once the build finished, X-Text-Size is exactly that (it counts
// the console notes Jenkins stripped); from 2.509 on, a running build's
// X-Text-Size is the log's length while the text stops after the last
// line end (LargeText.writeLogUncounted), so the count is used.
func (a *logAnswer) end(start, stored int64) int64 {
	if a.running && a.raw {
		return min(start+stored, a.size)
	}
	return a.size
}

// pageSlack is how much more of Jenkins's answer than max_bytes a page
// reads: the console notes it drops (about 200 bytes a line in a
// pipeline's log) and the CRs of CR LF.
const pageSlack = 64 << 10

// ReadLog returns at most maxBytes of console text from byte offset start.
// The text is what a person sees in Jenkins's console: console notes
// removed, line ends as LF, and never a note or a UTF-8 character cut in
// half (they are held back to the next page). Offsets are Jenkins's, in
// the stored log: Next is where the next page starts, never past Size.
//
// Next is exact whenever the page reaches the end of what Jenkins sent.
// When the page is cut earlier, Next is counted from the text: exact from
// Jenkins 2.509 on for logs with LF line ends; a stored CR LF counts one
// byte, so such a log's next page repeats a line end rather than lose
// text; before 2.509 Jenkins does not send the notes it counts, so the
// next page may repeat the text of the notes' lines (never loses any).
func (c *Client) ReadLog(ctx context.Context, cred Credential, job jobpath.Path, number, start int64, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.readLog(ctx, cred, buildLog(job, number), start, maxBytes)
}

// readLog is ReadLog of any progressive log.
func (c *Client) readLog(ctx context.Context, cred Credential, lg logRef, start int64, maxBytes int) (*LogChunk, error) {
	a, err := c.openLog(ctx, cred, lg, start)
	if err != nil {
		return nil, err
	}
	defer a.resp.Body.Close()
	if start > a.size {
		// Jenkins restarts from 0 when start is past the end; Butler
		// answers with nothing instead, so paging never loops.
		return &LogChunk{Start: start, Next: start, Size: a.size, Running: a.running}, nil
	}
	limit := 2*int64(maxBytes) + pageSlack
	buf, err := io.ReadAll(io.LimitReader(a.resp.Body, limit+1))
	if err != nil {
		return nil, transportError(ctx, lg.op, err)
	}
	whole := int64(len(buf)) <= limit
	if !whole {
		buf = buf[:limit]
	}
	return page(buf, whole, a, start, maxBytes), nil
}

// page is the page of at most maxBytes of text in buf, Jenkins's answer
// from start (whole if it was read to its end).
func page(buf []byte, whole bool, a *logAnswer, start int64, maxBytes int) *LogChunk {
	d := &consoleDecoder{}
	// Before 2.509 a page cut early may start inside a note Jenkins did
	// not send (see ReadLog): then Jenkins sends the note's rest raw.
	d.decode(buf, maxBytes, whole && !a.running, start > 0 && !a.raw)
	next := start + d.stored
	if whole && d.used == len(buf) {
		next = a.end(start, d.stored)
	}
	next = min(next, a.size)
	return &LogChunk{Text: d.text, Start: start, Next: next, Size: a.size, Running: a.running}
}

// trimToRune drops a partial UTF-8 sequence at the end of b.
func trimToRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// TailLog returns the last lines lines of the console text, in at most
// maxBytes (the oldest lines are dropped first if they do not fit). It
// reads only the end of the log: a first request learns the log's size, a
// second reads a window before the end, growing it when it holds too few
// lines. The text is console text as ReadLog's; Next is the end of the
// log Jenkins sent (never past Size), Start where the first line returned
// begins (counted from the window's start, so before 2.509 it may be a
// little early: Jenkins does not send the notes it counts).
func (c *Client) TailLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, lines, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return c.tailLog(ctx, cred, buildLog(job, number), lines, maxBytes)
}

// tailLog is TailLog of any progressive log.
func (c *Client) tailLog(ctx context.Context, cred Credential, lg logRef, lines, maxBytes int) (*LogChunk, error) {
	window := int64(maxBytes)
	if guess := int64(lines) * 256; guess < window {
		window = guess
	}
	if window < 4096 {
		window = 4096
	}
	var start int64
	for {
		a, err := c.openLog(ctx, cred, lg, start)
		if err != nil {
			return nil, err
		}
		// The first request (from 0) reads no more than the window: if
		// the log fits, it is the only one.
		limit := window
		if start > 0 {
			limit = 2*(window+int64(maxBytes)) + pageSlack
		}
		buf, err := io.ReadAll(io.LimitReader(a.resp.Body, limit+1))
		a.resp.Body.Close()
		if err != nil {
			return nil, transportError(ctx, lg.op, err)
		}
		whole := int64(len(buf)) <= limit
		if start == 0 && !whole {
			start = max(a.size-window, 0)
			continue
		}
		if !whole {
			buf = buf[:limit]
		}
		var starts []lineStart
		d := &consoleDecoder{lines: &starts}
		d.decode(buf, len(buf), whole && !a.running, start > 0 && !a.raw)
		end := start + d.stored
		if whole && d.used == len(buf) {
			end = a.end(start, d.stored)
		}
		end = min(end, a.size)
		text, from := d.text, start
		for i := range starts {
			starts[i].stored += start
		}
		if start > 0 && len(starts) > 0 {
			// Drop the partial first line.
			drop := starts[0].text
			text, from = text[drop:], starts[0].stored
			starts = starts[1:]
			for i := range starts {
				starts[i].text -= drop
			}
		}
		// Enough lines (one more newline than asked, so the first line is
		// whole), or the window reached the start or the byte budget.
		if start == 0 || bytes.Count(text, []byte{'\n'}) > lines || window >= int64(maxBytes) {
			return tailChunk(text, from, end, starts, a, lines, maxBytes), nil
		}
		window = min(window*4, int64(maxBytes))
		start = max(a.size-window, 0)
	}
}

// tailChunk keeps the last n (≥ 1) lines of text, which starts at stored
// offset from and ends at end, within maxBytes. starts are where text's
// lines begin (text offsets in text, absolute stored offsets).
func tailChunk(text []byte, from, end int64, starts []lineStart, a *logAnswer, n, maxBytes int) *LogChunk {
	body := bytes.TrimSuffix(text, []byte{'\n'})
	cut := len(body)
	for range n {
		cut = bytes.LastIndexByte(body[:cut], '\n')
		if cut < 0 {
			break
		}
	}
	kept := text[cut+1:]
	for len(kept) > maxBytes {
		i := bytes.IndexByte(kept, '\n')
		if i < 0 || len(kept)-i-1 == 0 {
			kept = trimToRuneStart(kept[len(kept)-maxBytes:])
			break
		}
		kept = kept[i+1:]
	}
	// Where kept begins in the stored log: at a recorded line start when
	// it begins a line, else (a line longer than maxBytes) counted back
	// from the end.
	startAt := max(end-int64(len(kept)), from)
	if skip := len(text) - len(kept); skip == 0 {
		startAt = from
	} else if i, ok := slices.BinarySearchFunc(starts, skip, func(l lineStart, t int) int { return l.text - t }); ok {
		startAt = starts[i].stored
	}
	return &LogChunk{Text: kept, Start: min(startAt, end), Next: end, Size: a.size, Running: a.running}
}

// trimToRuneStart drops the continuation bytes of a UTF-8 character cut at
// the start of b.
func trimToRuneStart(b []byte) []byte {
	for i := 0; i < len(b) && i < utf8.UTFMax; i++ {
		if utf8.RuneStart(b[i]) {
			return b[i:]
		}
	}
	return b
}

// Search limits (docs/tools.md, search_build_log).
const (
	// DefaultSearchTimeout is how long a search scans before it returns
	// what it found, with TimedOut set.
	DefaultSearchTimeout = 10 * time.Second
	// MaxAnswerBytes bounds the text of one search's result: the lines of
	// its matches and of their context, each counted where it appears and
	// as long as it is in JSON (see jsonLen: a '<' counts 6), so the
	// answer's JSON stays about as small.
	MaxAnswerBytes = 1 << 20
	// MaxPatternInsts bounds the size of a regular expression's compiled
	// RE2 program, and MaxPatternRepeat its repeat counts ({n,m}): the
	// cost of matching a line grows with the program.
	MaxPatternInsts  = 1000
	MaxPatternRepeat = 100
)

// ErrPatternTooComplex is wrapped by CompilePattern's error for a regular
// expression over MaxPatternInsts or MaxPatternRepeat.
var ErrPatternTooComplex = errors.New("pattern too complex")

// Pattern is what a log search looks for; see CompilePattern.
type Pattern struct {
	re *regexp.Regexp
	// A literal pattern is matched as bytes, on the same lines as re but
	// much faster: lit is the text itself (unless it holds U+FFFD), or
	// with fold its case-folded form (see foldAppend), to find in the
	// folded line.
	literal, fold bool
	lit           []byte
}

// CompilePattern compiles a search pattern: pattern is literal text unless
// regex, then an RE2 regular expression; ignoreCase matches regardless of
// case (RE2's (?i)). An invalid regular expression is the *syntax.Error
// regexp.Compile returns; one whose program has more than MaxPatternInsts
// instructions or with a repeat count over MaxPatternRepeat is an error
// wrapping ErrPatternTooComplex that says which. Literal text is never too
// complex: its program grows with its length only, and it is matched
// without backtracking.
func CompilePattern(pattern string, regex, ignoreCase bool) (*Pattern, error) {
	expr := pattern
	if !regex {
		expr = regexp.QuoteMeta(pattern)
	}
	if ignoreCase {
		expr = "(?i)" + expr
	}
	if regex {
		if err := checkComplexity(expr); err != nil {
			return nil, err
		}
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, err
	}
	p := &Pattern{re: re}
	switch {
	case regex:
	case !ignoreCase && strings.ContainsRune(pattern, utf8.RuneError):
		// RE2 reads a byte that is not UTF-8 as U+FFFD; the bytes of the
		// literal would not match it.
	case ignoreCase:
		p.literal, p.fold, p.lit = true, true, foldAppend(nil, []byte(pattern))
	default:
		p.literal, p.lit = true, []byte(pattern)
	}
	return p, nil
}

// checkComplexity parses expr as regexp.Compile does and refuses it when
// its syntax tree repeats over MaxPatternRepeat or its program exceeds
// MaxPatternInsts.
func checkComplexity(expr string) error {
	tree, err := syntax.Parse(expr, syntax.Perl)
	if err != nil {
		return err
	}
	if rep := bigRepeat(tree); rep != nil {
		return fmt.Errorf("%w: it repeats %s, more than %d times", ErrPatternTooComplex, repeatString(rep), MaxPatternRepeat)
	}
	prog, err := syntax.Compile(tree.Simplify())
	if err != nil {
		return err
	}
	if n := len(prog.Inst); n > MaxPatternInsts {
		return fmt.Errorf("%w: it compiles to %d RE2 instructions, more than %d", ErrPatternTooComplex, n, MaxPatternInsts)
	}
	return nil
}

// bigRepeat returns the first repeat in re whose count is over
// MaxPatternRepeat, or nil.
func bigRepeat(re *syntax.Regexp) *syntax.Regexp {
	if re.Op == syntax.OpRepeat && (re.Min > MaxPatternRepeat || re.Max > MaxPatternRepeat) {
		return re
	}
	for _, sub := range re.Sub {
		if r := bigRepeat(sub); r != nil {
			return r
		}
	}
	return nil
}

func repeatString(re *syntax.Regexp) string {
	switch {
	case re.Max == -1:
		return fmt.Sprintf("{%d,}", re.Min)
	case re.Min == re.Max:
		return fmt.Sprintf("{%d}", re.Min)
	default:
		return fmt.Sprintf("{%d,%d}", re.Min, re.Max)
	}
}

// matcher returns the function that tells whether a line matches; it
// keeps a buffer of its own, so one search uses one matcher.
func (p *Pattern) matcher() func(line []byte) bool {
	switch {
	case p.fold:
		var buf []byte
		return func(line []byte) bool {
			buf = foldAppend(buf[:0], line)
			return bytes.Contains(buf, p.lit)
		}
	case p.literal:
		return func(line []byte) bool { return bytes.Contains(line, p.lit) }
	}
	return p.re.Match
}

// foldAppend appends src to dst with every character replaced by the
// smallest of its case-folding orbit (unicode.SimpleFold), and every byte
// that is not UTF-8 by U+FFFD. Two characters fold alike exactly when RE2's
// (?i) matches one with the other, and RE2 reads a byte that is not UTF-8
// as U+FFFD: so (?i) plus a quoted literal matches a line exactly when the
// folded literal occurs in the folded line. (The folded text is UTF-8, and
// an occurrence of UTF-8 text in UTF-8 text starts and ends at character
// boundaries.)
func foldAppend(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if c := src[i]; c < utf8.RuneSelf {
			dst = append(dst, asciiFold[c])
			i++
			continue
		}
		r, n := utf8.DecodeRune(src[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// asciiFold folds ASCII: the smallest of 'a' and 'A' is 'A'; the orbits
// of k and s hold non-ASCII characters too, but K and S are still their
// smallest.
var asciiFold = func() (t [utf8.RuneSelf]byte) {
	for c := range t {
		t[c] = byte(foldRune(rune(c)))
	}
	return t
}()

func foldRune(r rune) rune {
	m := r
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		m = min(m, f)
	}
	return m
}

// SearchOptions are the limits of one log search.
type SearchOptions struct {
	// MaxMatches is the most matches returned (at least 1).
	MaxMatches int
	// ContextLines is how many lines before and after each match are
	// returned with it.
	ContextLines int
	// Timeout bounds the scan, from Jenkins's answer on; 0 means
	// DefaultSearchTimeout. Reaching it is not an error: the result holds
	// what was found, with TimedOut set.
	Timeout time.Duration
	// MaxAnswerBytes bounds the text of the result (see MaxAnswerBytes,
	// its default when 0).
	MaxAnswerBytes int
}

// Match is one line of a log search.
type Match struct {
	LineNumber int // 1-based over the whole console text
	Line       string
	Before     []string
	After      []string
}

// SearchResult is the outcome of a log search.
type SearchResult struct {
	Matches []Match
	// Truncated: the search stopped early, so more matches may exist:
	// at MaxMatches, at the answer limit, at the scan limit or at the
	// timeout.
	Truncated bool
	// TimedOut: the search stopped at its Timeout.
	TimedOut bool
	// ScannedBytes is how much of the log was read.
	ScannedBytes int64
}

// maxLineBytes bounds one returned line; longer lines are cut (and still
// matched on their first maxLineBytes).
const maxLineBytes = 4096

// errNoAnswer and errSearchTimeout say which clock cancelled a search's
// request.
var (
	errNoAnswer      = errors.New("jenkins did not answer in time")
	errSearchTimeout = errors.New("search timed out")
)

// SearchLog scans the console text line by line for p, returning at most
// o.MaxMatches matches each with o.ContextLines lines before and after. It
// streams the log, holding only a line buffer, the context lines and the
// matches found (at most o.MaxAnswerBytes of text), and reads at most
// MaxScanBytes of it.
//
// Jenkins must start answering within the client's Timeout, as for any
// call; from then on only the search's own o.Timeout bounds it, whether
// matching is slow or Jenkins sends the log slowly, and reaching it ends
// the search with what it found, not with an error.
func (c *Client) SearchLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, p *Pattern, o SearchOptions) (*SearchResult, error) {
	if o.Timeout <= 0 {
		o.Timeout = DefaultSearchTimeout
	}
	if o.MaxAnswerBytes <= 0 {
		o.MaxAnswerBytes = MaxAnswerBytes
	}
	op := "search log of " + buildName(job, number)
	// The request lives as long as the scan; two clocks may cancel it: the
	// client's timeout until the answer starts, then the search's.
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	answer := time.AfterFunc(c.opts.Timeout, func() { cancel(errNoAnswer) })
	// consoleText (Run.doConsoleText) is the whole log without console
	// notes on every Jenkins version, with its stored line ends (no CR
	// added to each LF), streamed; progressiveText before 2.509 builds
	// its whole answer in Jenkins's heap first (JENKINS-75081).
	resp, err := c.do(reqCtx, call{op: op, method: http.MethodGet, rel: buildRel(job, number) + "consoleText", cred: cred})
	answer.Stop()
	if context.Cause(reqCtx) == errNoAnswer {
		// The client's timeout ran out before the answer came (or just as
		// it came: then its body is already cut).
		if err == nil {
			resp.Body.Close()
		}
		return nil, &Error{Op: op, Err: ErrUnavailable, Timeout: true, Detail: "timed out"}
	}
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	scanClock := time.AfterFunc(o.Timeout, func() { cancel(errSearchTimeout) })
	defer scanClock.Stop()
	// Whatever ends the request (the search's clock, the caller) also
	// stops a scan busy matching lines already read; a read of a stalled
	// log fails at once.
	var stop atomic.Bool
	defer context.AfterFunc(reqCtx, func() { stop.Store(true) })()
	limited := &countingReader{r: io.LimitReader(resp.Body, c.opts.MaxScanBytes)}
	res, err := scan(limited, p, o, &stop)
	res.ScannedBytes = limited.n
	switch {
	case err != nil && context.Cause(reqCtx) == errSearchTimeout:
		// Not an error: the answer is what was found in time.
		res.TimedOut, res.Truncated = true, true
	case errors.Is(err, errStopped):
		return nil, transportError(reqCtx, op, context.Cause(ctx))
	case err != nil:
		return nil, transportError(reqCtx, op, err)
	case limited.n >= c.opts.MaxScanBytes:
		res.Truncated = true
	}
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// scanLog is the search with the default answer limit and no timeout, as
// the tests call it.
func scanLog(r io.Reader, re *regexp.Regexp, maxMatches, contextLines int) (*SearchResult, error) {
	res, err := scan(r, &Pattern{re: re}, SearchOptions{MaxMatches: maxMatches, ContextLines: contextLines, MaxAnswerBytes: MaxAnswerBytes}, nil)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// errStopped is scan's error when it was told to stop.
var errStopped = errors.New("search stopped")

// scan is the search itself, separate from HTTP so it can be fuzzed. It
// ends with errStopped once stop (if not nil) is set. On any error it
// returns what it found so far with the error.
//
// The answer is cut at whole matches: a match is taken only if its line
// and the lines before it fit in o.MaxAnswerBytes, and if its lines after
// do not fit as they come, it is dropped (with any later ones) and the
// search ends. Once it may take no more matches it reads on only to
// complete the after-context of those it holds.
func scan(r io.Reader, p *Pattern, o SearchOptions, stop *atomic.Bool) (*SearchResult, error) {
	res := &SearchResult{Matches: []Match{}}
	lr := newLineReader(r)
	match := p.matcher()
	var (
		before  ring  // the last ContextLines lines
		pending []int // indexes of matches still collecting after-lines
		lineNo  int
		used    int  // what res counts towards the answer limit (jsonLen)
		full    bool // no more matches may be taken
	)
	before.init(o.ContextLines)
	for {
		if stop != nil && stop.Load() {
			return res, errStopped
		}
		line, ok, err := lr.next()
		if err != nil {
			return res, err
		}
		if !ok {
			return res, nil
		}
		lineNo++
		var s string // line as a string, made once when something keeps it
		if len(pending) > 0 {
			// Pending matches are the last ones found: they complete in
			// the order they were found. If this line does not fit in
			// all of them, drop the newest (freeing its text) until it
			// does, and take no more matches.
			s = string(line)
			n := jsonLen(line)
			for len(pending) > 0 && used+n*len(pending) > o.MaxAnswerBytes {
				last := len(res.Matches) - 1
				used -= res.Matches[last].cost()
				res.Matches = res.Matches[:last]
				pending = pending[:len(pending)-1]
				res.Truncated, full = true, true
			}
			kept := pending[:0]
			for _, i := range pending {
				m := &res.Matches[i]
				m.After = append(m.After, s)
				used += n
				if len(m.After) < o.ContextLines {
					kept = append(kept, i)
				}
			}
			pending = kept
		}
		if full {
			if len(pending) == 0 {
				return res, nil
			}
		} else if match(line) {
			cost := jsonLen(line) + before.cost()
			switch {
			case len(res.Matches) == o.MaxMatches || used+cost > o.MaxAnswerBytes:
				res.Truncated, full = true, true
				if len(pending) == 0 {
					return res, nil
				}
			default:
				if s == "" {
					s = string(line)
				}
				res.Matches = append(res.Matches, Match{LineNumber: lineNo, Line: s, Before: before.strings(), After: []string{}})
				used += cost
				if o.ContextLines > 0 {
					pending = append(pending, len(res.Matches)-1)
				}
			}
		}
		before.push(line)
	}
}

// cost is the text of m that counts towards the answer limit.
func (m *Match) cost() int {
	n := jsonLen([]byte(m.Line))
	for _, l := range m.Before {
		n += jsonLen([]byte(l))
	}
	for _, l := range m.After {
		n += jsonLen([]byte(l))
	}
	return n
}

// jsonLen is the length of b as the content of a JSON string written by
// encoding/json, or a little more: '"', '\\', '\n', '\r' and '\t' take 2
// bytes; other control characters, '<', '>', '&', U+2028, U+2029 and
// each byte that is not UTF-8 (\ufffd) take 6.
func jsonLen(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

// ring keeps the last n lines read, in buffers it reuses.
type ring struct {
	lines [][]byte
	head  int // index of the oldest line when full
	count int
}

func (r *ring) init(n int) { r.lines = make([][]byte, n) }

func (r *ring) push(line []byte) {
	n := len(r.lines)
	if n == 0 {
		return
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

// cost is what the lines held count towards the answer limit.
func (r *ring) cost() int {
	n := 0
	for k := range r.count {
		n += jsonLen(r.lines[(r.head+k)%len(r.lines)])
	}
	return n
}

// strings returns the lines held, oldest first (never nil).
func (r *ring) strings() []string {
	out := make([]string, r.count)
	for k := range out {
		out[k] = string(r.lines[(r.head+k)%len(r.lines)])
	}
	return out
}

// lineReader splits a log into lines without copying them.
type lineReader struct {
	br    *bufio.Reader
	long  []byte // a cut line whose rest is being skipped
	strip []byte // a line without its console notes
	done  bool
}

func newLineReader(r io.Reader) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 64<<10)}
}

// next returns the next line without its newline (and a "\r" before it),
// cut to maxLineBytes at a character boundary (the rest of a long line is
// skipped). The last line counts even without a newline. line is valid
// until the next call; ok is false at the end.
func (lr *lineReader) next() (line []byte, ok bool, err error) {
	if lr.done {
		return nil, false, nil
	}
	frag, err := lr.br.ReadSlice('\n')
	cut := false
	switch err {
	case nil:
		line = frag[:len(frag)-1]
	case io.EOF:
		lr.done = true
		if len(frag) == 0 {
			return nil, false, nil
		}
		line = frag
	case bufio.ErrBufferFull:
		// A line longer than the buffer: keep its start, skip the rest.
		lr.long = append(lr.long[:0], frag...)
		line, cut = lr.long, true
		for err == bufio.ErrBufferFull {
			_, err = lr.br.ReadSlice('\n')
		}
		switch err {
		case nil:
		case io.EOF:
			lr.done = true
		default:
			return nil, false, fmt.Errorf("reading log: %w", err)
		}
	default:
		return nil, false, fmt.Errorf("reading log: %w", err)
	}
	if bytes.IndexByte(line, 0x1b) >= 0 {
		// Console notes (Jenkins 2.509 and later sends them raw): removed
		// before the line is cut, so a cut never shows half a note.
		lr.strip = stripNotes(lr.strip[:0], bytes.TrimSuffix(line, []byte{'\r'}), cut)
		line = lr.strip
	}
	if len(line) > maxLineBytes {
		line = trimToRune(line[:maxLineBytes])
	}
	line = bytes.TrimSuffix(line, []byte{'\r'})
	return line, true, nil
}
