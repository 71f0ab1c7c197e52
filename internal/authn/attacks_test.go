package authn

// One test per attack on token verification. Each fails if the check that
// stops the attack is removed.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestVerify_RejectsAlgNone(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	for _, alg := range []string{"none", "None", "NONE"} {
		tok := rawJWS(t, map[string]any{"alg": alg, "kid": "rsa1", "typ": "JWT"}, f.idp.claims(f.clock), nil)
		_, err := f.v.Verify(t.Context(), tok)
		wantReason(t, err, ReasonAlg, ErrInvalidToken)
	}
}

// The classic forgery: the attacker signs with HS256, using the issuer's
// public RSA key (which everyone can fetch) as the HMAC secret, hoping the
// verifier passes "the key for kid rsa1" to an HMAC check.
func TestVerify_RejectsHS256SignedWithThePublicKey(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	pub := &testKeyMaterial().rsa1.PublicKey
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	jwkJSON, err := json.Marshal(rsaKey().jwk())
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"der":   der,
		"pem":   pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}),
		"pkcs1": x509.MarshalPKCS1PublicKey(pub),
		"jwk":   jwkJSON,
	}
	for name, secret := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			header := map[string]any{"alg": alg, "kid": "rsa1", "typ": "JWT"}
			unsigned := rawJWS(t, header, f.idp.claims(f.clock), nil)
			mac := hmac.New(sha256.New, secret)
			mac.Write([]byte(strings.TrimSuffix(unsigned, ".")))
			tok := unsigned + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
			_, err := f.v.Verify(t.Context(), tok)
			if e := wantReason(t, err, ReasonAlg, ErrInvalidToken); !strings.Contains(e.Description, alg) {
				t.Errorf("%s/%s: description %q does not name the alg", name, alg, e.Description)
			}
		}
	}
}

// The second lock against algorithm confusion: even if the allow-list let
// an alg through, a key is only ever used with an alg of its own family.
func TestKeyFits_OnlyTheKeysOwnAlgorithmFamily(t *testing.T) {
	t.Parallel()
	m := testKeyMaterial()
	rsaK := verificationKey{kid: "r", key: &m.rsa1.PublicKey}
	rsaWithAlg := verificationKey{kid: "r", alg: "RS256", key: &m.rsa1.PublicKey}
	ecK := verificationKey{kid: "e", key: &m.ec.PublicKey}
	edK := verificationKey{kid: "d", key: m.ed.Public()}
	tests := []struct {
		key  verificationKey
		alg  string
		want bool
	}{
		{rsaK, "RS256", true}, {rsaK, "PS512", true},
		{rsaK, "HS256", false}, {rsaK, "none", false}, {rsaK, "ES256", false}, {rsaK, "EdDSA", false},
		{rsaWithAlg, "PS256", false}, // the JWK's own alg binds it
		{ecK, "ES256", true}, {ecK, "ES384", false}, {ecK, "HS256", false}, {ecK, "RS256", false},
		{edK, "EdDSA", true}, {edK, "ES256", false}, {edK, "HS256", false},
	}
	for _, tt := range tests {
		if got := tt.key.fits(tt.alg); got != tt.want {
			t.Errorf("key %s fits(%s) = %v, want %v", tt.key.kid, tt.alg, got, tt.want)
		}
	}
}

func TestNew_RefusesUnsafeAlgorithms(t *testing.T) {
	t.Parallel()
	for _, alg := range []string{"none", "HS256", "HS384", "HS512", "hs256", "RSA-OAEP", "XYZ"} {
		_, err := New(t.Context(), Options{Issuer: "https://idp.example.com", Audiences: []string{testAudience}, Algorithms: []string{"RS256", alg}})
		if err == nil || !strings.Contains(err.Error(), alg) {
			t.Errorf("New with algorithm %q: error %v, want one naming it", alg, err)
		}
	}
}

func TestVerify_UnknownKIDFailsAfterExactlyOneRefresh(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	before := f.idp.jwksHits.Load()
	tok := sign(t, rsaKey().withKID("not-published"), f.idp.claims(f.clock))
	for range 3 {
		_, err := f.v.Verify(t.Context(), tok)
		wantReason(t, err, ReasonUnknownKID, ErrInvalidToken)
	}
	if got := f.idp.jwksHits.Load() - before; got != 1 {
		t.Errorf("the unknown kid caused %d key set fetches, want exactly 1", got)
	}
}

