// Package metrics holds Butler's Prometheus metrics. They live in a
// registry of their own (no global state), served at /metrics.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/butler-mcp/butler/internal/catalog"
)

// Metrics are the collectors Butler updates.
type Metrics struct {
	reg          *prometheus.Registry
	toolCalls    *prometheus.CounterVec
	toolLatency  *prometheus.HistogramVec
	authFailures *prometheus.CounterVec
	jenkins      *prometheus.HistogramVec
	httpRequests *prometheus.CounterVec
	ready        *readyCollector // WatchReady's (ops.go)
}

// New returns Butler's metrics in a new registry, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "butler_tool_calls_total",
			Help: "Tool calls by tool, outcome (allow, deny, error) and error code.",
		}, []string{"tool", "outcome", "code"}),
		toolLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "butler_tool_call_duration_seconds",
			Help:    "Tool call latency by tool and outcome.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 12),
		}, []string{"tool", "outcome"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "butler_auth_failures_total",
			Help: "Requests refused by authentication, by reason (missing_token, exp, aud, signature, ...).",
		}, []string{"reason"}),
		jenkins: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "butler_jenkins_request_duration_seconds",
			Help:    "Requests to Jenkins by method and HTTP status (0: no answer).",
			Buckets: prometheus.ExponentialBuckets(0.002, 2.5, 12),
		}, []string{"method", "status"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "butler_http_requests_total",
			Help: "HTTP requests by route and status.",
		}, []string{"route", "status"}),
	}
	m.reg.MustRegister(m.toolCalls, m.toolLatency, m.authFailures, m.jenkins, m.httpRequests,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Registry returns the registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveTool records one tool call. The tool label is a tool of the
// catalog or catalog.Unknown, whatever name a client sent, so the number of
// series is bounded by the catalog.
func (m *Metrics) ObserveTool(tool, outcome, code string, d time.Duration) {
	tool = catalog.Label(tool)
	m.toolCalls.WithLabelValues(tool, outcome, code).Inc()
	m.toolLatency.WithLabelValues(tool, outcome).Observe(d.Seconds())
}

// AuthFailure counts a request refused by authentication.
func (m *Metrics) AuthFailure(reason string) {
	m.authFailures.WithLabelValues(reason).Inc()
}

// ObserveJenkins records one request to Jenkins.
func (m *Metrics) ObserveJenkins(method string, status int, d time.Duration) {
	m.jenkins.WithLabelValues(method, strconv.Itoa(status)).Observe(d.Seconds())
}

// ObserveHTTP counts one HTTP request to Butler.
func (m *Metrics) ObserveHTTP(route string, status int) {
	m.httpRequests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}
