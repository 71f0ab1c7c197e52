package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const chartDir = "helm/butler"

// vaultKey is a vault key for rendered configs: 32 random bytes, base64;
// it seals nothing.
var vaultKey = func() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}()

// sqliteValues is one replica on SQLite, the chart's defaults otherwise.
var sqliteValues = []string{
	"publicURL=https://butler.example.com",
	"auth.issuer=https://idp.example.com/realms/eng",
	"jenkins.url=https://jenkins.example.com/",
	"vaultKey.value=" + vaultKey,
}

// haValues is three replicas on PostgreSQL and Redis, with secrets from
// existing Secrets, the /connect page, an Ingress and the Prometheus
// Operator's resources.
var haValues = []string{
	"replicaCount=3",
	"publicURL=https://butler.example.com",
	"auth.issuer=https://idp.example.com/realms/eng",
	"jenkins.url=https://jenkins.example.com/",
	"store.postgres.existingSecret=butler-db",
	"redis.url=redis://redis.butler.svc:6379/0",
	"vaultKey.existingSecret=butler-vault",
	"web.clientID=butler-web",
	"web.clientSecret.existingSecret=butler-web",
	"web.sessionKey.existingSecret=butler-web",
	"ingress.enabled=true",
	"ingress.className=nginx",
	"serviceMonitor.enabled=true",
	"prometheusRule.enabled=true",
}

func helmArgs(values []string) []string {
	var args []string
	for _, v := range values {
		args = append(args, "--set", v)
	}
	return args
}

// render runs helm template and returns the manifests by kind.
func render(t *testing.T, helm string, values []string) map[string]map[string]any {
	t.Helper()
	out := run(t, ".", nil, 2*time.Minute, helm, append([]string{"template", "butler", chartDir, "--namespace", "ci"}, helmArgs(values)...)...)
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("helm template output is not YAML: %v\n%s", err, out)
		}
		if m == nil {
			continue
		}
		kind, _ := m["kind"].(string)
		if _, dup := docs[kind]; dup {
			t.Fatalf("two %s manifests", kind)
		}
		docs[kind] = m
	}
	return docs
}

// at walks a manifest: keys for maps, "[i]" or a name=value selector for
// lists.
func at(t *testing.T, v any, path ...string) any {
	t.Helper()
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = x[p]; !ok {
				t.Fatalf("no %q in %v (path %v)", p, keys(x), path)
			}
		case []any:
			name, val, _ := strings.Cut(p, "=")
			found := false
			for _, e := range x {
				if m, ok := e.(map[string]any); ok && m[name] == val {
					v, found = e, true
					break
				}
			}
			if !found {
				t.Fatalf("no element %s in list (path %v)", p, path)
			}
		default:
			t.Fatalf("cannot index %T with %q (path %v)", v, p, path)
		}
	}
	return v
}

func keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func TestHelm_LintBothLayouts(t *testing.T) {
	helm := goTool(t, "helm")
	for name, values := range map[string][]string{"sqlite": sqliteValues, "ha": haValues} {
		out := run(t, ".", nil, 2*time.Minute, helm, append([]string{"lint", "--strict", chartDir}, helmArgs(values)...)...)
		if !strings.Contains(out, "0 chart(s) failed") {
			t.Errorf("helm lint %s:\n%s", name, out)
		}
	}
}

func TestHelm_SingleReplicaOnSQLite(t *testing.T) {
	helm := goTool(t, "helm")
	docs := render(t, helm, sqliteValues)
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PersistentVolumeClaim", "PodDisruptionBudget", "ServiceAccount"} {
		if docs[kind] == nil {
			t.Errorf("no %s rendered", kind)
		}
	}
	for _, kind := range []string{"Ingress", "ServiceMonitor", "PrometheusRule"} {
		if docs[kind] != nil {
			t.Errorf("%s rendered without being asked for", kind)
		}
	}
	dep := docs["Deployment"]
	if r := at(t, dep, "spec", "replicas"); r != 1 {
		t.Errorf("replicas = %v, want 1", r)
	}
	if s := at(t, dep, "spec", "strategy", "type"); s != "Recreate" {
		t.Errorf("strategy = %v, want Recreate (one SQLite file on a ReadWriteOnce volume)", s)
	}
	pod := at(t, dep, "spec", "template", "spec")
	checkSecurePod(t, pod)
	checkProbes(t, pod)
	if claim := at(t, pod, "volumes", "name=data", "persistentVolumeClaim", "claimName"); claim != "butler" {
		t.Errorf("data volume claim = %v, want the chart's PVC", claim)
	}
	if keep := at(t, docs["PersistentVolumeClaim"], "metadata", "annotations", "helm.sh/resource-policy"); keep != "keep" {
		t.Errorf("the store's PVC is deleted with the release")
	}
	cfg := configOf(t, docs)
	if at(t, cfg, "server", "stateless") != false {
		t.Error("one replica runs stateless")
	}
	if dsn := at(t, cfg, "store", "dsn"); dsn != "sqlite:/var/lib/butler/butler.db" {
		t.Errorf("store.dsn = %v", dsn)
	}
	if _, ok := at(t, cfg, "limits").(map[string]any)["redis_url"]; ok {
		t.Error("limits.redis_url set without Redis")
	}
	// The key is in the chart's Secret, reaching butler as an env var the
	// config references; never in the ConfigMap.
	if strings.Contains(at(t, docs["ConfigMap"], "data", "butler.yaml").(string), vaultKey) {
		t.Error("the vault key is in the ConfigMap")
	}
	env := at(t, pod, "containers", "name=butler", "env", "name=BUTLER_VAULT_KEY", "valueFrom", "secretKeyRef").(map[string]any)
	if env["name"] != "butler" || env["key"] != "vault-key" {
		t.Errorf("BUTLER_VAULT_KEY from %v, want the chart's Secret", env)
	}
	if _, ok := at(t, docs["Secret"], "data").(map[string]any)["vault-key"]; !ok {
		t.Error("the chart's Secret has no vault-key")
	}
	checkConfigAccepted(t, docs, map[string]string{"BUTLER_VAULT_KEY": vaultKey})
}

