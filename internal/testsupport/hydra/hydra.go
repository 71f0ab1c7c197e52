// Package hydra runs a real Ory Hydra (v2.3.0, pinned by tools/hydra/go.mod)
// as the OAuth 2.0 authorization server of a test. It is test support only:
// nothing outside tests should import it.
//
// [Start] builds Hydra with tools/hydra/build.sh (or reuses the binary cached
// under ${BUTLER_TOOL_CACHE:-$HOME/.cache/butler-tools}), runs
// `hydra serve all --dev --sqa-opt-out` with an in-memory SQLite database on
// two free loopback ports, waits for /health/ready, and stops the process
// group when the test ends. The first build on a clean machine downloads
// about 300 MB of modules and compiles Hydra with cgo: about a minute and a
// half here on 2 cores, more on a slow link. Later calls reuse the cached
// binary and Hydra is ready in well under a second. Set BUTLER_SKIP_HYDRA=1
// to skip the tests that call Start instead; any other build or start failure
// fails the test with Hydra's log attached. When a test that started Hydra
// fails, Hydra's log is attached to it as well.
//
// # Configuration
//
// Hydra runs with a clean environment (only PATH, HOME and TMPDIR are passed
// through, so no stray DSN or SERVE_* variable of the caller leaks in) plus:
//
//	DSN=memory
//	SERVE_PUBLIC_HOST=127.0.0.1  SERVE_PUBLIC_PORT=<free port>
//	SERVE_ADMIN_HOST=127.0.0.1   SERVE_ADMIN_PORT=<free port>
//	URLS_SELF_ISSUER=<PublicURL>  URLS_SELF_PUBLIC=<PublicURL>  URLS_SELF_ADMIN=<AdminURL>
//	STRATEGIES_ACCESS_TOKEN=jwt
//	SECRETS_SYSTEM=<random, per server>
//	OAUTH2_EXPOSE_INTERNAL_ERRORS=true  SQA_OPT_OUT=true
//
// Every server has its own database and its own freshly generated signing key,
// so tests are independent, and parallel tests may each start one.
//
// # What Hydra puts in its JWT access tokens
//
// Observed with Hydra v2.3.0 for a client_credentials token obtained by
// [Server.Token] (see TestHydraIssuesVerifiableJWTAccessTokens). Header:
//
//	{"alg":"RS256","kid":"<uuid>","typ":"JWT"}
//
// The key is a 4096-bit RSA key of the "hydra.jwt.access-token" key set,
// published in the JWKS at <PublicURL>/.well-known/jwks.json under the same
// kid (use "sig", alg "RS256"), next to the key of the "hydra.openid.id-token"
// set: the JWKS holds two keys and a verifier must select by kid. Hydra
// generates its key sets lazily; Start fetches the JWKS once so both exist,
// stable for the server's life, before the test runs. Note the typ is "JWT",
// not RFC 9068's "at+jwt". Claims:
//
//	iss        string    exactly URLS_SELF_ISSUER, i.e. Server.Issuer (= PublicURL, no trailing slash)
//	sub        string    the client_id (client_credentials has no end user)
//	client_id  string    the client_id
//	aud        []string  always an array: the requested audience values; [] when none was requested
//	scp        []string  always an array of the granted scopes (not a space-separated "scope" string)
//	exp, iat, nbf  number  NumericDate; nbf = iat; exp = about iat + 1h (ttl.access_token),
//	                       sometimes 1s less: exp is fixed before iat is taken
//	jti        string    a UUID
//	ext        object    {} for client_credentials (no session data)
//
// There is no "scope" claim unless strategies.jwt.scope_claim is changed, and
// no "azp", "auth_time" or "token_type" claim.
//
// # Discovery
//
// OpenID Connect discovery answers at <PublicURL>/.well-known/openid-configuration
// (issuer, jwks_uri, token_endpoint, ...). Hydra v2.3.0 does NOT serve RFC 8414
// metadata at /.well-known/oauth-authorization-server (404).
package hydra

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// RootModule is the module path that marks the repository root, found by
// walking up from the working directory.
const RootModule = "github.com/butler-mcp/butler"

