package jenkinstest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// isPermalink reports whether name is one of the build names Jenkins
// resolves besides numbers.
func isPermalink(name string) bool {
	switch name {
	case "lastBuild", "lastCompletedBuild", "lastSuccessfulBuild", "lastFailedBuild",
		"lastStableBuild", "lastUnstableBuild", "lastUnsuccessfulBuild":
		return true
	}
	return false
}

func isGet(r *http.Request) bool { return r.Method == http.MethodGet || r.Method == http.MethodHead }

// route walks "job/<name>" pairs from the root, answering 404 as soon as
// an item is missing or invisible to the user, then dispatches the rest.
func (s *Server) route(rc *reqCtx, segs []string) *reply {
	cur := s.root
	p := rc.rootPerm()
	i := 0
	for i < len(segs) && segs[i] == "job" {
		if i+1 >= len(segs) || cur.children == nil {
			return notFound()
		}
		c := cur.lookup(segs[i+1])
		if c == nil {
			return notFound()
		}
		p = rc.childPerm(p, c)
		if p&pRead == 0 {
			if p&pDiscover != 0 {
				// Jenkins: core/src/main/java/jenkins/model/Jenkins.java,
				// Jenkins.getItem; cloudbees-folder-plugin AbstractFolder.getItem.
				if cur == s.root {
					return rc.denied("Please login to access job " + segs[i+1])
				}
				return rc.denied("Please log in to access " + segs[i+1])
			}
			return notFound()
		}
		cur = c
		i += 2
	}
	rest := segs[i:]
	switch {
	case cur == s.root:
		return s.routeRoot(rc, rest)
	case cur.folder:
		return s.routeFolder(rc, cur, p, rest)
	}
	return s.routeJob(rc, cur, p, rest)
}

func is(rest []string, want ...string) bool { return slices.Equal(rest, want) }

func htmlPage(title string) *reply {
	return newReply(http.StatusOK, "text/html;charset=utf-8",
		[]byte("<!DOCTYPE html><html><head><title>"+htmlEscape(title)+" [Jenkins]</title></head><body></body></html>\n"))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}

// api answers a GET-only JSON endpoint.
func api(rc *reqCtx, f func() *reply) *reply {
	if !isGet(rc.r) {
		return methodNotAllowed("GET")
	}
	return f()
}

func (s *Server) routeRoot(rc *reqCtx, rest []string) *reply {
	switch {
	case len(rest) == 0:
		if !isGet(rc.r) {
			return methodNotAllowed("GET")
		}
		return htmlPage("Dashboard")
	case is(rest, "api", "json"):
		return api(rc, func() *reply {
			return s.render(rc, defaultRootTree, rc.rootPerm(), func(e *enc, t *tree) { writeObject(e, s.schema.root, s.root, t) })
		})
	case is(rest, "queue", "api", "json"):
		return api(rc, func() *reply {
			return s.render(rc, defaultQueueTree, 0, func(e *enc, t *tree) { writeObject(e, s.schema.queue, s, t) })
		})
	case len(rest) == 5 && rest[0] == "queue" && rest[1] == "item" && is(rest[3:], "api", "json"):
		return api(rc, func() *reply { return s.queueItemAPI(rc, rest[2]) })
	case is(rest, "computer", "api", "json"):
		return api(rc, func() *reply { return s.computerAPI(rc) })
	case is(rest, "queue", "cancelItem"):
		return s.cancelItem(rc)
	case is(rest, "me", "api", "json"), is(rest, "whoAmI", "api", "json"):
		return api(rc, func() *reply {
			if rc.user == nil {
				// Jenkins: core/src/main/java/jenkins/model/Jenkins.java,
				// Jenkins.getMe ("/me is not available when not logged in").
				// (The simulator does not model whoAmI's anonymous answer.)
				return rc.denied("/me is not available when not logged in")
			}
			return s.render(rc, defaultUserTree, 0, func(e *enc, t *tree) { writeObject(e, s.schema.user, rc.user, t) })
		})
	case is(rest, "crumbIssuer", "api", "json"):
		return api(rc, func() *reply { return s.crumbIssuer(rc) })
	}
	return notFound()
}

