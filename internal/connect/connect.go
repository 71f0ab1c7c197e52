// Package connect is the /connect page: a person signs in with OpenID
// Connect at Butler's own identity provider and links, re-links or unlinks
// their own Jenkins API token, so that no administrator handles it
// (CONTRACT §12, docs/connect.md).
//
// Sign-in is the authorization code flow with PKCE S256, state and nonce
// (golang.org/x/oauth2 and github.com/coreos/go-oidc/v3). The ID token is
// verified (signature by the issuer's keys, iss, aud = the page's client id,
// exp, and the nonce this browser was given) and the user is its
// auth.user_claim, or userinfo's when the ID token lacks it: the same user
// id a bearer token of that person maps to.
//
// Nothing is stored for a visitor who has not signed in: the login in
// progress (state, nonce, PKCE verifier) travels in a short-lived sealed
// cookie. A finished sign-in creates a web session in the store (so every
// replica serves it), named by a random id that reaches the browser only
// sealed (AES-256-GCM with a key derived from web.session_key) and that the
// store holds only as a SHA-256 hash. Every POST carries a CSRF token tied
// to the session and must come from public_url's Origin.
package connect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// SessionTTL is how long a web session lasts at most (CONTRACT §12: 8 h).
const SessionTTL = 8 * time.Hour

// loginTTL is how long a sign-in may take at the identity provider.
const loginTTL = 10 * time.Minute

// AuditRecords is how many of the user's own audit records the page shows.
const AuditRecords = 20

// Paths of the page.
const (
	Path         = "/connect"
	CallbackPath = "/connect/callback"
)

// Store is what the page needs of Butler's store: web sessions, the user's
// credential row (status only; never decrypted here) and audit records.
type Store interface {
	PutSession(ctx context.Context, s store.Session) error
	GetSession(ctx context.Context, id string) (store.Session, error)
	DeleteSession(ctx context.Context, id string) error
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int, error)
	GetCredential(ctx context.Context, user string) (store.Credential, error)
	QueryAudit(ctx context.Context, q store.AuditQuery) ([]audit.Record, error)
}

// Linker links and unlinks a user's Jenkins token (credentials.Linker:
// the same verification as `butler link`).
type Linker interface {
	JenkinsUserFor(user string) (string, error)
	Link(ctx context.Context, user string, token secret.String) (*jenkins.User, error)
	Unlink(ctx context.Context, user string) error
}

// Options configure the page. Issuer, ClientID, PublicURL, SessionKey,
// Store and Linker are required.
type Options struct {
	// PublicURL is server.public_url; the redirect URI is PublicURL +
	// CallbackPath.
	PublicURL string
	// Issuer is auth.issuer (OIDC discovery at Issuer +
	// /.well-known/openid-configuration).
	Issuer string
	// ClientID and ClientSecret are web.client_id and web.client_secret
	// (empty secret: a public client, PKCE only).
	ClientID     string
	ClientSecret string
	// SessionKey is web.session_key, at least 32 bytes.
	SessionKey []byte
	// UserClaim is auth.user_claim (a dotted path, as for bearer tokens).
	UserClaim string
	// Algorithms are the accepted ID token signing algorithms
	// (auth.algorithms); empty: the issuer's advertised ones.
	Algorithms []string
	// JenkinsURL is jenkins.url, for the link to where Jenkins makes API
	// tokens.
	JenkinsURL string
	// AllowOrigin reports whether a POST's Origin is public_url's.
	AllowOrigin func(origin string) bool
	// HTTPClient carries requests to the identity provider.
	HTTPClient *http.Client
	Store      Store
	Linker     Linker
	Logger     *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Handler serves /connect and /connect/callback.
type Handler struct {
	o       Options
	keys    keys
	cookies cookieNames
	oauth   oauth2.Config

	mu       sync.Mutex
	provider *oidc.Provider // discovered on first use
	// failed and failErr are the last failed discovery: for
	// discoveryRetry, visitors get that answer again instead of each
	// sending the IdP a request.
	failed  time.Time
	failErr error
}

// discoveryRetry is how long a failed OIDC discovery is not retried: a
// crowd of visitors while the IdP is down costs it one request per
// interval, not one each.
const discoveryRetry = 5 * time.Second

// New returns the page's handler. The identity provider is discovered on
// first use, so a Butler started while it is down serves /connect as soon
// as it is back.
func New(o Options) (*Handler, error) {
	switch {
	case o.Issuer == "" || o.ClientID == "" || o.PublicURL == "":
		return nil, errors.New("connect: issuer, client id and public URL are required")
	case len(o.SessionKey) < 32:
		return nil, errors.New("connect: the session key must be at least 32 bytes")
	case o.Store == nil || o.Linker == nil:
		return nil, errors.New("connect: a store and a linker are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.UserClaim == "" {
		o.UserClaim = "sub"
	}
	if o.AllowOrigin == nil {
		own := originOf(o.PublicURL)
		o.AllowOrigin = func(origin string) bool { return own != "" && originOf(origin) == own }
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	k, err := deriveKeys(o.SessionKey)
	if err != nil {
		return nil, err
	}
	h := &Handler{o: o, keys: k, cookies: cookieNamesFor(o.PublicURL)}
	h.oauth = oauth2.Config{
		ClientID:     o.ClientID,
		ClientSecret: o.ClientSecret,
		RedirectURL:  o.PublicURL + CallbackPath,
		Scopes:       []string{oidc.ScopeOpenID},
	}
	return h, nil
}

// ServeHTTP routes the page's requests.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w.Header())
	switch {
	case r.URL.Path == Path && (r.Method == http.MethodGet || r.Method == http.MethodHead):
		h.show(w, r)
	case r.URL.Path == Path && r.Method == http.MethodPost:
		h.post(w, r)
	case r.URL.Path == CallbackPath && r.Method == http.MethodGet:
		h.callback(w, r)
	case r.URL.Path == Path || r.URL.Path == CallbackPath:
		w.Header().Set("Allow", "GET, POST")
		h.message(w, http.StatusMethodNotAllowed, "Method not allowed", "This page answers GET and POST only.")
	default:
		h.message(w, http.StatusNotFound, "Not found", "There is no such page.")
	}
}

// securityHeaders are on every answer of the page (CONTRACT §12): no
// framing, no script, styles only the page's own (by hash), forms only to
// this origin, and a referrer policy under which the page's own POSTs carry
// their real Origin.
func securityHeaders(hd http.Header) {
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src '"+styleHash+"'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Cache-Control", "no-store")
}

// providerFor returns the discovered identity provider, discovering it
// on first use.
func (h *Handler) providerFor(ctx context.Context) (*oidc.Provider, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.provider != nil {
		return h.provider, nil
	}
	if h.failErr != nil && h.o.Now().Sub(h.failed) < discoveryRetry {
		return nil, h.failErr
	}
	// The key set fetches later with the client given here, not with ctx's
	// deadline: the discovered provider outlives this request.
	p, err := oidc.NewProvider(oidc.ClientContext(context.WithoutCancel(ctx), h.o.HTTPClient), h.o.Issuer)
	if err != nil {
		h.failed, h.failErr = h.o.Now(), fmt.Errorf("connect: OIDC discovery at %s: %w", h.o.Issuer, err)
		return nil, h.failErr
	}
	h.failErr = nil
	h.provider = p
	return p, nil
}

// originOf is the canonical origin (scheme://host[:port], lower case,
// default port dropped) of a URL, or "" when it has none. "null" has none.
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil {
		return ""
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}
