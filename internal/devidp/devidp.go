package devidp

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Defaults for [Options].
const (
	// DefaultAccessTTL is the lifetime of an access token when
	// [Options.AccessTTL] is zero.
	DefaultAccessTTL = 15 * time.Minute
	// DefaultRefreshTTL is the lifetime of a refresh token when
	// [Options.RefreshTTL] is zero. Each rotation starts a new lifetime.
	DefaultRefreshTTL = 8 * time.Hour
	// DefaultTokenClientID is the client_id of tokens minted by
	// [Provider.IssueToken] when the request names none.
	DefaultTokenClientID = "devidp-cli"
)

// Sentinel errors.
var (
	// ErrNotLoopback: an issuer, a listen address or a request Host names
	// something other than 127.0.0.0/8, ::1 or localhost.
	ErrNotLoopback = errors.New("devidp: not a loopback address")
	// ErrIssuerUnknown: the issuer is not known yet; pass [Options.Issuer] or
	// call [Provider.Start] first.
	ErrIssuerUnknown = errors.New("devidp: issuer not known yet")
	// ErrUnknownUser: no configured user has that id.
	ErrUnknownUser = errors.New("devidp: unknown user")
	// ErrUnknownResource: the resource is not one of [Options.Resources].
	ErrUnknownResource = errors.New("devidp: unknown resource")
	// ErrUnknownScope: the scope is neither an OIDC scope nor one of
	// [Options.Scopes].
	ErrUnknownScope = errors.New("devidp: unknown scope")
	// ErrUnknownKey: no signing key has that kid.
	ErrUnknownKey = errors.New("devidp: unknown key")
	// ErrClientExists: a client with that id is already registered.
	ErrClientExists = errors.New("devidp: client already exists")
)

// User is a demo user who can sign in on the login page.
type User struct {
	ID     string   // the token's sub and preferred_username
	Name   string   // display name, the token's name claim
	Email  string   // optional; the email claim
	Groups []string // the token's groups claim
}

// Options configures a [Provider]. Only Resources is required.
type Options struct {
	// Issuer is the issuer URL, e.g. "http://127.0.0.1:9400": http or https,
	// a loopback host, no path. If empty, [Provider.Start] sets it from the
	// listener.
	Issuer string
	// Users are the demo users offered on the login page.
	Users []User
	// Resources are the accepted RFC 8707 resource (and so audience) values,
	// e.g. Butler's "http://127.0.0.1:8080/mcp". The first is the default for
	// requests that name none. At least one is required.
	Resources []string
	// Scopes are the resource scopes offered besides the OIDC ones
	// (openid, profile, email, offline_access), e.g. jenkins:read jenkins:build.
	Scopes []string
	// AccessTTL is the access token lifetime [DefaultAccessTTL].
	AccessTTL time.Duration
	// RefreshTTL is the refresh token lifetime [DefaultRefreshTTL].
	RefreshTTL time.Duration
	// Now is the clock for every time this package decides (token iat, nbf,
	// exp; code, login and refresh expiry) [time.Now]. The library still uses
	// the wall clock for ID tokens and for the tokens it verifies itself
	// (userinfo, introspection).
	Now func() time.Time
	// Logger receives debug and info logs; nil discards them.
	Logger *slog.Logger
	// HTTPClient fetches client ID metadata documents. Nil means a client with
	// a 5 s timeout that follows no redirects.
	HTTPClient *http.Client
}

// oidcScopes are the OpenID Connect scopes always offered.
var oidcScopes = []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess}

// Provider is a running development identity provider. Create it with [New];
// it is safe for concurrent use.
type Provider struct {
	opts       Options // defaults filled; slices copied
	now        func() time.Time
	log        *slog.Logger
	httpClient *http.Client

	store   *storage
	op      *op.Provider
	csrfKey [32]byte
	handler http.Handler

	mu     sync.Mutex
	issuer string
	srv    *http.Server
	done   chan struct{}
}

