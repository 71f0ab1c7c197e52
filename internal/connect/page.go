package connect

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/store"
)

// maxForm bounds a POST body: a Jenkins API token is 34 characters.
const maxForm = 16 << 10

// style is the page's only CSS, allowed by its hash in the CSP (no
// 'unsafe-inline'). Readable on a 390 px phone: one column, wrapping
// tables, large touch targets.
const style = `body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:48rem;margin:0 auto;padding:1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.4rem;margin:.2rem 0 1rem}h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem .8rem;margin:0}dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.ok{color:#0a6b2d}.bad{color:#a11}.note{background:#eef6ee;border:1px solid #9c9;padding:.5rem .75rem;border-radius:4px}
.err{background:#fdeeee;border:1px solid #d99;padding:.5rem .75rem;border-radius:4px}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}input[type=password]{width:100%;box-sizing:border-box;font-size:1rem;padding:.55rem}
button{font-size:1rem;padding:.55rem 1rem;margin:.5rem .5rem 0 0;cursor:pointer}button:focus,a:focus,input:focus{outline:3px solid #2a6fdb;outline-offset:2px}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.4rem .4rem;border-bottom:1px solid #ddd;vertical-align:top}
td{overflow-wrap:break-word}.tool{font-weight:600}.meta{font-size:.85rem;color:#555}.code{font-size:.85rem;overflow-wrap:anywhere}
form.inline{display:inline}footer{margin-top:2rem;font-size:.85rem;color:#555}`

