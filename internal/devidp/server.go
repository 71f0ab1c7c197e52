package devidp

import (
	"context"
	"errors"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// endpoints are the library's routes. /token, /authorize and /register are
// also what an MCP client guesses when a server publishes no metadata.
var endpoints = op.Endpoints{
	Authorization: op.NewEndpoint("authorize"),
	Token:         op.NewEndpoint("token"),
	Introspection: op.NewEndpoint("introspect"),
	Userinfo:      op.NewEndpoint("userinfo"),
	Revocation:    op.NewEndpoint("revoke"),
	JwksURI:       op.NewEndpoint("keys"),
	// No end_session (there are no sessions) and no device authorization.
}

// callbackPath is where the login page sends the browser back; the library
// registers it under the authorization endpoint.
const callbackPath = "/authorize/callback"

// routes builds the whole handler: metadata, registration and login here, the
// rest from the library, behind the loopback guard and one CORS policy.
func (p *Provider) routes() http.Handler {
	srv := &server{LegacyServer: op.NewLegacyServer(p.op, endpoints), p: p}
	// The library's CORS is turned off (nil options) so that one policy,
	// corsMiddleware, covers its routes and this package's alike.
	oidcHandler := op.RegisterLegacyServer(srv, op.AuthorizeCallbackHandler(p.op), op.WithServerCORSOptions(nil))

	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.serveMetadata)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.serveMetadata)
	mux.HandleFunc(registerPath, p.serveRegister)
	mux.HandleFunc(loginPath, p.serveLogin)
	mux.Handle("/", oidcHandler)
	return p.guard(corsMiddleware(mux))
}

// guard answers 403 to a request whose Host is not a loopback name — a page
// that rebinds its DNS name to 127.0.0.1 must not drive the provider — and 503
// while the issuer is unknown.
func (p *Provider) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !isLoopbackHost(host) {
			writeJSONError(w, http.StatusForbidden, "access_denied", "this development provider serves loopback hosts only")
			return
		}
		if p.Issuer() == "" {
			writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "issuer not known yet")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// corsMiddleware lets browser-based MCP clients (e.g. the MCP Inspector) call
// the metadata, registration, token and JWKS endpoints. No cookies are
// involved, so any origin is allowed without credentials. The login page is a
// navigation and gets no CORS headers.
func corsMiddleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") == "" || r.URL.Path == loginPath {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate")
		next.ServeHTTP(w, r)
	})
}

// server adapts the library's LegacyServer. The overrides exist because the
// library ignores the RFC 8707 resource parameter (it is in no request type
// but token exchange's), builds the access token's aud from the same
// GetAudience it uses for the ID token, lets registered claims win over
// private ones (so aud cannot be set from storage), never emits a scope claim,
// and does not require PKCE. Client authentication, request parsing, redirect
// URI checks, the login callback, codes and ID tokens stay the library's.
type server struct {
	*op.LegacyServer
	p *Provider
}

var _ op.ExtendedLegacyServer = (*server)(nil)

// Discovery serves the same document as /.well-known/openid-configuration,
// should the library's route ever be reached.
func (s *server) Discovery(ctx context.Context, _ *op.Request[struct{}]) (*op.Response, error) {
	return op.NewResponse(s.p.metadata(op.IssuerFromContext(ctx))), nil
}

// VerifyAuthRequest finds the client (registered, or from its metadata
// document), checks the redirect URI exactly (loopback: any port), and fills
// in the default scopes when the request names none.
func (s *server) VerifyAuthRequest(ctx context.Context, r *op.Request[oidc.AuthRequest]) (*op.ClientRequest[oidc.AuthRequest], error) {
	if r.Data.ClientID == "" {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("client_id is missing")
	}
	c, err := s.p.store.client(ctx, r.Data.ClientID)
	if err != nil {
		// Rendered, never redirected: the redirect URI is not known to be the client's.
		desc := "unknown client_id"
		if isMetadataClientID(r.Data.ClientID) {
			desc = "the client ID metadata document could not be used (see the provider's log)"
		}
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("%s", desc).WithParent(err)
	}
	if r.Data.RedirectURI != "" && !c.matchRedirectURI(r.Data.RedirectURI) {
		return nil, oidc.ErrInvalidRequestRedirectURI().WithDescription("redirect_uri is not registered for this client")
	}
	if len(r.Data.Scopes) == 0 {
		r.Data.Scopes = slices.Clone(c.scopes)
		if len(r.Data.Scopes) == 0 {
			r.Data.Scopes = []string{oidc.ScopeOpenID}
		}
	}
	return &op.ClientRequest[oidc.AuthRequest]{Request: r, Client: c}, nil
}

