package jenkins

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync/atomic"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// refReadLine is the line splitting of the search before it streamed
// without copying (kept verbatim as the reference): the next line without
// its newline, cut to maxLineBytes; io.EOF with the last line when the
// input does not end in a newline, and (nil, io.EOF) at the end.
func refReadLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	cut := false
	for {
		frag, err := br.ReadSlice('\n')
		if !cut {
			if room := maxLineBytes - len(line); len(frag) > room {
				frag, cut = trimToRune(frag[:room]), true
			}
			line = append(line, frag...)
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			line = bytes.TrimSuffix(line, []byte{'\n'})
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return bytes.TrimSuffix(line, []byte{'\r'}), io.EOF
		default:
			return nil, fmt.Errorf("reading log: %w", err)
		}
	}
}

// refLines splits log as the search always has.
func refLines(log []byte) []string {
	br := bufio.NewReaderSize(bytes.NewReader(log), 64<<10)
	var out []string
	for {
		line, err := refReadLine(br)
		if err == io.EOF && line == nil {
			return out
		}
		out = append(out, string(line))
		if err == io.EOF {
			return out
		}
	}
}

func readAllLines(t testing.TB, r io.Reader) []string {
	t.Helper()
	lr := newLineReader(r)
	var out []string
	for {
		line, ok, err := lr.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			return out
		}
		out = append(out, string(line))
	}
}

// The streaming line reader splits exactly as before: newlines, "\r\n",
// a last line without newline, lines cut at 4 KiB on a character boundary,
// lines longer than the 64 KiB buffer.
func TestLineReader_SplitsAsBefore(t *testing.T) {
	t.Parallel()
	long := func(n int, tail string) string { return strings.Repeat("x", n) + tail }
	for _, log := range []string{
		"", "\n", "\n\n", "a", "a\n", "a\nb", "a\r\nb\r\n", "\r", "\r\n", "a\r", "a\r\r\n", "\ra\n",
		long(4095, "\n"), long(4096, "\n"), long(4097, "\n"), long(4095, "\r\n"), long(4094, "\r\n"), long(4095, "\r"),
		long(4094, "é\n"), long(4095, "é\n"), long(4093, "€\n"), long(4094, "€x\n"), long(4095, "\xff\n"),
		long(70000, "\nnext\n"), long(64<<10, "\n"), long(64<<10-1, "\n"), long(64<<10+1, ""), long(200000, "\r\n"), long(5000, ""),
		long(4094, "\r\rmore\n"), "\xff\xfe\n\x00\n",
	} {
		want := refLines([]byte(log))
		got := readAllLines(t, strings.NewReader(log))
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("log of %d bytes ending %q (-want +got):\n%.300s", len(log), log[max(0, len(log)-8):], diff)
		}
	}
}

// A read error is an error, not the end of the log.
func TestLineReader_ReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, first := range []string{"a\nb", strings.Repeat("y", 70000)} {
		lr := newLineReader(io.MultiReader(strings.NewReader(first), &errReader{boom}))
		var err error
		for err == nil {
			var ok bool
			if _, ok, err = lr.next(); !ok && err == nil {
				t.Fatalf("%d bytes then an error: end of log without the error", len(first))
			}
		}
		if !errors.Is(err, boom) {
			t.Errorf("error %v, want boom", err)
		}
	}
}

type errReader struct{ err error }

func (r *errReader) Read([]byte) (int, error) { return 0, r.err }

