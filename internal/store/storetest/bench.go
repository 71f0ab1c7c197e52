package storetest

import (
	"fmt"
	"testing"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/store"
)

// BenchmarkAppendAudit measures AppendAudit with batches of 1, 64 and 1024
// records, each batch one call, on a store from open (which the benchmark
// closes). It reports records/s besides the time per batch.
func BenchmarkAppendAudit(b *testing.B, open func(b *testing.B) store.Store) {
	for _, size := range []int{1, 64, 1024} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			s := open(b)
			b.Cleanup(func() { s.Close() })
			batch := make([]audit.Record, size)
			for i := range batch {
				batch[i] = auditRec(i, baseTime)
				batch[i].Reason = "policy: default-permit"
			}
			n := 0
			for b.Loop() {
				if err := s.AppendAudit(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
				n += size
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
