package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
)

// ErrExchange: the identity provider refused the token exchange.
var ErrExchange = errors.New("credentials: token exchange refused")

// ErrExchangeUnavailable: the identity provider could not be asked (down,
// no token endpoint, an answer that is not a token response). It wraps
// ErrExchange too.
var ErrExchangeUnavailable = fmt.Errorf("%w: identity provider unavailable", ErrExchange)

// ExchangeOptions configure an Exchange source.
type ExchangeOptions struct {
	// TokenEndpoint returns the IdP's token endpoint (discovered from the
	// issuer's metadata).
	TokenEndpoint func(ctx context.Context) (string, error)
	// Audience is the audience requested for the Jenkins token.
	Audience     string
	ClientID     string
	ClientSecret string
	HTTPClient   *http.Client
	Now          func() time.Time
}

// Exchange is the credential source of token_exchange mode: it exchanges
// the caller's access token at the identity provider (RFC 8693) for a token
// whose audience is Jenkins, which Jenkins's jwt-auth-filter plugin accepts
// as a Bearer token. The caller's own token is never sent to Jenkins. An
// exchanged token is cached for its user until shortly before it expires.
type Exchange struct {
	o  ExchangeOptions
	hc *http.Client

	mu    sync.Mutex
	cache map[string]exchanged
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
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return &Exchange{o: o, hc: hc, cache: map[string]exchanged{}}
}

// For exchanges (or reuses) a Jenkins token for the principal.
func (x *Exchange) For(ctx context.Context, p identity.Principal) (jenkins.Credential, error) {
	if p.Guest || p.User == "" || p.AccessToken == "" {
		return jenkins.Credential{}, fmt.Errorf("credentials: %q has no token to exchange: %w", p.Name(), ErrNotLinked)
	}
	subject := sha256.Sum256([]byte(p.AccessToken.Reveal()))
	now := x.o.Now()
	x.mu.Lock()
	c, ok := x.cache[p.User]
	x.mu.Unlock()
	if ok && c.subject == subject && now.Before(c.until) {
		return jenkins.Credential{User: p.JenkinsUser, Bearer: secret.String(c.token)}, nil
	}
	tok, ttl, err := x.exchange(ctx, p.AccessToken.Reveal())
	if err != nil {
		return jenkins.Credential{}, err
	}
	// Stop using it 30 s before the IdP says it expires.
	until := now.Add(ttl - 30*time.Second)
	x.mu.Lock()
	x.cache[p.User] = exchanged{token: tok, subject: subject, until: until}
	x.mu.Unlock()
	return jenkins.Credential{User: p.JenkinsUser, Bearer: secret.String(tok)}, nil
}

// Linked is true for any authenticated user: the credential is made on
// demand.
func (x *Exchange) Linked(_ context.Context, p identity.Principal) (bool, error) {
	return !p.Guest && p.User != "", nil
}

func (x *Exchange) exchange(ctx context.Context, subjectToken string) (string, time.Duration, error) {
	endpoint, err := x.o.TokenEndpoint(ctx)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrExchangeUnavailable, err)
	}
	form := url.Values{
		"grant_type":           {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token":        {subjectToken},
		"subject_token_type":   {"urn:ietf:params:oauth:token-type:access_token"},
		"requested_token_type": {"urn:ietf:params:oauth:token-type:access_token"},
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
	var out struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       string `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return "", 0, fmt.Errorf("%w: HTTP %d, not a token response", ErrExchangeUnavailable, resp.StatusCode)
	}
	if resp.StatusCode != http.StatusOK || out.AccessToken == "" {
		code := out.Error
		if code == "" {
			code = "no access_token"
		}
		return "", 0, fmt.Errorf("%w: HTTP %d: %.100s", ErrExchange, resp.StatusCode, code)
	}
	ttl := time.Duration(out.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	return out.AccessToken, ttl, nil
}
