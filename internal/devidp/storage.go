package devidp

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

const (
	// loginTTL bounds the time between /authorize and the login.
	loginTTL = 10 * time.Minute
	// codeTTL bounds the time between the login and the code exchange.
	codeTTL = time.Minute
	// maxClients bounds self-registered clients (RFC 7591 is open registration).
	maxClients = 10000
)

// errMintedByServer answers the library's token-creation hooks: every token
// is minted by this package's server (see server.go), so reaching one of them
// means an unexpected path, which must fail closed.
var errMintedByServer = errors.New("devidp: tokens are minted by the devidp server, not through storage")

// storage is the in-memory op.Storage. Everything it returns is a copy, so the
// library never shares mutable state with it.
type storage struct {
	p *Provider

	mu        sync.Mutex
	keys      []*signingKey // the last one signs
	clients   map[string]*client
	metaCache map[string]cachedClient   // client ID metadata documents by URL
	authReqs  map[string]*authRequest   // by id
	codes     map[string]string         // code -> auth request id
	refresh   map[string]*refreshGrant  // by SHA-256 of the token
	rotated   map[string]rotatedRefresh // SHA-256 of a spent refresh token -> its chain
	tokens    map[string]*accessRecord  // access tokens by jti
}

var (
	_ op.Storage                   = (*storage)(nil)
	_ op.ClientCredentialsStorage  = (*storage)(nil)
	_ op.CanSetUserinfoFromRequest = (*storage)(nil)
)

func newStorage(p *Provider, key *signingKey) *storage {
	return &storage{
		p:         p,
		keys:      []*signingKey{key},
		clients:   make(map[string]*client),
		metaCache: make(map[string]cachedClient),
		authReqs:  make(map[string]*authRequest),
		codes:     make(map[string]string),
		refresh:   make(map[string]*refreshGrant),
		rotated:   make(map[string]rotatedRefresh),
		tokens:    make(map[string]*accessRecord),
	}
}

// randomID returns n random bytes, base64url encoded (no ':' — the library
// splits opaque tokens on it).
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	h := sha256.Sum256([]byte(t))
	return hex.EncodeToString(h[:])
}

// ---- keys ----

func (s *storage) currentKey() *signingKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keys[len(s.keys)-1]
}

func (s *storage) keyByID(kid string) (*signingKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.kid == kid {
			return k, true
		}
	}
	return nil, false
}

// SigningKey implements op.AuthStorage; the library signs ID tokens with it.
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) {
	return s.currentKey(), nil
}

// SignatureAlgorithms implements op.AuthStorage.
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

// KeySet implements op.AuthStorage: the JWKS, every key not removed.
func (s *storage) KeySet(context.Context) ([]op.Key, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys := make([]op.Key, len(s.keys))
	for i, k := range s.keys {
		keys[i] = publicKey{k}
	}
	return keys, nil
}

// ---- clients ----

func (s *storage) addClient(c *client) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.id]; ok {
		return fmt.Errorf("%w: %q", ErrClientExists, c.id)
	}
	if len(s.clients) >= maxClients {
		return errors.New("devidp: too many clients")
	}
	s.clients[c.id] = c
	return nil
}

// client returns the registered client, or the one a client ID metadata
// document describes when id is such a URL.
func (s *storage) client(ctx context.Context, id string) (*client, error) {
	s.mu.Lock()
	c, ok := s.clients[id]
	s.mu.Unlock()
	if ok {
		return c, nil
	}
	if isMetadataClientID(id) {
		return s.p.metadataClient(ctx, id)
	}
	return nil, fmt.Errorf("devidp: unknown client %q", id)
}

// GetClientByClientID implements op.OPStorage. An unknown client is a plain
// error, as the library asks.
func (s *storage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.client(ctx, id)
	if err != nil {
		return nil, err
	}
	return c, nil
}

// AuthorizeClientIDSecret implements op.OPStorage.
func (s *storage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.client(ctx, id)
	if err != nil {
		return err
	}
	if !c.checkSecret(secret) {
		return errors.New("devidp: wrong client secret")
	}
	return nil
}

