package tools_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/identity"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jenkinstest"
	"github.com/butler-mcp/butler/internal/tools"
)

// bigInstance is 10,000 jobs in 200 nested folders: 8 top-level folders,
// each with 4 sub-folders, each with 5 sub-sub-folders (8+32+160 = 200),
// 50 jobs in every folder.
func bigInstance(b *testing.B) *jenkinstest.Server {
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	var folders []string
	for i := range 8 {
		top := fmt.Sprintf("team-%d", i)
		folders = append(folders, top)
		for j := range 4 {
			sub := fmt.Sprintf("%s/svc-%d", top, j)
			folders = append(folders, sub)
			for k := range 5 {
				folders = append(folders, fmt.Sprintf("%s/env-%d", sub, k))
			}
		}
	}
	for _, f := range folders {
		if err := sim.AddFolder(f); err != nil {
			b.Fatal(err)
		}
		for n := range 50 {
			if err := sim.AddJob(fmt.Sprintf("%s/job-%02d", f, n), jenkinstest.JobSpec{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return sim
}

// BenchmarkListAllJobs lists 10,000 jobs in 200 folders through the
// list_all_jobs tool, with the nested tree queries Butler uses, against a
// baseline that asks for one folder per request (what a client without
// tree queries does). It reports Jenkins requests per call.
func BenchmarkListAllJobs(b *testing.B) {
	sim := bigInstance(b)
	hs := httptest.NewServer(sim)
	defer hs.Close()
	for _, v := range []struct {
		name  string
		depth int
	}{{"tree_depth4", 4}, {"baseline_one_folder_per_request", 1}} {
		b.Run(v.name, func(b *testing.B) {
			jc, err := jenkins.New(hs.URL, &jenkins.Options{ListDepth: v.depth})
			if err != nil {
				b.Fatal(err)
			}
			p := identity.Principal{User: "admin", JenkinsUser: "admin", Local: true}
			ts, err := tools.New(tools.Deps{
				Jenkins:     jc,
				Credentials: credentials.Local{Credential: jenkins.Credential{User: "admin", APIToken: "admin-token"}},
				Authorizer:  authz.New(nil),
				Scope:       tools.FixedPrincipal(p),
				Logger:      slog.New(slog.DiscardHandler),
			})
			if err != nil {
				b.Fatal(err)
			}
			cs := connect(b, ts, nil)
			args := &mcp.CallToolParams{Name: "list_all_jobs", Arguments: map[string]any{"limit": 500}}
			sim.ResetRequests()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				res, err := cs.CallTool(context.Background(), args)
				if err != nil || res.IsError {
					b.Fatalf("list_all_jobs: %v %v", err, res)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(len(sim.Requests()))/float64(b.N), "jenkins-req/op")
			res, _ := cs.CallTool(context.Background(), args)
			if total := res.StructuredContent.(map[string]any)["total"]; total != float64(10000) {
				b.Fatalf("listed %v jobs, want 10000", total)
			}
		})
	}
}

// replay answers each request URI with the answer h gave the first time.
func replay(h http.Handler) *replayer {
	return &replayer{h: h, seen: map[string]*httptest.ResponseRecorder{}}
}

// replayer answers each request with the recorded answer to the same
// request, asking its handler only for requests it has not seen.
type replayer struct {
	mu   sync.Mutex
	h    http.Handler // nil once frozen
	seen map[string]*httptest.ResponseRecorder
}

// freeze drops the handler: only recorded answers are served from then on,
// and the simulator behind it can be collected.
func (p *replayer) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.h = nil
}

func (p *replayer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := r.Method + " " + r.URL.RequestURI() + " " + r.Header.Get("Authorization")
	p.mu.Lock()
	rec, ok := p.seen[key]
	if !ok && p.h != nil {
		rec = httptest.NewRecorder()
		p.h.ServeHTTP(rec, r)
		p.seen[key] = rec
	}
	p.mu.Unlock()
	if rec == nil {
		http.Error(w, "not recorded", http.StatusNotFound)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// connectClosing connects a client to a server of ts whose session ends
// when the client closes, so that a benchmark's toolsets (and the listings
// they cache) can be collected between iterations.
func connectClosing(b *testing.B, ts *tools.Toolset) *mcp.ClientSession {
	server := mcp.NewServer(&mcp.Implementation{Name: "butler", Version: "test"}, nil)
	ts.Register(server)
	st, ct := mcp.NewInMemoryTransports()
	ss, err := server.Connect(context.Background(), st, nil)
	if err != nil {
		b.Fatal(err)
	}
	cs, err := mcp.NewClient(&mcp.Implementation{Name: "bench", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		_ = cs.Wait()
		_ = ss.Close()
	}()
	return cs
}

// hugeInstance is 100,000 jobs: 20 folders of 5,000.
func hugeInstance(b *testing.B) *jenkinstest.Server {
	sim := jenkinstest.New(&jenkinstest.Options{Executors: -1})
	sim.AddUser("admin", "Admin", "admin-token")
	sim.Grant("admin", "", jenkinstest.PermAdminister)
	for i := range 20 {
		f := fmt.Sprintf("team-%02d", i)
		if err := sim.AddFolder(f); err != nil {
			b.Fatal(err)
		}
		for n := range 5000 {
			if err := sim.AddJob(fmt.Sprintf("%s/job-%04d", f, n), jenkinstest.JobSpec{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	return sim
}

// BenchmarkListAllJobs100k pages through 100,000 jobs with list_all_jobs
// (500 a page): "first_page" is a call that must fetch the listing from
// Jenkins, "later_page" one served from the 30 s listing cache (the
// baseline of the same run: the cost of the tool around the listing), and
// "ten_concurrent_first_pages" is ten callers with their own listings at
// once, reporting the peak heap in use (peak-MB) and its part above the
// heap before the listings (above-idle-MB; the target is 150 MB).
func BenchmarkListAllJobs100k(b *testing.B) {
	// The simulator renders each answer once; later requests for the same
	// URL get the recorded bytes, so the heap measured is Butler's, not
	// the simulator's rendering.
	rp := replay(hugeInstance(b))
	hs := httptest.NewServer(rp)
	defer hs.Close()
	newSet := func(b *testing.B) (*tools.Toolset, *mcp.ClientSession) {
		// A generous call timeout: ten listings of 100,000 jobs on two
		// busy cores take longer than jenkins.timeout's default, and the
		// benchmark measures their cost, not the deadline.
		jc, err := jenkins.New(hs.URL, &jenkins.Options{Timeout: 2 * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		p := identity.Principal{User: "admin", JenkinsUser: "admin", Local: true}
		ts, err := tools.New(tools.Deps{
			Jenkins:     jc,
			Credentials: credentials.Local{Credential: jenkins.Credential{User: "admin", APIToken: "admin-token"}},
			Authorizer:  authz.New(nil),
			Scope:       tools.FixedPrincipal(p),
			Logger:      slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		return ts, connectClosing(b, ts)
	}
	call := func(b *testing.B, cs *mcp.ClientSession, cursor string) string {
		args := map[string]any{"limit": 500}
		if cursor != "" {
			args["cursor"] = cursor
		}
		res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: "list_all_jobs", Arguments: args})
		if err != nil || res.IsError {
			b.Fatalf("list_all_jobs: %v %v", err, res)
		}
		out := res.StructuredContent.(map[string]any)
		next, _ := out["next_cursor"].(string)
		return next
	}
	b.Run("first_page", func(b *testing.B) {
		for b.Loop() {
			_, cs := newSet(b) // a new toolset: nothing cached
			call(b, cs, "")
			_ = cs.Close() // the toolset and its cached listing go
		}
	})
	b.Run("later_page", func(b *testing.B) {
		_, cs := newSet(b)
		next := call(b, cs, "")
		b.ResetTimer()
		for b.Loop() {
			if n := call(b, cs, next); n != "" {
				next = n
			}
		}
	})
	b.Run("ten_concurrent_first_pages", func(b *testing.B) {
		// Idle is the heap before the listings: the simulator's 100,000
		// jobs and its recorded answers live in this process too, and are
		// not Butler's. above-idle-MB is Butler's share (the target).
		_, warm := newSet(b)
		call(b, warm, "") // records the listing's answer
		_ = warm.Close()
		rp.freeze()
		runtime.GC()
		var idle runtime.MemStats
		runtime.ReadMemStats(&idle)
		var peak uint64
		stop := make(chan struct{})
		sampled := make(chan struct{})
		go func() {
			defer close(sampled)
			var ms runtime.MemStats
			for {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapInuse)
				select {
				case <-stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
		for b.Loop() {
			var wg sync.WaitGroup
			for range 10 {
				_, cs := newSet(b)
				wg.Go(func() {
					call(b, cs, "")
					_ = cs.Close() // this caller's cached listing goes with it
				})
			}
			wg.Wait()
		}
		close(stop)
		<-sampled
		b.ReportMetric(float64(peak)/1e6, "peak-MB")
		b.ReportMetric(float64(peak-min(peak, idle.HeapInuse))/1e6, "above-idle-MB")
	})
}
