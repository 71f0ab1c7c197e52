package tools

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// ListJobsIn selects a page of jobs.
type ListJobsIn struct {
	Folder    string `json:"folder,omitempty" jsonschema:"folder to list, e.g. 'backend'; default the whole instance"`
	Recursive *bool  `json:"recursive,omitempty" jsonschema:"include jobs in sub-folders; default true"`
	Limit     int    `json:"limit,omitempty" jsonschema:"jobs per page, 1 to 500; default 100"`
	Cursor    string `json:"cursor,omitempty" jsonschema:"next_cursor from the previous page, to continue the listing"`
}

// JobSummary is one job of a listing.
type JobSummary struct {
	FullName        string `json:"full_name" jsonschema:"job path to pass to other tools"`
	URL             string `json:"url" jsonschema:"the job's page in Jenkins"`
	Color           string `json:"color" jsonschema:"Jenkins status ball: blue=success, red=failed, yellow=unstable, aborted, notbuilt, disabled; suffix _anime while building; unknown when the job changed in Jenkins since the listing was read (call get_job)"`
	Buildable       bool   `json:"buildable" jsonschema:"false when the job is disabled"`
	LastBuildNumber *int64 `json:"last_build_number" jsonschema:"number of the last build; null if it never ran"`
}

// ListJobsOut is a page of jobs.
type ListJobsOut struct {
	Jobs       []JobSummary `json:"jobs"`
	Total      int          `json:"total" jsonschema:"number of jobs in the whole listing"`
	NextCursor string       `json:"next_cursor,omitempty" jsonschema:"pass as cursor to get the next page; absent on the last page"`
}

// colorUnknown is the colour of a listed job whose status Jenkins no
// longer reported when the page was read (moved, renamed or deleted since
// the listing, which is cached for listingTTL).
const colorUnknown = "unknown"

type cursor struct {
	After     string `json:"a"`
	Folder    string `json:"f"`
	Recursive bool   `json:"r"`
}

func encodeCursor(c cursor) string {
	data, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(data)
}

func decodeCursor(s string) (cursor, error) {
	var c cursor
	data, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(data) > 4096 || json.Unmarshal(data, &c) != nil {
		return cursor{}, Errorf(CodeInvalidArgument, "cursor is not one this tool returned; start again without a cursor")
	}
	return c, nil
}

func addListAllJobs(t *Toolset) (*def, error) {
	return add(t, spec[ListJobsIn, ListJobsOut]{
		name: catalog.ListAllJobs,
		input: func(s *jsonschema.Schema) {
			bounds(s, "limit", 1, 500)
			setDefault(s, "limit", 100)
			setDefault(s, "recursive", true)
			prop(s, "cursor").MaxLength = ptr(4096)
		},
		target: func(in *ListJobsIn) (target, error) {
			f, err := jobpath.ParseFolder(in.Folder)
			if err != nil {
				return target{}, fmt.Errorf("folder: %w", err)
			}
			tg := target{job: f, hasJob: !f.IsRoot(), resource: f.String(), what: "the job listing"}
			if !f.IsRoot() {
				tg.what = fmt.Sprintf("folder %q", f.String())
			}
			return tg, nil
		},
		run: func(ctx context.Context, c *call, in *ListJobsIn) (*ListJobsOut, error) {
			recursive := in.Recursive == nil || *in.Recursive
			folder := c.target.job
			after := ""
			if in.Cursor != "" {
				cur, err := decodeCursor(in.Cursor)
				if err != nil {
					return nil, err
				}
				if cur.Folder != folder.String() || cur.Recursive != recursive {
					return nil, Errorf(CodeInvalidArgument, "cursor belongs to another listing (folder %q, recursive %t)", cur.Folder, cur.Recursive)
				}
				after = cur.After
			}
			jobs, err := t.listJobs(ctx, c, folder, recursive)
			if err != nil {
				return nil, err
			}
			i := 0
			if after != "" {
				i = jobs.After(after)
			}
			end := min(i+in.Limit, jobs.Len())
			// The statuses of this page only: the listing holds none (each
			// costs Jenkins a build record read).
			statuses, err := t.deps.Jenkins.JobStatuses(ctx, c.cred, jobs, i, end)
			if err != nil {
				return nil, err
			}
			out := &ListJobsOut{Jobs: make([]JobSummary, 0, end-i), Total: jobs.Len()}
			for k := i; k < end; k++ {
				j, st := jobs.Job(k), statuses[k-i]
				s := JobSummary{FullName: j.FullName, URL: j.URL, Color: st.Color, Buildable: j.Buildable}
				if !st.Known {
					s.Color = colorUnknown
				}
				if st.LastBuild > 0 {
					s.LastBuildNumber = ptr(st.LastBuild)
				}
				out.Jobs = append(out.Jobs, s)
			}
			if end < jobs.Len() {
				out.NextCursor = encodeCursor(cursor{After: jobs.Name(end - 1), Folder: folder.String(), Recursive: recursive})
			}
			return out, nil
		},
	})
}

