// Package config is Butler's configuration: the typed form of butler.yaml
// (docs/configuration.md), its strict decoding, and the checks every command runs on
// it before doing anything else.
//
// Loading and validating are separate steps. Load and Parse turn YAML into
// a Config filled with defaults, refusing anything that is not a known key
// of the right type; Config.Validate then checks the values for the command
// at hand (Mode) and reports every problem at once, as dex does, so that an
// operator fixes a file in one pass.
//
// Secrets never leave this package in printable form: they are secret.String and
// DSN values, which print redacted, and no error message quotes one.
//
// Relative file paths (jenkins.tls_ca_file, policy.file, a sqlite store)
// are used as written, that is relative to the working directory of the
// process, not to the directory of the config file.
package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/secret"
)

// Config is the whole of butler.yaml. The yaml tags are the exact key names
// of docs/configuration.md. Build one with Default, Load or Parse: the zero Config
// lacks the defaults.
//
// Config holds unexported bookkeeping (which values came from unset
// environment variables); compare Configs with cmpopts.IgnoreUnexported.
type Config struct {
	Server  Server  `yaml:"server"`
	Auth    Auth    `yaml:"auth"`
	Jenkins Jenkins `yaml:"jenkins"`
	Store   Store   `yaml:"store"`
	Policy  Policy  `yaml:"policy"`
	Limits  Limits  `yaml:"limits"`
	Audit   Audit   `yaml:"audit"`
	Web     Web     `yaml:"web"`
	Log     Log     `yaml:"log"`
	// Telemetry is OpenTelemetry tracing (telemetry.go).
	Telemetry Telemetry `yaml:"telemetry"`

	// envNotes maps a field path ("store.vault_key") to a note such as
	// "it is ${BUTLER_VAULT_KEY}, which is not set", added to any problem
	// Validate reports for that field.
	envNotes map[string]string
}

// Server is the HTTP listener and how clients reach it.
type Server struct {
	// Listen is the host:port the MCP server listens on.
	Listen string `yaml:"listen"`
	// PublicURL is the external base URL clients use; the MCP resource
	// is PublicURL + "/mcp". Required for serve. A trailing "/" is
	// trimmed when the file is parsed.
	PublicURL string `yaml:"public_url"`
	// AllowedOrigins are Origins accepted besides PublicURL's own;
	// requests with another Origin get 403 (see Config.Origins).
	AllowedOrigins []string `yaml:"allowed_origins"`
	// Stateless disables MCP sessions, for several replicas behind a
	// load balancer.
	Stateless bool `yaml:"stateless"`
	// MetricsListen, when set, serves /metrics on its own host:port
	// rather than on the public listener.
	MetricsListen string `yaml:"metrics_listen"`
	// MaxSessions bounds the MCP sessions held at once, in all.
	MaxSessions int `yaml:"max_sessions"`
	// MaxSessionsPerUser bounds one user's sessions (one client address's,
	// for guests); the user's oldest idle session is closed to make room.
	MaxSessionsPerUser int `yaml:"max_sessions_per_user"`
	// SessionIdleTimeout closes a session unused that long.
	SessionIdleTimeout time.Duration `yaml:"session_idle_timeout"`
	// MaxUnauthenticatedInflight bounds the requests without a valid
	// token in progress at once; more get 503.
	MaxUnauthenticatedInflight int `yaml:"max_unauthenticated_inflight"`
}

