package e2e

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/butler-mcp/butler/internal/devidp"
)

// TestServe_TokenAttacks sends forged, expired and misdirected tokens
// through the real `butler serve`: every one must get 401 invalid_token
// with a description naming the failed check, and no tool may run. The
// authn package has a unit test per attack that fails if its check is
// removed; this proves the HTTP chain applies them all.
func TestServe_TokenAttacks(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	ctx := context.Background()
	now := time.Now()

	// The attacker's own key and a server that would hand it out.
	var attackerHits atomic.Int32
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { attackerHits.Add(1) }))
	defer attacker.Close()
	evilKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	evilJWK := jose.JSONWebKey{Key: &evilKey.PublicKey, KeyID: "evil", Algorithm: "RS256", Use: "sig"}
	evilJWKJSON, _ := evilJWK.MarshalJSON()
	var evilJWKMap map[string]any
	json.Unmarshal(evilJWKJSON, &evilJWKMap)
	claims := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": e.issuer, "sub": "alice", "aud": s.url + "/mcp", "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "scope": "jenkins:read jenkins:build", "client_id": "e2e"}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	signEvil := func(header map[string]any) string {
		opts := (&jose.SignerOptions{}).WithType("JWT")
		for k, v := range header {
			opts = opts.WithHeader(jose.HeaderKey(k), v)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: evilKey, KeyID: "evil"}}, opts)
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims(nil))
		jws, err := signer.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	issue := func(req devidp.TokenRequest) string {
		if req.User == "" {
			req.User = "alice"
		}
		tok, err := e.idp.IssueToken(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	raw := func(header, c map[string]any) string {
		tok, err := e.idp.SignRaw(ctx, header, c)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}

	attacks := []struct {
		name, token, wantInDescription string
	}{
		{"alg none", unsignedToken(claims(nil)), "alg"},
		{"HS256 with the RSA public key as secret", hs256WithPublicKey(t, e.issuer, claims(nil)), "alg"},
		{"unknown kid", raw(map[string]any{"kid": "no-such-key"}, claims(nil)), "key"},
		{"jku header to the attacker's key set", signEvil(map[string]any{"jku": attacker.URL + "/jwks"}), "key"},
		{"x5u header to the attacker", signEvil(map[string]any{"x5u": attacker.URL + "/cert"}), "key"},
		{"embedded jwk header", signEvil(map[string]any{"jwk": evilJWKMap}), "key"},
		{"expired", issue(devidp.TokenRequest{TTL: -time.Minute}), "expired"},
		{"nbf in the future", issue(devidp.TokenRequest{Extra: map[string]any{"nbf": now.Add(time.Hour).Unix()}}), "not valid before"},
		{"missing exp", issue(devidp.TokenRequest{Extra: map[string]any{"exp": nil}}), "exp"},
		{"wrong iss", issue(devidp.TokenRequest{Extra: map[string]any{"iss": "https://evil.example.com"}}), "issued by"},
		{"issuer with a trailing slash", issue(devidp.TokenRequest{Extra: map[string]any{"iss": e.issuer + "/"}}), "issued by"},
		{"wrong aud", issue(devidp.TokenRequest{Extra: map[string]any{"aud": "https://other.example.com"}}), "audience"},
		{"token for another resource", issue(devidp.TokenRequest{Resource: "http://127.0.0.1:1/other-resource"}), "audience"},
		{"malformed: three parts of garbage", "abc.def.ghi", ""},
		{"malformed: too many dots", "a.b.c.d.e", ""},
		{"malformed: not base64", "!!!.???.###", ""},
		{"oversized (20 KiB)", strings.Repeat("a", 20<<10), "longer than 16384"},
	}
	for _, a := range attacks {
		resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + a.token}, toolCallBody("whoami", nil))
		www := resp.Header.Get("WWW-Authenticate")
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(www, `error="invalid_token"`) {
			t.Errorf("%s: status %d, WWW-Authenticate %q; want 401 invalid_token", a.name, resp.StatusCode, www)
			continue
		}
		if a.wantInDescription != "" && !strings.Contains(strings.ToLower(www), strings.ToLower(a.wantInDescription)) {
			t.Errorf("%s: description does not name the failed check (%q): %s", a.name, a.wantInDescription, www)
		}
		if len(a.token) > 16 && strings.Contains(www, a.token[len(a.token)-16:]) {
			t.Errorf("%s: the challenge echoes the token", a.name)
		}
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("Butler fetched the attacker's URL %d times (jku/x5u must be ignored)", n)
	}
	// 1 MB: refused, at the latest by the header size limit.
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 1<<20)}, initializeBody)
	if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("1 MB token: %d", resp.StatusCode)
	}
	for _, r := range e.sim.Requests() {
		t.Errorf("a forged token reached Jenkins: %+v", r)
	}
}

// TestServe_TokenReplayedAfterKeyRemoval: once the IdP drops a key and
// Butler learns of it (a token with the new key makes it refetch the JWKS),
// tokens signed with the old key are refused, even ones Butler had accepted
// and cached before.
func TestServe_TokenReplayedAfterKeyRemoval(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	e := newIdPEnv(t, "http://"+addr+"/mcp")
	s := startServe(t, addr, serveConfig(addr, e, ""))
	old := e.token(t, "alice")
	if resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + old}, initializeBody); resp.StatusCode != 200 {
		t.Fatalf("token before rotation: %d", resp.StatusCode)
	}
	oldKID, _, err := e.idp.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := e.idp.RemoveKey(oldKID); err != nil {
		t.Fatal(err)
	}
	fresh := e.token(t, "alice")
	if resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + fresh}, initializeBody); resp.StatusCode != 200 {
		t.Fatalf("token signed with the new key: %d", resp.StatusCode)
	}
	resp := rawMCP(t, s.url, map[string]string{"Authorization": "Bearer " + old}, initializeBody)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("replayed token after its key was removed: %d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

func b64(v any) string {
	data, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(data)
}

func unsignedToken(claims map[string]any) string {
	return b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
}

// hs256WithPublicKey forges the classic key-confusion token: HMAC-SHA256
// keyed with the IdP's RSA public key, which anyone can download.
func hs256WithPublicKey(t *testing.T, issuer string, claims map[string]any) string {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	json.NewDecoder(resp.Body).Decode(&meta)
	resp.Body.Close()
	resp, err = http.Get(meta.JWKS)
	if err != nil {
		t.Fatal(err)
	}
	var set jose.JSONWebKeySet
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	if len(set.Keys) == 0 {
		t.Fatal("IdP has no keys")
	}
	der, err := x509.MarshalPKIXPublicKey(set.Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	signing := b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": set.Keys[0].KeyID}) + "." + b64(claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(signing))
	return signing + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}
