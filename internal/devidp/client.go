package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// GrantTypeTokenExchange is the RFC 8693 grant type, for [ClientConfig.GrantTypes]
// and [Provider.CreateClient].
const GrantTypeTokenExchange = string(oidc.GrantTypeTokenExchange)

// loginPath is where the library sends the browser to sign in.
const loginPath = "/login"

// ClientConfig describes a client registered through the Go API
// ([Provider.AddClient]).
type ClientConfig struct {
	// ID is the client_id. It must not look like a URL: those name client ID
	// metadata documents.
	ID string
	// Secret makes the client confidential (client_secret_basic or
	// client_secret_post). Empty: a public client (token_endpoint_auth_method
	// none), which must use PKCE S256.
	Secret string
	// Name is shown on the login page.
	Name string
	// RedirectURIs are required for the authorization_code grant: https, http
	// on a loopback host (any port matches, RFC 8252 §7.3), or a custom scheme.
	RedirectURIs []string
	// Scopes are the resource scopes the client may obtain; empty means every
	// one in [Options.Scopes]. OIDC scopes are always allowed.
	Scopes []string
	// GrantTypes are the grants the client may use: authorization_code,
	// refresh_token, client_credentials, [GrantTypeTokenExchange]. Default:
	// client_credentials for a confidential client without redirect URIs,
	// else authorization_code and refresh_token. client_credentials and token
	// exchange need a secret.
	GrantTypes []string
}

