package authn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Background retry delays while the authorization server cannot be reached.
const (
	minRetry = time.Second
	maxRetry = 5 * time.Minute
)

// Identity is what a verified token says about its bearer.
type Identity struct {
	// User is the value of Options.UserClaim.
	User string
	// Groups are the values of Options.GroupsClaim; nil when absent.
	Groups []string
	// Scopes merge "scope" (a space-separated string, RFC 9068 §2.2.3) and
	// "scp" (an array or a string: Ory Hydra, Entra ID, Okta), de-duplicated,
	// in order.
	Scopes []string
	// ClientID is "client_id", else "azp", else "cid".
	ClientID string
	// Issuer is the token's iss, which equals Options.Issuer.
	Issuer string
	// Audience is the token's aud (RFC 7519 §4.1.3) as a list.
	Audience []string
	// Expiry is exp (RFC 7519 §4.1.4), required in a JWT. For an
	// introspected token without exp it is when the answer stops being
	// reused.
	Expiry time.Time
	// TokenID is jti (RFC 7519 §4.1.7), if present.
	TokenID string
	// Opaque is true when the token was verified by introspection (RFC 7662).
	Opaque bool
}

func (id *Identity) clone() *Identity {
	c := *id
	c.Groups = slices.Clone(id.Groups)
	c.Scopes = slices.Clone(id.Scopes)
	c.Audience = slices.Clone(id.Audience)
	return &c
}

// Verifier verifies bearer tokens (RFC 6750) for one resource: JWTs
// (RFC 7519) signed with a key from the issuer's JWK Set (RFC 7517), and,
// when configured, opaque tokens by introspection (RFC 7662). It is safe
// for concurrent use.
type Verifier struct {
	opts     options
	keys     *keySet
	intro    *introspector // nil without introspection
	verified *lru[verifiedToken]
	after    func(time.Duration) <-chan time.Time

	// introspectOnly is set when the issuer's metadata has no jwks_uri and
	// introspection is configured: then every token goes there.
	introspectOnly atomic.Bool

	mu    sync.Mutex
	md    *metadata // nil until discovery succeeds
	mdErr error

	// signatureChecks counts signatures verified, so tests and benchmarks
	// can tell a cache hit from a full verification.
	signatureChecks atomic.Int64

	cancel    context.CancelFunc
	done      chan struct{}
	closeOnce sync.Once
}

// verifiedToken is a cached verification: the identity, and the key that
// verified it, so the entry goes when the key leaves the key set.
type verifiedToken struct {
	id    *Identity
	thumb string
}

// New validates opts and starts a Verifier. It does not wait for the
// authorization server: discovery (RFC 8414) and the key set are fetched
// in the background, retried while the server cannot be reached, and also
// fetched on demand by Verify; Ready says whether they were. Background
// work stops when ctx is done or Close is called.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	return newVerifier(ctx, opts, time.After)
}

// newVerifier is New with the timer of the background loop injected, so
// tests drive it with their fake clock.
func newVerifier(ctx context.Context, opts Options, after func(time.Duration) <-chan time.Time) (*Verifier, error) {
	o, err := normalize(opts)
	if err != nil {
		return nil, err
	}
	v := &Verifier{
		opts:     o,
		verified: newLRU[verifiedToken](o.TokenCacheSize, 0),
		after:    after,
		done:     make(chan struct{}),
	}
	v.keys = &keySet{
		fetch:      v.fetchKeySet,
		allowed:    o.allowed,
		now:        o.Now,
		minRefresh: o.JWKSMinRefresh,
		log:        o.Logger,
		removed:    v.forget,
	}
	if o.Introspection != nil {
		v.intro = newIntrospector(o.TokenCacheSize)
	}
	for _, s := range []string{o.Issuer, o.JWKSURL, o.intro.URL} {
		if u, err := url.Parse(s); err == nil && u.Scheme == "http" && !isLoopback(u) {
			o.Logger.WarnContext(ctx, "authn: plain http to the authorization server: keys and answers can be forged on the way", "url", s)
		}
	}
	ctx, v.cancel = context.WithCancel(ctx)
	go v.run(ctx)
	return v, nil
}

// Close stops the background refresh. Verify keeps working with the keys
// and answers already cached.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.cancel()
		<-v.done
	})
}

