package tools

import (
	"context"
	"fmt"
	"time"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// Bounds of wait_for_build. A wait holds no Jenkins connection while it
// sleeps (a timer between requests), but it holds its MCP request, a
// goroutine and a place in the caller's session for up to ten minutes:
// without a bound, an agent could start waits faster than they end. Over
// either bound a wait is refused at once (rate_limited with retry advice),
// not queued. CONTRACT §9 names no setting for this, so these are
// constants, like the search bounds (searches.go).
const (
	// MaxWaits is how many wait_for_build calls may wait at once in one
	// Butler process.
	MaxWaits = 64
	// MaxWaitsPerUser is how many of them one user may have at once.
	MaxWaitsPerUser = 4
	// MaxWaitSeconds is the longest timeout_seconds.
	MaxWaitSeconds = 600
	// waitPoll is the least time between two Jenkins requests of one wait
	// (CONTRACT §14: at most one Jenkins request per 2 s while waiting).
	waitPoll = 2 * time.Second
	// waitRetryAfter is the retry_after_seconds of a refused wait.
	waitRetryAfter = 10
)

// WaitIn names the build to wait for.
type WaitIn struct {
	Job            string `json:"job,omitempty" jsonschema:"full path of the job (folder/sub/job), with build; not with queue_id"`
	Build          int64  `json:"build,omitempty" jsonschema:"the build number to wait for, with job"`
	QueueID        int64  `json:"queue_id,omitempty" jsonschema:"a queue item id (from trigger_job): wait for it to start, then for its build to finish; not with job and build"`
	TimeoutSeconds int    `json:"timeout_seconds,omitempty" jsonschema:"how long to wait, 0 to look once without waiting"`
}

// WaitOut is where the build is when the wait ends.
type WaitOut struct {
	State       string `json:"state" jsonschema:"finished, or timeout when timeout_seconds passed first; queued or running when the call looked once (timeout_seconds 0) or Butler is shutting down"`
	Job         string `json:"job,omitempty" jsonschema:"full path of the build's job"`
	BuildNumber *int64 `json:"build_number,omitempty" jsonschema:"the build's number, once it started"`
	Result      string `json:"result,omitempty" jsonschema:"the build's result once finished: SUCCESS, UNSTABLE, FAILURE, NOT_BUILT or ABORTED"`
	DurationMS  *int64 `json:"duration_ms,omitempty" jsonschema:"the build's duration once finished, in milliseconds"`
	Why         string `json:"why,omitempty" jsonschema:"while queued: Jenkins's explanation of why the build has not started"`
	WaitedMS    int64  `json:"waited_ms" jsonschema:"how long this call waited"`
	Note        string `json:"note,omitempty" jsonschema:"why the wait ended early, when it did"`
}

func addWaitForBuild(t *Toolset) (*def, error) {
	return add(t, spec[WaitIn, WaitOut]{
		name: catalog.WaitForBuild,
		input: func(s *jsonschema.Schema) {
			prop(s, "build").Minimum = ptr(1.0)
			prop(s, "queue_id").Minimum = ptr(1.0)
			bounds(s, "timeout_seconds", 0, MaxWaitSeconds)
			setDefault(s, "timeout_seconds", 60)
		},
		target: func(in *WaitIn) (target, error) {
			switch {
			case in.QueueID > 0 && (in.Job != "" || in.Build > 0):
				return target{}, Errorf(CodeInvalidArgument, "give either job and build, or queue_id, not both")
			case in.QueueID > 0:
				return queueTarget(in.QueueID), nil
			case in.Job == "":
				return target{}, Errorf(CodeInvalidArgument, "give job and build, or queue_id")
			case in.Build <= 0:
				return target{}, Errorf(CodeInvalidArgument, "build is required with job: the number of the build to wait for (get_job's last_build_number, or trigger_job's build_number)")
			}
			tg, err := jobTarget(in.Job)
			if err != nil {
				return target{}, err
			}
			tg.what = fmt.Sprintf("build %d of job %q", in.Build, tg.job.String())
			return tg, nil
		},
		run: func(ctx context.Context, c *call, in *WaitIn) (*WaitOut, error) {
			release, e := t.waits.acquire(c.principal.User)
			if e != nil {
				return nil, e
			}
			defer release()
			return t.waitForBuild(ctx, c, in)
		},
	})
}

// waitState is what a wait has learnt of its build so far.
type waitState struct {
	queueID int64
	job     jobpath.Path
	hasJob  bool
	number  int64
	queued  *jenkins.QueueItem // the last look at the queue item, until the build is known
	build   *jenkins.Build     // the last look at the build
}

// out is the answer for the state as it is, with state st.
func (w *waitState) out(st string, waited time.Duration) *WaitOut {
	o := &WaitOut{State: st, WaitedMS: waited.Milliseconds()}
	if w.hasJob {
		o.Job = w.job.String()
	}
	if w.number > 0 {
		o.BuildNumber = num(w.number)
	}
	switch {
	case w.build != nil && !w.build.Building:
		o.Result, o.DurationMS = w.build.Result, num(w.build.DurationMS)
	case w.build == nil && w.queued != nil && w.number == 0:
		o.Why = w.queued.Why
	}
	return o
}

// current is the state's own name: queued, running or finished.
func (w *waitState) current() string {
	switch {
	case w.build != nil && !w.build.Building:
		return "finished"
	case w.number > 0:
		return "running"
	}
	return "queued"
}

// look makes the wait's one Jenkins request: the queue item until it has a
// build, then the build. A queue item Jenkins has already read for the
// policy (canonicalTarget) is the first look.
func (t *Toolset) look(ctx context.Context, c *call, w *waitState, first bool) error {
	if w.number == 0 {
		q := c.target.queued
		if !first || q == nil {
			var err error
			if q, err = t.deps.Jenkins.QueueItem(ctx, c.cred, w.queueID); err != nil {
				return err
			}
		}
		w.queued = q
		if !w.hasJob {
			w.job, w.hasJob = jenkins.QueueEntryJob(q)
		}
		switch q.State {
		case jenkins.QueueCancelled:
			return Errorf(CodeConflict, "queue item %d was cancelled before it started: no build will run", w.queueID)
		case jenkins.QueueStarted:
			if !w.hasJob || q.BuildNumber <= 0 {
				return Errorf(CodeNotFound, "queue item %d started a build Butler cannot name", w.queueID)
			}
			w.number = q.BuildNumber
		}
		return nil
	}
	b, err := t.deps.Jenkins.GetBuild(ctx, c.cred, w.job, w.number)
	if err != nil {
		return err
	}
	w.build = b
	return nil
}

// waitForBuild polls Jenkins, once every waitPoll at most, until the build
// finishes, the timeout passes, the client cancels the request or Butler
// shuts down. Between requests it only sleeps on a timer.
//
// The wait measures real time (time.Now, monotonic), not Deps.Now: it
// sleeps on real timers, and a wait's length is the caller's real time.
func (t *Toolset) waitForBuild(ctx context.Context, c *call, in *WaitIn) (*WaitOut, error) {
	start := time.Now()
	timeout := time.Duration(in.TimeoutSeconds) * time.Second
	w := &waitState{queueID: in.QueueID}
	if in.QueueID == 0 {
		w.job, w.hasJob, w.number = c.target.job, true, in.Build
	} else if c.target.hasJob {
		w.job, w.hasJob = c.target.job, true // Jenkins said it when the policy asked
	}
	token := progressToken(c.req)
	timer := time.NewTimer(0)
	if !timer.Stop() {
		<-timer.C
	}
	defer timer.Stop()
	for first := true; ; first = false {
		if err := t.look(ctx, c, w, first); err != nil {
			if ctx.Err() != nil {
				return nil, cancelled(time.Since(start))
			}
			return nil, err
		}
		waited := time.Since(start)
		st := w.current()
		if st == "finished" {
			return w.out(st, waited), nil
		}
		if timeout == 0 {
			return w.out(st, waited), nil
		}
		left := timeout - waited
		if left < waitPoll {
			// No time for another look within the bound: the answer is the
			// last one, and the caller may call again to keep waiting.
			if left > 0 && !t.sleep(ctx, timer, left) {
				return t.endedEarly(ctx, w, st, time.Since(start))
			}
			return w.out("timeout", time.Since(start)), nil
		}
		if token != nil {
			msg := st
			if st == "queued" && w.queued != nil && w.queued.Why != "" {
				msg += ": " + w.queued.Why
			} else if w.number > 0 {
				msg += fmt.Sprintf(": build #%d", w.number)
			}
			// A client that went away cannot be told; the wait goes on
			// until its context ends.
			_ = c.req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: token,
				Progress: waited.Seconds(), Total: timeout.Seconds(), Message: msg})
		}
		if !t.sleep(ctx, timer, waitPoll) {
			return t.endedEarly(ctx, w, st, time.Since(start))
		}
	}
}