// Authorize runs after the library validated the redirect URI, scopes and
// response type; its errors are redirected to the client. It enforces PKCE,
// resolves the RFC 8707 resource and sends the browser to the login page.
func (s *server) Authorize(_ context.Context, r *op.ClientRequest[oidc.AuthRequest]) (*op.Redirect, error) {
	req := r.Data
	if req.RequestParam != "" {
		return nil, oidc.ErrRequestNotSupported()
	}
	if slices.Contains(req.Prompt, oidc.PromptNone) {
		return nil, oidc.ErrLoginRequired().WithDescription("there are no sessions; the user must sign in")
	}
	switch {
	case req.CodeChallenge == "" && req.CodeChallengeMethod != "":
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method without code_challenge")
	case req.CodeChallenge == "" && r.Client.AuthMethod() == oidc.AuthMethodNone:
		return nil, oidc.ErrInvalidRequest().WithDescription("public clients must use PKCE: send code_challenge with code_challenge_method S256")
	case req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256:
		// An empty method means plain (RFC 7636 §4.3): refused as well.
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	resource, err := s.p.resolveResource(r.Form["resource"])
	if err != nil {
		return nil, invalidTarget(err)
	}
	// Scopes the library lets through but this provider does not offer
	// (phone, address) are dropped.
	req.Scopes = slices.DeleteFunc(req.Scopes, func(sc string) bool { return !s.p.knownScope(sc) })
	ar := s.p.store.createAuthRequest(req, resource)
	return op.NewRedirect(r.Client.LoginURL(ar.id)), nil
}

// CodeExchange redeems a code once: client, redirect URI, PKCE verifier (for
// every client that sent a challenge, not only public ones as the library
// does) and resource must match the authorization request.
func (s *server) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	c, err := ourClient(r.Client)
	if err != nil {
		return nil, err
	}
	ar, err := s.p.store.consumeCode(r.Data.Code)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code is invalid, expired or already used")
	}
	if ar.clientID != c.id {
		return nil, oidc.ErrInvalidGrant().WithDescription("the code was issued to another client")
	}
	if ar.redirectURI != r.Data.RedirectURI {
		return nil, oidc.ErrInvalidGrant().WithDescription("redirect_uri does not match the authorization request")
	}
	if err := op.AuthorizeCodeChallenge(r.Data.CodeVerifier, ar.challenge); err != nil {
		return nil, err
	}
	if res := r.Form["resource"]; len(res) > 0 {
		if got, err := s.p.resolveResource(res); err != nil || got != ar.resource {
			return nil, oidc.ErrInvalidTarget().WithDescription("resource differs from the authorization request")
		}
	}
	at, err := s.p.mint(ctx, mintSpec{
		subject:  ar.userID,
		clientID: c.id,
		scopes:   ar.scopes,
		audience: ar.resource,
		authTime: ar.authTime,
	})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken: at.token,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   expiresIn(at.ttl),
		Scope:       ar.scopes,
	}
	// A refresh token goes to every client registered for the refresh_token
	// grant, whether or not it asked for offline_access: MCP clients rarely
	// do, and re-authorizing every AccessTTL makes a poor demo.
	if c.hasGrant(oidc.GrantTypeRefreshToken) {
		resp.RefreshToken = s.p.store.newRefresh(refreshGrant{
			userID: ar.userID, clientID: c.id, scopes: ar.scopes, resource: ar.resource, authTime: ar.authTime,
		})
	}
	if slices.Contains(ar.scopes, oidc.ScopeOpenID) {
		resp.IDToken, err = op.CreateIDToken(ctx, op.IssuerFromContext(ctx), ar, c.IDTokenLifetime(), at.token, r.Data.Code, s.p.store, c)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
	}
	return noStore(resp), nil
}

// RefreshToken rotates the refresh token and mints an access token for the
// original resource, with the original scopes or fewer.
func (s *server) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	c, err := ourClient(r.Client)
	if err != nil {
		return nil, err
	}
	g, next, err := s.p.store.rotateRefresh(r.Data.RefreshToken, c.id, r.Data.Scopes, r.Form["resource"])
	if err != nil {
		return nil, err
	}
	scopes := g.scopes
	if len(r.Data.Scopes) > 0 {
		scopes = r.Data.Scopes
	}
	at, err := s.p.mint(ctx, mintSpec{
		subject:  g.userID,
		clientID: c.id,
		scopes:   scopes,
		audience: g.resource,
		authTime: g.authTime,
	})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  at.token,
		TokenType:    oidc.BearerToken,
		RefreshToken: next,
		ExpiresIn:    expiresIn(at.ttl),
		Scope:        scopes,
	}
	if slices.Contains(scopes, oidc.ScopeOpenID) {
		idReq := refreshRequest{g.clone()}
		idReq.SetCurrentScopes(scopes)
		resp.IDToken, err = op.CreateIDToken(ctx, op.IssuerFromContext(ctx), idReq, c.IDTokenLifetime(), at.token, "", s.p.store, c)
		if err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
	}
	return noStore(resp), nil
}

