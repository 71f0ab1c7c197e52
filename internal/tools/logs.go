package tools

import (
	"context"
	"errors"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
)

// LogIn selects part of a build's console output.
type LogIn struct {
	Job       string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build     *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
	Start     int64  `json:"start,omitempty" jsonschema:"byte offset to read from; pass next_start of the previous call to continue (ignored with tail_lines)"`
	MaxBytes  int    `json:"max_bytes,omitempty" jsonschema:"most bytes of text to return, 1 to 1048576; default 65536"`
	TailLines *int   `json:"tail_lines,omitempty" jsonschema:"return only the last N lines (1 to 10000), e.g. to see why a build failed"`
}

// LogOut is a piece of console output.
type LogOut struct {
	Text      string `json:"text"`
	Start     int64  `json:"start" jsonschema:"byte offset where text begins"`
	NextStart int64  `json:"next_start" jsonschema:"byte offset just after text; pass as start to read on"`
	More      bool   `json:"more" jsonschema:"true while more text follows next_start or the build is still running"`
}

func addGetBuildLog(t *Toolset) (*def, error) {
	return add(t, spec[LogIn, LogOut]{
		name: catalog.GetBuildLog,
		input: func(s *jsonschema.Schema) {
			buildSchema(s)
			prop(s, "start").Minimum = ptr(0.0)
			bounds(s, "max_bytes", 1, 1<<20)
			setDefault(s, "max_bytes", 65536)
			bounds(s, "tail_lines", 1, 10000)
		},
		target: func(in *LogIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *LogIn) (*LogOut, error) {
			n := buildNumber(in.Build)
			var (
				text        []byte
				start, next int64
				more        bool
			)
			if in.TailLines != nil {
				chunk, err := t.deps.Jenkins.TailLog(ctx, c.cred, c.target.job, n, *in.TailLines, in.MaxBytes)
				if err != nil {
					return nil, err
				}
				text, start, next, more = chunk.Text, chunk.Start, chunk.Next, chunk.Running
			} else {
				chunk, err := t.deps.Jenkins.ReadLog(ctx, c.cred, c.target.job, n, in.Start, in.MaxBytes)
				if err != nil {
					return nil, err
				}
				text, start, next, more = chunk.Text, chunk.Start, chunk.Next, chunk.More()
			}
			return &LogOut{Text: validUTF8(text), Start: start, NextStart: next, More: more}, nil
		},
	})
}

func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

// searchTimeout is how long one search scans before it answers with what
// it found (timed_out). A variable so tests can shorten it.
var searchTimeout = jenkins.DefaultSearchTimeout

// SearchIn is a log search.
type SearchIn struct {
	Job          string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build        *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
	Pattern      string `json:"pattern" jsonschema:"text to find; literal unless regex is true"`
	Regex        bool   `json:"regex,omitempty" jsonschema:"treat pattern as a regular expression (RE2 syntax; at most 1000 compiled instructions and repeat counts up to 100)"`
	IgnoreCase   bool   `json:"ignore_case,omitempty" jsonschema:"match regardless of case"`
	MaxMatches   int    `json:"max_matches,omitempty" jsonschema:"most matches to return, 1 to 1000; default 50"`
	ContextLines int    `json:"context_lines,omitempty" jsonschema:"lines of context before and after each match, 0 to 10; default 0"`

	pattern *jenkins.Pattern // compiled when the input is checked
}

// SearchMatch is a matching line.
type SearchMatch struct {
	LineNumber int      `json:"line_number" jsonschema:"1-based line number in the whole console output"`
	Line       string   `json:"line"`
	Before     []string `json:"before"`
	After      []string `json:"after"`
}

// SearchOut lists matches.
type SearchOut struct {
	Matches   []SearchMatch `json:"matches"`
	Truncated bool          `json:"truncated" jsonschema:"true when more matches may exist: max_matches was reached, the matches and their context reached 1 MiB of text, the log is too large to scan whole, or the search timed out"`
	TimedOut  bool          `json:"timed_out" jsonschema:"true when the search stopped after 10 s of scanning; matches holds what it found until then"`
}

func addSearchBuildLog(t *Toolset) (*def, error) {
	return add(t, spec[SearchIn, SearchOut]{
		name: catalog.SearchBuildLog,
		input: func(s *jsonschema.Schema) {
			buildSchema(s)
			p := prop(s, "pattern")
			p.MinLength, p.MaxLength = ptr(1), ptr(1000)
			bounds(s, "max_matches", 1, 1000)
			setDefault(s, "max_matches", 50)
			bounds(s, "context_lines", 0, 10)
			setDefault(s, "context_lines", 0)
		},
		target: func(in *SearchIn) (target, error) {
			p, err := compilePattern(in)
			if err != nil {
				return target{}, err
			}
			in.pattern = p
			return buildTarget(in.Job, in.Build)
		},
		run: func(ctx context.Context, c *call, in *SearchIn) (*SearchOut, error) {
			// The bound is taken after the decision and the credential, so
			// a call refused for them holds no slot; a slot is held until
			// the scan ends (at most searchTimeout after Jenkins answers).
			release, busy := t.searches.acquire(c.principal.User)
			if busy != nil {
				return nil, busy
			}
			defer release()
			p := in.pattern
			if p == nil {
				var err error
				if p, err = compilePattern(in); err != nil {
					return nil, err
				}
			}
			res, err := t.deps.Jenkins.SearchLog(ctx, c.cred, c.target.job, buildNumber(in.Build), p, jenkins.SearchOptions{
				MaxMatches:   in.MaxMatches,
				ContextLines: in.ContextLines,
				Timeout:      searchTimeout,
			})
			if err != nil {
				return nil, err
			}
			out := &SearchOut{Matches: make([]SearchMatch, 0, len(res.Matches)), Truncated: res.Truncated, TimedOut: res.TimedOut}
			for _, m := range res.Matches {
				out.Matches = append(out.Matches, SearchMatch{LineNumber: m.LineNumber, Line: m.Line, Before: nonNil(m.Before), After: nonNil(m.After)})
			}
			return out, nil
		},
	})
}

// complexHint follows a "pattern too complex" message.
const complexHint = "simplify it: use smaller repeat counts and fewer optional or repeated parts, " +
	"or search for a distinctive literal part of it (regex false) and read the context_lines around the matches"

func compilePattern(in *SearchIn) (*jenkins.Pattern, error) {
	p, err := jenkins.CompilePattern(in.Pattern, in.Regex, in.IgnoreCase)
	switch {
	case errors.Is(err, jenkins.ErrPatternTooComplex):
		return nil, Errorf(CodeInvalidArgument, "%v; %s", err, complexHint)
	case err != nil:
		return nil, Errorf(CodeInvalidArgument, "pattern is not a valid RE2 regular expression: %v", err)
	}
	return p, nil
}
