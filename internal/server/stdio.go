package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// MaxStdioLine bounds one line (one JSON-RPC message or batch) on stdin.
const MaxStdioLine = 16 << 20

// RunStdio serves MCP over stdin/stdout until the client disconnects or
// ctx ends.
func RunStdio(ctx context.Context, s *mcp.Server) error {
	return ServeLines(ctx, s, os.Stdin, os.Stdout)
}

// ServeLines serves MCP over newline-delimited JSON-RPC on in and out (the
// stdio transport). The SDK ends a connection on the first line it cannot
// read, so every line is checked first: a line that is not JSON, not a
// JSON-RPC message, holds two messages, or is longer than MaxStdioLine is
// answered with a JSON-RPC error (parse error or invalid request) and
// skipped, and the session goes on.
func ServeLines(ctx context.Context, s *mcp.Server, in io.Reader, out io.Writer) error {
	w := &lockedWriter{w: out}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(filterLines(in, pw, w)) }()
	err := s.Run(ctx, &mcp.IOTransport{Reader: pr, Writer: nopCloser{w}, MaxLineLength: MaxStdioLine + 1})
	_ = pr.Close()
	if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("stdio: %w", err)
	}
	return nil
}

// filterLines copies the valid lines of in to sdk and answers the others
// on out. It returns nil at the end of in.
func filterLines(in io.Reader, sdk io.Writer, out io.Writer) error {
	r := bufio.NewReaderSize(in, 64<<10)
	for {
		line, tooLong, err := readLine(r)
		if len(bytes.TrimSpace(line)) > 0 || tooLong {
			if reply := checkLine(line, tooLong); reply != nil {
				if _, werr := out.Write(reply); werr != nil {
					return werr
				}
			} else if _, werr := sdk.Write(append(line, '\n')); werr != nil {
				return werr
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// readLine reads one line without its end; a line over MaxStdioLine is
// read to its end and dropped (tooLong).
func readLine(r *bufio.Reader) (line []byte, tooLong bool, err error) {
	for {
		chunk, err := r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > MaxStdioLine+1 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return bytes.TrimRight(line, "\r\n"), tooLong, err
	}
}

// checkLine returns the JSON-RPC error answering line, or nil when the
// SDK can read it: one JSON value that is a JSON-RPC message, or a batch
// of them.
func checkLine(line []byte, tooLong bool) []byte {
	if tooLong {
		return rpcError(nil, -32700, fmt.Sprintf("Parse error: a line is at most %d bytes", MaxStdioLine))
	}
	if err := checkStrict(line); err != nil {
		return rpcError(nil, -32700, "Parse error: "+err.Error())
	}
	trimmed := bytes.TrimSpace(line)
	msgs := []json.RawMessage{trimmed}
	if trimmed[0] == '[' {
		if json.Unmarshal(trimmed, &msgs) != nil || len(msgs) == 0 || len(msgs) > maxBatch {
			return rpcError(nil, -32600, fmt.Sprintf("Invalid Request: a batch holds 1 to %d messages", maxBatch))
		}
	}
	for _, m := range msgs {
		if _, err := jsonrpc.DecodeMessage(m); err != nil {
			return rpcError(idOf(m), -32600, "Invalid Request: not a JSON-RPC 2.0 message")
		}
	}
	return nil
}

// idOf is the id of a message that could not be decoded, when it has a
// usable one, so the client can match the error to its request.
func idOf(m json.RawMessage) any {
	var v struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(m, &v) != nil {
		return nil
	}
	switch id := v.ID.(type) {
	case string, float64:
		return id
	}
	return nil
}

func rpcError(id any, code int, message string) []byte {
	data, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": message}})
	return append(data, '\n')
}

// lockedWriter serializes whole writes: the SDK writes one message per
// Write, and so do the line checks, so answers never interleave.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
