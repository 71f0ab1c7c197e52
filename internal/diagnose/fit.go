package diagnose

import (
	"encoding/json"
	"fmt"
)

// size is the length of r's JSON as encoding/json writes it (the MCP SDK
// encodes structured content with it, HTML escaping included).
func size(r *Report) int {
	b, err := json.Marshal(r)
	if err != nil {
		return MaxReportBytes + 1
	}
	return len(b)
}

// fit drops the least useful parts of r until its JSON is at most
// MaxReportBytes, saying in Omitted what went: first the context of the
// later excerpts, then those excerpts, the tests' messages, most tests and
// commits and hints, the first excerpt's context, long lines, and at last
// everything but the result.
func fit(r *Report) {
	base := append([]string(nil), r.Omitted...)
	var (
		cutContext, droppedExcerpts, droppedTests, droppedChanges, droppedHints, droppedStages int
		testMessages, longLines, firstContext                                                  bool
	)
	over := func() bool {
		r.Omitted = append([]string(nil), base...)
		add := func(n int, what string) {
			if n > 0 {
				r.Omitted = append(r.Omitted, fmt.Sprintf("%d %s", n, what))
			}
		}
		add(cutContext, "excerpts' context lines")
		add(droppedExcerpts, "excerpts")
		add(droppedTests, "failing tests")
		add(droppedChanges, "commits")
		add(droppedHints, "hints")
		add(droppedStages, "failed stages")
		if testMessages {
			r.Omitted = append(r.Omitted, "failing tests' messages")
		}
		if firstContext {
			r.Omitted = append(r.Omitted, "the first excerpt's context")
		}
		if longLines {
			r.Omitted = append(r.Omitted, "the ends of lines over 120 bytes")
		}
		r.Truncated = len(r.Omitted) > 0
		if len(r.Omitted) == 0 {
			r.Omitted = nil
		}
		return size(r) > MaxReportBytes
	}
	trim := func(e *Excerpt, before, after int) {
		at := int(e.LineNumber - e.StartLine)
		lo, hi := max(0, at-before), min(len(e.Lines), at+after+1)
		cut := len(e.Lines) - (hi - lo)
		if cut > 0 {
			e.Lines = append([]string(nil), e.Lines[lo:hi]...)
			e.StartLine += int64(lo)
			cutContext += cut
		}
	}
	steps := []func() bool{
		func() bool { // later excerpts' context
			done := false
			for i := range r.ErrorExcerpts[min(1, len(r.ErrorExcerpts)):] {
				e := &r.ErrorExcerpts[i+1]
				n := len(e.Lines)
				trim(e, 1, 2)
				done = done || len(e.Lines) < n
			}
			return done
		},
		func() bool { // later excerpts, the last first
			if len(r.ErrorExcerpts) <= 1 {
				return false
			}
			r.ErrorExcerpts = r.ErrorExcerpts[:len(r.ErrorExcerpts)-1]
			droppedExcerpts++
			return true
		},
		func() bool {
			if testMessages {
				return false
			}
			testMessages = true
			for i := range r.FailingTests {
				r.FailingTests[i].Message = ""
			}
			return true
		},
		func() bool { return dropTail(&r.FailingTests, 3, &droppedTests) },
		func() bool { return dropTail(&r.Changes, 5, &droppedChanges) },
		func() bool { return dropTail(&r.Hints, 3, &droppedHints) },
		func() bool {
			if len(r.ErrorExcerpts) == 0 {
				return false
			}
			n := len(r.ErrorExcerpts[0].Lines)
			trim(&r.ErrorExcerpts[0], 1, 2)
			return len(r.ErrorExcerpts[0].Lines) < n
		},
		func() bool {
			if longLines {
				return false
			}
			longLines = true
			for i := range r.ErrorExcerpts {
				for j, l := range r.ErrorExcerpts[i].Lines {
					r.ErrorExcerpts[i].Lines[j] = bounded(l, 120)
				}
			}
			return true
		},
		func() bool { return dropTail(&r.FailedStages, 5, &droppedStages) },
		func() bool { return dropTail(&r.Changes, 0, &droppedChanges) },
		func() bool { return dropTail(&r.FailingTests, 0, &droppedTests) },
		func() bool { return dropTail(&r.Hints, 1, &droppedHints) },
		func() bool {
			if len(r.ErrorExcerpts) == 0 || len(r.ErrorExcerpts[0].Lines) <= 1 {
				return false
			}
			firstContext = true
			n := len(r.ErrorExcerpts[0].Lines)
			trim(&r.ErrorExcerpts[0], 0, 0)
			return len(r.ErrorExcerpts[0].Lines) < n
		},
		func() bool { return dropTail(&r.FailedStages, 0, &droppedStages) },
		func() bool { return dropTail(&r.Hints, 0, &droppedHints) },
		func() bool { return dropTail(&r.ErrorExcerpts, 0, &droppedExcerpts) },
	}
	for _, step := range steps {
		for over() && step() {
		}
	}
	if over() {
		// Only hostile input gets here (huge ids and names that escape
		// six-fold): keep the result alone.
		*r = Report{Result: r.Result, FailedStages: []StageRef{}, ErrorExcerpts: []Excerpt{}, FailingTests: []Test{},
			Changes: []Change{}, Hints: []string{}, FailingTestsTotal: r.FailingTestsTotal,
			Truncated: true, Omitted: []string{"everything but the result: the answer was too big"}}
	}
}

// dropTail shortens *s to keep elements, counting what it drops.
func dropTail[T any](s *[]T, keep int, dropped *int) bool {
	if len(*s) <= keep {
		return false
	}
	*dropped += len(*s) - keep
	*s = (*s)[:keep]
	return true
}
