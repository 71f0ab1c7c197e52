package jenkinstest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func sample(t *testing.T) (*Server, *FakeClock) {
	t.Helper()
	clk := NewFakeClock(t0)
	return Sample(&Options{Clock: clk}), clk
}

// stripVolatile drops headers that may legitimately differ between two
// answers (none today, but Date would if a real server were in front).
func stripVolatile(h http.Header) http.Header {
	h = h.Clone()
	h.Del("Date")
	return h
}

func TestInvisibleItem_AnswersExactlyLikeMissingOne(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	// carol has nothing on backend; backend/api exists, backend/nope does not.
	cases := []struct{ method, suffix string }{
		{"GET", "api/json"},
		{"GET", "api/json?tree=jobs[name]"},
		{"GET", "job/api/api/json"},
		{"GET", "job/api/1/api/json"},
		{"GET", "job/api/lastBuild/api/json"},
		{"GET", "job/api/3/consoleText"},
		{"GET", "job/api/3/logText/progressiveText?start=0"},
		{"GET", "job/api/3/testReport/api/json"},
		{"POST", "job/api/build"},
		{"POST", "job/api/buildWithParameters?ENV=staging"},
		{"POST", "job/api/3/stop"},
		{"GET", "job/api/"},
	}
	for _, tc := range cases {
		hidden := call(t, s, tc.method, "/job/backend/"+tc.suffix, "carol")
		missingPath := strings.Replace("/job/nope/"+tc.suffix, "job/api/", "job/nothing/", 1)
		missing := call(t, s, tc.method, missingPath, "carol")
		if hidden.Code != http.StatusNotFound {
			t.Errorf("%s %s as carol: %d, want 404", tc.method, tc.suffix, hidden.Code)
		}
		if hidden.Code != missing.Code || hidden.Body.String() != missing.Body.String() ||
			!cmp.Equal(stripVolatile(hidden.Header()), stripVolatile(missing.Header())) {
			t.Errorf("%s %s: hidden and missing differ:\n%d %v %q\n%d %v %q", tc.method, tc.suffix,
				hidden.Code, hidden.Header(), hidden.Body, missing.Code, missing.Header(), missing.Body)
		}
		// Missing for someone who could see it looks the same too.
		if adm := call(t, s, tc.method, missingPath, "admin"); adm.Body.String() != hidden.Body.String() {
			t.Errorf("%s %s: admin's 404 body differs", tc.method, tc.suffix)
		}
	}
}

func TestGrantBelowUnreadableFolder_DoesNotExposeItem(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	s.AddUser("dave", "Dave", "dave-token")
	s.Grant("dave", "backend/api", PermRead, PermBuild)
	if w := call(t, s, "GET", "/job/backend/job/api/api/json", "dave"); w.Code != http.StatusNotFound {
		t.Errorf("job under an unreadable folder: %d", w.Code)
	}
	if jobs := getJSON(t, s, "/api/json", "dave")["jobs"].([]any); len(jobs) != 0 {
		t.Errorf("dave lists %v", jobs)
	}
}

func names(t *testing.T, m map[string]any, key string) []string {
	t.Helper()
	var out []string
	for _, x := range m[key].([]any) {
		e := x.(map[string]any)
		n := str(e, "fullName")
		if n == "" {
			n = str(e, "name")
		}
		if task, ok := e["task"].(map[string]any); ok {
			n = str(task, "url")
		}
		out = append(out, n)
	}
	return out
}