func (s *Server) routeFolder(rc *reqCtx, f *item, p perm, rest []string) *reply {
	switch {
	case len(rest) == 0:
		if !isGet(rc.r) {
			return methodNotAllowed("GET")
		}
		return htmlPage(fullDisplayName(f))
	case is(rest, "api", "json"):
		return api(rc, func() *reply {
			return s.render(rc, defaultFolderTree, p, func(e *enc, t *tree) { writeObject(e, s.schema.folder, f, t) })
		})
	}
	return notFound()
}

func (s *Server) routeJob(rc *reqCtx, j *item, p perm, rest []string) *reply {
	switch {
	case len(rest) == 0:
		if !isGet(rc.r) {
			return methodNotAllowed("GET")
		}
		return htmlPage(fullDisplayName(j))
	case is(rest, "api", "json"):
		return api(rc, func() *reply {
			return s.render(rc, defaultJobTree, p, func(e *enc, t *tree) { writeItem(e, j, t) })
		})
	case is(rest, "build"):
		return s.trigger(rc, j, p, false)
	case is(rest, "buildWithParameters"):
		return s.trigger(rc, j, p, true)
	}
	var b *build
	if isPermalink(rest[0]) {
		b = permalink(j, rest[0])
	} else if n, err := strconv.Atoi(rest[0]); err == nil && n > 0 && strconv.Itoa(n) == rest[0] {
		b = buildByNumber(j, n)
	}
	if b == nil {
		return notFound()
	}
	return s.routeBuild(rc, b, p, rest[1:])
}

func buildByNumber(j *item, n int) *build {
	i, ok := slices.BinarySearchFunc(j.builds, n, func(b *build, n int) int { return b.number - n })
	if !ok {
		return nil
	}
	return j.builds[i]
}

