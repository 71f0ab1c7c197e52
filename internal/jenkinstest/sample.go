package jenkinstest

import (
	"fmt"
	"time"
)

// The users of the Sample instance, and their API tokens (Basic
// authentication is id:token).
const (
	SampleAlice      = "alice" // Alice Smith: Read+Build+Cancel on frontend, Read on backend and prod
	SampleBob        = "bob"   // Bob Jones: Read on frontend, backend and prod
	SampleCarol      = "carol" // Carol White: Read+Build on frontend, Read on prod, nothing on backend
	SampleAdmin      = "admin" // Jenkins Admin: everything
	SampleAliceToken = "alice-token"
	SampleBobToken   = "bob-token"
	SampleCarolToken = "carol-token"
	SampleAdminToken = "admin-token"
)

// Sample returns the demo instance: the users above and these items.
//
//	frontend/                     Folder
//	  web-app                     freestyle, 30s builds, 3s quiet period, test report; #6 FAILED with failing tests and a ~300-line log
//	  docs                        pipeline
//	  legacy-site                 freestyle, disabled
//	  release, site-preview       pipelines with stages and input steps (sample_pipelines.go)
//	  Release Notes               freestyle (a name with a space)
//	  mobile/                     WorkflowMultiBranchProject
//	    main                      pipeline
//	    feature%2Flogin           pipeline (the name contains "%2F", as Jenkins names branch jobs)
//	backend/                      Folder
//	  api                         freestyle, parameters BRANCH (string, "main"), ENV (choice staging|production),
//	                              DRY_RUN (boolean, true), NOTES (text), DEPLOY_TOKEN (password); test report;
//	                              #3 FAILED with failing tests and a ~400-line log
//	  worker                      freestyle, concurrent builds
//	prod/                         Folder
//	  deploy                      freestyle, parameters TARGET (choice eu-west|us-east), CANARY (boolean, false), 60s builds
//
// Some builds archived artifacts and built git commits (sample_artifacts.go);
// frontend/release and frontend/site-preview are Pipelines with stages and
// input steps (sample_pipelines.go). The instance has these nodes: the built-in node without executors (Jenkins's advice
// for a controller: builds run on agents), linux-agent-1 (labels linux,
// docker) with the executors opts asks for, and mac-agent-1 (label macos),
// which the admin took offline ("Waiting for the Xcode upgrade").
//
// Past builds are spread over the last days before opts.Clock's current
// time. opts is used as New uses it.
func Sample(opts *Options) *Server {
	s := New(opts)
	now := s.Now()
	ago := func(h float64) time.Time { return now.Add(-time.Duration(h * float64(time.Hour))) }

	s.AddUser(SampleAlice, "Alice Smith", SampleAliceToken)
	s.AddUser(SampleBob, "Bob Jones", SampleBobToken)
	s.AddUser(SampleCarol, "Carol White", SampleCarolToken)
	s.AddUser(SampleAdmin, "Jenkins Admin", SampleAdminToken)
	s.Grant(SampleAlice, "frontend", PermRead, PermBuild, PermCancel)
	s.Grant(SampleAlice, "backend", PermRead)
	s.Grant(SampleAlice, "prod", PermRead)
	for _, f := range []string{"frontend", "backend", "prod"} {
		s.Grant(SampleBob, f, PermRead)
	}
	s.Grant(SampleCarol, "frontend", PermRead, PermBuild)
	s.Grant(SampleCarol, "prod", PermRead)
	s.Grant(SampleAdmin, "", PermAdminister)

	must := func(err error) {
		if err != nil {
			panic(fmt.Sprintf("jenkinstest: sample: %v", err))
		}
	}
	addBuild := func(job string, b BuildSpec) {
		_, err := s.AddBuild(job, b)
		must(err)
	}
	for _, f := range []string{"frontend", "backend", "prod"} {
		must(s.AddFolderSpec(f, FolderSpec{Description: "The " + f + " team's jobs"}))
	}
	must(s.AddFolderSpec("frontend/mobile", FolderSpec{Class: ClassMultiBranch, Description: "Mobile app, one job per branch"}))

	// frontend/web-app
	must(s.AddJob("frontend/web-app", JobSpec{
		Description: "Builds and tests the customer web app",
		QuietPeriod: 3 * time.Second,
		Duration:    30 * time.Second,
		Log:         webAppLog(false, 24),
		Tests:       webAppTests(false),
	}))
	for i, u := range []string{SampleAlice, "", SampleAlice, "", SampleAdmin} {
		addBuild("frontend/web-app", BuildSpec{UserID: u, Timestamp: ago(float64(50 - 8*i)), Duration: time.Duration(28+i) * time.Second,
			Log: webAppLog(false, 24), Tests: webAppTests(false)})
	}
	addBuild("frontend/web-app", BuildSpec{Result: "FAILURE", UserID: SampleAlice, Timestamp: ago(2), Duration: 41 * time.Second,
		Log: webAppLog(true, 300), Tests: webAppTests(true)})

	// frontend/docs
	must(s.AddJob("frontend/docs", JobSpec{Class: ClassWorkflowJob, Description: "Publishes the developer documentation", Duration: 20 * time.Second, QuietPeriod: 2 * time.Second}))
	for i := range 3 {
		addBuild("frontend/docs", BuildSpec{Timestamp: ago(float64(30 - 10*i)), Duration: time.Duration(19+i) * time.Second})
	}

	// frontend/legacy-site
	must(s.AddJob("frontend/legacy-site", JobSpec{Description: "Old marketing site (retired)", Disabled: true, Duration: 25 * time.Second}))
	addBuild("frontend/legacy-site", BuildSpec{Timestamp: ago(24 * 40), Duration: 25 * time.Second})
	addBuild("frontend/legacy-site", BuildSpec{Result: "FAILURE", Timestamp: ago(24 * 30), Duration: 12 * time.Second})

	// frontend/Release Notes
	must(s.AddJob("frontend/Release Notes", JobSpec{Description: "Generates the release notes", Duration: 20 * time.Second, QuietPeriod: 2 * time.Second}))
	addBuild("frontend/Release Notes", BuildSpec{UserID: SampleCarol, Timestamp: ago(20), Duration: 18 * time.Second})

	// frontend/mobile branches
	for _, br := range []string{"main", "feature%2Flogin"} {
		must(s.AddJob("frontend/mobile/"+br, JobSpec{Class: ClassWorkflowJob, Description: "Branch " + br, Duration: 35 * time.Second, QuietPeriod: 2 * time.Second}))
	}
	addBuild("frontend/mobile/main", BuildSpec{Timestamp: ago(12), Duration: 33 * time.Second})
	addBuild("frontend/mobile/main", BuildSpec{UserID: SampleAlice, Timestamp: ago(6), Duration: 36 * time.Second})
	addBuild("frontend/mobile/feature%2Flogin", BuildSpec{Result: "UNSTABLE", UserID: SampleAlice, Timestamp: ago(3), Duration: 34 * time.Second})

	// backend/api
	must(s.AddJob("backend/api", JobSpec{
		Description: "Builds, tests and deploys the public API",
		QuietPeriod: 5 * time.Second,
		Duration:    45 * time.Second,
		Params: []Param{
			{Name: "BRANCH", Type: "string", Default: "main", Description: "Git branch to build"},
			{Name: "ENV", Type: "choice", Choices: []string{"staging", "production"}, Description: "Where to deploy"},
			{Name: "DRY_RUN", Type: "boolean", Default: true, Description: "Skip the actual deployment"},
			{Name: "NOTES", Type: "text", Description: "Release notes"},
			{Name: "DEPLOY_TOKEN", Type: "password", Description: "Token for the deployment service"},
		},
		Log:   apiLog(false, 40),
		Tests: apiTests(false),
	}))
	addBuild("backend/api", BuildSpec{UserID: SampleAdmin, Timestamp: ago(72), Duration: 44 * time.Second,
		Params: map[string]any{"ENV": "staging", "DRY_RUN": false}, Log: apiLog(false, 40), Tests: apiTests(false)})
	addBuild("backend/api", BuildSpec{Timestamp: ago(48), Duration: 47 * time.Second, Log: apiLog(false, 40), Tests: apiTests(false)})
	addBuild("backend/api", BuildSpec{Result: "FAILURE", UserID: SampleAdmin, Timestamp: ago(26), Duration: 52 * time.Second,
		Params: map[string]any{"BRANCH": "feature/rate-limits", "ENV": "staging"}, Log: apiLog(true, 400), Tests: apiTests(true)})
	addBuild("backend/api", BuildSpec{UserID: SampleAdmin, Timestamp: ago(4), Duration: 43 * time.Second,
		Params: map[string]any{"BRANCH": "main", "ENV": "production", "DRY_RUN": false, "NOTES": "Rate limits per key"},
		Log:    apiLog(false, 40), Tests: apiTests(false)})

	// backend/worker
	must(s.AddJob("backend/worker", JobSpec{Description: "Background job runner", Concurrent: true, Duration: 40 * time.Second, QuietPeriod: 2 * time.Second}))
	for i := range 3 {
		addBuild("backend/worker", BuildSpec{Timestamp: ago(float64(36 - 12*i)), Duration: time.Duration(38+i) * time.Second})
	}

	// prod/deploy
	must(s.AddJob("prod/deploy", JobSpec{
		Description: "Deploys a release to production",
		QuietPeriod: 5 * time.Second,
		Duration:    60 * time.Second,
		Params: []Param{
			{Name: "TARGET", Type: "choice", Choices: []string{"eu-west", "us-east"}, Description: "Region"},
			{Name: "CANARY", Type: "boolean", Default: false, Description: "Deploy to the canary fleet first"},
		},
		Log: deployLog(),
	}))
	addBuild("prod/deploy", BuildSpec{UserID: SampleAdmin, Timestamp: ago(70), Duration: 58 * time.Second, Params: map[string]any{"TARGET": "eu-west"}, Log: deployLog()})
	addBuild("prod/deploy", BuildSpec{Result: "ABORTED", UserID: SampleAdmin, Timestamp: ago(30), Duration: 21 * time.Second,
		Params: map[string]any{"TARGET": "us-east", "CANARY": true}, Log: deployLog()[:6]})
	addBuild("prod/deploy", BuildSpec{UserID: SampleAdmin, Timestamp: ago(5), Duration: 61 * time.Second, Params: map[string]any{"TARGET": "us-east"}, Log: deployLog()})
	addSampleSCM(s, now)       // artifacts and change logs (sample_artifacts.go)
	addSamplePipelines(s, now) // Pipeline builds with stages and inputs (sample_pipelines.go)
	sampleNodes(s, must)
	addSampleDiagnosis(s) // failed builds of the diagnosis corpus (sample_diagnosis.go)
	return s
}

