package authn

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// FuzzVerify: no input panics, every failure is a proper *Error that does
// not echo the token, and nothing verifies unless a test key signed it.
func FuzzVerify(f *testing.F) {
	fx := readyFixture(f, []testKey{ecKey(), rsaKey()})
	valid := sign(f, ecKey(), fx.idp.claims(fx.clock))
	parts := strings.Split(valid, ".")
	for _, seed := range []string{
		valid,
		sign(f, rsaKey(), fx.idp.claims(fx.clock)),
		sign(f, ecKey().withKID("other"), fx.idp.claims(fx.clock)),
		parts[0] + "." + parts[1] + ".",
		parts[0] + ".." + parts[2],
		"..", "a.b.c", "opaque", "", "e30.e30.e30",
		rawJWS(f, map[string]any{"alg": "none"}, fx.idp.claims(fx.clock), nil),
		rawJWS(f, map[string]any{"alg": "HS256", "kid": "rsa1"}, fx.idp.claims(fx.clock), []byte("0123456789abcdef0123456789abcdef")),
	} {
		f.Add(seed)
	}
	keys := []any{testKeyMaterial().ec.Public(), testKeyMaterial().rsa1.Public()}
	f.Fuzz(func(t *testing.T, token string) {
		id, err := fx.v.Verify(context.Background(), token)
		if err != nil {
			e, ok := errors.AsType[*Error](err)
			if !ok || e.Reason == "" || !(errors.Is(err, ErrInvalidToken) || errors.Is(err, ErrUnavailable)) {
				t.Fatalf("error %v (%T) is not a proper *Error", err, err)
			}
			if len(token) >= 16 && strings.Contains(e.Description, token) {
				t.Fatalf("the description echoes the token: %q", e.Description)
			}
			return
		}
		jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.RS256})
		if err != nil {
			t.Fatalf("verified a token go-jose cannot parse: %v", err)
		}
		signed := false
		for _, k := range keys {
			if _, err := jws.Verify(k); err == nil {
				signed = true
			}
		}
		if !signed || id.User == "" || id.Issuer != fx.idp.issuer {
			t.Fatalf("verified a token no test key signed, or without user/issuer: %+v", id)
		}
	})
}

// FuzzBearerToken: the Authorization header yields either exactly the
// credential after "Bearer " or a malformed error.
func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{"Bearer abc", "bearer abc", "Bearer  abc", "Basic abc", "Bearer", "Bearer a b", "Bearer a=", "Bearer =a", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{"Authorization": {header}}}
		token, present, err := BearerToken(r)
		if !present {
			t.Fatal("a header is there but not present")
		}
		if err != nil {
			if token != "" || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("token %q with error %v", token, err)
			}
			return
		}
		if len(header) < 8 || !strings.EqualFold(header[:7], "Bearer ") || header[7:] != token || !isToken68(token) {
			t.Fatalf("header %q gave token %q", header, token)
		}
	})
}

// FuzzChallenge: whatever the description, the header value is one line of
// visible ASCII whose quoted-strings are well-formed.
func FuzzChallenge(f *testing.F) {
	for _, seed := range []string{`a "b" \c`, "line\nbreak", "\x00\x7f", "é", `\`, `"`} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		h := Challenge{ResourceMetadata: "https://b/x", Error: "invalid_token", Description: desc}.String()
		params := strings.TrimPrefix(h, "Bearer ")
		for params != "" {
			name, rest, ok := strings.Cut(params, `="`)
			if !ok || strings.ContainsAny(name, ` ="`) {
				t.Fatalf("bad parameter in %q", h)
			}
			i := 0
			for ; i < len(rest) && rest[i] != '"'; i++ {
				if c := rest[i]; c < 0x20 || c > 0x7e {
					t.Fatalf("byte %#x in %q", c, h)
				}
				if rest[i] == '\\' {
					i++
					if i == len(rest) || rest[i] != '"' && rest[i] != '\\' {
						t.Fatalf("bad escape in %q", h)
					}
				}
			}
			if i == len(rest) {
				t.Fatalf("unterminated quoted-string in %q", h)
			}
			params = strings.TrimPrefix(rest[i+1:], ", ")
		}
	})
}