func TestHelm_ThreeReplicasOnPostgresAndRedis(t *testing.T) {
	helm := goTool(t, "helm")
	docs := render(t, helm, haValues)
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "Secret", "PodDisruptionBudget", "Ingress", "ServiceMonitor", "PrometheusRule"} {
		if docs[kind] == nil {
			t.Errorf("no %s rendered", kind)
		}
	}
	if docs["PersistentVolumeClaim"] != nil {
		t.Error("a PVC is rendered for PostgreSQL replicas")
	}
	dep := docs["Deployment"]
	if r := at(t, dep, "spec", "replicas"); r != 3 {
		t.Errorf("replicas = %v, want 3", r)
	}
	if s := at(t, dep, "spec", "strategy", "type"); s != "RollingUpdate" {
		t.Errorf("strategy = %v, want RollingUpdate", s)
	}
	pod := at(t, dep, "spec", "template", "spec")
	checkSecurePod(t, pod)
	checkProbes(t, pod)
	if _, ok := at(t, pod, "volumes", "name=data").(map[string]any)["emptyDir"]; !ok {
		t.Error("the data volume of a PostgreSQL replica is not an emptyDir")
	}
	cfg := configOf(t, docs)
	if at(t, cfg, "server", "stateless") != true {
		t.Error("three replicas do not run stateless")
	}
	for path, want := range map[string]string{"store.dsn": "${BUTLER_STORE_DSN}", "limits.redis_url": "${BUTLER_REDIS_URL}",
		"web.session_key": "${BUTLER_SESSION_KEY}", "web.client_secret": "${BUTLER_WEB_CLIENT_SECRET}", "store.vault_key": "${BUTLER_VAULT_KEY}"} {
		if got := at(t, cfg, strings.Split(path, ".")...); got != want {
			t.Errorf("%s = %v, want %s", path, got, want)
		}
	}
	// Existing Secrets: each env var names the Secret given, and the chart
	// makes no Secret holding them (only the inline Redis URL).
	container := at(t, pod, "containers", "name=butler")
	for env, secret := range map[string]string{"BUTLER_STORE_DSN": "butler-db", "BUTLER_VAULT_KEY": "butler-vault",
		"BUTLER_SESSION_KEY": "butler-web", "BUTLER_WEB_CLIENT_SECRET": "butler-web", "BUTLER_REDIS_URL": "butler"} {
		if got := at(t, container, "env", "name="+env, "valueFrom", "secretKeyRef", "name"); got != secret {
			t.Errorf("%s from Secret %v, want %s", env, got, secret)
		}
	}
	if data := at(t, docs["Secret"], "data").(map[string]any); len(data) != 1 || data["redis-url"] == nil {
		t.Errorf("the chart's Secret holds %v, want only redis-url", keys(data))
	}
	if host := at(t, docs["Ingress"], "spec", "rules", "host=butler.example.com", "host"); host != "butler.example.com" {
		t.Errorf("ingress host = %v", host)
	}
	if port := at(t, docs["ServiceMonitor"], "spec", "endpoints", "port=metrics", "path"); port != "/metrics" {
		t.Errorf("ServiceMonitor path = %v", port)
	}
	// The PrometheusRule carries the alert rules of deploy/observability.
	var want map[string]any
	data, err := os.ReadFile("observability/butler-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	if got := at(t, docs["PrometheusRule"], "spec", "groups"); len(got.([]any)) != len(want["groups"].([]any)) {
		t.Errorf("PrometheusRule has %d groups, the rule file %d", len(got.([]any)), len(want["groups"].([]any)))
	}
	if pdb := at(t, docs["PodDisruptionBudget"], "spec", "maxUnavailable"); pdb != 1 {
		t.Errorf("PDB maxUnavailable = %v", pdb)
	}
	checkConfigAccepted(t, docs, map[string]string{"BUTLER_VAULT_KEY": vaultKey,
		"BUTLER_STORE_DSN": "postgres://butler@db:5432/butler", "BUTLER_REDIS_URL": "redis://redis:6379/0",
		"BUTLER_SESSION_KEY": vaultKey, "BUTLER_WEB_CLIENT_SECRET": "s3cret"})
}

