package credentials

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/butler-mcp/butler/internal/authn"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
)

// ErrExchange: the identity provider refused the token exchange.
var ErrExchange = errors.New("credentials: token exchange refused")

// ErrExchangeUnavailable: the identity provider could not be asked (down,
// no token endpoint, an answer that is not a token response), or answered
// with a token Butler must not use (ErrExchangeRefused). It wraps
// ErrExchange too.
var ErrExchangeUnavailable = fmt.Errorf("%w: identity provider unavailable", ErrExchange)

// ErrExchangeRefused: the identity provider answered the exchange with a
// token Butler refuses to send to Jenkins: not an access token for Bearer
// use (an ID token or a refresh token, say), the subject token itself, a
// JWT for another user than the caller, or an unusable expires_in. It is
// the identity provider's mistake (its configuration), not the caller's,
// and nothing is sent to Jenkins. The error names the mistake. It wraps
// ErrExchangeUnavailable, and so ErrExchange.
var ErrExchangeRefused error = &sentinel{msg: "credentials: the identity provider's token exchange answer is unusable", parent: ErrExchangeUnavailable}

// sentinel is an error value with its own text that still matches parent
// in errors.Is.
type sentinel struct {
	msg    string
	parent error
}

func (s *sentinel) Error() string { return s.msg }
func (s *sentinel) Unwrap() error { return s.parent }

func refused(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrExchangeRefused, fmt.Sprintf(format, args...))
}

const (
	// tokenTypeAccessToken is the RFC 8693 §3 type of an access token: the
	// only kind Butler asks for and sends to Jenkins.
	tokenTypeAccessToken = "urn:ietf:params:oauth:token-type:access_token"
	// defaultExchangedTTL is the lifetime assumed without expires_in.
	defaultExchangedTTL = 5 * time.Minute
	// maxExchangedTTL caps expires_in: no exchanged token is reused longer.
	maxExchangedTTL = 24 * time.Hour
	// expiryMargin: an exchanged token is no longer reused this long before
	// it expires, so it does not expire on its way to Jenkins.
	expiryMargin = 30 * time.Second
	// exchangeTimeout bounds one exchange, whatever the HTTP client.
	exchangeTimeout = 10 * time.Second
)

// DefaultExchangeUserClaim is ExchangeOptions.UserClaim's default.
const DefaultExchangeUserClaim = "sub"

// ExchangeOptions configure an Exchange source.
type ExchangeOptions struct {
	// TokenEndpoint returns the IdP's token endpoint (discovered from the
	// issuer's metadata).
	TokenEndpoint func(ctx context.Context) (string, error)
	// Audience is the audience requested for the Jenkins token.
	Audience     string
	ClientID     string
	ClientSecret string
	// UserClaim names the claim of an exchanged JWT that must equal the
	// caller's user id (Principal.User); default "sub". A dotted path walks
	// nested objects as authn's user claim does; it should name the claim
	// auth.user_claim names in Butler's own tokens.
	UserClaim  string
	HTTPClient *http.Client
	Now        func() time.Time
}

// Exchange is the credential source of token_exchange mode: it exchanges
// the caller's access token at the identity provider (RFC 8693) for a token
// whose audience is Jenkins, which Jenkins's jwt-auth-filter plugin accepts
// as a Bearer token. The caller's own token is never sent to Jenkins, and
// neither is an exchanged token that is not an access token or, when it is
// a JWT, names another user. An exchanged token is cached for its user
// until shortly before it expires; concurrent exchanges of one subject
// token are merged into one.
type Exchange struct {
	o     ExchangeOptions
	hc    *http.Client
	group singleflight.Group // by user and subject token hash

	mu    sync.Mutex
	cache map[string]exchanged // by user
}

type exchanged struct {
	token   string
	subject [sha256.Size]byte // which of the user's tokens it was exchanged for
	until   time.Time
}

// NewExchange returns an Exchange source.
func NewExchange(o ExchangeOptions) *Exchange {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.UserClaim == "" {
		o.UserClaim = DefaultExchangeUserClaim
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: exchangeTimeout}
	}
	return &Exchange{o: o, hc: hc, cache: map[string]exchanged{}}
}

