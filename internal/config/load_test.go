package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"gopkg.in/yaml.v3"

	"github.com/butler-mcp/butler/internal/secret"
)

// ignoreBookkeeping compares Configs by their settings only.
var ignoreBookkeeping = cmpopts.IgnoreUnexported(Config{})

// envMap returns a getenv that looks names up in m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func noEnv(string) (string, bool) { return "", false }

// Keys for tests: standard base64 of 32 bytes.
const (
	testVaultKey    = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
	testOldVaultKey = "Hx4dHBsaGRgXFhUUExIREA8ODQwLCgkIBwYFBAMCAQA="
	testSessionKey  = "c2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXktc2Vzc2lvbi1rZXk="
)

// fullEnv is the environment testdata/full.yaml expects.
func fullEnv() map[string]string {
	return map[string]string{
		"INTROSPECTION_SECRET": "introspection-s3cret",
		"JENKINS_API_TOKEN":    "11aa22bb33cc",
		"EXCHANGE_SECRET":      "exchange-s3cret",
		"PGPASSWORD":           "pg-s3cret",
		"BUTLER_VAULT_KEY":     testVaultKey,
		"BUTLER_OLD_VAULT_KEY": testOldVaultKey,
		"REDIS_PASSWORD":       "redis-s3cret",
		"WEB_SECRET":           "web-s3cret",
		"BUTLER_SESSION_KEY":   testSessionKey,
		"OTLP_API_KEY":         "otlp-s3cret",
	}
}

// problemsOf extracts the Problems of err, failing the test if there are
// none.
func problemsOf(t *testing.T, err error) Problems {
	t.Helper()
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error %v (%T) is not a Problems", err, err)
	}
	return ps
}

func fields(ps Problems) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Field
	}
	return out
}

func TestParse_EmptyFileGivesDefaults(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		"",
		"# only a comment\n",
		"---\n",
		"~\n",
		"server:\nauth:\n  introspection:\n",
		"server:\n  listen: ~\n  allowed_origins:\nauth:\n  tool_scopes:\n    trigger_job:\n",
	} {
		got, err := Parse([]byte(in), noEnv)
		if err != nil {
			t.Errorf("Parse(%q): %v", in, err)
			continue
		}
		if diff := cmp.Diff(Default(), got, ignoreBookkeeping); diff != "" {
			t.Errorf("Parse(%q) differs from Default() (-want +got):\n%s", in, diff)
		}
	}
}

func TestDefault_MatchesContract(t *testing.T) {
	t.Parallel()
	want := &Config{
		Server: Server{Listen: "127.0.0.1:8080", MaxSessions: 10000, MaxSessionsPerUser: 50, SessionIdleTimeout: 30 * time.Minute,
			MaxUnauthenticatedInflight: 64},
		Auth: Auth{
			Algorithms:      []string{"RS256", "ES256", "PS256", "EdDSA"},
			ClockSkew:       30 * time.Second,
			JWKSMinRefresh:  10 * time.Second,
			Introspection:   Introspection{CacheTTL: 60 * time.Second},
			UserClaim:       "sub",
			GroupsClaim:     "groups",
			ScopesSupported: []string{"jenkins:read", "jenkins:build"},
			ToolScopes: map[string][]string{
				"default":           {"jenkins:read"},
				"health":            {},
				"trigger_job":       {"jenkins:build"},
				"stop_build":        {"jenkins:build"},
				"cancel_queue_item": {"jenkins:build"},
				"submit_input":      {"jenkins:build"},
			},
		},
		Jenkins:   Jenkins{Credentials: "per_user_token", UserTemplate: "{{.User}}", Timeout: 15 * time.Second},
		Store:     Store{DSN: "sqlite:butler.db", Timeout: 5 * time.Second},
		Limits:    Limits{PerUserRPS: 10, Burst: 20},
		Audit:     Audit{Buffer: 100000},
		Log:       Log{Level: "info", Format: "json"},
		Telemetry: Telemetry{Traces: Traces{Protocol: "http", SampleRatio: 1, ServiceName: "butler", JenkinsTraceparent: true}},
	}
	if diff := cmp.Diff(want, Default(), ignoreBookkeeping); diff != "" {
		t.Errorf("Default() (-want +got):\n%s", diff)
	}
}

