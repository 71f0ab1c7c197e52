// Package jenkinstest is a simulated Jenkins controller: an http.Handler
// that answers the parts of Jenkins's REST API that Butler uses, closely
// enough that Butler's client, end-to-end tests, benchmarks and the
// "butler demo" command can run against it instead of a real Jenkins.
//
// # What is simulated
//
//   - Items: folders (including folder-like classes such as multibranch
//     projects), freestyle and pipeline jobs, looked up case-insensitively
//     as Jenkins does, at "job/a/job/b/" URLs whose segments are decoded
//     exactly once. GET api/json on the root, folders, jobs, builds, queue
//     items, the queue, /me and /crumbIssuer, with Jenkins's field names,
//     "_class" values and depth=0 shapes (checked against recorded fixtures
//     by TestFixtureShapes). The "tree" parameter works as in Stapler:
//     nesting to any depth, ranges {M,N} {M,} {,N} {N}, unknown names
//     ignored, "_class" always kept; JSON is written lazily, guided by the
//     tree, so a listing never computes fields it was not asked for.
//
//   - Triggering: POST build and buildWithParameters (query or form
//     parameters, defaults, choice validation, "delay"), answered 201 with
//     the queue item's Location; identical requests fold into the queued
//     item as in Queue.schedule2.
//
//   - The queue: WaitingItem during the quiet period, BlockedItem while a
//     non-concurrent job builds, BuildableItem while no executor is free,
//     LeftItem once started or cancelled, readable for LeftItemTTL after.
//     POST queue/cancelItem answers 204, 404, 422 (and 500 for an item
//     that already left, as Jenkins does).
//
//   - Builds: run for their job's Duration on a limited number of
//     executors, print their console lines over that time, finish
//     with the job's result and test report (testReport/api/json); POST
//     stop aborts them. Permalinks lastBuild, lastCompletedBuild,
//     lastSuccessfulBuild, lastFailedBuild, lastStableBuild,
//     lastUnstableBuild and lastUnsuccessfulBuild resolve.
//
//   - Security: API-token Basic authentication (and optionally bearer
//     tokens, like the jwt-auth-filter plugin), 401 for bad credentials,
//     403 for anonymous requests, crumbs bound to a session cookie and a
//     user, and folder-scoped Item.Read/Build/Cancel grants. An item a
//     user cannot read answers exactly like a missing one (same status,
//     headers and body) on every URL under it and is left out of every
//     listing and of the queue; a missing Build or Cancel permission is
//     403 with Jenkins's X-Required-Permission headers.
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
// SCM, artifacts or changelogs, no build parameters of other types, no
// pipeline stages (wfapi), no user or item creation over HTTP, no crumb
// in form fields (header only), no Overall/Read: every authenticated user
// may read the root, the queue and /me, and sees the items granted to
// them.
package jenkinstest
