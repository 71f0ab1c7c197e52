package devidp_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/devidp"
)

func TestRotateKey_NewKeySignsAndOldStaysInJWKS(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	first := kids(jwks(t, iss))
	if len(first) != 1 || first[0] != p.CurrentKeyID() {
		t.Fatalf("initial JWKS kids = %v, current %q", first, p.CurrentKeyID())
	}
	before, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}

	oldKID, newKID, err := p.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if oldKID != first[0] || newKID == oldKID {
		t.Fatalf("RotateKey = %q, %q", oldKID, newKID)
	}
	if diff := cmp.Diff([]string{oldKID, newKID}, kids(jwks(t, iss))); diff != "" {
		t.Errorf("JWKS after rotation (-want +got):\n%s", diff)
	}
	after, err := p.IssueToken(ctxT(t), devidp.TokenRequest{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if _, hdr := verifyJWT(t, iss, after); hdr.KeyID != newKID {
		t.Errorf("new token kid = %q, want %q", hdr.KeyID, newKID)
	}
	if _, hdr := verifyJWT(t, iss, before); hdr.KeyID != oldKID {
		t.Errorf("old token kid = %q, want %q", hdr.KeyID, oldKID)
	}

	if err := p.RemoveKey(newKID); err == nil {
		t.Error("removing the current key succeeded")
	}
	if err := p.RemoveKey(oldKID); err != nil {
		t.Fatalf("RemoveKey: %v", err)
	}
	if diff := cmp.Diff([]string{newKID}, kids(jwks(t, iss))); diff != "" {
		t.Errorf("JWKS after removal (-want +got):\n%s", diff)
	}
	if err := p.RemoveKey(oldKID); !errors.Is(err, devidp.ErrUnknownKey) {
		t.Errorf("second RemoveKey: err = %v, want ErrUnknownKey", err)
	}
	// A token signed by the removed key no longer finds its key.
	set := jwks(t, iss)
	if keys := set.Key(oldKID); len(keys) != 0 {
		t.Error("removed key still served")
	}
}

func TestSignRaw_AdversarialTokens(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	iss := p.Issuer()
	claims := map[string]any{"iss": iss, "sub": "alice", "aud": mcpResource, "exp": time.Now().Add(time.Hour).Unix()}

	signed, err := p.SignRaw(ctxT(t), nil, claims)
	if err != nil {
		t.Fatal(err)
	}
	got, hdr := verifyJWT(t, iss, signed)
	if got["sub"] != "alice" || hdr.KeyID != p.CurrentKeyID() {
		t.Errorf("claims %v kid %q", got, hdr.KeyID)
	}

	tests := []struct {
		name   string
		header map[string]any
		want   map[string]any
		sigLen int // 0: empty signature
	}{
		{"alg none", map[string]any{"alg": "none"}, map[string]any{"alg": "none", "typ": "at+jwt", "kid": p.CurrentKeyID()}, 0},
		{"unknown kid", map[string]any{"kid": "nope"}, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": "nope"}, 256},
		{"no kid, PS256", map[string]any{"kid": nil, "alg": "PS256"}, map[string]any{"alg": "PS256", "typ": "at+jwt"}, 256},
		{"extra header", map[string]any{"jku": "http://evil/keys"}, map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": p.CurrentKeyID(), "jku": "http://evil/keys"}, 256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := p.SignRaw(ctxT(t), tt.header, claims)
			if err != nil {
				t.Fatal(err)
			}
			parts := strings.Split(tok, ".")
			if len(parts) != 3 {
				t.Fatalf("%d parts", len(parts))
			}
			hb, _ := base64.RawURLEncoding.DecodeString(parts[0])
			var h map[string]any
			if err := json.Unmarshal(hb, &h); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			sig, _ := base64.RawURLEncoding.DecodeString(parts[2])
			if len(sig) != tt.sigLen {
				t.Errorf("signature length %d, want %d", len(sig), tt.sigLen)
			}
		})
	}
	if _, err := p.SignRaw(ctxT(t), map[string]any{"alg": "HS256"}, claims); err == nil {
		t.Error("HS256 accepted")
	}
}

func TestKeys_JWKSHasOnlyPublicSigningKeys(t *testing.T) {
	t.Parallel()
	p := newProvider(t)
	set := jwks(t, p.Issuer())
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.Algorithm != "RS256" {
			t.Errorf("key %q: public=%v use=%q alg=%q", k.KeyID, k.IsPublic(), k.Use, k.Algorithm)
		}
	}
	if !slices.ContainsFunc(set.Keys, func(k jose.JSONWebKey) bool { return k.KeyID == p.CurrentKeyID() }) {
		t.Error("current key not in the JWKS")
	}
}
