package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

var auditTests = []suiteTest{
	{"AppendNothingIsANoOp", testAuditAppendNothing},
	{"RoundTripsEveryField", testAuditRoundTrip},
	{"EveryFilterCombination", testAuditFilters},
	{"NewestFirstTiesByInsertionOrder", testAuditOrder},
	{"SinceIsInclusive", testAuditSince},
	{"LimitDefaultsAndRejectsNegative", testAuditLimit},
	{"LimitIsCapped", testAuditLimitCap},
	{"UnicodeLongAndBrokenText", testAuditText},
	{"ThousandRecordsInOneCall", testAuditBigBatch},
	{"ConcurrentAppendsLoseNothing", testAuditConcurrent},
}

// baseTime is the fixed clock of the audit tests, with a sub-millisecond
// part the store must drop.
var baseTime = time.Date(2025, 3, 14, 15, 9, 26, 535_897_932, time.UTC)

// auditRec is a typical record, told apart by i (RequestID, DurationMS).
func auditRec(i int, at time.Time) audit.Record {
	return audit.Record{
		Time:        at,
		RequestID:   fmt.Sprintf("req-%06d", i),
		User:        "alice",
		JenkinsUser: "alice.j",
		ClientID:    "claude-desktop",
		Tool:        "get_job",
		Resource:    "team/app/build",
		Decision:    "allow",
		DurationMS:  int64(i),
		RemoteAddr:  "192.0.2.7:51234",
	}
}

// normalized is recs as the store returns them: times in UTC, truncated to
// the millisecond.
func normalized(recs []audit.Record) []audit.Record {
	out := slices.Clone(recs)
	for i := range out {
		out[i].Time = out[i].Time.UTC().Truncate(time.Millisecond)
	}
	return out
}

func reversed(recs []audit.Record) []audit.Record {
	out := slices.Clone(recs)
	slices.Reverse(out)
	return out
}

// queryAll returns every record matching q (q.Limit is ignored).
func queryAll(t *testing.T, s store.Store, q store.AuditQuery) []audit.Record {
	t.Helper()
	q.Limit = store.MaxAuditLimit
	got, err := s.QueryAudit(t.Context(), q)
	if err != nil {
		t.Fatalf("QueryAudit(%+v): %v", q, err)
	}
	return got
}

func appendAudit(t *testing.T, s store.Store, recs []audit.Record) {
	t.Helper()
	if err := s.AppendAudit(t.Context(), recs); err != nil {
		t.Fatalf("AppendAudit(%d records): %v", len(recs), err)
	}
}

func testAuditAppendNothing(t *testing.T, s store.Store) {
	for _, recs := range [][]audit.Record{nil, {}} {
		if err := s.AppendAudit(t.Context(), recs); err != nil {
			t.Errorf("AppendAudit(%#v) = %v, want nil", recs, err)
		}
	}
	if got := queryAll(t, s, store.AuditQuery{}); len(got) != 0 {
		t.Errorf("QueryAudit after empty appends = %d records, want none", len(got))
	}
}

func testAuditRoundTrip(t *testing.T, s store.Store) {
	in := []audit.Record{
		{
			Time:        time.Date(2025, 3, 14, 17, 9, 26, 535_912_345, time.FixedZone("CET", 3600)), // newest
			RequestID:   "01J8Z6V3",
			User:        "alice@example.com",
			JenkinsUser: "alice",
			ClientID:    "https://client.example.com/cimd.json",
			Tool:        "trigger_job",
			Resource:    "team/app/deploy",
			Decision:    "deny",
			Code:        "forbidden",
			Reason:      "policy: forbid-prod-deploys",
			DurationMS:  1 << 40,
			RemoteAddr:  "[2001:db8::1]:443",
		},
		{Time: baseTime}, // every text empty
		{},               // even the time
	}
	appendAudit(t, s, in)
	if diff := gocmp.Diff(normalized(in), queryAll(t, s, store.AuditQuery{}), cmpOpts...); diff != "" {
		t.Errorf("QueryAudit (-want +got):\n%s", diff)
	}
}

