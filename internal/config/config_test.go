package config

import (
	"encoding/base64"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/secret"
)

func encodeStd(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestConfig_ResourceURLAndAudiences(t *testing.T) {
	t.Parallel()
	tests := []struct {
		publicURL string
		audience  []string
		resource  string
		want      []string
	}{
		{"https://butler.example.com", nil, "https://butler.example.com/mcp", []string{"https://butler.example.com/mcp"}},
		{"https://butler.example.com/", nil, "https://butler.example.com/mcp", []string{"https://butler.example.com/mcp"}},
		{"https://example.com/butler", nil, "https://example.com/butler/mcp", []string{"https://example.com/butler/mcp"}},
		{"https://butler.example.com", []string{}, "https://butler.example.com/mcp", []string{"https://butler.example.com/mcp"}},
		{"https://butler.example.com", []string{"https://butler.example.com/mcp", "api://butler"}, "https://butler.example.com/mcp", []string{"https://butler.example.com/mcp", "api://butler"}},
		{"", nil, "", nil},
	}
	for _, tt := range tests {
		c := Default()
		c.Server.PublicURL = tt.publicURL
		c.Auth.Audience = tt.audience
		if got := c.ResourceURL(); got != tt.resource {
			t.Errorf("public_url %q: ResourceURL() = %q, want %q", tt.publicURL, got, tt.resource)
		}
		got := c.Audiences()
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("public_url %q, audience %q: Audiences() (-want +got):\n%s", tt.publicURL, tt.audience, diff)
		}
		if len(got) > 0 && len(tt.audience) > 0 {
			got[0] = "changed"
			if c.Auth.Audience[0] == "changed" {
				t.Error("Audiences() returned the config's own slice")
			}
		}
	}
}

func TestConfig_ConnectURL(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Server.PublicURL = "https://butler.example.com/"
	if got := c.ConnectURL(); got != "https://butler.example.com/connect" {
		t.Errorf("ConnectURL() = %q", got)
	}
}

func TestAuth_ScopesFor(t *testing.T) {
	t.Parallel()
	a := Auth{ToolScopes: map[string][]string{
		"default":     {"x:read"},
		"trigger_job": {"x:build", "x:write"},
		"get_job":     {},
	}}
	tests := []struct {
		tool string
		want []string
	}{
		{"trigger_job", []string{"x:build", "x:write"}},
		{"get_job", []string{}},
		{"get_build", []string{"x:read"}},
		{"", []string{"x:read"}},
	}
	for _, tt := range tests {
		got := a.ScopesFor(tt.tool)
		if got == nil || !cmp.Equal(tt.want, got) {
			t.Errorf("ScopesFor(%q) = %#v, want %#v", tt.tool, got, tt.want)
		}
	}
	// The result is a copy.
	a.ScopesFor("trigger_job")[0] = "changed"
	if a.ToolScopes["trigger_job"][0] != "x:build" {
		t.Error("ScopesFor returned the config's own slice")
	}
	// Without a default entry, a missing tool still needs a scope.
	empty := Auth{}
	if got := empty.ScopesFor("get_job"); !cmp.Equal(got, []string{"jenkins:read"}) {
		t.Errorf("ScopesFor without any entry = %q, want [jenkins:read]", got)
	}
	// An explicit empty default means no scope at all.
	none := Auth{ToolScopes: map[string][]string{"default": {}}}
	if got := none.ScopesFor("get_job"); got == nil || len(got) != 0 {
		t.Errorf("ScopesFor with default: [] = %#v, want an empty list", got)
	}
}

func TestConfig_ScopesForDefaults(t *testing.T) {
	t.Parallel()
	c := Default()
	for _, tool := range catalog.Names() {
		want := []string{"jenkins:read"}
		switch tool {
		case "trigger_job", "stop_build", "cancel_queue_item", "submit_input":
			want = []string{"jenkins:build"}
		case "health":
			want = []string{}
		}
		if got := c.ScopesFor(tool); !cmp.Equal(want, got) {
			t.Errorf("default ScopesFor(%q) = %q, want %q", tool, got, want)
		}
	}
}

