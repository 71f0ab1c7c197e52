package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// TestServe_MetricsTheDashboardAndAlertsUse scrapes a running butler serve
// and checks that every metric deploy/observability's Grafana dashboard
// and alert rules name is one it serves, and that the readiness and audit
// metrics say what the process is doing.
func TestServe_MetricsTheDashboardAndAlertsUse(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d", resp.StatusCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// One of each: an authentication failure, a tool call, a Jenkins
	// request (health asks Jenkins), an audit record stored.
	rawMCP(t, s.url, map[string]string{"Authorization": "Bearer expired"}, initializeBody)
	cs, err := connectHTTP(t, s.url, e.token(t, "alice"))
	if err != nil {
		t.Fatal(err)
	}
	callTool(t, cs, "get_current_time_info", nil)
	callTool(t, cs, "health", nil)

	var families map[string]*dtoFamily
	for {
		families = scrapeFamilies(t, s.url+"/metrics")
		if v := gaugeOrCounter(families, "butler_audit_records_stored_total", nil); v >= 3 {
			break
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("butler_audit_records_stored_total never reached 3 (one auth failure, two calls)")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, check := range []string{"idp", "store", "vault_key"} {
		if v := gaugeOrCounter(families, "butler_ready", map[string]string{"check": check}); v != 1 {
			t.Errorf(`butler_ready{check=%q} = %v, want 1 on a ready server`, check, v)
		}
	}
	if v := gaugeOrCounter(families, "butler_audit_write_errors_total", nil); v != 0 {
		t.Errorf("butler_audit_write_errors_total = %v, want 0", v)
	}
	if _, ok := families["butler_build_info"]; !ok {
		t.Error("no butler_build_info")
	}

	ref := regexp.MustCompile(`\b(?:butler|go|process)_[a-z0-9_]+\b`)
	for _, f := range []string{"../deploy/observability/grafana-dashboard.json", "../deploy/observability/butler-alerts.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if strings.HasSuffix(f, ".json") {
			var v any
			if err := json.Unmarshal(data, &v); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
		for _, name := range ref.FindAllString(text, -1) {
			base := name
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, suf); ok && families[b] != nil && families[b].typ == "HISTOGRAM" {
					base = b
				}
			}
			if families[base] == nil {
				t.Errorf("%s uses %s, which butler serve's /metrics does not serve", f, name)
			}
		}
	}
}

type dtoFamily struct {
	typ     string
	samples []sample
}

type sample struct {
	labels map[string]string
	value  float64
}

func scrapeFamilies(t *testing.T, url string) map[string]*dtoFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics is not the Prometheus text format: %v", err)
	}
	out := map[string]*dtoFamily{}
	for name, mf := range mfs {
		f := &dtoFamily{typ: mf.GetType().String()}
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range m.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case m.GetGauge() != nil:
				s.value = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				s.value = m.GetCounter().GetValue()
			}
			f.samples = append(f.samples, s)
		}
		out[name] = f
	}
	return out
}

// gaugeOrCounter returns the value of the series of name with labels
// (nil: the only series), or -1.
func gaugeOrCounter(fs map[string]*dtoFamily, name string, labels map[string]string) float64 {
	f := fs[name]
	if f == nil {
		return -1
	}
	for _, s := range f.samples {
		match := true
		for k, v := range labels {
			if s.labels[k] != v {
				match = false
			}
		}
		if match {
			return s.value
		}
	}
	return -1
}
