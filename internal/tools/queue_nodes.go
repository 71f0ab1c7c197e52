package tools

import (
	"context"
	"encoding/json"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// listBudget bounds the JSON of the entries of one list_queue or
// list_nodes answer. An answer costs about twice its JSON (MaxAnswerBytes
// counts the structured content and its text copy), so 1.5 MiB keeps the
// whole answer well under 4 MiB however long Jenkins's names and reasons
// are; entries past it are left out and the answer says truncated.
const listBudget = 3 << 19

// NoArgs is the input of a tool that takes none.
type NoArgs struct{}

// QueueListItem is one item of list_queue.
type QueueListItem struct {
	QueueID      int64  `json:"queue_id" jsonschema:"the queue item's id, for get_queue_item, cancel_queue_item and wait_for_build"`
	Job          string `json:"job" jsonschema:"full path of the queued job (folder/sub/job)"`
	State        string `json:"state" jsonschema:"waiting (quiet period), blocked (e.g. a build of the job is already running) or buildable (waiting for an executor)"`
	Why          string `json:"why" jsonschema:"Jenkins's explanation of why the item is still waiting"`
	InQueueSince string `json:"in_queue_since" jsonschema:"when the item entered the queue (RFC 3339, UTC)"`
	Stuck        bool   `json:"stuck" jsonschema:"Jenkins thinks the item is stuck: it waited for an executor ten times as long as a build takes, or no node with its label is online"`
}

// ListQueueOut is list_queue's answer.
type ListQueueOut struct {
	Items     []QueueListItem `json:"items"`
	Truncated bool            `json:"truncated" jsonschema:"more items are queued than listed (over 1000, or over the answer's size bound)"`
}

func addListQueue(t *Toolset) (*def, error) {
	return add(t, spec[NoArgs, ListQueueOut]{
		name: catalog.ListQueue,
		run: func(ctx context.Context, c *call, _ *NoArgs) (*ListQueueOut, error) {
			q, err := t.deps.Jenkins.ListQueue(ctx, c.cred)
			if err != nil {
				return nil, err
			}
			allowed := t.policyFilter(ctx, c.principal, catalog.GetQueueItem)
			out := &ListQueueOut{Items: []QueueListItem{}, Truncated: q.Truncated}
			size := 0
			for _, it := range q.Items {
				// An item the policy cannot place (a task that is not a
				// job's) is not listed: deny by default.
				if !it.HasJob || !allowed(it.Job) {
					continue
				}
				li := QueueListItem{QueueID: it.ID, Job: it.Job.String(), State: string(it.State), Why: it.Why,
					InQueueSince: rfc3339Millis(it.InQueueSince), Stuck: it.Stuck}
				if size += jsonSize(li); size > listBudget {
					out.Truncated = true
					break
				}
				out.Items = append(out.Items, li)
			}
			return out, nil
		},
	})
}

// NodeBuild is a build a node runs.
type NodeBuild struct {
	Job         string `json:"job" jsonschema:"full path of the build's job"`
	BuildNumber int64  `json:"build_number"`
}

// NodeOut is one node of list_nodes.
type NodeOut struct {
	Name           string      `json:"name" jsonschema:"the node's name; built-in for the Jenkins controller's own node"`
	Online         bool        `json:"online"`
	OfflineReason  string      `json:"offline_reason" jsonschema:"why the node is offline (Jenkins's offline cause), empty when online or when Jenkins gives none"`
	Labels         []string    `json:"labels" jsonschema:"the node's labels (without its own name, which every node has as a label too)"`
	ExecutorsTotal int         `json:"executors_total"`
	ExecutorsBusy  int         `json:"executors_busy" jsonschema:"executors running something, including builds you may not see"`
	Running        []NodeBuild `json:"running" jsonschema:"the builds on the node that you may see"`
}

// ListNodesOut is list_nodes's answer.
type ListNodesOut struct {
	Nodes     []NodeOut `json:"nodes"`
	Truncated bool      `json:"truncated" jsonschema:"not everything is listed: over 1000 nodes, 100 labels or 100 running builds on a node, or over the answer's size bound"`
}

func addListNodes(t *Toolset) (*def, error) {
	return add(t, spec[NoArgs, ListNodesOut]{
		name: catalog.ListNodes,
		run: func(ctx context.Context, c *call, _ *NoArgs) (*ListNodesOut, error) {
			ns, err := t.deps.Jenkins.ListNodes(ctx, c.cred)
			if err != nil {
				return nil, err
			}
			allowed := t.policyFilter(ctx, c.principal, catalog.GetBuild)
			out := &ListNodesOut{Nodes: []NodeOut{}, Truncated: ns.Truncated}
			size := 0
			for _, n := range ns.Nodes {
				no := NodeOut{Name: n.Name, Online: n.Online, OfflineReason: n.OfflineReason, Labels: n.Labels,
					ExecutorsTotal: n.ExecutorsTotal, ExecutorsBusy: n.ExecutorsBusy, Running: []NodeBuild{}}
				if len(n.Labels) == jenkins.MaxNodeLabels || n.RunningTruncated {
					out.Truncated = true
				}
				for _, r := range n.Running {
					// A build the policy hides is not named, as Jenkins
					// does not name one the user may not read.
					if allowed(r.Job) {
						no.Running = append(no.Running, NodeBuild{Job: r.Job.String(), BuildNumber: r.Number})
					}
				}
				if size += jsonSize(no); size > listBudget {
					out.Truncated = true
					break
				}
				out.Nodes = append(out.Nodes, no)
			}
			return out, nil
		},
	})
}

// policyFilter returns whether the policy would let p call tool on a job,
// as list_all_jobs asks for get_job (visibleJobs): a job the policy hides
// is not listed. When no policy names a job or folder, the answer is the
// same for every job and is asked once.
func (t *Toolset) policyFilter(ctx context.Context, p identity.Principal, tool string) func(jobpath.Path) bool {
	ask := func(job jobpath.Path) bool {
		return t.deps.Authorizer.DecideWithoutScopes(ctx, authz.Request{Principal: p, Tool: tool, Job: job.String()}).Allow
	}
	if t.deps.Authorizer.NamesItems() {
		return ask
	}
	decided, allow := false, false
	return func(job jobpath.Path) bool {
		if !decided {
			decided, allow = true, ask(job)
		}
		return allow
	}
}

func jsonSize(v any) int {
	data, err := json.Marshal(v)
	if err != nil {
		return 0
	}
	return len(data)
}