func TestDefault_ReturnsFreshValues(t *testing.T) {
	t.Parallel()
	a := Default()
	a.Auth.ToolScopes["default"] = nil
	a.Auth.Algorithms[0] = "none"
	b := Default()
	if got := b.Auth.ToolScopes["default"]; !cmp.Equal(got, []string{"jenkins:read"}) {
		t.Errorf("a second Default() sees the first one's change: tool_scopes.default = %q", got)
	}
	if b.Auth.Algorithms[0] != "RS256" {
		t.Errorf("a second Default() sees the first one's change: algorithms = %q", b.Auth.Algorithms)
	}
}

// wantFull is testdata/full.yaml decoded with fullEnv.
func wantFull() *Config {
	return &Config{
		Server: Server{
			Listen:         "0.0.0.0:9443",
			PublicURL:      "https://butler.example.com",
			AllowedOrigins: []string{"https://app.example.com", "vscode-file://vscode-app"},
			Stateless:      true,
			MetricsListen:  "127.0.0.1:9090",

			MaxSessions:                500,
			MaxSessionsPerUser:         5,
			SessionIdleTimeout:         10 * time.Minute,
			MaxUnauthenticatedInflight: 32,
		},
		Auth: Auth{
			Issuer:         "https://idp.example.com/realms/eng",
			Audience:       []string{"https://butler.example.com/mcp", "api://butler"},
			JWKSURL:        "https://idp.example.com/realms/eng/protocol/openid-connect/certs",
			Algorithms:     []string{"RS256", "ES384"},
			ClockSkew:      time.Minute,
			JWKSMinRefresh: 30 * time.Second,
			Introspection: Introspection{
				URL:          "https://idp.example.com/realms/eng/protocol/openid-connect/token/introspect",
				ClientID:     "butler-introspect",
				ClientSecret: "introspection-s3cret",
				CacheTTL:     2 * time.Minute,

				AllowMissingAudience: true,
			},
			UserClaim:       "preferred_username",
			GroupsClaim:     "realm_access.roles",
			ScopesSupported: []string{"jenkins:read", "jenkins:build", "jenkins:admin"},
			ToolScopes: map[string][]string{
				"default":           {},
				"health":            {},
				"get_build_log":     {"jenkins:read"},
				"trigger_job":       {"jenkins:build", "jenkins:admin"},
				"stop_build":        {"jenkins:build"},
				"cancel_queue_item": {"jenkins:build"},
				"submit_input":      {"jenkins:build"},
			},
			AllowGuest: true,
		},
		Jenkins: Jenkins{
			URL:          "https://ci.example.com/jenkins/",
			User:         "alice",
			APIToken:     "11aa22bb33cc",
			Credentials:  CredentialsTokenExchange,
			UserTemplate: `{{.User | trimSuffix "@example.com" | lower}}`,
			TokenExchange: TokenExchange{
				Audience:     "jenkins",
				ClientID:     "butler-exchange",
				ClientSecret: "exchange-s3cret",
			},
			Timeout:   45 * time.Second,
			TLSCAFile: "testdata/ca.pem",
		},
		Store: Store{
			DSN:          "postgres://butler:pg-s3cret@db.example.com:5432/butler?sslmode=verify-full",
			VaultKey:     testVaultKey,
			VaultOldKeys: []secret.String{testOldVaultKey},
			Timeout:      3 * time.Second,
		},
		Audit:  Audit{Buffer: 5000, SpoolDir: "testdata"},
		Policy: Policy{File: "testdata/policy.cedar"},
		Limits: Limits{PerUserRPS: 2.5, Burst: 5, RedisURL: "rediss://:redis-s3cret@redis.example.com:6380/0"},
		Web:    Web{ClientID: "butler-web", ClientSecret: "web-s3cret", SessionKey: testSessionKey},
		Log:    Log{Level: "debug", Format: "text"},
		Telemetry: Telemetry{Traces: Traces{
			OTLPEndpoint: "https://otel.example.com:4317", Protocol: "grpc", CAFile: "testdata/ca.pem",
			Headers: map[string]secret.String{"x-api-key": "otlp-s3cret"}, SampleRatio: 0.5, ServiceName: "butler-ci",
		}},
	}
}