// ClientCredentialsExchange mints a token whose sub is the client itself. The
// library has already authenticated the (confidential) client and checked it
// may use the grant.
func (s *server) ClientCredentialsExchange(ctx context.Context, r *op.ClientRequest[oidc.ClientCredentialsRequest]) (*op.Response, error) {
	c, err := ourClient(r.Client)
	if err != nil {
		return nil, err
	}
	scopes := []string(r.Data.Scope)
	if len(scopes) == 0 {
		scopes = slices.Clone(c.scopes)
	}
	for _, sc := range scopes {
		if !slices.Contains(c.scopes, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("the client may not obtain that scope")
		}
	}
	resource, err := s.p.resolveResource(r.Form["resource"])
	if err != nil {
		return nil, invalidTarget(err)
	}
	at, err := s.p.mint(ctx, mintSpec{subject: c.id, clientID: c.id, scopes: scopes, audience: resource})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return noStore(&oidc.AccessTokenResponse{
		AccessToken: at.token,
		TokenType:   oidc.BearerToken,
		ExpiresIn:   expiresIn(at.ttl),
		Scope:       scopes,
	}), nil
}

// TokenExchange implements RFC 8693 for a confidential client allowed the
// grant: a valid access token of this provider (subject_token_type
// access_token or jwt) is exchanged for one with the same subject, the
// requested resource/audience (one of Options.Resources), the same scopes or
// fewer, client_id the exchanging client and act {"sub": that client}. The
// new token never outlives the subject token. Actor tokens, and refresh or ID
// tokens as subject or requested type, are not supported.
func (s *server) TokenExchange(ctx context.Context, r *op.ClientRequest[oidc.TokenExchangeRequest]) (*op.Response, error) {
	c, err := ourClient(r.Client)
	if err != nil {
		return nil, err
	}
	if c.public() {
		return nil, oidc.ErrInvalidClient().WithDescription("token exchange needs an authenticated client")
	}
	req := r.Data
	if req.SubjectTokenType != oidc.AccessTokenType && req.SubjectTokenType != oidc.JWTTokenType {
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token_type must be access_token or jwt")
	}
	if req.ActorToken != "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("actor_token is not supported")
	}
	issued := req.RequestedTokenType
	if issued == "" {
		issued = oidc.AccessTokenType
	}
	if issued != oidc.AccessTokenType && issued != oidc.JWTTokenType {
		return nil, oidc.ErrInvalidRequest().WithDescription("requested_token_type must be access_token or jwt")
	}
	claims, err := s.p.verifyAccessToken(req.SubjectToken)
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("subject_token is invalid: %s", err.Error())
	}
	resource, err := s.p.resolveResource(append(slices.Clone(req.Resource), req.Audience...))
	if err != nil {
		return nil, invalidTarget(err)
	}
	scopeClaim, _ := claims["scope"].(string)
	granted := strings.Fields(scopeClaim)
	scopes := []string(req.Scopes)
	if len(scopes) == 0 {
		scopes = granted
	}
	for _, sc := range scopes {
		if !slices.Contains(granted, sc) {
			return nil, oidc.ErrInvalidScope().WithDescription("scope exceeds the subject token's")
		}
	}
	ttl := s.p.opts.AccessTTL
	if exp, ok := numericClaim(claims, "exp"); ok {
		if left := time.Unix(exp, 0).Sub(s.p.now().Truncate(time.Second)); left < ttl {
			ttl = left
		}
	}
	sub, _ := claims["sub"].(string)
	at, err := s.p.mint(ctx, mintSpec{
		subject:  sub,
		clientID: c.id,
		scopes:   scopes,
		audience: resource,
		ttl:      ttl,
		act:      map[string]any{"sub": c.id},
	})
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return noStore(&oidc.TokenExchangeResponse{
		AccessToken:     at.token,
		IssuedTokenType: issued,
		TokenType:       oidc.BearerToken,
		ExpiresIn:       expiresIn(at.ttl),
		Scopes:          scopes,
	}), nil
}

// JWTProfile refuses the RFC 7523 jwt-bearer grant, which the library would
// otherwise advertise and attempt.
func (s *server) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the jwt-bearer grant is not supported")
}

// ourClient recovers this package's client from the library's interface.
func ourClient(c op.Client) (*client, error) {
	cc, ok := c.(*client)
	if !ok {
		return nil, oidc.ErrServerError().WithDescription("unexpected client type")
	}
	return cc, nil
}

// invalidTarget maps a resource error to RFC 8707's invalid_target, with a
// description that echoes nothing the caller sent.
func invalidTarget(err error) *oidc.Error {
	desc := "the resource is not one this server issues tokens for"
	if errors.Is(err, errOneResource) {
		desc = "only one resource per request is supported"
	}
	return oidc.ErrInvalidTarget().WithDescription("%s", desc).WithParent(err)
}

// noStore wraps a token response with the headers RFC 6749 §5.1 requires.
func noStore(data any) *op.Response {
	resp := op.NewResponse(data)
	resp.Header.Set("Cache-Control", "no-store")
	resp.Header.Set("Pragma", "no-cache")
	return resp
}

func expiresIn(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	return uint64(d.Seconds())
}
