// Package corpus holds real-looking logs of failed Jenkins builds, one
// case per failure people meet (a Maven compile error, a failing JUnit
// test, a Gradle dependency that does not resolve, npm's ERESOLVE, a shell
// script's exit 1, a timeout step, an agent that went offline, an OOM
// kill, a Groovy MissingMethodException in a Jenkinsfile, a missing
// credentials ID, a denied docker pull, a connection reset), each written
// after what the tools and Jenkins print, with the usual noise around the
// failure.
//
// Each case is a directory under cases/: console.log, the whole console
// text as Butler's client returns it (console notes removed, LF line
// ends), and case.json, the build's other facts and what a diagnosis must
// find. For a Pipeline case the stages and their logs are derived from the
// console text the way Jenkins records them: a stage is the block that
// "[Pipeline] stage" then "[Pipeline] { (Name)" opens, its log the output
// of its steps (the "[Pipeline]" lines are the flow graph's, not a step's
// log), and its id the flow node id of the block's start, counting the
// flow graph's nodes from 2 (FlowStartNode) as workflow-cps numbers them.
//
// A case may also hold stages/<stage name>.log: that stage's log as
// Jenkins records it per flow node, for what the console cannot tell apart
// (parallel branches interleave their lines in the console, without saying
// whose each line is).
//
// The simulator and the demo can create these builds from Cases; the
// diagnose tests measure the analysis on them.
package corpus

import (
	"bufio"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
)

//go:embed cases
var files embed.FS

// Case is one failed build.
type Case struct {
	// Name is the case's directory name, e.g. "maven-compile-error".
	Name        string
	Description string
	// Job is a job path the build could belong to, e.g. "shop/backend".
	Job string
	// Result is the build's result (FAILURE, ABORTED, ...).
	Result   string
	Pipeline bool
	// Console is the whole console text.
	Console string
	// Stages are a Pipeline build's stages in the order they started.
	Stages       []Stage
	FailingTests []Test
	Changes      []Commit
	Upstream     *Upstream
	Expect       Expect
}

// Stage is one stage of a Pipeline case.
type Stage struct {
	ID, Name string
	// Status is stage-view's status (SUCCESS, FAILED, ABORTED, NOT_EXECUTED, ...).
	Status                  string
	ErrorType, ErrorMessage string
	// Log is the output of the stage's steps.
	Log string
	// Line is the 1-based console line of the stage's "[Pipeline] { (Name)".
	Line int
}

// Test is a failed test case.
type Test struct {
	Name    string `json:"name"`
	Class   string `json:"class"`
	Message string `json:"message"`
}

// Commit is a change since the last successful build.
type Commit struct {
	ID        string   `json:"id"`
	Author    string   `json:"author"`
	Message   string   `json:"message"`
	Timestamp string   `json:"timestamp"`
	Paths     []string `json:"paths"`
}

// Upstream is the build that triggered the case's build.
type Upstream struct {
	Job   string `json:"job"`
	Build int64  `json:"build"`
}

// Expect is what a diagnosis of the case must find.
type Expect struct {
	// Stage is the failed stage the first excerpt must point at ("" for a
	// freestyle build).
	Stage string `json:"stage"`
	// Decisive holds the decisive line, or parts of it: the first excerpt
	// must hold a line that contains one of them.
	Decisive []string `json:"decisive"`
	// Kind is the rule kind that should find it.
	Kind string `json:"kind"`
	// Hint is text one of the hints must contain, when set.
	Hint string `json:"hint"`
	// KnownMiss, when set, says why the analysis is known to miss this
	// case; the corpus test then does not fail on it.
	KnownMiss string `json:"known_miss"`
}

type caseFile struct {
	Description string `json:"description"`
	Job         string `json:"job"`
	Result      string `json:"result"`
	Pipeline    bool   `json:"pipeline"`
	Stages      map[string]struct {
		Status       string `json:"status"`
		ErrorType    string `json:"error_type"`
		ErrorMessage string `json:"error_message"`
	} `json:"stages"`
	FailingTests []Test    `json:"failing_tests"`
	Changes      []Commit  `json:"changes"`
	Upstream     *Upstream `json:"upstream"`
	Expect       Expect    `json:"expect"`
}

