// Package jenkins is Butler's REST client for Jenkins.
//
// The client holds no identity of its own: every method takes the
// [Credential] of the user it acts for, so Jenkins itself enforces that
// user's permissions (Item.Read, Item.Build, Item.Cancel) on every call. It
// builds every URL from the configured base URL and a canonical
// [jobpath.Path]; it never follows a URL that Jenkins returns (a queue
// Location, a build url), so a request cannot leave the configured Jenkins.
//
// Jenkins answers are mapped to a small set of sentinel errors
// ([ErrNotFound], [ErrForbidden], [ErrConflict], [ErrUnavailable], ...) carried
// by an [*Error] that also holds the HTTP status and Jenkins's
// X-Required-Permission header; callers map those to their own error codes in
// one place with errors.Is / errors.As.
package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/trace"

	"github.com/butler-mcp/butler/internal/secret"
	"github.com/butler-mcp/butler/internal/telemetry"
)

// Sentinel errors wrapped by every *Error the client returns.
var (
	// ErrNotFound: Jenkins answered 404. Jenkins answers 404 both for an item
	// that does not exist and for one the user may not read.
	ErrNotFound = errors.New("not found")
	// ErrForbidden: Jenkins answered 403 (or 422 for a queue item the user
	// may not cancel): the user lacks a permission.
	ErrForbidden = errors.New("forbidden")
	// ErrUnauthorized: Jenkins rejected the credential itself: a 401 (a
	// wrong or revoked API token), or an answer that says the request ran
	// as anonymous although it carried a credential (the jwt-auth-filter
	// plugin ignores a bearer token it refuses; see Error.Anonymous).
	ErrUnauthorized = errors.New("credential rejected by Jenkins")
	// ErrConflict: Jenkins answered 409, e.g. the job is disabled.
	ErrConflict = errors.New("conflict")
	// ErrBadRequest: Jenkins refused the request as malformed (400).
	ErrBadRequest = errors.New("bad request")
	// ErrUnavailable: Jenkins could not be reached, timed out, answered 5xx,
	// or answered something the client cannot use (too large, not JSON).
	ErrUnavailable = errors.New("jenkins unavailable")
	// ErrTooLarge: Jenkins's answer is larger than the client reads
	// (Options.MaxJSONBytes). It is a kind of ErrUnavailable.
	ErrTooLarge = fmt.Errorf("%w: answer too large", ErrUnavailable)
)

