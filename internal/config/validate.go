package config

import (
	"crypto/x509"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/butler-mcp/butler/internal/catalog"
)

// Problem is one thing wrong with a config: the key path it is about
// ("auth.algorithms[1]") and what is wrong and expected.
type Problem struct {
	Field   string
	Message string
}

// String returns "field: message".
func (p Problem) String() string {
	if p.Field == "" {
		return p.Message
	}
	return p.Field + ": " + p.Message
}

// Problems is every problem found in a config, in file order. It is the
// error Parse returns for structural problems and Validate for values;
// get it back with errors.As to print one problem a line.
type Problems []Problem

// Error returns the problems one a line, as "field: message".
func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Mode says which command is about to use the config, because each needs
// different parts of it: stdio has no OAuth, and unlink has no Jenkins.
// Only the sections the command uses are checked, so one file can serve
// several commands without the unused parts' variables being set.
type Mode int

// The modes, by command (docs/operations.md, "Commands").
const (
	// ModeServe is for butler serve and butler demo: everything.
	ModeServe Mode = iota
	// ModeStdio is for butler stdio: jenkins.url, the local user's
	// credential (jenkins.user, jenkins.api_token; see ApplyStdioEnv),
	// the Jenkins client settings, the policy and the log.
	ModeStdio
	// ModeAdmin is for butler unlink and butler audit: the store (a
	// vault_key is checked if set, not required) and the log.
	ModeAdmin
	// ModeLink is for butler link: the store with a required vault_key,
	// and the Jenkins client settings and user_template, since link
	// verifies the token against Jenkins.
	ModeLink
	// ModePolicy is for butler policy explain: the policy and the log.
	ModePolicy
	// ModeCheck is for butler check-config: everything ModeServe checks.
	ModeCheck
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case ModeServe:
		return "serve"
	case ModeStdio:
		return "stdio"
	case ModeAdmin:
		return "admin"
	case ModeLink:
		return "link"
	case ModePolicy:
		return "policy"
	case ModeCheck:
		return "check"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// ValidateOptions are optional inputs of ValidateWith. A nil
// *ValidateOptions means the defaults.
type ValidateOptions struct {
	// ReadFile reads jenkins.tls_ca_file and policy.file to check they
	// are usable; nil means os.ReadFile. Tests inject a fake.
	ReadFile func(name string) ([]byte, error)
}

// Validate checks the config for the command of mode and returns nil or a
// Problems listing every problem found. It reads the files the config
// names with os.ReadFile; see ValidateWith.
func (c *Config) Validate(mode Mode) error { return c.ValidateWith(mode, nil) }

// ValidateWith is Validate with options.
func (c *Config) ValidateWith(mode Mode, opts *ValidateOptions) error {
	var o ValidateOptions
	if opts != nil {
		o = *opts
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	v := &validator{c: c, readFile: o.ReadFile}
	full := mode == ModeServe || mode == ModeCheck
	switch mode {
	case ModeServe, ModeCheck, ModeStdio, ModeAdmin, ModeLink, ModePolicy:
	default:
		return Problems{{Field: "(mode)", Message: fmt.Sprintf("unknown validation mode %s", mode)}}
	}
	if full {
		v.server()
		v.auth()
	}
	if full || mode == ModeStdio || mode == ModeLink {
		v.jenkinsClient()
	}
	if full || mode == ModeLink {
		v.jenkinsUserTemplate()
	}
	if full {
		v.jenkinsServe()
	}
	if mode == ModeStdio {
		v.jenkinsStdio()
	}
	if full || mode == ModeAdmin || mode == ModeLink {
		// Stored credentials need the key, unless serve is sure to
		// exchange tokens instead.
		needKey := mode == ModeLink || (full && c.Jenkins.Credentials != CredentialsTokenExchange)
		v.store(needKey)
	}
	if full || mode == ModeStdio || mode == ModePolicy {
		v.policy()
	}
	if full {
		v.limits()
		v.audit()
		v.web()
		v.telemetry()
	}
	v.log()
	if len(v.problems) == 0 {
		return nil
	}
	return v.problems
}

type validator struct {
	c        *Config
	readFile func(string) ([]byte, error)
	problems Problems
}

// add records a problem, with a note when the field's value came from an
// unset or empty environment variable.
func (v *validator) add(field, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if note := v.c.envNotes[field]; note != "" {
		msg += " (" + note + ")"
	}
	v.problems = append(v.problems, Problem{Field: field, Message: msg})
}

// urlRule says what a URL-valued setting must look like.
type urlRule struct {
	// secure requires https, except on loopback hosts: for URLs that
	// carry tokens, keys or client secrets.
	secure bool
	// noQuery refuses a query, for base URLs that others are built on.
	noQuery bool
}

// checkURL checks an absolute http(s) URL and returns it parsed, or nil
// after recording a problem.
func (v *validator) checkURL(field, raw string, r urlRule) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the URL, which may hold a password
		}
		v.add(field, "%s is not a valid URL: %v", showURL(raw), err)
		return nil
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		v.add(field, "must be an absolute http(s) URL like https://host.example.com[/path]; got %s", showURL(raw))
		return nil
	}
	ok := true
	if u.User != nil {
		v.add(field, "must not contain user info (user:password@); got %s", showURL(raw))
		ok = false
	}
	if r.secure && u.Scheme != "https" && !isLoopbackHost(u.Hostname()) {
		v.add(field, "must use https (plain http is accepted only for localhost and loopback addresses); got %s", showURL(raw))
		ok = false
	}
	if strings.Contains(raw, "#") {
		v.add(field, "must not have a fragment (#...); got %s", showURL(raw))
		ok = false
	}
	if r.noQuery && (u.RawQuery != "" || u.ForceQuery) {
		v.add(field, "must not have a query (?...); got %s", showURL(raw))
		ok = false
	}
	if !ok {
		return nil
	}
	return u
}