// JobIn names a job.
type JobIn struct {
	Job string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
}

// Parameter is a build parameter a job takes.
type Parameter struct {
	Name        string   `json:"name"`
	Type        string   `json:"type" jsonschema:"string, text, boolean, choice, password, file or other; a file parameter cannot be given through trigger_job (Jenkins takes files only as uploads)"`
	Description string   `json:"description,omitempty"`
	Default     any      `json:"default" jsonschema:"default value, keeping its JSON type; always null for password parameters"`
	Choices     []string `json:"choices,omitempty" jsonschema:"allowed values of a choice parameter; the first is the default"`
}

// JobOut describes a job.
type JobOut struct {
	FullName                  string      `json:"full_name"`
	URL                       string      `json:"url"`
	Description               string      `json:"description"`
	Color                     string      `json:"color"`
	Buildable                 bool        `json:"buildable" jsonschema:"false when the job is disabled"`
	Parameters                []Parameter `json:"parameters" jsonschema:"parameters to pass to trigger_job; empty if the job takes none"`
	LastBuildNumber           *int64      `json:"last_build_number"`
	LastSuccessfulBuildNumber *int64      `json:"last_successful_build_number"`
	LastFailedBuildNumber     *int64      `json:"last_failed_build_number"`
	InQueue                   bool        `json:"in_queue" jsonschema:"a build of this job is waiting in the queue"`
	QueueID                   *int64      `json:"queue_id,omitempty" jsonschema:"the queued item, when in_queue"`
}

func num(n int64) *int64 {
	if n <= 0 {
		return nil
	}
	return &n
}

func jobOut(j *jenkins.Job, path jobpath.Path) *JobOut {
	name := j.FullName // Jenkins's own spelling: names are case-insensitive there
	if name == "" {
		name = path.String()
	}
	out := &JobOut{
		FullName: name, URL: j.URL, Description: j.Description, Color: j.Color, Buildable: j.Buildable,
		Parameters: []Parameter{}, LastBuildNumber: num(j.LastBuild), LastSuccessfulBuildNumber: num(j.LastSuccessfulBuild),
		LastFailedBuildNumber: num(j.LastFailedBuild), InQueue: j.InQueue, QueueID: num(j.QueueID),
	}
	for _, p := range j.Parameters {
		out.Parameters = append(out.Parameters, Parameter{Name: p.Name, Type: p.Kind, Description: p.Description, Default: p.Default, Choices: p.Choices})
	}
	return out
}

func addGetJob(t *Toolset) (*def, error) {
	return add(t, spec[JobIn, JobOut]{
		name:   catalog.GetJob,
		target: func(in *JobIn) (target, error) { return jobTarget(in.Job) },
		run: func(ctx context.Context, c *call, in *JobIn) (*JobOut, error) {
			j, err := t.deps.Jenkins.GetJob(ctx, c.cred, c.target.job)
			if err != nil {
				return nil, err
			}
			return jobOut(j, c.target.job), nil
		},
	})
}

