package tools_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/butler-mcp/butler/internal/jenkins"
)

// BenchmarkSearchBuildLog searches a 100 MB console served by the
// simulator (generated, not stored) through the search_build_log tool, over
// MCP, HTTP and the Jenkins client: literal and other patterns that scan
// the whole log. MB/s is log bytes scanned per second; peak-MB is the most
// heap in use during the run above the idle heap. The baselines, on the
// same log in the same run, are reading the log's HTTP stream without
// matching, and bytes.Count of the pattern over the log in memory.
func BenchmarkSearchBuildLog(b *testing.B) {
	console := ordinaryLog(100) // 100 MiB of ~90-byte lines, "Finished: SUCCESS" last
	size := console.Size()
	sim := logSim(b, console)
	cs := searchSession(b, sim, &jenkins.Options{MaxScanBytes: 128 << 20})
	run := func(b *testing.B, f func(b *testing.B)) {
		b.SetBytes(size)
		h, idle := startHeapSampler()
		b.ResetTimer()
		for range b.N {
			f(b)
		}
		b.StopTimer()
		b.ReportMetric(float64(h.Stop()-idle)/1e6, "peak-MB")
	}
	for _, tc := range []struct {
		name string
		args map[string]any
	}{
		{"literal", map[string]any{"pattern": "Finished: SUCCESS"}},
		{"literal_context10", map[string]any{"pattern": "Finished: SUCCESS", "context_lines": 10}},
		{"regex", map[string]any{"pattern": `Finished: (SUCCESS|FAILURE)`, "regex": true}},
		{"ignore_case", map[string]any{"pattern": "finished: success", "ignore_case": true}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			args := map[string]any{"job": "big", "build": 1}
			for k, v := range tc.args {
				args[k] = v
			}
			run(b, func(b *testing.B) {
				r := search(b, cs, args)
				if r.isError || len(r.out.Matches) != 1 || r.out.Truncated {
					b.Fatalf("search: error %+v, %d matches, truncated %v", r.out.Error, len(r.out.Matches), r.out.Truncated)
				}
			})
		})
	}
	// What the search reads: consoleText.
	b.Run("baseline_read_stream", func(b *testing.B) {
		hs := httptest.NewServer(sim)
		defer hs.Close()
		run(b, func(b *testing.B) {
			req, _ := http.NewRequest("GET", hs.URL+"/job/big/1/consoleText", nil)
			req.SetBasicAuth("admin", "admin-token")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				b.Fatalf("read %d bytes (%v), want %d", n, err, size)
			}
		})
	})
	b.Run("baseline_bytes_count_in_memory", func(b *testing.B) {
		log := make([]byte, size)
		if _, err := console.ReadAt(log, 0); err != nil {
			b.Fatal(err)
		}
		needle := []byte("Finished: SUCCESS")
		run(b, func(b *testing.B) {
			if n := bytes.Count(log, needle); n != 1 {
				b.Fatalf("count %d", n)
			}
		})
	})
}
