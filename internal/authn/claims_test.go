package authn

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestVerify_EveryKeyTypeAndTheIdentity(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey(), psKey(), ecKey(), edKey()})
	exp := f.clock.Now().Add(5 * time.Minute)
	want := &Identity{
		User:     "alice",
		Scopes:   []string{"jenkins:read"},
		ClientID: "mcp-client",
		Issuer:   f.idp.issuer,
		Audience: []string{testAudience},
		Expiry:   exp,
		TokenID:  "t-1",
	}
	for _, k := range []testKey{rsaKey(), psKey(), ecKey(), edKey()} {
		t.Run(string(k.alg), func(t *testing.T) {
			id, err := f.v.Verify(t.Context(), sign(t, k, f.idp.claims(f.clock)))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, id); diff != "" {
				t.Errorf("identity (-want +got):\n%s", diff)
			}
		})
	}
}

// verifyClaims signs claims (over the IdP's valid ones) with the EC key.
func verifyClaims(t *testing.T, f *fixture, change map[string]any) (*Identity, error) {
	t.Helper()
	c := f.idp.claims(f.clock)
	for k, v := range change {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return f.v.Verify(t.Context(), sign(t, ecKey(), c))
}

func TestVerify_Scopes(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	tests := []struct {
		name  string
		claim map[string]any
		want  []string
	}{
		{"scope string", map[string]any{"scope": "jenkins:read  jenkins:build"}, []string{"jenkins:read", "jenkins:build"}},
		{"scp array (Hydra)", map[string]any{"scope": nil, "scp": []string{"a", "b"}}, []string{"a", "b"}},
		{"scp string (Entra ID)", map[string]any{"scope": nil, "scp": "a b"}, []string{"a", "b"}},
		{"only ASCII spaces separate scopes", map[string]any{"scope": "jenkins:read\u00a0jenkins:build\tx"}, []string{"jenkins:read\u00a0jenkins:build\tx"}},
		{"both, merged in order without duplicates", map[string]any{"scope": "a b", "scp": []string{"b", "c", "a"}}, []string{"a", "b", "c"}},
		{"none", map[string]any{"scope": nil}, nil},
		{"a scope of another type grants nothing", map[string]any{"scope": 7, "scp": []any{"a", 1}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := verifyClaims(t, f, tt.claim)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, id.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVerify_Groups(t *testing.T) {
	t.Parallel()
	keycloak := map[string]any{
		"realm_access":    map[string]any{"roles": []string{"dev", "ops"}},
		"resource_access": map[string]any{"butler": map[string]any{"roles": []string{"deployer"}}, "my.app": map[string]any{"roles": "x y"}},
	}
	tests := []struct {
		name  string
		claim string
		extra map[string]any
		want  []string
	}{
		{"array", "groups", map[string]any{"groups": []string{"dev", "ops"}}, []string{"dev", "ops"}},
		{"space-separated string", "groups", map[string]any{"groups": "dev  ops"}, []string{"dev", "ops"}},
		{"a no-break space separates nothing", "groups", map[string]any{"groups": "Not\u00a0release"}, []string{"Not\u00a0release"}},
		{"only ASCII spaces separate", "groups", map[string]any{"groups": " dev\tops\u2003x\u3000y\u0085z\nw  admins "},
			[]string{"dev\tops\u2003x\u3000y\u0085z\nw", "admins"}},
		{"only spaces", "groups", map[string]any{"groups": "   "}, nil},
		{"Keycloak realm roles", "realm_access.roles", keycloak, []string{"dev", "ops"}},
		{"Keycloak client roles", "resource_access.butler.roles", keycloak, []string{"deployer"}},
		{"a client id with a dot", "resource_access.my.app.roles", keycloak, []string{"x", "y"}},
		{"a top-level claim named by the whole path wins", "realm_access.roles",
			map[string]any{"realm_access.roles": []string{"top"}, "realm_access": map[string]any{"roles": []string{"nested"}}}, []string{"top"}},
		{"absent", "groups", nil, nil},
		{"absent nested", "realm_access.roles", map[string]any{"realm_access": map[string]any{}}, nil},
		{"null", "groups", map[string]any{"groups": nil}, nil},
		{"empty array", "groups", map[string]any{"groups": []string{}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.GroupsClaim = tt.claim })
			c := f.idp.claims(f.clock)
			for k, v := range tt.extra {
				c[k] = v
			}
			id, err := f.v.Verify(t.Context(), sign(t, ecKey(), c))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, id.Groups); diff != "" {
				t.Errorf("groups (-want +got):\n%s", diff)
			}
		})
	}

	// A groups claim of another shape fails the token rather than being
	// read as "no groups": policies may deny by group.
	f := readyFixture(t, []testKey{ecKey()})
	for _, bad := range []any{7, map[string]any{"a": 1}, []any{"dev", 2}} {
		_, err := verifyClaims(t, f, map[string]any{"groups": bad})
		wantReason(t, err, ReasonGroupsClaim, ErrInvalidToken)
	}
}

func TestVerify_ClientIDPrecedence(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	tests := []struct {
		claims map[string]any
		want   string
	}{
		{map[string]any{"client_id": "c", "azp": "a", "cid": "o"}, "c"},
		{map[string]any{"client_id": nil, "azp": "a", "cid": "o"}, "a"},
		{map[string]any{"client_id": nil, "cid": "o"}, "o"},
		{map[string]any{"client_id": nil}, ""},
		{map[string]any{"client_id": 5, "azp": "a"}, "a"},
	}
	for _, tt := range tests {
		id, err := verifyClaims(t, f, tt.claims)
		if err != nil {
			t.Fatal(err)
		}
		if id.ClientID != tt.want {
			t.Errorf("claims %v: client id %q, want %q", tt.claims, id.ClientID, tt.want)
		}
	}
}

func TestVerify_UserClaim(t *testing.T) {
	t.Parallel()
	t.Run("dotted path", func(t *testing.T) {
		f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.UserClaim = "realm_access.preferred" })
		id, err := verifyClaims(t, f, map[string]any{"realm_access": map[string]any{"preferred": "bob"}})
		if err != nil {
			t.Fatal(err)
		}
		if id.User != "bob" {
			t.Errorf("user %q, want bob", id.User)
		}
	})
	t.Run("top-level preferred_username", func(t *testing.T) {
		f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.UserClaim = "preferred_username" })
		id, err := verifyClaims(t, f, map[string]any{"preferred_username": "carol"})
		if err != nil {
			t.Fatal(err)
		}
		if id.User != "carol" {
			t.Errorf("user %q, want carol", id.User)
		}
	})
	f := readyFixture(t, []testKey{ecKey()})
	for _, bad := range []any{nil, "", 42, []string{"alice"}} {
		_, err := verifyClaims(t, f, map[string]any{"sub": bad})
		wantReason(t, err, ReasonUserClaim, ErrInvalidToken)
	}
}

func TestLookupPath(t *testing.T) {
	t.Parallel()
	c := claims{
		"a.b": "top",
		"a":   map[string]any{"b": "nested", "c": map[string]any{"d": "deep"}},
		"x.y": map[string]any{"z": "dotted parent"},
	}
	for path, want := range map[string]any{"a.b": "top", "a.c.d": "deep", "x.y.z": "dotted parent", "a.zz": nil, "q": nil} {
		got, ok := c.lookup(path)
		if want == nil {
			if ok {
				t.Errorf("lookup(%q) = %v, want absent", path, got)
			}
			continue
		}
		if got != want {
			t.Errorf("lookup(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestLookupClaim_IsLookup(t *testing.T) {
	t.Parallel()
	c := map[string]any{"a.b": "top", "a": map[string]any{"b": "nested", "c": map[string]any{"d": "deep"}}}
	for _, path := range []string{"a.b", "a.c.d", "a.zz", "q"} {
		got, ok := LookupClaim(c, path)
		want, wantOK := claims(c).lookup(path)
		if got != want || ok != wantOK {
			t.Errorf("LookupClaim(%q) = %v, %v; lookup gives %v, %v", path, got, ok, want, wantOK)
		}
	}
}