// ClientCredentials implements op.ClientCredentialsStorage. Its errors are
// oidc.ErrInvalidClient: the library's LegacyServer.VerifyClient hands them
// to the response unwrapped, and a plain error would be answered as a 500
// server_error.
func (s *storage) ClientCredentials(ctx context.Context, id, secret string) (op.Client, error) {
	c, err := s.client(ctx, id)
	if err != nil || !c.checkSecret(secret) {
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client or wrong secret")
	}
	if !c.hasGrant(oidc.GrantTypeClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient().WithDescription("the client may not use client_credentials")
	}
	return c, nil
}

// ClientCredentialsTokenRequest implements op.ClientCredentialsStorage. The
// server's ClientCredentialsExchange does not call it; it answers for
// completeness.
func (s *storage) ClientCredentialsTokenRequest(_ context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	return clientCredentialsRequest{clientID: clientID, scopes: scopes, audience: s.p.opts.Resources[0]}, nil
}

type clientCredentialsRequest struct {
	clientID, audience string
	scopes             []string
}

func (r clientCredentialsRequest) GetSubject() string    { return r.clientID }
func (r clientCredentialsRequest) GetAudience() []string { return []string{r.audience} }
func (r clientCredentialsRequest) GetScopes() []string   { return r.scopes }

// ---- authorization requests and codes ----

// authRequest is an authorization request on its way through login and code
// exchange; it implements op.AuthRequest.
type authRequest struct {
	id           string
	created      time.Time
	clientID     string
	redirectURI  string
	state, nonce string
	scopes       []string
	responseType oidc.ResponseType
	responseMode oidc.ResponseMode
	challenge    *oidc.CodeChallenge
	resource     string // RFC 8707: the access token's aud

	userID   string
	done     bool
	authTime time.Time
	code     string
	codeAt   time.Time
}

var _ op.AuthRequest = (*authRequest)(nil)

func (a *authRequest) clone() *authRequest {
	c := *a
	c.scopes = slices.Clone(a.scopes)
	if a.challenge != nil {
		ch := *a.challenge
		c.challenge = &ch
	}
	return &c
}

func (a *authRequest) GetID() string    { return a.id }
func (a *authRequest) GetACR() string   { return "" }
func (a *authRequest) GetAMR() []string { return nil }

