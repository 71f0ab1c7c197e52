package hydra_test

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/butler-mcp/butler/internal/testsupport/hydra"
)

const audience = "http://127.0.0.1:8080/mcp"

var scopes = []string{"jenkins:read", "jenkins:build"}

// TestHydraIssuesVerifiableJWTAccessTokens is the contract Butler relies on:
// a client_credentials token from a real Hydra is an RS256 JWT, signed by a
// key in Hydra's JWKS, with the issuer, audience array and scope array that
// the package documentation describes.
func TestHydraIssuesVerifiableJWTAccessTokens(t *testing.T) {
	srv := hydra.Start(t)
	id, secret := srv.CreateClient(t, scopes, []string{audience})
	raw := srv.Token(t, id, secret, scopes, audience)

	header, claims := verify(t, srv, raw)
	t.Logf("header: %s", mustJSON(header))
	t.Logf("claims: %s", mustJSON(claims))

	if got := header["alg"]; got != "RS256" {
		t.Errorf("alg = %v, want RS256", got)
	}
	if got := header["typ"]; got != "JWT" {
		t.Errorf("typ = %v, want JWT", got)
	}

	if got := claims["iss"]; got != srv.Issuer {
		t.Errorf("iss = %v, want %q", got, srv.Issuer)
	}
	if got := stringArray(t, claims, "aud"); !slices.Equal(got, []string{audience}) {
		t.Errorf("aud = %q, want [%q]", got, audience)
	}
	scp := stringArray(t, claims, "scp")
	for _, s := range scopes {
		if !slices.Contains(scp, s) {
			t.Errorf("scp = %q, want it to contain %q", scp, s)
		}
	}
	if got := claims["client_id"]; got != id {
		t.Errorf("client_id = %v, want %q", got, id)
	}
	if got := claims["sub"]; got != id {
		t.Errorf("sub = %v, want the client_id %q", got, id)
	}
	if _, ok := claims["scope"]; ok {
		t.Errorf("unexpected scope claim %v: Hydra's default is scp only", claims["scope"])
	}
	if jti, _ := claims["jti"].(string); jti == "" {
		t.Errorf("jti = %v, want a non-empty string", claims["jti"])
	}
	if ext, ok := claims["ext"].(map[string]any); !ok || len(ext) != 0 {
		t.Errorf("ext = %v, want {}", claims["ext"])
	}
	now := time.Now()
	iat, exp, nbf := numericDate(t, claims, "iat"), numericDate(t, claims, "exp"), numericDate(t, claims, "nbf")
	if iat.After(now.Add(time.Minute)) || iat.Before(now.Add(-time.Minute)) {
		t.Errorf("iat = %v, want about now (%v)", iat, now)
	}
	// exp is fixed when the session is created and iat when the JWT is
	// signed, both truncated to seconds: the difference is 1h or just under.
	if d := exp.Sub(iat); d > time.Hour || d < time.Hour-5*time.Second {
		t.Errorf("exp - iat = %v, want about Hydra's default 1h", d)
	}
	if !nbf.Equal(iat) {
		t.Errorf("nbf = %v, want iat %v", nbf, iat)
	}
	want := []string{"aud", "client_id", "exp", "ext", "iat", "iss", "jti", "nbf", "scp", "sub"}
	var got []string
	for k := range claims {
		got = append(got, k)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("claim names = %q, want %q", got, want)
	}
}

// TestHydraTokenWithoutAudience records that a token requested without the
// audience parameter still carries "aud", as an empty array, so a resource
// server checking its own audience rejects it.
func TestHydraTokenWithoutAudience(t *testing.T) {
	srv := hydra.Start(t)
	id, secret := srv.CreateClient(t, scopes, []string{audience})
	_, claims := verify(t, srv, srv.Token(t, id, secret, scopes[:1], ""))
	if got := stringArray(t, claims, "aud"); len(got) != 0 {
		t.Errorf("aud = %q, want []", got)
	}
	if got := stringArray(t, claims, "scp"); !slices.Equal(got, scopes[:1]) {
		t.Errorf("scp = %q, want %q", got, scopes[:1])
	}
}

// TestHydraJWKSHasTheTokenKeyFromTheStart checks that a resource server that
// fetches the JWKS before any token is issued (as Butler does at start-up)
// already finds the key that signs later tokens: Start makes Hydra generate
// its key sets, which it otherwise does lazily at the first request.
func TestHydraJWKSHasTheTokenKeyFromTheStart(t *testing.T) {
	srv := hydra.Start(t)
	var before struct {
		Keys []struct{ Kid, Use string } `json:"keys"`
	}
	if status := getJSON(t, srv.JWKSURL, &before); status != http.StatusOK {
		t.Fatalf("%s: status %d", srv.JWKSURL, status)
	}
	t.Logf("JWKS before any token: %+v", before.Keys)

	id, secret := srv.CreateClient(t, scopes, []string{audience})
	header, _ := verify(t, srv, srv.Token(t, id, secret, scopes, audience))
	if !slices.ContainsFunc(before.Keys, func(k struct{ Kid, Use string }) bool { return k.Kid == header["kid"] }) {
		t.Errorf("token kid %v was not in the JWKS fetched before the token was issued", header["kid"])
	}
}

