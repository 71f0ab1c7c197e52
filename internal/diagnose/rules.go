package diagnose

import (
	"bytes"
	"regexp"
	"sync"
)

// A rule recognises one kind of error-looking line. Its score says how
// decisive such a line is: a line that names a cause (a compiler error with
// its file and line, "Agent went offline during the build", an
// OutOfMemoryError) scores high; a line that only says something failed
// ("ERROR: script returned exit code 1", "BUILD FAILURE") scores low, so it
// is shown only when nothing better is found.
//
// A line is matched on its ASCII-lowercased text first (keys: any of them
// must occur), which is cheap, and only then on re, over the original text.
type rule struct {
	kind  string
	score int
	keys  []string       // lowercase; at least one must occur
	not   []string       // lowercase; none may occur
	re    *regexp.Regexp // optional, matched on the original line
	// check, when set, must also hold for the lowercased line.
	check func(lower []byte) bool

	keyIDs, notIDs []uint16 // keys and not in the matcher's key set
}

// A noise rule lowers the score of a line that matched some rule: the
// "[INFO]" and "[WARNING]" lines of Maven, "0 errors" summaries, a shell's
// "+ command" trace, stack frames.
type noise struct {
	name    string
	penalty int
	// weakOnly applies the penalty only to lines whose best rule scores
	// under weakScore: "Tests run: 3, Failures: 1, Errors: 0" holds a
	// zero count but is not noise.
	weakOnly bool
	prefix   []string // lowercase, at the start of the line (after spaces)
	keys     []string // lowercase, anywhere
	re       *regexp.Regexp
	check    func(lower []byte) bool
	frame    bool // a stack frame ("\tat a.B.c(B.java:1)", "\t... 4 more")

	prefixBytes [][]byte
	keyIDs      []uint16
}

const (
	// minScore is the least score a line needs to be an excerpt at all.
	minScore = 20
	// weakScore separates the generic rules ("error" somewhere) from the
	// specific ones.
	weakScore = 50
)

// Rule kinds that hints and tests refer to.
const (
	kindAgentOffline   = "agent-offline"
	kindOOMKilled      = "oom-killed"
	kindJavaOOM        = "out-of-memory"
	kindTimeout        = "timeout"
	kindGroovy         = "jenkinsfile-groovy"
	kindCredentials    = "credentials-not-found"
	kindAborted        = "aborted-by-user"
	kindScriptExit     = "script-exit-code"
	kindMavenCompile   = "maven-compile-error"
	kindCompile        = "compile-error"
	kindTestFailure    = "test-failure"
	kindAssertion      = "test-assertion"
	kindGradleResolve  = "dependency-resolution"
	kindNpmResolve     = "npm-dependency-resolution"
	kindDockerPull     = "docker-pull"
	kindNetwork        = "network"
	kindGitAuth        = "git-auth"
	kindDiskFull       = "disk-full"
	kindCommandMissing = "command-not-found"
)

func re(expr string) *regexp.Regexp { return regexp.MustCompile(expr) }