func TestListingsAndQueue_FilteredByReadPermission(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	if got := names(t, getJSON(t, s, "/api/json", "carol"), "jobs"); !slices.Equal(got, []string{"frontend", "prod"}) {
		t.Errorf("carol's root jobs = %v", got)
	}
	if got := names(t, getJSON(t, s, "/api/json", "bob"), "jobs"); !slices.Equal(got, []string{"backend", "diagnosis", "frontend", "prod"}) {
		t.Errorf("bob's root jobs = %v", got)
	}
	// Nested tree listing is filtered at every level.
	deep := getJSON(t, s, "/api/json?tree=jobs[fullName,jobs[fullName]]", "carol")
	raw, _ := json.Marshal(deep)
	if strings.Contains(string(raw), "backend") {
		t.Errorf("carol's deep listing mentions backend: %s", raw)
	}

	// admin triggers backend/api and frontend/web-app.
	w := call(t, s, "POST", "/job/backend/job/api/buildWithParameters?ENV=production", "admin")
	apiItem := queuePath(t, w.Header().Get("Location"))
	apiID := strings.Split(apiItem, "/")[3]
	call(t, s, "POST", "/job/frontend/job/web-app/build", "admin")

	wantQueue := map[string][]string{
		"admin": {"http://jenkins.test/job/frontend/job/web-app/", "http://jenkins.test/job/backend/job/api/"},
		"carol": {"http://jenkins.test/job/frontend/job/web-app/"},
		"bob":   {"http://jenkins.test/job/frontend/job/web-app/", "http://jenkins.test/job/backend/job/api/"},
	}
	for user, want := range wantQueue {
		got := names(t, getJSON(t, s, "/queue/api/json", user), "items")
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s's queue = %v, want %v", user, got, want)
		}
	}
	if w := call(t, s, "GET", apiItem, "carol"); w.Code != http.StatusNotFound {
		t.Errorf("carol reads backend's queue item: %d", w.Code)
	}
	if job := getJSON(t, s, "/job/backend/job/api/api/json?tree=inQueue,queueItem[id]", "bob"); job["inQueue"] != true {
		t.Errorf("bob's view of the job: %v", job)
	}

	// cancelItem: 404 for carol (cannot see), 422 for bob and alice (Read
	// only on backend), 204 for admin.
	for _, tc := range []struct {
		user   string
		status int
		body   string
	}{
		{"carol", 404, "Provided id (" + apiID + ") not found"},
		{"bob", 422, "Item for id (" + apiID + ") is not cancellable"},
		{"alice", 422, "Item for id (" + apiID + ") is not cancellable"},
		{"admin", 204, ""},
	} {
		w := call(t, s, "POST", "/queue/cancelItem?id="+apiID, tc.user)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("cancel as %s: %d %q, want %d %q", tc.user, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
	if w := call(t, s, "POST", "/queue/cancelItem?id=999", "admin"); w.Code != 404 || !strings.Contains(w.Body.String(), "Provided id (999) not found") {
		t.Errorf("cancel missing: %d %q", w.Code, w.Body.String())
	}
	if w := call(t, s, "GET", "/queue/cancelItem?id=1", "admin"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET cancelItem: %d", w.Code)
	}
}

func TestMissingPermission_403WithJenkinsHeaders(t *testing.T) {
	t.Parallel()
	s, clk := sample(t)
	for _, tc := range []struct {
		name, method, path, user, perm, body string
	}{
		{"build", "POST", "/job/frontend/job/web-app/build", "bob", "hudson.model.Item.Build", "bob is missing the Job/Build permission"},
		{"buildWithParameters", "POST", "/job/backend/job/api/buildWithParameters?ENV=staging", "alice", "hudson.model.Item.Build", "alice is missing the Job/Build permission"},
		// A finished Pipeline build: WorkflowRun.doKill checks Item.Cancel.
		{"stop", "POST", "/job/frontend/job/docs/3/stop", "carol", "hudson.model.Item.Cancel", "carol is missing the Job/Cancel permission"},
	} {
		w := call(t, s, tc.method, tc.path, tc.user)
		h := w.Header()
		if w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), tc.body) ||
			h.Get("X-Required-Permission") != tc.perm || h.Get("X-You-Are-Authenticated-As") != tc.user {
			t.Errorf("%s: %d %q %v", tc.name, w.Code, w.Body.String(), h)
		}
		implied := h.Values("X-Permission-Implied-By")
		if !slices.Contains(implied, "hudson.security.Permission.GenericWrite") || !slices.Contains(implied, "hudson.model.Hudson.Administer") {
			t.Errorf("%s: X-Permission-Implied-By = %v", tc.name, implied)
		}
	}
	// carol may build frontend jobs but not stop them.
	w := call(t, s, "POST", "/job/frontend/job/docs/build", "carol")
	if w.Code != http.StatusCreated {
		t.Fatalf("carol builds docs: %d", w.Code)
	}
	clk.Advance(3 * time.Second)
	if w := call(t, s, "POST", "/job/frontend/job/docs/4/stop", "carol"); w.Code != http.StatusForbidden {
		t.Errorf("carol stops docs #4: %d", w.Code)
	}
	if w := call(t, s, "POST", "/job/frontend/job/docs/4/stop", "alice"); w.Code != http.StatusFound {
		t.Errorf("alice stops docs #4: %d", w.Code)
	}
	// A finished freestyle build has no executor: AbstractBuild.doStop
	// redirects to it without checking any permission.
	if w := call(t, s, "POST", "/job/frontend/job/web-app/6/stop", "carol"); w.Code != http.StatusFound ||
		w.Header().Get("Location") != "http://jenkins.test/job/frontend/job/web-app/6/" {
		t.Errorf("carol stops finished web-app #6: %d %q", w.Code, w.Header().Get("Location"))
	}
	// A disabled job answers 409 to build before the permission check, as
	// ParameterizedJobMixIn.doBuild does.
	if w := call(t, s, "POST", "/job/frontend/job/legacy-site/build", "bob"); w.Code != http.StatusConflict {
		t.Errorf("bob builds legacy-site: %d", w.Code)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	bearer := Sample(&Options{Clock: NewFakeClock(t0), BearerAuth: func(tok string) (string, bool) {
		if tok == "jwt-for-alice" {
			return "alice", true
		}
		return "", false
	}})
	basic := func(user, pass string) func(*http.Request) {
		return func(r *http.Request) { r.SetBasicAuth(user, pass) }
	}
	for _, tc := range []struct {
		name   string
		h      http.Handler
		path   string
		opt    func(*http.Request)
		status int
		body   string
		auth   string
	}{
		{"wrong token", s, "/api/json", basic("alice", "bob-token"), 401, "Invalid password/token for user: alice", "invalid"},
		{"unknown user", s, "/job/frontend/api/json", basic("mallory", "x"), 401, "Invalid password/token for user: mallory", "invalid"},
		{"empty token", s, "/me/api/json", basic("alice", ""), 401, "Invalid password/token", "invalid"},
		{"anonymous", s, "/api/json", func(*http.Request) {}, 403, "Authentication required", "none"},
		{"anonymous crumb", s, "/crumbIssuer/api/json", func(*http.Request) {}, 403, "Authentication required", "none"},
		// CrumbFilter refuses a POST without credentials before anything else.
		{"anonymous post", s, "/job/frontend/job/web-app/build", func(*http.Request) {}, 403, "No valid crumb was included in the request", "none"},
		// Without jwt-auth-filter no filter reads a bearer token: anonymous.
		{"bearer not enabled", s, "/api/json", withHeader("Authorization", "Bearer jwt-for-alice"), 403, "Authentication required", "invalid"},
		{"bearer ok", bearer, "/me/api/json", withHeader("Authorization", "Bearer jwt-for-alice"), 200, `"id":"alice"`, "bearer"},
		// jwt-auth-filter ignores a token it refuses: the request runs as
		// anonymous, and /me is not available to anonymous.
		{"bearer rejected", bearer, "/me/api/json", withHeader("Authorization", "Bearer forged"), 403, "Authentication required", "invalid"},
		{"bearer rejected post", bearer, "/job/frontend/job/web-app/build", withHeader("Authorization", "Bearer forged"), 403, "Authentication required", "invalid"},
		{"basic ok", s, "/me/api/json", basic("carol", "carol-token"), 200, `"fullName":"Carol White"`, "basic"},
		{"unknown scheme", s, "/api/json", withHeader("Authorization", "Digest x"), 403, "Authentication required", "invalid"},
	} {
		r := httptest.NewRequest("GET", "http://jenkins.test"+tc.path, nil)
		if strings.HasSuffix(tc.path, "/build") {
			r.Method = "POST"
		}
		tc.opt(r)
		w := httptest.NewRecorder()
		tc.h.ServeHTTP(w, r)
		if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, w.Code, w.Body.String(), tc.status, tc.body)
		}
		if tc.status == 401 && w.Header().Get("WWW-Authenticate") != `Basic realm="Jenkins"` {
			t.Errorf("%s: WWW-Authenticate = %q", tc.name, w.Header().Get("WWW-Authenticate"))
		}
		// Every 403 but the crumb refusal is an HTML page, as Jenkins's.
		if tc.status == 403 && tc.auth != "none" && !strings.HasPrefix(w.Header().Get("Content-Type"), "text/html") {
			t.Errorf("%s: Content-Type = %q", tc.name, w.Header().Get("Content-Type"))
		}
		srv := tc.h.(*Server)
		log := srv.Requests()
		last := log[len(log)-1]
		if last.Auth != tc.auth || last.Status != tc.status || (tc.status != 200 && tc.status != 403 && last.User != "") {
			t.Errorf("%s: logged %+v", tc.name, last)
		}
	}
	for _, srv := range []*Server{s, bearer} {
		for _, r := range srv.Requests() {
			if strings.Contains(r.Path+r.Query+r.User, "token") || strings.Contains(r.User, "jwt") {
				t.Errorf("request log leaks a credential: %+v", r)
			}
		}
	}
}

