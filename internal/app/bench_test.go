package app_test

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/app"
	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/config"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/ratelimit"
	"github.com/butler-mcp/butler/internal/secret"
)

type bearerRT struct {
	token func() string
}

func (b bearerRT) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if tok := b.token(); tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// benchStack is Butler's whole HTTP stack in process, with a development IdP
// and the Jenkins simulator.
type benchStack struct {
	url string
	idp *devidp.Provider
	app *app.App
}

// stackOpts choose the collaborators of a bench stack. Every variant is the
// same stack as production, built by app.New; a variant without a layer's
// cost gets a fake in that layer's place, never a switch in the code.
type stackOpts struct {
	// fixedToken: a verifier that accepts one fixed token for alice, in
	// place of JWT verification against the IdP's keys.
	fixedToken bool
	// allowAll: a policy that permits everything, no tool scopes, no rate
	// limit, a fixed in-memory credential and no audit store, in place of
	// the full authorization path.
	allowAll bool
	policy   string // policy file; "" the built-in default
	// configure, if set, adjusts the config last (tracing_bench_test.go).
	configure func(*config.Config)
}

// benchToken is the token fixedVerifier accepts.
const benchToken = "bench-token"

// fixedVerifier accepts exactly benchToken, as alice.
type fixedVerifier struct{}

func (fixedVerifier) Verify(_ context.Context, token string) (*authn.Identity, error) {
	if token != benchToken {
		return nil, &authn.Error{Reason: "signature", Description: "not the bench token"}
	}
	return &authn.Identity{User: "alice", Scopes: []string{"jenkins:read", "jenkins:build"}, Groups: []string{"developers"},
		Expiry: time.Now().Add(time.Hour)}, nil
}

func (fixedVerifier) Ready(context.Context) error { return nil }

// allowAllLimiter never limits.
type allowAllLimiter struct{}

func (allowAllLimiter) Allow(context.Context, string) (ratelimit.Decision, error) {
	return ratelimit.Decision{Allowed: true}, nil
}

func newBenchStack(b *testing.B, fixedToken bool) *benchStack {
	return newStack(b, stackOpts{fixedToken: fixedToken})
}

func newStack(b testing.TB, o stackOpts) *benchStack {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	butlerURL := "http://" + ln.Addr().String()
	iln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	issuer := "http://" + iln.Addr().String()
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}},
		Resources: []string{butlerURL + "/mcp"}, Scopes: []string{"jenkins:read", "jenkins:build"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	isrv := &http.Server{Handler: idp.Handler()}
	go isrv.Serve(iln)
	b.Cleanup(func() { isrv.Close(); idp.Close() })
	sim := httptest.NewServer(jenkinstest.Sample(nil))
	b.Cleanup(sim.Close)

	cfg := config.Default()
	cfg.Server.PublicURL = butlerURL
	cfg.Server.Stateless = true
	cfg.Auth.Issuer = issuer
	cfg.Jenkins.URL = sim.URL + "/"
	cfg.Store.DSN = config.DSN("sqlite:" + filepath.Join(b.TempDir(), "butler.db"))
	cfg.Store.VaultKey = secret.String("aNVpVgjXz+pXrJF3Y2Sg6BDBOx5A/ud1aywaoxid7sQ=") // 32 random-looking bytes, for tests only
	cfg.Limits.PerUserRPS, cfg.Limits.Burst = 1e9, 1e9
	cfg.Policy.File = o.policy
	opts := app.Options{Version: "bench"}
	if o.fixedToken {
		opts.Verifier = fixedVerifier{}
	}
	if o.allowAll {
		allow := filepath.Join(b.TempDir(), "allow.cedar")
		if err := os.WriteFile(allow, []byte(`@id("allow-all") permit (principal, action, resource);`), 0o600); err != nil {
			b.Fatal(err)
		}
		cfg.Policy.File = allow
		cfg.Auth.ToolScopes = map[string][]string{config.DefaultToolScopesKey: {}}
		opts.Limiter = allowAllLimiter{}
		opts.Audit = audit.LogRecorder{Logger: slog.New(slog.DiscardHandler)}
		opts.Credentials = credentials.NewMemory(map[string]jenkins.Credential{"alice": {User: "alice", APIToken: jenkinstest.SampleAliceToken}})
	}
	if o.configure != nil {
		o.configure(cfg)
	}
	a, err := app.New(context.Background(), cfg, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = a.Close(context.Background()) })
	if a.Linker != nil && !o.allowAll {
		if _, err := a.Linker.Link(context.Background(), "alice", jenkinstest.SampleAliceToken); err != nil {
			b.Fatal(err)
		}
	}
	srv := &http.Server{Handler: a.Handler}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })
	return &benchStack{url: butlerURL, idp: idp, app: a}
}

