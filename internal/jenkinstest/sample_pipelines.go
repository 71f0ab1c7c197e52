package jenkinstest

import (
	"fmt"
	"time"
)

// SampleReleaseManagers is the Jenkins group alice is in, which the
// submitter list of frontend/release's approval names.
const SampleReleaseManagers = "release-managers"

// addSamplePipelines adds the Sample instance's Pipeline jobs with stages:
//
//	frontend/release       pipeline: Build, Test (parallel branches linux and windows, each with a stage "Test"),
//	                       Approve (input, submitter "release-managers": alice's group), Deploy;
//	                       #1 SUCCESS, #2 FAILURE (the linux Test stage fails), #3 waits at the approval
//	frontend/site-preview  pipeline: Build, Publish (input without submitter: anyone with Item.Build); #1 waits
func addSamplePipelines(s *Server, now time.Time) {
	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("jenkinstest: sample pipelines: %v", err))
		}
	}
	ago := func(h float64) time.Time { return now.Add(-time.Duration(h * float64(time.Hour))) }
	s.SetUserGroups(SampleAlice, SampleReleaseManagers)
	must(s.AddJob("frontend/release", JobSpec{Class: ClassWorkflowJob, Description: "Builds, tests on two platforms, and releases the web app after approval",
		Duration: 30 * time.Second, QuietPeriod: 2 * time.Second}))
	must(s.AddJob("frontend/site-preview", JobSpec{Class: ClassWorkflowJob, Description: "Publishes a preview of the web site",
		Duration: 20 * time.Second, QuietPeriod: 2 * time.Second}))
	add := func(job string, b PipelineBuildSpec) {
		_, err := s.AddPipelineBuild(job, b)
		must(err)
	}
	add("frontend/release", PipelineBuildSpec{UserID: SampleAlice, Timestamp: ago(26), Pipeline: releasePipeline(false, SampleAlice)})
	add("frontend/release", PipelineBuildSpec{UserID: SampleAlice, Timestamp: ago(5), Pipeline: releasePipeline(true, "")})
	add("frontend/release", PipelineBuildSpec{UserID: SampleCarol, Timestamp: ago(1), Pipeline: releasePipeline(false, "")})
	add("frontend/site-preview", PipelineBuildSpec{UserID: SampleCarol, Timestamp: ago(0.5), Pipeline: PipelineSpec{Stages: []StageSpec{
		{Name: "Build", Steps: []StepSpec{{Function: "sh", Log: []string{"+ hugo --minify", "Total in 812 ms"}, Duration: 4 * time.Second}}},
		{Name: "Publish", Steps: []StepSpec{{Input: &InputSpec{ID: "Publish", Message: "Publish the preview?", OK: "Publish"}}}},
	}}})
}

// releasePipeline is frontend/release's script; with failLinux the
// linux branch's tests fail, and the later stages are skipped; with
// approvedBy the approval was given by that user.
func releasePipeline(failLinux bool, approvedBy string) PipelineSpec {
	linuxTest := StepSpec{Function: "sh", Duration: 40 * time.Second, Log: []string{
		"+ npm test -- --reporter dot",
		"  312 passing (38s)",
	}}
	if failLinux {
		linuxTest.Log = []string{
			"+ npm test -- --reporter dot",
			"  309 passing (37s)",
			"  3 failing",
			"",
			"  1) checkout: applies the discount code",
			"     AssertionError: expected 90 to equal 81",
			"  2) checkout: rejects an expired code",
			"     Error: Timeout of 2000ms exceeded",
			"  3) cart: keeps items after login",
			"     TypeError: Cannot read properties of undefined (reading 'items')",
		}
		linuxTest.Result, linuxTest.Error = "FAILURE", "script returned exit code 3"
	}
	return PipelineSpec{Stages: []StageSpec{
		{Name: "Build", Steps: []StepSpec{
			{Function: "sh", Duration: 20 * time.Second, Log: []string{"+ npm ci", "added 1321 packages in 14s", "+ npm run build", "webpack compiled successfully"}},
		}},
		{Name: "Test", Parallel: []BranchSpec{
			{Name: "linux", Stages: []StageSpec{{Name: "Test", Steps: []StepSpec{linuxTest}}}},
			{Name: "windows", Stages: []StageSpec{{Name: "Test", Steps: []StepSpec{
				{Function: "bat", Name: "Windows Batch Script", Duration: 55 * time.Second, Log: []string{"> npm test -- --reporter dot", "  312 passing (51s)"}},
			}}}},
		}},
		{Name: "Approve", Steps: []StepSpec{{Input: &InputSpec{ID: "Release", Message: "Release this build to production?", OK: "Release",
			Submitter: SampleReleaseManagers, AnsweredBy: approvedBy,
			Params: []Param{
				{Name: "TARGET", Type: "choice", Choices: []string{"eu-west", "us-east"}, Description: "Region to release to first"},
				{Name: "NOTES", Type: "string", Default: "", Description: "Release notes"},
			}}}}},
		{Name: "Deploy", Steps: []StepSpec{
			{Function: "sh", Duration: 15 * time.Second, Log: []string{"+ ./deploy.sh", "Deploying web-app to production ... ok"}},
		}},
	}}
}
