package jenkinstest

import (
	"slices"
	"strings"
	"time"
)

// The simulation is a discrete-event system driven by Clock: nothing
// happens between calls. Every request and every public method first calls
// advance, which replays, in time order, every event due since the last
// call (a quiet period ending, a build ending) and starts queued builds at
// the moment an executor became free or their quiet period ended. Builds
// print their lines at fixed offsets from their start. So the state at a
// given clock reading does not depend on how often the simulator was asked.

type qstate int

const (
	qWaiting qstate = iota
	qBlocked
	qBuildable
	qLeft
)

type queueItem struct {
	id             int64
	job            *item
	params         []paramValue // nil: the job is not parameterized
	causes         []cause      // grows as identical requests fold in (CauseAction.foldIntoExisting)
	inQueueSince   time.Time
	due            time.Time // end of the quiet period (WaitingItem.timestamp)
	buildableStart time.Time // when it left the waiting list
	state          qstate
	seq            int64 // position in the blocked/buildable lists
	cancelled      bool
	build          *build // the build it became, once left
	leftAt         time.Time
}

// advance brings the simulation up to the clock and returns the simulation
// time. The simulation never goes backward: a clock set back in time
// freezes it until the clock passes the last time seen. Callers hold s.mu.
func (s *Server) advance() time.Time {
	now := s.clock.Now()
	if now.Before(s.now) {
		now = s.now
	}
	for {
		s.dispatch(s.now)
		t, ok := s.nextEvent()
		if !ok || t.After(now) {
			break
		}
		if t.After(s.now) {
			s.now = t
		}
		// Events due at or before s.now, in a fixed order: quiet periods
		// first (by due time, then id), then builds ending.
		for _, q := range s.waitingInOrder() {
			if !q.due.After(s.now) {
				q.buildableStart = q.due
				s.listSeq++
				q.seq = s.listSeq
				if s.isBlocked(q.job) {
					q.state = qBlocked
				} else {
					q.state = qBuildable
				}
			}
		}
		for _, b := range slices.Clone(s.running) {
			if !b.end().After(s.now) {
				s.finish(b)
			}
		}
	}
	s.now = now
	for _, b := range s.running {
		b.emitUntil(now)
	}
	s.expireLeft()
	return now
}

// nextEvent is the earliest time something is due: a quiet period's end or
// a running build's end.
func (s *Server) nextEvent() (time.Time, bool) {
	var t time.Time
	ok := false
	consider := func(x time.Time) {
		if !ok || x.Before(t) {
			t, ok = x, true
		}
	}
	for _, q := range s.queue {
		if q.state == qWaiting {
			consider(q.due)
		}
	}
	for _, b := range s.running {
		consider(b.end())
	}
	return t, ok
}