// Ready returns nil once the issuer's metadata and a key set were fetched
// (or, when the issuer publishes no keys and introspection is configured,
// once the introspection endpoint answered); else an error saying why not.
// A key set fetched once keeps the Verifier ready while the server is down,
// since its keys keep verifying.
func (v *Verifier) Ready(ctx context.Context) error {
	fetched, lastErr := v.keys.status()
	if fetched {
		return nil
	}
	if v.introspectOnly.Load() {
		return v.intro.ready()
	}
	v.mu.Lock()
	md, mdErr := v.md, v.mdErr
	v.mu.Unlock()
	switch {
	case v.opts.JWKSURL == "" && md == nil && mdErr == nil:
		return errors.New("issuer metadata not fetched yet: first discovery in progress")
	case v.opts.JWKSURL == "" && md == nil:
		return fmt.Errorf("issuer metadata not fetched yet: %w", mdErr)
	case lastErr == nil:
		return errors.New("jwks not fetched yet: first fetch in progress")
	}
	return fmt.Errorf("jwks not fetched yet: %w", lastErr)
}

// Verify verifies a bearer token and returns what it says. Every failure
// is an *Error wrapping ErrInvalidToken, or ErrUnavailable when the
// authorization server is needed and cannot be reached.
//
// A JWT (a JWS in compact serialization, RFC 7515 §7.1) is verified with
// the issuer's key named by its kid; its jku, x5u, jwk and x5c headers are
// ignored, so the token never chooses its own key. A successful
// verification is cached until the token's exp, so each token's signature
// is checked once. Any other token goes to introspection when configured.
func (v *Verifier) Verify(ctx context.Context, token string) (*Identity, error) {
	id, kid, e := v.verify(ctx, token)
	if e != nil {
		if v.opts.Logger.Enabled(ctx, slog.LevelDebug) {
			v.opts.Logger.DebugContext(ctx, "authn: token rejected", "reason", e.Reason, "kid", safeText(kid))
		}
		return nil, e
	}
	return id.clone(), nil
}

func (v *Verifier) verify(ctx context.Context, token string) (*Identity, string, *Error) {
	// What cannot be a bearer token is refused here, before any hashing,
	// cache lookup or call to the authorization server: it costs nothing.
	if len(token) > v.opts.MaxTokenBytes {
		return nil, "", invalid(ReasonTooLarge, "the token is longer than %d bytes", v.opts.MaxTokenBytes)
	}
	if !isToken68(token) {
		return nil, "", invalid(ReasonMalformed, "the token is not a bearer token (RFC 6750 §2.1)")
	}
	key := keyOf(token)
	now := v.opts.Now()
	if strings.Count(token, ".") == 2 && !v.introspectOnly.Load() {
		if t, ok := v.verified.get(key, now); ok {
			return t.id, "", nil
		}
		id, kid, e := v.verifyJWT(ctx, token, key, now)
		// Discovery may have just found that the issuer publishes no keys,
		// so that introspection alone can tell.
		if e == nil || v.intro == nil || !v.introspectOnly.Load() {
			return id, kid, e
		}
	}
	if v.intro == nil {
		return nil, "", invalid(ReasonMalformed, "the token is not a JWT (RFC 7519) and token introspection is not configured")
	}
	id, e := v.introspect(ctx, token, key)
	return id, "", e
}