func mustPattern(t testing.TB, pattern string, regex, ignoreCase bool) *Pattern {
	t.Helper()
	p, err := CompilePattern(pattern, regex, ignoreCase)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type matchView struct {
	N             int
	Before, After string
}

func view(res *SearchResult) []matchView {
	var out []matchView
	for _, m := range res.Matches {
		out = append(out, matchView{m.LineNumber, strings.Join(m.Before, ","), strings.Join(m.After, ",")})
	}
	return out
}

// The answer limit counts line text of matches and of their context, and
// cuts the answer after the last whole match it can keep.
func TestScan_AnswerLimitCutsAtWholeMatches(t *testing.T) {
	t.Parallel()
	spaced := "a\nE1\nb\nE2\nc\nE3\nd\n" // each match with its context costs 4
	packed := "E1\nE2\nE3\nx\ny\n"       // context 2: E1 costs 6, E2 7, E3 8
	for _, tc := range []struct {
		log       string
		ctx, max  int
		budget    int
		want      []matchView
		truncated bool
	}{
		{spaced, 1, 10, 12, []matchView{{2, "a", "b"}, {4, "b", "c"}, {6, "c", "d"}}, false},
		{spaced, 1, 10, 11, []matchView{{2, "a", "b"}, {4, "b", "c"}}, true},
		{spaced, 1, 10, 8, []matchView{{2, "a", "b"}, {4, "b", "c"}}, true},
		// E2's line and before-line fit (7), its after-line does not.
		{spaced, 1, 10, 7, []matchView{{2, "a", "b"}}, true},
		{spaced, 1, 10, 3, nil, true},
		{spaced, 0, 10, 4, []matchView{{2, "", ""}, {4, "", ""}}, true},
		{spaced, 0, 10, 6, []matchView{{2, "", ""}, {4, "", ""}, {6, "", ""}}, false},
		// Overlapping context: the newest matches are dropped until the
		// older ones can be completed.
		{packed, 2, 10, 21, []matchView{{1, "", "E2,E3"}, {2, "E1", "E3,x"}, {3, "E1,E2", "x,y"}}, false},
		{packed, 2, 10, 20, []matchView{{1, "", "E2,E3"}, {2, "E1", "E3,x"}}, true},
		{packed, 2, 10, 13, []matchView{{1, "", "E2,E3"}, {2, "E1", "E3,x"}}, true},
		{packed, 2, 10, 12, []matchView{{1, "", "E2,E3"}}, true},
		{packed, 2, 10, 6, []matchView{{1, "", "E2,E3"}}, true},
		{packed, 2, 10, 5, nil, true},
		// max_matches: the matches kept still get their after-lines.
		{packed, 2, 1, 100, []matchView{{1, "", "E2,E3"}}, true},
		{packed, 2, 2, 100, []matchView{{1, "", "E2,E3"}, {2, "E1", "E3,x"}}, true},
		{packed, 2, 3, 100, []matchView{{1, "", "E2,E3"}, {2, "E1", "E3,x"}, {3, "E1,E2", "x,y"}}, false},
	} {
		res, err := scan(strings.NewReader(tc.log), mustPattern(t, "E", false, false), SearchOptions{MaxMatches: tc.max, ContextLines: tc.ctx, MaxAnswerBytes: tc.budget}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, view(res)); diff != "" || res.Truncated != tc.truncated {
			t.Errorf("%q context %d max %d budget %d: truncated %v (want %v) (-want +got):\n%s", tc.log, tc.ctx, tc.max, tc.budget, res.Truncated, tc.truncated, diff)
		}
		used := 0
		for i := range res.Matches {
			used += res.Matches[i].cost()
		}
		if used > tc.budget {
			t.Errorf("%q budget %d: %d bytes", tc.log, tc.budget, used)
		}
	}
}

// Once told to stop, the scan ends at the next line with what it found.
func TestScan_StopsWhenTold(t *testing.T) {
	t.Parallel()
	var stop atomic.Bool
	r := &funcReader{read: func(p []byte) (int, error) {
		stop.Store(true) // stop as soon as the first block is read
		return copy(p, "E1\nx\nE2\n"), nil
	}}
	res, err := scan(r, mustPattern(t, "E", false, false), SearchOptions{MaxMatches: 10, MaxAnswerBytes: MaxAnswerBytes}, &stop)
	// The flag is read before each line: the line being read is the last.
	if !errors.Is(err, errStopped) || res == nil || len(res.Matches) != 1 || res.Matches[0].Line != "E1" {
		t.Fatalf("scan told to stop: %v, %+v", err, res)
	}
	stop.Store(false)
	res, err = scan(io.MultiReader(strings.NewReader("E1\n"), &funcReader{read: func(p []byte) (int, error) {
		stop.Store(true)
		return copy(p, "x\n"), nil
	}}), mustPattern(t, "E", false, false), SearchOptions{MaxMatches: 10, ContextLines: 1, MaxAnswerBytes: MaxAnswerBytes}, &stop)
	if !errors.Is(err, errStopped) || len(res.Matches) != 1 || res.Matches[0].Line != "E1" {
		t.Fatalf("stopped after a match: %v, %+v", err, res)
	}
}

type funcReader struct{ read func([]byte) (int, error) }

func (r *funcReader) Read(p []byte) (int, error) { return r.read(p) }

func TestCompilePattern(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pattern           string
		regex, ignoreCase bool
		tooComplex        string // the message, when too complex
		invalid           bool
	}{
		{pattern: "(?:.?){1000}Z", regex: true, tooComplex: "pattern too complex: it repeats {1000}, more than 100 times"},
		{pattern: "a{101}", regex: true, tooComplex: "pattern too complex: it repeats {101}, more than 100 times"},
		{pattern: "a{7,}b{101,}", regex: true, tooComplex: "pattern too complex: it repeats {101,}, more than 100 times"},
		{pattern: "(a{3,101})", regex: true, ignoreCase: true, tooComplex: "pattern too complex: it repeats {3,101}, more than 100 times"},
		{pattern: strings.Repeat("(?:.?){100}", 5), regex: true, tooComplex: "pattern too complex: it compiles to 1002 RE2 instructions, more than 1000"},
		{pattern: "a{100}", regex: true},
		{pattern: strings.Repeat("(?:.?){100}", 4), regex: true},
		{pattern: "a{1001}", regex: true, invalid: true}, // RE2's own limit: invalid, not too complex
		{pattern: "(", regex: true, invalid: true},
		{pattern: "(", regex: false},
		{pattern: "a{101}", regex: false},
		{pattern: strings.Repeat("ab", 500), regex: false, ignoreCase: true}, // 1,002 instructions, a literal
		{pattern: "\xff", regex: false, invalid: true},                       // as regexp.Compile(QuoteMeta): invalid UTF-8
	} {
		p, err := CompilePattern(tc.pattern, tc.regex, tc.ignoreCase)
		var se *syntax.Error
		switch {
		case tc.tooComplex != "":
			if !errors.Is(err, ErrPatternTooComplex) || err.Error() != tc.tooComplex {
				t.Errorf("%.30q: %v, want %q", tc.pattern, err, tc.tooComplex)
			}
		case tc.invalid:
			if !errors.As(err, &se) || errors.Is(err, ErrPatternTooComplex) {
				t.Errorf("%.30q: %v, want a *syntax.Error", tc.pattern, err)
			}
		case err != nil || p == nil:
			t.Errorf("%.30q: %v", tc.pattern, err)
		}
	}
	// The literal paths are taken where the regexp is a quoted literal.
	if p := mustPattern(t, "a.b", false, false); !p.literal || p.fold {
		t.Errorf("literal: %+v", p)
	}
	if p := mustPattern(t, "a.b", false, true); !p.literal || !p.fold {
		t.Errorf("literal ignoring case: %+v", p)
	}
	if p := mustPattern(t, "ab", true, false); p.literal {
		t.Errorf("regex: %+v", p)
	}
	if p := mustPattern(t, "a\ufffd", false, false); p.literal {
		t.Errorf("literal with U+FFFD: %+v", p)
	}
}

