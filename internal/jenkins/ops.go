package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Me returns the Jenkins user the credential authenticates as. It is how a
// stored API token is checked to belong to the expected account.
func (c *Client) Me(ctx context.Context, cred Credential) (*User, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: "get current user", rel: meRel, cred: cred,
		query: url.Values{"tree": {"id,fullName"}}}, ParseUser)
}

// Ping reports whether Jenkins answers at all, and its version from the
// X-Jenkins header when it sends one. It sends no credential: any answer
// below 500, including 401 or 403, means Jenkins is reachable.
func (c *Client) Ping(ctx context.Context) (version string, err error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("api/json", url.Values{"tree": {"_class"}}), nil)
	if err != nil {
		return "", &Error{Op: "ping", Err: ErrUnavailable, Detail: "cannot build request"}
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.observe(http.MethodGet, 0, time.Since(start))
		return "", transportError(ctx, "ping", err)
	}
	c.observe(http.MethodGet, resp.StatusCode, time.Since(start))
	drain(resp)
	if resp.StatusCode >= 500 {
		return "", &Error{Op: "ping", Status: resp.StatusCode, Err: ErrUnavailable}
	}
	return resp.Header.Get("X-Jenkins"), nil
}

// ListJobs returns every job the user can see in folder (the root when
// folder is the zero Path), sorted by full name, without build statuses
// (see Listing and JobStatuses). Folders themselves are not listed. With
// recursive, jobs in sub-folders are included: one request fetches
// ListDepth levels of folders at once with a tree query, and only folders
// deeper than that cost further requests. Answers are decoded as they
// arrive and held compactly.
func (c *Client) ListJobs(ctx context.Context, cred Credential, folder jobpath.Path, recursive bool) (*Listing, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	depth := 1
	if recursive {
		depth = c.opts.ListDepth
	}
	b := newListingBuilder(folder.String())
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
	)
	var fetch func(f jobpath.Path, id uint32)
	fetch = func(f jobpath.Path, id uint32) {
		defer wg.Done()
		sem <- struct{}{}
		err := getStream(ctx, c, call{
			op: fmt.Sprintf("list jobs in %q", f.String()), rel: f.URLPath() + "api/json",
			query: url.Values{"tree": {listTree(depth)}}, cred: cred,
		}, func(r io.Reader) error { return parseListing(r, b, id, f.String(), recursive) })
		<-sem
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		for _, d := range b.takeDeeper() {
			wg.Add(1)
			go fetch(d.path, d.folder)
		}
	}
	wg.Add(1)
	fetch(folder, 0)
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return b.build(), nil
}

// listTree builds the tree query for a listing nested depth levels deep.
// At the deepest level folders report only their children's names, so the
// client can tell an empty folder from one whose children were cut off. It
// asks for no build status: color and lastBuild make Jenkins load every
// job's last build record (Job.getIconColor and Job.getLastBuild go through
// the lazy-loading RunMap), which on a cold controller with many jobs is
// one disk read each.
func listTree(depth int) string {
	const fields = "name,url,buildable"
	inner := "name"
	for range depth {
		inner = fields + ",jobs[" + inner + "]"
	}
	return "jobs[" + inner + "]"
}

const jobTree = "name,fullName,url,description,color,buildable,inQueue,queueItem[id],nextBuildNumber," +
	"lastBuild[number],lastCompletedBuild[number],lastSuccessfulBuild[number],lastFailedBuild[number]," +
	"property[parameterDefinitions[name,type,description,choices,defaultParameterValue[value]]]"

// GetJob returns one job.
func (c *Client) GetJob(ctx context.Context, cred Credential, job jobpath.Path) (*Job, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: fmt.Sprintf("get job %q", job.String()), rel: job.URLPath() + "api/json",
		query: url.Values{"tree": {jobTree}}, cred: cred}, ParseJob)
}

// Queued is where a trigger went in Jenkins's queue.
type Queued struct {
	// ID is the queue item's id.
	ID int64
	// Merged: Jenkins did not create an item but folded the request into
	// one already queued with the same parameters (buildWithParameters
	// answers 303 See Other then). The build endpoint of a job without
	// parameters answers 201 in both cases (JENKINS-66105), so there
	// Merged is always false.
	Merged bool
}

// Trigger is TriggerBuild for callers that need only the queue item id.
func (c *Client) Trigger(ctx context.Context, cred Credential, job jobpath.Path, parameterized bool, params url.Values) (int64, error) {
	q, err := c.TriggerBuild(ctx, cred, job, parameterized, params)
	return q.ID, err
}