// Jenkins looks names up case-insensitively at the top level only
// (Jenkins.items); a folder's children are case-sensitive once Jenkins has
// loaded them (ItemGroupMixIn.loadChildren).
func TestCaseInsensitiveLookup_TopLevelOnly(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	job := getJSON(t, s, "/job/FRONTEND/job/web-app/api/json?tree=fullName,url", "carol")
	if str(job, "fullName") != "frontend/web-app" || str(job, "url") != "http://jenkins.test/job/frontend/job/web-app/" {
		t.Errorf("case-folded top-level lookup: %v", job)
	}
	for _, p := range []string{"/job/frontend/job/Web-App/api/json", "/job/FRONTEND/job/WEB-APP/api/json", "/job/frontend/job/mobile/job/MAIN/api/json"} {
		if w := call(t, s, "GET", p, "admin"); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d, want 404 (case-sensitive below the top level)", p, w.Code)
		}
	}
	if w := call(t, s, "GET", "/job/BACKEND/job/api/api/json", "carol"); w.Code != http.StatusNotFound {
		t.Errorf("case-folded lookup of an invisible job: %d", w.Code)
	}
	if err := s.AddJob("FrontEnd/x", JobSpec{}); err == nil {
		t.Errorf("AddJob through a top-level folder differing in case succeeded")
	}
	// Below the top level two names differing in case are two items.
	if err := s.AddJob("frontend/Web-App", JobSpec{Description: "the other one"}); err != nil {
		t.Fatalf("AddJob of a name differing in case inside a folder: %v", err)
	}
	if d := str(getJSON(t, s, "/job/frontend/job/Web-App/api/json?tree=description", "admin"), "description"); d != "the other one" {
		t.Errorf("frontend/Web-App description %q", d)
	}
}