// The literal matchers find exactly the lines RE2 finds with the quoted
// literal, including for the characters whose case orbits leave ASCII
// (k, s), that have three cases, or that fold to nothing else, and for
// bytes that are not UTF-8.
func TestLiteralMatchers_SameAsRE2(t *testing.T) {
	t.Parallel()
	words := []string{"k", "K", "\u212a", "s", "S", "\u017f", "ß", "ẞ", "ss", "σ", "ς", "Σ", "ǅ", "ǆ", "Ǆ", "i", "İ", "ı", "I",
		"é", "É", "\ufffd", "\xff", "\xe2\x82", "€", "µ", "μ", "Μ", "a", "error", "ERROR", "ſtatus", "\r", "x\x00y", "ǅa", "ΐ", "ΰ", "ᾳ", "ῼ"}
	var lines []string
	for _, a := range words {
		for _, b := range words {
			lines = append(lines, a+b, "-"+a+b+"-")
		}
	}
	for _, ignoreCase := range []bool{false, true} {
		for _, w := range words {
			if !utf8.ValidString(w) {
				continue
			}
			p := mustPattern(t, w, false, ignoreCase)
			re := regexp.MustCompile(map[bool]string{false: "", true: "(?i)"}[ignoreCase] + regexp.QuoteMeta(w))
			match := p.matcher()
			for _, l := range lines {
				if got, want := match([]byte(l)), re.MatchString(l); got != want {
					t.Errorf("pattern %q ignore_case %v, line %q: %v, RE2 %v", w, ignoreCase, l, got, want)
				}
			}
		}
	}
	// Every character folds to the smallest of its orbit, the same for
	// every character of the orbit.
	for r := rune(0); r <= utf8.MaxRune; r++ {
		f := foldRune(r)
		if f > r || foldRune(f) != f {
			t.Fatalf("%U folds to %U", r, f)
		}
		if g := foldRune(unicode.SimpleFold(r)); g != f {
			t.Fatalf("%U folds to %U, %U (in its orbit) to %U", r, f, unicode.SimpleFold(r), g)
		}
		if r < utf8.RuneSelf && rune(asciiFold[r]) != f {
			t.Fatalf("asciiFold[%q] = %q, want %q", r, asciiFold[r], f)
		}
	}
}

// jsonLen counts a line as encoding/json writes it, or a little more.
func TestJSONLen(t *testing.T) {
	t.Parallel()
	for _, l := range []string{"", "plain text", `"q" \ b`, "\n\r\t", "\x00\x01\x1f\x7f", "<a href=x>&amp;</a>", "\xff\xfe", "é€😀",
		"\u2028\u2029", "\xe2\x82", "\b\f", "\ufffd"} {
		enc, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		want, got := len(enc)-2, jsonLen([]byte(l))
		if got < want || got > want+4*len(l) {
			t.Errorf("jsonLen(%q) = %d, JSON has %d", l, got, want)
		}
		if l != "\b\f" && got != want {
			t.Errorf("jsonLen(%q) = %d, want exactly %d", l, got, want)
		}
	}
}