// GetAudience is the ID token's audience: the client (OIDC Core §2). The
// access token's audience is the resource, which the server sets itself.
func (a *authRequest) GetAudience() []string                 { return []string{a.clientID} }
func (a *authRequest) GetAuthTime() time.Time                { return a.authTime }
func (a *authRequest) GetClientID() string                   { return a.clientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge { return a.challenge }
func (a *authRequest) GetNonce() string                      { return a.nonce }
func (a *authRequest) GetRedirectURI() string                { return a.redirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType    { return a.responseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode    { return a.responseMode }
func (a *authRequest) GetScopes() []string                   { return slices.Clone(a.scopes) }
func (a *authRequest) GetState() string                      { return a.state }
func (a *authRequest) GetSubject() string                    { return a.userID }
func (a *authRequest) Done() bool                            { return a.done }

// createAuthRequest stores a validated request for client, bound to resource.
func (s *storage) createAuthRequest(req *oidc.AuthRequest, resource string) *authRequest {
	now := s.p.now()
	a := &authRequest{
		id:           randomID(24),
		created:      now,
		clientID:     req.ClientID,
		redirectURI:  req.RedirectURI,
		state:        req.State,
		nonce:        req.Nonce,
		scopes:       slices.Clone(req.Scopes),
		responseType: req.ResponseType,
		responseMode: req.ResponseMode,
		resource:     resource,
	}
	if req.CodeChallenge != "" {
		a.challenge = &oidc.CodeChallenge{Challenge: req.CodeChallenge, Method: req.CodeChallengeMethod}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, old := range s.authReqs { // prune: a handful of entries in a demo
		if now.Sub(old.created) > loginTTL+codeTTL {
			delete(s.authReqs, id)
			delete(s.codes, old.code)
		}
	}
	s.authReqs[a.id] = a
	return a.clone()
}

// pendingLogin returns the request while it waits for a login.
func (s *storage) pendingLogin(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || a.done || s.p.now().Sub(a.created) > loginTTL {
		return nil, errors.New("devidp: unknown, finished or expired sign-in request")
	}
	return a.clone(), nil
}

// completeLogin records that userID signed in for request id.
func (s *storage) completeLogin(id, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	now := s.p.now()
	if !ok || a.done || now.Sub(a.created) > loginTTL {
		return errors.New("devidp: unknown, finished or expired sign-in request")
	}
	a.done, a.userID, a.authTime = true, userID, now
	return nil
}

// takePendingLogin removes a request that is still waiting for a login (the
// user cancelled).
func (s *storage) takePendingLogin(id string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || a.done {
		return nil, errors.New("devidp: unknown or finished sign-in request")
	}
	delete(s.authReqs, id)
	return a, nil
}

// CreateAuthRequest implements op.AuthStorage. The server's Authorize stores
// requests itself (it needs the resource), so this is never reached.
func (s *storage) CreateAuthRequest(context.Context, *oidc.AuthRequest, string) (op.AuthRequest, error) {
	return nil, errors.New("devidp: auth requests are created by the devidp server")
}

// AuthRequestByID implements op.AuthStorage; the library's login callback
// reads the request with it.
func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || s.p.now().Sub(a.created) > loginTTL+codeTTL {
		return nil, errors.New("devidp: unknown auth request")
	}
	return a.clone(), nil
}

// AuthRequestByCode implements op.AuthStorage.
func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.byCodeLocked(code)
	if err != nil {
		return nil, err
	}
	return a.clone(), nil
}

func (s *storage) byCodeLocked(code string) (*authRequest, error) {
	id, ok := s.codes[code]
	if !ok {
		return nil, errors.New("devidp: unknown code")
	}
	a, ok := s.authReqs[id]
	if !ok || !a.done || s.p.now().Sub(a.codeAt) > codeTTL {
		return nil, errors.New("devidp: expired code")
	}
	return a, nil
}

// consumeCode returns the request of a code and forgets both, so a code is
// redeemed at most once even by concurrent requests.
func (s *storage) consumeCode(code string) (*authRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, err := s.byCodeLocked(code)
	delete(s.codes, code)
	if err != nil {
		return nil, err
	}
	delete(s.authReqs, a.id)
	return a, nil
}

// SaveAuthCode implements op.AuthStorage; the code is the library's
// encryption of the request id.
func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.authReqs[id]
	if !ok || !a.done {
		return errors.New("devidp: no finished auth request for the code")
	}
	if a.code != "" { // a second callback replaces the first code
		delete(s.codes, a.code)
	}
	a.code, a.codeAt = code, s.p.now()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest implements op.AuthStorage.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.authReqs[id]; ok {
		delete(s.codes, a.code)
		delete(s.authReqs, id)
	}
	return nil
}

// ---- access tokens ----

// accessRecord remembers an issued access token for introspection,
// userinfo and revocation. The JWT itself stays valid until it expires.
type accessRecord struct {
	subject, clientID, audience string
	scopes                      []string
	issued, expires             time.Time
	revoked                     bool
}

func (s *storage) recordAccessToken(jti string, r *accessRecord) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.tokens) > 1000 {
		now := s.p.now()
		for id, t := range s.tokens {
			if now.After(t.expires) {
				delete(s.tokens, id)
			}
		}
	}
	s.tokens[jti] = r
}

func (s *storage) accessToken(jti string) (accessRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[jti]
	if !ok || t.revoked || s.p.now().After(t.expires) {
		return accessRecord{}, false
	}
	r := *t
	r.scopes = slices.Clone(t.scopes)
	return r, true
}

// revokedAccessToken reports whether the token jti was revoked.
func (s *storage) revokedAccessToken(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.tokens[jti]
	return ok && t.revoked
}

// CreateAccessToken implements op.AuthStorage; see errMintedByServer.
func (s *storage) CreateAccessToken(context.Context, op.TokenRequest) (string, time.Time, error) {
	return "", time.Time{}, errMintedByServer
}

// CreateAccessAndRefreshTokens implements op.AuthStorage; see errMintedByServer.
func (s *storage) CreateAccessAndRefreshTokens(context.Context, op.TokenRequest, string) (string, string, time.Time, error) {
	return "", "", time.Time{}, errMintedByServer
}

// ---- refresh tokens ----

// refreshGrant is what a refresh token stands for. Tokens are stored by hash.
type refreshGrant struct {
	id       string // the token id the library passes to RevokeToken
	chain    string // shared by every rotation of one grant
	userID   string
	clientID string
	scopes   []string
	resource string
	authTime time.Time
	expires  time.Time
}

