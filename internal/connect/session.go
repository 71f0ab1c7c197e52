package connect

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/store"
)

// keys are derived from web.session_key, one per purpose, so a value made
// for one purpose is never accepted for another.
type keys struct {
	aead cipher.AEAD // cookies
	csrf []byte      // CSRF tokens
}

func deriveKeys(master []byte) (keys, error) {
	sealKey, err := hkdf.Key(sha256.New, master, nil, "butler /connect cookie seal v1", 32)
	if err != nil {
		return keys{}, fmt.Errorf("connect: derive keys: %w", err)
	}
	csrfKey, err := hkdf.Key(sha256.New, master, nil, "butler /connect csrf v1", 32)
	if err != nil {
		return keys{}, fmt.Errorf("connect: derive keys: %w", err)
	}
	block, err := aes.NewCipher(sealKey)
	if err != nil {
		return keys{}, fmt.Errorf("connect: derive keys: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return keys{}, fmt.Errorf("connect: derive keys: %w", err)
	}
	return keys{aead: aead, csrf: csrfKey}, nil
}

// seal encrypts plain for the cookie name (the name is authenticated too,
// so a login cookie cannot be replayed as a session cookie).
func (k keys) seal(name string, plain []byte) string {
	nonce := make([]byte, k.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return base64.RawURLEncoding.EncodeToString(k.aead.Seal(nonce, nonce, plain, []byte(name)))
}

// open reverses seal; any change to the value, or another key, fails.
func (k keys) open(name, value string) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < k.aead.NonceSize() {
		return nil, errors.New("malformed cookie")
	}
	n := k.aead.NonceSize()
	plain, err := k.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return nil, errors.New("cookie not sealed with this session key")
	}
	return plain, nil
}

// csrfToken is the CSRF token of the session id: an HMAC, so it needs no
// storage and no other session's token matches.
func (k keys) csrfToken(sessionID string) string {
	m := hmac.New(sha256.New, k.csrf)
	m.Write([]byte(sessionID))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// cookieNames are the page's cookies: the session, and the login in
// progress.
type cookieNames struct {
	session, login string
	secure         bool
}

// cookieNamesFor picks the cookie names and the Secure flag (CONTRACT
// §12): __Host- names with Secure when public_url is https or on a
// loopback host (browsers treat http://127.0.0.1 as a secure context),
// else plain names without Secure, which a browser would not send back.
func cookieNamesFor(publicURL string) cookieNames {
	u, err := url.Parse(publicURL)
	secure := err == nil && (strings.EqualFold(u.Scheme, "https") || isLoopback(u.Hostname()))
	if secure {
		return cookieNames{session: "__Host-butler_session", login: "__Host-butler_login", secure: true}
	}
	return cookieNames{session: "butler_session", login: "butler_login"}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// cookie is one of the page's cookies with the flags of CONTRACT §12:
// HttpOnly, SameSite=Lax (the IdP's redirect back is a top-level
// cross-site GET, which Lax lets carry the login cookie), Path=/, no
// Domain. maxAge < 0 deletes it.
func (c cookieNames) cookie(name, value string, maxAge time.Duration) *http.Cookie {
	ck := &http.Cookie{
		Name: name, Value: value, Path: "/", HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteLaxMode,
	}
	if maxAge < 0 {
		ck.MaxAge = -1
	} else {
		ck.MaxAge = int(maxAge / time.Second)
	}
	return ck
}

// loginState is the login in progress, sealed in the login cookie.
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // Unix seconds
}

// sessionData is what the store holds of a web session besides the user.
type sessionData struct {
	Created int64 `json:"created"` // Unix milliseconds
}

// webSession is a signed-in browser.
type webSession struct {
	id      string // the secret id from the cookie (never stored as is)
	user    string
	expires time.Time
}

// storeKey is the store's key of a session id: its SHA-256, so that the
// database alone does not give away a usable session.
func storeKey(id string) string {
	sum := sha256.Sum256([]byte(id))
	return "s1." + base64.RawURLEncoding.EncodeToString(sum[:])
}

// randomToken is 32 random bytes, base64url.
func randomToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// errNoSession: the request has no valid session (none, tampered, expired,
// signed out).
var errNoSession = errors.New("no session")

// session returns the request's web session.
func (h *Handler) session(r *http.Request) (webSession, error) {
	c, err := r.Cookie(h.cookies.session)
	if err != nil {
		return webSession{}, errNoSession
	}
	plain, err := h.keys.open(h.cookies.session, c.Value)
	if err != nil {
		return webSession{}, errNoSession
	}
	id := string(plain)
	s, err := h.o.Store.GetSession(r.Context(), storeKey(id))
	switch {
	case errors.Is(err, store.ErrNotFound):
		return webSession{}, errNoSession
	case err != nil:
		return webSession{}, err
	}
	// The store drops expired sessions by its own clock; this check holds
	// by the page's, and the user must be a signed-in one.
	if !h.o.Now().Before(s.ExpiresAt) || s.User == "" {
		return webSession{}, errNoSession
	}
	return webSession{id: id, user: s.User, expires: s.ExpiresAt}, nil
}

// newSession stores a session for user and sets its cookie.
func (h *Handler) newSession(w http.ResponseWriter, r *http.Request, user string) error {
	id := randomToken()
	now := h.o.Now()
	data, _ := json.Marshal(sessionData{Created: now.UnixMilli()})
	if err := h.o.Store.PutSession(r.Context(), store.Session{
		ID: storeKey(id), User: user, Data: data, ExpiresAt: now.Add(SessionTTL),
	}); err != nil {
		return err
	}
	http.SetCookie(w, h.cookies.cookie(h.cookies.session, h.keys.seal(h.cookies.session, []byte(id)), SessionTTL))
	// Best effort: sign-ins sweep away the sessions that expired.
	if _, err := h.o.Store.DeleteExpiredSessions(r.Context(), now); err != nil {
		h.o.Logger.WarnContext(r.Context(), "connect: deleting expired web sessions failed", "err", err)
	}
	return nil
}

// SessionCookieName is the name of the session cookie for publicURL:
// __Host-butler_session when it is https or loopback, else butler_session.
func SessionCookieName(publicURL string) string { return cookieNamesFor(publicURL).session }