// TestHelm_RefusesIncompleteValues pins that the chart fails rather than
// render a Butler that cannot start: several replicas without a shared
// store or Redis, or a missing required value, each with its own message.
func TestHelm_RefusesIncompleteValues(t *testing.T) {
	helm := goTool(t, "helm")
	for _, c := range []struct {
		name   string
		values []string
		want   []string
	}{
		{"replicas without PostgreSQL and Redis", append(slices.Clone(sqliteValues), "replicaCount=2"),
			[]string{"replicaCount 2 needs a shared PostgreSQL store", "replicaCount 2 needs Redis"}},
		{"replicas without Redis", append(slices.Clone(sqliteValues), "replicaCount=3", "store.postgres.dsn=postgres://db/butler"),
			[]string{"replicaCount 3 needs Redis"}},
		{"no values", nil, []string{"publicURL is required", "auth.issuer is required", "jenkins.url is required", "vaultKey.value or vaultKey.existingSecret is required"}},
		{"connect page without a session key", append(slices.Clone(sqliteValues), "web.clientID=butler-web"), []string{"web.sessionKey.value or web.sessionKey.existingSecret is required"}},
	} {
		out, err := runErr(".", nil, 2*time.Minute, helm, append([]string{"template", "butler", chartDir}, helmArgs(c.values)...)...)
		if err == nil {
			t.Errorf("%s: helm template succeeded, want a failure", c.name)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: the failure does not say %q:\n%s", c.name, w, out)
			}
		}
	}
}

// TestHelm_ChartCarriesTheAlertRules keeps the chart's copy of the rules
// (charts cannot read files outside their folder) equal to the original.
func TestHelm_ChartCarriesTheAlertRules(t *testing.T) {
	a, err := os.ReadFile("observability/butler-alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "butler-alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("deploy/helm/butler/files/butler-alerts.yaml differs from deploy/observability/butler-alerts.yaml: copy it")
	}
}

func checkSecurePod(t *testing.T, pod any) {
	t.Helper()
	psc := at(t, pod, "securityContext").(map[string]any)
	if psc["runAsNonRoot"] != true || psc["runAsUser"] != 65532 || psc["fsGroup"] != 65532 {
		t.Errorf("pod securityContext = %v, want non-root 65532 with fsGroup", psc)
	}
	if at(t, pod, "automountServiceAccountToken") != false {
		t.Error("the service account token is mounted")
	}
	sc := at(t, pod, "containers", "name=butler", "securityContext").(map[string]any)
	if sc["readOnlyRootFilesystem"] != true || sc["allowPrivilegeEscalation"] != false || sc["privileged"] != false {
		t.Errorf("container securityContext = %v", sc)
	}
	if drop := at(t, sc, "capabilities", "drop"); !slices.Contains(drop.([]any), any("ALL")) {
		t.Errorf("capabilities dropped = %v, want ALL", drop)
	}
	res := at(t, pod, "containers", "name=butler", "resources", "requests").(map[string]any)
	if res["cpu"] == nil || res["memory"] == nil {
		t.Errorf("resource requests = %v", res)
	}
}

func checkProbes(t *testing.T, pod any) {
	t.Helper()
	c := at(t, pod, "containers", "name=butler")
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := at(t, c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %v, want %s", probe, got, path)
		}
	}
}

func configOf(t *testing.T, docs map[string]map[string]any) map[string]any {
	t.Helper()
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(at(t, docs["ConfigMap"], "data", "butler.yaml").(string)), &cfg); err != nil {
		t.Fatalf("butler.yaml in the ConfigMap: %v", err)
	}
	return cfg
}

// checkConfigAccepted runs the production butler's check-config on the
// rendered butler.yaml, with the environment the Deployment gives it and
// the volume at /var/lib/butler mounted at a temporary directory.
func checkConfigAccepted(t *testing.T, docs map[string]map[string]any, env map[string]string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "butler.yaml")
	text := strings.ReplaceAll(at(t, docs["ConfigMap"], "data", "butler.yaml").(string), "/var/lib/butler", dir)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	var kv []string
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	bin := productionButler(t)
	if out, err := runErr(dir, kv, time.Minute, bin, "check-config", "--config", path); err != nil {
		t.Errorf("butler check-config refuses the chart's butler.yaml: %v\n%s", err, out)
	}
}
