package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/server"
)

// TestServeLines_MalformedLinesGetAnErrorAndTheSessionGoesOn pins that
// butler stdio answers a line it cannot read with a JSON-RPC error and
// keeps serving (one bad line used to end the process).
func TestServeLines_MalformedLinesGetAnErrorAndTheSessionGoesOn(t *testing.T) {
	t.Parallel()
	s := mcp.NewServer(&mcp.Implementation{Name: "t", Version: "1"}, nil)
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- server.ServeLines(ctx, s, inR, outW) }()
	answers := bufio.NewReader(outR)
	next := func() map[string]any {
		t.Helper()
		line, err := answers.ReadString('\n')
		if err != nil {
			t.Fatalf("no answer: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("answer %q: %v", line, err)
		}
		return m
	}
	send := func(line string) {
		t.Helper()
		if _, err := io.WriteString(inW, line+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`)
	if m := next(); m["id"] != float64(1) || m["result"] == nil {
		t.Fatalf("initialize: %v", m)
	}
	send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	for line, code := range map[string]float64{
		"garbage": -32700,
		`{}`:      -32600,
		`[]`:      -32600,
		`{"jsonrpc":"2.0","id":2,"method":"ping"}{"jsonrpc":"2.0","id":3,"method":"ping"}`: -32700,
		`{"jsonrpc":"2.0","id":4,"method":"ping","method":"tools/call"}`:                   -32700,
	} {
		send(line)
		m := next()
		errObj, _ := m["error"].(map[string]any)
		if errObj == nil || errObj["code"] != code {
			t.Errorf("line %.40q: answer %v, want error %v", line, m, code)
		}
	}
	send(`{"jsonrpc":"2.0","id":9,"method":"ping"}`)
	if m := next(); m["id"] != float64(9) || m["error"] != nil {
		t.Errorf("ping after bad lines: %v", m)
	}
	// A line over the limit is refused without ending the session.
	go func() { _, _ = io.WriteString(inW, `{"x":"`+strings.Repeat("a", server.MaxStdioLine)+`"}`+"\n") }()
	if m := next(); m["error"] == nil {
		t.Errorf("an over-long line: %v", m)
	}
	send(`{"jsonrpc":"2.0","id":10,"method":"ping"}`)
	if m := next(); m["id"] != float64(10) {
		t.Errorf("ping after an over-long line: %v", m)
	}
	inW.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("ServeLines: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("ServeLines did not end at the end of input")
	}
}
