package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// probeToken is what the readiness probe asks about: no issuer issued it,
// so any well-formed answer (active:false) shows the endpoint works.
const probeToken = "butler-readiness-probe"

const (
	// maxIntrospectionsInFlight bounds the calls to the endpoint under way
	// at once, all tokens together: a flood of junk tokens costs at most
	// this many calls (and their goroutines and connections) at a time, and
	// the tokens beyond are refused as unavailable (503, retry later).
	maxIntrospectionsInFlight = 16
	// negativeTTL is how long a negative answer (active:false, or an answer
	// the checks refuse) is reused, whatever the cache TTL: a repeated junk
	// token costs no call, and a refused token is asked about again soon.
	negativeTTL = 10 * time.Second
	// minEvictAge: a full answer cache evicts only entries at least this
	// old, so that a flood cannot push out the answers of real tokens.
	minEvictAge = 10 * time.Second
)

// introspector holds the state of token introspection (RFC 7662).
type introspector struct {
	// Answers by token hash: the accepted ones, and apart the negative
	// ones, so that junk tokens never take the room of real ones.
	active   *lru[introAnswer]
	negative *lru[introAnswer]
	group    singleflight.Group // one call per token hash in flight
	slots    chan struct{}      // one per call in flight

	mu      sync.Mutex
	lastErr error // of the latest call; nil after an answer
	called  bool
}

func newIntrospector(cacheSize int) *introspector {
	return &introspector{
		active:   newLRU[introAnswer](cacheSize, minEvictAge),
		negative: newLRU[introAnswer](cacheSize, minEvictAge),
		slots:    make(chan struct{}, maxIntrospectionsInFlight),
	}
}

// introAnswer is a checked answer: an identity, or why the token fails.
type introAnswer struct {
	id  *Identity
	err *Error
}

func (in *introspector) cached(key tokenKey, now time.Time) (introAnswer, bool) {
	if a, ok := in.active.get(key, now); ok {
		return a, true
	}
	return in.negative.get(key, now)
}

// tryAcquire takes a call slot if one is free.
func (in *introspector) tryAcquire() bool {
	select {
	case in.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

func (in *introspector) release() { <-in.slots }

func (in *introspector) record(err error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.called, in.lastErr = true, err
}

// ready reports whether the latest call got an answer.
func (in *introspector) ready() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	switch {
	case !in.called:
		return errors.New("introspection endpoint not answered yet: first call in progress")
	case in.lastErr != nil:
		return fmt.Errorf("introspection endpoint not answering: %w", in.lastErr)
	}
	return nil
}

// introspect verifies an opaque token at the introspection endpoint,
// through the cache. Concurrent calls for one token make one request; at
// most maxIntrospectionsInFlight requests are under way at once, and a
// token that finds no free slot is refused as unavailable without one.
func (v *Verifier) introspect(ctx context.Context, token string, key tokenKey) (*Identity, *Error) {
	if a, ok := v.intro.cached(key, v.opts.Now()); ok {
		return a.id, a.err
	}
	ch := v.intro.group.DoChan(string(key[:]), func() (any, error) {
		if !v.intro.tryAcquire() {
			return introAnswer{err: unavailable("too many tokens are being introspected at once; retry later")}, nil
		}
		defer v.intro.release()
		return v.introspectUncached(context.WithoutCancel(ctx), token, key), nil
	})
	select {
	case r := <-ch:
		a := r.Val.(introAnswer)
		return a.id, a.err
	case <-ctx.Done():
		return nil, unavailable("the request ended while the token was being introspected")
	}
}

func (v *Verifier) introspectUncached(ctx context.Context, token string, key tokenKey) introAnswer {
	c, err := v.callIntrospection(ctx, token)
	v.intro.record(err)
	if err != nil {
		v.opts.Logger.WarnContext(ctx, "authn: token introspection failed", "err", err)
		return introAnswer{err: unavailable("the token introspection endpoint cannot be reached")}
	}
	now := v.opts.Now()
	a := v.checkAnswer(c, now)
	if a.err != nil {
		v.intro.negative.put(key, a, now, now.Add(negativeTTL))
		return a
	}
	until := now.Add(v.opts.intro.CacheTTL)
	if a.id.Expiry.Before(until) {
		until = a.id.Expiry
	}
	v.intro.active.put(key, a, now, until)
	return a
}

// checkAnswer applies to an introspection answer (RFC 7662 §2.2) the checks
// a JWT gets, for the members present.
func (v *Verifier) checkAnswer(c claims, now time.Time) introAnswer {
	if active, _ := c["active"].(bool); !active {
		return introAnswer{err: invalid(ReasonInactive, "the authorization server says the token is not active")}
	}
	// An active refresh token must not pass for an access token. Ory Hydra
	// says which it is in token_use; others may put it in token_type.
	if use := c.string("token_use"); use != "" && use != "access_token" || strings.EqualFold(c.string("token_type"), "refresh_token") {
		return introAnswer{err: invalid(ReasonTokenType, "the token is not an access token")}
	}
	id, err := v.opts.identity(c, now, false)
	return introAnswer{id: id, err: err}
}

// callIntrospection asks the endpoint about token (RFC 7662 §2.1), with
// HTTP Basic client authentication (RFC 6749 §2.3.1: the id and secret
// form-urlencoded first). Its errors never contain the token.
func (v *Verifier) callIntrospection(ctx context.Context, token string) (claims, error) {
	cfg := v.opts.intro
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	form := url.Values{"token": {token}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", cfg.URL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if cfg.ClientID != "" {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", cfg.URL, transportError(err))
	}
	defer resp.Body.Close()
	body, err := readJSON(resp)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", cfg.URL, err)
	}
	c, err := decodeClaimsBytes(body)
	if err != nil {
		return nil, fmt.Errorf("POST %s: the answer is not a JSON object", cfg.URL)
	}
	if _, ok := c["active"].(bool); !ok {
		return nil, fmt.Errorf("POST %s: the answer has no boolean active member (RFC 7662 §2.2)", cfg.URL)
	}
	return c, nil
}

// probeIntrospection checks the endpoint answers, for Ready when the
// issuer publishes no keys and introspection is all there is.
func (v *Verifier) probeIntrospection(ctx context.Context) error {
	select {
	case v.intro.slots <- struct{}{}:
		defer v.intro.release()
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err := v.callIntrospection(ctx, probeToken)
	v.intro.record(err)
	return err
}