// For exchanges (or reuses) a Jenkins token for the principal. Concurrent
// calls with one subject token make one exchange; a caller whose ctx ends
// stops waiting, and the exchange goes on for the others.
func (x *Exchange) For(ctx context.Context, p identity.Principal) (jenkins.Credential, error) {
	if p.Guest || p.User == "" || p.AccessToken == "" {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q has no token to exchange: %w", p.Name(), ErrNotLinked)
	}
	subject := sha256.Sum256([]byte(p.AccessToken.Reveal()))
	if tok, ok := x.cached(p.User, subject); ok {
		return jenkins.Credential{User: p.JenkinsUser, Bearer: secret.String(tok)}, nil
	}
	ch := x.group.DoChan(p.User+"\x00"+string(subject[:]), func() (any, error) {
		// An exchange that ended just now may have cached a token.
		if tok, ok := x.cached(p.User, subject); ok {
			return tok, nil
		}
		return x.exchangeAndCache(context.WithoutCancel(ctx), p, subject)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return jenkins.Credential{}, r.Err
		}
		return jenkins.Credential{User: p.JenkinsUser, Bearer: secret.String(r.Val.(string))}, nil
	case <-ctx.Done():
		return jenkins.Credential{}, fmt.Errorf("%w: the request ended during the token exchange: %w", ErrExchangeUnavailable, ctx.Err())
	}
}

// Rejected drops the cached token of p, for when Jenkins rejected it: the
// next For exchanges again. A token cached for another of the user's
// subject tokens stays.
func (x *Exchange) Rejected(_ context.Context, p identity.Principal, _ jenkins.Credential) {
	subject := sha256.Sum256([]byte(p.AccessToken.Reveal()))
	x.mu.Lock()
	defer x.mu.Unlock()
	if c, ok := x.cache[p.User]; ok && c.subject == subject {
		delete(x.cache, p.User)
	}
}

// Linked is true for any authenticated user: the credential is made on
// demand.
func (x *Exchange) Linked(_ context.Context, p identity.Principal) (bool, error) {
	return !p.Guest && p.User != "", nil
}

// cached returns the token cached for user's subject token, if still fresh.
func (x *Exchange) cached(user string, subject [sha256.Size]byte) (string, bool) {
	x.mu.Lock()
	c, ok := x.cache[user]
	x.mu.Unlock()
	now := x.o.Now()
	return c.token, ok && c.subject == subject && now.Before(c.until)
}

func (x *Exchange) exchangeAndCache(ctx context.Context, p identity.Principal, subject [sha256.Size]byte) (any, error) {
	now := x.o.Now()
	tok, ttl, err := x.exchange(ctx, p, now)
	if err != nil {
		return nil, err
	}
	// Stop using it shortly before it expires; one that expires sooner
	// than that is used for this call only.
	if until := now.Add(ttl - expiryMargin); now.Before(until) {
		x.mu.Lock()
		x.cache[p.User] = exchanged{token: tok, subject: subject, until: until}
		x.mu.Unlock()
	}
	return tok, nil
}

