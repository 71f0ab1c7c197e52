package jenkinstest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Artifacts and change logs of builds.
//
// Artifacts are what ArtifactArchiver (archiveArtifacts) copied into a
// build's artifacts folder. The build's api/json lists them
// (Run.getArtifacts: relativePath, fileName, displayPath), <build>/artifact/
// serves them (Run.doArtifact → DirectoryBrowserSupport → Stapler's
// serveStaticResource, Range included), and a Pipeline build answers
// pipeline-stage-view's wfapi/artifacts with their sizes.
//
// Change logs are what the git plugin recorded at checkout: a freestyle
// build exports one change set (changeSet), a Pipeline build a list
// (changeSets, empty sets left out), each a GitChangeSetList of
// GitChangeSets; the BuildData action exports the remote URLs as
// configured.

// Artifact is one file a build archived.
type Artifact struct {
	// Path is below the artifacts folder, "/"-separated ("dist/app.js").
	Path string
	Data []byte
}

// Commit is one git commit of a build's change log, as the git plugin
// records it (GitChangeSet).
type Commit struct {
	ID          string // the 40-hex commit id
	Author      string // author's full name
	AuthorEmail string
	// Message is the whole commit message; its first line is "msg".
	Message string
	Time    time.Time
	Paths   []ChangedFile
}

// ChangedFile is one file a commit touched: EditType "add", "edit" or
// "delete" (hudson.scm.EditType, GitChangeSet.Path.getEditType).
type ChangedFile struct {
	EditType string
	File     string
}

// buildSCM is what a build holds of the above.
type buildSCM struct {
	files      []Artifact // sorted by path
	changes    []Commit
	remoteURLs []string
}

func newBuildSCM(b BuildSpec) (buildSCM, error) {
	var out buildSCM
	seen := map[string]bool{}
	for _, a := range b.Artifacts {
		segs := strings.Split(a.Path, "/")
		if a.Path == "" || slices.Contains(segs, "") || slices.Contains(segs, ".") || slices.Contains(segs, "..") || strings.Contains(a.Path, "\\") {
			return out, fmt.Errorf("%w: artifact path %q", ErrInvalidSpec, a.Path)
		}
		if seen[a.Path] {
			return out, fmt.Errorf("%w: artifact %q twice", ErrInvalidSpec, a.Path)
		}
		seen[a.Path] = true
		out.files = append(out.files, Artifact{Path: a.Path, Data: clone(a.Data)})
	}
	for _, f := range out.files {
		// A file cannot also be a folder of another artifact.
		if seen[f.Path] && hasPrefixDir(out.files, f.Path) {
			return out, fmt.Errorf("%w: artifact %q is also a folder", ErrInvalidSpec, f.Path)
		}
	}
	for _, c := range b.Changes {
		for _, p := range c.Paths {
			switch p.EditType {
			case "add", "edit", "delete":
			default:
				return out, fmt.Errorf("%w: commit %s: edit type %q", ErrInvalidSpec, c.ID, p.EditType)
			}
		}
	}
	out.changes = slices.Clone(b.Changes)
	out.remoteURLs = slices.Clone(b.RemoteURLs)
	return out, nil
}

func hasPrefixDir(files []Artifact, p string) bool {
	for _, f := range files {
		if strings.HasPrefix(f.Path, p+"/") {
			return true
		}
	}
	return false
}

// artNode is a file or folder of the artifacts tree.
type artNode struct {
	name string
	file *Artifact // nil for a folder
	kids []*artNode
}

// artTree builds the folder tree of a build's artifacts.
func artTree(files []Artifact) *artNode {
	root := &artNode{}
	for i := range files {
		cur := root
		segs := strings.Split(files[i].Path, "/")
		for j, s := range segs {
			var next *artNode
			for _, k := range cur.kids {
				if k.name == s {
					next = k
				}
			}
			if next == nil {
				next = &artNode{name: s}
				cur.kids = append(cur.kids, next)
			}
			if j == len(segs)-1 {
				next.file = &files[i]
			}
			cur = next
		}
	}
	return root
}