// Cases returns every case, sorted by name.
func Cases() ([]Case, error) {
	dirs, err := fs.ReadDir(files, "cases")
	if err != nil {
		return nil, fmt.Errorf("corpus: %w", err)
	}
	var out []Case
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		c, err := load(d.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b Case) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func load(name string) (Case, error) {
	dir := path.Join("cases", name)
	raw, err := files.ReadFile(path.Join(dir, "case.json"))
	if err != nil {
		return Case{}, fmt.Errorf("corpus: %s: %w", name, err)
	}
	var cf caseFile
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cf); err != nil {
		return Case{}, fmt.Errorf("corpus: %s/case.json: %w", name, err)
	}
	console, err := files.ReadFile(path.Join(dir, "console.log"))
	if err != nil {
		return Case{}, fmt.Errorf("corpus: %s: %w", name, err)
	}
	c := Case{
		Name: name, Description: cf.Description, Job: cf.Job, Result: cf.Result, Pipeline: cf.Pipeline,
		Console: string(console), FailingTests: cf.FailingTests, Changes: cf.Changes, Upstream: cf.Upstream, Expect: cf.Expect,
	}
	if c.Pipeline {
		c.Stages = SplitStages(c.Console)
		seen := map[string]bool{}
		for i := range c.Stages {
			st := &c.Stages[i]
			seen[st.Name] = true
			st.Status = "SUCCESS"
			if s, ok := cf.Stages[st.Name]; ok {
				st.Status, st.ErrorType, st.ErrorMessage = s.Status, s.ErrorType, s.ErrorMessage
			}
		}
		for i := range c.Stages {
			st := &c.Stages[i]
			if own, err := files.ReadFile(path.Join(dir, "stages", st.Name+".log")); err == nil {
				st.Log = string(own)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return Case{}, fmt.Errorf("corpus: %s: %w", name, err)
			}
		}
		for n := range cf.Stages {
			if !seen[n] {
				return Case{}, fmt.Errorf("corpus: %s/case.json names stage %q, which console.log does not hold", name, n)
			}
		}
		if c.Expect.Stage != "" && !seen[c.Expect.Stage] {
			return Case{}, fmt.Errorf("corpus: %s/case.json expects stage %q, which console.log does not hold", name, c.Expect.Stage)
		}
	}
	return c, nil
}

// SplitStages derives a Pipeline console's stages and their logs: each
// step output line goes to the innermost stage open around it. Stage ids
// are flow node ids: the n-th "[Pipeline]" line is node n+1 (the
// FlowStartNode, "Start of Pipeline", is node 2).
func SplitStages(console string) []Stage {
	type block struct {
		stage int // index in out, or -1
	}
	var (
		out       []Stage
		logs      []strings.Builder
		stack     []block
		node      = 1
		stageNext bool
	)
	sc := bufio.NewScanner(strings.NewReader(console))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	lineNo := 0
	for sc.Scan() {
		line := sc.Text()
		lineNo++
		if rest, ok := strings.CutPrefix(line, "[Pipeline] "); ok {
			node++
			switch {
			case rest == "stage":
				stageNext = true
				continue
			case strings.HasPrefix(rest, "{"):
				b := block{stage: -1}
				if n := strings.TrimSpace(rest[1:]); stageNext && strings.HasPrefix(n, "(") && strings.HasSuffix(n, ")") {
					out = append(out, Stage{ID: strconv.Itoa(node), Name: n[1 : len(n)-1], Line: lineNo})
					logs = append(logs, strings.Builder{})
					b.stage = len(out) - 1
				}
				stack = append(stack, b)
			case strings.HasPrefix(rest, "}"):
				if len(stack) > 0 {
					stack = stack[:len(stack)-1]
				}
			}
			stageNext = false
			continue
		}
		for i := len(stack) - 1; i >= 0; i-- {
			if s := stack[i].stage; s >= 0 {
				logs[s].WriteString(line)
				logs[s].WriteByte('\n')
				break
			}
		}
	}
	for i := range out {
		out[i].Log = logs[i].String()
	}
	return out
}
