package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/butler-mcp/butler/internal/secret"
)

const secretValue = "hunter2-s3cr3t"

func TestSecret_NeverPrintsItsValue(t *testing.T) {
	t.Parallel()
	s := secret.String(secretValue)
	type holder struct {
		Token secret.String
		Ptr   *secret.String
	}
	h := holder{Token: s, Ptr: &s}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%q", "%x", "%X", "%d", "%10s", "%T"} {
		for _, arg := range []any{s, h, &h, []secret.String{s}, map[string]secret.String{"k": s}} {
			out := fmt.Sprintf(verb, arg)
			if strings.Contains(out, secretValue) || strings.Contains(out, fmt.Sprintf("%x", secretValue)) {
				t.Errorf("Sprintf(%q, %T) = %q shows the secret", verb, arg, out)
			}
		}
	}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v"} {
		if out := fmt.Sprintf(verb, s); !strings.Contains(out, "[redacted]") {
			t.Errorf("Sprintf(%q) = %q; want [redacted]", verb, out)
		}
	}
	if got := s.String(); got != "[redacted]" {
		t.Errorf("String() = %q", got)
	}
	if got := s.GoString(); got != "[redacted]" {
		t.Errorf("GoString() = %q", got)
	}
	if got := s.Reveal(); got != secretValue {
		t.Errorf("Reveal() = %q, want the value", got)
	}
}

func TestSecret_EmptyStaysEmpty(t *testing.T) {
	t.Parallel()
	var s secret.String
	if got := fmt.Sprintf("%v|%s|%#v", s, s, s); got != "||" {
		t.Errorf("empty secret.String prints %q", got)
	}
	if b, _ := json.Marshal(s); string(b) != `""` {
		t.Errorf("json.Marshal(empty) = %s", b)
	}
	if b, _ := s.MarshalText(); len(b) != 0 {
		t.Errorf("MarshalText(empty) = %q", b)
	}
	if v := s.LogValue(); v.String() != "" {
		t.Errorf("LogValue(empty) = %q", v.String())
	}
}

func TestSecret_JSONAndTextShowPlaceholder(t *testing.T) {
	t.Parallel()
	s := secret.String(secretValue)
	b, err := json.Marshal(map[string]any{"s": s, "list": []secret.String{s}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), secretValue) || !strings.Contains(string(b), `"[redacted]"`) {
		t.Errorf("json.Marshal = %s", b)
	}
	txt, err := s.MarshalText()
	if err != nil || string(txt) != "[redacted]" {
		t.Errorf("MarshalText = %q, %v", txt, err)
	}
}

// secretConfig is a full config whose secrets are all known markers.
func secretConfig(t *testing.T) (*Config, []string) {
	t.Helper()
	env := fullEnv()
	c, err := Load(filepath.Join("testdata", "full.yaml"), envMap(env))
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{
		env["INTROSPECTION_SECRET"], env["JENKINS_API_TOKEN"], env["EXCHANGE_SECRET"], env["PGPASSWORD"],
		env["BUTLER_VAULT_KEY"], env["BUTLER_OLD_VAULT_KEY"], env["REDIS_PASSWORD"], env["WEB_SECRET"], env["BUTLER_SESSION_KEY"],
	}
	return c, secrets
}

func assertNoSecret(t *testing.T, what, out string, secrets []string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s shows secret %q:\n%s", what, s, out)
		}
	}
}

func TestConfig_PrintingNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	c, secrets := secretConfig(t)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		assertNoSecret(t, "Sprintf("+verb+", *Config)", fmt.Sprintf(verb, *c), secrets)
		assertNoSecret(t, "Sprintf("+verb+", Config)", fmt.Sprintf(verb, c), secrets)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "json.Marshal", string(j), secrets)
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecret(t, "yaml.Marshal", string(y), secrets)
	if !strings.Contains(string(y), "postgres://butler:xxxxx@db.example.com:5432/butler") {
		t.Errorf("yaml.Marshal should keep the DSN readable with its password masked:\n%s", y)
	}
}

func TestSecret_SlogNeverShowsSecrets(t *testing.T) {
	t.Parallel()
	c, secrets := secretConfig(t)
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		var buf bytes.Buffer
		log := slog.New(h.new(&buf))
		log.Info("loaded",
			"token", c.Jenkins.APIToken,
			"dsn", c.Store.DSN,
			"redis", c.Limits.RedisURL,
			"config", c,
			slog.Any("web", c.Web),
			slog.Group("store", "key", c.Store.VaultKey, "old", c.Store.VaultOldKeys))
		out := buf.String()
		assertNoSecret(t, h.name+" handler", out, secrets)
		if !strings.Contains(out, "[redacted]") || !strings.Contains(out, "xxxxx") {
			t.Errorf("%s handler output lacks the placeholders:\n%s", h.name, out)
		}
	}
}

