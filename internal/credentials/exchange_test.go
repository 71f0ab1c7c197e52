package credentials_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/devidp"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/secret"
)

const (
	butlerResource  = "http://127.0.0.1:1/mcp"
	jenkinsAudience = "https://jenkins.example.com"
)

// exchangeIdP is a development IdP that can exchange Butler-audience tokens
// for Jenkins-audience ones, counting token endpoint calls.
func exchangeIdP(t *testing.T) (*devidp.Provider, string, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	var idp *devidp.Provider
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "token") {
			calls.Add(1)
		}
		idp.Handler().ServeHTTP(w, r)
	}))
	issuer := "http://" + srv.Listener.Addr().String()
	var err error
	idp, err = devidp.New(devidp.Options{Issuer: issuer, Users: []devidp.User{{ID: "alice", Name: "Alice"}, {ID: "bob", Name: "Bob"}},
		Resources: []string{butlerResource, jenkinsAudience}, Scopes: []string{"jenkins:read"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := idp.AddClient(devidp.ClientConfig{ID: "butler-exchange", Secret: "exchange-secret", GrantTypes: []string{devidp.GrantTypeTokenExchange}}); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Close(); idp.Close() })
	resp, err := http.Get(issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md struct {
		TokenEndpoint string `json:"token_endpoint"`
	}
	json.NewDecoder(resp.Body).Decode(&md)
	return idp, md.TokenEndpoint, &calls
}

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	json.Unmarshal(data, &c)
	return c
}

func TestExchange_TokenForJenkins(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp, tokenURL, calls := exchangeIdP(t)
	x := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return tokenURL, nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "exchange-secret",
	})
	subject, err := idp.IssueToken(ctx, devidp.TokenRequest{User: "alice", Resource: butlerResource})
	if err != nil {
		t.Fatal(err)
	}
	p := identity.Principal{User: "alice", JenkinsUser: "alice", AccessToken: secret.String(subject)}
	c, err := x.For(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bearer == "" || c.Bearer.Reveal() == subject || c.APIToken != "" || c.User != "alice" {
		t.Fatalf("credential: %v (the caller's own token must never be used for Jenkins)", c)
	}
	claims := claimsOf(t, c.Bearer.Reveal())
	if claims["sub"] != "alice" || !strings.Contains(jsonString(claims["aud"]), jenkinsAudience) || strings.Contains(jsonString(claims["aud"]), butlerResource) {
		t.Errorf("exchanged token claims: %v", claims)
	}
	// Cached per user until shortly before it expires.
	if again, err := x.For(ctx, p); err != nil || again.Bearer != c.Bearer || calls.Load() != 1 {
		t.Errorf("second call: %v, %d exchanges", err, calls.Load())
	}
	// Another user gets their own.
	bobSubject, _ := idp.IssueToken(ctx, devidp.TokenRequest{User: "bob", Resource: butlerResource})
	bc, err := x.For(ctx, identity.Principal{User: "bob", JenkinsUser: "bob", AccessToken: secret.String(bobSubject)})
	if err != nil || claimsOf(t, bc.Bearer.Reveal())["sub"] != "bob" {
		t.Errorf("bob: %v %v", bc, err)
	}
	if ok, _ := x.Linked(ctx, p); !ok {
		t.Error("token exchange users are always linked")
	}
}

func TestExchange_Refusals(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	idp, tokenURL, _ := exchangeIdP(t)
	subject, _ := idp.IssueToken(ctx, devidp.TokenRequest{User: "alice", Resource: butlerResource})
	p := identity.Principal{User: "alice", JenkinsUser: "alice", AccessToken: secret.String(subject)}
	wrongSecret := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return tokenURL, nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "nope",
	})
	if _, err := wrongSecret.For(ctx, p); !errors.Is(err, credentials.ErrExchange) || strings.Contains(err.Error(), subject) {
		t.Errorf("wrong client secret: %v", err)
	}
	if _, err := wrongSecret.For(ctx, identity.Guest()); !errors.Is(err, credentials.ErrNotLinked) {
		t.Errorf("guest: %v", err)
	}
	down := credentials.NewExchange(credentials.ExchangeOptions{
		TokenEndpoint: func(context.Context) (string, error) { return "http://127.0.0.1:1/token", nil },
		Audience:      jenkinsAudience, ClientID: "butler-exchange", ClientSecret: "exchange-secret",
	})
	if _, err := down.For(ctx, p); !errors.Is(err, credentials.ErrExchangeUnavailable) {
		t.Errorf("IdP down: %v", err)
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