// find returns the node at segs (the root for none).
func (n *artNode) find(segs []string) *artNode {
	cur := n
	for _, s := range segs {
		var next *artNode
		for _, k := range cur.kids {
			if k.name == s {
				next = k
			}
		}
		if next == nil {
			return nil
		}
		cur = next
	}
	return cur
}

// artEntry is one Run.Artifact (or, for wfapi, its BuildArtifactExt).
type artEntry struct {
	name, relativePath, href, displayPath, treeNodeID string
	size                                              int64
}

// listCutoff is Run.LIST_CUTOFF: over this many artifacts Jenkins computes
// no display paths.
const listCutoff = 20

// artifactList is Run.getArtifacts: Run.addArtifacts walks the folder
// depth first, children sorted case-insensitively (VirtualFile.compareTo),
// numbering tree nodes "n1", "n2", ... and collapsing a folder's only child
// into it; then ArtifactList.computeDisplayName gives each file the
// shortest tail of its path that no other file shares (none over
// LIST_CUTOFF files). Jenkins: core/src/main/java/hudson/model/Run.java,
// addArtifacts, ArtifactList.computeDisplayName.
func artifactList(files []Artifact) []artEntry {
	var out []artEntry
	seq := 0
	var walk func(dir *artNode, path, href string, parent *artEntry)
	walk = func(dir *artNode, path, href string, parent *artEntry) {
		kids := slices.Clone(dir.kids)
		slices.SortStableFunc(kids, func(a, b *artNode) int { return strings.Compare(strings.ToLower(a.name), strings.ToLower(b.name)) })
		for _, sub := range kids {
			childPath := path + sub.name
			childHref := href + rawEncode(sub.name)
			var size int64
			if sub.file != nil {
				size = int64(len(sub.file.Data))
			}
			collapsed := len(kids) == 1 && parent != nil
			var a artEntry
			if collapsed {
				a = artEntry{name: parent.name + "/" + sub.name, relativePath: childPath, treeNodeID: parent.treeNodeID, size: size}
			} else {
				seq++
				a = artEntry{name: sub.name, relativePath: childPath, treeNodeID: "n" + strconv.Itoa(seq), size: size}
			}
			if sub.file == nil {
				walk(sub, childPath+"/", childHref+"/", &a)
				continue
			}
			a.href = childHref
			if collapsed {
				a.name = sub.name // the list keeps the file's own name
			}
			out = append(out, a)
		}
	}
	walk(artTree(files), "", "", nil)
	computeDisplayName(out)
	return out
}

func computeDisplayName(as []artEntry) {
	if len(as) > listCutoff {
		return
	}
	tokens := make([][]string, len(as))
	lens := make([]int, len(as))
	maxDepth := 0
	for i, a := range as {
		tokens[i] = strings.Split(a.relativePath, "/")
		maxDepth = max(maxDepth, len(tokens[i]))
		lens[i] = 1
	}
	combine := func(t []string, n int) string { return strings.Join(t[max(0, len(t)-n):], "/") }
	for depth := 0; ; depth++ {
		collision := false
		names := map[string]int{}
		for i := range tokens {
			d := combine(tokens[i], lens[i])
			if j, ok := names[d]; ok {
				collision = true
				if j >= 0 {
					lens[j]++
				}
				lens[i]++
				names[d] = -1
				continue
			}
			names[d] = i
		}
		if !collision || depth >= maxDepth {
			break
		}
	}
	for i := range as {
		as[i].displayPath = combine(tokens[i], lens[i])
	}
}