func TestCrumb_RequiredAndBoundToSession(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, &Options{RequireCrumb: true}, map[string]JobSpec{"j": {}})
	if w := call(t, s, "POST", "/job/j/build", "alice"); w.Code != 403 || !strings.Contains(w.Body.String(), "No valid crumb was included in the request") {
		t.Fatalf("POST without crumb: %d %q", w.Code, w.Body.String())
	}
	w := call(t, s, "GET", "/crumbIssuer/api/json", "alice")
	var c struct{ Class, Crumb, CrumbRequestField string }
	_ = json.Unmarshal(w.Body.Bytes(), &c)
	cookies := w.Result().Cookies()
	if w.Code != 200 || c.Crumb == "" || c.CrumbRequestField != "Jenkins-Crumb" || len(cookies) != 1 || !strings.HasPrefix(cookies[0].Name, "JSESSIONID.") {
		t.Fatalf("crumb issuer: %d %s cookies=%v", w.Code, w.Body.String(), cookies)
	}
	withCookie := func(r *http.Request) { r.AddCookie(cookies[0]) }
	for _, tc := range []struct {
		name   string
		user   string
		opts   []func(*http.Request)
		status int
	}{
		{"crumb without session", "alice", []func(*http.Request){withHeader("Jenkins-Crumb", c.Crumb)}, 403},
		{"session without crumb", "alice", []func(*http.Request){withCookie}, 403},
		{"wrong crumb", "alice", []func(*http.Request){withCookie, withHeader("Jenkins-Crumb", otherFirstChar(c.Crumb))}, 403},
		{"another user's crumb", "bob", []func(*http.Request){withCookie, withHeader("Jenkins-Crumb", c.Crumb)}, 403},
		{"crumb and session", "alice", []func(*http.Request){withCookie, withHeader("Jenkins-Crumb", c.Crumb)}, 201},
	} {
		w := call(t, s, "POST", "/job/j/build", tc.user, tc.opts...)
		if w.Code != tc.status {
			t.Errorf("%s: %d %q", tc.name, w.Code, w.Body.String())
		}
	}
	// The same session gets the same crumb and no new cookie.
	w2 := call(t, s, "GET", "/crumbIssuer/api/json", "alice", withCookie)
	if !strings.Contains(w2.Body.String(), c.Crumb) || len(w2.Result().Cookies()) != 0 {
		t.Errorf("second crumb request: %s %v", w2.Body.String(), w2.Result().Cookies())
	}
	last := s.Requests()[len(s.Requests())-3]
	if !last.Crumb {
		t.Errorf("request log did not record the crumb header: %+v", last)
	}
	// Without RequireCrumb, API-token POSTs need no crumb.
	s2, _ := newTestServer(t, nil, map[string]JobSpec{"j": {}})
	if w := call(t, s2, "POST", "/job/j/build", "alice"); w.Code != http.StatusCreated {
		t.Errorf("token POST without crumb: %d", w.Code)
	}
}