func TestLoad_FullExample(t *testing.T) {
	t.Parallel()
	got, err := Load(filepath.Join("testdata", "full.yaml"), envMap(fullEnv()))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(wantFull(), got, ignoreBookkeeping); diff != "" {
		t.Errorf("Load(full.yaml) (-want +got):\n%s", diff)
	}
	// The example is a valid config for every command.
	for _, m := range []Mode{ModeServe, ModeCheck, ModeStdio, ModeAdmin, ModeLink, ModePolicy} {
		if err := got.Validate(m); err != nil {
			t.Errorf("Validate(%s): %v", m, err)
		}
	}
}

func TestParse_FullExampleRoundTrips(t *testing.T) {
	t.Parallel()
	orig, err := Load(filepath.Join("testdata", "full.yaml"), envMap(fullEnv()))
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(orig)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(out, noEnv)
	if err != nil {
		t.Fatalf("Parse(Marshal(config)): %v\n%s", err, out)
	}
	// Marshaling is for display, so secrets come back redacted and
	// everything else unchanged.
	want := wantFull()
	for _, s := range []*secret.String{&want.Auth.Introspection.ClientSecret, &want.Jenkins.APIToken,
		&want.Jenkins.TokenExchange.ClientSecret, &want.Store.VaultKey, &want.Store.VaultOldKeys[0],
		&want.Web.ClientSecret, &want.Web.SessionKey} {
		*s = "[redacted]"
	}
	for k := range want.Telemetry.Traces.Headers {
		want.Telemetry.Traces.Headers[k] = "[redacted]"
	}
	want.Store.DSN = "postgres://butler:xxxxx@db.example.com:5432/butler?sslmode=verify-full"
	want.Limits.RedisURL = "rediss://:xxxxx@redis.example.com:6380/0"
	if diff := cmp.Diff(want, back, ignoreBookkeeping); diff != "" {
		t.Errorf("round trip (-want +got):\n%s\nmarshaled:\n%s", diff, out)
	}
}

func TestParse_UnknownKeyIsRejectedWithNameAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in    string
		field, want string
	}{
		{"top level", "server:\n  listen: :80\nservre: {}\n", "servre", `line 3: unknown key (did you mean "server"?); valid keys in the top level: server, auth, jenkins, store, policy, limits, audit, web, log`},
		{"nested", "server:\n  listen: :80\n  lisen: :81\n", "server.lisen", `line 3: unknown key (did you mean "listen"?)`},
		{"deeper", "auth:\n  introspection:\n    secret: x\n", "auth.introspection.secret", "line 3: unknown key; valid keys in auth.introspection: url, client_id, client_secret, cache_ttl"},
		{"under token_exchange", "jenkins:\n  token_exchange:\n    scope: x\n", "jenkins.token_exchange.scope", "line 3: unknown key"},
		{"anchored", "a: &a {listen: x}\n", "a", "line 1: unknown key"},
		{"merge key in section", "server:\n  <<: {listen: x}\n", "server", "merge keys (<<) are not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse([]byte(tt.in), noEnv)
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Field != tt.field || !strings.Contains(ps[0].Message, tt.want) {
				t.Errorf("Parse(%q) problems = %q; want one on %s containing %q", tt.in, ps, tt.field, tt.want)
			}
		})
	}
}