// rawEncode is Util.rawEncode: alphanumerics and !@$&*()-_=+',. stay,
// everything else is percent-encoded as UTF-8. Jenkins:
// core/src/main/java/hudson/Util.java, rawEncode.
func rawEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!@$&*()-_=+',.", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// scmSchema holds the exported beans of artifacts and change logs.
type scmSchema struct {
	artifact  *objType[artEntry]
	changeLog *objType[changeLog]
	entry     *objType[entryRef]
	author    *objType[entryRef]
	path      *objType[ChangedFile]
}

// changeLog is one ChangeLogSet of a build: a GitChangeSetList, or the
// EmptyChangeLogSet of a freestyle build without changes.
type changeLog struct{ commits []Commit }

type entryRef struct{ c *Commit }

func newSCMSchema() *scmSchema {
	sc := &scmSchema{}
	// Run.Artifact (@ExportedBean): displayPath, fileName, relativePath.
	sc.artifact = &objType[artEntry]{props: []prop[artEntry]{
		{name: "displayPath", write: func(e *enc, a artEntry, _ *tree) { e.strOrNull(a.displayPath) }},
		{name: "fileName", write: func(e *enc, a artEntry, _ *tree) { e.str(lastSegment(a.relativePath)) }},
		{name: "relativePath", write: func(e *enc, a artEntry, _ *tree) { e.str(a.relativePath) }},
	}}
	sc.author = &objType[entryRef]{class: fixed[entryRef]("hudson.model.User"), props: []prop[entryRef]{
		{name: "absoluteUrl", write: func(e *enc, r entryRef, _ *tree) { e.url("user/" + escapePathSegment(userIDOf(r.c))) }},
		{name: "fullName", write: func(e *enc, r entryRef, _ *tree) { e.str(r.c.Author) }},
	}}
	sc.path = &objType[ChangedFile]{props: []prop[ChangedFile]{
		{name: "editType", write: func(e *enc, p ChangedFile, _ *tree) { e.str(p.EditType) }},
		{name: "file", write: func(e *enc, p ChangedFile, _ *tree) { e.str(p.File) }},
	}}
	// GitChangeSet: ChangeLogSet.Entry's commitId, timestamp, msg, author,
	// affectedPaths, then its own authorEmail, comment, date, id, paths.
	// git-plugin: src/main/java/hudson/plugins/git/GitChangeSet.java.
	sc.entry = &objType[entryRef]{class: fixed[entryRef]("hudson.plugins.git.GitChangeSet"), props: []prop[entryRef]{
		{name: "affectedPaths", write: func(e *enc, r entryRef, t *tree) {
			writeArray(e, r.c.Paths, t, func(e *enc, p ChangedFile) { e.str(p.File) })
		}},
		{name: "commitId", write: func(e *enc, r entryRef, _ *tree) { e.str(r.c.ID) }},
		// GitChangeSet.getTimestamp parses the git date: whole seconds.
		{name: "timestamp", write: func(e *enc, r entryRef, _ *tree) { e.int(r.c.Time.Unix() * 1000) }},
		{name: "author", write: func(e *enc, r entryRef, t *tree) { writeObject(e, sc.author, r, t) }},
		{name: "authorEmail", write: func(e *enc, r entryRef, _ *tree) { e.str(r.c.AuthorEmail) }},
		{name: "comment", write: func(e *enc, r entryRef, _ *tree) { e.str(strings.TrimRight(r.c.Message, "\n") + "\n") }},
		{name: "date", write: func(e *enc, r entryRef, _ *tree) { e.str(r.c.Time.UTC().Format("2006-01-02 15:04:05 -0700")) }},
		{name: "id", write: func(e *enc, r entryRef, _ *tree) { e.str(r.c.ID) }},
		{name: "msg", write: func(e *enc, r entryRef, _ *tree) { e.str(firstLine(r.c.Message)) }},
		{name: "paths", write: func(e *enc, r entryRef, t *tree) {
			writeArray(e, r.c.Paths, t, func(e *enc, p ChangedFile) { writeObject(e, sc.path, p, t) })
		}},
	}}
	// ChangeLogSet: items, kind. git-plugin GitChangeSetList.getKind is
	// "git"; core's EmptyChangeLogSet has none (null).
	sc.changeLog = &objType[changeLog]{
		class: func(l changeLog) string {
			if len(l.commits) == 0 {
				return "hudson.scm.EmptyChangeLogSet"
			}
			return "hudson.plugins.git.GitChangeSetList"
		},
		props: []prop[changeLog]{
			{name: "items", write: func(e *enc, l changeLog, t *tree) {
				refs := make([]entryRef, len(l.commits))
				for i := range l.commits {
					refs[i] = entryRef{&l.commits[i]}
				}
				writeArray(e, refs, t, func(e *enc, r entryRef) { writeObject(e, sc.entry, r, t) })
			}},
			{name: "kind", write: func(e *enc, l changeLog, _ *tree) {
				if len(l.commits) == 0 {
					e.null()
				} else {
					e.str("git")
				}
			}},
		},
	}
	return sc
}