func TestConfig_JenkinsBaseURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://ci.example.com", "https://ci.example.com/"},
		{"https://ci.example.com/", "https://ci.example.com/"},
		{"https://ci.example.com/jenkins", "https://ci.example.com/jenkins/"},
		{"https://ci.example.com/jenkins///", "https://ci.example.com/jenkins/"},
		{"http://127.0.0.1:8080/a/b/", "http://127.0.0.1:8080/a/b/"},
		{"https://ci.example.com/my%2Fci", "https://ci.example.com/my%2Fci/"},
	}
	for _, tt := range tests {
		c := Default()
		c.Jenkins.URL = tt.in
		u, err := c.JenkinsBaseURL()
		if err != nil {
			t.Errorf("JenkinsBaseURL(%q): %v", tt.in, err)
			continue
		}
		if got := u.String(); got != tt.want {
			t.Errorf("JenkinsBaseURL(%q) = %q, want %q", tt.in, got, tt.want)
		}
		// Relative references stay under the prefix.
		ref, _ := url.Parse("job/a/job/b/api/json")
		if got := u.ResolveReference(ref).String(); !strings.HasPrefix(got, tt.want) {
			t.Errorf("resolving under %q gives %q", tt.want, got)
		}
	}
	for _, bad := range []string{"", "ci.example.com", "ftp://ci.example.com", "https://ci example.com"} {
		c := Default()
		c.Jenkins.URL = bad
		if u, err := c.JenkinsBaseURL(); err == nil {
			t.Errorf("JenkinsBaseURL(%q) = %v; want an error", bad, u)
		}
	}
}

func TestConfig_JenkinsUserFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		tmpl, user, want, wantErr string
	}{
		{"{{.User}}", "alice", "alice", ""},
		{`{{.User | trimSuffix "@example.com" | lower}}`, "Alice@example.com", "alice", ""},
		{`{{.User | trimPrefix "corp\\"}}`, `corp\bob`, "bob", ""},
		{`{{index (split "@" .User) 0}}`, "carol@example.com", "carol", ""},
		{`{{.User | replace "." "_" | upper}}`, "d.e", "D_E", ""},
		{"jenkins-{{.User}}", "eve", "jenkins-eve", ""},
		{"{{.User}}", "", "", "empty"},
		{"{{if ne .User \"root\"}}{{.User}}{{end}}", "root", "", "empty"},
		{"{{.User}}\n", "x", "", "control character"},
		{"{{.Name}}", "x", "", "can't evaluate field Name"},
		{"{{.User", "x", "", "unclosed action"},
		{`{{range split "" .User}}{{$.User}}{{end}}`, strings.Repeat("a", 64), "", "longer than 256 bytes"},
	}
	for _, tt := range tests {
		c := Default()
		c.Jenkins.UserTemplate = tt.tmpl
		got, err := c.JenkinsUserFor(tt.user)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "config: jenkins.user_template") {
				t.Errorf("template %q, user %q: err = %v; want one containing %q", tt.tmpl, tt.user, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("template %q, user %q = %q, %v; want %q", tt.tmpl, tt.user, got, err, tt.want)
		}
	}
}

