package config

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/secret"
)

// fakeFiles is the file system Validate sees in these tests.
func fakeFiles(t *testing.T) *ValidateOptions {
	t.Helper()
	ca, err := os.ReadFile(filepath.Join("testdata", "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"ca.pem":       ca,
		"policy.cedar": []byte("permit (principal, action, resource);\n"),
		"notpem.txt":   []byte("hello\n"),
	}
	return &ValidateOptions{ReadFile: func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}}
}

// validBase is a config that every mode accepts: tests change one thing.
func validBase(t *testing.T) *Config {
	t.Helper()
	in := `
server:
  public_url: https://butler.example.com
auth:
  issuer: https://idp.example.com/realms/eng
jenkins:
  url: https://ci.example.com/
  user: alice
  api_token: 11aa22bb33cc
  tls_ca_file: ca.pem
store:
  vault_key: ` + testVaultKey + `
policy:
  file: policy.cedar
`
	c, err := Parse([]byte(in), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestValidate_BaseIsValidInEveryMode(t *testing.T) {
	t.Parallel()
	for _, m := range []Mode{ModeServe, ModeCheck, ModeStdio, ModeAdmin, ModeLink, ModePolicy} {
		if err := validBase(t).ValidateWith(m, fakeFiles(t)); err != nil {
			t.Errorf("ValidateWith(%s): %v", m, err)
		}
	}
}

func TestValidate_Rules(t *testing.T) {
	t.Parallel()
	type test struct {
		name   string
		mode   Mode
		mutate func(*Config)
		want   []string // the fields with a problem; nil for a valid config
		msg    string   // in the first problem's message
	}
	tests := []test{
		// server
		{"listen required", ModeServe, func(c *Config) { c.Server.Listen = "" }, []string{"server.listen"}, "required"},
		{"listen without port", ModeServe, func(c *Config) { c.Server.Listen = "127.0.0.1" }, []string{"server.listen"}, "not host:port"},
		{"listen port not a number", ModeServe, func(c *Config) { c.Server.Listen = "127.0.0.1:http" }, []string{"server.listen"}, "port must be a number"},
		{"listen port too large", ModeServe, func(c *Config) { c.Server.Listen = ":65536" }, []string{"server.listen"}, "port must be a number"},
		{"listen on all interfaces", ModeServe, func(c *Config) { c.Server.Listen = ":8080" }, nil, ""},
		{"listen on IPv6", ModeServe, func(c *Config) { c.Server.Listen = "[::1]:8080" }, nil, ""},
		{"public_url required", ModeServe, func(c *Config) { c.Server.PublicURL = "" }, []string{"server.public_url"}, "required"},
		{"public_url relative", ModeServe, func(c *Config) { c.Server.PublicURL = "butler.example.com" }, []string{"server.public_url"}, "absolute"},
		{"public_url other scheme", ModeServe, func(c *Config) { c.Server.PublicURL = "ftp://butler.example.com" }, []string{"server.public_url"}, "absolute http(s)"},
		{"public_url http", ModeServe, func(c *Config) { c.Server.PublicURL = "http://butler.example.com" }, []string{"server.public_url"}, "must use https"},
		{"public_url http on a public IP", ModeServe, func(c *Config) { c.Server.PublicURL = "http://10.0.0.1:8080" }, []string{"server.public_url"}, "must use https"},
		{"public_url http on localhost", ModeServe, func(c *Config) { c.Server.PublicURL = "http://localhost:8080" }, nil, ""},
		{"public_url http on 127.x", ModeServe, func(c *Config) { c.Server.PublicURL = "http://127.0.0.2:8080" }, nil, ""},
		{"public_url http on ::1", ModeServe, func(c *Config) { c.Server.PublicURL = "http://[::1]:8080" }, nil, ""},
		{"public_url with path", ModeServe, func(c *Config) { c.Server.PublicURL = "https://example.com/butler" }, nil, ""},
		{"public_url with query", ModeServe, func(c *Config) { c.Server.PublicURL = "https://butler.example.com/?x=1" }, []string{"server.public_url"}, "query"},
		{"public_url with fragment", ModeServe, func(c *Config) { c.Server.PublicURL = "https://butler.example.com/#x" }, []string{"server.public_url"}, "fragment"},
		{"public_url with user info", ModeServe, func(c *Config) { c.Server.PublicURL = "https://u:pw@butler.example.com" }, []string{"server.public_url"}, "user info"},
		{"origin null", ModeServe, func(c *Config) { c.Server.AllowedOrigins = []string{"null"} }, []string{"server.allowed_origins[0]"}, "never allowed"},
		{"origin with path", ModeServe, func(c *Config) { c.Server.AllowedOrigins = []string{"https://a.example.com/app"} }, []string{"server.allowed_origins[0]"}, "no path"},
		{"origin without scheme", ModeServe, func(c *Config) { c.Server.AllowedOrigins = []string{"a.example.com"} }, []string{"server.allowed_origins[0]"}, "scheme://host"},
		{"origin wildcard", ModeServe, func(c *Config) { c.Server.AllowedOrigins = []string{"https://*.example.com"} }, []string{"server.allowed_origins[0]"}, "wildcards"},
		{"origins valid", ModeServe, func(c *Config) {
			c.Server.AllowedOrigins = []string{"https://a.example.com", "http://localhost:3000/", "vscode-file://vscode-app"}
		}, nil, ""},
		{"metrics_listen not host:port", ModeServe, func(c *Config) { c.Server.MetricsListen = "localhost" }, []string{"server.metrics_listen"}, "host:port"},
		{"metrics_listen valid", ModeServe, func(c *Config) { c.Server.MetricsListen = "127.0.0.1:9090" }, nil, ""},

		// auth
		{"issuer required", ModeServe, func(c *Config) { c.Auth.Issuer = "" }, []string{"auth.issuer"}, "required"},
		{"issuer relative", ModeServe, func(c *Config) { c.Auth.Issuer = "idp.example.com" }, []string{"auth.issuer"}, "absolute"},
		{"issuer http", ModeServe, func(c *Config) { c.Auth.Issuer = "http://idp.example.com" }, []string{"auth.issuer"}, "https"},
		{"issuer http on loopback", ModeServe, func(c *Config) { c.Auth.Issuer = "http://127.0.0.1:9000/" }, nil, ""},
		{"issuer with query", ModeServe, func(c *Config) { c.Auth.Issuer = "https://idp.example.com?tenant=1" }, []string{"auth.issuer"}, "query"},
		{"audience entry empty", ModeServe, func(c *Config) { c.Auth.Audience = []string{"api://butler", " "} }, []string{"auth.audience[1]"}, "must not be empty"},
		{"jwks_url relative", ModeServe, func(c *Config) { c.Auth.JWKSURL = "/certs" }, []string{"auth.jwks_url"}, "absolute"},
		{"jwks_url http", ModeServe, func(c *Config) { c.Auth.JWKSURL = "http://idp.example.com/certs" }, []string{"auth.jwks_url"}, "https"},
		{"jwks_url valid", ModeServe, func(c *Config) { c.Auth.JWKSURL = "https://idp.example.com/certs?v=1" }, nil, ""},
		{"algorithms empty", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{} }, []string{"auth.algorithms"}, "at least one"},
		{"algorithm none", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"RS256", "none"} }, []string{"auth.algorithms[1]"}, "unsigned"},
		{"algorithm HS256", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"HS256"} }, []string{"auth.algorithms[0]"}, "could forge tokens"},
		{"algorithm HS384", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"HS384"} }, []string{"auth.algorithms[0]"}, "symmetric"},
		{"algorithm HS512", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"HS512"} }, []string{"auth.algorithms[0]"}, "symmetric"},
		{"algorithm lower case", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"rs256"} }, []string{"auth.algorithms[0]"}, "case-sensitive: RS256"},
		{"algorithm unknown", ModeServe, func(c *Config) { c.Auth.Algorithms = []string{"RSA-OAEP"} }, []string{"auth.algorithms[0]"}, "not a supported algorithm"},
		{"algorithms all supported", ModeServe, func(c *Config) { c.Auth.Algorithms = supportedAlgorithms() }, nil, ""},
		{"clock_skew negative", ModeServe, func(c *Config) { c.Auth.ClockSkew = -time.Second }, []string{"auth.clock_skew"}, "out of range"},
		{"clock_skew too large", ModeServe, func(c *Config) { c.Auth.ClockSkew = 5*time.Minute + time.Second }, []string{"auth.clock_skew"}, "out of range"},
		{"clock_skew bounds", ModeServe, func(c *Config) { c.Auth.ClockSkew = 5 * time.Minute }, nil, ""},
		{"clock_skew zero", ModeServe, func(c *Config) { c.Auth.ClockSkew = 0 }, nil, ""},
		{"jwks_min_refresh too short", ModeServe, func(c *Config) { c.Auth.JWKSMinRefresh = 999 * time.Millisecond }, []string{"auth.jwks_min_refresh"}, "at least 1s"},
		{"jwks_min_refresh 1s", ModeServe, func(c *Config) { c.Auth.JWKSMinRefresh = time.Second }, nil, ""},
		{"introspection needs client", ModeServe, func(c *Config) { c.Auth.Introspection.URL = "https://idp.example.com/introspect" },
			[]string{"auth.introspection.client_id", "auth.introspection.client_secret"}, "required when auth.introspection.url is set"},
		{"introspection url relative", ModeServe, func(c *Config) {
			c.Auth.Introspection = Introspection{URL: "introspect", ClientID: "b", ClientSecret: "s", CacheTTL: time.Minute}
		}, []string{"auth.introspection.url"}, "absolute"},
		{"introspection url http", ModeServe, func(c *Config) {
			c.Auth.Introspection = Introspection{URL: "http://idp.example.com/i", ClientID: "b", ClientSecret: "s", CacheTTL: time.Minute}
		}, []string{"auth.introspection.url"}, "https"},
		{"introspection complete", ModeServe, func(c *Config) {
			c.Auth.Introspection = Introspection{URL: "https://idp.example.com/i", ClientID: "b", ClientSecret: "s", CacheTTL: 0}
		}, nil, ""},
		{"cache_ttl too long", ModeServe, func(c *Config) { c.Auth.Introspection.CacheTTL = 11 * time.Minute }, []string{"auth.introspection.cache_ttl"}, "out of range"},
		{"cache_ttl negative", ModeServe, func(c *Config) { c.Auth.Introspection.CacheTTL = -time.Second }, []string{"auth.introspection.cache_ttl"}, "out of range"},
		{"user_claim empty", ModeServe, func(c *Config) { c.Auth.UserClaim = "" }, []string{"auth.user_claim"}, "must name a claim"},
		{"groups_claim empty", ModeServe, func(c *Config) { c.Auth.GroupsClaim = "" }, []string{"auth.groups_claim"}, "must name a claim"},
		{"groups_claim empty segment", ModeServe, func(c *Config) { c.Auth.GroupsClaim = "realm_access..roles" }, []string{"auth.groups_claim"}, "empty segment"},
		{"claims dotted", ModeServe, func(c *Config) {
			c.Auth.UserClaim = "ext.login"
			c.Auth.GroupsClaim = "resource_access.butler.roles"
		}, nil, ""},
		{"scopes_supported empty", ModeServe, func(c *Config) { c.Auth.ScopesSupported = []string{} }, []string{"auth.scopes_supported"}, "at least one"},
		{"scope with a space", ModeServe, func(c *Config) {
			c.Auth.ScopesSupported = append(c.Auth.ScopesSupported, "jenkins admin")
		}, []string{"auth.scopes_supported[2]"}, "white space"},
		{"scope with a quote", ModeServe, func(c *Config) {
			c.Auth.ScopesSupported = append(c.Auth.ScopesSupported, `a"b`)
		}, []string{"auth.scopes_supported[2]"}, "does not allow"},
		{"scope empty", ModeServe, func(c *Config) { c.Auth.ScopesSupported = append(c.Auth.ScopesSupported, "") }, []string{"auth.scopes_supported[2]"}, "must not be empty"},
		{"tool_scopes unknown tool", ModeServe, func(c *Config) { c.Auth.ToolScopes["trigger"] = []string{"jenkins:build"} }, []string{"auth.tool_scopes.trigger"}, "unknown tool"},
		{"tool_scopes scope not supported", ModeServe, func(c *Config) { c.Auth.ToolScopes["get_job"] = []string{"jenkins:admin"} }, []string{"auth.tool_scopes.get_job[0]"}, `"jenkins:admin" is not in auth.scopes_supported`},
		{"tool_scopes default not supported", ModeServe, func(c *Config) { c.Auth.ScopesSupported = []string{"ci:read"} },
			[]string{"auth.tool_scopes.cancel_queue_item[0]", "auth.tool_scopes.default[0]", "auth.tool_scopes.stop_build[0]", "auth.tool_scopes.submit_input[0]", "auth.tool_scopes.trigger_job[0]"},
			"is the default for cancel_queue_item"},
		{"tool_scopes empty scope", ModeServe, func(c *Config) { c.Auth.ToolScopes["get_job"] = []string{""} }, []string{"auth.tool_scopes.get_job[0]"}, "must not be empty"},
		{"tool_scopes every tool name", ModeServe, func(c *Config) {
			for _, n := range catalog.Names() {
				c.Auth.ToolScopes[n] = []string{}
			}
		}, nil, ""},

		// jenkins
		{"jenkins url required for serve", ModeServe, func(c *Config) { c.Jenkins.URL = "" }, []string{"jenkins.url"}, "required"},
		{"jenkins url required for stdio", ModeStdio, func(c *Config) { c.Jenkins.URL = "" }, []string{"jenkins.url"}, "required"},
		{"jenkins url required for link", ModeLink, func(c *Config) { c.Jenkins.URL = "" }, []string{"jenkins.url"}, "required"},
		{"jenkins url relative", ModeServe, func(c *Config) { c.Jenkins.URL = "ci.example.com" }, []string{"jenkins.url"}, "absolute"},
		{"jenkins url scheme", ModeServe, func(c *Config) { c.Jenkins.URL = "ftp://ci.example.com/" }, []string{"jenkins.url"}, "absolute http(s)"},
		{"jenkins url query", ModeServe, func(c *Config) { c.Jenkins.URL = "https://ci.example.com/?a=b" }, []string{"jenkins.url"}, "query"},
		{"jenkins url user info", ModeServe, func(c *Config) { c.Jenkins.URL = "https://admin:pw@ci.example.com/" }, []string{"jenkins.url"}, "user info"},
		{"jenkins url plain http", ModeServe, func(c *Config) { c.Jenkins.URL = "http://jenkins.internal:8080/jenkins/" }, nil, ""},
		{"credentials unknown", ModeServe, func(c *Config) { c.Jenkins.Credentials = "shared_account" }, []string{"jenkins.credentials"}, "per_user_token or token_exchange"},
		{"token_exchange incomplete", ModeServe, func(c *Config) { c.Jenkins.Credentials = CredentialsTokenExchange },
			[]string{"jenkins.token_exchange.audience", "jenkins.token_exchange.client_id", "jenkins.token_exchange.client_secret"}, "required with jenkins.credentials: token_exchange"},
		{"token_exchange complete", ModeServe, func(c *Config) {
			c.Jenkins.Credentials = CredentialsTokenExchange
			c.Jenkins.TokenExchange = TokenExchange{Audience: "jenkins", ClientID: "b", ClientSecret: "s"}
		}, nil, ""},
		{"user_template does not parse", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = "{{.User" }, []string{"jenkins.user_template"}, "not a valid Go text/template"},
		{"user_template unknown field", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = "{{.Name}}" }, []string{"jenkins.user_template"}, "fails for the sample user"},
		{"user_template unknown function", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = "{{nope .User}}" }, []string{"jenkins.user_template"}, "not a valid Go text/template"},
		{"user_template empty result", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = "{{if false}}x{{end}}" }, []string{"jenkins.user_template"}, "empty"},
		{"user_template empty", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = "" }, []string{"jenkins.user_template"}, "empty"},
		{"user_template checked for link", ModeLink, func(c *Config) { c.Jenkins.UserTemplate = "{{.Name}}" }, []string{"jenkins.user_template"}, "fails"},
		{"user_template with functions", ModeServe, func(c *Config) { c.Jenkins.UserTemplate = `{{index (split "@" .User) 0 | upper}}` }, nil, ""},
		{"timeout zero", ModeServe, func(c *Config) { c.Jenkins.Timeout = 0 }, []string{"jenkins.timeout"}, "out of range"},
		{"timeout too long", ModeStdio, func(c *Config) { c.Jenkins.Timeout = 6 * time.Minute }, []string{"jenkins.timeout"}, "out of range"},
		{"timeout 5m", ModeServe, func(c *Config) { c.Jenkins.Timeout = 5 * time.Minute }, nil, ""},
		{"tls_ca_file missing", ModeServe, func(c *Config) { c.Jenkins.TLSCAFile = "missing.pem" }, []string{"jenkins.tls_ca_file"}, "cannot read"},
		{"tls_ca_file not PEM", ModeStdio, func(c *Config) { c.Jenkins.TLSCAFile = "notpem.txt" }, []string{"jenkins.tls_ca_file"}, "no PEM certificate"},
		{"stdio needs the user's credential", ModeStdio, func(c *Config) { c.Jenkins.User, c.Jenkins.APIToken = "", "" },
			[]string{"jenkins.user", "jenkins.api_token"}, "JENKINS_USER"},

		// store
		{"dsn required", ModeServe, func(c *Config) { c.Store.DSN = "" }, []string{"store.dsn"}, "required"},
		{"dsn required for admin", ModeAdmin, func(c *Config) { c.Store.DSN = "" }, []string{"store.dsn"}, "required"},
		{"dsn unknown scheme", ModeServe, func(c *Config) { c.Store.DSN = "mysql://u:pw@db/butler" }, []string{"store.dsn"}, `scheme "mysql" is not supported`},
		{"dsn no scheme", ModeServe, func(c *Config) { c.Store.DSN = "butler.db" }, []string{"store.dsn"}, "sqlite:PATH or a postgres:// URL"},
		{"dsn sqlite without path", ModeServe, func(c *Config) { c.Store.DSN = "sqlite:" }, []string{"store.dsn"}, "needs a file path"},
		{"dsn sqlite URL", ModeServe, func(c *Config) { c.Store.DSN = "sqlite:///var/lib/butler.db" }, []string{"store.dsn"}, "plain file path"},
		{"dsn sqlite memory", ModeServe, func(c *Config) { c.Store.DSN = "sqlite::memory:" }, nil, ""},
		{"dsn sqlite absolute", ModeServe, func(c *Config) { c.Store.DSN = "sqlite:/var/lib/butler/butler.db" }, nil, ""},
		{"dsn postgres", ModeServe, func(c *Config) { c.Store.DSN = "postgres://butler:pw@db:5432/butler?sslmode=require" }, nil, ""},
		{"dsn postgresql", ModeAdmin, func(c *Config) { c.Store.DSN = "postgresql://butler@db/butler" }, nil, ""},
		{"dsn postgres no database", ModeServe, func(c *Config) { c.Store.DSN = "postgres://butler:pw@db:5432" }, []string{"store.dsn"}, "names no database"},
		{"dsn postgres unparsable", ModeServe, func(c *Config) { c.Store.DSN = "postgres://butler:p w@db/butler" }, []string{"store.dsn"}, "not a valid postgres:// URL"},
		{"dsn postgres opaque", ModeServe, func(c *Config) { c.Store.DSN = "postgres:butler" }, []string{"store.dsn"}, "not a valid postgres:// URL"},
		{"vault_key required for per_user_token", ModeServe, func(c *Config) { c.Store.VaultKey = "" }, []string{"store.vault_key"}, "required"},
		{"vault_key required for check", ModeCheck, func(c *Config) { c.Store.VaultKey = "" }, []string{"store.vault_key"}, "required"},
		{"vault_key required for link", ModeLink, func(c *Config) { c.Store.VaultKey = "" }, []string{"store.vault_key"}, "required"},
		{"vault_key optional for admin", ModeAdmin, func(c *Config) { c.Store.VaultKey = "" }, nil, ""},
		{"vault_key optional for token_exchange", ModeServe, func(c *Config) {
			c.Store.VaultKey = ""
			c.Jenkins.Credentials = CredentialsTokenExchange
			c.Jenkins.TokenExchange = TokenExchange{Audience: "jenkins", ClientID: "b", ClientSecret: "s"}
		}, nil, ""},
		{"vault_key checked when set for admin", ModeAdmin, func(c *Config) { c.Store.VaultKey = "short" }, []string{"store.vault_key"}, "not standard base64"},
		{"vault_key checked when set for token_exchange", ModeServe, func(c *Config) {
			c.Store.VaultKey = "c2hvcnQ="
			c.Jenkins.Credentials = CredentialsTokenExchange
			c.Jenkins.TokenExchange = TokenExchange{Audience: "jenkins", ClientID: "b", ClientSecret: "s"}
		}, []string{"store.vault_key"}, "decodes to 5 bytes, want exactly 32"},
		{"vault_key 33 bytes", ModeServe, func(c *Config) { c.Store.VaultKey = secret.String(b64(33)) }, []string{"store.vault_key"}, "want exactly 32"},
		{"vault_key URL-safe", ModeServe, func(c *Config) { c.Store.VaultKey = "_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-8=" }, []string{"store.vault_key"}, "URL-safe"},
		{"vault_key unpadded", ModeServe, func(c *Config) { c.Store.VaultKey = secret.String(strings.TrimRight(testVaultKey, "=")) }, []string{"store.vault_key"}, "padding"},
		{"vault_old_keys checked", ModeAdmin, func(c *Config) { c.Store.VaultOldKeys = []secret.String{testOldVaultKey, "bm9wZQ==", ""} },
			[]string{"store.vault_old_keys[1]", "store.vault_old_keys[2]"}, "want exactly 32"},

		// policy
		{"policy file missing", ModeServe, func(c *Config) { c.Policy.File = "nope.cedar" }, []string{"policy.file"}, "cannot read"},
		{"policy file missing for stdio", ModeStdio, func(c *Config) { c.Policy.File = "nope.cedar" }, []string{"policy.file"}, "cannot read"},
		{"policy file missing for policy explain", ModePolicy, func(c *Config) { c.Policy.File = "nope.cedar" }, []string{"policy.file"}, "cannot read"},
		{"policy built in", ModeServe, func(c *Config) { c.Policy.File = "" }, nil, ""},

		// limits
		{"rps zero", ModeServe, func(c *Config) { c.Limits.PerUserRPS = 0 }, []string{"limits.per_user_rps"}, "above 0"},
		{"rps negative", ModeServe, func(c *Config) { c.Limits.PerUserRPS = -1 }, []string{"limits.per_user_rps"}, "above 0"},
		{"rps NaN", ModeServe, func(c *Config) { c.Limits.PerUserRPS = math.NaN() }, []string{"limits.per_user_rps"}, "above 0"},
		{"rps infinite", ModeServe, func(c *Config) { c.Limits.PerUserRPS = math.Inf(1) }, []string{"limits.per_user_rps"}, "above 0"},
		{"rps fraction", ModeServe, func(c *Config) { c.Limits.PerUserRPS = 0.5 }, nil, ""},
		{"burst zero", ModeServe, func(c *Config) { c.Limits.Burst = 0 }, []string{"limits.burst"}, "at least 1"},
		{"burst one", ModeServe, func(c *Config) { c.Limits.Burst = 1 }, nil, ""},
		{"redis_url scheme", ModeServe, func(c *Config) { c.Limits.RedisURL = "https://redis.example.com" }, []string{"limits.redis_url"}, "redis:// or rediss://"},
		{"redis_url no host", ModeServe, func(c *Config) { c.Limits.RedisURL = "redis:///0" }, []string{"limits.redis_url"}, "no host"},
		{"redis_url unparsable", ModeServe, func(c *Config) { c.Limits.RedisURL = "redis://:p w@r:6379" }, []string{"limits.redis_url"}, "not a valid URL"},
		{"redis_url valid", ModeServe, func(c *Config) { c.Limits.RedisURL = "rediss://:pw@redis.example.com:6380/0" }, nil, ""},

		// web
		{"web needs a session key", ModeServe, func(c *Config) { c.Web.ClientID = "butler-web" },
			[]string{"web.session_key"}, "required when web.client_id is set"},
		{"web public client", ModeServe, func(c *Config) {
			c.Web = Web{ClientID: "butler-web", SessionKey: secret.String(b64(32))}
		}, nil, ""},

		{"web session key too short", ModeServe, func(c *Config) {
			c.Web = Web{ClientID: "butler-web", ClientSecret: "s", SessionKey: secret.String(b64(31))}
		}, []string{"web.session_key"}, "want at least 32"},
		{"web session key not base64", ModeServe, func(c *Config) {
			c.Web = Web{ClientID: "butler-web", ClientSecret: "s", SessionKey: "not base64!"}
		}, []string{"web.session_key"}, "not standard base64"},
		{"web complete", ModeServe, func(c *Config) {
			c.Web = Web{ClientID: "butler-web", ClientSecret: "s", SessionKey: secret.String(b64(64))}
		}, nil, ""},
		{"web disabled ignores session key", ModeServe, func(c *Config) { c.Web.SessionKey = "junk" }, nil, ""},

		// log, checked in every mode
		{"log level", ModeAdmin, func(c *Config) { c.Log.Level = "verbose" }, []string{"log.level"}, "debug, info, warn or error"},
		{"log level upper case", ModePolicy, func(c *Config) { c.Log.Level = "INFO" }, []string{"log.level"}, "lower case"},
		{"log format", ModeStdio, func(c *Config) { c.Log.Format = "xml" }, []string{"log.format"}, "json or text"},

		// what each mode leaves alone
		{"stdio ignores serve settings", ModeStdio, func(c *Config) {
			c.Server = Server{}
			c.Auth = Auth{}
			c.Store = Store{}
			c.Limits = Limits{}
			c.Web = Web{ClientID: "x"}
			c.Jenkins.Credentials = "bogus"
			c.Jenkins.UserTemplate = "{{"
		}, nil, ""},
		{"admin ignores Jenkins and auth", ModeAdmin, func(c *Config) {
			c.Server = Server{}
			c.Auth = Auth{}
			c.Jenkins = Jenkins{}
			c.Policy.File = "nope.cedar"
		}, nil, ""},
		{"policy mode ignores the rest", ModePolicy, func(c *Config) {
			c.Server = Server{}
			c.Auth = Auth{}
			c.Jenkins = Jenkins{}
			c.Store = Store{}
		}, nil, ""},
		{"serve ignores the stdio credential", ModeServe, func(c *Config) { c.Jenkins.User, c.Jenkins.APIToken = "", "" }, nil, ""},
		{"check is as strict as serve", ModeCheck, func(c *Config) { c.Server.PublicURL = "" }, []string{"server.public_url"}, "required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := validBase(t)
			tt.mutate(c)
			err := c.ValidateWith(tt.mode, fakeFiles(t))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("ValidateWith(%s) = %v; want nil", tt.mode, err)
				}
				return
			}
			ps := problemsOf(t, err)
			if diff := cmp.Diff(tt.want, fields(ps)); diff != "" {
				t.Fatalf("ValidateWith(%s) problem fields (-want +got):\n%s\n%v", tt.mode, diff, err)
			}
			if !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("message %q does not contain %q", ps[0].Message, tt.msg)
			}
		})
	}
}