func testAuditFilters(t *testing.T, s store.Store) {
	users := []string{"alice", "bob", "carol"}
	tools := []string{"get_job", "trigger_job", "whoami"}
	decisions := []string{"allow", "deny", "error"}
	var all []audit.Record
	for _, u := range users {
		for _, tool := range tools {
			for _, d := range decisions {
				for range 2 {
					i := len(all)
					r := auditRec(i, baseTime.Add(time.Duration(i/2)*time.Second)) // pairs share a time
					r.User, r.Tool, r.Decision = u, tool, d
					all = append(all, r)
				}
			}
		}
	}
	// Several batches, so ties also cross a batch boundary.
	for chunk := range slices.Chunk(all, 19) {
		appendAudit(t, s, chunk)
	}
	since := baseTime.Add(13 * time.Second)

	// expected filters all in Go: newest first, ties by insertion order.
	expected := func(q store.AuditQuery) []audit.Record {
		type indexed struct {
			i int
			r audit.Record
		}
		var m []indexed
		for i, r := range normalized(all) {
			if (q.User == "" || r.User == q.User) && (q.Tool == "" || r.Tool == q.Tool) &&
				(q.Decision == "" || r.Decision == q.Decision) && (q.Since.IsZero() || !r.Time.Before(q.Since.Truncate(time.Millisecond))) {
				m = append(m, indexed{i, r})
			}
		}
		slices.SortFunc(m, func(a, b indexed) int {
			if c := b.r.Time.Compare(a.r.Time); c != 0 {
				return c
			}
			return cmp.Compare(b.i, a.i)
		})
		var out []audit.Record
		for _, x := range m {
			out = append(out, x.r)
		}
		return out
	}

	var queries []store.AuditQuery
	for mask := range 16 {
		var q store.AuditQuery
		if mask&1 != 0 {
			q.User = "bob"
		}
		if mask&2 != 0 {
			q.Tool = "trigger_job"
		}
		if mask&4 != 0 {
			q.Decision = "deny"
		}
		if mask&8 != 0 {
			q.Since = since
		}
		queries = append(queries, q)
	}
	queries = append(queries,
		store.AuditQuery{User: "nobody"},
		store.AuditQuery{Tool: "Get_Job"}, // exact, case-sensitive
		store.AuditQuery{Since: baseTime.Add(time.Hour)},
		store.AuditQuery{User: "alice", Limit: 3},
		store.AuditQuery{Decision: "error", Since: since, Limit: 2},
	)
	for _, q := range queries {
		got, err := s.QueryAudit(t.Context(), q)
		if err != nil {
			t.Errorf("QueryAudit(%+v): %v", q, err)
			continue
		}
		want := expected(q)
		if q.Limit > 0 && len(want) > q.Limit {
			want = want[:q.Limit]
		}
		if len(want) == 0 && !(q.User == "nobody" || q.Tool == "Get_Job" || q.Since.After(since)) {
			t.Fatalf("the test's data gives no record for %+v", q)
		}
		if diff := gocmp.Diff(want, got, cmpOpts...); diff != "" {
			t.Errorf("QueryAudit(user=%q tool=%q decision=%q since=%v limit=%d) (-want +got):\n%s",
				q.User, q.Tool, q.Decision, !q.Since.IsZero(), q.Limit, diff)
		}
	}
}

func testAuditOrder(t *testing.T, s store.Store) {
	at := baseTime
	r := func(i int, at time.Time) audit.Record { return auditRec(i, at) }
	appendAudit(t, s, []audit.Record{r(7, at.Add(time.Millisecond))})
	appendAudit(t, s, []audit.Record{r(1, at), r(2, at), r(3, at)})
	// Different sub-millisecond parts are the same stored time.
	appendAudit(t, s, []audit.Record{r(4, at.Add(100*time.Microsecond)), r(5, at.Add(-at.Sub(at.Truncate(time.Millisecond))))})
	appendAudit(t, s, []audit.Record{r(6, at.Add(-time.Millisecond))})
	var got []string
	for _, rec := range queryAll(t, s, store.AuditQuery{}) {
		got = append(got, rec.RequestID)
	}
	want := []string{"req-000007", "req-000005", "req-000004", "req-000003", "req-000002", "req-000001", "req-000006"}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}

func testAuditSince(t *testing.T, s store.Store) {
	at := baseTime.Truncate(time.Millisecond)
	appendAudit(t, s, []audit.Record{
		auditRec(1, at.Add(-time.Millisecond)),
		auditRec(2, at),
		auditRec(3, at.Add(time.Millisecond)),
	})
	for _, tc := range []struct {
		since time.Time
		want  []string
	}{
		{at, []string{"req-000003", "req-000002"}},
		{at.Add(999 * time.Microsecond), []string{"req-000003", "req-000002"}}, // millisecond precision
		{at.Add(time.Millisecond).In(time.FixedZone("X", -7*3600)), []string{"req-000003"}},
		{at.Add(-time.Hour), []string{"req-000003", "req-000002", "req-000001"}},
	} {
		var got []string
		for _, rec := range queryAll(t, s, store.AuditQuery{Since: tc.since}) {
			got = append(got, rec.RequestID)
		}
		if diff := gocmp.Diff(tc.want, got, cmpOpts...); diff != "" {
			t.Errorf("Since %v (-want +got):\n%s", tc.since, diff)
		}
	}
}

func testAuditLimit(t *testing.T, s store.Store) {
	var recs []audit.Record
	for i := range 150 {
		recs = append(recs, auditRec(i, baseTime.Add(time.Duration(i)*time.Second)))
	}
	appendAudit(t, s, recs)
	newest := reversed(normalized(recs))
	for _, tc := range []struct {
		limit int
		want  []audit.Record
	}{
		{0, newest[:store.DefaultAuditLimit]},
		{1, newest[:1]},
		{7, newest[:7]},
		{150, newest},
		{151, newest},
	} {
		got, err := s.QueryAudit(t.Context(), store.AuditQuery{Limit: tc.limit})
		if err != nil {
			t.Fatalf("QueryAudit(Limit %d): %v", tc.limit, err)
		}
		if diff := gocmp.Diff(tc.want, got, cmpOpts...); diff != "" {
			t.Errorf("Limit %d (-want +got):\n%s", tc.limit, diff)
		}
	}
	if _, err := s.QueryAudit(t.Context(), store.AuditQuery{Limit: -1}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("QueryAudit(Limit -1) = %v, want ErrInvalid", err)
	}
}

