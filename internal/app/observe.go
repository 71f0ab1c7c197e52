package app

import (
	"runtime"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/metrics"
	"github.com/butler-mcp/butler/internal/server"
)

// watch exports the metrics about Butler's own state that dashboards and
// alerts need besides the per-request ones: which build runs, whether each
// dependency /readyz checks is usable (the IdP's keys above all), and how
// far the audit writer is behind.
func (app *App) watch(m *metrics.Metrics, o Options, verifier server.TokenVerifier, ready []server.ReadyCheck) {
	commit := o.Commit
	if commit == "" {
		commit = "unknown"
	}
	m.SetBuildInfo(o.Version, commit, runtime.Version())
	var checks []metrics.Check
	if verifier != nil {
		checks = append(checks, metrics.Check{Name: "idp", Check: verifier.Ready})
	}
	for _, r := range ready {
		checks = append(checks, metrics.Check{Name: r.Name, Check: r.Check})
	}
	m.WatchReady(checks)
	if app.audit != nil {
		w := app.audit
		m.WatchAudit(func() metrics.AuditStats { return auditStats(w.Stats()) })
	}
}

func auditStats(s audit.Stats) metrics.AuditStats {
	return metrics.AuditStats{Queued: s.Queued, SpoolBytes: s.SpoolBytes, Blocked: s.Blocked, Stored: s.Stored, WriteErrors: s.WriteErrors}
}