func TestPrefix(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, &Options{Prefix: "/jenkins/"}, map[string]JobSpec{"f/j": {}})
	if w := call(t, s, "GET", "/api/json", "alice"); w.Code != 404 {
		t.Errorf("path outside the prefix: %d", w.Code)
	}
	if w := call(t, s, "GET", "/jenkinsx/api/json", "alice"); w.Code != 404 {
		t.Errorf("path sharing the prefix's characters: %d", w.Code)
	}
	root := getJSON(t, s, "/jenkins/api/json?tree=url,jobs[url,jobs[url]]", "alice")
	if str(root, "url") != "http://jenkins.test/jenkins/" {
		t.Errorf("root url = %v", root["url"])
	}
	raw, _ := json.Marshal(root)
	if !strings.Contains(string(raw), `"http://jenkins.test/jenkins/job/f/job/j/"`) {
		t.Errorf("nested url lacks the prefix: %s", raw)
	}
	w := call(t, s, "POST", "/jenkins/job/f/job/j/build", "alice")
	if w.Header().Get("Location") != "http://jenkins.test/jenkins/queue/item/1/" {
		t.Errorf("Location = %q", w.Header().Get("Location"))
	}
	exe := getJSON(t, s, "/jenkins/queue/item/1/api/json", "alice")["executable"].(map[string]any)
	if str(exe, "url") != "http://jenkins.test/jenkins/job/f/job/j/1/" {
		t.Errorf("executable url = %v", exe["url"])
	}
	if w := call(t, s, "POST", "/jenkins/job/f/job/j/1/stop", "alice"); w.Header().Get("Location") != "http://jenkins.test/jenkins/job/f/job/j/1/" {
		t.Errorf("stop Location = %q", w.Header().Get("Location"))
	}
	if w := call(t, s, "GET", "/jenkins/crumbIssuer/api/json", "alice"); !strings.Contains(w.Header().Get("Set-Cookie"), "Path=/jenkins/") {
		t.Errorf("cookie path: %q", w.Header().Get("Set-Cookie"))
	}
}