func TestConfig_VaultKeys(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Store.VaultKey = testVaultKey
	c.Store.VaultOldKeys = []secret.String{testOldVaultKey}
	cur, old, err := c.VaultKeys()
	if err != nil {
		t.Fatal(err)
	}
	var wantCur, wantOld [32]byte
	for i := range wantCur {
		wantCur[i] = byte(i)
		wantOld[i] = byte(31 - i)
	}
	if cur != wantCur {
		t.Errorf("current = %x, want %x", cur, wantCur)
	}
	if diff := cmp.Diff([][32]byte{wantOld}, old); diff != "" {
		t.Errorf("old (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		key  secret.String
		old  []secret.String
		want string
	}{
		{"", nil, "store.vault_key is not set"},
		{"c2hvcnQ=", nil, "store.vault_key: decodes to 5 bytes"},
		{"not base64!", nil, "store.vault_key: is not standard base64"},
		{testVaultKey, []secret.String{testOldVaultKey, "c2hvcnQ="}, "store.vault_old_keys[1]: decodes to 5 bytes"},
	} {
		c.Store.VaultKey, c.Store.VaultOldKeys = tt.key, tt.old
		if _, _, err := c.VaultKeys(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("VaultKeys() with key %q = %v; want %q", tt.key.Reveal(), err, tt.want)
		}
	}
}

func TestConfig_WebSessionKey(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Web.SessionKey = secret.String(b64(48))
	k, err := c.WebSessionKey()
	if err != nil || len(k) != 48 {
		t.Errorf("WebSessionKey() = %d bytes, %v; want 48 bytes", len(k), err)
	}
	c.Web.SessionKey = secret.String(b64(16))
	if _, err := c.WebSessionKey(); err == nil || !strings.Contains(err.Error(), "want at least 32") {
		t.Errorf("WebSessionKey() with 16 bytes = %v", err)
	}
	c.Web.SessionKey = ""
	if _, err := c.WebSessionKey(); err == nil {
		t.Error("WebSessionKey() unset = nil error")
	}
}

func TestConfig_ApplyStdioEnv(t *testing.T) {
	t.Parallel()
	env := envMap(map[string]string{"JENKINS_USER": "alice", "JENKINS_API_TOKEN": "env-token"})

	c := Default()
	c.ApplyStdioEnv(env)
	if c.Jenkins.User != "alice" || c.Jenkins.APIToken.Reveal() != "env-token" {
		t.Errorf("empty config: user %q, token %q; want them from the environment", c.Jenkins.User, c.Jenkins.APIToken.Reveal())
	}

	c = Default()
	c.Jenkins.User, c.Jenkins.APIToken = "bob", "file-token"
	c.ApplyStdioEnv(env)
	if c.Jenkins.User != "bob" || c.Jenkins.APIToken.Reveal() != "file-token" {
		t.Errorf("set config: user %q, token %q; the file wins", c.Jenkins.User, c.Jenkins.APIToken.Reveal())
	}

	c = Default()
	c.ApplyStdioEnv(noEnv)
	if c.Jenkins.User != "" || c.Jenkins.APIToken != "" {
		t.Errorf("no environment: user %q, token set %t", c.Jenkins.User, c.Jenkins.APIToken != "")
	}

	// A value filled from the environment no longer carries the note
	// about the variable the file named.
	c, err := Parse([]byte("jenkins:\n  url: https://ci.example.com\n  user: ${ME}\n"), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	c.ApplyStdioEnv(envMap(map[string]string{"JENKINS_USER": "alice"}))
	err = c.ValidateWith(ModeStdio, fakeFiles(t))
	if err == nil || strings.Contains(err.Error(), "${ME}") || !strings.Contains(err.Error(), "jenkins.api_token") {
		t.Errorf("ValidateWith(stdio) = %v; want only the missing token", err)
	}
}

func TestConfig_Origins(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Server.PublicURL = "https://Butler.Example.com:443/base"
	c.Server.AllowedOrigins = []string{
		"https://app.example.com/", "HTTP://LOCALHOST:80", "http://[::1]:3000", "https://butler.example.com",
		"null", "https://a.example.com/path", "vscode-file://vscode-app",
	}
	want := []string{"https://butler.example.com", "https://app.example.com", "http://localhost", "http://[::1]:3000", "vscode-file://vscode-app"}
	if diff := cmp.Diff(want, c.Origins()); diff != "" {
		t.Errorf("Origins() (-want +got):\n%s", diff)
	}
}

func TestLog_SlogLevel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]slog.Level{
		"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError, "bogus": slog.LevelInfo,
	} {
		if got := (Log{Level: in}).SlogLevel(); got != want {
			t.Errorf("SlogLevel(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestMode_String(t *testing.T) {
	t.Parallel()
	for m, want := range map[Mode]string{ModeServe: "serve", ModeStdio: "stdio", ModeAdmin: "admin", ModeLink: "link", ModePolicy: "policy", ModeCheck: "check", Mode(9): "Mode(9)"} {
		if got := m.String(); got != want {
			t.Errorf("Mode(%d).String() = %q, want %q", int(m), got, want)
		}
	}
}
