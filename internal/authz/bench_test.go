package authz

import (
	"context"
	"testing"
)

// BenchmarkDecide measures one job-targeted trigger decision (all three
// checks, the Cedar step included) under the default and the example
// policy.
func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		name string
		a    *Authorizer
	}{
		{"default", New(nil)},
		{"example", exampleAuthz(b)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			req := Request{Principal: user("alice", "developers"), Tool: "trigger_job",
				Job: "frontend/web/deploy", Parameters: map[string]any{"ENV": "staging", "DRY_RUN": true}}
			if d := bc.a.Decide(context.Background(), req); !d.Allow {
				b.Fatalf("Decide = %+v", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				bc.a.Decide(context.Background(), req)
			}
		})
	}
}

// BenchmarkVisible measures tools/list filtering: every tool for one user.
func BenchmarkVisible(b *testing.B) {
	a := exampleAuthz(b)
	p := user("alice", "developers")
	names := toolNames()
	b.ReportAllocs()
	for b.Loop() {
		for _, t := range names {
			a.Visible(context.Background(), p, t)
		}
	}
}