// TriggerBuild queues a build of job. A parameterized job is started with
// buildWithParameters and params (those not given take their defaults in
// Jenkins); any other job with build. Only Jenkins's own answers are a
// success: 201 Created (a new item) or 303 See Other (folded into a queued
// one), each with the item in Location
// (ParametersDefinitionProperty.buildWithParameters,
// ParameterizedJobMixIn.doBuild). Anything else, such as a proxy's
// redirect to a login page or Jenkins's 302 to the job when its queue
// refused the item, is ErrUnavailable.
func (c *Client) TriggerBuild(ctx context.Context, cred Credential, job jobpath.Path, parameterized bool, params url.Values) (Queued, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	endpoint := "build"
	if parameterized {
		endpoint = "buildWithParameters"
	}
	op := fmt.Sprintf("trigger %q", job.String())
	form := params
	if form == nil {
		form = url.Values{}
	}
	resp, err := c.post(ctx, call{op: op, rel: job.URLPath() + endpoint, form: form, cred: cred})
	if err != nil {
		return Queued{}, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusSeeOther {
		return Queued{}, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable,
			Detail: "not Jenkins's answer to a trigger (201 or 303 with a queue item); a login page or proxy in front of Jenkins, or a queue that refused the build?"}
	}
	id, ok := queueIDFromLocation(resp.Header.Get("Location"))
	if !ok {
		return Queued{}, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "no queue item in the answer's Location"}
	}
	return Queued{ID: id, Merged: resp.StatusCode == http.StatusSeeOther}, nil
}

// queueIDFromLocation reads N from ".../queue/item/N/". Only the number is
// used: the URL itself is never followed.
func queueIDFromLocation(loc string) (int64, bool) {
	u, err := url.Parse(loc)
	if err != nil {
		return 0, false
	}
	p := strings.TrimSuffix(u.Path, "/")
	dir, last := path.Split(p)
	if !strings.HasSuffix(dir, "queue/item/") {
		return 0, false
	}
	id, err := strconv.ParseInt(last, 10, 64)
	if err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// QueueURL is the API address of a queue item, under the base URL.
func (c *Client) QueueURL(id int64) string {
	return c.url("queue/item/"+strconv.FormatInt(id, 10)+"/", nil)
}

// queueItemTree is what QueueItem asks of an item: the fields
// ParseQueueItem reads, and the task's fullName, which Jenkins's default
// depth leaves out (AbstractItem.getFullName is @Exported, but a nested
// object shows only its top-visibility properties).
const queueItemTree = "id,why,blocked,buildable,cancelled,stuck,inQueueSince," +
	"actions[parameters[name,value],causes[shortDescription,userId,userName]]," +
	"executable[number,url],task[name,url,fullName]"

// QueueItem returns a queue item. Items that left the queue stay readable
// for about five minutes in Jenkins; after that, and for items of jobs the
// user cannot see, Jenkins answers 404.
func (c *Client) QueueItem(ctx context.Context, cred Credential, id int64) (*QueueItem, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: fmt.Sprintf("get queue item %d", id),
		rel: "queue/item/" + strconv.FormatInt(id, 10) + "/api/json", cred: cred,
		query: url.Values{"tree": {queueItemTree}}}, ParseQueueItem)
}

// CancelQueueItem cancels a queued item. Jenkins answers 404 when the item
// is gone or unseen, 422 when the user may not cancel it (reported as
// ErrForbidden with the Item.Cancel permission), and 500 when the item
// already left the queue (reported as ErrConflict once a second look at the
// item confirms it).
func (c *Client) CancelQueueItem(ctx context.Context, cred Credential, id int64) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	op := fmt.Sprintf("cancel queue item %d", id)
	resp, err := c.post(ctx, call{op: op, rel: "queue/cancelItem", query: url.Values{"id": {strconv.FormatInt(id, 10)}}, cred: cred})
	if err == nil {
		drain(resp)
		// Queue.doCancelItem answers a cancellation with 204 No Content
		// (HttpResponses.status(SC_NO_CONTENT), since 2.211). Any other
		// success or redirect (a proxy's login page, an older Jenkins's
		// redirect) did not cancel anything Butler can vouch for.
		if resp.StatusCode != http.StatusNoContent {
			return &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable,
				Detail: "not Jenkins's answer to a cancellation (204); a login page or proxy in front of Jenkins, or a Jenkins older than 2.211?"}
		}
		return nil
	}
	je, ok := err.(*Error)
	switch {
	case ok && je.Status == http.StatusUnprocessableEntity:
		je.Err, je.RequiredPermission, je.Detail = ErrForbidden, "hudson.model.Item.Cancel", ""
	case ok && je.Status == http.StatusInternalServerError:
		if q, qerr := c.QueueItem(ctx, cred, id); qerr == nil && (q.State == QueueStarted || q.State == QueueCancelled) {
			je.Err, je.Detail = ErrConflict, "the item already left the queue ("+string(q.State)+")"
		}
	}
	return err
}

