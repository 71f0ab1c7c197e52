package tools

import "time"

// The contract's answers carry times as RFC 3339 UTC strings.

// rfc3339Millis formats Jenkins's milliseconds since the epoch as RFC 3339
// UTC.
func rfc3339Millis(ms int64) string {
	return time.UnixMilli(ms).UTC().Format(time.RFC3339Nano)
}

// rfc3339Time formats t as RFC 3339 UTC, or nil when t is unknown (zero).
func rfc3339Time(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	return ptr(t.UTC().Format(time.RFC3339Nano))
}