// newRules is the rule set; compiledRules builds it once.
func newRules() []rule {
	return []rule{
		// Jenkins and its agents.
		{kind: kindAgentOffline, score: 92, keys: []string{"went offline during the build"}},
		{kind: kindAgentOffline, score: 90, keys: []string{"channelclosedexception"}},
		{kind: kindAgentOffline, score: 88, keys: []string{"cannot contact "}, re: re(`Cannot contact [^\s:]+: `)},
		{kind: kindAgentOffline, score: 88, keys: []string{"was deleted; cancelling node body", "was marked offline", "connection was broken", "backing channel", "is offline"}, re: re(`(?i)(agent \S+ was (deleted|marked offline)|connection was broken|backing channel '[^']*' is disconnected|agent \S+ is offline)`)},
		{kind: kindAgentOffline, score: 86, keys: []string{"removednodecause", "removednodetimeoutcause"}},

		{kind: kindOOMKilled, score: 92, keys: []string{"killed"}, re: re(`(^\s*Killed\s*$)|(: line \d+: +\d+ Killed\b)|\bOOMKilled\b`)},
		{kind: kindOOMKilled, score: 86, keys: []string{"exit code 137", "exit status 137", "exited with code 137"}},
		{kind: kindJavaOOM, score: 92, keys: []string{"outofmemoryerror", "javascript heap out of memory", "cannot allocate memory", "runtime: out of memory"}},

		{kind: kindTimeout, score: 88, keys: []string{"cancelling nested steps due to timeout", "build timed out (after"}},
		{kind: kindTimeout, score: 85, keys: []string{"timeout has been exceeded"}},

		{kind: kindGroovy, score: 93, keys: []string{"missingmethodexception", "missingpropertyexception", "multiplecompilationerrorsexception", "no such dsl method", "rejectedaccessexception", "scripts not permitted to use"}},
		{kind: kindGroovy, score: 92, keys: []string{"workflowscript: "}, re: re(`^WorkflowScript: \d+: `)},

		{kind: kindCredentials, score: 94, keys: []string{"could not find credentials entry with id", "credentialnotfoundexception"}},
		{kind: kindCredentials, score: 80, keys: []string{"could not be found"}, re: re(`CredentialId "[^"]*" could not be found`)},

		{kind: kindAborted, score: 70, keys: []string{"aborted by ", "rejected by "}, re: re(`^(Aborted|Rejected) by \S+`)},

		// An exit code is where a step failed, rarely why.
		{kind: kindScriptExit, score: 40, keys: []string{"exit code 143"}},
		{kind: kindScriptExit, score: 30, keys: []string{"script returned exit code", "exit code", "exit status", "returned non-zero exit status"}},
		{kind: "build-step-failed", score: 22, keys: []string{"marked build as failure"}},

		// Maven.
		{kind: kindMavenCompile, score: 95, keys: []string{"[error] "}, re: re(`^\[ERROR\] .*\.(java|kt|scala|groovy):\[\d+(,\d+)?\] `)},
		{kind: "maven-compilation-header", score: 70, keys: []string{"[error] compilation error"}},
		{kind: "maven-goal-failed", score: 75, keys: []string{"[error] failed to execute goal"}},
		{kind: "maven-dependency", score: 90, keys: []string{"could not resolve dependencies for project", "could not transfer artifact", "was not found in"}, re: re(`(?i)(could not resolve dependencies for project|could not transfer artifact|\S+ was not found in https?://)`)},
		{kind: "build-failure", score: 30, keys: []string{"build failure", "build failed"}},

		// Tests.
		{kind: kindTestFailure, score: 85, keys: []string{"<<< failure!", "<<< error!"}},
		{kind: kindAssertion, score: 88, keys: []string{"assertionfailederror", "assertionerror", "comparisonfailure", "but was", "expected:", "assert "}, re: re(`(AssertionFailedError|AssertionError|ComparisonFailure)|expected:? ?<.*> but was:? ?<|^\s*(E\s+)?assert\s|^\s*Expected: .+`)},
		{kind: "test-summary", score: 55, keys: []string{"tests run:"}, check: func(l []byte) bool { return nonzero(l, "failures: ") || nonzero(l, "errors: ") }},
		{kind: "test-summary", score: 60, keys: []string{"[error] failures:", "[error] errors:"}, re: re(`^\[ERROR\] (Failures|Errors): ?$`)},
		{kind: "test-summary", score: 50, keys: []string{"there are test failures", "tests failed", "test failed"}},
		{kind: kindTestFailure, score: 82, keys: []string{"--- fail: "}, re: re(`^\s*--- FAIL: `)},
		{kind: "go-panic", score: 86, keys: []string{"panic: "}, re: re(`^panic: `)},

		// Compilers.
		{kind: kindCompile, score: 92, keys: []string{": error", ": fatal error", "): error", "error ts"}, re: re(`\.(java|kt|c|cc|cpp|cxx|h|hpp|go|ts|tsx|js|jsx|rs|scala|swift|cs|py):\d+(:\d+)?:? (fatal )?error\b|\(\d+,\d+\): error [A-Z]+\d+|error TS\d+:`)},
		{kind: kindCompile, score: 90, keys: []string{"e: "}, re: re(`^e: (file://)?\S+\.kts?:`)},
		{kind: kindCompile, score: 85, keys: []string{"error"}, re: re(`^error\[E\d+\]: `)},
		{kind: kindCompile, score: 84, keys: []string{"cannot find symbol", "unresolved reference", "undefined reference", "undefined: "}},

		// Gradle.
		{kind: kindGradleResolve, score: 93, keys: []string{"could not resolve ", "could not find "}, re: re(`^\s*> Could not (resolve|find) [\w.\-]+:[\w.\-]+`)},
		{kind: kindGradleResolve, score: 90, keys: []string{"could not resolve all files for configuration", "could not resolve all dependencies for configuration", "could not resolve all artifacts for configuration"}},
		{kind: "gradle-what-went-wrong", score: 72, keys: []string{"* what went wrong:"}},
		{kind: "gradle-task-failed", score: 75, keys: []string{"execution failed for task"}},
		{kind: "build-failure", score: 32, keys: []string{"failure: build failed with an exception"}},

		// npm.
		{kind: kindNpmResolve, score: 90, keys: []string{"eresolve unable to resolve dependency tree", "could not resolve dependency:", "conflicting peer dependency"}},
		{kind: "npm-missing-script", score: 90, keys: []string{"missing script:"}},
		{kind: "npm-not-found", score: 85, keys: []string{"npm err! 404", "npm error 404"}},
		{kind: "npm-error", score: 80, keys: []string{"npm err! code ", "npm error code "}, not: []string{"elifecycle"}},
		{kind: "npm-error", score: 45, keys: []string{"npm err! code elifecycle", "npm error code elifecycle"}},
		{kind: "npm-error", score: 38, keys: []string{"npm err!", "npm error "}},

		// Docker.
		{kind: kindDockerPull, score: 92, keys: []string{"pull access denied", "manifest unknown", "toomanyrequests", "no basic auth credentials", "repository does not exist"}},
		{kind: kindDockerPull, score: 90, keys: []string{"manifest for "}, re: re(`manifest for \S+ not found`)},
		{kind: kindDockerPull, score: 85, keys: []string{"error response from daemon", "unauthorized: authentication required"}},
		{kind: "docker-build", score: 80, keys: []string{"failed to solve", "did not complete successfully"}},

		// Network.
		{kind: kindNetwork, score: 80, keys: []string{"could not resolve host", "temporary failure in name resolution", "unknownhostexception", "name or service not known", "no such host"}},
		{kind: kindNetwork, score: 78, keys: []string{"connection reset", "econnreset", "broken pipe"}},
		{kind: kindNetwork, score: 75, keys: []string{"connection refused", "econnrefused", "connection timed out", "etimedout", "sockettimeoutexception", "read timed out", "tls handshake timeout", "sslhandshakeexception", "i/o timeout", "unexpected eof"}},

		// git.
		{kind: "git-no-revision", score: 85, keys: []string{"couldn't find any revision to build"}},
		{kind: kindGitAuth, score: 85, keys: []string{"permission denied (publickey)", "authentication failed for", "could not read username", "invalid username or password"}},
		{kind: "git-error", score: 72, keys: []string{"error cloning remote repo", "error fetching remote repo"}},
		{kind: "git-error", score: 68, keys: []string{"fatal: "}, re: re(`^fatal: `)},

		// The shell and the machine.
		{kind: kindDiskFull, score: 93, keys: []string{"no space left on device", "disk quota exceeded"}},
		{kind: kindCommandMissing, score: 88, keys: []string{"command not found", ": not found"}, re: re(`(command not found|: \d+: [^:]+: not found)`)},
		{kind: "permission-denied", score: 65, keys: []string{"permission denied", "access denied"}},
		{kind: "no-such-file", score: 60, keys: []string{"no such file or directory", "filenotfoundexception"}},

		// Generic: any exception, error or failure.
		{kind: "exception", score: 70, keys: []string{"exception in thread"}},
		{kind: "exception", score: 62, keys: []string{"caused by: "}, re: re(`^\s*Caused by: `)},
		{kind: "exception", score: 58, keys: []string{"exception", "error"}, not: []string{"abortexception: script returned"}, re: re(`^\s*([a-z][\w$]*\.)+[A-Z][\w$]*(Exception|Error)(: |$)`)},
		{kind: "python-error", score: 65, keys: []string{"error: ", "exception: "}, re: re(`^[A-Z]\w*(Error|Exception): `)},
		{kind: "python-traceback", score: 55, keys: []string{"traceback (most recent call last)"}},
		{kind: "fatal", score: 55, keys: []string{"fatal"}, re: re(`(?i)^\s*\[?fatal\]?[:\s]`)},
		{kind: "error", score: 40, keys: []string{"error"}, check: startsWith("[error]", "error:", "error ")},
		{kind: "error", score: 26, keys: []string{"error"}, check: word("error", "", "s")},
		{kind: "exception", score: 24, keys: []string{"exception"}},
		{kind: "failure", score: 20, keys: []string{"fail"}, check: word("fail", "", "ed", "ure", "ing", "s")},
	}
}

