package telemetry

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"
)

const validTP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func TestExtract(t *testing.T) {
	t.Parallel()
	other := "00-11111111111111111111111111111111-2222222222222222-01"
	for _, tc := range []struct {
		name   string
		meta   map[string]any
		header http.Header
		want   string // trace id, "" for none
	}{
		{"none", nil, nil, ""},
		{"header", nil, http.Header{"Traceparent": {validTP}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"meta", map[string]any{"traceparent": validTP}, nil, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"meta wins", map[string]any{"traceparent": validTP}, http.Header{"Traceparent": {other}}, "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"meta not a string", map[string]any{"traceparent": 42}, http.Header{"Traceparent": {other}}, "11111111111111111111111111111111"},
		{"malformed", map[string]any{"traceparent": "00-zz-yy-01"}, nil, ""},
		{"zero trace id", map[string]any{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, nil, ""},
		{"too long", map[string]any{"traceparent": validTP + strings.Repeat("-ab", 100)}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := trace.SpanContextFromContext(Extract(context.Background(), tc.meta, tc.header))
			got := ""
			if sc.IsValid() {
				got = sc.TraceID().String()
				if !sc.IsRemote() {
					t.Error("an extracted span context is not remote")
				}
			}
			if got != tc.want {
				t.Errorf("trace id %q; want %q", got, tc.want)
			}
		})
	}
}

func TestExtract_IgnoresTracestate(t *testing.T) {
	t.Parallel()
	h := http.Header{"Traceparent": {validTP}, "Tracestate": {"vendor=secret-ish"}}
	sc := trace.SpanContextFromContext(Extract(context.Background(), map[string]any{"tracestate": "a=b"}, h))
	if !sc.IsValid() || sc.TraceState().Len() != 0 {
		t.Errorf("span context %v carries a tracestate", sc)
	}
}

func TestTraceparent_RoundTrips(t *testing.T) {
	t.Parallel()
	if tp := Traceparent(context.Background()); tp != "" {
		t.Errorf("no span: %q", tp)
	}
	ctx := Extract(context.Background(), map[string]any{"traceparent": validTP}, nil)
	if tp := Traceparent(ctx); tp != validTP {
		t.Errorf("Traceparent = %q; want %q", tp, validTP)
	}
}

func TestClip(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 5, "abc"}, {"abcdef", 3, "abc"}, {"aé", 2, "a"}, {"aé", 3, "aé"}, {"€€", 4, "€"},
	} {
		if got := Clip(tc.in, tc.n); got != tc.want {
			t.Errorf("Clip(%q, %d) = %q; want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

// FuzzExtract: whatever a caller sends as traceparent, Extract does not
// panic, keeps no tracestate, and a trace context it accepts is one it
// can send on unchanged in its W3C version-00 form.
func FuzzExtract(f *testing.F) {
	for _, s := range []string{validTP, "", "00-", "ff-" + validTP[3:], "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01", strings.Repeat("0", 300)} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, tp string, inMeta bool) {
		var ctx context.Context
		if inMeta {
			ctx = Extract(context.Background(), map[string]any{"traceparent": tp}, nil)
		} else {
			ctx = Extract(context.Background(), nil, http.Header{"Traceparent": {tp}})
		}
		sc := trace.SpanContextFromContext(ctx)
		if !sc.IsValid() {
			return
		}
		if len(tp) > maxTraceparent {
			t.Fatalf("accepted a traceparent of %d bytes", len(tp))
		}
		if sc.TraceState().Len() != 0 {
			t.Fatal("kept a tracestate")
		}
		out := Traceparent(ctx)
		if len(out) != 55 || !utf8.ValidString(out) || !strings.HasPrefix(out, "00-"+sc.TraceID().String()+"-"+sc.SpanID().String()+"-") {
			t.Fatalf("accepted %q, sends %q", tp, out)
		}
	})
}