// Headers that name a key (jku, x5u: where to fetch it; jwk, x5c: the key
// itself) are the attacker's choice, so they are never followed or trusted.
func TestVerify_IgnoresKeysNamedByTheToken(t *testing.T) {
	t.Parallel()
	evil := attackerKey()
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attackerHits.Add(1)
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{evil.jwk(), evil.withKID("rsa1").jwk()}})
	}))
	t.Cleanup(attacker.Close)
	cert := selfSignedCert(t, evil)

	f := readyFixture(t, []testKey{rsaKey(), ecKey()})
	tests := []struct {
		name   string
		key    testKey
		header func(*jose.SignerOptions)
		want   string
	}{
		{"jku with the issuer's kid", evil.withKID("rsa1"), withHeader("jku", attacker.URL+"/jwks"), ReasonSignature},
		{"jku with the attacker's kid", evil, withHeader("jku", attacker.URL+"/jwks"), ReasonUnknownKID},
		{"x5u with the issuer's kid", evil.withKID("rsa1"), withHeader("x5u", attacker.URL+"/cert.pem"), ReasonSignature},
		{"x5u with the attacker's kid", evil, withHeader("x5u", attacker.URL+"/cert.pem"), ReasonUnknownKID},
		{"embedded jwk without kid", evil.withKID(""), func(so *jose.SignerOptions) { so.EmbedJWK = true }, ReasonUnknownKID},
		{"embedded jwk with the issuer's kid", evil.withKID(""), func(so *jose.SignerOptions) {
			so.EmbedJWK = true
			so.WithHeader("kid", "rsa1")
		}, ReasonSignature},
		{"x5c with the issuer's kid", evil.withKID("rsa1"), withHeader("x5c", []string{cert}), ReasonSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := sign(t, tt.key, f.idp.claims(f.clock), tt.header)
			_, err := f.v.Verify(t.Context(), tok)
			wantReason(t, err, tt.want, ErrInvalidToken)
		})
	}
	if n := attackerHits.Load(); n != 0 {
		t.Errorf("the attacker's server was fetched %d times", n)
	}
}

func selfSignedCert(t *testing.T, k testKey) string {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func TestVerify_RejectsATamperedPayload(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	tok := sign(t, rsaKey(), f.idp.claims(f.clock))
	parts := strings.Split(tok, ".")
	c := f.idp.claims(f.clock)
	c["sub"] = "admin"
	forged, _ := json.Marshal(c)
	parts[1] = base64.RawURLEncoding.EncodeToString(forged)
	_, err := f.v.Verify(t.Context(), strings.Join(parts, "."))
	wantReason(t, err, ReasonSignature, ErrInvalidToken)
}

// crit names header parameters the verifier must understand; Butler
// understands none, so such a token is refused even where go-jose itself
// would accept it (b64).
func TestVerify_RejectsCriticalHeaders(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	tok := sign(t, rsaKey(), f.idp.claims(f.clock), func(so *jose.SignerOptions) {
		so.WithBase64(true).WithCritical("b64")
	})
	_, err := f.v.Verify(t.Context(), tok)
	wantReason(t, err, ReasonCrit, ErrInvalidToken)
}

// b64 (RFC 7797) changes what the signature covers; a JWT never uses it.
func TestVerify_RejectsTheB64Header(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	tok := sign(t, rsaKey(), f.idp.claims(f.clock), withHeader("b64", true))
	_, err := f.v.Verify(t.Context(), tok)
	wantReason(t, err, ReasonMalformed, ErrInvalidToken)
}

func TestVerify_TimeClaims(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	now := f.clock.Now().Unix()
	tests := []struct {
		name   string
		change map[string]any // nil value: delete the claim
		want   string
	}{
		{"expired", map[string]any{"exp": now - 3600}, ReasonExp},
		{"not yet valid", map[string]any{"nbf": now + 3600}, ReasonNbf},
		{"issued in the future", map[string]any{"iat": now + 3600}, ReasonIat},
		{"missing exp", map[string]any{"exp": nil}, ReasonMissingExp},
		{"exp as a string", map[string]any{"exp": "4102444800"}, ReasonExp},
		{"exp negative", map[string]any{"exp": -1}, ReasonExp},
		{"exp beyond year 9999", map[string]any{"exp": 1e300}, ReasonExp},
		{"nbf as a string", map[string]any{"nbf": "0"}, ReasonNbf},
		{"iat as a bool", map[string]any{"iat": true}, ReasonIat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.idp.claims(f.clock)
			for k, v := range tt.change {
				if v == nil {
					delete(c, k)
				} else {
					c[k] = v
				}
			}
			_, err := f.v.Verify(t.Context(), sign(t, ecKey(), c))
			wantReason(t, err, tt.want, ErrInvalidToken)
		})
	}
}

