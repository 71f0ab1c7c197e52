package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/butler-mcp/butler/internal/ratelimit"
)

// One call every two seconds, two at once; the clock is fixed so the output
// is exact.
func ExampleMemory() {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	l := ratelimit.NewMemory(0.5, 2, &ratelimit.MemoryOptions{Now: func() time.Time { return now }})

	for range 3 {
		d, _ := l.Allow(ctx, "alice")
		fmt.Printf("allowed=%v remaining=%d retry_after=%v\n", d.Allowed, d.Remaining, d.RetryAfter)
	}
	now = now.Add(2 * time.Second)
	d, _ := l.Allow(ctx, "alice")
	fmt.Printf("2s later: allowed=%v remaining=%d\n", d.Allowed, d.Remaining)
	// Output:
	// allowed=true remaining=1 retry_after=0s
	// allowed=true remaining=0 retry_after=0s
	// allowed=false remaining=0 retry_after=2s
	// 2s later: allowed=true remaining=0
}

// A denied call becomes the rate_limited tool error with retry_after_seconds.
func ExampleDecision_RetryAfterSeconds() {
	d := ratelimit.Decision{RetryAfter: 1200 * time.Millisecond}
	fmt.Println(d.RetryAfterSeconds())
	// Output: 2
}
