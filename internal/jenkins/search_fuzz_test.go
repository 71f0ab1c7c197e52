package jenkins

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// FuzzSearchLog searches arbitrary log bytes for arbitrary patterns, with
// any context, match count and answer limit. The search never panics; every
// match's line is the line of the input at its number (as the input splits
// with the reference line reader), numbers strictly increase, matches are
// exactly the first lines that RE2 matches (so the literal matchers agree
// with RE2), every match is whole, the answer is within its limit (lines
// counted as JSON, which jsonLen never undercounts), and truncated says
// whether matches were left out.
func FuzzSearchLog(f *testing.F) {
	long := strings.Repeat("y", 4094)
	for _, s := range []struct {
		log, pattern      string
		regex, ignoreCase bool
	}{
		{"a\nERROR one\nb\nc\nERROR two\nd\n", "ERROR", false, false},
		{"E1\nE2\nz\n", "E", false, false},
		{"x\r\nError: boom\r\n\r\nlast", "error", false, true},
		{"K\u212ak\nſs\n\xff\xfe\n", "\u212a", false, true},
		{"\xff\n\ufffd\n", "\ufffd", false, false},
		{long + "é\n" + long + "ERROR\n", "é", false, false},
		{strings.Repeat("z", 70000) + "\nq\n", "z+", true, false},
		{"a\nb\n", "^$|b", true, false},
		{"", "x", false, false},
	} {
		f.Add([]byte(s.log), s.pattern, s.regex, s.ignoreCase, uint8(2), uint8(3), uint16(40))
	}
	f.Fuzz(func(t *testing.T, log []byte, pat string, regex, ignoreCase bool, ctxN, maxN uint8, budgetN uint16) {
		p, err := CompilePattern(pat, regex, ignoreCase)
		if err != nil {
			return
		}
		o := SearchOptions{MaxMatches: 1 + int(maxN%20), ContextLines: int(ctxN % 11), MaxAnswerBytes: int(budgetN)}
		if o.MaxAnswerBytes == 0 {
			o.MaxAnswerBytes = MaxAnswerBytes
		}
		res, err := scan(strings.NewReader(string(log)), p, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		lines := refLines(log)
		for _, l := range lines {
			enc, _ := json.Marshal(l)
			if n := jsonLen([]byte(l)); n < len(enc)-2 {
				t.Fatalf("jsonLen(%q) = %d, JSON has %d", l, n, len(enc)-2)
			}
		}
		var want []int // line numbers RE2 matches
		for i, l := range lines {
			if p.re.MatchString(l) {
				want = append(want, i+1)
			}
		}
		used, prev := 0, 0
		for k, m := range res.Matches {
			n := m.LineNumber
			if n <= prev || n > len(lines) {
				t.Fatalf("match %d at line %d after line %d, of %d lines", k, n, prev, len(lines))
			}
			prev = n
			if k >= len(want) || n != want[k] {
				t.Fatalf("match %d at line %d, RE2 matches lines %v", k, n, want)
			}
			if m.Line != lines[n-1] {
				t.Fatalf("line %d: %q, input line %q", n, m.Line, lines[n-1])
			}
			nb, na := min(o.ContextLines, n-1), min(o.ContextLines, len(lines)-n)
			if !slices.Equal(m.Before, lines[n-1-nb:n-1]) || !slices.Equal(m.After, lines[n:n+na]) {
				t.Fatalf("line %d: context %q / %q, want %q / %q", n, m.Before, m.After, lines[n-1-nb:n-1], lines[n:n+na])
			}
			if m.Before == nil || m.After == nil {
				t.Fatalf("line %d: nil context", n)
			}
			used += m.cost()
		}
		if used > o.MaxAnswerBytes {
			t.Fatalf("answer of %d bytes, limit %d", used, o.MaxAnswerBytes)
		}
		if len(res.Matches) > o.MaxMatches {
			t.Fatalf("%d matches, max %d", len(res.Matches), o.MaxMatches)
		}
		if res.Truncated != (len(res.Matches) < len(want)) {
			t.Fatalf("truncated %v with %d of %d matches", res.Truncated, len(res.Matches), len(want))
		}
		if len(res.Matches) < len(want) && len(res.Matches) < o.MaxMatches {
			// Left out for the answer limit only: the next match, whole,
			// would not have fitted beside those kept.
			next := want[len(res.Matches)]
			cost := 0
			for i := max(0, next-1-o.ContextLines); i < min(len(lines), next+o.ContextLines); i++ {
				cost += jsonLen([]byte(lines[i]))
			}
			if used+cost <= o.MaxAnswerBytes {
				t.Fatalf("%d matches kept (%d bytes), but the next (line %d, %d bytes) fits in %d", len(res.Matches), used, next, cost, o.MaxAnswerBytes)
			}
		}
	})
}