func TestVerify_ClockSkewBothWays(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()}) // default skew 30s
	now := f.clock.Now().Unix()
	tests := []struct {
		name   string
		change map[string]any
		want   string // "" means valid
	}{
		{"expired 20s ago", map[string]any{"exp": now - 20}, ""},
		{"expired 40s ago", map[string]any{"exp": now - 40}, ReasonExp},
		{"expires now", map[string]any{"exp": now}, ""},
		{"fractional exp 29.5s ago", map[string]any{"exp": float64(now) - 29.5}, ""},
		{"valid from 20s on", map[string]any{"nbf": now + 20}, ""},
		{"valid from 40s on", map[string]any{"nbf": now + 40}, ReasonNbf},
		{"issued 20s ahead", map[string]any{"iat": now + 20}, ""},
		{"issued 40s ahead", map[string]any{"iat": now + 40}, ReasonIat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.idp.claims(f.clock)
			for k, v := range tt.change {
				c[k] = v
			}
			_, err := f.v.Verify(t.Context(), sign(t, ecKey(), c))
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			wantReason(t, err, tt.want, ErrInvalidToken)
		})
	}
}

func TestVerify_WrongIssuer(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	for _, iss := range []any{
		"https://evil.example.com/realms/eng",
		f.idp.issuer + "/",
		strings.TrimSuffix(f.idp.issuer, "g"),
		f.idp.issuer + "x",
		strings.ToUpper(f.idp.issuer),
		[]string{f.idp.issuer},
		nil,
	} {
		c := f.idp.claims(f.clock)
		if iss == nil {
			delete(c, "iss")
		} else {
			c["iss"] = iss
		}
		_, err := f.v.Verify(t.Context(), sign(t, ecKey(), c))
		wantReason(t, err, ReasonIss, ErrInvalidToken)
	}
}

func TestVerify_WrongAudience(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	tests := []struct {
		name string
		aud  any
	}{
		{"a token for another resource", "https://other.example.com/mcp"},
		{"a token for another path of this host", "https://butler.example.com/other"},
		{"the resource with a suffix", testAudience + "/extra"},
		{"the resource with a trailing slash", testAudience + "/"},
		{"an array without it", []string{"https://other.example.com/mcp", "account"}},
		{"an empty array", []string{}},
		{"a number", 42},
		{"an array with a non-string", []any{testAudience, 1}},
		{"missing", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.idp.claims(f.clock)
			if tt.aud == nil {
				delete(c, "aud")
			} else {
				c["aud"] = tt.aud
			}
			e := wantReason(t, func() error { _, err := f.v.Verify(t.Context(), sign(t, ecKey(), c)); return err }(), ReasonAud, ErrInvalidToken)
			if tt.name == "a token for another resource" && !strings.Contains(e.Description, testAudience) {
				t.Errorf("description %q does not name the expected audience", e.Description)
			}
		})
	}
	// And the accepted forms.
	for _, aud := range []any{testAudience, []string{"account", testAudience}} {
		c := f.idp.claims(f.clock)
		c["aud"] = aud
		if _, err := f.v.Verify(t.Context(), sign(t, ecKey(), c)); err != nil {
			t.Errorf("aud %v: %v", aud, err)
		}
	}
}

