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
//   - Triggering: POST build and buildWithParameters (query or form
//     parameters, defaults, choice validation, "delay"), answered 201 with
//     the queue item's Location; identical requests fold into the queued
//     item as in Queue.schedule2.
//   - The queue: WaitingItem during the quiet period, BlockedItem while a
//     non-concurrent job builds, BuildableItem while no executor is free,
//     LeftItem once started or cancelled, readable for LeftItemTTL after.
//     POST queue/cancelItem answers 204, 404, 422 (and 500 for an item
//     that already left, as Jenkins does).
//   - Builds: run for their job's Duration on a limited number of
//     executors, print their console lines over that time (consoleText,
//     logText/progressiveText with X-Text-Size and X-More-Data), finish
//     with the job's result and test report (testReport/api/json); POST
//     stop aborts them. Permalinks lastBuild, lastCompletedBuild,
//     lastSuccessfulBuild, lastFailedBuild, lastStableBuild,
//     lastUnstableBuild and lastUnsuccessfulBuild resolve.
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
//   - Time: everything is driven by an injected Clock. The simulation is
//     discrete-event: each request (and each public method) first replays
//     every event due since the last one, at the event's own time (a build
//     starts when the quiet period ended or the executor freed), so with a
//     FakeClock the answers depend only on the clock readings.
//
// # What is not
//
// No HTML UI beyond placeholder pages, no XML API, no depth>0 (it is
// answered as depth=0), no agents or labels (one pool of executors), no
// SCM, artifacts or changelogs, no build parameters of other types, no
// pipeline stages (wfapi), no user or item creation over HTTP, no crumb
// in form fields (header only), no whoAmI answer for anonymous, no
// permissions besides those above, no case-insensitive folder children of
// a Jenkins that has not restarted since they were created.
package jenkinstest