func newNoise() []noise {
	return []noise{
		{name: "structure", penalty: 1000, prefix: []string{"[pipeline] ", "finished: "}},
		{name: "skipped-stage", penalty: 1000, keys: []string{"skipped due to earlier failure", "skipped due to when conditional"}},
		{name: "stack-frame", penalty: 1000, frame: true},
		{name: "log-level", penalty: 45, prefix: []string{"[info]", "[warning]", "[warn]", "[debug]", "warning:", "warn:", "info:", "debug:", "w: "}},
		{name: "shell-trace", penalty: 60, prefix: []string{"+ "}},
		{name: "retry", penalty: 15, keys: []string{"retrying", "will retry", "retry ("}},
		{name: "zero-count", penalty: 40, weakOnly: true, keys: []string{"error", "fail"}, check: zeroCount},
		{name: "not-an-error", penalty: 30, weakOnly: true, keys: []string{"error.log", "errors.log", "error_log", "-werror", "ignore-error", "ignoreerror", "on-error", "onerror", "fail-fast", "failfast", "failsafe", "allow_failure", "deprecat", "errorprone", "error-prone", "maxfail"}},
	}
}

// matcher scores lines. It keeps buffers for the line being scored, so
// one scan uses one matcher.
type matcher struct {
	*ruleSet
	lower   []byte
	found   []bool
	touched []uint16
	hit     func(id uint16)
	seen    []uint32 // rule i was checked for this line when seen[i] == line
	line    uint32
}

