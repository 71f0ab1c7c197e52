package devidp

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"hash"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// rsaKeyBits is the size of generated signing keys.
const rsaKeyBits = 2048

// signingKey is an RS256 key; it implements op.SigningKey.
type signingKey struct {
	kid  string
	priv *rsa.PrivateKey
}

func newSigningKey() (*signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, rsaKeyBits)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate key: %w", err)
	}
	// The RFC 7638 thumbprint makes a kid that is unique and stable for the key.
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: key thumbprint: %w", err)
	}
	return &signingKey{kid: base64.RawURLEncoding.EncodeToString(thumb), priv: priv}, nil
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k *signingKey) Key() any                                    { return k.priv }
func (k *signingKey) ID() string                                  { return k.kid }

// publicKey is the JWKS entry of a signing key; it implements op.Key.
type publicKey struct{ k *signingKey }

func (p publicKey) ID() string                         { return p.k.kid }
func (p publicKey) Algorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (p publicKey) Use() string                        { return "sig" }
func (p publicKey) Key() any                           { return &p.k.priv.PublicKey }

var (
	_ op.SigningKey = (*signingKey)(nil)
	_ op.Key        = publicKey{}
)

// RotateKey adds a new signing key and signs with it from now on. The old key
// stays in the JWKS, so tokens it signed still verify until [Provider.RemoveKey].
func (p *Provider) RotateKey() (oldKID, newKID string, err error) {
	k, err := newSigningKey()
	if err != nil {
		return "", "", err
	}
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	oldKID = s.keys[len(s.keys)-1].kid
	s.keys = append(s.keys, k)
	p.log.Info("devidp: signing key rotated", "old_kid", oldKID, "new_kid", k.kid)
	return oldKID, k.kid, nil
}

// RemoveKey drops the key kid from the JWKS, so a resource server that
// refetches the JWKS no longer accepts tokens it signed. The current signing
// key cannot be removed: rotate first.
func (p *Provider) RemoveKey(kid string) error {
	s := p.store
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.keys, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("%w: %q", ErrUnknownKey, kid)
	}
	if i == len(s.keys)-1 {
		return fmt.Errorf("devidp: key %q is the current signing key; rotate before removing it", kid)
	}
	s.keys = slices.Delete(s.keys, i, i+1)
	p.log.Info("devidp: signing key removed", "kid", kid)
	return nil
}

// CurrentKeyID returns the kid of the key new tokens are signed with.
func (p *Provider) CurrentKeyID() string {
	return p.store.currentKey().kid
}

// SignRaw signs claims with the current key under a header built from
// {"alg": "RS256", "typ": "at+jwt", "kid": <current kid>} and the entries of
// header, which override those (a nil value removes one). It is for
// adversarial tests: nothing is checked. Supported alg values are RS256,
// RS384, RS512, PS256, PS384, PS512 (signed with the current RSA key) and
// "none" (an empty signature).
func (p *Provider) SignRaw(ctx context.Context, header, claims map[string]any) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	key := p.store.currentKey()
	h := map[string]any{"alg": "RS256", "typ": "at+jwt", "kid": key.kid}
	for k, v := range header {
		if v == nil {
			delete(h, k)
			continue
		}
		h[k] = v
	}
	hb, err := json.Marshal(h)
	if err != nil {
		return "", fmt.Errorf("devidp: sign raw: header: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("devidp: sign raw: claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	alg, _ := h["alg"].(string)
	sig, err := rawSignature(alg, key.priv, []byte(input))
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// rawSignature signs input with priv for the JWS alg.
func rawSignature(alg string, priv *rsa.PrivateKey, input []byte) ([]byte, error) {
	var (
		h    hash.Hash
		hash crypto.Hash
		pss  bool
	)
	switch alg {
	case "none":
		return nil, nil
	case "RS256", "PS256":
		h, hash = sha256.New(), crypto.SHA256
	case "RS384", "PS384":
		h, hash = sha512.New384(), crypto.SHA384
	case "RS512", "PS512":
		h, hash = sha512.New(), crypto.SHA512
	default:
		return nil, fmt.Errorf("devidp: sign raw: unsupported alg %q", alg)
	}
	pss = alg[0] == 'P'
	h.Write(input)
	digest := h.Sum(nil)
	if pss {
		return rsa.SignPSS(rand.Reader, priv, hash, digest, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
	}
	return rsa.SignPKCS1v15(rand.Reader, priv, hash, digest)
}
