package tools_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

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