// SkipEnv is the environment variable that, set to "1", makes [Start] skip the
// test instead of building and running Hydra.
const SkipEnv = "BUTLER_SKIP_HYDRA"

const (
	// buildTimeout bounds tools/hydra/build.sh; a cold build takes minutes.
	buildTimeout = 30 * time.Minute
	// readyTimeout bounds the wait for /health/ready after the process starts.
	readyTimeout = 60 * time.Second
	// stopTimeout is how long Hydra gets to exit after SIGTERM before SIGKILL.
	stopTimeout = 5 * time.Second
	// startAttempts retries a start that lost a race for its free port.
	startAttempts = 3
	// maxLogInMessage caps how much of Hydra's log is attached to a failure.
	maxLogInMessage = 32 << 10
)

// Server is a running Hydra. Its URLs have no trailing slash.
type Server struct {
	// PublicURL serves the OAuth 2.0 endpoints (/oauth2/token), discovery
	// (/.well-known/openid-configuration) and keys (/.well-known/jwks.json).
	PublicURL string
	// AdminURL serves the admin API (/admin/clients, ...).
	AdminURL string
	// Issuer is the "iss" claim of the tokens and the "issuer" of discovery:
	// equal to PublicURL.
	Issuer string
	// JWKSURL is where the keys that sign access tokens are published.
	JWKSURL string

	logPath string
	client  *http.Client
}

// Start builds or reuses the cached Hydra binary, starts Hydra on free
// loopback ports with an in-memory database and JWT access tokens, waits until
// it is ready, and arranges for t.Cleanup to stop it (and its whole process
// group). It skips t only when BUTLER_SKIP_HYDRA=1; any other failure fails t
// with Hydra's log.
func Start(t testing.TB) *Server {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1: skipping the test that needs a real Ory Hydra", SkipEnv)
	}
	bin := binary(t)

	for attempt := 1; ; attempt++ {
		s, retry, err := start(t, bin)
		if err == nil {
			return s
		}
		if !retry || attempt == startAttempts {
			t.Fatalf("hydra: start attempt %d of %d: %v", attempt, startAttempts, err)
		}
		t.Logf("hydra: start attempt %d lost its port, retrying: %v", attempt, err)
	}
}

var (
	binMu   sync.Mutex
	binPath string // set once a build succeeded in this process
)

// binary returns the path of the Hydra binary, running tools/hydra/build.sh
// at most once per process when it succeeds.
func binary(t testing.TB) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if binPath != "" {
		return binPath
	}
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("hydra: %v", err)
	}
	script := filepath.Join(root, "tools", "hydra", "build.sh")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("hydra: %s failed after %s: %v\n--- build output ---\n%s",
			script, time.Since(began).Round(time.Second), err, tail(stderr.String()))
	}
	path := strings.TrimSpace(stdout.String())
	if i := strings.LastIndexByte(path, '\n'); i >= 0 {
		path = path[i+1:]
	}
	if fi, err := os.Stat(path); err != nil || fi.IsDir() {
		t.Fatalf("hydra: %s printed %q, which is not a binary (%v)\n--- build output ---\n%s",
			script, path, err, tail(stderr.String()))
	}
	if d := time.Since(began); d > 10*time.Second {
		t.Logf("hydra: built %s in %s", path, d.Round(time.Second))
	}
	binPath = path
	return binPath
}

// repoRoot walks up from the working directory to the directory whose go.mod
// declares module RootModule.
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for dir := wd; ; {
		if data, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(data) == RootModule {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod with module %s in %s or any parent", RootModule, wd)
		}
		dir = parent
	}
}

// modulePath returns the module path declared by a go.mod file.
func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "module"); ok && (rest == "" || rest[0] == ' ' || rest[0] == '\t') {
			return strings.Trim(strings.TrimSpace(rest), `"`)
		}
	}
	return ""
}