// Auth is how bearer tokens are verified and what they must carry.
type Auth struct {
	// Issuer is the authorization server; its metadata is discovered
	// (RFC 8414 / OIDC discovery) and a token's iss must equal it exactly.
	// Required for serve.
	Issuer string `yaml:"issuer"`
	// Audience lists the accepted aud values; empty means the resource
	// URL alone (see Config.Audiences).
	Audience []string `yaml:"audience"`
	// JWKSURL overrides the jwks_uri of the issuer's metadata.
	JWKSURL string `yaml:"jwks_url"`
	// Algorithms are the accepted JWS alg values; only asymmetric ones.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew is the leeway for exp, nbf and iat.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// JWKSMinRefresh is the least time between two JWKS refetches caused
	// by an unknown kid.
	JWKSMinRefresh time.Duration `yaml:"jwks_min_refresh"`
	// Introspection, when its URL is set, validates opaque tokens
	// (RFC 7662).
	Introspection Introspection `yaml:"introspection"`
	// UserClaim names the claim holding the user id; it may be a dotted
	// path into nested claims.
	UserClaim string `yaml:"user_claim"`
	// GroupsClaim names the claim holding the user's groups; it may be a
	// dotted path (realm_access.roles).
	GroupsClaim string `yaml:"groups_claim"`
	// ScopesSupported is advertised in the RFC 9728 metadata and in
	// challenges; every scope of ToolScopes must be one of them.
	ScopesSupported []string `yaml:"scopes_supported"`
	// ToolScopes maps a tool name, or "default" for every tool not
	// listed, to the scopes a call needs (all of them). An empty list
	// means no scope is needed. Entries in the file are merged over the
	// defaults, so writing only "default" keeps jenkins:build on the
	// write tools; see Auth.ScopesFor.
	ToolScopes map[string][]string `yaml:"tool_scopes"`
	// AllowGuest lets requests without a token initialize, list tools
	// and call guest tools.
	AllowGuest bool `yaml:"allow_guest"`
}

// Introspection configures RFC 7662 token introspection for opaque tokens.
type Introspection struct {
	// URL is the introspection endpoint; empty disables introspection.
	URL string `yaml:"url"`
	// ClientID authenticates Butler at the endpoint.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates Butler at the endpoint.
	ClientSecret secret.String `yaml:"client_secret"`
	// CacheTTL is how long an introspection answer is reused.
	CacheTTL time.Duration `yaml:"cache_ttl"`
	// AllowMissingAudience accepts introspection answers without aud.
	// Off by default: such an answer does not say the token is for
	// Butler.
	AllowMissingAudience bool `yaml:"allow_missing_audience"`
}

// CredentialsMode says how Butler obtains each user's Jenkins credential.
type CredentialsMode string

// The credential modes of jenkins.credentials.
const (
	// CredentialsPerUserToken uses the API token each user linked
	// (butler link or /connect), stored encrypted.
	CredentialsPerUserToken CredentialsMode = "per_user_token"
	// CredentialsTokenExchange exchanges the user's token at the issuer
	// (RFC 8693) for one Jenkins accepts (jwt-auth-filter plugin).
	CredentialsTokenExchange CredentialsMode = "token_exchange"
)

// Jenkins is the Jenkins controller and how Butler acts there as a user.
type Jenkins struct {
	// URL is the Jenkins root, possibly with a path prefix; parsing
	// normalizes it to end with exactly one "/" (see
	// Config.JenkinsBaseURL).
	URL string `yaml:"url"`
	// User is the local user's Jenkins id, for stdio only
	// (see Config.ApplyStdioEnv).
	User string `yaml:"user"`
	// APIToken is that user's API token, for stdio only.
	APIToken secret.String `yaml:"api_token"`
	// Credentials is how serve obtains users' credentials.
	Credentials CredentialsMode `yaml:"credentials"`
	// UserTemplate is a text/template mapping the user claim ({{.User}})
	// to the Jenkins user id; see Config.JenkinsUserFor for the functions
	// it may call.
	UserTemplate string `yaml:"user_template"`
	// TokenExchange configures CredentialsTokenExchange.
	TokenExchange TokenExchange `yaml:"token_exchange"`
	// Timeout bounds each Jenkins request.
	Timeout time.Duration `yaml:"timeout"`
	// TLSCAFile is a PEM bundle of CAs to trust for Jenkins, besides the
	// system pool.
	TLSCAFile string `yaml:"tls_ca_file"`
}

// TokenExchange configures RFC 8693 token exchange at the issuer.
type TokenExchange struct {
	// Audience is the audience requested for the Jenkins token.
	Audience string `yaml:"audience"`
	// ClientID authenticates Butler at the token endpoint.
	ClientID string `yaml:"client_id"`
	// ClientSecret authenticates Butler at the token endpoint.
	ClientSecret secret.String `yaml:"client_secret"`
}

// Store is the database of credentials, audit records and web sessions.
type Store struct {
	// DSN is "sqlite:PATH" (or "sqlite::memory:") or a postgres:// URL.
	DSN DSN `yaml:"dsn"`
	// VaultKey is the standard base64 of the 32-byte AES-256-GCM key that
	// encrypts stored credentials. When the file does not set it, it is
	// ${BUTLER_VAULT_KEY}.
	VaultKey secret.String `yaml:"vault_key"`
	// VaultOldKeys are previous keys, still used to decrypt, for rotation.
	VaultOldKeys []secret.String `yaml:"vault_old_keys"`
	// Timeout is the deadline of every store call.
	Timeout time.Duration `yaml:"timeout"`
}

