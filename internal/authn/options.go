package authn

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Defaults, as in docs/configuration.md (auth:).
const (
	DefaultClockSkew           = 30 * time.Second
	DefaultJWKSMinRefresh      = 10 * time.Second
	DefaultJWKSRefreshInterval = 15 * time.Minute
	DefaultUserClaim           = "sub"
	DefaultGroupsClaim         = "groups"
	DefaultTokenCacheSize      = 10000
	DefaultMaxTokenBytes       = 16 << 10
	DefaultIntrospectionTTL    = 60 * time.Second
	DefaultHTTPTimeout         = 10 * time.Second
)

// defaultAlgorithms is the allow-list when Options.Algorithms is empty.
func defaultAlgorithms() []string { return []string{"RS256", "ES256", "PS256", "EdDSA"} }

// asymmetricAlg returns the JWS alg (RFC 7518 §3.1, RFC 8037) a Verifier
// can be told to accept. Symmetric (HS*) algorithms are absent on purpose: a
// resource server holds no shared secret with the issuer, and accepting HS*
// is how the "public key as HMAC secret" forgery works. "none" is absent too.
func asymmetricAlg(name string) (jose.SignatureAlgorithm, bool) {
	switch alg := jose.SignatureAlgorithm(name); alg {
	case jose.RS256, jose.RS384, jose.RS512,
		jose.PS256, jose.PS384, jose.PS512,
		jose.ES256, jose.ES384, jose.ES512,
		jose.EdDSA:
		return alg, true
	}
	return "", false
}

// Options configure a Verifier. Zero durations, sizes and lists take the
// defaults of docs/configuration.md; negative ones are refused.
type Options struct {
	// Issuer is the authorization server's issuer identifier (RFC 8414 §2).
	// Required. A token's iss must equal it exactly, and so must the issuer
	// of the discovered metadata (RFC 8414 §3.3).
	Issuer string
	// Audiences are the accepted aud values (RFC 7519 §4.1.3); required. A
	// token's aud, a string or an array, must contain one of them exactly.
	Audiences []string
	// JWKSURL is where the issuer's JWK Set (RFC 7517 §5) is; when empty it
	// is the jwks_uri of the issuer's metadata.
	JWKSURL string
	// Algorithms is the allow-list of JWS algs (RFC 7518); default RS256,
	// ES256, PS256, EdDSA. New refuses "none" and every HS* algorithm.
	Algorithms []string
	// ClockSkew is the tolerance applied to exp, nbf and iat; default 30s.
	ClockSkew time.Duration
	// JWKSMinRefresh bounds refetches of the key set caused by unknown kids:
	// at most one per interval, whatever the number of such tokens; default 10s.
	JWKSMinRefresh time.Duration
	// JWKSRefreshInterval is how often the key set is refreshed in the
	// background, so keys removed at the issuer stop verifying; default 15m.
	JWKSRefreshInterval time.Duration
	// UserClaim names the claim that identifies the user; default "sub". A
	// dotted path ("realm_access.preferred") walks nested objects, but a
	// top-level claim whose name is the whole path wins.
	UserClaim string
	// GroupsClaim names the claim that lists the user's groups; default
	// "groups". A dotted path as for UserClaim (Keycloak "realm_access.roles",
	// "resource_access.butler.roles"); its value is an array of strings or a
	// space-separated string.
	GroupsClaim string
	// Introspection, when set, verifies opaque (non-JWT) tokens at the
	// issuer's introspection endpoint (RFC 7662).
	Introspection *Introspection
	// TokenCacheSize bounds the cache of verified tokens (and each of the
	// caches of introspection answers, active and negative); default 10000
	// entries.
	TokenCacheSize int
	// MaxTokenBytes is the longest token accepted; longer ones fail as
	// "too_large" before any parsing. Default 16 KiB.
	MaxTokenBytes int
	// HTTPClient fetches metadata and keys and calls the introspection
	// endpoint; nil means a client with a 10s timeout (never
	// http.DefaultClient, which has none).
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives reasons and kids, never tokens or keys; nil discards.
	Logger *slog.Logger
}

// Introspection configures token introspection (RFC 7662) for opaque tokens.
type Introspection struct {
	// URL is the introspection endpoint. Required.
	URL string
	// ClientID and ClientSecret authenticate Butler at the endpoint with
	// HTTP Basic (RFC 6749 §2.3.1). When ClientID is empty no credentials
	// are sent (e.g. Ory Hydra's admin port).
	ClientID, ClientSecret string
	// CacheTTL is how long an active answer is reused; default 60s, and
	// never past the token's exp. Negative answers (active:false, or an
	// answer the checks refuse) are reused for 10s.
	CacheTTL time.Duration
	// AllowMissingAudience accepts answers without aud (or with an empty
	// one). Off by default: such an answer does not say the token is for
	// this resource. An aud that is there must name one of Audiences
	// either way.
	AllowMissingAudience bool
}

