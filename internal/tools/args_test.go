package tools_test

import (
	"testing"

	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// TestArguments_ValidationReadsAsSentences pins that a schema violation is
// told in words a model can act on, never the schema library's
// "maximum: 501/1 is greater than 500.000000".
func TestArguments_ValidationReadsAsSentences(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAlice, nil)
	for _, tc := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"list_all_jobs", map[string]any{"limit": 501}, "limit must be at most 500"},
		{"list_all_jobs", map[string]any{"limit": 0}, "limit must be at least 1"},
		{"list_all_jobs", map[string]any{"limit": 1.5}, "limit must be an integer"},
		{"list_all_jobs", map[string]any{"recursive": "yes"}, "recursive must be a boolean"},
		{"list_all_jobs", map[string]any{"limt": 5}, `unknown argument "limt"; the arguments are cursor, folder, limit, recursive`},
		{"get_job", map[string]any{}, "job is required"},
		{"get_build_log", map[string]any{"job": "frontend/web-app", "max_bytes": 2 << 20}, "max_bytes must be at most 1048576"},
		{"search_build_log", map[string]any{"job": "frontend/web-app", "pattern": "x", "context_lines": 11}, "context_lines must be at most 10"},
	} {
		got := e.fail(t, tc.tool, tc.args, "invalid_argument")["message"]
		if got != tc.want {
			t.Errorf("%s(%v): message %q, want %q", tc.tool, tc.args, got, tc.want)
		}
	}
}

// TestGetQueueItem_NamesTheJobByItsFullPath pins that the queued job is
// named as every other tool names it, not by its last segment.
func TestGetQueueItem_NamesTheJobByItsFullPath(t *testing.T) {
	t.Parallel()
	e := newEnv(t, jenkinstest.SampleAdmin, nil)
	out := e.ok(t, "trigger_job", map[string]any{"job": "frontend/mobile/main"})
	if q := e.ok(t, "get_queue_item", map[string]any{"queue_id": out["queue_id"]}); q["job"] != "frontend/mobile/main" {
		t.Errorf("get_queue_item job = %v, want frontend/mobile/main", q["job"])
	}
}
