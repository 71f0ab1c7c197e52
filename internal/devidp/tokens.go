package devidp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TokenRequest asks [Provider.IssueToken] for an access token.
type TokenRequest struct {
	// User is the id of a configured user (required).
	User string
	// Scopes are granted as asked, each an OIDC scope or one of
	// [Options.Scopes]; empty grants every [Options.Scopes].
	Scopes []string
	// Resource is the audience, one of [Options.Resources]; empty means the
	// default (the first).
	Resource string
	// ClientID is the client_id claim [DefaultTokenClientID].
	ClientID string
	// TTL is the lifetime [Options.AccessTTL]; a negative TTL makes a token
	// that has already expired.
	TTL time.Duration
	// Extra claims are set last, replacing any claim of the same name
	// (iss, aud, exp, ... included); a nil value removes the claim. For tests.
	Extra map[string]any
}

// IssueToken mints an access token for a configured user directly, with the
// same key, claims and lifetime as the authorization code flow — for
// `butler demo token` and for tests.
func (p *Provider) IssueToken(ctx context.Context, req TokenRequest) (string, error) {
	if _, ok := p.user(req.User); !ok {
		return "", fmt.Errorf("%w: %q", ErrUnknownUser, req.User)
	}
	scopes := req.Scopes
	if len(scopes) == 0 {
		scopes = p.opts.Scopes
	}
	for _, s := range scopes {
		if !p.knownScope(s) {
			return "", fmt.Errorf("%w: %q", ErrUnknownScope, s)
		}
	}
	var requested []string
	if req.Resource != "" {
		requested = []string{req.Resource}
	}
	resource, err := p.resolveResource(requested)
	if err != nil {
		return "", err
	}
	clientID := req.ClientID
	if clientID == "" {
		clientID = DefaultTokenClientID
	}
	m, err := p.mint(ctx, mintSpec{
		subject:  req.User,
		clientID: clientID,
		scopes:   scopes,
		audience: resource,
		ttl:      req.TTL,
		authTime: p.now(),
		extra:    req.Extra,
	})
	if err != nil {
		return "", err
	}
	return m.token, nil
}

// mintSpec describes one access token.
type mintSpec struct {
	subject  string // a user id, or a client id (client credentials)
	clientID string
	scopes   []string
	audience string
	ttl      time.Duration // 0: Options.AccessTTL
	authTime time.Time     // zero: no auth_time claim
	act      map[string]any
	extra    map[string]any
}

type minted struct {
	token   string
	jti     string
	expires time.Time
	ttl     time.Duration
}

// mint signs an RFC 9068 access token with the current key. It is the only
// place access tokens are made, whatever the grant.
func (p *Provider) mint(ctx context.Context, m mintSpec) (minted, error) {
	issuer := p.Issuer()
	if issuer == "" {
		return minted{}, ErrIssuerUnknown
	}
	ttl := m.ttl
	if ttl == 0 {
		ttl = p.opts.AccessTTL
	}
	now := p.now().Truncate(time.Second)
	exp := now.Add(ttl)
	jti := randomID(16)
	claims := map[string]any{
		"iss":       issuer,
		"sub":       m.subject,
		"aud":       m.audience,
		"exp":       exp.Unix(),
		"iat":       now.Unix(),
		"nbf":       now.Unix(),
		"jti":       jti,
		"client_id": m.clientID,
	}
	if len(m.scopes) > 0 {
		claims["scope"] = strings.Join(m.scopes, " ")
	}
	if u, ok := p.user(m.subject); ok {
		claims["groups"] = nonNil(u.Groups)
		claims["preferred_username"] = u.ID
		claims["name"] = u.Name
		if u.Email != "" {
			claims["email"] = u.Email
		}
	} else {
		claims["groups"] = []string{}
		claims["preferred_username"] = m.subject
	}
	if !m.authTime.IsZero() {
		claims["auth_time"] = m.authTime.Unix()
	}
	if m.act != nil {
		claims["act"] = m.act
	}
	for k, v := range m.extra {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}

	key := p.store.currentKey()
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.RS256, Key: &jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"), // RFC 9068 §2.1
	)
	if err != nil {
		return minted{}, fmt.Errorf("devidp: signer: %w", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return minted{}, fmt.Errorf("devidp: claims: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return minted{}, fmt.Errorf("devidp: sign: %w", err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		return minted{}, fmt.Errorf("devidp: serialize: %w", err)
	}
	p.store.recordAccessToken(jti, &accessRecord{
		subject:  m.subject,
		clientID: m.clientID,
		audience: m.audience,
		scopes:   slices.Clone(m.scopes),
		issued:   now,
		expires:  exp,
	})
	p.log.DebugContext(ctx, "devidp: access token issued", "sub", m.subject, "client_id", m.clientID,
		"aud", m.audience, "scope", claims["scope"], "kid", key.kid, "jti", jti)
	return minted{token: token, jti: jti, expires: exp, ttl: ttl}, nil
}

// verifyAccessToken checks a token this provider issued, for token exchange:
// RS256 signature by a key in the JWKS, iss, exp and nbf on the provider's
// clock, aud one of the configured resources, not revoked. Errors say which
// check failed and never carry the token.
func (p *Provider) verifyAccessToken(token string) (map[string]any, error) {
	jws, err := jose.ParseSigned(token, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil || len(jws.Signatures) != 1 {
		return nil, errors.New("malformed token or algorithm not RS256")
	}
	key, ok := p.store.keyByID(jws.Signatures[0].Header.KeyID)
	if !ok {
		return nil, errors.New("unknown signing key")
	}
	payload, err := jws.Verify(&key.priv.PublicKey)
	if err != nil {
		return nil, errors.New("bad signature")
	}
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, errors.New("claims are not a JSON object")
	}
	if iss, _ := claims["iss"].(string); iss != p.Issuer() {
		return nil, errors.New("wrong issuer")
	}
	now := p.now().Unix()
	exp, ok := numericClaim(claims, "exp")
	if !ok || now >= exp {
		return nil, errors.New("expired or no exp")
	}
	if nbf, ok := numericClaim(claims, "nbf"); ok && now < nbf {
		return nil, errors.New("not yet valid")
	}
	if !slices.ContainsFunc(audiences(claims["aud"]), func(a string) bool { return slices.Contains(p.opts.Resources, a) }) {
		return nil, errors.New("audience is not a configured resource")
	}
	if sub, _ := claims["sub"].(string); sub == "" {
		return nil, errors.New("no sub")
	}
	if jti, _ := claims["jti"].(string); jti != "" && p.store.revokedAccessToken(jti) {
		return nil, errors.New("revoked")
	}
	return claims, nil
}

func numericClaim(claims map[string]any, name string) (int64, bool) {
	n, ok := claims[name].(json.Number)
	if !ok {
		return 0, false
	}
	if i, err := n.Int64(); err == nil {
		return i, true
	}
	f, err := n.Float64()
	return int64(f), err == nil
}

// audiences reads an aud claim, a string or an array of strings.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}