func (s *Server) waitingInOrder() []*queueItem {
	var out []*queueItem
	for _, q := range s.queue {
		if q.state == qWaiting {
			out = append(out, q)
		}
	}
	slices.SortStableFunc(out, func(a, b *queueItem) int {
		if c := a.due.Compare(b.due); c != 0 {
			return c
		}
		return cmpInt(a.id, b.id)
	})
	return out
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// inState returns the queued items in state st, in list order.
func (s *Server) inState(st qstate) []*queueItem {
	var out []*queueItem
	for _, q := range s.queue {
		if q.state == st {
			out = append(out, q)
		}
	}
	slices.SortStableFunc(out, func(a, b *queueItem) int { return cmpInt(a.seq, b.seq) })
	return out
}

// isBlocked: a job that does not allow concurrent builds and is building.
func (s *Server) isBlocked(j *item) bool {
	return !j.spec.Concurrent && runningBuild(j) != nil
}

// runningBuild returns the newest running build of j, or nil.
func runningBuild(j *item) *build {
	for i := len(j.builds) - 1; i >= 0; i-- {
		if j.builds[i].building {
			return j.builds[i]
		}
	}
	return nil
}

// dispatch is Jenkins's Queue.maintain at time t: blocked items whose job is
// free become buildable, then buildable items, oldest first, either become
// blocked again or start on a free executor.
func (s *Server) dispatch(t time.Time) {
	for _, q := range s.inState(qBlocked) {
		if !s.isBlocked(q.job) {
			q.state = qBuildable
			s.listSeq++
			q.seq = s.listSeq
		}
	}
	for _, q := range s.inState(qBuildable) {
		if s.isBlocked(q.job) {
			q.state = qBlocked
			s.listSeq++
			q.seq = s.listSeq
			continue
		}
		if len(s.running) < s.capacity() {
			s.start(q, t)
		}
	}
}

// start turns a queue item into a running build at time t.
func (s *Server) start(q *queueItem, t time.Time) {
	j := q.job
	b := &build{
		job:      j,
		number:   j.nextBuild,
		queueID:  q.id,
		params:   q.params,
		causes:   q.causes,
		start:    t,
		duration: j.spec.Duration,
		building: true,
		result:   j.spec.Result,
		lines:    jobLines(j),
		tests:    j.spec.Tests,
	}
	j.nextBuild++
	s.assignExecutor(b)
	j.builds = append(j.builds, b)
	b.startLog()
	s.running = append(s.running, b)
	q.build = b
	s.leave(q, t)
}

// leave moves q out of the queue into the left items.
func (s *Server) leave(q *queueItem, t time.Time) {
	q.state = qLeft
	q.leftAt = t
	s.queue = slices.DeleteFunc(s.queue, func(x *queueItem) bool { return x == q })
	s.left = append(s.left, q)
}

// expireLeft forgets left items older than LeftItemTTL, as Jenkins's
// leftItems cache does.
func (s *Server) expireLeft() {
	n := 0
	for n < len(s.left) && !s.left[n].leftAt.Add(s.leftTTL).After(s.now) {
		delete(s.items, s.left[n].id)
		n++
	}
	if n > 0 {
		s.left = slices.Delete(s.left, 0, n)
	}
}

// finish ends a running build at its planned end.
func (s *Server) finish(b *build) {
	b.emitAll()
	b.building = false
	b.finishLog()
	s.running = slices.DeleteFunc(s.running, func(x *build) bool { return x == b })
}

// abort stops a running build at time t, as Executor.doStop does.
func (s *Server) abort(b *build, t time.Time, by *user) {
	b.emitUntil(t)
	if b.pipe != nil {
		b.pipe.interrupt(t)
	}
	b.building = false
	b.result = "ABORTED"
	if !b.published {
		// The build never reached its junit step (or publisher).
		b.tests = nil
	}
	if d := t.Sub(b.start); d >= 0 {
		b.duration = d
	} else {
		b.duration = 0
	}
	// Jenkins: core/src/main/java/jenkins/model/CauseOfInterruption.java,
	// UserInterruption.print: "Aborted by " and a hyperlink note to the user.
	if by == nil {
		// An anonymous stop (a grant to Anonymous): no user to link to.
		b.log = append(b.log, "Aborted by "+Anonymous+"\n"...)
	} else {
		b.log = append(b.log, "Aborted by "+HyperlinkNote("/user/"+strings.ToLower(by.id), by.fullName)+"\n"...)
	}
	b.finishLog()
	s.running = slices.DeleteFunc(s.running, func(x *build) bool { return x == b })
	s.dispatch(t)
}

// enqueue schedules a build of j at time t after a quiet period of quiet
// (whole seconds, possibly negative) as Jenkins's Queue.scheduleInternal
// does. An item of the same job with the same parameters already in the
// queue (blocked, buildable or waiting: Queue.liveGetItems) is a duplicate
// (ParametersAction.shouldSchedule compares the parameter sets): no item is
// created, the request's cause is folded into every duplicate
// (CauseAction.foldIntoExisting), a waiting duplicate keeps the earlier of
// its due time and the new one ("always use the shorter of the available
// due times"), and the first duplicate is returned with created false.
func (s *Server) enqueue(j *item, params []paramValue, c cause, quiet time.Duration, t time.Time) (*queueItem, bool) {
	due := t.Add(quiet)
	var dups []*queueItem
	for _, list := range [][]*queueItem{s.inState(qBlocked), s.inState(qBuildable), s.waitingInOrder()} {
		for _, q := range list {
			if q.job == j && sameParams(q.params, params) {
				dups = append(dups, q)
			}
		}
	}
	if len(dups) > 0 {
		for _, q := range dups {
			q.causes = foldCause(q.causes, c)
			if q.state == qWaiting && q.due.After(due) {
				q.due = due
			}
		}
		// An earlier due time may already be past.
		s.advance()
		return dups[0], false
	}
	s.nextQueueID++
	q := &queueItem{
		id:           s.nextQueueID,
		job:          j,
		params:       params,
		causes:       []cause{c},
		inQueueSince: t,
		due:          due,
		state:        qWaiting,
	}
	s.queue = append(s.queue, q)
	s.items[q.id] = q
	// A zero quiet period ends now: the item may start at once.
	s.advance()
	return q, true
}

// foldCause adds c to causes as CauseAction's insertion-ordered bag does:
// next to the copies of an equal cause, else at the end.
func foldCause(causes []cause, c cause) []cause {
	at := -1
	for i, x := range causes {
		if x == c {
			at = i
		}
	}
	out := make([]cause, 0, len(causes)+1)
	if at < 0 {
		return append(append(out, causes...), c)
	}
	out = append(out, causes[:at+1]...)
	out = append(out, c)
	return append(out, causes[at+1:]...)
}

// quietPeriodOf is AbstractProject.getQuietPeriod in seconds: the job's
// own, else the instance's (Jenkins.getQuietPeriod).
func (s *Server) quietPeriodOf(j *item) time.Duration {
	q := j.spec.QuietPeriod
	switch {
	case q == 0:
		q = s.quietPeriod
	case q < 0:
		q = 0
	}
	return q.Truncate(time.Second)
}

func sameParams(a, b []paramValue) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// cancel cancels a queued item at time t.
func (s *Server) cancel(q *queueItem, t time.Time) {
	q.cancelled = true
	s.leave(q, t)
}

// emitUntil appends the lines due by t: line i of n appears at
// start + (i+1)*duration/(n+1), so they spread evenly over the build.
func (b *build) emitUntil(t time.Time) {
	if b.pipe != nil {
		b.pipe.emitUntil(b, t, false)
		return
	}
	n := len(b.lines)
	for b.emitted < n {
		at := b.start.Add(b.duration / time.Duration(n+1) * time.Duration(b.emitted+1))
		if at.After(t) {
			return
		}
		b.emit()
	}
}

func (b *build) emitAll() {
	if b.pipe != nil {
		b.pipe.emitUntil(b, time.Time{}, true)
		return
	}
	for b.emitted < len(b.lines) {
		b.emit()
	}
}

// emit prints the next line. A Pipeline build publishes its test report
// when its junit step runs: JUnitResultsStepExecution.run attaches the
// TestResultAction to the running build, so testReport answers before the
// build ends.
func (b *build) emit() {
	line := b.lines[b.emitted]
	b.log = append(b.log, line...)
	b.log = append(b.log, '\n')
	b.emitted++
	if b.job.spec.Class == ClassWorkflowJob && string(stripNotes(nil, []byte(line))) == junitStepLine {
		b.published = true
	}
}

// junitStepLine is what a Pipeline prints when its junit step starts.
const junitStepLine = "[Pipeline] junit"

// startLog prints the causes, as BuildListener.started does: one line per
// cause, repeated ones included.
func (b *build) startLog() {
	for _, c := range b.causes {
		b.log = append(b.log, c.logLine()...)
		b.log = append(b.log, '\n')
	}
}

// testReport is the test report Jenkins shows for b now: none before the
// build published one.
func (b *build) testReport() *TestReport {
	if b.tests == nil || b.building && !b.published {
		return nil
	}
	return b.tests
}

func (b *build) finishLog() {
	b.log = append(b.log, "Finished: "+b.result+"\n"...)
	if b.result != "ABORTED" {
		b.published = true
	}
}

// jobLines is the console output of a new build of j.
func jobLines(j *item) []string {
	if j.spec.Log != nil {
		return j.spec.Log
	}
	ws := "/var/jenkins_home/workspace/" + j.fullName
	if j.spec.Class == ClassWorkflowJob {
		return withNotes([]string{
			"[Pipeline] Start of Pipeline",
			"[Pipeline] node",
			"Running on Jenkins in " + ws,
			"[Pipeline] {",
			"[Pipeline] stage",
			"[Pipeline] { (Build)",
			"[Pipeline] sh",
			"+ make build",
			"[Pipeline] }",
			"[Pipeline] stage",
			"[Pipeline] { (Test)",
			"[Pipeline] sh",
			"+ make test",
			"ok  \tall tests passed",
			junitStepLine,
			"Recording test results",
			"[Pipeline] }",
			"[Pipeline] }",
			"[Pipeline] // node",
			"[Pipeline] End of Pipeline",
		})
	}
	return []string{
		"Running as SYSTEM",
		"Building in workspace " + ws,
		"[" + j.name + "] $ /bin/sh -xe /tmp/jenkins1234567890.sh",
		"+ make build",
		"compiling...",
		"+ make test",
		"ok  \tall tests passed",
	}
}