// checkHostPort checks a listen address.
func (v *validator) checkHostPort(field, s string) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		v.add(field, "%q is not host:port; want e.g. 127.0.0.1:8080, [::1]:8080 or :8080 (all interfaces)", s)
		return
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		v.add(field, "%q: the port must be a number from 0 to 65535", s)
		return
	}
	if strings.ContainsAny(host, " \t/") {
		v.add(field, "%q: %q is not a host name or IP address", s, host)
	}
}

func (v *validator) server() {
	s := v.c.Server
	if s.Listen == "" {
		v.add("server.listen", "required: host:port to listen on, like 127.0.0.1:8080")
	} else {
		v.checkHostPort("server.listen", s.Listen)
	}
	if s.PublicURL == "" {
		v.add("server.public_url", "required: the external base URL clients use, like https://butler.example.com (the MCP endpoint is that + /mcp)")
	} else {
		v.checkURL("server.public_url", s.PublicURL, urlRule{secure: true, noQuery: true})
	}
	for i, o := range s.AllowedOrigins {
		if _, err := CanonicalOrigin(o); err != nil {
			v.add(fmt.Sprintf("server.allowed_origins[%d]", i), "%s: %v", showURL(o), err)
		}
	}
	if s.MetricsListen != "" {
		v.checkHostPort("server.metrics_listen", s.MetricsListen)
	}
	if s.MaxSessions < 1 || s.MaxSessions > 1000000 {
		v.add("server.max_sessions", "%d is out of range; want from 1 to 1000000", s.MaxSessions)
	}
	if s.MaxSessionsPerUser < 1 || s.MaxSessionsPerUser > s.MaxSessions {
		v.add("server.max_sessions_per_user", "%d is out of range; want from 1 to server.max_sessions (%d)", s.MaxSessionsPerUser, s.MaxSessions)
	}
	if s.SessionIdleTimeout < time.Minute || s.SessionIdleTimeout > 24*time.Hour {
		v.add("server.session_idle_timeout", "%s is out of range; want from 1m to 24h", s.SessionIdleTimeout)
	}
	if s.MaxUnauthenticatedInflight < 1 || s.MaxUnauthenticatedInflight > 100000 {
		v.add("server.max_unauthenticated_inflight", "%d is out of range; want from 1 to 100000", s.MaxUnauthenticatedInflight)
	}
}