// sleep waits d on timer; it returns false when the request's context ends
// or Butler begins to shut down first.
func (t *Toolset) sleep(ctx context.Context, timer *time.Timer, d time.Duration) bool {
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
	case <-t.stopping:
	}
	if !timer.Stop() {
		select {
		case <-timer.C:
		default:
		}
	}
	return false
}

// endedEarly is the answer of a wait whose sleep was cut short: an error
// for a cancelled request (nobody reads the answer, the audit record says
// why), else Butler is shutting down and the caller gets the state so far.
func (t *Toolset) endedEarly(ctx context.Context, w *waitState, st string, waited time.Duration) (*WaitOut, error) {
	if ctx.Err() != nil {
		return nil, cancelled(waited)
	}
	o := w.out(st, waited)
	o.Note = "Butler is shutting down, so the wait ended early; call wait_for_build again to keep waiting"
	return o, nil
}

func cancelled(waited time.Duration) error {
	return Errorf(CodeUnavailable, "the request was cancelled after %s of waiting", waited.Round(time.Millisecond))
}

// progressToken is the request's progress token, nil when the client asked
// for no progress notifications.
func progressToken(req *mcp.CallToolRequest) any {
	if req == nil || req.Params == nil || req.Session == nil {
		return nil
	}
	return req.Params.GetProgressToken()
}

// Shutdown makes every wait_for_build in progress end at once with the
// state it has reached (and every later one end after its first look), so
// a graceful shutdown does not wait up to ten minutes for them. It is
// safe to call more than once.
func (t *Toolset) Shutdown() {
	t.stopOnce.Do(func() { close(t.stopping) })
}

// waitLimits are the wait bounds as slots applies them.
var waitLimits = slotLimits{
	total: MaxWaits, perUser: MaxWaitsPerUser, retryAfter: waitRetryAfter,
	userBusy:   "you already have %d wait_for_build calls waiting, the most one user may have at once: let one end first (retry in %d s)",
	serverBusy: "%d wait_for_build calls are waiting on this Butler, the most it holds at once: retry in %d s",
}

// waitSlots counts the waits in progress.
type waitSlots struct{ slots }

// acquire takes a wait slot for user (see slots.acquire).
func (s *waitSlots) acquire(user string) (release func(), _ *Error) {
	return s.slots.acquire(user, waitLimits)
}
