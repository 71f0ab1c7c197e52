package devidp_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/devidp"
)

func TestStart_RefusesNonLoopbackAddresses(t *testing.T) {
	t.Parallel()
	p, err := devidp.New(devidp.Options{Resources: []string{mcpResource}})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "10.1.2.3:0", "192.168.1.1:9400", "example.com:9400", "127.0.0.1"} {
		if err := p.Start(addr); err == nil {
			p.Close()
			t.Errorf("Start(%q) succeeded", addr)
		}
	}
	if err := p.Start("0.0.0.0:0"); !errors.Is(err, devidp.ErrNotLoopback) {
		t.Errorf("Start(0.0.0.0:0) err = %v, want ErrNotLoopback", err)
	}
	if p.Issuer() != "" {
		t.Errorf("issuer set after refused starts: %q", p.Issuer())
	}
}

func TestStart_LoopbackSetsIssuerAndClose(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:0", "localhost:0", "127.0.0.2:0"} {
		p, err := devidp.New(devidp.Options{Resources: []string{mcpResource}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Start(addr); err != nil {
			if addr == "127.0.0.2:0" {
				continue // not every system routes all of 127/8
			}
			t.Fatalf("Start(%q): %v", addr, err)
		}
		if !strings.HasPrefix(p.Issuer(), "http://127.") && !strings.HasPrefix(p.Issuer(), "http://[::1]") {
			t.Errorf("%s: issuer %q", addr, p.Issuer())
		}
		if err := p.Start("127.0.0.1:0"); err == nil {
			t.Error("second Start succeeded")
		}
		resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if err := p.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if _, err := http.Get(p.Issuer() + "/keys"); err == nil {
			t.Error("still serving after Close")
		}
	}
}

func TestNew_Validation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts devidp.Options
		err  error
	}{
		{"public issuer", devidp.Options{Issuer: "https://idp.example.com", Resources: []string{mcpResource}}, devidp.ErrNotLoopback},
		{"private issuer", devidp.Options{Issuer: "http://10.0.0.5:9400", Resources: []string{mcpResource}}, devidp.ErrNotLoopback},
		{"wildcard issuer", devidp.Options{Issuer: "http://0.0.0.0:9400", Resources: []string{mcpResource}}, devidp.ErrNotLoopback},
		{"issuer with path", devidp.Options{Issuer: "http://127.0.0.1:9400/realms/x", Resources: []string{mcpResource}}, nil},
		{"issuer ftp", devidp.Options{Issuer: "ftp://127.0.0.1", Resources: []string{mcpResource}}, nil},
		{"no resources", devidp.Options{Issuer: "http://127.0.0.1:9400"}, nil},
		{"relative resource", devidp.Options{Resources: []string{"/mcp"}}, nil},
		{"duplicate users", devidp.Options{Resources: []string{mcpResource}, Users: []devidp.User{{ID: "a"}, {ID: "a"}}}, nil},
		{"user without id", devidp.Options{Resources: []string{mcpResource}, Users: []devidp.User{{Name: "x"}}}, nil},
		{"scope with space", devidp.Options{Resources: []string{mcpResource}, Scopes: []string{"a b"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := devidp.New(tt.opts)
			if err == nil || (tt.err != nil && !errors.Is(err, tt.err)) {
				t.Errorf("err = %v, want %v", err, tt.err)
			}
		})
	}
	for _, iss := range []string{"http://127.0.0.1:9400", "http://localhost:9400", "https://[::1]:9400", "http://127.9.9.9"} {
		if _, err := devidp.New(devidp.Options{Issuer: iss, Resources: []string{mcpResource}}); err != nil {
			t.Errorf("New(issuer %q): %v", iss, err)
		}
	}
}

func TestHandler_WithHTTPTestAndLoopbackHostGuard(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(nil)
	p, err := devidp.New(devidp.Options{Issuer: "http://" + srv.Listener.Addr().String(), Resources: []string{mcpResource}})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p.Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	if md := metadata(t, srv.URL, "/.well-known/oauth-authorization-server"); md["issuer"] != p.Issuer() {
		t.Errorf("issuer = %v, want %q", md["issuer"], p.Issuer())
	}
	// DNS rebinding: a public name pointing at the loopback listener.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/openid-configuration", nil)
	req.Host = "attacker.example:80"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("non-loopback Host: status %d, want 403", resp.StatusCode)
	}
}

func TestHandler_Unavailable503UntilIssuerKnown(t *testing.T) {
	t.Parallel()
	p, err := devidp.New(devidp.Options{Resources: []string{mcpResource}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", resp.StatusCode)
	}
	if _, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "x"}); err == nil {
		t.Error("IssueToken without users or issuer succeeded")
	}
}
