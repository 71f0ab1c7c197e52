package diagnose

import (
	"fmt"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
)

// networkWords are the network failures a download may end with.
var networkWords = regexp.MustCompile(`(?i)(connection reset|connection refused|connect(?:ion)? timed out|read timed out|handshake|unknownhostexception|could not resolve host|temporary failure in name resolution)`)

// hintPatterns pull the names a hint needs out of an excerpt's lines.
type hintPatterns struct {
	node, credID, exitCode, abortedBy, missingCmd, groovy, dependency, image, location *regexp.Regexp
}

// hintRegexps are compiled once; they are never changed.
var hintRegexps = sync.OnceValue(func() *hintPatterns {
	return &hintPatterns{
		node:       regexp.MustCompile(`Cannot contact ([^\s:]+):|[Aa]gent (\S+) was (?:deleted|marked offline)|[Bb]acking channel '([^']+)'|Channel@[0-9a-f]+:([^"\s]+)"|[Aa]gent (\S+) is offline`),
		credID:     regexp.MustCompile(`(?:with ID|CredentialId) ['"]([^'"]{1,100})['"]`),
		exitCode:   regexp.MustCompile(`exit (?:code|status) (\d{1,3})`),
		abortedBy:  regexp.MustCompile(`^(?:Aborted|Rejected) by (\S{1,100})`),
		missingCmd: regexp.MustCompile(`(?:: |^)([\w.+-]{1,60}): (?:command )?not found`),
		groovy:     regexp.MustCompile(`(No signature of method: [^\s]{1,150}|No such property: \S{1,100}|No such DSL method '[^']{1,100}'|Scripts not permitted to use [^\n]{1,150}|WorkflowScript: \d+: [^\n]{1,150})`),
		dependency: regexp.MustCompile(`Could not (?:resolve|find) ([\w.\-]+:[\w.\-]+(?::[\w.\-]+)?)|(?:Found|peer) (\S+@\S+)|Could not find artifact (\S+)`),
		image:      regexp.MustCompile(`(?:pull access denied for|manifest for|Unable to find image) '?([^\s',]{1,150})`),
		location:   regexp.MustCompile(`([\w./\-]+\.(?:java|kt|kts|scala|groovy|go|ts|tsx|js|jsx|py|rs|c|cc|cpp|h|cs|swift))(?::\[?(\d+))?`),
	}
})

