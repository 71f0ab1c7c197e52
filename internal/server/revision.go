package server

import (
	"context"
	"net/http"

	"github.com/butler-mcp/butler/internal/authz"
)

// MCP protocol revisions (CONTRACT §15). Butler serves every revision its
// MCP SDK supports from one handler, in both modes: the revisions with
// sessions (2024-11-05 to 2025-11-25) through the SDK's stateful or
// stateless Streamable HTTP handler as server.stateless says, and the
// sessionless revisions (authz.SessionlessRevision and later) always
// through a stateless one. The SDK's stateful handler refuses those
// outright (go-sdk v1.8.0 mcp/streamable.go, servePOST: "this server is
// stateful; set StreamableHTTPOptions.Stateless = true"), yet they have no
// sessions to keep: every request carries its revision, client info and
// capabilities in its _meta, so nothing is lost by serving them without
// one, and a stateful deployment (the demo) serves new clients too.

// protocolVersionHeader names the revision of a request (MCP 2025-06-18
// and later, basic/transports "Protocol Version Header").
const protocolVersionHeader = "Mcp-Protocol-Version"

// wire is what the chain learned of a request's MCP revision.
type wire struct {
	// revision is the revision the request names: its
	// MCP-Protocol-Version header, else the _meta protocol version of its
	// first message naming one; "" when none (an initialize, or a client
	// of 2025-03-26 or older).
	revision string
	// sessionless: the request speaks a sessionless revision, so only a
	// stateless handler may serve it. The SDK treats a request as such
	// when its header names such a revision or when any message carries a
	// _meta protocol version (servePOST), and so does Butler.
	sessionless bool
}

// wireOf reads the revision of a request from its header and the messages
// of its body (nil for GET and DELETE).
func wireOf(h http.Header, msgs []rpcMessage) wire {
	w := wire{revision: h.Get(protocolVersionHeader)}
	w.sessionless = w.revision >= authz.SessionlessRevision
	for _, m := range msgs {
		if m.MetaVersion == "" {
			continue
		}
		w.sessionless = true
		if w.revision == "" {
			w.revision = m.MetaVersion
		}
	}
	return w
}

type wireKey struct{}

// withWire records w in ctx for routeRevision.
func withWire(ctx context.Context, w wire) context.Context {
	return context.WithValue(ctx, wireKey{}, w)
}

// wireFrom is the wire Authenticate recorded, else the header's.
func wireFrom(r *http.Request) wire {
	if w, ok := r.Context().Value(wireKey{}).(wire); ok {
		return w
	}
	return wireOf(r.Header, nil)
}

// routeRevision sends requests of sessionless revisions to sessionless,
// everything else to legacy. Sessionless requests skip the session
// owners (BindSessions): they open no session, so they must neither count
// against a user's sessions nor close an idle one to make room.
func routeRevision(legacy, sessionless http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wireFrom(r).sessionless {
			sessionless.ServeHTTP(w, r)
			return
		}
		legacy.ServeHTTP(w, r)
	})
}
