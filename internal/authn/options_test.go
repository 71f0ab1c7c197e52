package authn

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNew_ReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := New(t.Context(), Options{
		Issuer:         "idp.example.com",
		JWKSURL:        "ftp://keys",
		Algorithms:     []string{"none", "HS256"},
		ClockSkew:      -time.Second,
		TokenCacheSize: -1,
		UserClaim:      "a..b",
		Introspection:  &Introspection{},
	})
	if err == nil {
		t.Fatal("New accepted bad options")
	}
	for _, want := range []string{"issuer", "audience", "jwks_url", `"none"`, `"HS256"`, "clock_skew", "token cache size", "user_claim", "introspection url"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not mention %s:\n%v", want, err)
		}
	}
	if _, err := New(t.Context(), Options{Issuer: "https://idp/x?tenant=1", Audiences: []string{"a"}}); err == nil {
		t.Error("an issuer with a query was accepted")
	}
}

func TestNew_Defaults(t *testing.T) {
	t.Parallel()
	o, err := normalize(Options{Issuer: "https://idp.example.com", Audiences: []string{testAudience}, Introspection: &Introspection{URL: "https://idp.example.com/introspect"}})
	if err != nil {
		t.Fatal(err)
	}
	got := []any{o.ClockSkew, o.JWKSMinRefresh, o.JWKSRefreshInterval, o.UserClaim, o.GroupsClaim, o.TokenCacheSize, o.MaxTokenBytes, o.intro.CacheTTL, o.HTTPClient.Timeout, o.Algorithms}
	want := []any{30 * time.Second, 10 * time.Second, 15 * time.Minute, "sub", "groups", 10000, 16384, 60 * time.Second, 10 * time.Second, []string{"RS256", "ES256", "PS256", "EdDSA"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
}