// styleHash is the CSP source of style.
var styleHash = func() string {
	sum := sha256.Sum256([]byte(style))
	return "sha256-" + base64.StdEncoding.EncodeToString(sum[:])
}()

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} — Butler</title>
<style>{{.Style}}</style>
</head>
<body>
<main>
{{if .User}}
<h1>Your Jenkins account in Butler</h1>
{{if .Notice}}<p class="note" role="status">{{.Notice}}</p>{{end}}
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
<dl>
<dt>Signed in as</dt><dd>{{.User}}</dd>
<dt>Jenkins account</dt><dd>{{if .JenkinsUser}}{{.JenkinsUser}}{{else}}<span class="bad">none: {{.JenkinsError}}</span>{{end}}</dd>
<dt>Token</dt><dd>{{if .Rejected}}<span class="bad">rejected by Jenkins on {{.Rejected}}</span>: link a new one{{else if .Linked}}<span class="ok">linked</span>{{else}}<span class="bad">not linked</span>{{end}}</dd>
{{if .LinkedAt}}<dt>Linked</dt><dd>{{.LinkedAt}}</dd>{{end}}
{{if .LinkedAt}}<dt>Last used</dt><dd>{{if .LastUsed}}{{.LastUsed}}{{else}}not yet{{end}}</dd>{{end}}
</dl>
{{if .JenkinsUser}}
<h2>{{if .LinkedAt}}Replace your API token{{else}}Link your Jenkins API token{{end}}</h2>
<p>Make a token in Jenkins at <a href="{{.TokenURL}}" target="_blank" rel="noopener noreferrer">{{.TokenURL}}</a>
(“Add new token”), then paste it here. Butler checks it with Jenkins and stores it encrypted; agents then act in Jenkins as you.</p>
<form method="post" action="{{.Action}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<input type="hidden" name="action" value="link">
<label for="token">Jenkins API token</label>
<input type="password" id="token" name="token" autocomplete="off" autocapitalize="off" spellcheck="false" required>
<button type="submit">{{if .LinkedAt}}Re-link{{else}}Link{{end}}</button>
</form>
{{end}}
<form method="post" action="{{.Action}}" class="inline">
<input type="hidden" name="csrf" value="{{.CSRF}}">
{{if .LinkedAt}}<button type="submit" name="action" value="unlink">Unlink</button>{{end}}
<button type="submit" name="action" value="logout">Sign out</button>
</form>
<h2>What agents did as you</h2>
{{if .Records}}<table>
<thead><tr><th>Call (newest first)</th><th>Decision</th></tr></thead>
<tbody>{{range .Records}}<tr><td><span class="tool">{{.Tool}}</span>{{if .Resource}} <span class="job">{{.Resource}}</span>{{end}}<br><span class="meta">{{.Time}}{{if .Client}} · client {{.Client}}{{end}}</span></td><td><span class="dec">{{.Decision}}</span>{{if .Code}}<br><span class="code">{{.Code}}</span>{{end}}</td></tr>
{{end}}</tbody></table>
<p class="meta">Your last {{len .Records}} (at most 20) tool calls, as the audit log has them.</p>
{{else}}<p>No calls yet.</p>{{end}}
{{else}}
<h1>{{.Title}}</h1>
<p>{{.Text}}</p>
{{if .Again}}<p><a href="{{.Action}}">Sign in again</a></p>{{end}}
{{end}}
</main>
<footer>Butler · <a href="{{.Action}}">{{.Action}}</a></footer>
</body>
</html>
`))

type pageData struct {
	Title, Text  string
	Again        bool
	Style        template.CSS
	Action       string
	User         string
	JenkinsUser  string
	JenkinsError string
	TokenURL     string
	Linked       bool
	LinkedAt     string
	LastUsed     string
	Rejected     string
	Notice       string
	Error        string
	CSRF         string
	Records      []recordView
}

type recordView struct {
	Time, Tool, Resource, Decision, Code, Client string
}

// notices are the fixed messages a redirect after a POST may name (never
// anything the user typed).
var notices = map[string]string{
	"linked":   "Your Jenkins token is linked. Agents' next calls act as you in Jenkins.",
	"unlinked": "Your Jenkins token is unlinked and deleted. Agents' next calls are refused until you link one again.",
	"none":     "No token was linked.",
}

func (h *Handler) render(w http.ResponseWriter, status int, d pageData) {
	d.Style = template.CSS(style)
	d.Action = h.o.PublicURL + Path
	var b bytes.Buffer
	if err := pageTmpl.Execute(&b, d); err != nil {
		h.o.Logger.Error("connect: rendering the page failed", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// message renders a page of one message.
func (h *Handler) message(w http.ResponseWriter, status int, title, text string) {
	h.render(w, status, pageData{Title: title, Text: text, Again: status != http.StatusMethodNotAllowed})
}

func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, err error) {
	h.o.Logger.ErrorContext(r.Context(), "connect: store failed", "err", err)
	h.message(w, http.StatusServiceUnavailable, "Try again", "Butler's database did not answer. Nothing was changed; try again in a few seconds.")
}

// show serves GET /connect: the page of the signed-in user, else the
// sign-in.
func (h *Handler) show(w http.ResponseWriter, r *http.Request) {
	s, err := h.session(r)
	if errors.Is(err, errNoSession) {
		h.startLogin(w, r)
		return
	}
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	d := pageData{Notice: notices[r.URL.Query().Get("done")]}
	h.page(w, r, s, http.StatusOK, d)
}

// page fills in the signed-in user's page and renders it.
func (h *Handler) page(w http.ResponseWriter, r *http.Request, s webSession, status int, d pageData) {
	ctx := r.Context()
	d.Title = "Your Jenkins account"
	d.User = s.user
	d.CSRF = h.keys.csrfToken(s.id)
	ju, err := h.o.Linker.JenkinsUserFor(s.user)
	if err != nil {
		d.JenkinsError = err.Error()
	} else {
		d.JenkinsUser = ju
		d.TokenURL = strings.TrimRight(h.o.JenkinsURL, "/") + "/user/" + url.PathEscape(ju) + "/security/"
	}
	cred, err := h.o.Store.GetCredential(ctx, s.user)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		h.storeFailed(w, r, err)
		return
	case d.JenkinsUser != "" && !credentials.SameJenkinsUser(cred.JenkinsUser, d.JenkinsUser):
		// Linked for another account (jenkins.user_template changed):
		// unusable, as for tool calls.
		d.Error = "Your stored token is for Jenkins account " + cred.JenkinsUser + ", not " + d.JenkinsUser + ": link a new one."
	default:
		d.Linked = cred.RejectedAt.IsZero()
		d.LinkedAt = stamp(cred.UpdatedAt)
		if !cred.RejectedAt.IsZero() {
			d.Rejected = stamp(cred.RejectedAt)
		}
		// Last used: the newest call Butler allowed as the user since the
		// token was linked (audit), so the page needs no write per call.
		last, err := h.o.Store.QueryAudit(ctx, store.AuditQuery{User: s.user, Decision: audit.Allow, Since: cred.UpdatedAt, Limit: 1})
		if err != nil {
			h.storeFailed(w, r, err)
			return
		}
		if len(last) == 1 {
			d.LastUsed = stamp(last[0].Time)
		}
	}
	recs, err := h.o.Store.QueryAudit(ctx, store.AuditQuery{User: s.user, Limit: AuditRecords})
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	for _, rec := range recs {
		d.Records = append(d.Records, recordView{
			Time: stamp(rec.Time), Tool: rec.Tool, Resource: rec.Resource, Decision: rec.Decision, Code: rec.Code, Client: rec.ClientID,
		})
	}
	h.render(w, status, d)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") + " UTC" }

// post serves POST /connect: link, unlink or sign out, each with the
// session's CSRF token and public_url's Origin.
func (h *Handler) post(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	// Origin first: present, not "null", public_url's (CONTRACT §12).
	if origin, ok := r.Header["Origin"]; !ok || len(origin) != 1 || origin[0] == "null" || !h.o.AllowOrigin(origin[0]) {
		h.message(w, http.StatusForbidden, "Refused", "This form must be sent from Butler's own page ("+h.o.PublicURL+Path+").")
		return
	}
	s, err := h.session(r)
	if errors.Is(err, errNoSession) {
		h.message(w, http.StatusForbidden, "Signed out", "Your session ended. Sign in again; nothing was changed.")
		return
	}
	if err != nil {
		h.storeFailed(w, r, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		h.message(w, http.StatusBadRequest, "Bad form", "The form could not be read; nothing was changed.")
		return
	}
	if !hmac.Equal([]byte(r.PostForm.Get("csrf")), []byte(h.keys.csrfToken(s.id))) {
		h.message(w, http.StatusForbidden, "Refused", "The form is out of date or not from this session (CSRF check). Reload the page; nothing was changed.")
		return
	}
	switch r.PostForm.Get("action") {
	case "link":
		token := secret.String(strings.TrimSpace(r.PostForm.Get("token")))
		if token == "" {
			h.page(w, r, s, http.StatusUnprocessableEntity, pageData{Error: "Paste a Jenkins API token first."})
			return
		}
		me, err := h.o.Linker.Link(ctx, s.user, token)
		var le *credentials.LinkError
		switch {
		case errors.As(err, &le):
			h.o.Logger.InfoContext(ctx, "connect: token refused; nothing stored", "user", s.user, "reason", le.Error())
			h.page(w, r, s, http.StatusUnprocessableEntity, pageData{Error: le.Error() + ". Nothing was stored."})
			return
		case errors.Is(err, store.ErrUnavailable):
			h.storeFailed(w, r, err)
			return
		case err != nil:
			h.o.Logger.WarnContext(ctx, "connect: linking failed", "user", s.user, "err", err)
			h.page(w, r, s, http.StatusBadGateway, pageData{Error: "Butler could not check the token with Jenkins right now. Nothing was stored; try again."})
			return
		}
		h.o.Logger.InfoContext(ctx, "connect: Jenkins token linked", "user", s.user, "jenkins_user", me.ID)
		http.Redirect(w, r, h.o.PublicURL+Path+"?done=linked", http.StatusSeeOther)
	case "unlink":
		err := h.o.Linker.Unlink(ctx, s.user)
		switch {
		case errors.Is(err, credentials.ErrNotLinked):
			http.Redirect(w, r, h.o.PublicURL+Path+"?done=none", http.StatusSeeOther)
			return
		case err != nil:
			h.storeFailed(w, r, err)
			return
		}
		h.o.Logger.InfoContext(ctx, "connect: Jenkins token unlinked", "user", s.user)
		http.Redirect(w, r, h.o.PublicURL+Path+"?done=unlinked", http.StatusSeeOther)
	case "logout":
		if err := h.o.Store.DeleteSession(ctx, storeKey(s.id)); err != nil {
			h.storeFailed(w, r, err)
			return
		}
		http.SetCookie(w, h.cookies.cookie(h.cookies.session, "", -1))
		h.o.Logger.InfoContext(ctx, "connect: signed out", "user", s.user)
		h.message(w, http.StatusOK, "Signed out", "You are signed out of Butler's page. Agents keep acting as you with your linked token until you unlink it.")
	default:
		h.page(w, r, s, http.StatusBadRequest, pageData{Error: "Unknown action; nothing was changed."})
	}
}