func TestEncodedNames(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	for _, tc := range []struct {
		path, fullName string
		status         int
	}{
		{"/job/frontend/job/Release%20Notes/api/json", "frontend/Release Notes", 200},
		{"/job/frontend/job/mobile/job/feature%252Flogin/api/json", "frontend/mobile/feature%2Flogin", 200},
		{"/job/frontend/job/mobile/job/feature%252Flogin/1/api/json", "", 200},
		// A raw %2F decodes to "feature/login": the multibranch project
		// finds it NameEncoder-encoded (MultiBranchProject.getItem).
		{"/job/frontend/job/mobile/job/feature%2Flogin/api/json", "frontend/mobile/feature%2Flogin", 200},
		// %25252F decodes once to "feature%252Flogin", which the project
		// finds NameEncoder-decoded.
		{"/job/frontend/job/mobile/job/feature%25252Flogin/api/json", "frontend/mobile/feature%2Flogin", 200},
		// Three levels of encoding are one too many.
		{"/job/frontend/job/mobile/job/feature%2525252Flogin/api/json", "", 404},
		// Only multibranch projects and organization folders do this.
		{"/job/frontend%2Fweb-app/api/json", "", 404},
		{"/job/frontend/job/%2E%2E/api/json", "", 404},
	} {
		w := call(t, s, "GET", tc.path, "alice")
		if w.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, w.Code, tc.status)
			continue
		}
		if tc.fullName != "" {
			var m map[string]any
			_ = json.Unmarshal(w.Body.Bytes(), &m)
			if str(m, "fullName") != tc.fullName {
				t.Errorf("%s: fullName %v", tc.path, m["fullName"])
			}
		}
	}
	// The URL Jenkins reports round-trips.
	job := getJSON(t, s, "/job/frontend/job/mobile/job/feature%252Flogin/api/json?tree=url", "alice")
	u, _ := url.Parse(str(job, "url"))
	if u.EscapedPath() != "/job/frontend/job/mobile/job/feature%252Flogin/" {
		t.Errorf("url = %v", job["url"])
	}
	w := call(t, s, "POST", "/job/frontend/job/Release%20Notes/build", "alice")
	if w.Code != http.StatusCreated {
		t.Errorf("build Release Notes: %d", w.Code)
	}
}

func TestFault_StatusAndDelay(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, nil)
	s.SetFault(Fault{Status: 503})
	if w := call(t, s, "GET", "/api/json", "alice"); w.Code != 503 {
		t.Errorf("fault status: %d", w.Code)
	}
	if w := call(t, s, "GET", "/api/json", "alice", basicAuth("alice", "bad")); w.Code != 503 {
		t.Errorf("fault status before auth: %d", w.Code)
	}
	s.SetFault(Fault{Delay: 50 * time.Millisecond})
	start := time.Now()
	if w := call(t, s, "GET", "/api/json", "alice"); w.Code != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("delay: %d after %v", w.Code, time.Since(start))
	}
	s.SetFault(Fault{Delay: time.Hour})
	srv := httptest.NewServer(s)
	defer srv.Close()
	ctx, cancel := contextWithTimeout(20 * time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/api/json", nil)
	req.SetBasicAuth("alice", "alice-token")
	start = time.Now()
	if _, err := srv.Client().Do(req); err == nil {
		t.Errorf("request during an hour-long delay succeeded")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancelled request took %v", d)
	}
	// The handler notices the cancellation and logs the request with status 0.
	deadline := time.Now().Add(5 * time.Second)
	for {
		log := s.Requests()
		if last := log[len(log)-1]; last.Status == 0 && last.Path == "/api/json" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cancelled request not logged: %+v", log[len(log)-1])
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.SetFault(Fault{})
	if w := call(t, s, "GET", "/api/json", "alice"); w.Code != 200 {
		t.Errorf("after clearing the fault: %d", w.Code)
	}
}

func basicAuth(user, pass string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(user, pass) }
}

func TestRequests_LogAndReset(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"a b": {}})
	call(t, s, "GET", "/job/a%20b/api/json?tree=name", "alice")
	call(t, s, "POST", "/job/a%20b/build", "bob")
	got := s.Requests()
	want := []Request{
		{Method: "GET", Path: "/job/a%20b/api/json", Query: "tree=name", User: "alice", Auth: "basic", Status: 200},
		{Method: "POST", Path: "/job/a%20b/build", User: "bob", Auth: "basic", Status: 403},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("request log (-want +got):\n%s", d)
	}
	s.ResetRequests()
	if n := len(s.Requests()); n != 0 {
		t.Errorf("after reset: %d entries", n)
	}
}

