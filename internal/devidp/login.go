package devidp

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// browserCookie identifies a browser for the login form's CSRF check.
const browserCookie = "devidp_browser"

// loginPage lists the demo users; each button signs in as one. No JavaScript.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in — Butler development identity provider</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
.warn { background: #fff3cd; border: 1px solid #e0c060; padding: .5rem .75rem; border-radius: 4px; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
th, td { text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; }
code { background: #f3f3f3; padding: 0 .2rem; }
button { padding: .3rem .8rem; cursor: pointer; }
</style>
</head>
<body>
<h1>Sign in</h1>
<p class="warn">Development identity provider for <code>butler demo</code>: no passwords, loopback only. Never use it in production.</p>
<p><strong>{{.ClientName}}</strong> (client <code>{{.ClientID}}</code>) asks for
{{if .Scopes}}the scopes {{range $i, $s := .Scopes}}{{if $i}}, {{end}}<code>{{$s}}</code>{{end}}{{else}}no scope{{end}}
on <code>{{.Resource}}</code>.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<table>
<thead><tr><th>User</th><th>Name</th><th>Groups</th><th></th></tr></thead>
<tbody>
{{range .Users}}<tr>
<td><code>{{.ID}}</code></td>
<td>{{.Name}}</td>
<td>{{range $i, $g := .Groups}}{{if $i}}, {{end}}{{$g}}{{end}}</td>
<td><button type="submit" name="user" value="{{.ID}}">Sign in as {{.ID}}</button></td>
</tr>
{{else}}<tr><td colspan="4">No demo users are configured.</td></tr>
{{end}}</tbody>
</table>
<button type="submit" name="cancel" value="1">Cancel</button>
</form>
</body>
</html>
`))

type loginData struct {
	Action, ID, CSRF               string
	ClientID, ClientName, Resource string
	Scopes                         []string
	Users                          []User
}

// serveLogin shows the user list (GET) and records the choice (POST), then
// hands the browser back to the library's callback, which issues the code.
func (p *Provider) serveLogin(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		p.showLogin(w, r)
	case http.MethodPost:
		p.submitLogin(w, r)
	default:
		h.Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (p *Provider) showLogin(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	ar, err := p.store.pendingLogin(id)
	if err != nil {
		http.Error(w, "This sign-in request is unknown, finished or expired. Start again from your application.", http.StatusBadRequest)
		return
	}
	browser := ""
	if c, err := r.Cookie(browserCookie); err == nil && c.Value != "" {
		browser = c.Value
	} else {
		browser = randomID(32)
		http.SetCookie(w, &http.Cookie{
			Name:     browserCookie,
			Value:    browser,
			Path:     loginPath,
			HttpOnly: true,
			Secure:   strings.HasPrefix(p.Issuer(), "https://"),
			SameSite: http.SameSiteStrictMode,
		})
	}
	name := ar.clientID
	if c, err := p.store.client(r.Context(), ar.clientID); err == nil && c.name != "" {
		name = c.name
	}
	data := loginData{
		Action:     loginPath,
		ID:         id,
		CSRF:       p.csrfToken(browser, id),
		ClientID:   ar.clientID,
		ClientName: name,
		Resource:   ar.resource,
		Scopes:     ar.scopes,
		Users:      p.opts.Users,
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := loginPage.Execute(w, data); err != nil {
		p.log.ErrorContext(r.Context(), "devidp: login page", "err", err)
	}
}

func (p *Provider) submitLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	id := r.PostForm.Get("id")
	c, err := r.Cookie(browserCookie)
	if err != nil || !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(p.csrfToken(c.Value, id))) {
		http.Error(w, "The sign-in form expired or came from another page. Start again from your application.", http.StatusForbidden)
		return
	}
	if r.PostForm.Get("cancel") != "" {
		ar, err := p.store.takePendingLogin(id)
		if err != nil {
			http.Error(w, "This sign-in request is unknown or finished.", http.StatusBadRequest)
			return
		}
		e := oidc.ErrAccessDenied().WithDescription("the user cancelled the sign-in")
		e.State = ar.state
		to, err := op.AuthResponseURL(ar.redirectURI, ar.responseType, ar.responseMode, e, p.op.Encoder())
		if err != nil {
			http.Error(w, "cannot build the redirect", http.StatusInternalServerError)
			return
		}
		http.Redirect(w, r, to, http.StatusSeeOther)
		return
	}
	userID := r.PostForm.Get("user")
	if _, ok := p.user(userID); !ok {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	if err := p.store.completeLogin(id, userID); err != nil {
		http.Error(w, "This sign-in request is unknown, finished or expired. Start again from your application.", http.StatusBadRequest)
		return
	}
	p.log.InfoContext(r.Context(), "devidp: user signed in", "user", userID)
	http.Redirect(w, r, callbackPath+"?id="+url.QueryEscape(id), http.StatusSeeOther)
}

// csrfToken binds the form to the browser's cookie and the request id.
func (p *Provider) csrfToken(browser, id string) string {
	m := hmac.New(sha256.New, p.csrfKey[:])
	m.Write([]byte(browser))
	m.Write([]byte{0})
	m.Write([]byte(id))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