// New checks opts and builds a provider with one RSA signing key. It does not
// listen: call [Provider.Start], or serve [Provider.Handler] yourself.
func New(opts Options) (*Provider, error) {
	opts.Users = slices.Clone(opts.Users)
	opts.Resources = slices.Clone(opts.Resources)
	opts.Scopes = slices.Clone(opts.Scopes)
	if opts.Issuer != "" {
		if err := checkIssuer(opts.Issuer); err != nil {
			return nil, err
		}
	}
	if len(opts.Resources) == 0 {
		return nil, errors.New("devidp: at least one resource is required")
	}
	for _, r := range opts.Resources {
		if err := checkResourceURI(r); err != nil {
			return nil, fmt.Errorf("devidp: resource %q: %w", r, err)
		}
	}
	var scopes []string
	for _, s := range opts.Scopes {
		if s == "" || strings.ContainsAny(s, " \"\\") {
			return nil, fmt.Errorf("devidp: invalid scope %q", s)
		}
		if !slices.Contains(oidcScopes, s) && !slices.Contains(scopes, s) {
			scopes = append(scopes, s) // OIDC scopes are always offered anyway
		}
	}
	opts.Scopes = scopes
	seen := make(map[string]bool)
	for i, u := range opts.Users {
		if u.ID == "" {
			return nil, fmt.Errorf("devidp: user %d has no id", i)
		}
		if seen[u.ID] {
			return nil, fmt.Errorf("devidp: duplicate user %q", u.ID)
		}
		seen[u.ID] = true
		opts.Users[i].Groups = slices.Clone(u.Groups)
	}
	if opts.AccessTTL <= 0 {
		opts.AccessTTL = DefaultAccessTTL
	}
	if opts.RefreshTTL <= 0 {
		opts.RefreshTTL = DefaultRefreshTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{
			Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}

	p := &Provider{
		opts:       opts,
		now:        opts.Now,
		log:        opts.Logger,
		httpClient: opts.HTTPClient,
		issuer:     opts.Issuer,
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	p.store = newStorage(p, key)

	var cryptoKey [32]byte
	_, _ = rand.Read(cryptoKey[:]) // crypto/rand.Read never fails
	_, _ = rand.Read(p.csrfKey[:])
	config := &op.Config{
		CryptoKey:             cryptoKey,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedScopes:       p.scopesSupported(),
		SupportedClaims:       claimsSupported,
	}
	// The issuer is read per request so that Start can set it after New.
	issuerFunc := func(bool) (op.IssuerFromRequest, error) {
		return func(*http.Request) string { return p.Issuer() }, nil
	}
	p.op, err = op.NewProvider(config, p.store, issuerFunc, op.WithAllowInsecure())
	if err != nil {
		return nil, fmt.Errorf("devidp: openid provider: %w", err)
	}
	p.handler = p.routes()
	return p, nil
}

// Start listens on addr, which must be a loopback address ("127.0.0.1:0",
// "[::1]:9400", "localhost:9400"), and serves in the background until
// [Provider.Close]. If [Options.Issuer] was empty, the issuer becomes
// "http://" + the bound address.
func (p *Provider) Start(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("devidp: listen address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("devidp: listen address %q: %w", addr, ErrNotLoopback)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.srv != nil {
		return errors.New("devidp: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("devidp: listen: %w", err)
	}
	bound, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !bound.IP.IsLoopback() {
		ln.Close()
		return fmt.Errorf("devidp: bound to %s: %w", ln.Addr(), ErrNotLoopback)
	}
	if p.issuer == "" {
		p.issuer = "http://" + ln.Addr().String()
	}
	p.srv = &http.Server{
		Handler:           p.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	p.done = make(chan struct{})
	go func(srv *http.Server, done chan struct{}) {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.log.Error("devidp: serve", "err", err)
		}
	}(p.srv, p.done)
	p.log.Info("devidp: listening", "issuer", p.issuer, "addr", ln.Addr().String())
	return nil
}

// Handler returns the provider's HTTP handler, for use with httptest or a
// server of your own. Requests are answered 503 until the issuer is known and
// 403 when their Host is not a loopback name.
func (p *Provider) Handler() http.Handler { return p.handler }

// Issuer returns the issuer URL, or "" before it is known.
func (p *Provider) Issuer() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.issuer
}

// Close stops the server started by [Provider.Start], if any, closing open
// connections. The provider's handler keeps working.
func (p *Provider) Close() error {
	p.mu.Lock()
	srv, done := p.srv, p.done
	p.mu.Unlock()
	if srv == nil {
		return nil
	}
	err := srv.Close()
	<-done
	return err
}

// scopesSupported lists every scope a client may ask for.
func (p *Provider) scopesSupported() []string {
	return append(slices.Clone(oidcScopes), p.opts.Scopes...)
}

// knownScope reports whether s is an OIDC scope or a configured resource scope.
func (p *Provider) knownScope(s string) bool {
	return slices.Contains(oidcScopes, s) || slices.Contains(p.opts.Scopes, s)
}

// user returns the configured user with that id.
func (p *Provider) user(id string) (User, bool) {
	for _, u := range p.opts.Users {
		if u.ID == id {
			return u, true
		}
	}
	return User{}, false
}

// errOneResource refuses a request naming several resources.
var errOneResource = fmt.Errorf("%w: only one resource per request is supported", ErrUnknownResource)

// resolveResource returns the resource the request names — at most one,
// RFC 8707 §2 — or the default one, and refuses anything not configured.
func (p *Provider) resolveResource(requested []string) (string, error) {
	requested = slices.Compact(slices.DeleteFunc(slices.Clone(requested), func(s string) bool { return s == "" }))
	switch len(requested) {
	case 0:
		return p.opts.Resources[0], nil
	case 1:
		if slices.Contains(p.opts.Resources, requested[0]) {
			return requested[0], nil
		}
		return "", fmt.Errorf("%w: %q", ErrUnknownResource, requested[0])
	default:
		return "", errOneResource
	}
}

// checkIssuer accepts http(s)://loopback-host[:port] with no path, query or
// fragment.
func checkIssuer(issuer string) error {
	u, err := url.Parse(issuer)
	if err != nil {
		return fmt.Errorf("devidp: issuer %q: %w", issuer, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("devidp: issuer %q: scheme must be http or https", issuer)
	}
	if u.User != nil || u.Opaque != "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("devidp: issuer %q: must be scheme://host[:port] with no path", issuer)
	}
	if !isLoopbackHost(u.Hostname()) {
		return fmt.Errorf("devidp: issuer %q: %w", issuer, ErrNotLoopback)
	}
	return nil
}

// checkResourceURI accepts an absolute URI without a fragment, RFC 8707 §2.
func checkResourceURI(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if !u.IsAbs() || u.Fragment != "" {
		return errors.New("must be an absolute URI without a fragment")
	}
	return nil
}

// isLoopbackHost reports whether host (no port; brackets allowed) is
// localhost or a loopback IP address.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
