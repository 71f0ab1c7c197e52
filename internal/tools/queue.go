package tools

import (
	"context"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/butler-mcp/butler/internal/catalog"
)

// QueueIn names a queue item.
type QueueIn struct {
	QueueID int64 `json:"queue_id" jsonschema:"queue item id, as returned by trigger_job"`
}

// QueueOut is a queue item's state.
type QueueOut struct {
	QueueID     int64  `json:"queue_id"`
	State       string `json:"state" jsonschema:"waiting (quiet period), blocked (e.g. a build of the job is already running), buildable (waiting for an executor), started or cancelled"`
	Why         string `json:"why,omitempty" jsonschema:"Jenkins's explanation while the item waits"`
	Job         string `json:"job,omitempty" jsonschema:"full path of the queued job (folder/sub/job)"`
	BuildNumber *int64 `json:"build_number,omitempty" jsonschema:"the build's number, once started"`
	BuildURL    string `json:"build_url,omitempty"`
}

func queueTarget(id int64) target {
	return target{queueID: id, resource: fmt.Sprintf("queue-item:%d", id), what: fmt.Sprintf("queue item %d", id)}
}

func queueIDSchema(s *jsonschema.Schema) {
	prop(s, "queue_id").Minimum = ptr(1.0)
}

func addGetQueueItem(t *Toolset) (*def, error) {
	return add(t, spec[QueueIn, QueueOut]{
		name:   catalog.GetQueueItem,
		input:  queueIDSchema,
		target: func(in *QueueIn) (target, error) { return queueTarget(in.QueueID), nil },
		run: func(ctx context.Context, c *call, in *QueueIn) (*QueueOut, error) {
			q, err := t.deps.Jenkins.QueueItem(ctx, c.cred, in.QueueID)
			if err != nil {
				return nil, err
			}
			// Jenkins's task name is the job's own name ("main" for
			// frontend/mobile/main); its URL names the whole path.
			job := q.TaskName
			if p, ok := q.JobPath(); ok {
				job = p.String()
			}
			return &QueueOut{QueueID: q.ID, State: string(q.State), Why: q.Why, Job: job,
				BuildNumber: num(q.BuildNumber), BuildURL: q.BuildURL}, nil
		},
	})
}

// CancelOut confirms a cancellation.
type CancelOut struct {
	Cancelled bool `json:"cancelled"`
}

func addCancelQueueItem(t *Toolset) (*def, error) {
	return add(t, spec[QueueIn, CancelOut]{
		name:   catalog.CancelQueueItem,
		input:  queueIDSchema,
		target: func(in *QueueIn) (target, error) { return queueTarget(in.QueueID), nil },
		run: func(ctx context.Context, c *call, in *QueueIn) (*CancelOut, error) {
			if err := t.deps.Jenkins.CancelQueueItem(ctx, c.cred, in.QueueID); err != nil {
				return nil, err
			}
			return &CancelOut{Cancelled: true}, nil
		},
	})
}