func (s *Server) routeBuild(rc *reqCtx, b *build, p perm, rest []string) *reply {
	switch {
	case len(rest) == 0:
		if !isGet(rc.r) {
			return methodNotAllowed("GET")
		}
		return htmlPage(fullDisplayName(b.job) + " #" + strconv.Itoa(b.number))
	case is(rest, "api", "json"):
		return api(rc, func() *reply {
			return s.render(rc, defaultBuildTree, p, func(e *enc, t *tree) { writeObject(e, s.schema.build, b, t) })
		})
	case is(rest, "consoleText"):
		// Jenkins: core/src/main/java/hudson/model/Run.java, doConsoleTextImpl:
		// the log as stored (line ends untouched) through a
		// PlainTextConsoleOutputStream, so without console notes, on every
		// version; it is closed, so a last line without an end is kept.
		return api(rc, func() *reply {
			var src io.Reader
			if b.console != nil {
				src = io.NewSectionReader(b.console, 0, b.console.Size())
			} else {
				src = bytes.NewReader(clone(b.log))
			}
			return streamReply(http.StatusOK, "text/plain;charset=UTF-8", newPlainTextReader(src, true))
		})
	case is(rest, "logText", "progressiveText"):
		return api(rc, func() *reply { return s.progressiveText(rc, b) })
	case is(rest, "testReport", "api", "json"):
		return api(rc, func() *reply {
			r := b.testReport()
			if r == nil {
				return notFound()
			}
			if len(r.Children) > 0 {
				// The action is its own target: AggregatedTestResultAction
				// exports the counts and childReports.
				return s.render(rc, defaultAggregatedTestTree, p, func(e *enc, t *tree) {
					writeObject(e, s.schema.aggregated, testAction{build: b, report: r}, t)
				})
			}
			return s.render(rc, defaultTestTree, p, func(e *enc, t *tree) { writeObject(e, s.schema.testResult, r, t) })
		})
	case is(rest, "stop"):
		return s.stop(rc, b, p)
	}
	if rp := s.routeArtifacts(rc, b, p, rest); rp != nil {
		return rp
	}
	if rp := s.routePipeline(rc, b, p, rest); rp != nil {
		return rp
	}
	return notFound()
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// progressiveText is Stapler's LargeText.doProgressText as Jenkins's
// AnnotatedLargeText serves it at logText/progressiveText: the log from byte
// offset start (0 if start is past the end: "text rolled over"), every LF
// written as CR LF (LineEndNormalizingWriter), X-More-Data while the build
// runs. While it runs, the text stops after the last line end (and after
// at most 10000 lines).
//
// Before 2.509 (Stapler before 1979) doProgressTextImpl calls writeLogTo,
// which AnnotatedLargeText overrides to strip console notes through a
// PlainTextConsoleOutputStream, under a CountingOutputStream that counts
// the stored bytes: X-Text-Size is start plus the stored bytes written,
// and a last line without an end is never written (the stream is flushed,
// not closed). From 2.509 on it writes the stored bytes raw, console notes
// included, and X-Text-Size is the log's length, also while the build
// runs and the text stops earlier.
//
// Stapler: core/src/main/java/org/kohsuke/stapler/framework/io/LargeText.java,
// doProgressTextImpl, writeLogTo, writeLogUncounted; Jenkins:
// core/src/main/java/hudson/console/AnnotatedLargeText.java, writeLogTo(long,
// OutputStream), delegateToWriteLogTo.
func (s *Server) progressiveText(rc *reqCtx, b *build) *reply {
	length := int64(len(b.log))
	if b.console != nil {
		length = b.console.Size()
	}
	start, err := strconv.ParseInt(rc.r.URL.Query().Get("start"), 10, 64)
	if err != nil || start < 0 || start > length {
		start = 0
	}
	end := length
	if b.building {
		end = writtenEnd(b.log, start)
	}
	var src io.Reader
	if b.console != nil {
		src = io.NewSectionReader(b.console, start, end-start)
	} else {
		src = bytes.NewReader(clone(b.log[start:end]))
	}
	size := length
	if !rawProgressiveText(s.version) {
		src = newPlainTextReader(src, false)
		size = end
	}
	rp := streamReply(http.StatusOK, "text/plain;charset=UTF-8", newLineEndReader(src))
	rp.header.Set("X-Text-Size", strconv.FormatInt(size, 10))
	if b.building {
		rp.header.Set("X-More-Data", "true")
	}
	return rp
}

// impliedBy is Permission.impliedBy, followed to the end: what Jenkins
// sends in X-Permission-Implied-By. Jenkins:
// core/src/main/java/hudson/security/Permission.java (GenericRead,
// GenericWrite, GenericUpdate), core/src/main/java/hudson/model/Item.java.
func impliedBy(p Permission) []string {
	switch p {
	case PermOverallRead:
		return []string{"hudson.security.Permission.GenericRead", string(PermAdminister)}
	case PermBuild, PermCancel:
		return []string{"hudson.security.Permission.GenericUpdate", "hudson.security.Permission.GenericWrite", string(PermAdminister)}
	}
	return nil
}

// accessDenied is an AccessDeniedException3 (a missing permission) as
// Jenkins answers it: 403 with the diagnosis headers
// (AccessDeniedException3.reportAsHeaders) and an HTML page, the
// accessDenied view for a user (AccessDeniedHandlerImpl.handle), the
// login redirect for anonymous (HudsonAuthenticationEntryPoint.commence).
// Jenkins: core/src/main/java/hudson/security/AccessDeniedException3.java,
// AccessDeniedHandlerImpl.java, HudsonAuthenticationEntryPoint.java.
func (rc *reqCtx) accessDenied(p Permission, title string) *reply {
	msg := rc.name() + " is missing the " + title + " permission"
	var rp *reply
	if rc.user == nil {
		rp = rc.loginPage("You are authenticated as: anonymous\nPermission you need to have (but didn't): " + string(p))
	} else {
		rp = accessDeniedPage(msg)
	}
	h := rp.header
	h.Set("X-You-Are-Authenticated-As", rc.name())
	h.Set("X-You-Are-In-Group-Disabled", "JENKINS-39402: use -Dhudson.security.AccessDeniedException2.REPORT_GROUP_HEADERS=true or use /whoAmI to diagnose")
	h.Set("X-Required-Permission", string(p))
	for _, by := range impliedBy(p) {
		h.Add("X-Permission-Implied-By", by)
	}
	return rp
}

// denied is a plain AccessDeniedException, such as Jenkins.getItem's for
// an item the user may discover but not read ("Please login to access job
// x"), or Jenkins.getMe's for anonymous: 403 with the same HTML pages as
// accessDenied but no diagnosis headers, which only AccessDeniedException3
// carries.
func (rc *reqCtx) denied(msg string) *reply {
	if rc.user == nil {
		return rc.loginPage("")
	}
	return accessDeniedPage(msg)
}

// accessDeniedPage is Jenkins's accessDenied.jelly: the exception's
// message in an HTML page. Jenkins:
// core/src/main/resources/jenkins/model/Jenkins/accessDenied.jelly.
func accessDeniedPage(msg string) *reply {
	return newReply(http.StatusForbidden, "text/html;charset=utf-8", []byte(
		"<!DOCTYPE html><html><head><title>Jenkins Login [Jenkins]</title></head><body>"+
			"<h1>Access Denied</h1><p class=\"error\">"+htmlEscape(msg)+"</p></body></html>\n"))
}

// loginPage is HudsonAuthenticationEntryPoint.commence: 403 and a page
// that redirects to the login form (Util.printRedirect), with report (the
// AccessDeniedException3's diagnosis) in a comment.
func (rc *reqCtx) loginPage(report string) *reply {
	from := rc.r.URL.EscapedPath()
	if rc.r.URL.RawQuery != "" {
		from += "?" + rc.r.URL.RawQuery
	}
	login := rc.s.prefix + "/login?from=" + url.QueryEscape(from)
	body := "<html><head><meta http-equiv='refresh' content='1;url=" + htmlEscape(login) + "'/>" +
		"<script id='redirect' data-redirect-url='" + htmlEscape(login) + "' src='" + rc.s.prefix + "/static/redirect.js'></script>" +
		"</head><body style='background-color:white; color:white;'>\nAuthentication required\n<!--\n" +
		report + "\n-->\n\n</body></html>"
	return newReply(http.StatusForbidden, "text/html;charset=UTF-8", []byte(body))
}

// trigger is ParameterizedJobMixIn.doBuild / doBuildWithParameters, with
// their order of checks.
func (s *Server) trigger(rc *reqCtx, j *item, p perm, withParams bool) *reply {
	if rc.r.Method != http.MethodPost {
		return methodNotAllowed("POST")
	}
	if err := parseForm(rc.r); err != nil {
		return textReply(http.StatusBadRequest, "Bad form: "+err.Error())
	}
	quiet := s.quietPeriodOf(j)
	if hasFormValue(rc.r, "delay") {
		// ParameterizedJobMixIn.doBuild / doBuildWithParameters take
		// "delay" as a @QueryParameter TimeDuration, bound before the
		// method runs: a value TimeDuration.fromString cannot read throws
		// IllegalArgumentException out of Stapler's parameter binding,
		// before any other check, which Jenkins answers with its 500 page.
		v, err := parseDelay(formValue(rc.r, "delay"))
		if err != nil {
			return textReply(http.StatusInternalServerError, "java.lang.IllegalArgumentException: "+err.Error())
		}
		quiet = v
	}
	if withParams {
		if p&pBuild == 0 {
			return rc.accessDenied(PermBuild, "Job/Build")
		}
		if j.spec.Disabled {
			return textReply(http.StatusConflict, j.fullName+" is not buildable!")
		}
		if len(j.spec.Params) == 0 {
			return textReply(http.StatusBadRequest, "This build is not parameterized!")
		}
	} else {
		if j.spec.Disabled {
			return textReply(http.StatusConflict, j.fullName+" is not buildable")
		}
		if p&pBuild == 0 {
			return rc.accessDenied(PermBuild, "Job/Build")
		}
	}
	var params []paramValue
	if len(j.spec.Params) > 0 {
		var err error
		if params, err = requestParams(rc.r, j, withParams); err != nil {
			return textReply(http.StatusBadRequest, err.Error())
		}
	}
	c := cause{userID: Anonymous, userName: Anonymous}
	if rc.user != nil {
		c = cause{userID: rc.user.id, userName: rc.user.fullName}
	}
	q, created := s.enqueue(j, params, c, quiet, rc.now)
	// ParametersDefinitionProperty.buildWithParameters answers 303 See
	// Other when Queue.schedule2 folded the request into an item already
	// queued (ScheduleResult.isCreated false), 201 Created for a new one;
	// ParameterizedJobMixIn.doBuild (no parameters) answers 201 in both
	// cases (its "TODO JENKINS-66105 use SC_SEE_OTHER"). Either way the
	// Location is Stapler's StaplerResponse.sendRedirect(int, url) of
	// req.getContextPath() + '/' + item.getUrl(): absolute, made from the
	// request's scheme, host and port.
	status := http.StatusCreated
	if withParams && !created {
		status = http.StatusSeeOther
	}
	rp := newReply(status, "", nil)
	rp.header.Set("Location", rc.selfURL+"queue/item/"+strconv.FormatInt(q.id, 10)+"/")
	return rp
}

func parseForm(r *http.Request) error {
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		return r.ParseMultipartForm(1 << 20)
	}
	return r.ParseForm()
}