// hints are short suggestions drawn from the chosen excerpts (best first)
// and the build's facts, each at most MaxHintBytes, at most MaxHints.
func hints(b *Build, r *Report, chosen []*candidate, f *facts) []string {
	p := hintRegexps()
	var out []string
	add := func(format string, args ...any) {
		h := bounded(fmt.Sprintf(format, args...), MaxHintBytes)
		for _, o := range out {
			if o == h {
				return
			}
		}
		if len(out) < MaxHints {
			out = append(out, h)
		}
	}
	switch r.Result {
	case "SUCCESS":
		add("the build succeeded: there is nothing to diagnose")
	case "IN_PROGRESS":
		add("the build is still running: this covers its log so far; wait_for_build waits for it to finish")
	case "NOT_BUILT":
		add("the build did not run its steps (NOT_BUILT): an earlier condition or stage skipped them")
	}
	kinds := map[string]bool{}
	suspects := map[string]bool{}
	for _, c := range chosen {
		text := strings.Join(c.lines, "\n")
		decisive := c.lines[c.line-c.start]
		where := ""
		if c.stage >= 0 {
			where = fmt.Sprintf(" in stage %q", b.Stages[c.stage].Name)
		} else if c.stageName != "" {
			where = fmt.Sprintf(" in stage %q", c.stageName)
		}
		if kinds[c.kind] {
			continue
		}
		kinds[c.kind] = true
		switch c.kind {
		case kindAgentOffline:
			node := firstGroup(p.node, text)
			if node == "" {
				node = f.node
			}
			if node != "" {
				add("the agent %s went offline during the build%s: rerun the build, and check node %s (list_nodes shows whether it is back online and why it went offline)", node, where, node)
			} else {
				add("an agent went offline during the build%s: rerun the build; list_nodes shows which agents are offline and why", where)
			}
		case kindOOMKilled:
			on := onNode(f.node)
			add("the process was killed%s%s (exit code 137 / \"Killed\"), which is usually the out-of-memory killer: give the container or agent more memory, or make the build use less (-Xmx, MAVEN_OPTS, fewer parallel workers)", where, on)
		case kindJavaOOM:
			add("the build ran out of memory%s: raise the heap (-Xmx in MAVEN_OPTS or org.gradle.jvmargs, --max-old-space-size for Node) or the agent's memory", where)
		case kindTimeout:
			if f.timeout != "" {
				add("the timeout step (%s) expired%s: find the slow step in the stage's log (get_stage_log), or raise the timeout", f.timeout, where)
			} else {
				add("a timeout expired%s: find the slow step in the log, or raise the timeout", where)
			}
		case kindGroovy:
			what := firstGroup(p.groovy, text)
			if what == "" {
				what = "a Groovy error"
			}
			add("the Jenkinsfile failed%s (%s): check the spelling, the arguments, the shared library version, and that the plugin providing the step is installed; this is not a failure of the code being built", where, what)
		case kindCredentials:
			id := firstGroup(p.credID, text)
			add("the credentials ID %q%s does not exist or this job may not use it: check the ID in the Jenkinsfile against the credentials of the job's folder and the global store", id, where)
		case kindAborted:
			if who := firstGroup(p.abortedBy, decisive); who != "" {
				add("%s aborted the build%s: it did not fail by itself", who, where)
			}
		case kindMavenCompile, kindCompile:
			loc := compileLocation(p, decisive)
			if n := f.counts[c.kind]; n > 1 {
				add("compilation failed%s at %s (%d such error lines): the changes since the last success are the likely cause", where, loc, n)
			} else {
				add("compilation failed%s at %s: the changes since the last success are the likely cause", where, loc)
			}
			suspectsFrom(p, text, suspects)
		case kindTestFailure, kindAssertion:
			suspectsFrom(p, text, suspects)
		case kindGradleResolve, kindNpmResolve, "maven-dependency":
			if networkWords.MatchString(decisive) {
				add("the repository could not be reached%s (%s): usually transient, so rerun the build; if it repeats, check the repository manager and the proxy%s", where, firstGroup(networkWords, decisive), onNode(f.node))
				break
			}
			dep := firstGroup(p.dependency, text)
			if dep != "" {
				dep = " (" + dep + ")"
			}
			add("a dependency could not be resolved%s%s: check that the version exists in the configured repositories and that they are reachable from the agent", dep, where)
		case kindDockerPull:
			img := firstGroup(p.image, text)
			if img != "" {
				img = " " + img
			}
			add("the image%s could not be pulled%s: check its name and tag and the registry credentials ('toomanyrequests' is Docker Hub's pull rate limit)", img, where)
		case kindNetwork:
			add("a network error%s (%s): usually transient, so rerun the build; if it repeats, check the remote host, DNS or proxy%s", where, bounded(strings.TrimSpace(decisive), 100), onNode(f.node))
		case kindGitAuth:
			add("git could not authenticate%s: check the job's SCM credentials and that the key or token is still valid", where)
		case kindDiskFull:
			add("the disk is full%s%s: clean the workspace or free space on the agent", onNode(f.node), where)
		case kindCommandMissing:
			cmd := firstGroup(p.missingCmd, decisive)
			add("the command %q is not installed%s%s: install it on the agent, use a tool installer, or run the stage in a container that has it", cmd, onNode(f.node), where)
		case kindScriptExit:
			if code := firstGroup(p.exitCode, decisive); code != "" && len(chosen) == 1 {
				add("a shell step failed with exit code %s%s: the lines before it in the log say why", code, where)
			}
			if code, _ := strconv.Atoi(firstGroup(p.exitCode, decisive)); code == 137 {
				add("exit code 137 means the process was killed (usually out of memory): give the agent or container more memory")
			}
		}
	}
	if n := r.FailingTestsTotal; n > 0 && r.Result != "SUCCESS" {
		first := b.FailingTests[0].Name
		if b.FailingTests[0].Class != "" {
			first = b.FailingTests[0].Class + "." + first
		}
		if n == 1 {
			add("1 test failed (%s): get_test_results shows its message", bounded(first, 150))
		} else {
			add("%d tests failed (the first %s): get_test_results lists them", n, bounded(first, 150))
		}
	}
	if r.Result != "SUCCESS" {
		for _, c := range b.Changes {
			if suspect := touches(c, suspects); suspect != "" {
				add("commit %s by %s changed %s, which the error names: look at it first", bounded(short(c.ID), 12), bounded(c.Author, 60), bounded(suspect, 100))
				break
			}
		}
		if len(b.Changes) > 0 && (kinds[kindMavenCompile] || kinds[kindCompile] || kinds[kindTestFailure] || kinds[kindAssertion] || r.FailingTestsTotal > 0) {
			if len(b.Changes) == 1 {
				add("1 commit since the last successful build: it is in changes_since_last_success")
			} else {
				add("%d commits since the last successful build: they are in changes_since_last_success, newest first", len(b.Changes))
			}
		}
	}
	if b.Upstream != nil {
		add("this build was triggered by %s #%d: if that build changed what this one uses, look at it too", bounded(b.Upstream.Job, 150), b.Upstream.Build)
	}
	if len(chosen) == 0 && r.Result != "SUCCESS" {
		if len(r.FailedStages) > 0 && b.Stages != nil {
			st := r.FailedStages[0]
			add("no error-looking line was found; stage %q failed: get_stage_log shows its log", st.Name)
		} else {
			add("no error-looking line was found in the logs read: get_build_log with tail_lines shows the end of the log")
		}
	}
	return out
}