func TestParse_EveryStructuralProblemIsReported(t *testing.T) {
	t.Parallel()
	in := `
server:
  lisen: :80
  stateless: perhaps
auth:
  algorithms: RS256
  clock_skew: 30
  clock_skew: 31
limits:
  burst: many
web: [client_id]
extra: 1
`
	_, err := Parse([]byte(in), noEnv)
	ps := problemsOf(t, err)
	want := []string{"server.lisen", "server.stateless", "auth.algorithms", "auth.clock_skew", "auth.clock_skew", "limits.burst", "web", "extra"}
	if diff := cmp.Diff(want, fields(ps)); diff != "" {
		t.Errorf("problem fields (-want +got):\n%s\n%v", diff, err)
	}
	if got := strings.Count(err.Error(), "\n") + 1; got != len(want) {
		t.Errorf("Error() has %d lines, want %d:\n%v", got, len(want), err)
	}
}

func TestParse_WrongTypeNamesFieldAndLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, field, want string
	}{
		{"limits:\n  burst: many\n", "limits.burst", `line 2: expected a whole number, got "many"`},
		{"limits:\n  per_user_rps: fast\n", "limits.per_user_rps", `line 2: expected a number, got "fast"`},
		{"server:\n  stateless: perhaps\n", "server.stateless", "line 2: expected true or false"},
		{"auth:\n  clock_skew: 30\n", "auth.clock_skew", `line 2: expected a duration like "30s" or "1m30s", got "30"`},
		{"jenkins:\n  timeout: soon\n", "jenkins.timeout", "line 2: expected a duration"},
		{"server:\n  allowed_origins: https://a.example.com\n", "server.allowed_origins", "line 2: expected a list, like [a, b], got a single value"},
		{"server:\n  listen: [a, b]\n", "server.listen", "line 2: expected a string, got a list"},
		{"server: [listen]\n", "server", "line 1: expected a mapping of keys, got a list"},
		{"- server\n", "(top level)", "line 1: expected a mapping of keys, got a list"},
		{"auth:\n  tool_scopes: [a]\n", "auth.tool_scopes", "line 2: expected a mapping, got a list"},
		{"auth:\n  tool_scopes:\n    default: jenkins:read\n", "auth.tool_scopes.default", "line 3: expected a list"},
		{"auth:\n  tool_scopes:\n    [a]: [b]\n", "auth.tool_scopes", "line 3: a key must be a plain name"},
		{"store:\n  vault_old_keys: [[a]]\n", "store.vault_old_keys[0]", "line 2: expected a string, got a list"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in), noEnv)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Field != tt.field || !strings.Contains(ps[0].Message, tt.want) {
			t.Errorf("Parse(%q) problems = %q; want one on %s containing %q", tt.in, ps, tt.field, tt.want)
		}
	}
}

func TestParse_ScalarsOfOtherTypesAreTextInStringFields(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("jenkins:\n  user: 012345\n  api_token: true\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Jenkins.User != "012345" || c.Jenkins.APIToken.Reveal() != "true" {
		t.Errorf("user = %q, api_token = %q; want the text as written", c.Jenkins.User, c.Jenkins.APIToken.Reveal())
	}
}

func TestParse_DuplicateKeyIsRejected(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, field, want string }{
		{"log: {}\nlog: {}\n", "log", "line 2: duplicate key (first at line 1)"},
		{"server:\n  listen: :80\n  listen: :81\n", "server.listen", "line 3: duplicate key (first at line 2)"},
		{"auth:\n  tool_scopes:\n    trigger_job: []\n    trigger_job: [jenkins:build]\n", "auth.tool_scopes.trigger_job", "line 4: duplicate key (first at line 3)"},
	}
	for _, tt := range tests {
		_, err := Parse([]byte(tt.in), noEnv)
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Field != tt.field || !strings.Contains(ps[0].Message, tt.want) {
			t.Errorf("Parse(%q) problems = %q; want one on %s containing %q", tt.in, ps, tt.field, tt.want)
		}
	}
}

func TestParse_MultipleDocumentsAreRejected(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"log: {}\n---\nserver: {}\n", "log: {}\n---\n"} {
		_, err := Parse([]byte(in), noEnv)
		if err == nil || !strings.Contains(err.Error(), "a second YAML document") {
			t.Errorf("Parse(%q) = %v; want a second-document error", in, err)
		}
	}
	// A document end marker is not a second document.
	if _, err := Parse([]byte("---\nlog: {}\n...\n"), noEnv); err != nil {
		t.Errorf("one document with markers: %v", err)
	}
}