func TestVerify_Malformed(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{ecKey()})
	valid := sign(t, ecKey(), f.idp.claims(f.clock))
	parts := strings.Split(valid, ".")
	b64 := base64.RawURLEncoding.EncodeToString
	tokens := map[string]string{
		"empty":                     "",
		"no dot":                    "abcdef",
		"one dot":                   parts[0] + "." + parts[1],
		"three dots":                valid + ".xyz",
		"four dots (a JWE)":         "a.b.c.d.e",
		"bad base64 in the header":  "e$J." + parts[1] + "." + parts[2],
		"base64 with padding":       parts[0] + "=." + parts[1] + "." + parts[2],
		"non-JSON header":           b64([]byte("not json")) + "." + parts[1] + "." + parts[2],
		"header a JSON array":       b64([]byte(`["ES256"]`)) + "." + parts[1] + "." + parts[2],
		"empty parts":               "..",
		"no alg":                    rawJWS(t, map[string]any{"kid": "ec1"}, f.idp.claims(f.clock), []byte("sig")),
		"space inside":              parts[0] + " ." + parts[1] + "." + parts[2],
		"JSON serialization":        `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		"a newline":                 valid + "\n",
		"non-ASCII":                 "tøken",
		"signed non-JSON payload":   signPayload(t, ecKey(), []byte("hello")),
		"signed JSON array payload": signPayload(t, ecKey(), []byte(`[1,2]`)),
		"signed payload with trailing data": signPayload(t, ecKey(),
			append(mustJSON(t, f.idp.claims(f.clock)), []byte(` {}`)...)),
		"signed null payload": signPayload(t, ecKey(), []byte("null")),
	}
	for name, tok := range tokens {
		t.Run(name, func(t *testing.T) {
			_, err := f.v.Verify(t.Context(), tok)
			e := wantReason(t, err, ReasonMalformed, ErrInvalidToken)
			if tok != "" && strings.Contains(e.Error(), tok) {
				t.Errorf("the error echoes the token: %q", e.Error())
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerify_HugeTokenIsRefusedWithoutParsing(t *testing.T) {
	// Not parallel: AllocsPerRun counts every goroutine's allocations.
	f := readyFixture(t, []testKey{ecKey()}, func(o *Options) { o.Logger = slog.New(slog.DiscardHandler) })
	huge := strings.Repeat("eyJhbGciOiJFUzI1NiJ9", 1<<20/20) + ".e30.sig"
	_, err := f.v.Verify(t.Context(), huge)
	wantReason(t, err, ReasonTooLarge, ErrInvalidToken)
	// It is refused before any copy or decoding: a few small allocations
	// (the error), not megabytes.
	allocs := testing.AllocsPerRun(20, func() { _, _ = f.v.Verify(t.Context(), huge) })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 20 {
		_, _ = f.v.Verify(t.Context(), huge)
	}
	runtime.ReadMemStats(&after)
	perCall := (after.TotalAlloc - before.TotalAlloc) / 20
	t.Logf("refusing a 1 MB token: %v allocations, %d bytes", allocs, perCall)
	if allocs > 6 || perCall > 4<<10 {
		t.Errorf("refusing a 1 MB token made %v allocations of %d bytes in all, want a handful of small ones", allocs, perCall)
	}
	// Just over the limit is refused, at the limit it is parsed.
	_, err = f.v.Verify(t.Context(), strings.Repeat("a", DefaultMaxTokenBytes+1))
	wantReason(t, err, ReasonTooLarge, ErrInvalidToken)
	_, err = f.v.Verify(t.Context(), strings.Repeat("a", DefaultMaxTokenBytes))
	wantReason(t, err, ReasonMalformed, ErrInvalidToken)
}

// A key the issuer withdrew (compromised, rotated out) must stop verifying
// as soon as a refresh sees it gone, including tokens already verified and
// cached.
func TestVerify_ReplayAfterKeyRemoved(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey(), ecKey()})
	c := f.idp.claims(f.clock)
	c["exp"] = f.clock.Now().Add(time.Hour).Unix()
	cached := sign(t, rsaKey(), c)
	c["jti"] = "t-2"
	fresh := sign(t, rsaKey(), c)
	if _, err := f.v.Verify(t.Context(), cached); err != nil {
		t.Fatal(err)
	}

	f.idp.publish(ecKey())
	if err := f.v.refresh(t.Context()); err != nil { // the background refresh step
		t.Fatal(err)
	}
	for name, tok := range map[string]string{"cached": cached, "fresh": fresh} {
		_, err := f.v.Verify(t.Context(), tok)
		if err == nil {
			t.Fatalf("the %s token still verifies after its key was removed", name)
		}
		wantReason(t, err, ReasonUnknownKID, ErrInvalidToken)
	}
	if n := f.v.verified.len(); n != 0 {
		t.Errorf("the verified-token cache still holds %d entries", n)
	}
}

// A key whose kid stays but whose material changes is a removed key too.
func TestVerify_KeyReplacedUnderTheSameKID(t *testing.T) {
	t.Parallel()
	f := readyFixture(t, []testKey{rsaKey()})
	tok := sign(t, rsaKey(), f.idp.claims(f.clock))
	if _, err := f.v.Verify(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	f.idp.publish(rsaKey2().withKID("rsa1"))
	if err := f.v.refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, err := f.v.Verify(t.Context(), tok)
	wantReason(t, err, ReasonSignature, ErrInvalidToken)
}