// b64 returns the standard base64 of n bytes.
func b64(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return encodeStd(b)
}

func TestValidate_ReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	in := `
server:
  listen: nowhere
  public_url: http://butler.example.com
  allowed_origins: ["null"]
auth:
  algorithms: [HS256, none]
  clock_skew: 1h
jenkins:
  credentials: shared
  timeout: 0s
store:
  dsn: mysql://db/butler
limits:
  burst: 0
log:
  level: loud
  format: xml
`
	c, err := Parse([]byte(in), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidateWith(ModeServe, fakeFiles(t))
	ps := problemsOf(t, err)
	want := []string{
		"server.listen", "server.public_url", "server.allowed_origins[0]",
		"auth.issuer", "auth.algorithms[0]", "auth.algorithms[1]", "auth.clock_skew",
		"jenkins.url", "jenkins.timeout", "jenkins.credentials",
		"store.dsn", "store.vault_key",
		"limits.burst", "log.level", "log.format",
	}
	if diff := cmp.Diff(want, fields(ps)); diff != "" {
		t.Errorf("problem fields (-want +got):\n%s", diff)
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("Error() has %d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, l := range lines {
		if !strings.HasPrefix(l, want[i]+": ") {
			t.Errorf("line %d = %q; want it to start with %q", i, l, want[i]+": ")
		}
	}
}

func TestValidate_ErrorsAsThroughWrapping(t *testing.T) {
	t.Parallel()
	c := validBase(t)
	c.Log.Level = "loud"
	err := fmt.Errorf("butler: %w", c.ValidateWith(ModeServe, fakeFiles(t)))
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("errors.As(%v, *Problems) = false", err)
	}
	if diff := cmp.Diff(Problems{{Field: "log.level", Message: `"loud" is not a level; want debug, info, warn or error (lower case)`}}, ps); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

func TestValidate_UnknownMode(t *testing.T) {
	t.Parallel()
	if err := validBase(t).ValidateWith(Mode(42), fakeFiles(t)); err == nil || !strings.Contains(err.Error(), "Mode(42)") {
		t.Errorf("ValidateWith(Mode(42)) = %v; want an unknown mode error", err)
	}
}

func TestValidate_MessageNamesUnsetVariable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in string
		env      map[string]string
		field    string
		want     string
	}{
		{"written in the file", "store:\n  vault_key: ${BUTLER_VAULT_KEY}\n", nil,
			"store.vault_key", "store.vault_key: required: the standard base64 of 32 random bytes that encrypt stored Jenkins tokens; generate one with: openssl rand -base64 32 (it is ${BUTLER_VAULT_KEY}, which is not set)"},
		{"the default", "", nil,
			"store.vault_key", "(it defaults to ${BUTLER_VAULT_KEY}, which is not set)"},
		{"the default, empty", "", map[string]string{"BUTLER_VAULT_KEY": ""},
			"store.vault_key", "(it defaults to ${BUTLER_VAULT_KEY}, which is set but empty)"},
		{"set but empty", "jenkins:\n  url: ${JENKINS_URL}\n", map[string]string{"JENKINS_URL": ""},
			"jenkins.url", "(it is ${JENKINS_URL}, which is set but empty)"},
		{"inside a value", "server:\n  public_url: https://${HOST}/butler\n", nil,
			"server.public_url", "(it uses ${HOST}, which is not set)"},
		{"two variables", "auth:\n  issuer: ${SCHEME}://${HOST}/realms/eng\n", nil,
			"auth.issuer", "(it uses ${HOST} and ${SCHEME}, which are not set)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte(tt.in), envMap(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			err = c.ValidateWith(ModeServe, fakeFiles(t))
			for _, p := range problemsOf(t, err) {
				if p.Field == tt.field {
					if !strings.Contains(p.String(), tt.want) {
						t.Errorf("problem %q does not contain %q", p.String(), tt.want)
					}
					return
				}
			}
			t.Errorf("no problem on %s in:\n%v", tt.field, err)
		})
	}
}