func TestMethodsAndUnknownPaths(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"DELETE", "/api/json", 405},
		{"POST", "/job/frontend/job/web-app/api/json", 405},
		{"GET", "/job/frontend/job/web-app/build", 405},
		{"GET", "/job/frontend/job/web-app/buildWithParameters", 405},
		{"GET", "/job/frontend/job/web-app/6/stop", 405},
		{"GET", "/nothing/here", 404},
		{"GET", "/job/frontend/job/web-app/api/xml", 404},
		{"GET", "/job/frontend/job/web-app/0/api/json", 404},
		{"GET", "/job/frontend/job/web-app/06/api/json", 404},
		{"GET", "/job/frontend/job/web-app/job/x/api/json", 404},
		{"POST", "/job/frontend/build", 404},
		{"GET", "/job/frontend/job/web-app/api/json?tree=jobs[", 400},
		{"HEAD", "/job/frontend/job/web-app/api/json", 200},
		{"GET", "/", 200},
	} {
		if w := call(t, s, tc.method, tc.path, "admin"); w.Code != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, w.Code, tc.status)
		}
	}
	w := call(t, s, "GET", "/api/json", "admin")
	if w.Header().Get("X-Jenkins") != DefaultVersion || w.Header().Get("Content-Type") != "application/json;charset=utf-8" {
		t.Errorf("headers: %v", w.Header())
	}
}

func TestProgressiveText_StartPastEndRestarts(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	full := call(t, s, "GET", "/job/backend/job/api/3/consoleText", "bob").Body.String()
	if n := strings.Count(full, "\n"); n < 300 {
		t.Errorf("long log has %d lines", n)
	}
	crlf := strings.ReplaceAll(full, "\n", "\r\n")
	w := call(t, s, "GET", "/job/backend/job/api/3/logText/progressiveText?start=999999", "bob")
	if w.Body.String() != crlf || w.Header().Get("X-More-Data") != "" {
		t.Errorf("start past the end: %d bytes, more=%q", w.Body.Len(), w.Header().Get("X-More-Data"))
	}
	size, _ := strconv.Atoi(w.Header().Get("X-Text-Size"))
	last := len("Finished: FAILURE\n")
	w = call(t, s, "GET", "/job/backend/job/api/3/logText/progressiveText?start="+itoa(size-last), "bob")
	if w.Body.String() != "Finished: FAILURE\r\n" || w.Header().Get("X-Text-Size") != itoa(size) {
		t.Errorf("start=%d: %q, X-Text-Size %q", size-last, w.Body.String(), w.Header().Get("X-Text-Size"))
	}
	if !strings.HasPrefix(full, "Started by user Jenkins Admin\n") || !strings.HasSuffix(full, "Finished: FAILURE\n") {
		t.Errorf("log ends: %q ... %q", full[:40], full[len(full)-40:])
	}
}

// otherFirstChar changes the crumb's first hex digit, so the result never
// equals the crumb (a fixed "0" did, for one crumb in sixteen).
func otherFirstChar(crumb string) string {
	if crumb[0] == '0' {
		return "1" + crumb[1:]
	}
	return "0" + crumb[1:]
}

// Item.Discover without Item.Read: Jenkins.getItem (and a folder's, and a
// queue item's getApi) throws a plain AccessDeniedException, a 403 without
// the X-Required-Permission diagnosis; without Discover the item is a 404.
func TestDiscoverWithoutRead_403WithoutRequiredPermission(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	s.AddUser("dora", "Dora", "dora-token")
	s.Grant("dora", "backend", PermDiscover)
	w := call(t, s, "POST", "/job/backend/job/api/buildWithParameters?ENV=production", "admin")
	qpath := queuePath(t, w.Header().Get("Location"))
	for _, p := range []string{"/job/backend/api/json", "/job/backend/job/api/api/json", "/job/BACKEND/job/api/3/consoleText", qpath} {
		w := call(t, s, "GET", p, "dora")
		h := w.Header()
		if w.Code != http.StatusForbidden || h.Get("X-Required-Permission") != "" || h.Get("X-You-Are-Authenticated-As") != "" ||
			!strings.HasPrefix(h.Get("Content-Type"), "text/html") || !strings.Contains(w.Body.String(), "Please log") {
			t.Errorf("%s as dora: %d %v %q", p, w.Code, h, w.Body.String())
		}
		// carol, without Discover, gets the 404 of a missing item.
		if w := call(t, s, "GET", p, "carol"); w.Code != http.StatusNotFound {
			t.Errorf("%s as carol: %d", p, w.Code)
		}
	}
	if jobs := getJSON(t, s, "/api/json", "dora")["jobs"].([]any); len(jobs) != 0 {
		t.Errorf("dora lists %v", jobs)
	}
	if w := call(t, s, "GET", "/job/backend/job/nothing/api/json", "dora"); w.Code != http.StatusForbidden {
		t.Errorf("a missing job in a discoverable folder: %d (the folder itself is refused first)", w.Code)
	}
}