func (s *benchStack) mint(b *testing.B) string {
	tok, err := s.idp.IssueToken(context.Background(), devidp.TokenRequest{User: "alice"})
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func (s *benchStack) client(b testing.TB, token func() string) *mcp.ClientSession {
	hc := &http.Client{Transport: bearerRT{token: token}}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).
		Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: s.url + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	return cs
}

// BenchmarkToolCallAuthentication measures the throughput of tools/call
// get_current_time_info through the whole HTTP stack (chain, MCP, tool
// wrapper) with concurrent callers: with a valid cached JWT, with a JWT
// seen for the first time on every call (full signature check), and with a
// verifier that accepts one fixed token (no verification cost), in the same
// run. Compare
// ns/op (lower is faster; throughput is its inverse).
func BenchmarkToolCallAuthentication(b *testing.B) {
	params := &mcp.CallToolParams{Name: "get_current_time_info", Arguments: map[string]any{"timezone": "Europe/Paris"}}
	// Each call makes ~700 KB of garbage (mostly the SDK's JSON decoding),
	// so GC frequency, which grows with the live heap, would dominate the
	// comparison: the first_seen variant holds thousands of pre-minted
	// tokens. The same ballast in every variant keeps GC pacing equal.
	ballast := make([]byte, 64<<20)
	defer runtime.KeepAlive(ballast)
	run := func(b *testing.B, cs *mcp.ClientSession) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				res, err := cs.CallTool(context.Background(), params)
				if err != nil || res.IsError {
					b.Errorf("call: %v %v", err, res)
					return
				}
			}
		})
	}
	b.Run("auth_off", func(b *testing.B) {
		s := newBenchStack(b, true)
		run(b, s.client(b, func() string { return benchToken }))
	})
	b.Run("jwt_cached", func(b *testing.B) {
		s := newBenchStack(b, false)
		tok := s.mint(b)
		run(b, s.client(b, func() string { return tok }))
	})
	b.Run("jwt_first_seen", func(b *testing.B) {
		s := newBenchStack(b, false)
		// Every request carries a token Butler has not verified before;
		// they are minted before the timer starts.
		setup := s.mint(b)
		var tokens []string
		var next atomic.Int64
		cs := s.client(b, func() string {
			if i := int(next.Add(1)) - 1; i < len(tokens) {
				return tokens[i]
			}
			return setup
		})
		tokens = make([]string, b.N+16)
		for i := range tokens {
			tokens[i] = s.mint(b)
		}
		next.Store(0)
		run(b, cs)
	})
}

// BenchmarkToolCallAuthorization measures tools/call get_job (a read that
// calls Jenkins as the user) through the whole HTTP stack with the full
// authorization path (OAuth scope check, Cedar policy, rate limit, stored
// credential lookup with decryption, audit record written to the store)
// against the same stack with fakes in those places (an allow-all policy,
// no scopes, a limiter that never limits, a fixed in-memory credential, an
// audit recorder that keeps nothing), in the same run. Every variant uses
// the fixed-token verifier, so only authorization differs.
// "example_policy" uses examples/policy.cedar, which names folders, so each
// call also asks Jenkins for the job's own spelling (one more request).
func BenchmarkToolCallAuthorization(b *testing.B) {
	params := &mcp.CallToolParams{Name: "get_job", Arguments: map[string]any{"job": "frontend/web-app"}}
	ballast := make([]byte, 64<<20) // equal GC pacing in every variant (see above)
	defer runtime.KeepAlive(ballast)
	example, err := filepath.Abs("../../examples/policy.cedar")
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		o    stackOpts
	}{
		{"authz_off", stackOpts{fixedToken: true, allowAll: true}},
		{"authz_full_default_policy", stackOpts{fixedToken: true}},
		{"authz_full_example_policy", stackOpts{fixedToken: true, policy: example}},
	} {
		b.Run(v.name, func(b *testing.B) {
			s := newStack(b, v.o)
			cs := s.client(b, func() string { return benchToken })
			b.ReportAllocs()
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := cs.CallTool(context.Background(), params)
					if err != nil || res.IsError {
						b.Errorf("call: %v %v", err, res)
						return
					}
				}
			})
		})
	}
}