func onNode(node string) string {
	if node == "" {
		return ""
	}
	return " on " + node
}

func firstGroup(re *regexp.Regexp, s string) string {
	m := re.FindStringSubmatch(s)
	for _, g := range m[min(1, len(m)):] {
		if g != "" {
			return g
		}
	}
	return ""
}

// compileLocation is "Foo.java:12" from a compiler's error line, or the
// line itself, cut.
func compileLocation(p *hintPatterns, line string) string {
	m := p.location.FindStringSubmatch(line)
	if m == nil {
		return bounded(strings.TrimSpace(line), 120)
	}
	loc := path.Base(m[1])
	if m[2] != "" {
		loc += ":" + m[2]
	}
	return loc
}

// suspectsFrom adds the base names of the source files an excerpt names.
func suspectsFrom(p *hintPatterns, text string, into map[string]bool) {
	for _, m := range p.location.FindAllStringSubmatch(text, 20) {
		into[path.Base(m[1])] = true
	}
	// A test class named in a stack trace or a Surefire line: Foo.bar
	// names Foo.java.
	for _, w := range strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == '\t' || r == '\n' }) {
		if i := strings.LastIndexByte(w, '.'); i > 0 {
			if cls := w[:i]; strings.HasSuffix(cls, "Test") || strings.HasSuffix(cls, "Tests") || strings.HasSuffix(cls, "IT") {
				if j := strings.LastIndexByte(cls, '.'); j >= 0 {
					cls = cls[j+1:]
				}
				into[cls+".java"] = true
				into[strings.TrimSuffix(strings.TrimSuffix(cls, "s"), "Test")+".java"] = true
			}
		}
		if len(into) > 40 {
			return
		}
	}
}

// touches returns a path of c whose base name is a suspect.
func touches(c Commit, suspects map[string]bool) string {
	for _, p := range c.Paths {
		if suspects[path.Base(p)] {
			return p
		}
	}
	return ""
}

func short(id string) string {
	if len(id) > 10 {
		return id[:10]
	}
	return id
}