func TestValidate_SetVariableHasNoNote(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("log:\n  level: ${LEVEL}\n"), envMap(map[string]string{"LEVEL": "loud"}))
	if err != nil {
		t.Fatal(err)
	}
	err = c.ValidateWith(ModeAdmin, fakeFiles(t))
	if err == nil || strings.Contains(err.Error(), "${LEVEL}") {
		t.Errorf("ValidateWith = %v; want a problem without a note about ${LEVEL}", err)
	}
}

func TestValidate_StdioCredentialFromEnvironment(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("jenkins:\n  url: https://ci.example.com/\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ValidateWith(ModeStdio, fakeFiles(t)); err == nil {
		t.Fatal("ValidateWith(stdio) without a credential = nil")
	}
	c.ApplyStdioEnv(envMap(map[string]string{"JENKINS_USER": "alice", "JENKINS_API_TOKEN": "11aa"}))
	if err := c.ValidateWith(ModeStdio, fakeFiles(t)); err != nil {
		t.Errorf("ValidateWith(stdio) after ApplyStdioEnv = %v", err)
	}
}

func TestValidate_ReadsRealFilesByDefault(t *testing.T) {
	t.Parallel()
	c := validBase(t)
	c.Jenkins.TLSCAFile = filepath.Join("testdata", "ca.pem")
	c.Policy.File = filepath.Join("testdata", "policy.cedar")
	if err := c.Validate(ModeServe); err != nil {
		t.Errorf("Validate = %v", err)
	}
	c.Policy.File = filepath.Join(t.TempDir(), "missing.cedar")
	if err := c.Validate(ModeServe); err == nil || !strings.Contains(err.Error(), "policy.file: cannot read it") {
		t.Errorf("Validate with a missing policy file = %v", err)
	}
}