// TriggerIn asks for a build.
type TriggerIn struct {
	Job                 string         `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Parameters          map[string]any `json:"parameters,omitempty" jsonschema:"build parameters by name; see get_job for the names, types and choices. Omitted parameters take their defaults"`
	WaitForStartSeconds int            `json:"wait_for_start_seconds,omitempty" jsonschema:"wait up to this many seconds (0 to 60) for the build to leave the queue and start; default 0 returns at once with the queue item"`
	RebuildOf           *int64         `json:"rebuild_of,omitempty" jsonschema:"rebuild: number of a build of this job whose parameters to use; parameters given override them. Password values are never copied: give them again or they take their defaults"`
}

// TriggerOut is the queued build.
type TriggerOut struct {
	QueueID     int64  `json:"queue_id" jsonschema:"queue item id; follow it with get_queue_item"`
	QueueURL    string `json:"queue_url"`
	Merged      bool   `json:"merged" jsonschema:"true when Jenkins queued no new build but folded this request into a build of the job already waiting in the queue with the same parameters (queue_id is that item); that one build serves both requests"`
	State       string `json:"state" jsonschema:"queue state when the call returned: waiting, blocked, buildable, started or cancelled"`
	BuildNumber *int64 `json:"build_number,omitempty" jsonschema:"the build's number, once it started"`
	BuildURL    string `json:"build_url,omitempty"`
	// RebuildOf and PasswordsNotCopied say what rebuild_of did.
	RebuildOf          *int64   `json:"rebuild_of,omitempty" jsonschema:"the build whose parameters were reused"`
	PasswordsNotCopied []string `json:"passwords_not_copied,omitempty" jsonschema:"with rebuild_of: password parameters whose values were not copied from that build (not given again, so Jenkins uses their defaults)"`
}

func addTriggerJob(t *Toolset) (*def, error) {
	return add(t, spec[TriggerIn, TriggerOut]{
		name: catalog.TriggerJob,
		input: func(s *jsonschema.Schema) {
			bounds(s, "wait_for_start_seconds", 0, 60)
			setDefault(s, "wait_for_start_seconds", 0)
			prop(s, "parameters").MaxProperties = ptr(100)
			prop(s, "rebuild_of").Minimum = ptr(1.0)
		},
		target: func(in *TriggerIn) (target, error) {
			tg, err := jobTarget(in.Job)
			tg.params = in.Parameters
			return tg, err
		},
		// Read the job as the user first: an unseen job is not_found
		// before anything is posted, the parameters are checked against
		// the job's own definitions, and the policy decides on what
		// Jenkins will run with: the values given plus the defaults of
		// those not given.
		resolve: func(ctx context.Context, c *call, in *TriggerIn) (map[string]any, error) {
			j, err := t.deps.Jenkins.GetJob(ctx, c.cred, c.target.job)
			if err != nil {
				return nil, err
			}
			if !j.Buildable {
				return nil, Errorf(CodeConflict, "job %q is disabled or not buildable; it cannot be started", c.target.job.String())
			}
			given, passwords := in.Parameters, []string(nil)
			if in.RebuildOf != nil {
				if given, passwords, err = t.rebuildParams(ctx, c, j, *in.RebuildOf, in.Parameters); err != nil {
					return nil, err
				}
			}
			values, err := buildParams(j.Parameters, given)
			if err != nil {
				return nil, err
			}
			c.resolved = triggerPlan{parameterized: len(j.Parameters) > 0, values: values, queued: j.QueueID, passwords: passwords}
			return effectiveParams(j.Parameters, given), nil
		},
		run: func(ctx context.Context, c *call, in *TriggerIn) (*TriggerOut, error) {
			plan := c.resolved.(triggerPlan)
			q, err := t.deps.Jenkins.TriggerBuild(ctx, c.cred, c.target.job, plan.parameterized, plan.values)
			if err != nil {
				return nil, err
			}
			// buildWithParameters says 303 when Jenkins folded the request
			// into a queued item. A job without parameters is triggered
			// with build, which answers 201 either way (JENKINS-66105):
			// there the request was folded when the item Jenkins named is
			// the one the job had queued just before (all requests for
			// such a job fold into one item). A fold into an item queued
			// between the two requests goes unnoticed (merged false).
			merged := q.Merged || !plan.parameterized && plan.queued > 0 && q.ID == plan.queued
			out := &TriggerOut{QueueID: q.ID, QueueURL: t.deps.Jenkins.QueueURL(q.ID), Merged: merged, State: string(jenkins.QueueWaiting),
				RebuildOf: in.RebuildOf, PasswordsNotCopied: plan.passwords}
			if in.WaitForStartSeconds > 0 {
				t.waitForStart(ctx, c, out, time.Duration(in.WaitForStartSeconds)*time.Second)
			}
			return out, nil
		},
	})
}

// triggerPlan is what trigger_job's resolve step read for its run step.
type triggerPlan struct {
	parameterized bool
	values        url.Values
	queued        int64    // the job's queued item before the trigger, 0 if none
	passwords     []string // rebuild_of: password parameters not copied (rebuild.go)
}

// effectiveParams are the parameters Jenkins runs a build with: the
// values given, and for every parameter not given, its default. A
// password's value is left out (the policy never sees a secret; its default
// is never known).
func effectiveParams(defs []jenkins.ParamDef, given map[string]any) map[string]any {
	out := make(map[string]any, len(defs))
	for _, d := range defs {
		if d.Kind == jenkins.ParamPassword || d.Kind == jenkins.ParamFile {
			// A file parameter has no value Butler can send or know.
			continue
		}
		if v, ok := given[d.Name]; ok && v != nil {
			out[d.Name] = v
		} else if d.Default != nil {
			out[d.Name] = d.Default
		}
	}
	return out
}

// waitForStart polls the queue item until it starts or is cancelled, or
// the wait is over. It backs off from Deps.PollInterval (250 ms) to four
// times that (once a second), so a waiting call costs Jenkins at most about
// one request a second. Polling failures end the wait quietly: the build
// was queued, which is what the caller must learn.
func (t *Toolset) waitForStart(ctx context.Context, c *call, out *TriggerOut, wait time.Duration) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	interval, most := t.deps.PollInterval, 4*t.deps.PollInterval
	timer := time.NewTimer(interval)
	defer timer.Stop()
	for {
		q, err := t.deps.Jenkins.QueueItem(ctx, c.cred, out.QueueID)
		if err != nil {
			return
		}
		out.State = string(q.State)
		if q.State == jenkins.QueueStarted {
			out.BuildNumber, out.BuildURL = num(q.BuildNumber), q.BuildURL
			return
		}
		if q.State == jenkins.QueueCancelled {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		interval = min(2*interval, most)
		timer.Reset(interval)
	}
}

// buildParams checks given against the job's parameter definitions and
// encodes them for buildWithParameters.
func buildParams(defs []jenkins.ParamDef, given map[string]any) (url.Values, error) {
	if len(defs) == 0 {
		if len(given) > 0 {
			return nil, Errorf(CodeInvalidArgument, "this job takes no parameters, but %d were given", len(given))
		}
		return nil, nil
	}
	byName := make(map[string]jenkins.ParamDef, len(defs))
	names := make([]string, 0, len(defs))
	for _, d := range defs {
		byName[d.Name] = d
		names = append(names, d.Name)
	}
	keys := make([]string, 0, len(given))
	for k := range given {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	values := url.Values{}
	for _, name := range keys {
		d, ok := byName[name]
		if !ok {
			return nil, Errorf(CodeInvalidArgument, "unknown parameter %q; this job takes: %s", name, strings.Join(names, ", "))
		}
		s, err := paramValue(d, given[name])
		if err != nil {
			return nil, err
		}
		values.Set(name, s)
	}
	return values, nil
}

func paramValue(d jenkins.ParamDef, v any) (string, error) {
	bad := func(want string) error {
		return Errorf(CodeInvalidArgument, "parameter %q must be %s", d.Name, want)
	}
	switch d.Kind {
	case jenkins.ParamBoolean:
		switch b := v.(type) {
		case bool:
			return strconv.FormatBool(b), nil
		case string:
			if b == "true" || b == "false" {
				return b, nil
			}
		}
		return "", bad("true or false")
	case jenkins.ParamFile:
		// FileParameterDefinition.createValue reads only an uploaded file
		// and buildWithParameters drops a form value without a word: the
		// build would run without it.
		return "", Errorf(CodeInvalidArgument, "parameter %q is a file parameter: Jenkins takes files only as uploads, which trigger_job cannot send; leave it out to build without the file", d.Name)
	case jenkins.ParamChoice:
		s, ok := v.(string)
		if !ok {
			return "", bad("a string, one of: " + strings.Join(d.Choices, ", "))
		}
		if !slices.Contains(d.Choices, s) {
			return "", Errorf(CodeInvalidArgument, "parameter %q: %q is not one of the choices: %s", d.Name, s, strings.Join(d.Choices, ", "))
		}
		return s, nil
	default:
		switch x := v.(type) {
		case string:
			if len(x) > 64<<10 {
				return "", bad("at most 65536 bytes")
			}
			return x, nil
		case float64:
			return strconv.FormatFloat(x, 'f', -1, 64), nil
		case bool:
			return strconv.FormatBool(x), nil
		}
		return "", bad("a string")
	}
}