// Audit is how audit records wait while the store cannot take them.
type Audit struct {
	// Buffer is how many records wait in memory.
	Buffer int `yaml:"buffer"`
	// SpoolDir holds the append-only spool file records go to when the
	// buffer is full; empty: next to the SQLite file, else the working
	// directory (see Config.AuditSpoolDir).
	SpoolDir string `yaml:"spool_dir"`
}

// Policy is the Cedar policy.
type Policy struct {
	// File is a Cedar policy file; empty means the built-in default.
	File string `yaml:"file"`
}

// Limits are the per-user rate limits.
type Limits struct {
	// PerUserRPS is the sustained rate of tool calls per user per second.
	PerUserRPS float64 `yaml:"per_user_rps"`
	// Burst is how many calls a user may make at once.
	Burst int `yaml:"burst"`
	// RedisURL, when set, shares the limits across replicas.
	RedisURL DSN `yaml:"redis_url"`
}

// Web is the /connect page, where users log in (OIDC, same issuer) to link
// their Jenkins token.
type Web struct {
	// ClientID is the OIDC client of the page; empty disables /connect.
	ClientID string `yaml:"client_id"`
	// ClientSecret is that client's secret.
	ClientSecret secret.String `yaml:"client_secret"`
	// SessionKey is the standard base64 of at least 32 random bytes that
	// protect the browser session. When the file does not set it, it is
	// ${BUTLER_SESSION_KEY}.
	SessionKey secret.String `yaml:"session_key"`
}

// Log configures the debug log (not the audit log).
type Log struct {
	// Level is debug, info, warn or error.
	Level string `yaml:"level"`
	// Format is json or text.
	Format string `yaml:"format"`
}

