package authn

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestDiscoveryURLs(t *testing.T) {
	t.Parallel()
	tests := map[string][]string{
		"https://idp/realms/eng": {
			"https://idp/.well-known/oauth-authorization-server/realms/eng",
			"https://idp/.well-known/openid-configuration/realms/eng",
			"https://idp/realms/eng/.well-known/openid-configuration",
		},
		"https://idp/realms/eng/": {
			"https://idp/.well-known/oauth-authorization-server/realms/eng",
			"https://idp/.well-known/openid-configuration/realms/eng",
			"https://idp/realms/eng/.well-known/openid-configuration",
		},
		"https://idp:8443": {
			"https://idp:8443/.well-known/oauth-authorization-server",
			"https://idp:8443/.well-known/openid-configuration",
		},
		"https://idp/": {
			"https://idp/.well-known/oauth-authorization-server",
			"https://idp/.well-known/openid-configuration",
		},
	}
	for issuer, want := range tests {
		if diff := cmp.Diff(want, discoveryURLs(issuer)); diff != "" {
			t.Errorf("discoveryURLs(%q) (-want +got):\n%s", issuer, diff)
		}
	}
}

// The metadata is looked for in the MCP authorization spec's order, and the
// first document for this issuer wins.
func TestDiscovery_Order(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		path      string
		servedAt  []string
		wantTried []string
	}{
		{"issuer with a path, Keycloak-style metadata", "/realms/eng",
			[]string{"/realms/eng/.well-known/openid-configuration"},
			[]string{"/.well-known/oauth-authorization-server/realms/eng", "/.well-known/openid-configuration/realms/eng", "/realms/eng/.well-known/openid-configuration"}},
		{"issuer with a path, RFC 8414 metadata first", "/realms/eng",
			[]string{"/.well-known/oauth-authorization-server/realms/eng", "/realms/eng/.well-known/openid-configuration"},
			[]string{"/.well-known/oauth-authorization-server/realms/eng"}},
		{"issuer with a path, OIDC inserted", "/realms/eng",
			[]string{"/.well-known/openid-configuration/realms/eng"},
			[]string{"/.well-known/oauth-authorization-server/realms/eng", "/.well-known/openid-configuration/realms/eng"}},
		{"issuer without a path, OIDC", "",
			[]string{"/.well-known/openid-configuration"},
			[]string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"}},
		{"issuer without a path, RFC 8414", "",
			[]string{"/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"},
			[]string{"/.well-known/oauth-authorization-server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp := newTestIdP(t, tt.path, ecKey())
			idp.set(func(p *testIdP) {
				p.metadataAt = map[string]bool{}
				for _, path := range tt.servedAt {
					p.metadataAt[path] = true
				}
			})
			f := newFixture(t, idp)
			f.waitReady(t)
			want := append(tt.wantTried, "/jwks")
			if diff := cmp.Diff(want, idp.requested()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDiscovery_RefusesMetadataOfAnotherIssuer(t *testing.T) {
	t.Parallel()
	for _, other := range []string{"https://evil.example.com/realms/eng", "/", "x"} {
		idp := newTestIdP(t, "/realms/eng", ecKey())
		idp.set(func(p *testIdP) {
			if other == "/" || other == "x" {
				p.metadataIssuer = p.issuer + other // a suffix variant
			} else {
				p.metadataIssuer = other
			}
		})
		f := newFixture(t, idp)
		eventually(t, "the first attempt", func() bool { return f.clock.waiting() == 1 })
		err := f.v.Ready(t.Context())
		if err == nil || !strings.Contains(err.Error(), "issuer metadata not fetched yet") || !strings.Contains(err.Error(), "refused") {
			t.Errorf("Ready = %v; want metadata refused", err)
		}
		if !strings.Contains(f.logs.String(), "issuer metadata refused") {
			t.Errorf("no logged reason; logs:\n%s", f.logs)
		}
		if idp.jwksHits.Load() != 0 {
			t.Error("the jwks_uri of refused metadata was fetched")
		}
		_, err = f.v.Verify(t.Context(), sign(t, ecKey(), idp.claims(f.clock)))
		wantReason(t, err, ReasonUnavailable, ErrUnavailable)
	}
}

// A refused document does not end the search: the next place may hold the
// right one (a proxy serving another tenant's metadata at the root).
func TestDiscovery_SkipsARefusedDocument(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t, "/realms/eng", ecKey())
	idp.set(func(p *testIdP) {
		p.wrongIssuerAt = map[string]bool{"/.well-known/oauth-authorization-server/realms/eng": true}
	})
	f := newFixture(t, idp)
	f.waitReady(t)
	if !strings.Contains(f.logs.String(), "issuer metadata refused") {
		t.Errorf("no logged reason; logs:\n%s", f.logs)
	}
	if _, err := f.v.Verify(t.Context(), sign(t, ecKey(), idp.claims(f.clock))); err != nil {
		t.Fatal(err)
	}
}

func TestVerify_ExplicitJWKSURLSkipsDiscovery(t *testing.T) {
	t.Parallel()
	idp := newTestIdP(t, "/realms/eng", ecKey())
	idp.set(func(p *testIdP) { p.metadataAt = nil })
	f := newFixture(t, idp, func(o *Options) { o.JWKSURL = idp.srv.URL + "/jwks" })
	f.waitReady(t)
	if diff := cmp.Diff([]string{"/jwks"}, idp.requested()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}