func TestDSN_MasksPassword(t *testing.T) {
	t.Parallel()
	tests := []struct{ dsn, want string }{
		{"postgres://butler:pg-s3cret@db:5432/butler?sslmode=require", "postgres://butler:xxxxx@db:5432/butler?sslmode=require"},
		{"postgresql://butler@db/butler", "postgresql://butler@db/butler"},
		{"postgres://db/butler?password=pg-s3cret&sslmode=disable", "postgres://db/butler?password=xxxxx&sslmode=disable"},
		{"postgres://db/butler?sslpassword=pg-s3cret", "postgres://db/butler?sslpassword=xxxxx"},
		{"postgres://butler:pg s3cret@db/butler", "[redacted]"},
		{"postgres:butler:pg-s3cret", "[redacted]"},
		{"host=db password=pg-s3cret", "[redacted]"},
		{"rediss://:pg-s3cret@r:6380/0", "rediss://:xxxxx@r:6380/0"},
		{"sqlite:butler.db", "sqlite:butler.db"},
		{"sqlite::memory:", "sqlite::memory:"},
		{"", ""},
	}
	for _, tt := range tests {
		d := DSN(tt.dsn)
		for _, out := range []string{d.String(), d.GoString(), fmt.Sprintf("%v|%+v|%#v|%s|%q|%x", d, d, d, d, d, d), d.LogValue().String()} {
			if strings.Contains(out, "pg-s3cret") || strings.Contains(out, "pg s3cret") || strings.Contains(out, fmt.Sprintf("%x", "pg-s3cret")) {
				t.Errorf("DSN(%q) prints %q", tt.dsn, out)
			}
		}
		if got := d.String(); got != tt.want {
			t.Errorf("DSN(%q).String() = %q, want %q", tt.dsn, got, tt.want)
		}
		if b, _ := json.Marshal(d); strings.Contains(string(b), "s3cret") {
			t.Errorf("json.Marshal(DSN(%q)) = %s", tt.dsn, b)
		}
		if got := d.Reveal(); got != tt.dsn {
			t.Errorf("Reveal() = %q, want %q", got, tt.dsn)
		}
	}
}

func TestValidate_PostgresPasswordNeverInErrors(t *testing.T) {
	t.Parallel()
	const pw = "pg-s3cret"
	for _, dsn := range []string{
		"postgres://butler:" + pw + "@db:5432",                // no database
		"postgres://butler:" + pw + "@db:port/butler",         // bad port
		"postgres://butler:" + pw + " x@db/butler",            // space in password
		"postgres://butler:" + pw + "@d b/butler",             // space in host
		"postgres:butler:" + pw + "@db/butler",                // opaque
		"postgres://butler:" + pw + "@db/butler#frag%zz",      // bad fragment
		"mysql://butler:" + pw + "@db/butler",                 // wrong scheme
		"butler:" + pw + "@db/butler",                         // no scheme
		"host=db user=butler password=" + pw + " dbname=x",    // libpq keyword form
		"host=db password=" + pw + ":x",                       // looks like it has a scheme
		"sqlite:",                                             // (control: no password)
		"postgres://butler:" + pw + "@db/butler?sslmode=\x7f", // control character
	} {
		c, err := Parse([]byte("store:\n  dsn: "+strconv.Quote(dsn)+"\n"), noEnv)
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		assertNoSecret(t, "DSN.String", c.Store.DSN.String(), []string{pw})
		err = c.ValidateWith(ModeAdmin, nil)
		if err == nil {
			t.Errorf("dsn %q: want a problem", dsn)
			continue
		}
		assertNoSecret(t, fmt.Sprintf("ValidateWith for dsn %q", dsn), err.Error(), []string{pw})
	}
}

func TestValidate_SecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	// Every secret is set, and wrong, so that each check that looks at it
	// has a reason to complain.
	in := `
server:
  public_url: https://u:url-s3cret@butler.example.com
auth:
  issuer: https://idp.example.com
  jwks_url: "https://u:url-s3cret@idp example.com"
  introspection:
    url: http://u:url-s3cret@idp.example.com/introspect
    client_secret: intro-s3cret
jenkins:
  url: https://u:url-s3cret@ci.example.com
  api_token: api-s3cret
  token_exchange:
    client_secret: exchange-s3cret
store:
  dsn: postgres://u:pg-s3cret@db:5432
  vault_key: vault-s3cret
  vault_old_keys: [old-s3cret, "b2xkLXMzY3JldA=="]
limits:
  redis_url: "https://u:redis-s3cret@r example"
web:
  client_id: x
  client_secret: web-s3cret
  session_key: session-s3cret
`
	c, err := Parse([]byte(in), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"url-s3cret", "intro-s3cret", "api-s3cret", "exchange-s3cret", "pg-s3cret", "vault-s3cret", "old-s3cret", "b2xkLXMzY3JldA==", "redis-s3cret", "web-s3cret", "session-s3cret"}
	for _, m := range []Mode{ModeServe, ModeStdio, ModeAdmin, ModeLink} {
		err := c.ValidateWith(m, fakeFiles(t))
		if err == nil {
			t.Fatalf("ValidateWith(%s) = nil; want problems", m)
		}
		assertNoSecret(t, "ValidateWith("+m.String()+")", err.Error(), secrets)
	}
	if _, _, err := c.VaultKeys(); err == nil {
		t.Error("VaultKeys = nil error")
	} else {
		assertNoSecret(t, "VaultKeys", err.Error(), secrets)
	}
	if _, err := c.WebSessionKey(); err == nil {
		t.Error("WebSessionKey = nil error")
	} else {
		assertNoSecret(t, "WebSessionKey", err.Error(), secrets)
	}
	if _, err := c.JenkinsBaseURL(); err != nil {
		assertNoSecret(t, "JenkinsBaseURL", err.Error(), secrets)
	}
}

func TestParse_SecretsNeverInErrors(t *testing.T) {
	t.Parallel()
	// Structural problems around secrets do not echo them either.
	in := "jenkins:\n  api_token: [file-s3cret]\nweb:\n  client_secret: {a: file-s3cret}\nstore:\n  vault_key: ${KEY}\nlimits:\n  burst: ${KEY}\n"
	_, err := Parse([]byte(in), envMap(map[string]string{"KEY": "env-s3cret"}))
	if err == nil {
		t.Fatal("Parse = nil error")
	}
	assertNoSecret(t, "Parse error", err.Error(), []string{"file-s3cret", "env-s3cret"})
}
