package authn

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// minRSABits is the smallest RSA modulus accepted in a key set (RFC 7518 §3.3).
const minRSABits = 2048

// verificationKey is a public key from the issuer's JWK Set (RFC 7517) that
// may verify signatures.
type verificationKey struct {
	kid   string
	alg   string           // the JWK's own alg (RFC 7517 §4.4), "" when it has none
	key   crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
	thumb string           // RFC 7638 thumbprint: the key's identity across refreshes
}

// fits reports whether a JWS whose header says alg may be verified with k:
// the alg must belong to the key's type and curve, and equal the JWK's own
// alg when it has one. This is checked here as well as by the library so
// that no key is ever used with an algorithm of another family (the
// RSA-public-key-as-HMAC-secret forgery needs exactly that).
func (k verificationKey) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch pub := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return alg == "ES256" && pub.Curve == elliptic.P256() ||
			alg == "ES384" && pub.Curve == elliptic.P384() ||
			alg == "ES512" && pub.Curve == elliptic.P521()
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// fitsAny reports whether k fits one of the allowed algorithms.
func (k verificationKey) fitsAny(allowed map[string]bool) bool {
	for alg := range allowed {
		if k.fits(alg) {
			return true
		}
	}
	return false
}

// keySnapshot is one fetched key set, never modified after parsing.
type keySnapshot struct {
	byKID  map[string][]verificationKey
	anon   []verificationKey // keys without kid: usable only when there is exactly one
	n      int               // usable keys
	thumbs map[string]string // thumbprint → kid, of the usable keys
}

// candidates are the keys a token with this kid may be verified with. A
// token without kid may use the only key without kid, or the only key of a
// one-key set: trying it is as safe as any signature check.
func (s *keySnapshot) candidates(kid string) []verificationKey {
	switch {
	case kid != "":
		return s.byKID[kid]
	case len(s.anon) == 1:
		return s.anon
	case s.n == 1:
		for _, keys := range s.byKID {
			return keys
		}
	}
	return nil
}

// parseKeySet keeps the keys of a JWK Set that can verify signatures with
// an allowed algorithm. Each key is parsed on its own, with go-jose, so one
// key of a type this library does not know does not void the whole set.
func parseKeySet(ctx context.Context, body []byte, allowed map[string]bool, log *slog.Logger) (*keySnapshot, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, errors.New("the key set is not a JWK Set (RFC 7517 §5)")
	}
	s := &keySnapshot{byKID: map[string][]verificationKey{}, thumbs: map[string]string{}}
	var anon []verificationKey
	for i, raw := range set.Keys {
		k, why := parseKey(raw, allowed)
		if why != "" {
			log.DebugContext(ctx, "authn: key skipped", "index", i, "kid", k.kid, "why", why)
			continue
		}
		if k.kid == "" {
			anon = append(anon, k)
			continue
		}
		s.byKID[k.kid] = append(s.byKID[k.kid], k)
		s.thumbs[k.thumb] = k.kid
		s.n++
	}
	if len(anon) == 1 {
		s.anon = anon
		s.thumbs[anon[0].thumb] = ""
		s.n++
	} else if len(anon) > 1 {
		log.WarnContext(ctx, "authn: keys without kid skipped: the key set has several", "count", len(anon))
	}
	if s.n == 0 {
		return nil, fmt.Errorf("the key set has no usable signature key for the allowed algorithms (%d keys)", len(set.Keys))
	}
	return s, nil
}

// parseKey returns the key, or why it cannot be used.
func parseKey(raw json.RawMessage, allowed map[string]bool) (verificationKey, string) {
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		var named struct {
			KID string `json:"kid"`
		}
		_ = json.Unmarshal(raw, &named)
		return verificationKey{kid: named.KID}, "not a key go-jose can parse"
	}
	k := verificationKey{kid: jwk.KeyID, alg: jwk.Algorithm}
	if jwk.Use != "" && jwk.Use != "sig" {
		return k, "use is " + safeText(jwk.Use)
	}
	if jwk.Algorithm != "" && !allowed[jwk.Algorithm] {
		return k, "alg " + safeText(jwk.Algorithm) + " is not allowed"
	}
	// A set that publishes private keys is misconfigured, but its public
	// halves verify as well as ever; symmetric keys are never used.
	pub := jwk.Public()
	switch key := pub.Key.(type) {
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return k, fmt.Sprintf("RSA key of %d bits", key.N.BitLen())
		}
	case *ecdsa.PublicKey, ed25519.PublicKey:
	default:
		return k, "not an RSA, EC or Ed25519 public key"
	}
	k.key = pub.Key
	if !k.fitsAny(allowed) {
		return k, "fits no allowed algorithm"
	}
	thumb, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return k, "no thumbprint"
	}
	k.thumb = base64.RawURLEncoding.EncodeToString(thumb)
	return k, ""
}

// errRateLimited says an unknown kid did not cause a fetch because one was
// made less than JWKSMinRefresh ago.
var errRateLimited = errors.New("key set fetched recently")

