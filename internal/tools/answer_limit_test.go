package tools_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/tools"
)

// sizeTransport is the server's side of an in-memory connection that
// remembers the size of the largest JSON-RPC message the server sent: what
// a client over HTTP would receive.
type sizeTransport struct {
	mcp.Transport
	mu      sync.Mutex
	largest int
}

func (s *sizeTransport) Connect(ctx context.Context) (mcp.Connection, error) {
	c, err := s.Transport.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &sizeConn{Connection: c, t: s}, nil
}

func (s *sizeTransport) max() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.largest
}

type sizeConn struct {
	mcp.Connection
	t *sizeTransport
}

func (c *sizeConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	if data, err := jsonrpc.EncodeMessage(msg); err == nil {
		c.t.mu.Lock()
		c.t.largest = max(c.t.largest, len(data))
		c.t.mu.Unlock()
	}
	return c.Connection.Write(ctx, msg)
}

// TestAnswerLimit_NoAnswerOver4MiBIsSent pins MaxAnswerBytes (CONTRACT §9
// "Any tool answer is at most 4 MiB of JSON"): a job whose description
// alone is larger (Jenkins stores whatever config.xml holds) is answered
// with invalid_argument naming the limit, and nothing over 4 MiB reaches
// the client. The bound is on the result as sent, the structured content
// and its copy as text together: a description of 2.5 MiB, whose structured
// content alone fits, is refused too.
func TestAnswerLimit_NoAnswerOver4MiBIsSent(t *testing.T) {
	t.Parallel()
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	// Quotes and backslashes are escaped once in the structured content
	// and twice in its text copy.
	line := `deploy with "make release" from C:\builds\` + "\n"
	for name, size := range map[string]int{"small": 1 << 10, "desc-2.5mib": 5 << 19, "desc-4.5mib": 9 << 19} {
		if err := sim.AddJob(name, jenkinstest.JobSpec{Description: strings.Repeat(line, size/len(line))}); err != nil {
			t.Fatal(err)
		}
	}
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)
	jc, err := jenkins.New(hs.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	ts, err := tools.New(tools.Deps{
		Jenkins:     jc,
		Credentials: credentials.Local{Credential: jenkins.Credential{User: "admin", APIToken: "admin-token"}},
		Authorizer:  authz.New(nil),
		Audit:       rec,
		Scope:       tools.FixedPrincipal(identity.Principal{User: "admin", JenkinsUser: "admin", Local: true}),
		Logger:      slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	server := mcp.NewServer(&mcp.Implementation{Name: "butler", Version: "test"}, nil)
	ts.Register(server)
	st, ct := mcp.NewInMemoryTransports()
	sized := &sizeTransport{Transport: st}
	ctx := context.Background()
	ss, err := server.Connect(ctx, sized, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "test", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })

	// The small job's answer goes out whole.
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "small"}})
	if err != nil || res.IsError {
		t.Fatalf("get_job small: %v %+v", err, res)
	}
	for _, job := range []string{"desc-2.5mib", "desc-4.5mib"} {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": job}})
		if err != nil {
			t.Fatalf("get_job %s: protocol error %v", job, err)
		}
		var out struct {
			Error *struct {
				Code    string `json:"code"`
				Status  int    `json:"status"`
				Message string `json:"message"`
			} `json:"error"`
		}
		data, _ := json.Marshal(res.StructuredContent)
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatal(err)
		}
		if !res.IsError || out.Error == nil || out.Error.Code != tools.CodeInvalidArgument || out.Error.Status != 400 ||
			!strings.Contains(out.Error.Message, "over Butler's 4 MiB limit") {
			t.Errorf("get_job %s: isError %v, structured content %.300s; want invalid_argument naming the 4 MiB limit", job, res.IsError, data)
		}
	}
	if got := sized.max(); got > tools.MaxAnswerBytes {
		t.Errorf("the server sent a message of %d bytes, over MaxAnswerBytes (%d)", got, tools.MaxAnswerBytes)
	}
	recs := rec.all()
	if len(recs) != 3 {
		t.Fatalf("%d audit records, want 3", len(recs))
	}
	for _, r := range recs[1:] {
		if r.Tool != "get_job" || r.Decision != "error" || r.Code != tools.CodeInvalidArgument {
			t.Errorf("audit of a refused answer: %+v", r)
		}
	}
}