// userIDOf is the Jenkins user the git plugin makes of an author
// (GitChangeSet.findOrCreateUser by e-mail: its local part, lower case).
func userIDOf(c *Commit) string {
	if local, _, ok := strings.Cut(c.AuthorEmail, "@"); ok && local != "" {
		return strings.ToLower(local)
	}
	return c.Author
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func lastSegment(p string) string { return p[strings.LastIndexByte(p, '/')+1:] }

// writeBuildArtifacts is a build's "artifacts" property.
func writeBuildArtifacts(e *enc, b *build, t *tree) {
	as := artifactList(b.scm.files)
	writeArray(e, as, t, func(e *enc, a artEntry) { writeObject(e, e.sc.scm.artifact, a, t) })
}

// writeChangeSet is a freestyle build's "changeSet"
// (AbstractBuild.getChangeSet: EmptyChangeLogSet without changes).
func writeChangeSet(e *enc, b *build, t *tree) {
	writeObject(e, e.sc.scm.changeLog, changeLog{b.scm.changes}, t)
}

// writeChangeSets is a Pipeline build's "changeSets"
// (WorkflowRun.getChangeSets leaves out empty sets).
func writeChangeSets(e *enc, b *build, t *tree) {
	var sets []changeLog
	if len(b.scm.changes) > 0 {
		sets = append(sets, changeLog{b.scm.changes})
	}
	writeArray(e, sets, t, func(e *enc, l changeLog) { writeObject(e, e.sc.scm.changeLog, l, t) })
}

// scmActions is the git plugin's BuildData action of a build that fetched
// from remotes.
func scmActions(b *build) []action {
	if len(b.scm.remoteURLs) == 0 {
		return nil
	}
	return []action{{kind: aBuildData, class: "hudson.plugins.git.util.BuildData", remoteURLs: b.scm.remoteURLs}}
}

// routeArtifacts answers the artifact URLs of a build, or nil when rest
// is not one of them.
func (s *Server) routeArtifacts(rc *reqCtx, b *build, p perm, rest []string) *reply {
	switch {
	case len(rest) >= 1 && rest[0] == "artifact":
		if !isGet(rc.r) {
			return methodNotAllowed("GET")
		}
		return s.serveArtifact(rc, b, p, rest[1:])
	case is(rest, "wfapi", "artifacts") && b.job.spec.Class == ClassWorkflowJob:
		return api(rc, func() *reply { return s.stageViewArtifacts(b) })
	}
	return nil
}

// stageViewArtifacts is pipeline-stage-view's RunAPI.doArtifacts: a
// BuildArtifactExt per artifact (id: the tree node id; name: displayPath,
// else relativePath; path: the href; url: context path + the build's url +
// "artifact/" + href; size), written by Jackson in field order with
// JsonResponse's Content-Type. pipeline-stage-view-plugin:
// rest-api/src/main/java/com/cloudbees/workflow/rest/endpoints/RunAPI.java,
// rest-api/src/main/java/com/cloudbees/workflow/rest/external/BuildArtifactExt.java,
// rest-api/src/main/java/com/cloudbees/workflow/util/JsonResponse.java,
// ModelUtil.getFullItemUrl.
func (s *Server) stageViewArtifacts(b *build) *reply {
	e := &enc{b: []byte{'['}}
	for i, a := range artifactList(b.scm.files) {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		name := a.displayPath
		if name == "" {
			name = a.relativePath
		}
		e.b = append(e.b, `{"id":`...)
		e.str(a.treeNodeID)
		e.b = append(e.b, `,"name":`...)
		e.str(name)
		e.b = append(e.b, `,"path":`...)
		e.str(a.href)
		e.b = append(e.b, `,"url":`...)
		e.str(s.prefix + "/" + buildPath(b) + "artifact/" + a.href)
		e.b = append(e.b, `,"size":`...)
		e.int(a.size)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ']')
	return newReply(http.StatusOK, "application/json; charset=UTF-8", e.b)
}

// artifactCSP is DirectoryBrowserSupport.DEFAULT_CSP_VALUE, sent with every
// file served from Jenkins's own domain.
const artifactCSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'self';"

// stapler's RANGE_SPEC: "5-300", "0-900", "100-".
var rangeSpec = regexp.MustCompile(`^([0-9]+)-([0-9]*)$`)

// serveArtifact is Run.doArtifact and DirectoryBrowserSupport.serveFile
// for one path below the artifacts folder (segs, decoded once):
//
//   - with Options.ArtifactsPermission, Run.ARTIFACTS is checked first
//     (AccessDeniedException3: 403 naming hudson.model.Run.Artifacts);
//   - a path holding "/../" is a 400 (sendError);
//   - a segment with "*" or "?" that names no file is an Ant glob: the
//     listing page of what matches;
//   - a folder without a trailing "/" is redirected (302) to its "/" form,
//     which is its listing page (dir.jelly);
//   - a missing file is a 404 (sendError: Jenkins's 404 page);
//   - with a resource root URL configured, a file is a 302 to it;
//   - otherwise the file, through Stapler's serveStaticResource:
//     Last-Modified, Expires, Accept-Ranges: bytes, its MIME type (text/*
//     with charset=UTF-8), nosniff, the sandbox CSP, Content-Length; a
//     "Range: bytes=S-E" or "bytes=S-" header (anything else is ignored)
//     gets 206 with Content-Range "bytes S-(E-1)/LENGTH", E cut to the
//     length. There is no 416: a start past the end makes skipBytes fail
//     and Jenkins answers its 500 page; a start at the very end is a 206
//     with no bytes ("bytes N-(N-1)/N").
//
// Jenkins: core/src/main/java/hudson/model/Run.java, doArtifact;
// core/src/main/java/hudson/model/DirectoryBrowserSupport.java,
// generateResponse, serveFile; stapler:
// core/src/main/java/org/kohsuke/stapler/Stapler.java,
// serveStaticResource, getMimeType.
func (s *Server) serveArtifact(rc *reqCtx, b *build, p perm, segs []string) *reply {
	if s.artifactsPerm && p&pArtifacts == 0 {
		return rc.accessDenied(PermArtifacts, "Run/Artifacts")
	}
	rest := "/" + strings.Join(segs, "/")
	if strings.HasSuffix(rc.r.URL.Path, "/") {
		rest += "/"
	}
	if strings.Contains(strings.ReplaceAll(rest, "\\", "/"), "/../") {
		return newReply(http.StatusBadRequest, "text/html;charset=utf-8", []byte("<html><body><h2>HTTP ERROR 400 Bad Request</h2></body></html>\n"))
	}
	root := artTree(b.scm.files)
	n := root.find(segs)
	if n == nil {
		for _, seg := range segs {
			if strings.ContainsAny(seg, "*?") {
				return htmlPage("Artifacts of " + fullDisplayName(b.job) + " #" + strconv.Itoa(b.number))
			}
		}
		return notFound()
	}
	if n.file == nil {
		if !strings.HasSuffix(rc.r.URL.Path, "/") {
			rp := newReply(http.StatusFound, "", nil)
			rp.header.Set("Location", requestOrigin(rc.r)+rc.r.URL.EscapedPath()+"/")
			return rp
		}
		return htmlPage("Artifacts of " + fullDisplayName(b.job) + " #" + strconv.Itoa(b.number))
	}
	if s.resourceRoot != "" {
		// ResourceDomainRootAction.getRedirectUrl: the resource root URL,
		// a token for this user and file, then the rest of the path.
		rp := newReply(http.StatusFound, "", nil)
		rp.header.Set("Location", strings.TrimSuffix(s.resourceRoot, "/")+"/"+s.mac("resource", rc.name(), rc.r.URL.Path)[:24]+"/"+strings.Join(escapeAll(segs), "/"))
		return rp
	}
	data := n.file.Data
	mod := b.end().UTC().Format(http.TimeFormat)
	rp := newReply(http.StatusOK, artifactMediaType(n.name), nil)
	h := rp.header
	h.Set("Last-Modified", mod)
	h.Set("Expires", mod)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Security-Policy", artifactCSP)
	length := int64(len(data))
	start, end := int64(0), length
	if v, ok := strings.CutPrefix(rc.r.Header.Get("Range"), "bytes="); ok {
		if m := rangeSpec.FindStringSubmatch(v); m != nil {
			st, err1 := strconv.ParseInt(m[1], 10, 64)
			en := length
			var err2 error
			if m[2] != "" {
				en, err2 = strconv.ParseInt(m[2], 10, 64)
				en++ // the range is inclusive
			}
			if err1 == nil && err2 == nil {
				en = min(en, length)
				if st > length {
					// skipBytes cannot reach the start: IOException, the
					// oops page (the headers set so far are dropped).
					return textReply(http.StatusInternalServerError, "java.io.IOException: skipBytes failure ("+strconv.FormatInt(st-length, 10)+" of "+m[1]+" bytes unskipped)")
				}
				rp.status = http.StatusPartialContent
				h.Set("Content-Range", "bytes "+m[1]+"-"+strconv.FormatInt(en-1, 10)+"/"+strconv.FormatInt(length, 10))
				start, end = st, max(en, st)
			}
		}
	}
	h.Set("Content-Length", strconv.FormatInt(end-start, 10))
	rp.body = clone(data[start:end])
	return rp
}

func escapeAll(segs []string) []string {
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = escapePathSegment(s)
	}
	return out
}

// artifactMediaType is the Content-Type DirectoryBrowserSupport and
// Stapler give a file: the servlet container's MIME type for its name
// (Jetty's mime.properties; the common ones below), "; charset=UTF-8"
// added to text/* types, application/octet-stream when none is known.
func artifactMediaType(name string) string {
	ext := strings.ToLower(name[strings.LastIndexByte(name, '.')+1:])
	if !strings.Contains(name, ".") {
		ext = ""
	}
	types := map[string]string{
		"txt": "text/plain", "log": "text/plain", "html": "text/html", "htm": "text/html", "css": "text/css",
		"csv": "text/csv", "xml": "application/xml", "json": "application/json", "js": "text/javascript",
		"png": "image/png", "gif": "image/gif", "jpg": "image/jpeg", "jpeg": "image/jpeg", "svg": "image/svg+xml",
		"pdf": "application/pdf", "zip": "application/zip", "jar": "application/java-archive",
		"gz": "application/gzip", "tgz": "application/gzip", "tar": "application/x-tar",
	}
	t, ok := types[ext]
	if !ok {
		return "application/octet-stream"
	}
	if strings.HasPrefix(t, "text/") {
		return t + ";charset=UTF-8"
	}
	return t
}