// SlogLevel returns Level as a slog.Level; anything Validate would refuse
// gives slog.LevelInfo.
func (l Log) SlogLevel() slog.Level {
	switch l.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// DefaultToolScopesKey is the auth.tool_scopes key that applies to every
// tool not listed.
const DefaultToolScopesKey = "default"

// Default returns a Config holding every default of docs/configuration.md and nothing
// else; the required values (public_url, issuer, jenkins.url) are empty.
// Each call returns fresh slices and maps.
func Default() *Config {
	return &Config{
		Server: Server{
			Listen:                     "127.0.0.1:8080",
			MaxSessions:                10000,
			MaxSessionsPerUser:         50,
			SessionIdleTimeout:         30 * time.Minute,
			MaxUnauthenticatedInflight: 64,
		},
		Auth: Auth{
			Algorithms:      []string{"RS256", "ES256", "PS256", "EdDSA"},
			ClockSkew:       30 * time.Second,
			JWKSMinRefresh:  10 * time.Second,
			Introspection:   Introspection{CacheTTL: 60 * time.Second},
			UserClaim:       "sub",
			GroupsClaim:     "groups",
			ScopesSupported: []string{"jenkins:read", "jenkins:build"},
			ToolScopes:      defaultToolScopes(),
		},
		Jenkins: Jenkins{
			Credentials:  CredentialsPerUserToken,
			UserTemplate: "{{.User}}",
			Timeout:      15 * time.Second,
		},
		Store: Store{
			DSN:     "sqlite:butler.db",
			Timeout: 5 * time.Second,
		},
		Audit: Audit{
			Buffer: 100000,
		},
		Limits: Limits{
			PerUserRPS: 10,
			Burst:      20,
		},
		Log: Log{
			Level:  "info",
			Format: "json",
		},
		Telemetry: defaultTelemetry(),
	}
}

// defaultToolScopes is auth.tool_scopes's default: jenkins:read for every
// tool, unless the tool's catalog entry names its own default (the tools
// that change Jenkins need jenkins:build; guest tools need none, listed so
// that this is visible and overridable).
func defaultToolScopes() map[string][]string {
	m := map[string][]string{DefaultToolScopesKey: {catalog.DefaultScope}}
	for _, t := range catalog.All() {
		if t.DefaultScopes != nil {
			m[t.Name] = slices.Clone(t.DefaultScopes)
		}
	}
	return m
}

// AuditSpoolDir returns the folder of the audit spool file:
// audit.spool_dir, else the SQLite file's folder, else the working
// directory (".").
func (c *Config) AuditSpoolDir() string {
	if c.Audit.SpoolDir != "" {
		return c.Audit.SpoolDir
	}
	if c.Store.DSN.Scheme() == "sqlite" {
		if path := c.Store.DSN.Reveal()[len("sqlite:"):]; path != "" && path != ":memory:" {
			return filepath.Dir(path)
		}
	}
	return "."
}

// ResourceURL returns the MCP resource URL, server.public_url + "/mcp",
// without a trailing slash (RFC 9728 §3 compares it exactly). It is "" when
// public_url is not set.
func (c *Config) ResourceURL() string {
	base := strings.TrimRight(c.Server.PublicURL, "/")
	if base == "" {
		return ""
	}
	return base + "/mcp"
}

// ConnectURL returns the /connect page's URL, server.public_url +
// "/connect" (docs/tools.md), or "" when public_url is not set.
func (c *Config) ConnectURL() string {
	base := strings.TrimRight(c.Server.PublicURL, "/")
	if base == "" {
		return ""
	}
	return base + "/connect"
}

// Audiences returns the accepted aud values: auth.audience, or the resource
// URL alone when the list is empty. The result is a fresh slice.
func (c *Config) Audiences() []string {
	if len(c.Auth.Audience) > 0 {
		return append([]string(nil), c.Auth.Audience...)
	}
	if r := c.ResourceURL(); r != "" {
		return []string{r}
	}
	return nil
}

// ScopesFor returns the OAuth scopes a call of tool needs: the tool's own
// entry in auth.tool_scopes when present (an empty, non-nil result means
// none), else the "default" entry. See Auth.ScopesFor.
func (c *Config) ScopesFor(tool string) []string { return c.Auth.ScopesFor(tool) }

// ScopesFor returns the scopes a call of tool needs: its entry in
// ToolScopes if listed, even if empty (then no scope is needed); otherwise
// the "default" entry; and if ToolScopes has no "default" either (only
// possible for a Config built by hand), jenkins:read, so that a missing
// entry never means "no scope". The result is a fresh, non-nil slice.
func (a *Auth) ScopesFor(tool string) []string {
	if s, ok := a.ToolScopes[tool]; ok {
		return append([]string{}, s...)
	}
	if s, ok := a.ToolScopes[DefaultToolScopesKey]; ok {
		return append([]string{}, s...)
	}
	return []string{"jenkins:read"}
}

// Origins returns the Origin header values the server accepts: the origin
// of server.public_url followed by server.allowed_origins, each in the form
// browsers send (RFC 6454 §6.1: lower-case scheme and host, no default
// port, no path). Values that are not origins are left out; Validate
// reports them.
func (c *Config) Origins() []string {
	var out []string
	seen := map[string]bool{}
	add := func(raw string) {
		o, err := CanonicalOrigin(raw)
		if err != nil || seen[o] {
			return
		}
		seen[o] = true
		out = append(out, o)
	}
	if c.Server.PublicURL != "" {
		if u, err := url.Parse(c.Server.PublicURL); err == nil && u.Host != "" {
			add(u.Scheme + "://" + u.Host)
		}
	}
	for _, o := range c.Server.AllowedOrigins {
		add(o)
	}
	return out
}

// CanonicalOrigin parses an origin (scheme://host[:port], optionally with a
// trailing "/") into its serialized form (RFC 6454 §6.1): scheme and host
// lower-cased, default port dropped, so two spellings of one origin compare
// equal. "null", wildcards and anything with a path are errors.
func CanonicalOrigin(raw string) (string, error) {
	if raw == "null" {
		return "", errors.New("never allowed: it is the origin of sandboxed frames and local files, which any page can create")
	}
	if strings.Contains(raw, "*") {
		return "", errors.New("wildcards are not supported; list each origin")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errors.New("not a URL")
	}
	switch {
	case u.Scheme == "" || u.Host == "":
		return "", errors.New("must be scheme://host[:port], like https://app.example.com")
	case u.User != nil:
		return "", errors.New("an origin has no user info")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#"):
		return "", errors.New("an origin has no path, query or fragment; use scheme://host[:port]")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, nil
}

// JenkinsBaseURL returns jenkins.url as a URL whose path ends with exactly
// one "/", path prefix kept (https://ci.example.com/jenkins/), so that
// relative references resolve under it. Each call returns a new URL.
func (c *Config) JenkinsBaseURL() (*url.URL, error) {
	if c.Jenkins.URL == "" {
		return nil, errors.New("config: jenkins.url is not set")
	}
	u, err := url.Parse(c.Jenkins.URL)
	if err != nil {
		return nil, fmt.Errorf("config: jenkins.url %s is not a URL", showURL(c.Jenkins.URL))
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("config: jenkins.url %s is not an absolute http(s) URL", showURL(c.Jenkins.URL))
	}
	u.Path = strings.TrimRight(u.Path, "/") + "/"
	if u.RawPath != "" {
		u.RawPath = strings.TrimRight(u.RawPath, "/") + "/"
	}
	return u, nil
}

// userTemplateFuncs are the functions jenkins.user_template may call.
// Arguments follow the pipeline convention (the piped value comes last),
// so that {{.User | trimSuffix "@example.com" | lower}} reads naturally.
func userTemplateFuncs() template.FuncMap {
	return template.FuncMap{
		"lower":      strings.ToLower,
		"upper":      strings.ToUpper,
		"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
		"trimSuffix": func(suffix, s string) string { return strings.TrimSuffix(s, suffix) },
		"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
		"split":      func(sep, s string) []string { return strings.Split(s, sep) },
	}
}

// parseUserTemplate compiles jenkins.user_template.
func parseUserTemplate(text string) (*template.Template, error) {
	return template.New("user_template").Funcs(userTemplateFuncs()).Option("missingkey=error").Parse(text)
}

// JenkinsUserFor maps a user id (the auth.user_claim value) to a Jenkins
// user id with jenkins.user_template. Besides text/template's builtins the
// template may call lower, upper, trimPrefix PREFIX, trimSuffix SUFFIX,
// replace OLD NEW and split SEP, each taking the string last, e.g.
// {{.User | trimSuffix "@example.com"}}. An empty or blank result, or one
// with control characters, is an error: mapping a user to no Jenkins
// account, or to an ambiguous one, must fail loudly.
func (c *Config) JenkinsUserFor(user string) (string, error) {
	out, err := mapUser(c.Jenkins.UserTemplate, user)
	if err != nil {
		return "", fmt.Errorf("config: jenkins.user_template for user %q: %w", user, err)
	}
	return out, nil
}

// mapUser runs a user template; its errors do not repeat the template.
// JenkinsUserMapper returns JenkinsUserFor with the template parsed once,
// for the request path.
func (c *Config) JenkinsUserMapper() (func(user string) (string, error), error) {
	tmpl, err := parseUserTemplate(c.Jenkins.UserTemplate)
	if err != nil {
		return nil, fmt.Errorf("config: jenkins.user_template: %w", err)
	}
	return func(user string) (string, error) {
		out, err := execUserTemplate(tmpl, user)
		if err != nil {
			return "", fmt.Errorf("config: jenkins.user_template for user %q: %w", user, err)
		}
		return out, nil
	}, nil
}

func mapUser(text, user string) (string, error) {
	tmpl, err := parseUserTemplate(text)
	if err != nil {
		return "", err
	}
	return execUserTemplate(tmpl, user)
}

func execUserTemplate(tmpl *template.Template, user string) (string, error) {
	w := &limitedBuffer{max: maxJenkinsUserLen}
	if err := tmpl.Execute(w, struct{ User string }{user}); err != nil {
		if errors.Is(err, errTooLong) {
			return "", fmt.Errorf("the Jenkins user id it gives is longer than %d bytes", maxJenkinsUserLen)
		}
		return "", err
	}
	out := w.b.String()
	if strings.TrimSpace(out) == "" {
		return "", errors.New("the Jenkins user id it gives is empty")
	}
	if strings.ContainsFunc(out, isControl) {
		return "", errors.New("the Jenkins user id it gives contains a control character")
	}
	return out, nil
}

// maxJenkinsUserLen bounds a mapped Jenkins user id; it also stops a
// runaway template early.
const maxJenkinsUserLen = 256

var errTooLong = errors.New("output too long")

// limitedBuffer is a bytes.Buffer that refuses to grow past max.
type limitedBuffer struct {
	b   bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if l.b.Len()+len(p) > l.max {
		return 0, errTooLong
	}
	return l.b.Write(p)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// VaultKeys decodes store.vault_key and store.vault_old_keys into AES-256
// keys: current encrypts, and current and old decrypt. It fails if the
// current key is missing or any key is not standard base64 of 32 bytes.
// The error never contains key material.
func (c *Config) VaultKeys() (current [32]byte, old [][32]byte, err error) {
	if c.Store.VaultKey == "" {
		return current, nil, errors.New("config: store.vault_key is not set")
	}
	current, err = decodeKey32(c.Store.VaultKey)
	if err != nil {
		return current, nil, fmt.Errorf("config: store.vault_key: %w", err)
	}
	for i, s := range c.Store.VaultOldKeys {
		k, err := decodeKey32(s)
		if err != nil {
			return [32]byte{}, nil, fmt.Errorf("config: store.vault_old_keys[%d]: %w", i, err)
		}
		old = append(old, k)
	}
	return current, old, nil
}

// WebSessionKey decodes web.session_key (standard base64, at least 32
// bytes). The error never contains key material.
func (c *Config) WebSessionKey() ([]byte, error) {
	k, err := decodeKeyMin(c.Web.SessionKey, 32)
	if err != nil {
		return nil, fmt.Errorf("config: web.session_key: %w", err)
	}
	return k, nil
}

// decodeKey32 decodes a key that must be exactly 32 bytes.
func decodeKey32(s secret.String) ([32]byte, error) {
	var k [32]byte
	b, err := decodeKeyBytes(s)
	if err != nil {
		return k, err
	}
	if len(b) != 32 {
		return k, fmt.Errorf("decodes to %d bytes, want exactly 32; generate one with: openssl rand -base64 32", len(b))
	}
	copy(k[:], b)
	return k, nil
}

// decodeKeyMin decodes a key that must be at least min bytes.
func decodeKeyMin(s secret.String, min int) ([]byte, error) {
	if s == "" {
		return nil, errors.New("not set")
	}
	b, err := decodeKeyBytes(s)
	if err != nil {
		return nil, err
	}
	if len(b) < min {
		return nil, fmt.Errorf("decodes to %d bytes, want at least %d; generate one with: openssl rand -base64 %d", len(b), min, min)
	}
	return b, nil
}

// decodeKeyBytes decodes standard base64. Its errors say what is wrong with
// the encoding, never where: base64.CorruptInputError's offset would hint at
// the key's content.
func decodeKeyBytes(s secret.String) ([]byte, error) {
	v := strings.TrimSpace(s.Reveal())
	b, err := base64.StdEncoding.DecodeString(v)
	if err == nil {
		return b, nil
	}
	if _, err2 := base64.URLEncoding.DecodeString(v); err2 == nil {
		return nil, errors.New("is URL-safe base64; use standard base64 (with + and /), e.g. from: openssl rand -base64 32")
	}
	if _, err2 := base64.RawStdEncoding.DecodeString(v); err2 == nil {
		return nil, errors.New("is base64 without its = padding; use standard padded base64, e.g. from: openssl rand -base64 32")
	}
	return nil, errors.New("is not standard base64; generate one with: openssl rand -base64 32")
}

// ApplyStdioEnv fills jenkins.user and jenkins.api_token, when empty, from
// JENKINS_USER and JENKINS_API_TOKEN, as butler stdio does before
// validating (docs/configuration.md). getenv is usually OSGetenv.
func (c *Config) ApplyStdioEnv(getenv func(string) (string, bool)) {
	if c.Jenkins.User == "" {
		if v, ok := getenv("JENKINS_USER"); ok && v != "" {
			c.Jenkins.User = v
			delete(c.envNotes, "jenkins.user")
		}
	}
	if c.Jenkins.APIToken == "" {
		if v, ok := getenv("JENKINS_API_TOKEN"); ok && v != "" {
			c.Jenkins.APIToken = secret.String(v)
			delete(c.envNotes, "jenkins.api_token")
		}
	}
}

// isLoopbackHost reports whether host (without brackets or port) is
// localhost or a loopback address (127.0.0.0/8, ::1), where plain http
// cannot be intercepted on the network.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
