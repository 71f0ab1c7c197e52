package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
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
// folder is the zero Path), sorted by full name. Folders themselves are not
// listed. With recursive, jobs in sub-folders are included: one request
// fetches ListDepth levels of folders at once with a tree query, and only
// folders deeper than that cost further requests.
func (c *Client) ListJobs(ctx context.Context, cred Credential, folder jobpath.Path, recursive bool) ([]JobSummary, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	depth := 1
	if recursive {
		depth = c.opts.ListDepth
	}
	var (
		mu   sync.Mutex
		out  []JobSummary
		errs []error
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
	)
	var fetch func(f jobpath.Path)
	fetch = func(f jobpath.Path) {
		defer wg.Done()
		sem <- struct{}{}
		items, err := getJSON(ctx, c, call{
			op: fmt.Sprintf("list jobs in %q", f.String()), rel: f.URLPath() + "api/json",
			query: url.Values{"tree": {listTree(depth)}}, cred: cred,
		}, ParseJobTree)
		<-sem
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		var jobs []JobSummary
		var deeper []jobpath.Path
		collect(f.String(), items, recursive, &jobs, &deeper)
		mu.Lock()
		out = append(out, jobs...)
		mu.Unlock()
		for _, d := range deeper {
			wg.Add(1)
			go fetch(d)
		}
	}
	wg.Add(1)
	fetch(folder)
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FullName < out[j].FullName })
	return out, nil
}

// listTree builds the tree query for a listing nested depth levels deep.
// At the deepest level folders report only their children's names, so the
// client can tell an empty folder from one whose children were cut off.
func listTree(depth int) string {
	const fields = "name,url,color,buildable,lastBuild[number]"
	inner := "name"
	for range depth {
		inner = fields + ",jobs[" + inner + "]"
	}
	return "jobs[" + inner + "]"
}

// collect walks a tree answer. Items with a jobs list are folders (any kind:
// plain, multibranch, organization); others are jobs. Folders whose children
// were cut off by the tree depth are returned in deeper.
func collect(prefix string, items []wireTreeItem, recursive bool, jobs *[]JobSummary, deeper *[]jobpath.Path) {
	for _, it := range items {
		if it.Name == "" {
			// Jenkins names every item; an answer that does not cannot be
			// listed under any path (found by FuzzParseJenkinsJSON).
			continue
		}
		full := it.Name
		if prefix != "" {
			full = prefix + "/" + it.Name
		}
		if it.Jobs == nil {
			s := JobSummary{FullName: full, Class: it.Class, URL: it.URL, Color: it.Color, LastBuild: it.LastBuild.number()}
			if it.Buildable != nil {
				s.Buildable = *it.Buildable
			}
			*jobs = append(*jobs, s)
			continue
		}
		if !recursive {
			continue
		}
		kids := *it.Jobs
		if len(kids) > 0 && kids[0].URL == "" {
			// Children cut at the depth limit: only names came back.
			if p, err := jobpath.Parse(full); err == nil {
				*deeper = append(*deeper, p)
			}
			continue
		}
		collect(full, kids, recursive, jobs, deeper)
	}
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

// Trigger queues a build of job and returns the queue item id Jenkins gave
// it. A parameterized job is started with buildWithParameters and params
// (those not given take their defaults in Jenkins); any other job with build.
func (c *Client) Trigger(ctx context.Context, cred Credential, job jobpath.Path, parameterized bool, params url.Values) (int64, error) {
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
		return 0, err
	}
	defer drain(resp)
	id, ok := queueIDFromLocation(resp.Header.Get("Location"))
	if !ok {
		return 0, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "no queue item in the answer's Location"}
	}
	return id, nil
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
// answers with a redirect to the build, also when it had already finished.
func (c *Client) StopBuild(ctx context.Context, cred Credential, job jobpath.Path, number int64) error {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.post(ctx, call{op: "stop " + buildName(job, number), rel: buildRel(job, number) + "stop", cred: cred})
	if err != nil {
		return err
	}
	drain(resp)
	return nil
}

const testTree = "passCount,failCount,skipCount,suites[name,cases[className,name,status,errorDetails]]"

// TestReport returns the JUnit report of a build (ErrNotFound when it has
// none).
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