// TestHydraDiscovery checks the metadata a client of Butler would discover.
func TestHydraDiscovery(t *testing.T) {
	srv := hydra.Start(t)

	var oidc map[string]any
	if status := getJSON(t, srv.PublicURL+"/.well-known/openid-configuration", &oidc); status != http.StatusOK {
		t.Fatalf("/.well-known/openid-configuration: status %d", status)
	}
	for k, want := range map[string]string{
		"issuer":         srv.Issuer,
		"jwks_uri":       srv.JWKSURL,
		"token_endpoint": srv.PublicURL + "/oauth2/token",
	} {
		if got := oidc[k]; got != want {
			t.Errorf("openid-configuration %s = %v, want %q", k, got, want)
		}
	}
	t.Logf("openid-configuration: %s", mustJSON(oidc))

	// RFC 8414 metadata, which MCP clients try first: Hydra v2.3.0 has no
	// such route. If an upgrade adds it, update the package doc.
	var as map[string]any
	status := getJSON(t, srv.PublicURL+"/.well-known/oauth-authorization-server", &as)
	t.Logf("/.well-known/oauth-authorization-server: status %d", status)
	if status != http.StatusNotFound {
		t.Errorf("/.well-known/oauth-authorization-server: status %d, want 404 as documented", status)
	}
}

// verify checks raw's RS256 signature against Hydra's JWKS and returns its
// decoded header and claims.
func verify(t *testing.T, srv *hydra.Server, raw string) (header, claims map[string]any) {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3: %q", len(parts), raw)
	}
	decodeSegment(t, "header", parts[0], &header)
	decodeSegment(t, "claims", parts[1], &claims)
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatalf("signature: %v", err)
	}
	if header["alg"] != "RS256" {
		t.Fatalf("alg = %v; this test verifies RS256 only", header["alg"])
	}
	kid, _ := header["kid"].(string)

	var jwks struct {
		Keys []struct {
			Kid, Kty, Alg, Use, N, E string
		} `json:"keys"`
	}
	if status := getJSON(t, srv.JWKSURL, &jwks); status != http.StatusOK {
		t.Fatalf("%s: status %d", srv.JWKSURL, status)
	}
	i := slices.IndexFunc(jwks.Keys, func(k struct{ Kid, Kty, Alg, Use, N, E string }) bool { return k.Kid == kid })
	if i < 0 {
		t.Fatalf("kid %q not in JWKS %+v", kid, jwks.Keys)
	}
	k := jwks.Keys[i]
	if k.Kty != "RSA" || k.Alg != "RS256" || k.Use != "sig" {
		t.Errorf("JWKS key kty=%q alg=%q use=%q, want RSA RS256 sig", k.Kty, k.Alg, k.Use)
	}
	n, err1 := base64.RawURLEncoding.DecodeString(k.N)
	e, err2 := base64.RawURLEncoding.DecodeString(k.E)
	if err1 != nil || err2 != nil {
		t.Fatalf("JWKS key n/e: %v %v", err1, err2)
	}
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
	t.Logf("signing key: kid %s, RSA %d bits", kid, pub.N.BitLen())
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature does not verify with JWKS key %s: %v", kid, err)
	}
	return header, claims
}

func decodeSegment(t *testing.T, what, seg string, v any) {
	t.Helper()
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s %s: %v", what, data, err)
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(data, v); err != nil {
			t.Fatalf("GET %s: decoding %s: %v", url, data, err)
		}
	}
	return resp.StatusCode
}

// stringArray returns claims[name], failing t unless it is a JSON array of
// strings (a single string is not accepted).
func stringArray(t *testing.T, claims map[string]any, name string) []string {
	t.Helper()
	arr, ok := claims[name].([]any)
	if !ok {
		t.Fatalf("%s = %#v, want a JSON array", name, claims[name])
	}
	out := make([]string, 0, len(arr))
	for _, v := range arr {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("%s = %#v, want an array of strings", name, claims[name])
		}
		out = append(out, s)
	}
	return out
}

func numericDate(t *testing.T, claims map[string]any, name string) time.Time {
	t.Helper()
	f, ok := claims[name].(float64)
	if !ok {
		t.Fatalf("%s = %#v, want a NumericDate", name, claims[name])
	}
	return time.Unix(int64(f), 0)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