// Error is a failed Jenkins call. It unwraps to one of the sentinel errors.
type Error struct {
	Op                 string // what the client was doing, e.g. `get job "a/b"`
	Status             int    // HTTP status from Jenkins; 0 when no answer came
	RequiredPermission string // Jenkins's X-Required-Permission, when it sent one
	Timeout            bool   // the call ran out of time
	// Anonymous: the request carried a credential but Jenkins ran it as
	// anonymous (ErrUnauthorized without a 401).
	Anonymous bool
	Detail    string // a short, safe explanation (never a body dump)
	Err       error  // one of the sentinel errors

	crumbMissing bool // a 403 that is Jenkins's CSRF refusal, not a permission
	// xError is Jenkins's X-Error header: the message of a
	// hudson.model.Failure (its error view sets it); snippet is the start
	// of the answer's body (at most 4 KiB), for callers that must read
	// Jenkins's refusal from it (stages.go).
	xError  string
	snippet []byte
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("jenkins: ")
	b.WriteString(e.Op)
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Credential is the identity a call is made with: a Jenkins user id and API
// token (HTTP Basic), or a bearer token obtained by token exchange. Its
// String and LogValue never print the secret.
type Credential struct {
	User     string        // Jenkins user id
	APIToken secret.String // API token, for HTTP Basic
	Bearer   secret.String // bearer token (RFC 8693 exchange; Jenkins jwt-auth-filter)
}

// String describes the credential without its secret.
func (c Credential) String() string {
	switch {
	case c.Bearer != "":
		return fmt.Sprintf("bearer credential for %q", c.User)
	case c.APIToken != "":
		return fmt.Sprintf("API token of %q", c.User)
	default:
		return "anonymous"
	}
}

// GoString is String, so %#v cannot print the secret either.
func (c Credential) GoString() string { return c.String() }

// LogValue keeps the secret out of structured logs.
func (c Credential) LogValue() slog.Value { return slog.StringValue(c.String()) }

// present reports whether the credential carries a secret.
func (c Credential) present() bool { return c.Bearer != "" || c.APIToken != "" }

func (c Credential) apply(req *http.Request) {
	switch {
	case c.Bearer != "":
		req.Header.Set("Authorization", "Bearer "+c.Bearer.Reveal())
	case c.APIToken != "":
		req.SetBasicAuth(c.User, c.APIToken.Reveal())
	}
}

// Options tune a Client. The zero value is usable.
type Options struct {
	// HTTPClient carries every request; it should be shared so connections
	// are kept alive. Nil: a client with its own keep-alive transport.
	// Redirects are never followed whatever its CheckRedirect says.
	HTTPClient *http.Client
	// Timeout bounds each call (all of its requests). Default 15s.
	Timeout time.Duration
	// MaxJSONBytes bounds a JSON answer. Default 32 MiB (a listing of ten
	// thousand jobs is about 2 MiB).
	MaxJSONBytes int64
	// MaxScanBytes bounds how much console text one log search reads.
	// Default 64 MiB.
	MaxScanBytes int64
	// ListDepth is how many levels of folders one listing request nests.
	// Default 4.
	ListDepth int
	// UserAgent is sent with every request. Default "butler".
	UserAgent string
	// Logger receives debug lines about calls (never credentials).
	Logger *slog.Logger
	// Observe, if set, is told of every HTTP request made to Jenkins (for
	// metrics): the method, the status (0 when no answer) and duration. No
	// job name is passed, so metric labels stay few.
	Observe func(method string, status int, d time.Duration)
	// TracerProvider records a client span for every HTTP request (see
	// trace.go). Nil: no spans.
	TracerProvider trace.TracerProvider
	// Traceparent sends each request's trace context to Jenkins in a W3C
	// traceparent header (trace.go, injectTraceparent).
	Traceparent bool
}

// Client talks to one Jenkins controller. It is safe for concurrent use.
type Client struct {
	base *url.URL
	root string // base URL in escaped form, ending in "/"
	hc   *http.Client
	opts Options
	log  *slog.Logger
	// tracer starts the span of each request; nil without
	// Options.TracerProvider, and then no span is started.
	tracer trace.Tracer
}

// New returns a client for the Jenkins at baseURL, which may carry a path
// prefix ("https://ci.example.com/jenkins/").
func New(baseURL string, opts *Options) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("jenkins: base URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("jenkins: base URL %q: want an absolute http(s) URL", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("jenkins: base URL %q: no query, fragment or user info allowed", baseURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
		u.RawPath = ""
	}
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.MaxJSONBytes <= 0 {
		o.MaxJSONBytes = 32 << 20
	}
	if o.MaxScanBytes <= 0 {
		o.MaxScanBytes = 64 << 20
	}
	if o.ListDepth <= 0 {
		o.ListDepth = 4
	}
	if o.UserAgent == "" {
		o.UserAgent = "butler"
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var hc http.Client
	if o.HTTPClient != nil {
		hc = *o.HTTPClient // shallow copy: same Transport, same connection pool
	} else {
		hc.Transport = NewTransport()
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	root := u.Scheme + "://" + u.Host + u.EscapedPath()
	c := &Client{base: u, root: root, hc: &hc, opts: o, log: log}
	if o.TracerProvider != nil {
		c.tracer = o.TracerProvider.Tracer(telemetry.TracerName)
	}
	return c, nil
}

// NewTransport returns an HTTP transport suited to talking to one Jenkins:
// keep-alive with enough idle connections per host for concurrent users.
func NewTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 100
	t.MaxIdleConnsPerHost = 32
	t.IdleConnTimeout = 90 * time.Second
	return t
}

// BaseURL returns the Jenkins root URL, ending in "/".
func (c *Client) BaseURL() string { return c.root }

// url returns base + rel, where rel is an already-escaped relative path.
// The join is done on the escaped form so segment encoding survives.
func (c *Client) url(rel string, query url.Values) string {
	s := c.root + rel
	if len(query) > 0 {
		s += "?" + query.Encode()
	}
	return s
}

// call is one HTTP exchange with Jenkins.
type call struct {
	op      string
	method  string
	rel     string // escaped path relative to the base URL
	query   url.Values
	form    url.Values // POST body, form-encoded
	cred    Credential
	headers http.Header
	cookies []*http.Cookie
}

// withTimeout bounds ctx by the client's per-call timeout.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.Timeout)
}