type rotatedRefresh struct {
	chain string
	at    time.Time
}

func (g *refreshGrant) clone() *refreshGrant {
	c := *g
	c.scopes = slices.Clone(g.scopes)
	return &c
}

// newRefresh stores a new refresh token for the grant and returns it.
func (s *storage) newRefresh(g refreshGrant) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.newRefreshLocked(g)
}

func (s *storage) newRefreshLocked(g refreshGrant) string {
	token := randomID(32)
	g.id = randomID(16)
	if g.chain == "" {
		g.chain = randomID(16)
	}
	g.expires = s.p.now().Add(s.p.opts.RefreshTTL)
	s.refresh[hashToken(token)] = &g
	return token
}

// rotateRefresh spends a refresh token and returns its grant with a new token
// (RFC 9700 §4.14.2). A spent token presented again revokes its whole chain:
// either the client or an attacker holds a stolen copy. Scopes may narrow the
// new access token's scope (RFC 6749 §6); the grant keeps its own. A resource,
// if sent, must be the grant's.
func (s *storage) rotateRefresh(token, clientID string, scopes, resource []string) (*refreshGrant, string, error) {
	g, next, reused, err := s.spendRefresh(token, clientID, scopes, resource)
	if reused {
		s.p.log.Warn("devidp: spent refresh token reused; chain revoked", "client_id", clientID)
	}
	return g, next, err
}

func (s *storage) spendRefresh(token, clientID string, scopes, resource []string) (_ *refreshGrant, next string, reused bool, _ error) {
	h := hashToken(token)
	now := s.p.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[h]
	if !ok {
		if spent, wasSpent := s.rotated[h]; wasSpent {
			s.revokeChainLocked(spent.chain)
			return nil, "", true, oidc.ErrInvalidGrant().WithDescription("refresh token already used; the grant is revoked")
		}
		return nil, "", false, oidc.ErrInvalidGrant().WithDescription("unknown refresh token")
	}
	if now.After(g.expires) {
		delete(s.refresh, h)
		return nil, "", false, oidc.ErrInvalidGrant().WithDescription("refresh token expired")
	}
	if g.clientID != clientID {
		return nil, "", false, oidc.ErrInvalidGrant().WithDescription("refresh token was issued to another client")
	}
	for _, sc := range scopes {
		if !slices.Contains(g.scopes, sc) {
			return nil, "", false, oidc.ErrInvalidScope().WithDescription("scope exceeds the original grant")
		}
	}
	if len(resource) > 0 {
		if r, err := s.p.resolveResource(resource); err != nil || r != g.resource {
			return nil, "", false, oidc.ErrInvalidTarget().WithDescription("resource differs from the original grant")
		}
	}
	delete(s.refresh, h)
	for k, r := range s.rotated {
		if now.Sub(r.at) > s.p.opts.RefreshTTL {
			delete(s.rotated, k)
		}
	}
	s.rotated[h] = rotatedRefresh{chain: g.chain, at: now}
	grant := g.clone()
	return grant, s.newRefreshLocked(*grant), false, nil
}

func (s *storage) revokeChainLocked(chain string) {
	for h, g := range s.refresh {
		if g.chain == chain {
			delete(s.refresh, h)
		}
	}
}

// refreshRequest is a refresh grant as the library sees it; it implements
// op.RefreshTokenRequest (and so op.IDTokenRequest).
type refreshRequest struct{ g *refreshGrant }

func (r refreshRequest) GetAMR() []string            { return nil }
func (r refreshRequest) GetAudience() []string       { return []string{r.g.clientID} }
func (r refreshRequest) GetAuthTime() time.Time      { return r.g.authTime }
func (r refreshRequest) GetClientID() string         { return r.g.clientID }
func (r refreshRequest) GetScopes() []string         { return slices.Clone(r.g.scopes) }
func (r refreshRequest) GetSubject() string          { return r.g.userID }
func (r refreshRequest) SetCurrentScopes(s []string) { r.g.scopes = slices.Clone(s) }

// TokenRequestByRefreshToken implements op.AuthStorage without spending the
// token.
func (s *storage) TokenRequestByRefreshToken(_ context.Context, token string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[hashToken(token)]
	if !ok || s.p.now().After(g.expires) {
		return nil, errors.New("devidp: unknown refresh token")
	}
	return refreshRequest{g.clone()}, nil
}