// exchange asks the token endpoint (RFC 8693 §2.1) and checks the answer
// (§2.2.1). It returns the token and how long it may be used.
func (x *Exchange) exchange(ctx context.Context, p identity.Principal, now time.Time) (string, time.Duration, error) {
	subjectToken := p.AccessToken.Reveal()
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()
	endpoint, err := x.o.TokenEndpoint(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrExchangeUnavailable, err)
	}
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subjectToken},
		"subject_token_type":   {tokenTypeAccessToken},
		"requested_token_type": {tokenTypeAccessToken},
		"audience":             {x.o.Audience},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrExchangeUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client credentials form-encoded inside Basic.
	req.SetBasicAuth(url.QueryEscape(x.o.ClientID), url.QueryEscape(x.o.ClientSecret))
	resp, err := x.hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("%w: it cannot be reached", ErrExchangeUnavailable)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	out, err := decodeObject(body)
	if err != nil {
		return "", 0, fmt.Errorf("%w: HTTP %d, not a token response", ErrExchangeUnavailable, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK {
		code, _ := out["error"].(string)
		if code == "" {
			code = "no error code"
		}
		return "", 0, fmt.Errorf("%w: HTTP %d: %.100s", ErrExchange, resp.StatusCode, code)
	}
	return x.check(out, p, now)
}

// check applies to a successful token exchange answer what makes its token
// safe to send to Jenkins for p, and returns the token and how long from
// now it lasts. Values from the answer are quoted, never the token itself.
func (x *Exchange) check(out map[string]any, p identity.Principal, now time.Time) (string, time.Duration, error) {
	tok, _ := out["access_token"].(string)
	if tok == "" {
		return "", 0, refused("the answer has no access_token")
	}
	switch itt, ok := out["issued_token_type"].(string); {
	case !ok:
		return "", 0, refused("the answer has no issued_token_type (RFC 8693 §2.2.1), so the token may not be an access token")
	case itt != tokenTypeAccessToken:
		return "", 0, refused("it issued a token of type %.100q, not an access token (%s): Jenkins must never get an ID or refresh token", itt, tokenTypeAccessToken)
	}
	if tt, _ := out["token_type"].(string); !strings.EqualFold(tt, "Bearer") {
		return "", 0, refused("its token_type is %.100q, not Bearer", tt)
	}
	if tok == p.AccessToken.Reveal() {
		return "", 0, refused("it returned the subject token itself, the caller's own token for Butler, which is never sent to Jenkins")
	}
	ttl, err := expiresIn(out)
	if err != nil {
		return "", 0, err
	}
	if claims, isJWT := jwtPayload(tok); isJWT {
		obj, _ := claims.(map[string]any)
		v, _ := authn.LookupClaim(obj, x.o.UserClaim)
		user, isString := v.(string)
		switch {
		case !isString || user == "":
			return "", 0, refused("the exchanged token has no %s claim naming the user, so it may be anyone's", x.o.UserClaim)
		case user != p.User:
			return "", 0, refused("the exchanged token is for %.100q (claim %s), not for the caller %.100q", user, x.o.UserClaim, p.User)
		}
		// Never reused past its own exp either.
		if exp, ok := numericDate(obj["exp"]); ok {
			ttl = min(ttl, exp.Sub(now))
		}
	}
	return tok, ttl, nil
}

// jsonNumber is the syntax of a JSON number (RFC 8259 §6).
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// expiresIn reads expires_in: a JSON number or, as some IdPs send it, a
// string holding one; whole seconds, capped at maxExchangedTTL. Without it
// the token is taken to last defaultExchangedTTL.
func expiresIn(out map[string]any) (time.Duration, error) {
	v, present := out["expires_in"]
	if !present {
		return defaultExchangedTTL, nil
	}
	var s string
	switch v := v.(type) {
	case json.Number:
		s = string(v)
	case string:
		s = v
	default:
		return 0, refused("expires_in is neither a number nor a numeric string")
	}
	if !jsonNumber.MatchString(s) {
		return 0, refused("expires_in %.40q is not a number", s)
	}
	// The syntax is a number's, so the only error is ErrRange: ±Inf for a
	// huge value, 0 for a tiny one.
	f, _ := strconv.ParseFloat(s, 64)
	switch {
	case f <= 0:
		return 0, refused("expires_in %.40q is not a positive number of seconds: the token is already expired", s)
	case f >= maxExchangedTTL.Seconds():
		return maxExchangedTTL, nil
	}
	return time.Duration(math.Floor(f)) * time.Second, nil
}

// jwtPayload returns the decoded payload of tok when tok is a JWT: three
// dot-separated parts whose middle one is base64url of JSON. It errs on the
// side of reading a payload, as lenient JWT parsers would: padding and the
// standard base64 alphabet are accepted, and data after the JSON value is
// ignored, so no such token escapes the checks of its claims.
func jwtPayload(tok string) (any, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, false
	}
	raw := strings.TrimRight(parts[1], "=")
	data, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil {
		if data, err = base64.RawStdEncoding.DecodeString(raw); err != nil {
			return nil, false
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	return v, true
}

// numericDate reads a JWT NumericDate (RFC 7519 §2).
func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1e11 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

// decodeObject decodes a JSON object, numbers as json.Number.
func decodeObject(body []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, errors.New("not a JSON object")
	}
	return out, nil
}
