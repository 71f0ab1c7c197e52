// Package jenkinstest is a simulated Jenkins controller: an http.Handler
// that answers the parts of Jenkins's REST API that Butler uses, closely
// enough that Butler's client, end-to-end tests, benchmarks and the
// "butler demo" command can run against it instead of a real Jenkins.
//
// # What is simulated
//
//   - Items: folders (including folder-like classes such as multibranch
//     projects and organization folders), freestyle and pipeline jobs, at
//     "job/a/job/b/" URLs whose segments are decoded exactly once. Names
//     are looked up as Jenkins does after a restart: case-insensitively at
//     the top level only (Jenkins.items), exactly inside folders
//     (ItemGroupMixIn.loadChildren); a multibranch project or organization
//     folder also finds a child by its NameEncoder-decoded and -encoded
//     spellings, so "feature%2Flogin" and "feature%252Flogin" (as they
//     arrive, decoded once) both reach the branch job "feature%2Flogin". GET api/json on the root, folders, jobs, builds, queue
//     items, the queue, /me and /crumbIssuer, with Jenkins's field names,
//     "_class" values and depth=0 shapes (checked against recorded fixtures
//     by TestFixtureShapes). The "tree" parameter works as in Stapler:
//     nesting to any depth, ranges {M,N} {M,} {,N} {N}, unknown names
//     ignored, "_class" always kept; JSON is written lazily, guided by the
//     tree, so a listing never computes fields it was not asked for.
//
//   - Triggering: POST build and buildWithParameters (query or form
//     parameters, defaults, choice validation), answered 201 with the
//     queue item's absolute Location made from the request. An identical
//     request (same job, same parameter set) folds into the queued item as
//     in Queue.scheduleInternal: no new item, the cause is added to it
//     (CauseAction.foldIntoExisting; the build prints each), a waiting item
//     keeps the earlier due time, and buildWithParameters answers 303 See
//     Other (build still 201, JENKINS-66105). "delay" is
//     jenkins.util.TimeDuration: a bare number is milliseconds, "N sec(s)"
//     seconds, truncated to whole seconds; anything else is a 500. A job
//     without its own quiet period uses the instance's (Options.QuietPeriod,
//     5 s as Jenkins.getQuietPeriod). File parameters
//     (FileParameterDefinition): no default (null), a form value is
//     dropped and only an uploaded multipart file becomes a value
//     (FileParameterValue, no "value").
//
//   - The queue: WaitingItem during the quiet period, BlockedItem while a
//     non-concurrent job builds, BuildableItem while no executor is free,
//     LeftItem once started or cancelled, readable for LeftItemTTL after.
//     POST queue/cancelItem answers 204, 404, 422 (and 500 for an item
//     that already left, as Jenkins does). queue/api/json lists the items
//     whose job the user may read by the job's own ACL (Queue.getItems),
//     and those they may only discover as stubs (getDiscoverableItems).
//
//   - Nodes (nodes.go): the built-in node and agents (AddNode), online or
//     offline with a cause (a user's, or a failed launch); builds run on
//     their executors. computer/api/json shows each executor's build only
//     to users who may read it (Executor.getCurrentExecutableForApi).
//
//   - Builds: run for their job's Duration on a limited number of
//     executors, print their console lines over that time (consoleText,
//     logText/progressiveText with X-Text-Size and X-More-Data), finish
//     with the job's result and test report (testReport/api/json); a
//     Pipeline's report appears while it runs, once its "[Pipeline] junit"
//     line is printed. Aggregated reports (MatrixTestResult,
//     SurefireAggregatedReport: counts, childReports with a reference to
//     each child run) and the junit status scheme of 1363 and later
//     (PASSED, FAILED, SKIPPED; Options.LegacyJUnitStatus for REGRESSION
//     and FIXED). POST stop aborts a running build (Item.Cancel); a finished
//     freestyle build just redirects, a finished Pipeline checks
//     Item.Cancel first (WorkflowRun.doKill); the answer is a 302 to the
//     Referer or to the build as the request named it. Permalinks lastBuild, lastCompletedBuild,
//     lastSuccessfulBuild, lastFailedBuild, lastStableBuild,
//     lastUnstableBuild and lastUnsuccessfulBuild resolve.
//
//   - Security: API-token Basic authentication, 401 for a wrong token;
//     optionally bearer tokens like the jwt-auth-filter plugin, which
//     ignores a token it refuses, so the request runs as anonymous (or,
//     with BearerChallenge, a 401 like its protected-resource filter).
//     Grants to users, to Anonymous and to Authenticated: Overall/Read
//     (every authenticated user has it unless NoImplicitOverallRead),
//     folder-scoped Item.Discover/Read/Build/Cancel, Administer. Without
//     Overall/Read every URL is 403 naming hudson.model.Hudson.Read. An
//     item a user cannot read or discover answers exactly like a missing
//     one (same status, headers and body: Jenkins's HTML 404 page) on
//     every URL under it and is left out of every listing and of the
//     queue; one they may only discover is a 403 without
//     X-Required-Permission; a missing Build or Cancel permission is 403
//     with Jenkins's X-Required-Permission headers. Refusals are Jenkins's
//     HTML pages: the accessDenied page for a user, the login redirect for
//     anonymous. Crumbs are bound to a session cookie and a user; a POST
//     without credentials needs one.
//
//   - Artifacts and change logs (artifacts.go): a build's archived files
//     in api/json (Run.getArtifacts), served at artifact/<path> as
//     DirectoryBrowserSupport and Stapler do (Range to 206, no 416, a
//     folder redirected, Run.ARTIFACTS with Options.ArtifactsPermission, a
//     302 to Options.ResourceRootURL), Pipeline sizes at wfapi/artifacts
//     (pipeline-stage-view), and git change sets: a freestyle build's
//     changeSet, a Pipeline's changeSets, BuildData's remoteUrls.
//
//   - Diagnosis corpus (corpus.go): AddCorpusCase turns a failed build of
//     internal/diagnose/corpus into a build as Jenkins holds it (a
//     Pipeline flow graph with the case's stages, step logs and errors, or
//     a freestyle console; its tests and commits; a successful build
//     before it), with Cause.UpstreamCause (upstreamProject,
//     upstreamBuild, upstreamUrl, exported to every reader of the build)
//     naming a real build of the upstream job.
//
//   - Time: everything is driven by an injected Clock. The simulation is
//     discrete-event: each request (and each public method) first replays
//     every event due since the last one, at the event's own time (a build
//     starts when the quiet period ended or the executor freed), so with a
//     FakeClock the answers depend only on the clock readings.
//
//   - Console text: the stored log holds console notes as Jenkins writes
//     them (ESC[8mha:<base64>ESC[0m, ~200 bytes: a hyperlink note in
//     "Started by user", "Aborted by" and "Running on", a hidden
//     NewNodeConsoleNote before each generated "[Pipeline]" line).
//     logText/progressiveText is Stapler's LargeText.doProgressText: every
//     LF sent as CR LF (LineEndNormalizingWriter), start past the end
//     restarts at 0, X-More-Data while running, and while running the text
//     stops after the last line end (at most 10000 lines). Options.Version
//     picks the side of 2.509 (JENKINS-75081): before, notes are stripped
//     (PlainTextConsoleOutputStream) but counted in X-Text-Size, which is
//     where the text stopped, and a last line without an end is not sent;
//     from 2.509 on, notes are sent raw and X-Text-Size is the log's
//     length. consoleText (Run.doConsoleText) strips notes on every
//     version and keeps the stored line ends. DefaultVersion is before
//     2.509; the demo claims CurrentLTS.
//
// # What is not
//
// No HTML UI beyond placeholder pages, no XML API, no depth>0 (it is
// answered as depth=0), no agents or labels (one pool of executors), no
// SCM polling or checkout (a build's git change log and remote URLs are
// given, not fetched), no artifact zips, globs or fingerprints (artifacts.go
// serves files, folders' redirects and Range), no build parameters of other types, no
// matrix configurations or Maven modules as items (an aggregated report's
// child runs cannot be opened), no QueueDecisionHandler vetoes, no
// pipeline stages (wfapi), no user or item creation over HTTP, no crumb
// in form fields (header only), no whoAmI answer for anonymous, no
// permissions besides those above, no case-insensitive folder children of
// a Jenkins that has not restarted since they were created.
package jenkinstest
