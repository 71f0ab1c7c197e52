package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// MaxQueueItems bounds how many queue items ListQueue reads: Jenkins is
// asked for one more (a tree range), so a longer queue is reported as
// truncated without being read whole.
const MaxQueueItems = 1000

// queueListTree is what ListQueue asks of the queue: of each item the
// fields ParseQueueItem reads (its class says its state), when it entered
// the queue and whether Jenkins thinks it is stuck, and its task's name,
// URL and full name.
var queueListTree = "items[id,why,blocked,buildable,cancelled,stuck,inQueueSince,task[name,url,fullName]]{0," +
	strconv.Itoa(MaxQueueItems+1) + "}"

// QueueEntry is one item of the queue.
type QueueEntry struct {
	QueueItem
	// InQueueSince is when the item entered the queue, in milliseconds
	// since the epoch (Queue.Item.getInQueueSince).
	InQueueSince int64
	// Stuck is Jenkins's BuildableItem.isStuck: the item has waited for
	// an executor ten times as long as the job's builds take (at least
	// ten minutes), or its label has no online node.
	Stuck bool
	// Job is the item's job, when Jenkins says which it is (see
	// QueueEntryJob); HasJob is false when it cannot be told.
	Job    jobpath.Path
	HasJob bool
}

// Queue is the build queue as one user sees it: Jenkins lists only the
// items whose job the user may read (Queue.getItems). Items that only name
// a task the user may discover are not read.
type Queue struct {
	Items []QueueEntry
	// Truncated: the queue holds more than MaxQueueItems items the user
	// may see; Items has the first MaxQueueItems (Jenkins's order: waiting
	// items, blocked, then buildable ones, newest first).
	Truncated bool
}

// ListQueue returns the queue as cred's user sees it, at most
// MaxQueueItems items.
func (c *Client) ListQueue(ctx context.Context, cred Credential) (*Queue, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: "list the queue", rel: "queue/api/json", cred: cred,
		query: url.Values{"tree": {queueListTree}}}, ParseQueue)
}

// ParseQueue decodes queue/api/json. It keeps at most MaxQueueItems items.
func ParseQueue(data []byte) (*Queue, error) {
	var w struct {
		Items []json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	out := &Queue{Items: make([]QueueEntry, 0, min(len(w.Items), MaxQueueItems))}
	if len(w.Items) > MaxQueueItems {
		w.Items, out.Truncated = w.Items[:MaxQueueItems], true
	}
	for i, raw := range w.Items {
		q, err := ParseQueueItem(raw)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		var extra struct {
			InQueueSince int64 `json:"inQueueSince"`
			Stuck        bool  `json:"stuck"`
		}
		if err := json.Unmarshal(raw, &extra); err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		e := QueueEntry{QueueItem: *q, InQueueSince: extra.InQueueSince, Stuck: extra.Stuck}
		e.Job, e.HasJob = QueueEntryJob(q)
		out.Items = append(out.Items, e)
	}
	return out, nil
}

// QueueEntryJob is the job a queued task belongs to: the job itself
// (QueueItem.JobPath), or, for a Pipeline's request for an executor
// (workflow-durable-task-step's ExecutorStepExecution.PlaceholderTask,
// whose URL is its build's, ".../job/<name>/<number>/"), the build's job.
// ok is false for any other task.
func QueueEntryJob(q *QueueItem) (jobpath.Path, bool) {
	if p, ok := q.JobPath(); ok {
		return p, true
	}
	if q.TaskFullName != "" {
		return jobpath.Path{}, false
	}
	u, err := url.Parse(q.TaskURL)
	if err != nil {
		return jobpath.Path{}, false
	}
	dir := strings.TrimSuffix(u.EscapedPath(), "/")
	i := strings.LastIndexByte(dir, '/')
	if i < 0 {
		return jobpath.Path{}, false
	}
	if n, err := strconv.ParseInt(dir[i+1:], 10, 64); err != nil || n <= 0 {
		return jobpath.Path{}, false
	}
	return jobPathFromURL(dir[:i+1])
}