// ruleSet is the compiled rule set, never changed once built: matchers
// share it.
type ruleSet struct {
	rules []rule
	noise []noise
	keys  *keySet
	nkeys int
	// keyRules lists, for each key, the rules that have it among their
	// keys: a line is checked against the rules its keys name only.
	keyRules [][]int
}

// compiledRules builds the rule set on first use (compiling its
// expressions and key automaton takes about 10 ms).
var compiledRules = sync.OnceValue(func() *ruleSet {
	m := &ruleSet{rules: newRules(), noise: newNoise()}
	var keys []string
	ids := map[string]uint16{}
	id := func(ss []string) []uint16 {
		out := make([]uint16, len(ss))
		for i, s := range ss {
			n, ok := ids[s]
			if !ok {
				n = uint16(len(keys))
				ids[s] = n
				keys = append(keys, s)
			}
			out[i] = n
		}
		return out
	}
	for i := range m.rules {
		m.rules[i].keyIDs, m.rules[i].notIDs = id(m.rules[i].keys), id(m.rules[i].not)
	}
	for i := range m.noise {
		m.noise[i].keyIDs = id(m.noise[i].keys)
		m.noise[i].prefixBytes = make([][]byte, len(m.noise[i].prefix))
		for j, p := range m.noise[i].prefix {
			m.noise[i].prefixBytes[j] = []byte(p)
		}
	}
	m.keys, m.nkeys = newKeySet(keys), len(keys)
	m.keyRules = make([][]int, len(keys))
	for i, r := range m.rules {
		for _, id := range r.keyIDs {
			m.keyRules[id] = append(m.keyRules[id], i)
		}
	}
	return m
})

func newMatcher() *matcher {
	rs := compiledRules()
	m := &matcher{ruleSet: rs, found: make([]bool, rs.nkeys), seen: make([]uint32, len(rs.rules))}
	m.hit = func(id uint16) { m.touched = append(m.touched, id) }
	return m
}

// maxMatchBytes is how much of a line is matched: a decisive message is
// near the start of its line, and matching a 64 KiB line against every
// rule would make a hostile log slow.
const maxMatchBytes = 2048