func webModules() []string {
	return []string{"components/Button", "components/Header", "components/Footer", "checkout/Cart", "checkout/Payment",
		"search/SearchBox", "search/Results", "account/Login", "account/Profile", "lib/api", "lib/format", "lib/i18n"}
}

// webAppLog is a plausible npm build of n lines (at least 20).
func webAppLog(fail bool, n int) []string {
	lines := []string{
		"Running as SYSTEM",
		"Building in workspace /var/jenkins_home/workspace/frontend/web-app",
		"The recommended git tool is: NONE",
		" > git rev-parse --resolve-git-dir /var/jenkins_home/workspace/frontend/web-app/.git # timeout=10",
		"Fetching changes from the remote Git repository",
		"Checking out Revision 4f2a9c1e7b3d5a6f8e9d0c1b2a3f4e5d6c7b8a9f (refs/remotes/origin/main)",
		"[web-app] $ /bin/sh -xe /tmp/jenkins3141592653.sh",
		"+ npm ci",
		"added 1287 packages in 21s",
		"+ npm run build",
		"> web-app@3.4.0 build",
		"> vite build",
	}
	body := n - len(lines) - 8
	mods := webModules()
	for i := 0; i < body; i++ {
		m := mods[i%len(mods)]
		lines = append(lines, fmt.Sprintf("transforming src/%s.tsx (%d/%d) %d.%d kB", m, i+1, body, 3+i%17, i%10))
	}
	lines = append(lines, "✓ built in 14.21s", "+ npm test -- --ci --reporters=jest-junit")
	if fail {
		lines = append(lines,
			"FAIL src/checkout/Cart.test.tsx",
			"  ● Cart › applies the discount code",
			"    expect(received).toBe(expected) // Object.is equality",
			"    Expected: 90",
			"    Received: 100",
			"Tests: 2 failed, 10 passed, 12 total",
			"Build step 'Execute shell' marked build as failure",
			"Recording test results")
	} else {
		lines = append(lines,
			"PASS src/checkout/Cart.test.tsx",
			"PASS src/search/Results.test.tsx",
			"PASS src/account/Login.test.tsx",
			"Tests: 12 passed, 12 total",
			"Snapshots: 4 passed, 4 total",
			"Recording test results")
	}
	return lines
}