// keySet is the issuer's key set, cached. Like go-oidc's remote key set, it
// fetches again only for a kid it does not know, merges concurrent fetches,
// and keeps its keys when a fetch fails, so an issuer outage does not lock
// users out; unlike it, fetches for unknown kids are rate-limited, so a
// flood of tokens with made-up kids cannot turn Butler against the issuer.
type keySet struct {
	fetch      func(context.Context) ([]byte, error)
	allowed    map[string]bool
	now        func() time.Time
	minRefresh time.Duration
	log        *slog.Logger
	// removed is told the thumbprints of keys a refresh dropped.
	removed func(thumbs map[string]bool)

	group singleflight.Group

	mu         sync.RWMutex
	cur        *keySnapshot // nil until a fetch succeeds
	lastErr    error        // of the latest fetch; nil after a success
	lastDemand time.Time    // of the latest fetch caused by an unknown kid
}

type lookupResult int

const (
	keyFound lookupResult = iota
	keyMissing
	keyMismatch // the kid is known but its key does not fit the alg
)

func (ks *keySet) lookup(kid, alg string) (verificationKey, lookupResult) {
	ks.mu.RLock()
	snap := ks.cur
	ks.mu.RUnlock()
	if snap == nil {
		return verificationKey{}, keyMissing
	}
	cands := snap.candidates(kid)
	if len(cands) == 0 {
		return verificationKey{}, keyMissing
	}
	for _, k := range cands {
		if k.fits(alg) {
			return k, keyFound
		}
	}
	return verificationKey{}, keyMismatch
}

// find returns the key for a token's kid and alg, fetching the key set once
// (rate-limited, merged) when the kid is unknown.
func (ks *keySet) find(ctx context.Context, kid, alg string) (verificationKey, *Error) {
	k, res := ks.lookup(kid, alg)
	if res == keyMissing {
		err := ks.refresh(ctx, true)
		if k, res = ks.lookup(kid, alg); res == keyMissing {
			return verificationKey{}, ks.missing(ctx, kid, err)
		}
	}
	if res == keyMismatch {
		return verificationKey{}, invalid(ReasonAlg, "the token's algorithm %s does not fit the issuer's key %s", safeText(alg), safeText(kidName(kid)))
	}
	return k, nil
}

// missing explains why no key was found after a refresh (or a skipped one).
func (ks *keySet) missing(ctx context.Context, kid string, refreshErr error) *Error {
	fetched, lastErr := ks.status()
	switch {
	case !fetched:
		return unavailable("the issuer's signing keys have not been fetched yet")
	case lastErr != nil:
		return unavailable("the issuer's key set cannot be fetched to look up the token's key")
	case refreshErr != nil && ctx.Err() != nil:
		return unavailable("the request ended while the issuer's key set was being fetched")
	case kid == "":
		return invalid(ReasonUnknownKID, "the token has no kid and the issuer's key set has several keys")
	}
	return invalid(ReasonUnknownKID, "the issuer's key set has no key %s", safeText(kid))
}

// refresh fetches the key set, joining a fetch already under way. With
// forKID (an unknown kid) it fetches only if no such fetch was made in the
// last JWKSMinRefresh, else returns errRateLimited at once.
func (ks *keySet) refresh(ctx context.Context, forKID bool) error {
	ch := ks.group.DoChan("jwks", func() (any, error) {
		if forKID {
			ks.mu.Lock()
			now := ks.now()
			if !ks.lastDemand.IsZero() && now.Sub(ks.lastDemand) < ks.minRefresh {
				ks.mu.Unlock()
				return nil, errRateLimited
			}
			ks.lastDemand = now
			ks.mu.Unlock()
		}
		// The fetch serves every caller merged into it, so one caller
		// giving up must not cancel it; the HTTP client's timeout bounds it.
		return nil, ks.fetchAndSwap(context.WithoutCancel(ctx))
	})
	select {
	case r := <-ch:
		return r.Err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ks *keySet) fetchAndSwap(ctx context.Context) error {
	body, err := ks.fetch(ctx)
	var snap *keySnapshot
	if err == nil {
		snap, err = parseKeySet(ctx, body, ks.allowed, ks.log)
	}
	ks.mu.Lock()
	old := ks.cur
	ks.lastErr = err
	if err == nil {
		ks.cur = snap
	}
	ks.mu.Unlock()
	if err != nil {
		return err
	}

	var added, gone []string
	removed := map[string]bool{}
	for thumb, kid := range snap.thumbs {
		if old == nil || !hasThumb(old, thumb) {
			added = append(added, kidName(kid))
		}
	}
	if old != nil {
		for thumb, kid := range old.thumbs {
			if !hasThumb(snap, thumb) {
				removed[thumb] = true
				gone = append(gone, kidName(kid))
			}
		}
	}
	if len(added) > 0 {
		ks.log.InfoContext(ctx, "authn: signing keys added", "kids", added)
	}
	if len(gone) > 0 {
		ks.log.InfoContext(ctx, "authn: signing keys removed", "kids", gone)
		ks.removed(removed)
	}
	return nil
}

func hasThumb(s *keySnapshot, thumb string) bool {
	_, ok := s.thumbs[thumb]
	return ok
}

func kidName(kid string) string {
	if kid == "" {
		return "(no kid)"
	}
	return kid
}

// has reports whether the current key set holds the key with this thumbprint.
func (ks *keySet) has(thumb string) bool {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.cur != nil && hasThumb(ks.cur, thumb)
}

// status reports whether a key set was ever fetched, and the error of the
// latest fetch.
func (ks *keySet) status() (fetched bool, lastErr error) {
	ks.mu.RLock()
	defer ks.mu.RUnlock()
	return ks.cur != nil, ks.lastErr
}
