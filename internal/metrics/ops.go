package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The metrics of this file describe Butler's own state rather than the
// requests it serves: the build, the readiness of what it depends on, and
// the audit writer's backlog. They are read when Prometheus scrapes, so
// they cost nothing between scrapes and can never be stale.

// ReadyTimeout bounds how long a scrape waits for one readiness check.
// A check that takes longer counts as not ready.
const ReadyTimeout = 2 * time.Second

// Check is one readiness condition, as /readyz evaluates it: a fixed name
// and a function that returns nil while the dependency is usable.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
}

// AuditStats is the audit writer's backlog and progress.
type AuditStats struct {
	Queued      int    // records waiting in memory, the batch being written included
	SpoolBytes  int64  // bytes of the spool file not yet stored
	Blocked     int    // calls waiting for room for their record
	Stored      uint64 // records stored since start
	WriteErrors uint64 // failed attempts to store a batch
}

// SetBuildInfo exports butler_build_info{version,commit,goversion} = 1, so
// dashboards can show which build each replica runs. Call it once.
func (m *Metrics) SetBuildInfo(version, commit, goVersion string) {
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "butler_build_info",
		Help: "Always 1; the labels say which Butler build this process runs.",
	}, []string{"version", "commit", "goversion"})
	g.WithLabelValues(version, commit, goVersion).Set(1)
	m.reg.MustRegister(g)
}

// WatchReady exports butler_ready{check} (1 ready, 0 not), evaluating
// checks at each scrape, each within ReadyTimeout. The check names are
// fixed by the caller (idp, store, vault_key), so the series are bounded.
// Call it once.
func (m *Metrics) WatchReady(checks []Check) {
	m.ready = &readyCollector{
		checks: append([]Check(nil), checks...),
		desc: prometheus.NewDesc("butler_ready",
			"1 when a dependency /readyz checks is usable (idp: the IdP's keys or introspection endpoint; store; vault_key), else 0.",
			[]string{"check"}, nil),
	}
	m.reg.MustRegister(m.ready)
}

// readyCollector runs the readiness checks, concurrently, when scraped.
// /metrics may be served without authentication on the public listener,
// so the results are kept for readyEvery and concurrent scrapes share one
// evaluation: however often anyone scrapes, the store sees at most one
// check per readyEvery from here.
type readyCollector struct {
	checks []Check
	desc   *prometheus.Desc
	now    func() time.Time

	mu   sync.Mutex // held while evaluating, so scrapes queue for its result
	at   time.Time
	vals []float64
}

// readyEvery is how long one evaluation of the checks is reused.
const readyEvery = 5 * time.Second

func (c *readyCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *readyCollector) Collect(ch chan<- prometheus.Metric) {
	for i, v := range c.values() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, c.checks[i].Name)
	}
}

// values returns the checks' results, evaluating them again when the last
// evaluation is older than readyEvery.
func (c *readyCollector) values() []float64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now
	if c.now != nil {
		now = c.now
	}
	if c.vals != nil && now().Sub(c.at) < readyEvery {
		return c.vals
	}
	ctx, cancel := context.WithTimeout(context.Background(), ReadyTimeout)
	defer cancel()
	vals := make([]float64, len(c.checks))
	var wg sync.WaitGroup
	for i, chk := range c.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if chk.Check(ctx) == nil && ctx.Err() == nil {
				vals[i] = 1
			}
		}()
	}
	wg.Wait()
	c.vals, c.at = vals, now()
	return vals
}

// WatchAudit exports the audit writer's backlog (butler_audit_queued_records,
// butler_audit_spool_bytes, butler_audit_blocked_calls) and progress
// (butler_audit_records_stored_total, butler_audit_write_errors_total),
// read from stats at each scrape. Call it once.
func (m *Metrics) WatchAudit(stats func() AuditStats) {
	c := &auditCollector{stats: stats}
	c.queued = prometheus.NewDesc("butler_audit_queued_records",
		"Audit records waiting in memory to be stored (audit.buffer bounds them), the batch being written included.", nil, nil)
	c.spool = prometheus.NewDesc("butler_audit_spool_bytes",
		"Bytes of audit records in the spool file not yet stored: the store fell behind by more than audit.buffer records.", nil, nil)
	c.blocked = prometheus.NewDesc("butler_audit_blocked_calls",
		"Tool calls waiting because neither memory nor the spool can take their audit record.", nil, nil)
	c.stored = prometheus.NewDesc("butler_audit_records_stored_total",
		"Audit records stored since the process started.", nil, nil)
	c.errors = prometheus.NewDesc("butler_audit_write_errors_total",
		"Failed attempts to store a batch of audit records (each retry counts).", nil, nil)
	m.reg.MustRegister(c)
}

type auditCollector struct {
	stats                                  func() AuditStats
	queued, spool, blocked, stored, errors *prometheus.Desc
}

func (c *auditCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.queued, c.spool, c.blocked, c.stored, c.errors} {
		ch <- d
	}
}

func (c *auditCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(c.queued, prometheus.GaugeValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(c.spool, prometheus.GaugeValue, float64(s.SpoolBytes))
	ch <- prometheus.MustNewConstMetric(c.blocked, prometheus.GaugeValue, float64(s.Blocked))
	ch <- prometheus.MustNewConstMetric(c.stored, prometheus.CounterValue, float64(s.Stored))
	ch <- prometheus.MustNewConstMetric(c.errors, prometheus.CounterValue, float64(s.WriteErrors))
}