func webAppTests(fail bool) *TestReport {
	var cases []TestCase
	for i, m := range webModules() {
		c := TestCase{Suite: "src/" + m + ".test.tsx", Class: "web-app." + m, Name: "renders", Status: "PASSED", Duration: float64(5+i) / 100}
		cases = append(cases, c)
	}
	if fail {
		cases[3] = TestCase{Suite: "src/checkout/Cart.test.tsx", Class: "web-app.checkout/Cart", Name: "applies the discount code",
			Status: "REGRESSION", ErrorDetails: "expect(received).toBe(expected)\n\nExpected: 90\nReceived: 100", Duration: 0.31}
		cases[4] = TestCase{Suite: "src/checkout/Payment.test.tsx", Class: "web-app.checkout/Payment", Name: "rejects an expired card",
			Status: "FAILED", ErrorDetails: "Timeout - Async callback was not invoked within the 5000 ms timeout", Duration: 5.0}
	}
	cases = append(cases, TestCase{Suite: "src/lib/legacy.test.tsx", Class: "web-app.lib/legacy", Name: "IE11 polyfills", Status: "SKIPPED"})
	return &TestReport{Cases: cases}
}

func apiPackages() []string {
	return []string{"com.example.api.auth", "com.example.api.billing", "com.example.api.orders", "com.example.api.ratelimit", "com.example.api.search"}
}