// do sends the request and returns the response when the status is 2xx or
// 3xx; otherwise it reads a little of the body and returns an *Error. The
// caller closes the body.
func (c *Client) do(ctx context.Context, cl call) (*http.Response, error) {
	var body io.Reader
	if cl.form != nil {
		body = strings.NewReader(cl.form.Encode())
	}
	// sctx carries the request's span; ctx stays the caller's, so that a
	// follow-up request (the anonymous probe) is the span's sibling.
	sctx, span := c.startSpan(ctx, cl)
	req, err := http.NewRequestWithContext(sctx, cl.method, c.url(cl.rel, cl.query), body)
	if err != nil {
		e := &Error{Op: cl.op, Err: ErrBadRequest, Detail: "cannot build request"}
		endSpan(span, 0, e)
		return nil, e
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	req.Header.Set("Accept", "application/json, text/plain;q=0.9, */*;q=0.1")
	if cl.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, vs := range cl.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	for _, ck := range cl.cookies {
		req.AddCookie(ck)
	}
	cl.cred.apply(req)
	c.injectTraceparent(sctx, req)
	start := time.Now()
	resp, err := c.hc.Do(req)
	d := time.Since(start)
	if err != nil {
		c.observe(cl.method, 0, d)
		e := transportError(ctx, cl.op, err)
		endSpan(span, 0, e)
		return nil, e
	}
	c.observe(cl.method, resp.StatusCode, d)
	c.log.DebugContext(ctx, "jenkins request", "op", cl.op, "method", cl.method, "status", resp.StatusCode, "duration", d, "user", cl.cred.User)
	if resp.StatusCode < 400 {
		traceBody(resp, span)
		return resp, nil
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	endSpan(span, resp.StatusCode, nil)
	e := statusError(cl.op, resp, snippet)
	switch {
	case cl.cred.present() && ranAsAnonymous(resp, snippet):
		e.Err, e.Anonymous, e.RequiredPermission = ErrUnauthorized, true, ""
		e.Detail = "Jenkins ran the request as anonymous: it did not accept the credential"
	case e.Err == ErrForbidden && !e.crumbMissing && e.RequiredPermission == "" && isItemPath(cl.rel):
		// Item.Discover without Item.Read: Jenkins.getItem (and a
		// folder's, and Queue.Item.getApi) throws a plain
		// AccessDeniedException, a 403 without X-Required-Permission. A
		// user who may only discover an item must learn no more through
		// Butler than of a missing one.
		e.Err, e.Status = ErrNotFound, http.StatusNotFound
	case e.Err == ErrNotFound && cl.cred.Bearer != "" && cl.rel != meRel && c.anonymousProbe(ctx, cl.cred):
		// A refused bearer token runs as anonymous, and a 404 may be
		// anonymous's view of an item the user can see: /me tells.
		e.Err, e.Anonymous = ErrUnauthorized, true
		e.Detail = "Jenkins ran the request as anonymous: it did not accept the credential"
	}
	return nil, e
}

// meRel is the path of the current user's API (Jenkins.getMe).
const meRel = "me/api/json"

// anonymousProbe asks /me with cred and reports whether Jenkins ran that
// request as anonymous.
func (c *Client) anonymousProbe(ctx context.Context, cred Credential) bool {
	_, err := getJSON(ctx, c, call{op: "check the credential", rel: meRel, cred: cred,
		query: url.Values{"tree": {"id"}}}, ParseUser)
	var je *Error
	return errors.As(err, &je) && je.Anonymous
}

// ranAsAnonymous reports whether a refusal says the request ran as
// anonymous: AccessDeniedException3's X-You-Are-Authenticated-As header
// naming anonymous, or the login redirect Jenkins answers anonymous with
// (HudsonAuthenticationEntryPoint.commence: 403, an HTML page that
// redirects to the login form with "Authentication required"), which a
// plain AccessDeniedException (Jenkins.getMe's for anonymous) sends
// without headers.
func ranAsAnonymous(resp *http.Response, snippet []byte) bool {
	if as := resp.Header.Get("X-You-Are-Authenticated-As"); as != "" {
		return as == "anonymous"
	}
	return resp.StatusCode == http.StatusForbidden &&
		strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") &&
		bytes.Contains(snippet, []byte("Authentication required")) &&
		bytes.Contains(snippet, []byte("login?from="))
}

// isItemPath reports whether rel addresses an item or a queue item.
func isItemPath(rel string) bool {
	return strings.HasPrefix(rel, "job/") || strings.HasPrefix(rel, "queue/item/")
}

func (c *Client) observe(method string, status int, d time.Duration) {
	if c.opts.Observe != nil {
		c.opts.Observe(method, status, d)
	}
}

func transportError(ctx context.Context, op string, err error) error {
	e := &Error{Op: op, Err: ErrUnavailable}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		e.Timeout = true
		e.Detail = "timed out"
	case errors.Is(err, context.Canceled) || ctx.Err() != nil:
		e.Detail = "request cancelled"
	default:
		e.Detail = "connection failed"
	}
	return e
}

// statusError maps a Jenkins error answer to an *Error.
func statusError(op string, resp *http.Response, snippet []byte) *Error {
	e := &Error{Op: op, Status: resp.StatusCode, RequiredPermission: resp.Header.Get("X-Required-Permission"),
		xError: resp.Header.Get("X-Error"), snippet: snippet}
	switch s := resp.StatusCode; {
	case s == http.StatusNotFound:
		e.Err = ErrNotFound
	case s == http.StatusUnauthorized:
		e.Err = ErrUnauthorized
	case s == http.StatusForbidden:
		e.Err = ErrForbidden
		e.crumbMissing = isCrumbError(snippet)
	case s == http.StatusConflict:
		e.Err = ErrConflict
		e.Detail = plainDetail(resp, snippet)
	case s >= 500 || s == http.StatusTooManyRequests:
		e.Err = ErrUnavailable
	default:
		e.Err = ErrBadRequest
		e.Detail = plainDetail(resp, snippet)
	}
	return e
}

// plainDetail returns Jenkins's message when it is short plain text (as for
// 400 and 409 answers from the build endpoints), never an HTML page: not
// one labelled text/html (Jenkins's 404, accessDenied and oops pages), nor
// markup labelled text/plain (a proxy's error page).
func plainDetail(resp *http.Response, snippet []byte) string {
	ct := resp.Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "text/plain") || len(snippet) == 0 || len(snippet) > 300 || !utf8.Valid(snippet) {
		return ""
	}
	s := strings.TrimSpace(string(snippet))
	if looksLikeMarkup(s) {
		return ""
	}
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// looksLikeMarkup reports whether s is (or holds) an HTML or XML document.
func looksLikeMarkup(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "<") || strings.Contains(l, "<html") || strings.Contains(l, "<body") || strings.Contains(l, "<!doctype")
}