// score returns the best rule for line and the line's score, noise
// applied; kind is "" when no rule matched. Most lines hold none of the
// keys and cost one pass of the key automaton.
func (m *matcher) score(line []byte) (kind string, score int) {
	if len(line) > maxMatchBytes {
		line = line[:maxMatchBytes]
	}
	for _, id := range m.touched {
		m.found[id] = false
	}
	m.touched = m.touched[:0]
	m.keys.match(line, m.found, m.hit)
	if len(m.touched) == 0 {
		return "", 0
	}
	m.lower = asciiLower(m.lower[:0], line)
	m.line++
	if m.line == 0 { // wrapped: forget every stamp
		clear(m.seen)
		m.line = 1
	}
	best, bestRule := -1, -1
	for _, id := range m.touched {
		for _, i := range m.keyRules[id] {
			if m.seen[i] == m.line {
				continue
			}
			m.seen[i] = m.line
			if r := &m.rules[i]; (r.score > best || r.score == best && i < bestRule) && m.holds(i, line) {
				kind, best, bestRule = r.kind, r.score, i
			}
		}
	}
	if kind == "" {
		return "", 0
	}
	score = best
	trimmed := bytes.TrimLeft(m.lower, " \t")
	for i := range m.noise {
		n := &m.noise[i]
		if n.weakOnly && best >= weakScore {
			continue
		}
		hit := hasAnyPrefix(trimmed, n.prefixBytes) || n.frame && isFrame(line) || (n.re != nil && n.re.Match(line))
		if !hit && n.keyIDs != nil && m.any(n.keyIDs) {
			hit = n.check == nil || n.check(m.lower)
		}
		if hit {
			score -= n.penalty
		}
	}
	return kind, score
}

// holds reports whether line (one of whose keys rule i has) matches rule
// i; among rules of one score the first declared wins.
func (m *matcher) holds(i int, line []byte) bool {
	r := &m.rules[i]
	return !m.any(r.notIDs) && (r.re == nil || r.re.Match(line)) && (r.check == nil || r.check(m.lower))
}

func (m *matcher) any(ids []uint16) bool {
	for _, id := range ids {
		if m.found[id] {
			return true
		}
	}
	return false
}

func hasAnyPrefix(s []byte, prefixes [][]byte) bool {
	for _, p := range prefixes {
		if bytes.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c >= 0x80
}

// word returns a check that stem occurs in a lowercased line as a whole
// word, bare or with one of the suffixes ("" for bare): word("fail", "",
// "ed") holds for "failed" and "fail", not for "failsafe".
func word(stem string, suffixes ...string) func([]byte) bool {
	return func(lower []byte) bool {
		for off := 0; ; {
			i := bytes.Index(lower[off:], []byte(stem))
			if i < 0 {
				return false
			}
			i += off
			off = i + 1
			if i > 0 && isWordByte(lower[i-1]) {
				continue
			}
			rest := lower[i+len(stem):]
			for _, suf := range suffixes {
				if bytes.HasPrefix(rest, []byte(suf)) && (len(rest) == len(suf) || !isWordByte(rest[len(suf)])) {
					return true
				}
			}
		}
	}
}

// nonzero holds when label ("failures: ") is followed by a count other
// than 0.
func nonzero(lower []byte, label string) bool {
	i := bytes.Index(lower, []byte(label))
	if i < 0 {
		return false
	}
	rest := lower[i+len(label):]
	return len(rest) > 0 && '1' <= rest[0] && rest[0] <= '9'
}

// startsWith returns a check that the lowercased line, leading spaces
// trimmed, starts with one of prefixes.
func startsWith(prefixes ...string) func([]byte) bool {
	bs := make([][]byte, len(prefixes))
	for i, p := range prefixes {
		bs[i] = []byte(p)
	}
	return func(lower []byte) bool { return hasAnyPrefix(bytes.TrimLeft(lower, " \t"), bs) }
}

// zeroCount holds for a lowercased line that counts no errors or
// failures: "0 errors", "no failures", "errors: 0", "failed=0".
func zeroCount(lower []byte) bool {
	for _, stem := range [...]string{"error", "failure", "failed", "fail"} {
		for off := 0; ; {
			i := bytes.Index(lower[off:], []byte(stem))
			if i < 0 {
				break
			}
			i += off
			off = i + 1
			before := lower[:i]
			if bytes.HasSuffix(before, []byte("no ")) ||
				bytes.HasSuffix(before, []byte("0 ")) && (len(before) < 3 || before[len(before)-3] < '0' || before[len(before)-3] > '9') {
				return true
			}
			rest := bytes.TrimPrefix(lower[i+len(stem):], []byte("s"))
			rest = bytes.TrimLeft(rest, ":= ")
			if len(rest) > 0 && rest[0] == '0' && (len(rest) == 1 || rest[1] < '0' || rest[1] > '9') && len(lower[i+len(stem):]) > len(rest) {
				return true
			}
		}
	}
	return false
}

// asciiLower appends src to dst with ASCII letters lowercased; other bytes
// are kept, so offsets in dst are offsets in src.
func asciiLower(dst, src []byte) []byte {
	for _, c := range src {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}
