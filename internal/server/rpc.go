package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jobpath"
)

// Limits of the request pre-parse.
const (
	// maxJSONDepth is the nesting the MCP SDK accepts (its decoder refuses
	// deeper bodies); deeper is refused here first.
	maxJSONDepth = 1000
	// maxBatch bounds the messages of one JSON-RPC batch (batches exist
	// only before MCP 2025-06-18, and clients send a handful).
	maxBatch = 100
)

// rpcMessage is what the HTTP layer reads of one JSON-RPC message: the
// method and, for tools/call, the tool and job named.
type rpcMessage struct {
	Method string
	// Tool is params.name of a tools/call.
	Tool string
	// Job is params.arguments.job when it is a string.
	Job string
	// BadParams: a tools/call whose params the SDK cannot read (not an
	// object, or name not a string); the SDK answers it with an error.
	BadParams bool
	// MetaVersion is params._meta["io.modelcontextprotocol/protocolVersion"]
	// when it is a string: the revision a request of 2026-07-28 or later
	// names (SEP-2575).
	MetaVersion string
}

// isToolCall reports whether the message is a tools/call.
func (m rpcMessage) isToolCall() bool { return m.Method == "tools/call" }

// resource is the canonical job path the message names, for an audit
// record, or "".
func (m rpcMessage) resource() string {
	if p, err := jobpath.Parse(m.Job); m.Job != "" && err == nil {
		return p.String()
	}
	return ""
}

// errParse is a body that is not one well-formed JSON-RPC message or batch.
var errParse = errors.New("parse error")

// parseBody reads a POST body with one set of rules, the strictest of the
// MCP SDK's and Butler's, so that the HTTP layer's checks (guest mode, the
// scope step-up, the audit record) and the SDK always see the same method
// and tool: keys are matched exactly (the SDK's decoder is case-sensitive),
// a duplicate key anywhere is refused (decoders differ on which one wins),
// as is anything after the first value (the SDK would ignore it), nesting
// over 1000, invalid UTF-8, and a batch of more than 100 messages.
func parseBody(data []byte) ([]rpcMessage, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: the body is not UTF-8", errParse)
	}
	if err := checkStrict(data); err != nil {
		return nil, err
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) > 0 && trimmed[0] == '[' {
		var raws []json.RawMessage
		if err := json.Unmarshal(trimmed, &raws); err != nil {
			return nil, fmt.Errorf("%w: %v", errParse, err)
		}
		if len(raws) == 0 || len(raws) > maxBatch {
			return nil, fmt.Errorf("%w: a batch holds 1 to %d messages, not %d", errParse, maxBatch, len(raws))
		}
		msgs := make([]rpcMessage, len(raws))
		for i, raw := range raws {
			m, err := parseMessage(raw)
			if err != nil {
				return nil, err
			}
			msgs[i] = m
		}
		return msgs, nil
	}
	m, err := parseMessage(trimmed)
	if err != nil {
		return nil, err
	}
	return []rpcMessage{m}, nil
}

// parseMessage reads one message, matching keys exactly.
func parseMessage(raw json.RawMessage) (rpcMessage, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return rpcMessage{}, fmt.Errorf("%w: a JSON-RPC message is an object", errParse)
	}
	var m rpcMessage
	if rm, ok := obj["method"]; ok {
		if err := json.Unmarshal(rm, &m.Method); err != nil {
			return rpcMessage{}, fmt.Errorf("%w: method is not a string", errParse)
		}
	}
	var params map[string]json.RawMessage
	paramsErr := json.Unmarshal(obj["params"], &params)
	if paramsErr == nil && params != nil {
		// The SDK reads the revision of a request from its _meta
		// (go-sdk v1.8.0 mcp/streamable.go, servePOST: extractRequestMeta);
		// a value that is not a string names none, there as here.
		var meta map[string]json.RawMessage
		if json.Unmarshal(params["_meta"], &meta) == nil {
			_ = json.Unmarshal(meta[mcp.MetaKeyProtocolVersion], &m.MetaVersion)
		}
	}
	if !m.isToolCall() {
		return m, nil
	}
	if paramsErr != nil || params == nil {
		m.BadParams = true
		return m, nil
	}
	if raw, ok := params["name"]; ok {
		if err := json.Unmarshal(raw, &m.Tool); err != nil {
			m.BadParams = true
			return m, nil
		}
	} // a missing name is "" to the SDK too: an unknown tool, audited as such

	var args map[string]json.RawMessage
	if json.Unmarshal(params["arguments"], &args) == nil {
		_ = json.Unmarshal(args["job"], &m.Job) // a job that is not a string is the tool's to refuse
	}
	return m, nil
}

// checkStrict walks the JSON tokens of data: one value, nothing after it,
// no object with a duplicate key, no nesting deeper than maxJSONDepth.
func checkStrict(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	// keys holds, per open container, the keys seen (nil for an array).
	var keys []map[string]bool
	// expectKey is true when the next token of the innermost object is a
	// key.
	expectKey := false
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			if len(keys) != 0 {
				return fmt.Errorf("%w: unexpected end of the body", errParse)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: %v", errParse, err)
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(keys) >= maxJSONDepth {
					return fmt.Errorf("%w: nested deeper than %d", errParse, maxJSONDepth)
				}
				if d == '{' {
					keys = append(keys, map[string]bool{})
					expectKey = true
				} else {
					keys = append(keys, nil)
					expectKey = false
				}
				continue
			case '}', ']':
				keys = keys[:len(keys)-1]
			}
		} else if expectKey {
			k, _ := tok.(string)
			top := keys[len(keys)-1]
			if top[k] {
				// The key is the client's: at most 64 bytes of it, escaped,
				// reach the answer and the audit record.
				return fmt.Errorf("%w: duplicate key %s", errParse, catalog.Quote(k))
			}
			top[k] = true
			expectKey = false
			continue
		}
		// A value (or a closed container) was read: in an object, a key
		// comes next; at the top level, nothing may follow.
		if len(keys) == 0 {
			if dec.More() {
				return fmt.Errorf("%w: data after the JSON-RPC message", errParse)
			}
			if _, err := dec.Token(); !errors.Is(err, io.EOF) {
				return fmt.Errorf("%w: data after the JSON-RPC message", errParse)
			}
			return nil
		}
		expectKey = keys[len(keys)-1] != nil
	}
}