// start makes one attempt to run Hydra. retry reports whether the failure
// looks like a lost race for a free port, worth another attempt.
func start(t testing.TB, bin string) (_ *Server, retry bool, err error) {
	t.Helper()
	publicPort, adminPort, err := freePorts()
	if err != nil {
		return nil, false, err
	}
	publicURL := "http://127.0.0.1:" + strconv.Itoa(publicPort)
	adminURL := "http://127.0.0.1:" + strconv.Itoa(adminPort)

	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, false, err
	}

	logFile, err := os.CreateTemp(t.TempDir(), "hydra-*.log")
	if err != nil {
		return nil, false, err
	}
	s := &Server{
		PublicURL: publicURL,
		AdminURL:  adminURL,
		Issuer:    publicURL,
		JWKSURL:   publicURL + "/.well-known/jwks.json",
		logPath:   logFile.Name(),
		client: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		},
	}

	env := []string{
		"DSN=memory",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT=" + strconv.Itoa(publicPort),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT=" + strconv.Itoa(adminPort),
		"URLS_SELF_ISSUER=" + publicURL,
		"URLS_SELF_PUBLIC=" + publicURL,
		"URLS_SELF_ADMIN=" + adminURL,
		"STRATEGIES_ACCESS_TOKEN=jwt",
		"SECRETS_SYSTEM=" + hex.EncodeToString(secret),
		"OAUTH2_EXPOSE_INTERNAL_ERRORS=true",
		"SQA_OPT_OUT=true",
	}
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = env
	cmd.Dir = filepath.Dir(logFile.Name())
	cmd.Stdout, cmd.Stderr = logFile, logFile
	setProcessGroup(cmd)
	cmd.Cancel = func() error { return killGroup(cmd, true) }
	cmd.WaitDelay = stopTimeout

	// Start and wait on one locked OS thread: Linux delivers the parent-death
	// signal when the thread that forked Hydra exits, so that thread must
	// live as long as Hydra does.
	startErr := make(chan error, 1)
	exited := make(chan struct{})
	var waitErr error
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		waitErr = cmd.Wait()
		close(exited)
	}()
	err = <-startErr
	logFile.Close() // the child has its own descriptor
	if err != nil {
		cancel()
		return nil, false, fmt.Errorf("starting %s: %w", bin, err)
	}
	// ready is set once s is handed to the test: only then does a failure of
	// the test attach the log (a failed start already carries it).
	var ready atomic.Bool
	t.Cleanup(func() {
		_ = killGroup(cmd, false) // SIGTERM: let Hydra shut down cleanly
		select {
		case <-exited:
		case <-time.After(stopTimeout):
			cancel() // SIGKILL the process group
			<-exited
		}
		cancel()
		if ready.Load() && t.Failed() {
			t.Logf("hydra (%s) log:\n%s", s.PublicURL, tail(s.Log()))
		}
	})

	if err := s.waitReady(exited); err != nil {
		select {
		case <-exited:
			log := s.Log()
			retry := strings.Contains(log, "address already in use")
			return nil, retry, fmt.Errorf("%v (exit: %v)\n--- hydra log ---\n%s", err, waitErr, tail(log))
		default:
		}
		return nil, false, fmt.Errorf("%v\n--- hydra log ---\n%s", err, tail(s.Log()))
	}
	// Hydra generates its signing keys lazily (4096-bit RSA, up to a second
	// or so here): the first JWKS request creates both key sets, the first
	// token request the access-token set. Fetching the JWKS now creates them
	// before the test runs, so a JWKS fetched concurrently with the first
	// token cannot miss (or race a second generation of) the signing key.
	if err := s.warmKeys(); err != nil {
		return nil, false, fmt.Errorf("%v\n--- hydra log ---\n%s", err, tail(s.Log()))
	}
	ready.Store(true)
	return s, false, nil
}