// apiLog is a plausible Gradle build of about n lines.
func apiLog(fail bool, n int) []string {
	lines := []string{
		"Running as SYSTEM",
		"Building in workspace /var/jenkins_home/workspace/backend/api",
		"[api] $ /bin/sh -xe /tmp/jenkins2718281828.sh",
		"+ ./gradlew --no-daemon clean build",
		"Starting a Gradle Daemon (subsequent builds will be faster)",
		"> Task :clean",
		"> Task :compileJava",
		"> Task :processResources",
		"> Task :classes",
		"> Task :compileTestJava",
		"> Task :test",
	}
	body := n - len(lines) - 8
	pkgs := apiPackages()
	for i := 0; i < body; i++ {
		p := pkgs[i%len(pkgs)]
		status := "PASSED"
		if fail && i == body/2 {
			status = "FAILED"
		}
		lines = append(lines, fmt.Sprintf("%s.Handler%dTest > case%d() %s", p, i%7, i, status))
	}
	if fail {
		lines = append(lines,
			"com.example.api.ratelimit.LimiterTest > refillsAfterWindow() FAILED",
			"    org.opentest4j.AssertionFailedError: expected: <10> but was: <0>",
			"        at com.example.api.ratelimit.LimiterTest.refillsAfterWindow(LimiterTest.java:88)",
			fmt.Sprintf("%d tests completed, 2 failed", body+1),
			"> Task :test FAILED",
			"FAILURE: Build failed with an exception.",
			"BUILD FAILED in 49s",
			"Build step 'Invoke Gradle script' changed build result to FAILURE")
	} else {
		lines = append(lines,
			"> Task :check",
			"> Task :build",
			"+ ./deploy.sh --dry-run",
			"Deploying api 2.14.0 ... done",
			"BUILD SUCCESSFUL in 41s",
			"7 actionable tasks: 7 executed",
			"Recording test results",
			"Archiving artifacts")
	}
	return lines
}

func apiTests(fail bool) *TestReport {
	var cases []TestCase
	for i, p := range apiPackages() {
		for k := range 4 {
			cases = append(cases, TestCase{Suite: p + ".HandlerTest", Class: p + ".HandlerTest", Name: fmt.Sprintf("case%d", k),
				Status: "PASSED", Duration: 0.01 * float64(1+i+k)})
		}
	}
	if fail {
		cases = append(cases,
			TestCase{Suite: "com.example.api.ratelimit.LimiterTest", Class: "com.example.api.ratelimit.LimiterTest", Name: "refillsAfterWindow",
				Status: "REGRESSION", ErrorDetails: "expected: <10> but was: <0>", Duration: 1.2},
			TestCase{Suite: "com.example.api.ratelimit.LimiterTest", Class: "com.example.api.ratelimit.LimiterTest", Name: "burstIsCapped",
				Status: "FAILED", ErrorDetails: "expected: <20> but was: <21>", Duration: 0.4})
	} else {
		cases = append(cases,
			TestCase{Suite: "com.example.api.ratelimit.LimiterTest", Class: "com.example.api.ratelimit.LimiterTest", Name: "refillsAfterWindow", Status: "PASSED", Duration: 1.1},
			TestCase{Suite: "com.example.api.ratelimit.LimiterTest", Class: "com.example.api.ratelimit.LimiterTest", Name: "burstIsCapped", Status: "PASSED", Duration: 0.3})
	}
	return &TestReport{Cases: cases}
}