// buildRel is the path of a build: a number, or the lastBuild permalink when
// number is 0.
func buildRel(job jobpath.Path, number int64) string {
	if number <= 0 {
		return job.URLPath() + "lastBuild/"
	}
	return job.URLPath() + strconv.FormatInt(number, 10) + "/"
}

func buildName(job jobpath.Path, number int64) string {
	if number <= 0 {
		return fmt.Sprintf("%q last build", job.String())
	}
	return fmt.Sprintf("%q build %d", job.String(), number)
}

const buildTree = "number,result,building,duration,timestamp,url,queueId," +
	"actions[parameters[name,value],causes[shortDescription]]"

// GetBuild returns a build; number 0 means the last build.
func (c *Client) GetBuild(ctx context.Context, cred Credential, job jobpath.Path, number int64) (*Build, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: "get " + buildName(job, number), rel: buildRel(job, number) + "api/json",
		query: url.Values{"tree": {buildTree}}, cred: cred}, ParseBuild)
}

// StopBuild aborts a running build. Jenkins needs Item.Cancel for it and
// answers with a 302 redirect to the build (HttpResponses.forwardToPreviousPage
// from Executor.doStopBuild, AbstractBuild.doStop or WorkflowRun.doStop: the
// Referer, which the client never sends, else "." against the request),
// also when the build had already finished. That is the only success: any
// other answer, or a redirect elsewhere (a proxy's or Jenkins's login page),
// is ErrUnavailable, since the build may still be running.
func (c *Client) StopBuild(ctx context.Context, cred Credential, job jobpath.Path, number int64) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	op := "stop " + buildName(job, number)
	rel := buildRel(job, number)
	resp, err := c.post(ctx, call{op: op, rel: rel + "stop", cred: cred})
	if err != nil {
		return err
	}
	drain(resp)
	if resp.StatusCode != http.StatusFound || !redirectsTo(resp, rel) {
		return &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable,
			Detail: "not Jenkins's answer to a stop (a redirect to the build); a login page or proxy in front of Jenkins? The build may still be running"}
	}
	return nil
}

// redirectsTo reports whether resp's Location, resolved against the
// request, is rel (an escaped path below the base URL). Only the end of the
// path is compared: a proxy may serve Jenkins under another prefix.
func redirectsTo(resp *http.Response, rel string) bool {
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Request == nil || resp.Request.URL == nil {
		return false
	}
	u := resp.Request.URL.ResolveReference(loc)
	return u.RawQuery == "" && strings.HasSuffix(u.EscapedPath(), "/"+rel)
}

const testCasesTree = "suites[name,cases[className,name,status,errorDetails]]"

// testTree asks for both shapes of a report: a TestResult's counts and
// suites, and an aggregated report's (matrix, Maven) totalCount and child
// reports. Stapler leaves out the names an object does not have.
const testTree = "passCount,failCount,skipCount,totalCount," + testCasesTree +
	",childReports[child[number,url],result[" + testCasesTree + "]]"

// TestReport returns the JUnit report of a build (ErrNotFound when it has
// none). A Pipeline's junit step publishes it while the build still runs,
// so a running build may have one, holding the tests recorded so far.
func (c *Client) TestReport(ctx context.Context, cred Credential, job jobpath.Path, number int64) (*TestReport, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: "get test report of " + buildName(job, number), rel: buildRel(job, number) + "testReport/api/json",
		query: url.Values{"tree": {testTree}}, cred: cred}, ParseTestReport)
}

// CanonicalPath asks Jenkins for an item's own spelling of its path (its
// fullName). Jenkins looks item names up case-insensitively, so
// "PROD/Deploy" reaches "prod/deploy"; whoever decides on paths (a policy)
// must decide on Jenkins's spelling. An item the user cannot see is
// ErrNotFound, as for any other read.
func (c *Client) CanonicalPath(ctx context.Context, cred Credential, item jobpath.Path) (jobpath.Path, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	op := fmt.Sprintf("resolve %q", item.String())
	name, err := getJSON(ctx, c, call{op: op, rel: item.URLPath() + "api/json",
		query: url.Values{"tree": {"fullName"}}, cred: cred}, func(data []byte) (string, error) {
		var v struct {
			FullName string `json:"fullName"`
		}
		if err := json.Unmarshal(data, &v); err != nil {
			return "", err
		}
		return v.FullName, nil
	})
	if err != nil {
		return jobpath.Path{}, err
	}
	p, err := jobpath.Parse(name)
	if err != nil {
		return jobpath.Path{}, &Error{Op: op, Err: ErrUnavailable, Detail: "Jenkins reported a full name Butler cannot use"}
	}
	return p, nil
}
