package metrics

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestWatchReady_ReportsEachCheckAndSharesOneEvaluation(t *testing.T) {
	t.Parallel()
	m := New()
	var storeCalls atomic.Int32
	storeDown := atomic.Bool{}
	storeDown.Store(true)
	now := time.Unix(1000, 0)
	var nowMu sync.Mutex
	m.WatchReady([]Check{
		{Name: "idp", Check: func(context.Context) error { return nil }},
		{Name: "store", Check: func(context.Context) error {
			storeCalls.Add(1)
			if storeDown.Load() {
				return errors.New("store down")
			}
			return nil
		}},
	})
	rc := findReady(t, m)
	rc.now = func() time.Time { nowMu.Lock(); defer nowMu.Unlock(); return now }

	want := `butler_ready{check="idp"} 1; butler_ready{check="store"} 0`
	// Many concurrent scrapes: one evaluation.
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got := series(t, m, "butler_ready"); got != want {
				t.Errorf("got %s, want %s", got, want)
			}
		})
	}
	wg.Wait()
	if n := storeCalls.Load(); n != 1 {
		t.Errorf("20 scrapes within %v checked the store %d times, want 1", readyEvery, n)
	}
	storeDown.Store(false)
	nowMu.Lock()
	now = now.Add(readyEvery)
	nowMu.Unlock()
	want = `butler_ready{check="idp"} 1; butler_ready{check="store"} 1`
	if got := series(t, m, "butler_ready"); got != want {
		t.Errorf("after %v: got %s, want %s", readyEvery, got, want)
	}
}

func TestWatchReady_ACheckThatHangsIsNotReady(t *testing.T) {
	t.Parallel()
	m := New()
	m.WatchReady([]Check{{Name: "store", Check: func(ctx context.Context) error { <-ctx.Done(); return nil }}})
	start := time.Now()
	if got, want := series(t, m, "butler_ready"), `butler_ready{check="store"} 0`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if d := time.Since(start); d > ReadyTimeout+time.Second {
		t.Errorf("the scrape took %v, want about ReadyTimeout (%v)", d, ReadyTimeout)
	}
}

func TestWatchAudit_ExportsTheWritersStats(t *testing.T) {
	t.Parallel()
	m := New()
	var mu sync.Mutex
	s := AuditStats{Queued: 7, SpoolBytes: 4096, Blocked: 1, Stored: 100, WriteErrors: 3}
	m.WatchAudit(func() AuditStats { mu.Lock(); defer mu.Unlock(); return s })
	for name, want := range map[string]float64{"butler_audit_queued_records": 7, "butler_audit_spool_bytes": 4096,
		"butler_audit_blocked_calls": 1, "butler_audit_records_stored_total": 100, "butler_audit_write_errors_total": 3} {
		if v := gathered(t, m, name); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	mu.Lock()
	s.Queued, s.WriteErrors = 0, 4
	mu.Unlock()
	if v := gathered(t, m, "butler_audit_queued_records"); v != 0 {
		t.Errorf("queued after the backlog cleared = %v, want 0 (read at scrape time)", v)
	}
	if v := gathered(t, m, "butler_audit_write_errors_total"); v != 4 {
		t.Errorf("write errors = %v, want 4", v)
	}
}

func TestSetBuildInfo(t *testing.T) {
	t.Parallel()
	m := New()
	m.SetBuildInfo("v1.2.3", "abc123", "go1.26.8")
	if got, want := series(t, m, "butler_build_info"), `butler_build_info{commit="abc123",goversion="go1.26.8",version="v1.2.3"} 1`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}

// findReady returns the ready collector WatchReady registered, to inject
// its clock.
func findReady(t *testing.T, m *Metrics) *readyCollector {
	t.Helper()
	if m.ready == nil {
		t.Fatal("WatchReady registered no collector")
	}
	return m.ready
}

func gathered(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return value(mf.GetMetric()[0])
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// series renders the series of one metric as `name{l="v",...} value`
// joined by "; ", in the registry's order (labels and series sorted).
func series(t *testing.T, m *Metrics, name string) string {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out = append(out, fmt.Sprintf("%s{%s} %v", name, strings.Join(labels, ","), value(mt)))
		}
	}
	return strings.Join(out, "; ")
}

func value(mt *dto.Metric) float64 {
	if c := mt.GetCounter(); c != nil {
		return c.GetValue()
	}
	return mt.GetGauge().GetValue()
}
