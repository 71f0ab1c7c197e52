package server

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseBody_ReadsMessagesExactly(t *testing.T) {
	t.Parallel()
	got, err := parseBody([]byte(`[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_job","arguments":{"job":"a/b"}}},
		{"jsonrpc":"2.0","method":"notifications/initialized"},
		{"jsonrpc":"2.0","id":2,"method":"tools/call","params":"x"}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []rpcMessage{{Method: "tools/call", Tool: "get_job", Job: "a/b"}, {Method: "notifications/initialized"}, {Method: "tools/call", BadParams: true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("parseBody (-want +got):\n%s", diff)
	}
}

// TestParseBody_RefusesWhatTheSDKWouldReadDifferently pins the one set of
// rules: anything two JSON decoders could read two ways is a parse error.
func TestParseBody_RefusesWhatTheSDKWouldReadDifferently(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"duplicate method":           `{"jsonrpc":"2.0","id":1,"method":"ping","method":"tools/call"}`,
		"duplicate tool name":        `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"health","name":"whoami"}}`,
		"duplicate deep key":         `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","arguments":{"job":"a","job":"b"}}}`,
		"trailing data":              `{"jsonrpc":"2.0","id":1,"method":"ping"} {"method":"tools/call"}`,
		"trailing garbage":           `{"jsonrpc":"2.0","id":1,"method":"ping"}garbage`,
		"method not a string":        `{"jsonrpc":"2.0","id":1,"method":["tools/call"]}`,
		"not an object":              `"tools/call"`,
		"empty batch":                `[]`,
		"invalid UTF-8":              "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}",
		"unterminated":               `{"jsonrpc":"2.0","id":1,"method":"ping"`,
		"too deep":                   strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
		"batch over the message cap": "[" + strings.TrimSuffix(strings.Repeat(`{"jsonrpc":"2.0","method":"ping","id":1},`, maxBatch+1), ",") + "]",
	} {
		if _, err := parseBody([]byte(body)); err == nil {
			t.Errorf("%s: parseBody accepted %.80q", name, body)
		}
	}
}

// TestParseBody_CaseVariantKeysAreOtherKeys pins exact key matching: the
// SDK reads "name", so a "Name" beside it changes nothing.
func TestParseBody_CaseVariantKeysAreOtherKeys(t *testing.T) {
	t.Parallel()
	got, err := parseBody([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","Method":"ping","params":{"name":"whoami","Name":"health"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Method != "tools/call" || got[0].Tool != "whoami" {
		t.Errorf("parseBody = %+v, want tools/call whoami", got[0])
	}
}

func FuzzParseBody(f *testing.F) {
	for _, s := range []string{`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_job","arguments":{"job":"a"}}}`,
		`[{"method":"ping"}]`, `{"a":1,"a":2}`, `{}x`, `[[[[`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		msgs, err := parseBody(data)
		if err != nil {
			return
		}
		if len(msgs) == 0 || len(msgs) > maxBatch {
			t.Fatalf("accepted %d messages", len(msgs))
		}
		for _, m := range msgs {
			if m.Tool != "" && m.Method != "tools/call" {
				t.Fatalf("a tool name outside tools/call: %+v", m)
			}
		}
	})
}

// TestWireOf_ReadsTheRevisionFromTheHeaderOrTheMeta: a request is of a
// sessionless revision when its header names one or any message carries a
// _meta protocol version, as the SDK decides (go-sdk v1.8.0
// mcp/streamable.go, servePOST).
func TestWireOf_ReadsTheRevisionFromTheHeaderOrTheMeta(t *testing.T) {
	t.Parallel()
	const meta = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"health","_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	tests := []struct {
		name   string
		header string
		body   string
		want   wire
	}{
		{name: "nothing", body: `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}`, want: wire{}},
		{name: "legacy header", header: "2025-11-25", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, want: wire{revision: "2025-11-25"}},
		{name: "new header", header: "2026-07-28", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, want: wire{revision: "2026-07-28", sessionless: true}},
		{name: "later header", header: "2027-01-01", body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, want: wire{revision: "2027-01-01", sessionless: true}},
		{name: "meta only", body: meta, want: wire{revision: "2026-07-28", sessionless: true}},
		{name: "meta with a legacy header", header: "2025-11-25", body: meta, want: wire{revision: "2025-11-25", sessionless: true}},
		{name: "meta not a string", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":7}}}`, want: wire{}},
		{name: "params not an object", body: `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":[1]}`, want: wire{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msgs, err := parseBody([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			h := http.Header{}
			if tt.header != "" {
				h.Set("MCP-Protocol-Version", tt.header)
			}
			if got := wireOf(h, msgs); got != tt.want {
				t.Errorf("wireOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}