// getJSON fetches rel/api/json and decodes it with parse.
func getJSON[T any](ctx context.Context, c *Client, cl call, parse func([]byte) (T, error)) (T, error) {
	var zero T
	cl.method = http.MethodGet
	resp, err := c.do(ctx, cl)
	if err != nil {
		return zero, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return zero, &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "unexpected answer"}
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxJSONBytes+1))
	if err != nil {
		return zero, transportError(ctx, cl.op, err)
	}
	if int64(len(data)) > c.opts.MaxJSONBytes {
		return zero, &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrTooLarge, Detail: fmt.Sprintf("answer larger than %d bytes", c.opts.MaxJSONBytes)}
	}
	v, err := parse(data)
	if err != nil {
		return zero, &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "answer is not the JSON expected: " + err.Error()}
	}
	return v, nil
}

// getStream fetches rel/api/json and hands the body to parse as it
// arrives, never holding it whole; more than MaxJSONBytes is ErrTooLarge.
func getStream(ctx context.Context, c *Client, cl call, parse func(io.Reader) error) error {
	cl.method = http.MethodGet
	resp, err := c.do(ctx, cl)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "unexpected answer"}
	}
	body := &boundedReader{r: resp.Body, left: c.opts.MaxJSONBytes}
	err = parse(body)
	switch {
	case body.over:
		return &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrTooLarge, Detail: fmt.Sprintf("answer larger than %d bytes", c.opts.MaxJSONBytes)}
	case body.err != nil:
		return transportError(ctx, cl.op, body.err)
	case err != nil:
		return &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "answer is not the JSON expected: " + err.Error()}
	}
	return nil
}