func TestParse_SyntaxErrorHasLine(t *testing.T) {
	t.Parallel()
	_, err := Parse([]byte("server:\n  listen: [\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "line") {
		t.Errorf("Parse(bad YAML) = %v; want a syntax error with its line", err)
	}
}

func TestParse_AliasesAreFollowed(t *testing.T) {
	t.Parallel()
	in := "auth:\n  scopes_supported: &s [a:read, a:write]\n  tool_scopes:\n    default: [a:read]\n    trigger_job: &w [a:write]\n    stop_build: *w\n    cancel_queue_item: *w\n"
	c, err := Parse([]byte(in), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.ScopesFor("stop_build"); !cmp.Equal(got, []string{"a:write"}) {
		t.Errorf("ScopesFor(stop_build) = %q, want [a:write]", got)
	}
	// An alias that contains itself cannot recurse forever.
	if _, err := Parse([]byte("auth:\n  audience: &x [*x]\n"), noEnv); err == nil {
		t.Error("self-referencing alias: want an error")
	}
}

func TestParse_ExpandsEnvironmentInStringValues(t *testing.T) {
	t.Parallel()
	env := map[string]string{"A": "alpha", "EMPTY": "", "NESTED": "${A}", "BURST": "7", "SKEW": "5s", "GUEST": "true"}
	tests := []struct {
		name, value, want string
	}{
		{"whole value", "${A}", "alpha"},
		{"inside text", "pre-${A}-post", "pre-alpha-post"},
		{"twice", "${A}${A}", "alphaalpha"},
		{"unset is empty", "${UNSET}", ""},
		{"set but empty", "x${EMPTY}y", "xy"},
		{"escape", "$${A}", "${A}"},
		{"escape then variable", "$${A}${A}", "${A}alpha"},
		{"lone dollar kept", "a$b $ $$ c", "a$b $ $$ c"},
		{"not expanded twice", "${NESTED}", "${A}"},
		{"quoted", `"${A}"`, "alpha"},
		{"single quoted", `'${A}'`, "alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := Parse([]byte("web:\n  client_id: "+tt.value+"\n"), envMap(env))
			if err != nil {
				t.Fatal(err)
			}
			if c.Web.ClientID != tt.want {
				t.Errorf("client_id: %s = %q, want %q", tt.value, c.Web.ClientID, tt.want)
			}
		})
	}

	t.Run("lists, secrets and typed values", func(t *testing.T) {
		t.Parallel()
		in := "auth:\n  audience:\n    - x-${A}\n    - '${A}'\n  clock_skew: ${SKEW}\n  allow_guest: ${GUEST}\nlimits:\n  burst: ${BURST}\nstore:\n  vault_key: ${A}\n"
		c, err := Parse([]byte(in), envMap(env))
		if err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(c.Auth.Audience, []string{"x-alpha", "alpha"}) || c.Limits.Burst != 7 ||
			c.Auth.ClockSkew != 5*time.Second || !c.Auth.AllowGuest || c.Store.VaultKey.Reveal() != "alpha" {
			t.Errorf("got audience %q, burst %d, clock_skew %s, allow_guest %t, vault_key %q",
				c.Auth.Audience, c.Limits.Burst, c.Auth.ClockSkew, c.Auth.AllowGuest, c.Store.VaultKey.Reveal())
		}
	})

	t.Run("bad references", func(t *testing.T) {
		t.Parallel()
		for _, v := range []string{"${A", "'${A:-x}'", "'${}'", "${1A}", "'${A B}'"} {
			_, err := Parse([]byte("web:\n  client_id: "+v+"\n"), envMap(env))
			ps := problemsOf(t, err)
			if len(ps) != 1 || ps[0].Field != "web.client_id" || !strings.Contains(ps[0].Message, "line 2:") {
				t.Errorf("client_id: %s: problems %q; want one on web.client_id with its line", v, ps)
			}
		}
	})

	t.Run("a typed value that expands to the wrong type", func(t *testing.T) {
		t.Parallel()
		_, err := Parse([]byte("limits:\n  burst: ${A}\n"), envMap(env))
		ps := problemsOf(t, err)
		if len(ps) != 1 || ps[0].Field != "limits.burst" || strings.Contains(ps[0].Message, "alpha") {
			t.Errorf("problems %q; want one on limits.burst that does not echo the variable's value", ps)
		}
	})
}

func TestParse_ExpansionLeavesKeysAndCommentsAlone(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var looked []string
	getenv := func(name string) (string, bool) {
		mu.Lock()
		defer mu.Unlock()
		looked = append(looked, name)
		switch name {
		case "SECTION":
			return "server", true
		case "TOOL":
			return "trigger_job", true
		}
		return "", false
	}

	_, err := Parse([]byte("${SECTION}:\n  listen: :80\n"), getenv)
	ps := problemsOf(t, err)
	if len(ps) != 1 || ps[0].Field != "${SECTION}" {
		t.Errorf("a ${VAR} key: problems %q; want the key reported unknown as written", ps)
	}

	c, err := Parse([]byte("# ${COMMENT}\nauth: # ${COMMENT}\n  tool_scopes:\n    ${TOOL}: []  # ${COMMENT}\n"), getenv)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Auth.ToolScopes["${TOOL}"]; !ok {
		t.Errorf("tool_scopes keys = %v; want the key ${TOOL} as written", c.Auth.ToolScopes)
	}
	if got := c.ScopesFor("trigger_job"); !cmp.Equal(got, []string{"jenkins:build"}) {
		t.Errorf("ScopesFor(trigger_job) = %q; the ${TOOL} key must not have changed it", got)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range looked {
		if name == "COMMENT" || name == "SECTION" || name == "TOOL" {
			t.Errorf("getenv(%q) was called; keys and comments must not be expanded", name)
		}
	}
}

func TestParse_ToolScopesMergeOverDefaults(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("auth:\n  tool_scopes:\n    default: []\n    get_build_log: [jenkins:build]\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		tool string
		want []string
	}{
		{"get_job", []string{}},                          // default: [] → no scope
		{"get_build_log", []string{"jenkins:build"}},     // listed in the file
		{"trigger_job", []string{"jenkins:build"}},       // kept from the defaults
		{"cancel_queue_item", []string{"jenkins:build"}}, // kept from the defaults
		{"health", []string{}},                           // guest tool
	}
	for _, tt := range tests {
		got := c.ScopesFor(tt.tool)
		if got == nil || !cmp.Equal(got, tt.want) {
			t.Errorf("ScopesFor(%q) = %#v, want %#v", tt.tool, got, tt.want)
		}
	}
}

func TestLoad_MissingFile(t *testing.T) {
	t.Parallel()
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), noEnv)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load(missing) = %v; want fs.ErrNotExist", err)
	}
}

func TestLoad_ErrorNamesFileAndKeepsProblems(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "butler.yaml")
	writeFile(t, path, "server:\n  lisen: :80\n")
	_, err := Load(path, noEnv)
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Load = %v; want an error naming %s", err, path)
	}
	if ps := problemsOf(t, err); len(ps) != 1 || ps[0].Field != "server.lisen" {
		t.Errorf("problems = %q", ps)
	}
}

func TestParse_NormalizesURLs(t *testing.T) {
	t.Parallel()
	c, err := Parse([]byte("server:\n  public_url: https://b.example.com/butler//\njenkins:\n  url: https://ci.example.com/jenkins//\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.PublicURL != "https://b.example.com/butler" {
		t.Errorf("public_url = %q", c.Server.PublicURL)
	}
	if c.Jenkins.URL != "https://ci.example.com/jenkins/" {
		t.Errorf("jenkins.url = %q", c.Jenkins.URL)
	}
}