// formValue reads a request parameter as a servlet does: the query string
// first, then the body.
func formValue(r *http.Request, name string) string {
	if vs, ok := r.URL.Query()[name]; ok && len(vs) > 0 {
		return vs[0]
	}
	if vs, ok := r.PostForm[name]; ok && len(vs) > 0 {
		return vs[0]
	}
	if r.MultipartForm != nil {
		if vs := r.MultipartForm.Value[name]; len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func hasFormValue(r *http.Request, name string) bool {
	if _, ok := r.URL.Query()[name]; ok {
		return true
	}
	if _, ok := r.PostForm[name]; ok {
		return true
	}
	return r.MultipartForm != nil && len(r.MultipartForm.Value[name]) > 0
}

// requestParams builds the parameter values of a new build: each defined
// parameter from the request (buildWithParameters) or its default; names
// the job does not define are ignored, as Jenkins does.
func requestParams(r *http.Request, j *item, fromRequest bool) ([]paramValue, error) {
	out := make([]paramValue, 0, len(j.spec.Params))
	for _, d := range j.spec.Params {
		if d.Type == "file" {
			// FileParameterDefinition.createValue(StaplerRequest2) reads
			// only an uploaded file part (getFileItem2) and returns null
			// without one, which buildWithParameters skips: a form or
			// query value for a file parameter is silently dropped, and the
			// build has no value for it at all.
			if fromRequest && r.MultipartForm != nil && len(r.MultipartForm.File[d.Name]) > 0 {
				fh := r.MultipartForm.File[d.Name][0]
				name := fh.Filename[strings.LastIndexAny(fh.Filename, "/\\")+1:]
				out = append(out, paramValue{name: d.Name, typ: d.Type, value: name})
			}
			continue
		}
		v := d.Default
		if fromRequest && hasFormValue(r, d.Name) {
			raw := formValue(r, d.Name)
			switch d.Type {
			case "boolean":
				v = strings.EqualFold(raw, "true") || raw == "on"
			case "choice":
				if !slices.Contains(d.Choices, raw) {
					return nil, fmt.Errorf("Illegal choice for parameter %s: %s", d.Name, raw)
				}
				v = raw
			default:
				v = raw
			}
		}
		out = append(out, paramValue{name: d.Name, typ: d.Type, value: v})
	}
	return out, nil
}

// parseDelay reads the "delay" parameter as Jenkins's
// jenkins.util.TimeDuration.fromString: a bare number is milliseconds, a
// number suffixed "sec" or "secs" (spaces allowed) is seconds; nothing
// else is understood ("10ms", "1min", "1.5sec" are errors). The queue then
// takes TimeDuration.getTimeInSeconds, whole seconds rounded toward zero:
// "delay=1500" is a quiet period of 1 s, "delay=999" of none. A negative
// delay is accepted and makes the item due in the past.
func parseDelay(raw string) (time.Duration, error) {
	d := strings.TrimSpace(raw)
	mult := int64(1)
	if strings.HasSuffix(d, "sec") || strings.HasSuffix(d, "secs") {
		d = strings.TrimSpace(d[:strings.LastIndex(d, "sec")])
		mult = 1000
	}
	n, err := strconv.ParseInt(strings.TrimSpace(d), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("Invalid time duration value: %s", d)
	}
	ms := n * mult
	return time.Duration(ms/1000) * time.Second, nil
}

// stop is POST .../N/stop. A running build: Executor.doStopBuild checks
// Item.Cancel (403 without it) and interrupts the build. A finished
// freestyle build: AbstractBuild.doStop finds no executor and just
// redirects, checking nothing. A finished Pipeline build:
// WorkflowRun.doStop → httpKill → doKill checks Item.Cancel first. Every
// success is HttpResponses.forwardToPreviousPage: a 302 to the Referer if
// the request had one, else to "." resolved against the request URI, i.e.
// the build's own URL as the request named it (".../lastBuild/" for
// ".../lastBuild/stop").
func (s *Server) stop(rc *reqCtx, b *build, p perm) *reply {
	if rc.r.Method != http.MethodPost {
		return methodNotAllowed("POST")
	}
	if (b.building || b.job.spec.Class == ClassWorkflowJob) && p&pCancel == 0 {
		return rc.accessDenied(PermCancel, "Job/Cancel")
	}
	if b.building {
		s.abort(b, rc.now, rc.user)
	}
	rp := newReply(http.StatusFound, "", nil)
	loc := rc.r.Header.Get("Referer")
	if loc == "" {
		path := rc.r.URL.EscapedPath()
		loc = requestOrigin(rc.r) + path[:strings.LastIndexByte(path, '/')+1]
	}
	rp.header.Set("Location", loc)
	return rp
}

func parseQueueID(s string) (int64, bool) {
	id, err := strconv.ParseInt(s, 10, 64)
	return id, err == nil
}

func (s *Server) queueItemAPI(rc *reqCtx, idStr string) *reply {
	id, ok := parseQueueID(idStr)
	if !ok {
		return notFound()
	}
	q := s.items[id]
	if q == nil {
		return notFound()
	}
	// Queue.Item.getApi asks the task's own ACL (which inherits its
	// folders' grants, readable or not): no Discover, no item; Discover
	// without Read, denied "like Jenkins.getItem".
	// Jenkins: core/src/main/java/hudson/model/Queue.java, Queue.Item.getApi.
	p := rc.jobPerm(q.job)
	if p&pRead == 0 {
		if p&pDiscover != 0 {
			return rc.denied("Please log in to access " + q.job.urlPath)
		}
		return notFound()
	}
	return s.render(rc, defaultQueueItemTree, p, func(e *enc, t *tree) { writeObject(e, s.schema.queueItem, q, t) })
}

// cancelItem is Queue.doCancelItem of Jenkins 2.4xx.
func (s *Server) cancelItem(rc *reqCtx) *reply {
	if rc.r.Method != http.MethodPost {
		return methodNotAllowed("POST")
	}
	if err := parseForm(rc.r); err != nil {
		return textReply(http.StatusBadRequest, "Bad form: "+err.Error())
	}
	raw := formValue(rc.r, "id")
	id, ok := parseQueueID(raw)
	if !ok {
		return textReply(http.StatusBadRequest, "Bad id: "+strconv.Quote(raw))
	}
	msgID := strconv.FormatInt(id, 10)
	q := s.items[id]
	var p perm
	visible := false
	if q != nil {
		p, visible = rc.permOf(q.job)
	}
	if !visible {
		return textReply(http.StatusNotFound, "Provided id ("+msgID+") not found")
	}
	if p&pCancel == 0 {
		return textReply(http.StatusUnprocessableEntity, "Item for id ("+msgID+") is not cancellable")
	}
	if q.state == qLeft {
		// A LeftItem cannot leave the queue again: Jenkins's cancel fails.
		return textReply(http.StatusInternalServerError, "Could not cancel run for id "+msgID)
	}
	s.cancel(q, rc.now)
	return newReply(http.StatusNoContent, "", nil)
}

func (s *Server) crumbIssuer(rc *reqCtx) *reply {
	sess, ok := s.session(rc.r)
	fresh := !ok
	if fresh {
		sess = s.newSession()
	}
	rp := s.render(rc, defaultCrumbTree, 0, func(e *enc, t *tree) {
		writeObject(e, s.schema.crumb, crumbInfo{crumb: s.crumbFor(rc.user, sess)}, t)
	})
	if fresh && rp.status == http.StatusOK {
		path := s.prefix + "/"
		rp.header.Add("Set-Cookie", (&http.Cookie{Name: s.cookieName(), Value: sess, Path: path, HttpOnly: true}).String())
	}
	return rp
}

// queueItemOf is Queue.getItem(Task): the job's first queued item, looking
// at blocked, then buildable, then waiting items.
func (s *Server) queueItemOf(j *item) *queueItem {
	for _, st := range []qstate{qBlocked, qBuildable, qWaiting} {
		for _, q := range s.queue {
			if q.job == j && q.state == st {
				return q
			}
		}
	}
	return nil
}

// visibleQueue is Queue.getItems: waiting items by due time, blocked items,
// then buildable items newest first, keeping those whose task the user may
// read (checkPermissionsAndAddToList: the task's own ACL, Item.READ, which
// inherits its folders' grants whether or not the folders are readable).
// Jenkins: core/src/main/java/hudson/model/Queue.java, getItems and
// hasReadPermission.
func (s *Server) visibleQueue(rc *reqCtx) []*queueItem {
	out := s.queueInOrder()
	return slices.DeleteFunc(out, func(q *queueItem) bool { return rc.jobPerm(q.job)&pRead == 0 })
}

// discoverableQueue is Queue.getDiscoverableItems: the items whose task the
// user may discover but not read, exported as StubItems that name only the
// task (filterDiscoverableItemListBasedOnPermissions).
func (s *Server) discoverableQueue(rc *reqCtx) []*queueItem {
	out := s.queueInOrder()
	return slices.DeleteFunc(out, func(q *queueItem) bool {
		p := rc.jobPerm(q.job)
		return p&pRead != 0 || p&pDiscover == 0
	})
}

// queueInOrder is the queue as Queue.getItems walks it: waiting items by
// due time, blocked items, then buildable items newest first.
func (s *Server) queueInOrder() []*queueItem {
	var all []*queueItem
	all = append(all, s.waitingInOrder()...)
	all = append(all, s.inState(qBlocked)...)
	b := s.inState(qBuildable)
	slices.Reverse(b)
	return append(all, b...)
}

// why is Queue.Item.getWhy.
func (s *Server) why(q *queueItem, now time.Time) string {
	switch q.state {
	case qWaiting:
		if d := q.due.Sub(now); d >= 0 {
			return "In the quiet period. Expires in " + timeSpan(d)
		}
		return "Finished waiting"
	case qBlocked:
		b := runningBuild(q.job)
		if b == nil {
			return "Waiting for next available executor"
		}
		eta := "N/A"
		if est := estimatedDuration(q.job); est >= 0 {
			if left := time.Duration(est)*time.Millisecond - now.Sub(b.start); left > 0 {
				eta = timeSpan(left)
			}
		}
		return "Build #" + strconv.Itoa(b.number) + " is already in progress (ETA:" + eta + ")"
	case qBuildable:
		return "Waiting for next available executor"
	}
	return ""
}

// timeSpan is Jenkins's Util.getTimeSpanString.
func timeSpan(d time.Duration) string {
	ms := d.Milliseconds()
	const (
		sec  = 1000
		min  = 60 * sec
		hour = 60 * min
		day  = 24 * hour
		mon  = 30 * day
		year = 365 * day
	)
	pair := func(big int64, bigLabel string, small int64, smallLabel string) string {
		text := unit(big, bigLabel)
		if big < 10 {
			text += " " + unit(small, smallLabel)
		}
		return text
	}
	years := ms / year
	ms %= year
	months := ms / mon
	ms %= mon
	days := ms / day
	ms %= day
	hours := ms / hour
	ms %= hour
	minutes := ms / min
	ms %= min
	seconds := ms / sec
	millis := ms % sec
	switch {
	case years > 0:
		return pair(years, "yr", months, "mo")
	case months > 0:
		return pair(months, "mo", days, "day")
	case days > 0:
		return pair(days, "day", hours, "hr")
	case hours > 0:
		return pair(hours, "hr", minutes, "min")
	case minutes > 0:
		return pair(minutes, "min", seconds, "sec")
	case seconds >= 10:
		return unit(seconds, "sec")
	case seconds >= 1:
		return strconv.FormatFloat(float64(seconds)+float64(millis/100)/10, 'f', -1, 64) + " sec"
	case millis >= 100:
		return strconv.FormatFloat(float64(millis/10)/100, 'f', -1, 64) + " sec"
	}
	return strconv.FormatInt(millis, 10) + " ms"
}

func unit(n int64, label string) string {
	s := strconv.FormatInt(n, 10) + " " + label
	if label == "day" && n != 1 {
		s += "s"
	}
	return s
}
