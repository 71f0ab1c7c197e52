package jenkinstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// listingTree is the listing Butler's list_all_jobs asks for, five levels
// deep.
func listingTree() string {
	const fields = "fullName,name,url,color,buildable,lastBuild[number]"
	t := fields
	for range 4 {
		t = fields + ",jobs[" + t + "]"
	}
	return "jobs[" + t + "]"
}

// bigServer has 10,000 jobs in 200 folders: 100 top-level folders, each
// with 50 jobs and a subfolder "svc" of 50 more; every job has one build.
// "dev" may read half of the top-level folders.
func bigServer(tb testing.TB) *Server {
	tb.Helper()
	s := New(&Options{Clock: NewFakeClock(t0)})
	s.AddUser("admin", "Admin", "admin-token")
	s.AddUser("dev", "Dev", "dev-token")
	s.Grant("admin", "", PermAdminister)
	for f := range 100 {
		top := fmt.Sprintf("team-%03d", f)
		if f%2 == 0 {
			s.Grant("dev", top, PermRead)
		}
		for _, folder := range []string{top, top + "/svc"} {
			for j := range 50 {
				p := fmt.Sprintf("%s/job-%02d", folder, j)
				if err := s.AddJob(p, JobSpec{Log: []string{}}); err != nil {
					tb.Fatal(err)
				}
				if _, err := s.AddBuild(p, BuildSpec{Result: []string{"SUCCESS", "FAILURE", "UNSTABLE"}[j%3]}); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	return s
}

func listingRequest(user string) *http.Request {
	r := httptest.NewRequest("GET", "http://jenkins.test/api/json?tree="+url.QueryEscape(listingTree()), nil)
	r.SetBasicAuth(user, user+"-token")
	return r
}

func countJobs(v any) (jobs, folders int) {
	m, _ := v.(map[string]any)
	for _, c := range m["jobs"].([]any) {
		cm := c.(map[string]any)
		if _, ok := cm["jobs"]; ok {
			folders++
			j, f := countJobs(cm)
			jobs, folders = jobs+j, folders+f
		} else {
			jobs++
		}
	}
	return jobs, folders
}

func TestListing10000Jobs_FastAndComplete(t *testing.T) {
	t.Parallel()
	s := bigServer(t)
	for _, tc := range []struct {
		user          string
		jobs, folders int
	}{{"admin", 10000, 200}, {"dev", 5000, 100}} {
		r := listingRequest(tc.user)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r) // warm up
		best := time.Hour
		for range 3 {
			w = httptest.NewRecorder()
			start := time.Now()
			s.ServeHTTP(w, r)
			best = min(best, time.Since(start))
		}
		limit := 200 * time.Millisecond
		if raceEnabled {
			limit = 2 * time.Second // the race detector slows everything down
		}
		if best > limit {
			t.Errorf("%s: listing took %v, want < %v", tc.user, best, limit)
		}
		var v any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		if j, f := countJobs(v); j != tc.jobs || f != tc.folders {
			t.Errorf("%s: listed %d jobs in %d folders, want %d in %d", tc.user, j, f, tc.jobs, tc.folders)
		}
		if !strings.Contains(w.Body.String(), `"lastBuild":{"_class":"hudson.model.FreeStyleBuild","number":1}`) {
			t.Errorf("%s: lastBuild not shaped by the tree", tc.user)
		}
		t.Logf("%s: %d bytes in %v", tc.user, w.Body.Len(), best)
	}
}

func BenchmarkListing10000Jobs(b *testing.B) {
	s := bigServer(b)
	for _, user := range []string{"admin", "dev"} {
		b.Run(user, func(b *testing.B) {
			r := listingRequest(user)
			b.ReportAllocs()
			var n int
			for b.Loop() {
				w := httptest.NewRecorder()
				s.ServeHTTP(w, r)
				n = w.Body.Len()
			}
			b.SetBytes(int64(n))
		})
	}
}