// verifyJWT checks the JWS and then the claims. The alg is checked twice:
// against the allow-list by go-jose while parsing, and against the key's
// type by keySet.find (verificationKey.fits).
func (v *Verifier) verifyJWT(ctx context.Context, token string, key tokenKey, now time.Time) (*Identity, string, *Error) {
	jws, err := jose.ParseSignedCompact(token, v.opts.algs)
	if err != nil {
		if algErr, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok && algErr.Got != "" {
			return nil, "", invalid(ReasonAlg, "the signing algorithm %s is not allowed", safeText(string(algErr.Got)))
		}
		return nil, "", invalid(ReasonMalformed, "the token is not a JWS in compact serialization (RFC 7515 §7.1)")
	}
	h := jws.Signatures[0].Protected
	kid := h.KeyID
	if _, ok := h.ExtraHeaders["crit"]; ok {
		return nil, kid, invalid(ReasonCrit, "the token has critical header parameters (RFC 7515 §4.1.11), which Butler does not understand")
	}
	if _, ok := h.ExtraHeaders["b64"]; ok {
		return nil, kid, invalid(ReasonMalformed, "the token uses the b64 header parameter (RFC 7797), which a JWT must not")
	}
	k, e := v.keys.find(ctx, kid, h.Algorithm)
	if e != nil {
		return nil, kid, e
	}
	v.signatureChecks.Add(1)
	payload, err := jws.Verify(k.key)
	if err != nil {
		return nil, kid, invalid(ReasonSignature, "the signature does not verify with the issuer's key %s", safeText(kidName(k.kid)))
	}
	c, err := decodeClaimsBytes(payload)
	if err != nil {
		return nil, kid, invalid(ReasonMalformed, "the token's payload is not a JWT claims set (RFC 7519 §7.2)")
	}
	id, e := v.opts.identity(c, now, true)
	if e != nil {
		return nil, kid, e
	}
	if now.Before(id.Expiry) {
		v.verified.put(key, verifiedToken{id: id, thumb: k.thumb}, now, id.Expiry)
		// A refresh may have dropped the key since it was looked up, and
		// purged the cache before this entry was in it (see forget).
		if !v.keys.has(k.thumb) {
			v.verified.remove(key)
		}
	}
	return id, kid, nil
}

// forget drops the cached verifications made with keys a refresh removed,
// so a token whose key was withdrawn stops verifying at once.
func (v *Verifier) forget(thumbs map[string]bool) {
	v.verified.removeFunc(func(t verifiedToken) bool { return thumbs[t.thumb] })
}

// fetchKeySet gets the JWK Set, discovering its URL first when needed.
func (v *Verifier) fetchKeySet(ctx context.Context) ([]byte, error) {
	u, err := v.keySetURL(ctx)
	if err != nil {
		return nil, err
	}
	return v.get(ctx, u)
}

// keySetURL is Options.JWKSURL, else the jwks_uri of the issuer's metadata,
// discovered once. It runs only inside the key set's merged fetch, so
// discovery is never under way twice.
func (v *Verifier) keySetURL(ctx context.Context) (string, error) {
	if v.opts.JWKSURL != "" {
		return v.opts.JWKSURL, nil
	}
	v.mu.Lock()
	md := v.md
	v.mu.Unlock()
	if md == nil {
		var err error
		md, err = v.discover(ctx)
		v.mu.Lock()
		v.md, v.mdErr = md, err
		v.mu.Unlock()
		if err != nil {
			return "", fmt.Errorf("issuer metadata: %w", err)
		}
		v.opts.Logger.InfoContext(ctx, "authn: issuer metadata fetched", "issuer", md.Issuer, "jwks_uri", md.JWKSURI)
	}
	if md.JWKSURI == "" {
		if v.intro != nil {
			v.introspectOnly.Store(true)
		}
		return "", errNoJWKSURI
	}
	return md.JWKSURI, nil
}

// run refreshes the key set every JWKSRefreshInterval, and retries with
// backoff while the authorization server cannot be reached.
func (v *Verifier) run(ctx context.Context) {
	defer close(v.done)
	retry := minRetry
	for {
		wait := v.opts.JWKSRefreshInterval
		if err := v.refresh(ctx); err != nil && !errors.Is(err, errRateLimited) {
			if ctx.Err() != nil {
				return
			}
			wait = min(retry, wait)
			retry = min(2*retry, maxRetry)
			v.opts.Logger.WarnContext(ctx, "authn: cannot reach the authorization server; retrying", "err", err, "retry_in", wait)
		} else {
			retry = minRetry
		}
		select {
		case <-ctx.Done():
			return
		case <-v.after(wait):
		}
	}
}

// refresh is one background step: fetch the key set or, when the issuer
// publishes none, probe the introspection endpoint.
func (v *Verifier) refresh(ctx context.Context) error {
	if !v.introspectOnly.Load() {
		err := v.keys.refresh(ctx, false)
		if !v.introspectOnly.Load() {
			return err
		}
	}
	return v.probeIntrospection(ctx)
}

// isToken68 reports whether s has the syntax of a bearer token
// (RFC 6750 §2.1: b64token).
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/') {
			break
		}
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}