// Overall/Read is needed for everything: without it every URL is a 403
// naming hudson.model.Hudson.Read, an HTML page.
func TestWithoutOverallRead_403Everywhere(t *testing.T) {
	t.Parallel()
	s := Sample(&Options{Clock: NewFakeClock(t0), NoImplicitOverallRead: true})
	s.Grant(SampleBob, "", PermOverallRead)
	for _, p := range []string{"/api/json", "/me/api/json", "/job/frontend/job/web-app/api/json", "/queue/api/json", "/job/nope/api/json"} {
		w := call(t, s, "GET", p, "alice")
		h := w.Header()
		if w.Code != http.StatusForbidden || h.Get("X-Required-Permission") != string(PermOverallRead) ||
			h.Get("X-You-Are-Authenticated-As") != "alice" || !strings.HasPrefix(h.Get("Content-Type"), "text/html") ||
			!strings.Contains(w.Body.String(), "alice is missing the Overall/Read permission") {
			t.Errorf("%s as alice: %d %v %q", p, w.Code, h, w.Body.String())
		}
		if !slices.Equal(h.Values("X-Permission-Implied-By"), []string{"hudson.security.Permission.GenericRead", string(PermAdminister)}) {
			t.Errorf("%s: X-Permission-Implied-By %v", p, h.Values("X-Permission-Implied-By"))
		}
	}
	if w := call(t, s, "GET", "/job/frontend/job/web-app/api/json", "bob"); w.Code != http.StatusOK {
		t.Errorf("bob, granted Overall/Read: %d", w.Code)
	}
	if w := call(t, s, "GET", "/api/json", "admin"); w.Code != http.StatusOK {
		t.Errorf("admin (Administer implies Overall/Read): %d", w.Code)
	}
}

// A bearer token jwt-auth-filter refuses runs as anonymous: with
// anonymous granted Overall/Read and Read on frontend, the answer is
// anonymous's view, not a 401.
func TestRefusedBearer_RunsAsAnonymous(t *testing.T) {
	t.Parallel()
	s := Sample(&Options{Clock: NewFakeClock(t0), BearerAuth: func(tok string) (string, bool) { return "alice", tok == "good" }})
	s.Grant(Anonymous, "", PermOverallRead)
	s.Grant(Anonymous, "frontend", PermRead)
	bad := withHeader("Authorization", "Bearer expired")
	root := getJSONWith(t, s, "/api/json", bad)
	if got := names(t, root, "jobs"); !slices.Equal(got, []string{"frontend"}) {
		t.Errorf("anonymous's view of the root: %v", got)
	}
	w := call(t, s, "POST", "/job/frontend/job/web-app/build", "", bad)
	if h := w.Header(); w.Code != http.StatusForbidden || h.Get("X-You-Are-Authenticated-As") != Anonymous || h.Get("X-Required-Permission") != string(PermBuild) {
		t.Errorf("build with a refused bearer token: %d %v", w.Code, h)
	}
	if w := call(t, s, "GET", "/me/api/json", "", bad); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "Authentication required") {
		t.Errorf("/me with a refused bearer token: %d %q", w.Code, w.Body.String())
	}
	if w := call(t, s, "GET", "/job/backend/api/json", "", bad); w.Code != http.StatusNotFound {
		t.Errorf("backend as anonymous: %d", w.Code)
	}
	// On a path configured as a protected resource the plugin challenges.
	ch := Sample(&Options{Clock: NewFakeClock(t0), BearerChallenge: true, BearerAuth: func(tok string) (string, bool) { return "alice", tok == "good" }})
	w = call(t, ch, "GET", "/api/json", "", bad)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Header().Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("challenge: %d %v", w.Code, w.Header())
	}
}