// GetRefreshTokenInfo implements op.AuthStorage.
func (s *storage) GetRefreshTokenInfo(_ context.Context, clientID, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[hashToken(token)]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.userID, g.id, nil
}

// RevokeToken implements op.AuthStorage (RFC 7009). It receives a refresh
// token, a refresh token's id or an access token's jti. Revoking a refresh
// token revokes its chain; revoking an access token makes introspection and
// userinfo refuse it (the JWT itself verifies until it expires).
func (s *storage) RevokeToken(_ context.Context, tokenOrID, _, clientID string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g, ok := s.refresh[hashToken(tokenOrID)]; ok {
		if g.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		s.revokeChainLocked(g.chain)
		return nil
	}
	for _, g := range s.refresh {
		if g.id == tokenOrID {
			if g.clientID != clientID {
				return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
			}
			s.revokeChainLocked(g.chain)
			return nil
		}
	}
	if t, ok := s.tokens[tokenOrID]; ok {
		if t.clientID != clientID {
			return oidc.ErrInvalidClient().WithDescription("token was issued to another client")
		}
		t.revoked = true
	}
	return nil // RFC 7009 §2.2: an unknown token is not an error
}

// TerminateSession implements op.AuthStorage. There are no sessions: every
// authorization shows the login page.
func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

// ---- claims ----

// setUserinfo fills info for userID with the claims the scopes allow; all of
// them when scopes is nil.
func (s *storage) setUserinfo(info *oidc.UserInfo, userID string, scopes []string) error {
	u, ok := s.p.user(userID)
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownUser, userID)
	}
	info.Subject = u.ID
	all := scopes == nil
	if all || slices.Contains(scopes, oidc.ScopeProfile) {
		info.Name = u.Name
		info.PreferredUsername = u.ID
		info.AppendClaims("groups", nonNil(u.Groups))
	}
	if (all || slices.Contains(scopes, oidc.ScopeEmail)) && u.Email != "" {
		info.Email = u.Email
		info.EmailVerified = true
	}
	return nil
}

// SetUserinfoFromScopes implements op.OPStorage; the library asks for it to be
// empty and uses SetUserinfoFromRequest instead.
func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest implements op.CanSetUserinfoFromRequest: the ID
// token's profile claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	return s.setUserinfo(info, req.GetSubject(), scopes)
}

// SetUserinfoFromToken implements op.OPStorage: the userinfo endpoint, for an
// access token this provider issued and did not revoke.
func (s *storage) SetUserinfoFromToken(_ context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, ok := s.accessToken(tokenID)
	if !ok || t.subject != subject {
		return errors.New("devidp: unknown or revoked access token")
	}
	return s.setUserinfo(info, subject, t.scopes)
}

// SetIntrospectionFromToken implements op.OPStorage (RFC 7662).
func (s *storage) SetIntrospectionFromToken(_ context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, _ string) error {
	t, ok := s.accessToken(tokenID)
	if !ok || t.subject != subject {
		return errors.New("devidp: unknown or revoked access token")
	}
	resp.Scope = t.scopes
	resp.ClientID = t.clientID
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(t.expires)
	resp.IssuedAt = oidc.FromTime(t.issued)
	resp.NotBefore = oidc.FromTime(t.issued)
	resp.Subject = t.subject
	resp.Audience = []string{t.audience}
	resp.Issuer = s.p.Issuer()
	resp.JWTID = tokenID
	if u, ok := s.p.user(t.subject); ok {
		resp.Username = u.ID
		resp.Name = u.Name
		resp.Claims = map[string]any{"groups": nonNil(u.Groups)}
	}
	return nil
}

// GetPrivateClaimsFromScopes implements op.OPStorage; unused, as access
// tokens are minted by the server.
func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

// GetKeyByIDAndClientID implements op.OPStorage. JWT client authentication
// (private_key_jwt, RFC 7523) is not supported.
func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("devidp: private_key_jwt is not supported")
}

// ValidateJWTProfileScopes implements op.OPStorage; the JWT bearer grant is
// not supported.
func (s *storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("devidp: the jwt-bearer grant is not supported")
}

// Health implements op.Storage.
func (s *storage) Health(context.Context) error { return nil }

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