func testAuditLimitCap(t *testing.T, s store.Store) {
	const n = store.MaxAuditLimit + 50
	recs := make([]audit.Record, n)
	for i := range recs {
		recs[i] = auditRec(i, baseTime.Add(time.Duration(i)*time.Millisecond))
	}
	appendAudit(t, s, recs) // one call, many statements, one transaction
	for _, limit := range []int{store.MaxAuditLimit + 1, 1 << 30} {
		got, err := s.QueryAudit(t.Context(), store.AuditQuery{Limit: limit})
		if err != nil {
			t.Fatalf("QueryAudit(Limit %d): %v", limit, err)
		}
		if len(got) != store.MaxAuditLimit {
			t.Errorf("QueryAudit(Limit %d) = %d records, want the cap %d", limit, len(got), store.MaxAuditLimit)
			continue
		}
		if first, last := got[0].RequestID, got[len(got)-1].RequestID; first != recs[n-1].RequestID || last != recs[n-store.MaxAuditLimit].RequestID {
			t.Errorf("QueryAudit(Limit %d) runs from %s to %s, want the newest, %s to %s",
				limit, first, last, recs[n-1].RequestID, recs[n-store.MaxAuditLimit].RequestID)
		}
	}
}

func testAuditText(t *testing.T, s store.Store) {
	long := strings.Repeat("ünïcødé reason, 長い理由; ", 4096) // ~120 KB
	in := []audit.Record{
		auditRec(1, baseTime),
		auditRec(2, baseTime),
		auditRec(3, baseTime),
		auditRec(4, baseTime),
	}
	in[0].Reason = "拒否: ジョブ 'ビルド/テスト' 🚫 — עברית — e\u0301 — \u202eRTL\u202c — tab\tnewline\n"
	in[0].Resource = "équipe/アプリ/🚀"
	in[1].Reason = long
	in[2].Reason = "bad\x00byte\xff"
	in[2].User = "mal\xffory"
	in[3].Reason = `quotes ' " \ ; -- DROP TABLE audit_records; %_`

	appendAudit(t, s, in)
	want := normalized(in)
	want[2].Reason = "bad\uFFFDbyte\uFFFD"
	want[2].User = "mal\uFFFDory"
	if diff := gocmp.Diff(reversed(want), queryAll(t, s, store.AuditQuery{}), cmpOpts...); diff != "" {
		t.Errorf("QueryAudit (-want +got):\n%.2000s", diff)
	}
	// A filter with the same broken bytes finds the cleaned record.
	got := queryAll(t, s, store.AuditQuery{User: "mal\xffory"})
	if len(got) != 1 || got[0].RequestID != in[2].RequestID {
		t.Errorf("QueryAudit(User with invalid UTF-8) = %d records, want the one stored with it", len(got))
	}
}

func testAuditBigBatch(t *testing.T, s store.Store) {
	recs := make([]audit.Record, 1000)
	for i := range recs {
		recs[i] = auditRec(i, baseTime) // one time: the order is the insertion order
	}
	appendAudit(t, s, recs)
	if diff := gocmp.Diff(reversed(normalized(recs)), queryAll(t, s, store.AuditQuery{}), cmpOpts...); diff != "" {
		t.Errorf("QueryAudit (-want +got):\n%.3000s", diff)
	}
}

// testAuditConcurrent is 50 writers at once, as the audit writers of as many
// replicas would be, with readers running alongside.
func testAuditConcurrent(t *testing.T, s store.Store) {
	const writers, batches, perBatch = 50, 4, 5
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var readers sync.WaitGroup
	for range 3 {
		readers.Go(func() {
			for ctx.Err() == nil {
				if _, err := s.QueryAudit(ctx, store.AuditQuery{Tool: "get_job"}); err != nil && ctx.Err() == nil {
					t.Errorf("QueryAudit while appending: %v", err)
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for b := range batches {
				recs := make([]audit.Record, perBatch)
				for i := range recs {
					recs[i] = auditRec((w*batches+b)*perBatch+i, baseTime.Add(time.Duration(b)*time.Millisecond))
				}
				if err := s.AppendAudit(t.Context(), recs); err != nil {
					t.Errorf("writer %d: AppendAudit: %v", w, err)
					return
				}
			}
		})
	}
	wg.Wait()
	cancel()
	readers.Wait()

	got := queryAll(t, s, store.AuditQuery{})
	if want := writers * batches * perBatch; len(got) != want {
		t.Errorf("%d records stored, want %d", len(got), want)
	}
	seen := map[string]int{}
	for _, r := range got {
		seen[r.RequestID]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("record %s stored %d times", id, n)
		}
	}
}