// errAnswerTooLarge ends a read past the answer bound.
var errAnswerTooLarge = errors.New("answer too large")

// boundedReader reads at most left bytes from r, then fails; it remembers
// whether the bound or the transport ended the read.
type boundedReader struct {
	r    io.Reader
	left int64
	over bool
	err  error // a transport error, not io.EOF
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// One byte more tells a body of exactly the bound from a longer one.
		var one [1]byte
		n, err := b.r.Read(one[:])
		if n > 0 {
			b.over = true
			return 0, errAnswerTooLarge
		}
		if err != nil && err != io.EOF {
			b.err = err
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// post sends a POST and, when Jenkins refuses it for want of a CSRF crumb,
// fetches a crumb with the same credential and retries once. With API-token
// authentication Jenkins needs no crumb, but some set-ups (or proxies that
// strip the Authorization header's token exemption) still ask for one.
func (c *Client) post(ctx context.Context, cl call) (*http.Response, error) {
	cl.method = http.MethodPost
	resp, err := c.do(ctx, cl)
	var je *Error
	if err == nil || !errors.As(err, &je) || je.Status != http.StatusForbidden || !je.crumbMissing {
		return resp, err
	}
	crumb, err := c.crumb(ctx, cl.cred)
	if err != nil {
		return nil, err
	}
	cl.headers = http.Header{crumb.field: {crumb.value}}
	cl.cookies = crumb.cookies
	return c.do(ctx, cl)
}

type crumb struct {
	field, value string
	cookies      []*http.Cookie
}

func (c *Client) crumb(ctx context.Context, cred Credential) (crumb, error) {
	cl := call{op: "get crumb", method: http.MethodGet, rel: "crumbIssuer/api/json", cred: cred}
	resp, err := c.do(ctx, cl)
	if err != nil {
		return crumb{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return crumb{}, transportError(ctx, cl.op, err)
	}
	var v struct {
		Crumb             string `json:"crumb"`
		CrumbRequestField string `json:"crumbRequestField"`
	}
	if err := json.Unmarshal(data, &v); err != nil || v.Crumb == "" || v.CrumbRequestField == "" {
		return crumb{}, &Error{Op: cl.op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "no crumb in answer"}
	}
	return crumb{field: v.CrumbRequestField, value: v.Crumb, cookies: resp.Cookies()}, nil
}

// drain discards a little of a response body so the connection can be reused.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// isCrumbError reports whether a 403 body is Jenkins's CSRF refusal.
func isCrumbError(snippet []byte) bool {
	return bytes.Contains(snippet, []byte("No valid crumb"))
}