// warmKeys fetches the JWKS once so that Hydra generates its key sets.
func (s *Server) warmKeys() error {
	resp, err := s.client.Get(s.JWKSURL)
	if err != nil {
		return fmt.Errorf("GET %s: %w", s.JWKSURL, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", s.JWKSURL, resp.Status, data)
	}
	return nil
}

// waitReady polls /health/ready on both listeners until they answer 200.
func (s *Server) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(readyTimeout)
	for _, u := range []string{s.AdminURL + "/health/ready", s.PublicURL + "/health/ready"} {
		for {
			resp, err := s.client.Get(u)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("status %s", resp.Status)
			}
			select {
			case <-exited:
				return fmt.Errorf("hydra exited before %s answered: %v", u, err)
			default:
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not ready after %s: %v", u, readyTimeout, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// freePorts returns two distinct free loopback ports. They are released
// before Hydra binds them; Start retries if another process takes one first.
func freePorts() (int, int, error) {
	a, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer a.Close()
	b, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer b.Close()
	return a.Addr().(*net.TCPAddr).Port, b.Addr().(*net.TCPAddr).Port, nil
}

// Log returns what Hydra has written to stdout and stderr so far.
func (s *Server) Log() string {
	data, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading hydra log: %v)", err)
	}
	return string(data)
}

// tail drops Hydra's per-migration lines (over a hundred at every start) and
// keeps the end of what remains.
func tail(s string) string {
	var b strings.Builder
	for line := range strings.Lines(s) {
		if !strings.Contains(line, "migration_file=") {
			b.WriteString(line)
		}
	}
	s = b.String()
	if len(s) <= maxLogInMessage {
		return s
	}
	return "...(cut)...\n" + s[len(s)-maxLogInMessage:]
}

// CreateClient registers a confidential client allowed the client_credentials
// grant, the given scopes and the given audiences through the admin API
// (POST /admin/clients), authenticating at the token endpoint with
// client_secret_basic and issuing JWT access tokens. It returns the client_id
// and client_secret that Hydra generated.
func (s *Server) CreateClient(t testing.TB, scopes, audiences []string) (id, secret string) {
	t.Helper()
	if audiences == nil {
		audiences = []string{}
	}
	body, err := json.Marshal(map[string]any{
		"client_name":                "butler-test",
		"grant_types":                []string{"client_credentials"},
		"response_types":             []string{"token"},
		"scope":                      strings.Join(scopes, " "),
		"audience":                   audiences,
		"token_endpoint_auth_method": "client_secret_basic",
		"access_token_strategy":      "jwt",
	})
	if err != nil {
		t.Fatalf("hydra: %v", err)
	}
	resp, err := s.client.Post(s.AdminURL+"/admin/clients", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatalf("hydra: POST /admin/clients: %v", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("hydra: POST /admin/clients: %s: %s", resp.Status, data)
	}
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatalf("hydra: POST /admin/clients: decoding %s: %v", data, err)
	}
	if c.ClientID == "" || c.ClientSecret == "" {
		t.Fatalf("hydra: POST /admin/clients: no client_id or client_secret in %s", data)
	}
	return c.ClientID, c.ClientSecret
}

// Token obtains an access token with the client_credentials grant at
// <PublicURL>/oauth2/token, requesting the given scopes and, unless it is
// empty, the given audience (Hydra's "audience" parameter). It returns the raw
// JWT and fails t on any error, including Hydra refusing the grant (a scope or
// audience the client is not allowed).
func (s *Server) Token(t testing.TB, id, secret string, scopes []string, audience string) string {
	t.Helper()
	tok, err := s.token(id, secret, scopes, audience)
	if err != nil {
		t.Fatalf("hydra: %v", err)
	}
	return tok
}

func (s *Server) token(id, secret string, scopes []string, audience string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	if audience != "" {
		form.Set("audience", audience)
	}
	req, err := http.NewRequest(http.MethodPost, s.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 §2.3.1: client_secret_basic credentials are form-urlencoded
	// before base64; Hydra decodes them.
	req.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	resp, err := s.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("POST /oauth2/token: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("POST /oauth2/token: %s: %s", resp.Status, data)
	}
	var r struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return "", fmt.Errorf("POST /oauth2/token: decoding %s: %w", data, err)
	}
	if r.AccessToken == "" || !strings.EqualFold(r.TokenType, "bearer") {
		return "", fmt.Errorf("POST /oauth2/token: no bearer access_token in %s", data)
	}
	if strings.Count(r.AccessToken, ".") != 2 {
		return "", errors.New("POST /oauth2/token: the access token is not a JWT (is STRATEGIES_ACCESS_TOKEN=jwt in effect?)")
	}
	return r.AccessToken, nil
}