// client is a registered (Go API or RFC 7591) or metadata-document client;
// it implements op.Client.
type client struct {
	id           string
	secretHash   []byte // SHA-256 of the secret; nil for a public client
	name         string
	redirectURIs []string
	grantTypes   []oidc.GrantType
	authMethod   oidc.AuthMethod
	scopes       []string // allowed resource scopes
	idTokenTTL   time.Duration
	metadataDoc  bool // from a client ID metadata document
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.id }
func (c *client) RedirectURIs() []string           { return slices.Clone(c.redirectURIs) }
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) AuthMethod() oidc.AuthMethod      { return c.authMethod }
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType { return slices.Clone(c.grantTypes) }
func (c *client) LoginURL(id string) string    { return loginPath + "?id=" + url.QueryEscape(id) }
func (c *client) AccessTokenType() op.AccessTokenType {
	return op.AccessTokenTypeJWT
}
func (c *client) IDTokenLifetime() time.Duration { return c.idTokenTTL }
func (c *client) DevMode() bool                  { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed is asked by the library for every non-OIDC scope; the others
// are silently dropped from the request (RFC 6749 §3.3 lets the server narrow
// the scope; the token response says what was granted).
func (c *client) IsScopeAllowed(scope string) bool { return slices.Contains(c.scopes, scope) }

// IDTokenUserinfoClaimsAssertion puts profile and email claims in the ID token
// even when an access token is issued, which a relying party like Butler's
// /connect page finds convenient.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }

// ApplicationType steers the library's redirect URI check: "native" is the
// type for which it matches loopback redirect URIs on any port (RFC 8252
// §7.3) and accepts custom schemes, so every client with such a URI is native.
func (c *client) ApplicationType() op.ApplicationType {
	for _, u := range c.redirectURIs {
		if isLoopbackHTTP(u) || !strings.HasPrefix(u, "https://") {
			return op.ApplicationTypeNative
		}
	}
	return op.ApplicationTypeWeb
}

// public reports whether the client has no secret.
func (c *client) public() bool { return c.secretHash == nil }

// checkSecret compares in constant time.
func (c *client) checkSecret(secret string) bool {
	if c.secretHash == nil {
		return false
	}
	h := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(h[:], c.secretHash) == 1
}

// hasGrant reports whether the client may use grant g.
func (c *client) hasGrant(g oidc.GrantType) bool { return slices.Contains(c.grantTypes, g) }

// matchRedirectURI reports whether uri is registered for the client: exactly,
// or, for a loopback http(s) URI, equal in everything but the port (RFC 8252
// §7.3). The library's own check ignores the host and scheme of loopback
// URIs; this one is stricter and runs first.
func (c *client) matchRedirectURI(uri string) bool {
	if slices.Contains(c.redirectURIs, uri) {
		return true
	}
	got, err := url.Parse(uri)
	if err != nil || !isLoopbackHTTP(uri) {
		return false
	}
	for _, r := range c.redirectURIs {
		if !isLoopbackHTTP(r) {
			continue
		}
		want, err := url.Parse(r)
		if err != nil {
			continue
		}
		if got.Scheme == want.Scheme && strings.EqualFold(got.Hostname(), want.Hostname()) &&
			got.EscapedPath() == want.EscapedPath() && got.RawQuery == want.RawQuery && got.User == nil {
			return true
		}
	}
	return false
}

// CreateClient registers a confidential client with a secret, allowed the
// given resource scopes (empty: all) and grant types (default:
// client_credentials), for scripts and tests. Use [Provider.AddClient] for a
// client that also needs redirect URIs.
func (p *Provider) CreateClient(id, secret string, scopes []string, grantTypes ...string) error {
	if secret == "" {
		return errors.New("devidp: create client: a secret is required")
	}
	if len(grantTypes) == 0 {
		grantTypes = []string{string(oidc.GrantTypeClientCredentials)}
	}
	return p.AddClient(ClientConfig{ID: id, Secret: secret, Scopes: scopes, GrantTypes: grantTypes})
}

// AddClient registers a client described by cfg.
func (p *Provider) AddClient(cfg ClientConfig) error {
	if cfg.ID == "" || strings.ContainsAny(cfg.ID, " :/") {
		return fmt.Errorf("devidp: add client: invalid client id %q", cfg.ID)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = nil // every configured scope
	}
	c, err := p.newClient(clientMeta{
		id:           cfg.ID,
		secret:       cfg.Secret,
		name:         cfg.Name,
		redirectURIs: cfg.RedirectURIs,
		scopes:       scopes,
		grants:       cfg.GrantTypes,
		trusted:      true,
	})
	if err != nil {
		return fmt.Errorf("devidp: add client %q: %w", cfg.ID, err)
	}
	if err := p.store.addClient(c); err != nil {
		return err
	}
	p.log.Info("devidp: client added", "client_id", c.id, "grant_types", c.grantTypes, "public", c.public())
	return nil
}

// clientMeta is what newClient validates, whatever registered the client.
type clientMeta struct {
	id, secret, name string
	// authMethod is the token endpoint auth method; "" means
	// client_secret_basic with a secret and none without.
	authMethod   oidc.AuthMethod
	redirectURIs []string
	// scopes are the resource scopes the client may obtain: nil means every
	// configured one; OIDC scopes in it are ignored (always allowed).
	scopes []string
	grants []string
	// trusted clients (the Go API) may have client_credentials and token
	// exchange; self-registered ones may not.
	trusted     bool
	metadataDoc bool
}

// newClient validates m and builds the client.
func (p *Provider) newClient(m clientMeta) (*client, error) {
	for _, u := range m.redirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return nil, err
		}
	}
	scopes := m.scopes
	if scopes == nil {
		scopes = p.opts.Scopes
	}
	allowed := []string{}
	for _, s := range scopes {
		switch {
		case slices.Contains(oidcScopes, s):
		case slices.Contains(p.opts.Scopes, s):
			allowed = append(allowed, s)
		default:
			return nil, fmt.Errorf("%w: %q", ErrUnknownScope, s)
		}
	}
	grants := m.grants
	if len(grants) == 0 {
		if m.secret != "" && len(m.redirectURIs) == 0 {
			grants = []string{string(oidc.GrantTypeClientCredentials)}
		} else {
			grants = []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken)}
		}
	}
	c := &client{
		id:           m.id,
		name:         m.name,
		redirectURIs: slices.Clone(m.redirectURIs),
		scopes:       allowed,
		authMethod:   oidc.AuthMethodNone,
		idTokenTTL:   p.opts.AccessTTL,
		metadataDoc:  m.metadataDoc,
	}
	if m.secret != "" {
		h := sha256.Sum256([]byte(m.secret))
		c.secretHash = h[:]
		// The library takes the secret from the Authorization header or the
		// body whatever the method, so both work for either.
		c.authMethod = oidc.AuthMethodBasic
		if m.authMethod == oidc.AuthMethodPost {
			c.authMethod = oidc.AuthMethodPost
		}
	}
	for _, g := range grants {
		gt := oidc.GrantType(g)
		switch gt {
		case oidc.GrantTypeCode:
			if len(m.redirectURIs) == 0 {
				return nil, errors.New("authorization_code needs at least one redirect URI")
			}
		case oidc.GrantTypeRefreshToken:
		case oidc.GrantTypeClientCredentials, oidc.GrantTypeTokenExchange:
			if !m.trusted {
				return nil, fmt.Errorf("grant type %q is only for clients created by the operator", g)
			}
			if m.secret == "" {
				return nil, fmt.Errorf("grant type %q needs a confidential client", g)
			}
		default:
			return nil, fmt.Errorf("unsupported grant type %q", g)
		}
		if !slices.Contains(c.grantTypes, gt) {
			c.grantTypes = append(c.grantTypes, gt)
		}
	}
	return c, nil
}

// errInvalidRedirectURI marks a redirect URI refusal (RFC 7591 invalid_redirect_uri).
var errInvalidRedirectURI = errors.New("invalid redirect URI")

// checkRedirectURI accepts an absolute URI without fragment or userinfo that
// is https, http on a loopback host, or a private-use scheme for native apps
// (RFC 8252 §7.1). Schemes a browser would run or read locally are refused.
func checkRedirectURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%w %q: %v", errInvalidRedirectURI, s, err)
	}
	if !u.IsAbs() || strings.Contains(s, "#") || u.User != nil {
		return fmt.Errorf("%w %q: must be absolute, without fragment or user info", errInvalidRedirectURI, s)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Host == "" {
			return fmt.Errorf("%w %q: no host", errInvalidRedirectURI, s)
		}
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("%w %q: http is allowed only on a loopback host", errInvalidRedirectURI, s)
		}
	case "javascript", "data", "vbscript", "file", "about", "blob", "filesystem", "ws", "wss", "ftp", "mailto":
		return fmt.Errorf("%w %q: scheme %q not allowed", errInvalidRedirectURI, s, u.Scheme)
	}
	return nil
}

// isLoopbackHTTP reports whether s is an http or https URL on a loopback host.
func isLoopbackHTTP(s string) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return isLoopbackHost(u.Hostname())
}
