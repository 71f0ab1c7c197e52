package connect

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/butler-mcp/butler/internal/authn"
)

// startLogin sends the browser to the identity provider with a fresh
// state, nonce and PKCE S256 challenge, which it remembers in the sealed
// login cookie (nothing is stored for a visitor who is not signed in).
func (h *Handler) startLogin(w http.ResponseWriter, r *http.Request) {
	p, err := h.providerFor(r.Context())
	if err != nil {
		h.o.Logger.WarnContext(r.Context(), "connect: the identity provider is unavailable", "err", err)
		h.message(w, http.StatusServiceUnavailable, "Sign-in is unavailable",
			"Butler cannot reach its identity provider right now. Try again in a minute.")
		return
	}
	ls := loginState{
		State:    randomToken(),
		Nonce:    randomToken(),
		Verifier: oauth2.GenerateVerifier(),
		Expires:  h.o.Now().Add(loginTTL).Unix(),
	}
	plain, _ := json.Marshal(ls)
	http.SetCookie(w, h.cookies.cookie(h.cookies.login, h.keys.seal(h.cookies.login, plain), loginTTL))
	cfg := h.oauth
	cfg.Endpoint = p.Endpoint()
	to := cfg.AuthCodeURL(ls.State, oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier))
	http.Redirect(w, r, to, http.StatusFound)
}

// callback finishes the sign-in: the state must be this browser's, the
// code is exchanged with the PKCE verifier, and the ID token must be
// valid, for this client, and carry this browser's nonce.
func (h *Handler) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	fail := func(status int, why string) {
		h.o.Logger.InfoContext(ctx, "connect: sign-in refused", "reason", why)
		h.message(w, status, "Sign-in failed", why+" Open "+h.o.PublicURL+Path+" to sign in again.")
	}
	// The login cookie is for one sign-in: gone whatever happens next.
	http.SetCookie(w, h.cookies.cookie(h.cookies.login, "", -1))
	ls, err := h.loginState(r)
	if err != nil {
		fail(http.StatusBadRequest, "This sign-in was not started in this browser, or took too long.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(ls.State)) != 1 {
		fail(http.StatusBadRequest, "The sign-in answer does not belong to the sign-in this browser started (state mismatch).")
		return
	}
	if e := q.Get("error"); e != "" {
		// RFC 6749 §4.1.2.1; the description is the IdP's, shown as text.
		fail(http.StatusForbidden, "The identity provider refused the sign-in ("+truncate(e, 64)+").")
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(http.StatusBadRequest, "The sign-in answer has no authorization code.")
		return
	}
	p, err := h.providerFor(ctx)
	if err != nil {
		h.o.Logger.WarnContext(ctx, "connect: the identity provider is unavailable", "err", err)
		fail(http.StatusServiceUnavailable, "Butler cannot reach its identity provider right now.")
		return
	}
	cfg := h.oauth
	cfg.Endpoint = p.Endpoint()
	octx := oidc.ClientContext(ctx, h.o.HTTPClient)
	tok, err := cfg.Exchange(octx, code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		h.o.Logger.InfoContext(ctx, "connect: code exchange failed", "err", err)
		fail(http.StatusBadGateway, "The identity provider did not accept the sign-in code.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusBadGateway, "The identity provider sent no ID token.")
		return
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: h.o.ClientID, SupportedSigningAlgs: h.o.Algorithms, Now: h.o.Now}).Verify(octx, raw)
	if err != nil {
		h.o.Logger.InfoContext(ctx, "connect: ID token refused", "err", err)
		fail(http.StatusUnauthorized, "The identity provider's ID token is not valid for this page.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		fail(http.StatusUnauthorized, "The ID token was not issued for this sign-in (nonce mismatch).")
		return
	}
	user, err := h.userOf(r, p, idt, tok)
	if err != nil {
		h.o.Logger.InfoContext(ctx, "connect: no user in the ID token", "err", err)
		fail(http.StatusUnauthorized, "The identity provider did not say who you are ("+h.o.UserClaim+").")
		return
	}
	// A fresh session id at every sign-in (no session fixation); a session
	// this browser had is ended.
	if old, err := h.session(r); err == nil {
		_ = h.o.Store.DeleteSession(ctx, storeKey(old.id))
	}
	if err := h.newSession(w, r, user); err != nil {
		h.storeFailed(w, r, err)
		return
	}
	h.o.Logger.InfoContext(ctx, "connect: signed in", "user", user)
	http.Redirect(w, r, h.o.PublicURL+Path, http.StatusSeeOther)
}

// loginState opens the login cookie and checks that it has not expired.
func (h *Handler) loginState(r *http.Request) (loginState, error) {
	c, err := r.Cookie(h.cookies.login)
	if err != nil {
		return loginState{}, err
	}
	plain, err := h.keys.open(h.cookies.login, c.Value)
	if err != nil {
		return loginState{}, err
	}
	var ls loginState
	if err := json.Unmarshal(plain, &ls); err != nil {
		return loginState{}, err
	}
	if !h.o.Now().Before(time.Unix(ls.Expires, 0)) || ls.State == "" || ls.Nonce == "" || ls.Verifier == "" {
		return loginState{}, errors.New("login expired")
	}
	return ls, nil
}

// userOf takes the user from auth.user_claim of the ID token, or of
// userinfo when the ID token does not carry it (Entra ID and Okta put
// fewer claims in ID tokens), exactly as a bearer token's user is read.
func (h *Handler) userOf(r *http.Request, p *oidc.Provider, idt *oidc.IDToken, tok *oauth2.Token) (string, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return "", err
	}
	v, ok := authn.LookupClaim(claims, h.o.UserClaim)
	if !ok && p.UserInfoEndpoint() != "" {
		ui, err := p.UserInfo(oidc.ClientContext(r.Context(), h.o.HTTPClient), oauth2.StaticTokenSource(tok))
		if err != nil {
			return "", err
		}
		// OIDC Core §5.3.2: userinfo's sub must be the ID token's.
		if ui.Subject != idt.Subject {
			return "", errors.New("userinfo is about another subject")
		}
		claims = map[string]any{}
		if err := ui.Claims(&claims); err != nil {
			return "", err
		}
		v, ok = authn.LookupClaim(claims, h.o.UserClaim)
	}
	user, _ := v.(string)
	if !ok || user == "" {
		return "", errors.New("the user claim is missing or not a non-empty string")
	}
	return user, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