func deployLog() []string {
	return []string{
		"Running as SYSTEM",
		"Building in workspace /var/jenkins_home/workspace/prod/deploy",
		"[deploy] $ /bin/sh -xe /tmp/jenkins1618033988.sh",
		"+ ./release.sh",
		"Resolving release artifact api-2.14.0.tar.gz",
		"Checking health of the target fleet: 12/12 healthy",
		"Draining traffic from batch 1 of 3",
		"Deploying batch 1 of 3 ... ok",
		"Draining traffic from batch 2 of 3",
		"Deploying batch 2 of 3 ... ok",
		"Draining traffic from batch 3 of 3",
		"Deploying batch 3 of 3 ... ok",
		"Smoke tests: 24 passed",
		"Release api-2.14.0 is live",
	}
}

// Sample's agents (see Sample).
const (
	SampleAgent        = "linux-agent-1"
	SampleOfflineAgent = "mac-agent-1"
	// SampleOfflineMessage is why the admin took SampleOfflineAgent
	// offline.
	SampleOfflineMessage = "Waiting for the Xcode upgrade"
)

// sampleNodes moves the built-in node's executors to an agent, so builds
// run where a well-run Jenkins runs them, and adds an offline agent.
func sampleNodes(s *Server, must func(error)) {
	s.mu.Lock()
	n := s.executors
	s.mu.Unlock()
	if n > 0 {
		must(s.AddNode(NodeSpec{Name: SampleAgent, Labels: "linux docker", Executors: n, Description: "Ubuntu 24.04 build agent"}))
		s.SetExecutors(0)
	}
	must(s.AddNode(NodeSpec{Name: SampleOfflineAgent, Labels: "macos", Executors: 1, Description: "macOS agent for the mobile app",
		OfflineBy: SampleAdmin, OfflineMessage: SampleOfflineMessage}))
}

// Jobs that SampleActivity adds.
const (
	SampleSlowBackendJob  = "backend/integration-tests" // freestyle, 50-minute builds
	SampleSlowFrontendJob = "frontend/e2e-nightly"      // pipeline, 40-minute builds
)

// SampleActivity makes a Sample instance busy, for the demo: two long
// builds running on linux-agent-1's two executors (one of a backend job,
// one of a frontend job, so users who may read only one folder see only
// one), a second build of the backend job queued behind the first
// (blocked), and a build of frontend/web-app waiting for an executor
// (buildable, after its 3 s quiet period). It returns the ids of the two
// queue items. Call it once, on an instance made by Sample with the
// default executors.
func SampleActivity(s *Server) (blocked, buildable int64, err error) {
	now := s.Now()
	if err := s.AddJob(SampleSlowBackendJob, JobSpec{Description: "End-to-end tests against staging (slow)", Duration: 50 * time.Minute,
		QuietPeriod: time.Second}); err != nil {
		return 0, 0, err
	}
	if err := s.AddJob(SampleSlowFrontendJob, JobSpec{Class: ClassWorkflowJob, Description: "Nightly browser tests", Duration: 40 * time.Minute}); err != nil {
		return 0, 0, err
	}
	for _, b := range []struct {
		job  string
		spec BuildSpec
	}{
		{SampleSlowBackendJob, BuildSpec{Building: true, UserID: SampleAdmin, Timestamp: now.Add(-10 * time.Minute)}},
		{SampleSlowFrontendJob, BuildSpec{Building: true, Timestamp: now.Add(-5 * time.Minute)}},
	} {
		if _, err := s.AddBuild(b.job, b.spec); err != nil {
			return 0, 0, err
		}
	}
	if blocked, err = s.Schedule(SampleSlowBackendJob, SampleAlice, nil); err != nil {
		return 0, 0, err
	}
	if buildable, err = s.Schedule("frontend/web-app", SampleCarol, nil); err != nil {
		return 0, 0, err
	}
	return blocked, buildable, nil
}
