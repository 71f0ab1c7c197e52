package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/butler-mcp/butler/internal/metrics"
)

const (
	dashboardFile = "observability/grafana-dashboard.json"
	rulesFile     = "observability/butler-alerts.yaml"
	ruleTestsFile = "observability/butler-alerts_test.yaml"
)

// exported returns the metric families Butler's /metrics serves: a registry
// built as app.New builds it, with one observation of each kind so that
// every labelled family has a series.
func exported(t *testing.T) map[string]string {
	t.Helper()
	m := metrics.New()
	m.SetBuildInfo("v1", "abc", "go1")
	m.WatchReady([]metrics.Check{{Name: "idp", Check: func(context.Context) error { return nil }},
		{Name: "store", Check: func(context.Context) error { return errors.New("down") }}})
	m.WatchAudit(func() metrics.AuditStats { return metrics.AuditStats{Queued: 1} })
	m.ObserveTool("get_build", "allow", "", time.Millisecond)
	m.AuthFailure("exp")
	m.ObserveJenkins("GET", 200, time.Millisecond)
	m.ObserveHTTP("/mcp", 200)
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{}
	for _, mf := range mfs {
		names[mf.GetName()] = mf.GetType().String()
	}
	return names
}

// metricRef matches a metric name in PromQL: Butler's, Go's and the
// process collector's.
var metricRef = regexp.MustCompile(`\b(?:butler|go|process)_[a-z0-9_]+\b`)

// family maps a series name to its family: a histogram's _bucket, _sum and
// _count belong to the histogram.
func family(name string, names map[string]string) string {
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suf); ok && names[base] == "HISTOGRAM" {
			return base
		}
	}
	return name
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Type    string `json:"type"`
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	data, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	var r ruleFile
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("%s: %v", rulesFile, err)
	}
	return r
}

// dashboardExprs returns every query of the dashboard (and its variables),
// with Grafana's variables replaced by what Prometheus would get.
func dashboardExprs(d dashboard) map[string]string {
	out := map[string]string{}
	r := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	for _, p := range d.Panels {
		for i, tg := range p.Targets {
			out[fmt.Sprintf("panel %q query %d", p.Title, i)] = r.Replace(tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Definition != "" {
			out["variable "+v.Name] = v.Definition
		}
	}
	return out
}

// TestObservability_EveryMetricUsedIsExported keeps the dashboard and the
// alert rules in step with /metrics: a renamed or removed metric fails
// here, not silently on an operator's screen.
func TestObservability_EveryMetricUsedIsExported(t *testing.T) {
	names := exported(t)
	check := func(where, expr string) {
		for _, ref := range metricRef.FindAllString(expr, -1) {
			if _, ok := names[family(ref, names)]; !ok {
				t.Errorf("%s uses %s, which Butler does not export", where, ref)
			}
		}
	}
	for where, expr := range dashboardExprs(loadDashboard(t)) {
		check("dashboard "+where, expr)
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			check("alert "+r.Alert, r.Expr)
			for k, a := range r.Annotations {
				check("alert "+r.Alert+" annotation "+k, a)
			}
		}
	}
}

// TestObservability_DashboardCoversEveryButlerMetric: each of Butler's own
// families is on the dashboard, and the ones an operator is woken for are
// in an alert.
func TestObservability_DashboardCoversEveryButlerMetric(t *testing.T) {
	names := exported(t)
	used := map[string]bool{}
	for _, expr := range dashboardExprs(loadDashboard(t)) {
		for _, ref := range metricRef.FindAllString(expr, -1) {
			used[family(ref, names)] = true
		}
	}
	alerted := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			for _, ref := range metricRef.FindAllString(r.Expr, -1) {
				alerted[family(ref, names)] = true
			}
		}
	}
	for name := range names {
		if strings.HasPrefix(name, "butler_") && !used[name] {
			t.Errorf("the dashboard has no panel for %s", name)
		}
	}
	for _, name := range []string{"butler_tool_calls_total", "butler_jenkins_request_duration_seconds", "butler_auth_failures_total",
		"butler_http_requests_total", "butler_ready", "butler_audit_write_errors_total", "butler_audit_queued_records",
		"butler_audit_spool_bytes", "butler_audit_blocked_calls"} {
		if !alerted[name] {
			t.Errorf("no alert rule watches %s", name)
		}
	}
}

// TestObservability_DashboardIsWellFormed checks what Grafana needs to
// import the JSON: a uid, a templated data source on every query, panels
// with titles, and no query that names a data source of one installation.
func TestObservability_DashboardIsWellFormed(t *testing.T) {
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("the dashboard has no uid or title")
	}
	if !slices.ContainsFunc(d.Templating.List, func(v struct {
		Name       string `json:"name"`
		Definition string `json:"definition"`
	}) bool {
		return v.Name == "datasource"
	}) {
		t.Error("the dashboard has no datasource variable")
	}
	queries := 0
	for _, p := range d.Panels {
		if p.Title == "" {
			t.Errorf("a %s panel without a title", p.Type)
		}
		for _, tg := range p.Targets {
			queries++
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q: query %q ignores the instance selector", p.Title, tg.Expr)
			}
		}
	}
	if queries < 20 {
		t.Errorf("%d queries, want the full dashboard", queries)
	}
	if strings.Contains(string(data), `"uid": "P`) {
		t.Error("the dashboard names a data source uid of one Grafana; use ${datasource}")
	}
	t.Logf("dashboard: %d panels, %d queries", len(d.Panels), queries)
}

// TestObservability_PromtoolChecksAndTestsTheRules runs promtool check
// rules on the alert rules and on every dashboard query (as recording
// rules, so each is parsed as PromQL), and promtool test rules on the
// rules' unit tests.
func TestObservability_PromtoolChecksAndTestsTheRules(t *testing.T) {
	promtool := goTool(t, "promtool")
	out := run(t, ".", nil, time.Minute, promtool, "check", "rules", rulesFile)
	t.Logf("%s", strings.TrimSpace(out))
	out = run(t, "observability", nil, 2*time.Minute, promtool, "test", "rules", filepath.Base(ruleTestsFile))
	t.Logf("%s", strings.TrimSpace(out))

	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	exprs := dashboardExprs(loadDashboard(t))
	keys := make([]string, 0, len(exprs))
	for k := range exprs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		expr := exprs[k]
		if strings.HasPrefix(expr, "label_values(") {
			continue // a Grafana function, not PromQL
		}
		rules = append(rules, rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: expr})
	}
	data, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runErr(".", nil, time.Minute, promtool, "check", "rules", path); err != nil {
		t.Errorf("a dashboard query is not valid PromQL: %v\n%s\n%s", err, out, data)
	}
}