// supportedAlgorithms are the JWS algorithms Butler verifies: asymmetric
// only (RFC 7518 §3.1 and RFC 8037 for EdDSA).
func supportedAlgorithms() []string {
	return []string{"RS256", "RS384", "RS512", "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "EdDSA"}
}

func (v *validator) auth() {
	a := v.c.Auth
	if a.Issuer == "" {
		v.add("auth.issuer", "required: the authorization server's issuer URL, exactly as in its tokens' iss, like https://idp.example.com/realms/eng")
	} else {
		v.checkURL("auth.issuer", a.Issuer, urlRule{secure: true, noQuery: true})
	}
	for i, aud := range a.Audience {
		if strings.TrimSpace(aud) == "" {
			v.add(fmt.Sprintf("auth.audience[%d]", i), "must not be empty; leave auth.audience out to accept the resource URL %q", v.c.ResourceURL())
		}
	}
	if a.JWKSURL != "" {
		v.checkURL("auth.jwks_url", a.JWKSURL, urlRule{secure: true})
	}
	v.algorithms(a.Algorithms)
	if a.ClockSkew < 0 || a.ClockSkew > 5*time.Minute {
		v.add("auth.clock_skew", "%s is out of range; want from 0s to 5m (a few seconds is typical)", a.ClockSkew)
	}
	if a.JWKSMinRefresh < time.Second {
		v.add("auth.jwks_min_refresh", "%s is too short; want at least 1s, so that tokens with unknown key ids cannot make Butler hammer the JWKS endpoint", a.JWKSMinRefresh)
	}
	in := a.Introspection
	if in.URL != "" {
		v.checkURL("auth.introspection.url", in.URL, urlRule{secure: true})
		if in.ClientID == "" {
			v.add("auth.introspection.client_id", "required when auth.introspection.url is set: Butler authenticates to the introspection endpoint (RFC 7662 §2.1)")
		}
		if in.ClientSecret == "" {
			v.add("auth.introspection.client_secret", "required when auth.introspection.url is set: Butler authenticates to the introspection endpoint (RFC 7662 §2.1)")
		}
	}
	if in.CacheTTL < 0 || in.CacheTTL > 10*time.Minute {
		v.add("auth.introspection.cache_ttl", "%s is out of range; want from 0s (no cache) to 10m, since a revoked token stays usable that long", in.CacheTTL)
	}
	v.claimPath("auth.user_claim", a.UserClaim, "sub")
	v.claimPath("auth.groups_claim", a.GroupsClaim, "groups")

	supported := map[string]bool{}
	if len(a.ScopesSupported) == 0 {
		v.add("auth.scopes_supported", "must list at least one scope, like [jenkins:read, jenkins:build]")
	}
	for i, s := range a.ScopesSupported {
		if v.scope(fmt.Sprintf("auth.scopes_supported[%d]", i), s) {
			supported[s] = true
		}
	}
	tools := map[string]bool{DefaultToolScopesKey: true}
	for _, t := range catalog.Names() {
		tools[t] = true
	}
	keys := make([]string, 0, len(a.ToolScopes))
	for k := range a.ToolScopes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	defaults := Default().Auth.ToolScopes
	for _, k := range keys {
		field := "auth.tool_scopes." + k
		if !tools[k] {
			v.add(field, "unknown tool %q; the keys are %q or a tool name: %s", k, DefaultToolScopesKey, strings.Join(catalog.Names(), ", "))
			continue
		}
		for i, s := range a.ToolScopes[k] {
			f := fmt.Sprintf("%s[%d]", field, i)
			if !v.scope(f, s) {
				continue
			}
			if len(a.ScopesSupported) > 0 && !supported[s] {
				hint := ""
				if d, ok := defaults[k]; ok && equalStrings(d, a.ToolScopes[k]) {
					hint = fmt.Sprintf("; [%s] is the default for %s, so if you changed auth.scopes_supported set %s too", strings.Join(d, ", "), k, field)
				}
				v.add(f, "scope %q is not in auth.scopes_supported [%s]%s", s, strings.Join(a.ScopesSupported, ", "), hint)
			}
		}
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func (v *validator) algorithms(algs []string) {
	if len(algs) == 0 {
		v.add("auth.algorithms", "must list at least one algorithm; the default is [RS256, ES256, PS256, EdDSA]")
		return
	}
	for i, alg := range algs {
		field := fmt.Sprintf("auth.algorithms[%d]", i)
		known := false
		for _, s := range supportedAlgorithms() {
			if alg == s {
				known = true
			}
		}
		switch {
		case known:
		case strings.EqualFold(alg, "none"):
			v.add(field, `"none" means unsigned tokens, which anyone can forge; it is never accepted`)
		case strings.HasPrefix(strings.ToUpper(alg), "HS"):
			v.add(field, "%q is a symmetric (HMAC) algorithm and is refused: it verifies with the same key that signs, so anyone holding the issuer's public key could forge tokens (algorithm confusion); use %s", alg, strings.Join(supportedAlgorithms(), ", "))
		default:
			hint := ""
			for _, s := range supportedAlgorithms() {
				if strings.EqualFold(alg, s) {
					hint = fmt.Sprintf(" (names are case-sensitive: %s)", s)
				}
			}
			v.add(field, "%q is not a supported algorithm%s; want one of %s", alg, hint, strings.Join(supportedAlgorithms(), ", "))
		}
	}
}

func (v *validator) claimPath(field, path, example string) {
	if path == "" {
		v.add(field, "must name a claim, like %q, or a dotted path into nested claims, like \"realm_access.roles\"", example)
		return
	}
	for _, seg := range strings.Split(path, ".") {
		if seg == "" {
			v.add(field, "%q has an empty segment; a dotted path looks like \"realm_access.roles\"", path)
			return
		}
	}
}

// scope checks one scope token (RFC 6749 §3.3) and reports whether it is
// well-formed.
func (v *validator) scope(field, s string) bool {
	if s == "" {
		v.add(field, "must not be empty")
		return false
	}
	for _, r := range s {
		switch {
		case r == ' ' || r == '\t' || r == '\n' || r == '\r':
			v.add(field, "%q contains white space; OAuth scopes are space-separated (RFC 6749 §3.3), so list each scope as its own item", s)
			return false
		case r == '"' || r == '\\' || r < 0x21 || r > 0x7e:
			v.add(field, "%q contains %q, which RFC 6749 §3.3 does not allow in a scope", s, r)
			return false
		}
	}
	return true
}

// jenkinsClient checks what every command that calls Jenkins needs.
func (v *validator) jenkinsClient() {
	j := v.c.Jenkins
	if j.URL == "" {
		v.add("jenkins.url", "required: the Jenkins root URL, like https://jenkins.example.com/ (a path prefix such as /jenkins/ is kept)")
	} else {
		v.checkURL("jenkins.url", j.URL, urlRule{noQuery: true})
	}
	if j.Timeout <= 0 || j.Timeout > 5*time.Minute {
		v.add("jenkins.timeout", "%s is out of range; want more than 0s and at most 5m", j.Timeout)
	}
	if j.TLSCAFile != "" {
		data, err := v.readFile(j.TLSCAFile)
		switch {
		case err != nil:
			v.add("jenkins.tls_ca_file", "cannot read it: %v", err)
		case !x509.NewCertPool().AppendCertsFromPEM(data):
			v.add("jenkins.tls_ca_file", "%q holds no PEM certificate (-----BEGIN CERTIFICATE-----)", j.TLSCAFile)
		}
	}
}

// jenkinsUserTemplate checks jenkins.user_template by running it on a
// sample user, so that a template that fails or maps users to nothing is
// caught before the first request.
func (v *validator) jenkinsUserTemplate() {
	const sample = "alice@example.com"
	if _, err := parseUserTemplate(v.c.Jenkins.UserTemplate); err != nil {
		v.add("jenkins.user_template", "is not a valid Go text/template: %v", err)
		return
	}
	if _, err := mapUser(v.c.Jenkins.UserTemplate, sample); err != nil {
		v.add("jenkins.user_template", "fails for the sample user %q (the template gets the user claim as {{.User}}): %v", sample, err)
	}
}

// jenkinsServe checks how serve obtains users' credentials.
func (v *validator) jenkinsServe() {
	j := v.c.Jenkins
	switch j.Credentials {
	case CredentialsPerUserToken:
	case CredentialsTokenExchange:
		te := j.TokenExchange
		why := "required with jenkins.credentials: token_exchange (RFC 8693)"
		if te.Audience == "" {
			v.add("jenkins.token_exchange.audience", "%s: the audience Jenkins's jwt-auth-filter expects", why)
		}
		if te.ClientID == "" {
			v.add("jenkins.token_exchange.client_id", "%s: the client Butler exchanges tokens as", why)
		}
		if te.ClientSecret == "" {
			v.add("jenkins.token_exchange.client_secret", "%s: that client's secret", why)
		}
	default:
		v.add("jenkins.credentials", "%q is not a credential mode; want %s or %s", j.Credentials, CredentialsPerUserToken, CredentialsTokenExchange)
	}
}

// jenkinsStdio checks the local user's credential.
func (v *validator) jenkinsStdio() {
	j := v.c.Jenkins
	if j.User == "" {
		v.add("jenkins.user", "required for stdio: your Jenkins user id; set it here or in JENKINS_USER")
	}
	if j.APIToken == "" {
		v.add("jenkins.api_token", "required for stdio: your Jenkins API token; set it here (as ${VAR}) or in JENKINS_API_TOKEN")
	}
}

func (v *validator) store(needKey bool) {
	s := v.c.Store
	v.dsn()
	if s.Timeout <= 0 || s.Timeout > time.Minute {
		v.add("store.timeout", "%s is out of range; want more than 0s and at most 1m", s.Timeout)
	}
	if s.VaultKey == "" {
		if needKey {
			v.add("store.vault_key", "required: the standard base64 of 32 random bytes that encrypt stored Jenkins tokens; generate one with: openssl rand -base64 32")
		}
	} else if k, err := decodeKey32(s.VaultKey); err != nil {
		v.add("store.vault_key", "%v", err)
	} else if weak := weakKey(k); weak != "" {
		v.add("store.vault_key", "%s", weak)
	}
	for i, k := range s.VaultOldKeys {
		field := fmt.Sprintf("store.vault_old_keys[%d]", i)
		if k == "" {
			v.add(field, "must not be empty")
		} else if key, err := decodeKey32(k); err != nil {
			v.add(field, "%v", err)
		} else if weak := weakKey(key); weak != "" {
			v.add(field, "%s", weak)
		}
	}
}

// minKeyByteValues is the fewest distinct byte values a vault key may
// have. 32 random bytes have about 30 (fewer than 16 happens with odds far
// below one in 10^15); a key of text, hex digits or a short repeated
// pattern has fewer.
const minKeyByteValues = 16

// weakKey says why k does not look like 32 random bytes, or "". It never
// shows the key.
func weakKey(k [32]byte) string {
	var seen [256]bool
	n := 0
	for _, b := range k {
		if !seen[b] {
			seen[b] = true
			n++
		}
	}
	const fix = "; generate one with: openssl rand -base64 32"
	switch {
	case n == 1:
		return fmt.Sprintf("is not a random key: all 32 bytes are 0x%02x%s", k[0], fix)
	case n < minKeyByteValues:
		return fmt.Sprintf("is not a random key: only %d distinct byte values among its 32 bytes (a random key has about 30)%s", n, fix)
	}
	return ""
}

func (v *validator) audit() {
	a := v.c.Audit
	if a.Buffer < 1 || a.Buffer > 10000000 {
		v.add("audit.buffer", "%d is out of range; want from 1 to 10000000 records", a.Buffer)
	}
	if a.SpoolDir != "" {
		if fi, err := os.Stat(a.SpoolDir); err != nil || !fi.IsDir() {
			v.add("audit.spool_dir", "%q is not a directory", a.SpoolDir)
		}
	}
}

func (v *validator) dsn() {
	const field = "store.dsn"
	d := v.c.Store.DSN
	raw := d.Reveal()
	if raw == "" {
		v.add(field, "required: sqlite:PATH or a postgres:// URL")
		return
	}
	switch d.Scheme() {
	case "sqlite":
		path := raw[len("sqlite:"):]
		switch {
		case path == "":
			v.add(field, "sqlite: needs a file path, like sqlite:butler.db or sqlite:/var/lib/butler/butler.db")
		case strings.HasPrefix(path, "//"):
			v.add(field, "%q: write sqlite:PATH with a plain file path (sqlite:/var/lib/butler/butler.db), not a URL", d.String())
		}
	case "postgres", "postgresql":
		u, err := url.Parse(raw)
		if err != nil || u.Opaque != "" {
			// Neither the value nor url's error, which repeats it: the
			// password cannot be masked in a DSN that does not parse.
			v.add(field, "is not a valid postgres:// URL (value not shown, as it may hold a password); want postgres://user:password@host:5432/dbname?sslmode=verify-full, with special characters in the password percent-encoded")
			return
		}
		if u.Path == "" || u.Path == "/" {
			v.add(field, "%s names no database; want postgres://user:password@host:5432/dbname", d.String())
		}
	case "":
		v.add(field, "must be sqlite:PATH or a postgres:// URL (value not shown, as it may hold a password)")
	default:
		if !isURLScheme(d.Scheme()) {
			v.add(field, "must be sqlite:PATH or a postgres:// URL (value not shown, as it may hold a password)")
			return
		}
		v.add(field, "scheme %q is not supported; want sqlite:PATH or a postgres:// URL", d.Scheme())
	}
}

// isURLScheme reports whether s has the syntax of a URL scheme (RFC 3986
// §3.1), so that it can be quoted without quoting, say, a password.
func isURLScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return true
}

func (v *validator) policy() {
	f := v.c.Policy.File
	if f == "" {
		return
	}
	if _, err := v.readFile(f); err != nil {
		v.add("policy.file", "cannot read it: %v", err)
	}
}

func (v *validator) limits() {
	l := v.c.Limits
	if !(l.PerUserRPS > 0) || math.IsInf(l.PerUserRPS, 0) {
		v.add("limits.per_user_rps", "%v is out of range; want a number of calls per second above 0, like 10 or 0.5", l.PerUserRPS)
	}
	if l.Burst < 1 {
		v.add("limits.burst", "%d is out of range; want at least 1", l.Burst)
	}
	if l.RedisURL != "" {
		raw := l.RedisURL.Reveal()
		u, err := url.Parse(raw)
		switch {
		case err != nil || u.Opaque != "":
			v.add("limits.redis_url", "is not a valid URL (value not shown, as it may hold a password); want redis://host:6379/0 or rediss://...")
		case u.Scheme != "redis" && u.Scheme != "rediss":
			v.add("limits.redis_url", "%s: want a redis:// or rediss:// (TLS) URL", l.RedisURL.String())
		case u.Host == "":
			v.add("limits.redis_url", "%s names no host; want redis://host:6379/0", l.RedisURL.String())
		}
	}
}

func (v *validator) web() {
	w := v.c.Web
	if w.ClientID == "" {
		return
	}
	// web.client_secret may be empty: a public client, protected by PKCE
	// S256 alone (CONTRACT §12: "confidential ..., or public"). With
	// token_exchange there is nothing to link, and serve leaves /connect
	// off (it logs why).
	if w.SessionKey == "" {
		v.add("web.session_key", "required when web.client_id is set: the standard base64 of at least 32 random bytes; generate one with: openssl rand -base64 32")
	} else if _, err := decodeKeyMin(w.SessionKey, 32); err != nil {
		v.add("web.session_key", "%v", err)
	}
}

func (v *validator) log() {
	l := v.c.Log
	switch l.Level {
	case "debug", "info", "warn", "error":
	default:
		v.add("log.level", "%q is not a level; want debug, info, warn or error (lower case)", l.Level)
	}
	switch l.Format {
	case "json", "text":
	default:
		v.add("log.format", "%q is not a format; want json or text", l.Format)
	}
}
