package app_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/config"
)

// BenchmarkToolCallTracing measures tools/call get_job (a read that calls
// Jenkins as the user: a tool span, a policy span, a credential span and
// one Jenkins request span when traced) through the whole HTTP stack with
// tracing off (the default: a no-op provider), on with every call sampled
// and exported over OTLP/HTTP to a collector on loopback, and on with
// sample_ratio 0 (spans started but not recorded), in the same run.
// Compare ns/op and allocs/op of the variants.
func BenchmarkToolCallTracing(b *testing.B) {
	params := &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}}
	ballast := make([]byte, 64<<20) // equal GC pacing in every variant (BenchmarkToolCallAuthentication)
	defer runtime.KeepAlive(ballast)
	var exported atomic.Int64
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exported.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(collector.Close)
	for _, v := range []struct {
		name   string
		traces func(*config.Traces)
	}{
		{"tracing_off", func(*config.Traces) {}},
		{"tracing_on_sampled", func(t *config.Traces) { t.OTLPEndpoint = collector.URL }},
		{"tracing_on_ratio_0", func(t *config.Traces) { t.OTLPEndpoint, t.SampleRatio = collector.URL, 0 }},
	} {
		b.Run(v.name, func(b *testing.B) {
			s := newStack(b, stackOpts{fixedToken: true, configure: func(c *config.Config) { v.traces(&c.Telemetry.Traces) }})
			cs := s.client(b, func() string { return benchToken })
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cs.CallTool(context.Background(), params)
					if err != nil || res.IsError {
						b.Errorf("call: %v %v", err, res)
						return
					}
				}
			})
		})
	}
	b.Logf("OTLP bytes received by the collector: %d", exported.Load())
}

// BenchmarkToolCallTracingInterleaved calls get_job once on each of three
// stacks per iteration (tracing off, on and sampled, on with sample_ratio
// 0), one call at a time, and reports each variant's mean time per call
// and the ratios to tracing off. Interleaving the variants exposes them to
// the same load on a shared machine, which running them one after the
// other does not.
func BenchmarkToolCallTracingInterleaved(b *testing.B) {
	params := &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}}
	ballast := make([]byte, 64<<20)
	defer runtime.KeepAlive(ballast)
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(collector.Close)
	variants := []struct {
		name   string
		traces func(*config.Traces)
	}{
		{"off", func(*config.Traces) {}},
		{"on_sampled", func(t *config.Traces) { t.OTLPEndpoint = collector.URL }},
		{"on_ratio_0", func(t *config.Traces) { t.OTLPEndpoint, t.SampleRatio = collector.URL, 0 }},
	}
	sessions := make([]*mcp.ClientSession, len(variants))
	for i, v := range variants {
		s := newStack(b, stackOpts{fixedToken: true, configure: func(c *config.Config) { v.traces(&c.Telemetry.Traces) }})
		sessions[i] = s.client(b, func() string { return benchToken })
	}
	total := make([]time.Duration, len(variants))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range variants {
			// Rotate the order so that no variant always runs first.
			k := (i + j) % len(variants)
			start := time.Now()
			res, err := sessions[k].CallTool(context.Background(), params)
			total[k] += time.Since(start)
			if err != nil || res.IsError {
				b.Fatalf("%s: %v %v", variants[k].name, err, res)
			}
		}
	}
	for k, v := range variants {
		b.ReportMetric(float64(total[k].Nanoseconds())/float64(b.N), "ns/call_"+v.name)
		if k > 0 {
			b.ReportMetric(float64(total[k])/float64(total[0]), "ratio_"+v.name+"/off")
		}
	}
}