// options is Options with defaults filled and the allow-list converted.
type options struct {
	Options
	algs    []jose.SignatureAlgorithm
	allowed map[string]bool
	intro   Introspection // valid when Options.Introspection != nil
}

// normalize validates o and fills the defaults. It reports every problem at
// once, as config validation does.
func normalize(o Options) (options, error) {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }

	if o.Issuer == "" {
		bad("issuer is required")
	} else if err := checkURL(o.Issuer); err != nil {
		bad("issuer: %v", err)
	} else if u, _ := url.Parse(o.Issuer); u.RawQuery != "" || u.Fragment != "" {
		bad("issuer %q must not have a query or fragment (RFC 8414 §2)", o.Issuer)
	}
	if len(o.Audiences) == 0 {
		bad("at least one audience is required")
	}
	for _, a := range o.Audiences {
		if a == "" {
			bad("an audience is empty")
		}
	}
	if o.JWKSURL != "" {
		if err := checkURL(o.JWKSURL); err != nil {
			bad("jwks_url: %v", err)
		}
	}

	if len(o.Algorithms) == 0 {
		o.Algorithms = defaultAlgorithms()
	}
	n := options{allowed: map[string]bool{}}
	for _, a := range o.Algorithms {
		alg, ok := asymmetricAlg(a)
		switch {
		case strings.EqualFold(a, "none"):
			bad("algorithm %q is never allowed: it means an unsigned token", a)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			bad("algorithm %q is never allowed: a resource server must not accept symmetric (HMAC) signatures", a)
		case !ok:
			bad("algorithm %q is not supported (use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512 or EdDSA)", a)
		case !n.allowed[a]:
			n.allowed[a] = true
			n.algs = append(n.algs, alg)
		}
	}

	durations := []struct {
		name string
		d    *time.Duration
		def  time.Duration
	}{
		{"clock_skew", &o.ClockSkew, DefaultClockSkew},
		{"jwks_min_refresh", &o.JWKSMinRefresh, DefaultJWKSMinRefresh},
		{"jwks_refresh_interval", &o.JWKSRefreshInterval, DefaultJWKSRefreshInterval},
	}
	for _, f := range durations {
		switch {
		case *f.d < 0:
			bad("%s must not be negative", f.name)
		case *f.d == 0:
			*f.d = f.def
		}
	}
	if o.UserClaim == "" {
		o.UserClaim = DefaultUserClaim
	}
	if o.GroupsClaim == "" {
		o.GroupsClaim = DefaultGroupsClaim
	}
	for name, path := range map[string]string{"user_claim": o.UserClaim, "groups_claim": o.GroupsClaim} {
		if slices.Contains(strings.Split(path, "."), "") {
			bad("%s %q has an empty path segment", name, path)
		}
	}
	sizes := []struct {
		name string
		n    *int
		def  int
	}{
		{"token cache size", &o.TokenCacheSize, DefaultTokenCacheSize},
		{"max token bytes", &o.MaxTokenBytes, DefaultMaxTokenBytes},
	}
	for _, f := range sizes {
		switch {
		case *f.n < 0:
			bad("%s must not be negative", f.name)
		case *f.n == 0:
			*f.n = f.def
		}
	}

	if o.Introspection != nil {
		n.intro = *o.Introspection
		if n.intro.URL == "" {
			bad("introspection url is required when introspection is configured")
		} else if err := checkURL(n.intro.URL); err != nil {
			bad("introspection url: %v", err)
		}
		switch {
		case n.intro.CacheTTL < 0:
			bad("introspection cache_ttl must not be negative")
		case n.intro.CacheTTL == 0:
			n.intro.CacheTTL = DefaultIntrospectionTTL
		}
	}

	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	n.Options = o
	if len(problems) > 0 {
		return options{}, fmt.Errorf("authn: invalid options: %w", errors.Join(problems...))
	}
	return n, nil
}

// checkURL accepts absolute http and https URLs.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q is not a URL", s)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http or https URL", s)
	}
	return nil
}

// isLoopback reports whether u names this machine, where plain http is as
// safe as https (the demo and tests).
func isLoopback(u *url.URL) bool {
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
