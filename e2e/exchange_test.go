package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"

	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/jenkinstest"
)

// TestServe_TokenExchange: in token_exchange mode Butler exchanges the
// caller's token at the IdP (RFC 8693) for one whose audience is Jenkins,
// and calls Jenkins with that as a Bearer token. The caller's own token
// never reaches Jenkins; there is no shared account.
func TestServe_TokenExchange(t *testing.T) {
	t.Parallel()
	const jenkinsAud = "https://jenkins.example.com"
	addr := freeAddr(t)
	resource := "http://" + addr + "/mcp"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	idp, err := devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}, {ID: "bob", Name: "Bob"}},
		Resources: []string{resource, jenkinsAud}, Scopes: []string{"jenkins:read", "jenkins:build"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.AddClient(devidp.ClientConfig{ID: "butler-exchange", Secret: "exchange-secret", GrantTypes: []string{devidp.GrantTypeTokenExchange}}); err != nil {
		t.Fatal(err)
	}
	isrv := &http.Server{Handler: idp.Handler()}
	go isrv.Serve(ln)
	t.Cleanup(func() { isrv.Close(); idp.Close() })

	// Jenkins with the jwt-auth-filter plugin: it accepts a bearer JWT of
	// the IdP whose audience is Jenkins, as the user it names.
	var mu sync.Mutex
	var seen []string
	sim := jenkinstest.Sample(&jenkinstest.Options{BearerAuth: func(tok string) (string, bool) {
		mu.Lock()
		seen = append(seen, tok)
		mu.Unlock()
		return verifyJenkinsToken(issuer, jenkinsAud, tok)
	}})
	hs := httptest.NewServer(sim)
	t.Cleanup(hs.Close)

	cfg := `server:
  listen: ` + addr + `
  public_url: http://` + addr + `
auth:
  issuer: ` + issuer + `
jenkins:
  url: ` + hs.URL + `/
  credentials: token_exchange
  token_exchange:
    audience: ` + jenkinsAud + `
    client_id: butler-exchange
    client_secret: ${EXCHANGE_SECRET}
store:
  dsn: "sqlite::memory:"
log:
  level: debug
`
	s := startServe(t, addr, cfg, "EXCHANGE_SECRET=exchange-secret")
	aliceTok, _ := idp.IssueToken(context.Background(), devidp.TokenRequest{User: "alice", Resource: resource})
	cs, err := connectHTTP(t, s.url, aliceTok)
	if err != nil {
		t.Fatal(err)
	}
	if r := callTool(t, cs, "trigger_job", map[string]any{"job": "frontend/web-app"}); r.isError {
		t.Fatalf("alice trigger with an exchanged token: %s", r.text)
	}
	bobTok, _ := idp.IssueToken(context.Background(), devidp.TokenRequest{User: "bob", Resource: resource})
	bob, err := connectHTTP(t, s.url, bobTok)
	if err != nil {
		t.Fatal(err)
	}
	if r := callTool(t, bob, "trigger_job", map[string]any{"job": "frontend/web-app"}); !strings.HasPrefix(r.text, "forbidden: ") {
		t.Errorf("bob with an exchanged token: %s", r.text)
	}
	if who := callTool(t, cs, "whoami", nil); who.out["jenkins_linked"] != true {
		t.Errorf("whoami in token_exchange mode: %v", who.out)
	}
	users := map[string]bool{}
	for _, r := range sim.Requests() {
		if r.Auth != "bearer" && !(r.Auth == "none" && r.Query == "tree=_class") {
			t.Errorf("Jenkins request without an exchanged bearer token: %+v", r)
		}
		users[r.User] = true
	}
	if !users["alice"] || !users["bob"] {
		t.Errorf("Jenkins saw users %v", users)
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(seen, aliceTok) || slices.Contains(seen, bobTok) {
		t.Error("a caller's own token was forwarded to Jenkins")
	}
}

// verifyJenkinsToken checks an exchanged token as Jenkins's jwt-auth-filter
// would: signature against the IdP's keys, audience Jenkins.
func verifyJenkinsToken(issuer, aud, tok string) (string, bool) {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", false
	}
	resp, err := http.Get(issuer + "/keys")
	if err != nil {
		return "", false
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if json.NewDecoder(resp.Body).Decode(&set) != nil || len(jws.Signatures) == 0 {
		return "", false
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return "", false
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return "", false
	}
	var c struct {
		Sub string `json:"sub"`
		Aud any    `json:"aud"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", false
	}
	audJSON, _ := json.Marshal(c.Aud)
	if !strings.Contains(string(audJSON), `"`+aud+`"`) {
		return "", false
	}
	return c.Sub, c.Sub != ""
}
