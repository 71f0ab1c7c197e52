package jenkins

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Build artifacts: what a build archived (ArtifactArchiver, the
// archiveArtifacts step) and the files themselves.
//
// Jenkins lists a build's artifacts in its api/json (Run.getArtifacts,
// @Exported: relativePath, fileName, displayPath; no size) and serves each
// at <build>/artifact/<path> (Run.doArtifact → DirectoryBrowserSupport,
// which hands files to Stapler's serveFile with their length, so a Range
// request gets a 206). Pipeline builds also answer pipeline-stage-view's
// <build>/wfapi/artifacts (RunAPI.doArtifacts: BuildArtifactExt id, name,
// path, url, size), the one place the sizes of all files come in one
// request. Jenkins: core/src/main/java/hudson/model/Run.java (getArtifacts,
// Artifact, doArtifact), core/src/main/java/hudson/model/DirectoryBrowserSupport.java
// (serveFile); stapler core/src/main/java/org/kohsuke/stapler/Stapler.java
// (serveStaticResource); pipeline-stage-view-plugin
// rest-api/src/main/java/com/cloudbees/workflow/rest/endpoints/RunAPI.java,
// rest-api/src/main/java/com/cloudbees/workflow/rest/external/BuildArtifactExt.java.

// MaxArtifactPathLen bounds an artifact path a caller may name.
const MaxArtifactPathLen = 4096

// ErrInvalidArtifactPath is wrapped by every error of ParseArtifactPath.
var ErrInvalidArtifactPath = errors.New("invalid artifact path")

// ArtifactPath is a checked artifact path relative to the build's
// artifacts root: segments joined by "/", none empty, "." or "..".
type ArtifactPath struct{ segs []string }

// ParseArtifactPath checks a path a caller names before anything reaches
// Jenkins. The path is taken literally, as list_artifacts reports it:
// refused are absolute paths ("/x", "C:..."), backslashes (Windows
// separators, and DirectoryBrowserSupport turns them into "/" before its
// "/../" check), empty, "." and ".." segments, control and format
// characters, percent-escapes ("%2e%2e", "%2F": a literal path never needs
// one, and an agent that pre-encoded would be served another file), and
// the characters Jenkins or Jetty give a meaning in that place: "*" and
// "?" (DirectoryBrowserSupport reads a segment holding one as an Ant glob,
// and "*zip*", "*plain*", "*view*" as commands) and ";" (Jetty's path
// parameters).
func ParseArtifactPath(raw string) (ArtifactPath, error) {
	bad := func(format string, args ...any) (ArtifactPath, error) {
		return ArtifactPath{}, fmt.Errorf("%w: %s", ErrInvalidArtifactPath, fmt.Sprintf(format, args...))
	}
	switch {
	case raw == "":
		return bad("empty")
	case len(raw) > MaxArtifactPathLen:
		return bad("longer than %d bytes", MaxArtifactPathLen)
	case !utf8.ValidString(raw):
		return bad("not valid UTF-8")
	case strings.HasPrefix(raw, "/"):
		return bad("absolute paths are not allowed: give the path below the build's artifacts, as list_artifacts shows it")
	case len(raw) >= 2 && raw[1] == ':' && (raw[0]|0x20 >= 'a' && raw[0]|0x20 <= 'z'):
		return bad("absolute (drive) paths are not allowed")
	}
	for i := 0; i < len(raw); {
		r, w := utf8.DecodeRuneInString(raw[i:])
		switch {
		case r == '\\':
			return bad("backslash is not allowed: separate folders with '/'")
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return bad("control or format character %U", r)
		case r == '*' || r == '?':
			return bad("%q is not allowed: Jenkins reads it as a wildcard", r)
		case r == ';':
			return bad("';' is not allowed: Jenkins's web server reads it as a path parameter")
		case r == '%' && i+2 < len(raw) && isHex(raw[i+1]) && isHex(raw[i+2]):
			return bad("percent-escapes such as %q are not allowed: give the path literally, Butler encodes it", raw[i:i+3])
		}
		i += w
	}
	segs := strings.Split(raw, "/")
	for i, s := range segs {
		switch s {
		case "":
			return bad("segment %d is empty (\"//\" or a trailing '/'): name a file, not a folder", i+1)
		case ".", "..":
			return bad("segment %d is %q, which is not allowed", i+1, s)
		}
	}
	return ArtifactPath{segs: segs}, nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// String is the path as a caller wrote it.
func (p ArtifactPath) String() string { return strings.Join(p.segs, "/") }

// Name is the file name, the last segment.
func (p ArtifactPath) Name() string {
	if len(p.segs) == 0 {
		return ""
	}
	return p.segs[len(p.segs)-1]
}

// escaped is the path with every segment percent-encoded.
func (p ArtifactPath) escaped() string {
	out := make([]string, len(p.segs))
	for i, s := range p.segs {
		out[i] = jobpath.EscapeSegment(s)
	}
	return strings.Join(out, "/")
}

// IsZero reports whether p was never parsed.
func (p ArtifactPath) IsZero() bool { return len(p.segs) == 0 }

// Artifact is one archived file of a build.
type Artifact struct {
	// Path is Jenkins's relativePath: below the build's artifacts root,
	// "/"-separated.
	Path string
	// Size in bytes, or -1 where Jenkins does not report it (a freestyle
	// build, or a Jenkins without pipeline-stage-view).
	Size int64
}

// Artifacts is a build's list of archived files.
type Artifacts struct {
	Build    int64 // the build's number
	Pipeline bool  // a WorkflowRun
	Files    []Artifact
	// Truncated: the build has more than the max files asked for.
	Truncated bool
}

// wireArtifactsBuild is a build's api/json with only its artifacts.
type wireArtifactsBuild struct {
	Class     string `json:"_class"`
	Number    int64  `json:"number"`
	Artifacts []struct {
		RelativePath string `json:"relativePath"`
		FileName     string `json:"fileName"`
	} `json:"artifacts"`
}

// wireStageViewArtifact is pipeline-stage-view's BuildArtifactExt.
type wireStageViewArtifact struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Path string `json:"path"` // Run.Artifact.getHref: each segment Util.rawEncode'd
	URL  string `json:"url"`
	Size int64  `json:"size"`
}

// workflowRunClass is a Pipeline build's _class.
const workflowRunClass = "org.jenkinsci.plugins.workflow.job.WorkflowRun"

// ListArtifacts returns at most max of the files a build archived (number
// 0: the last build), in Jenkins's order. It asks the build's api/json for
// the paths (the tree bounded to max+1 entries) and, for a Pipeline build
// with artifacts, pipeline-stage-view's wfapi/artifacts once for all their
// sizes; never a request per file. A Jenkins without pipeline-stage-view
// (wfapi answers 404) leaves the sizes unknown (-1).
func (c *Client) ListArtifacts(ctx context.Context, cred Credential, job jobpath.Path, number int64, max int) (*Artifacts, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if max <= 0 {
		max = 1000
	}
	tree := fmt.Sprintf("number,artifacts[relativePath,fileName]{0,%d}", max+1)
	w, err := getJSON(ctx, c, call{op: "list artifacts of " + buildName(job, number), rel: buildRel(job, number) + "api/json",
		query: url.Values{"tree": {tree}}, cred: cred}, func(data []byte) (*wireArtifactsBuild, error) {
		var w wireArtifactsBuild
		if err := json.Unmarshal(data, &w); err != nil {
			return nil, err
		}
		return &w, nil
	})
	if err != nil {
		return nil, err
	}
	out := &Artifacts{Build: w.Number, Pipeline: w.Class == workflowRunClass, Files: make([]Artifact, 0, min(len(w.Artifacts), max))}
	for _, a := range w.Artifacts {
		if len(out.Files) == max {
			out.Truncated = true
			break
		}
		out.Files = append(out.Files, Artifact{Path: a.RelativePath, Size: -1})
	}
	if !out.Pipeline || len(out.Files) == 0 || w.Number <= 0 {
		return out, nil
	}
	// The same build by number, so a build that started meanwhile cannot
	// lend its sizes to lastBuild's files.
	sizes, err := getJSON(ctx, c, call{op: "list artifact sizes of " + buildName(job, w.Number), rel: buildRel(job, w.Number) + "wfapi/artifacts",
		cred: cred}, func(data []byte) ([]wireStageViewArtifact, error) {
		var v []wireStageViewArtifact
		err := json.Unmarshal(data, &v)
		return v, err
	})
	if errors.Is(err, ErrNotFound) {
		return out, nil // no pipeline-stage-view: sizes stay unknown
	}
	if err != nil {
		return nil, err
	}
	byPath := make(map[string]int64, len(sizes))
	for _, s := range sizes {
		if p, ok := unescapeHref(s.Path); ok {
			byPath[p] = s.Size
		}
	}
	for i := range out.Files {
		if n, ok := byPath[out.Files[i].Path]; ok && n >= 0 {
			out.Files[i].Size = n
		}
	}
	return out, nil
}

// unescapeHref turns Run.Artifact.getHref (segments encoded with
// Util.rawEncode, joined by "/") back into the relativePath.
func unescapeHref(href string) (string, bool) {
	segs := strings.Split(href, "/")
	for i, s := range segs {
		d, err := url.PathUnescape(s)
		if err != nil {
			return "", false
		}
		segs[i] = d
	}
	return strings.Join(segs, "/"), true
}

// ArtifactChunk is a piece of an artifact file.
type ArtifactChunk struct {
	// Data holds the bytes read, from Start; at most the max asked for.
	Data  []byte
	Start int64
	// Size is the whole file's length (Content-Length, or the total of
	// Content-Range), -1 if Jenkins did not say.
	Size int64
	// ContentType is Jenkins's Content-Type (from the servlet container's
	// MIME table by the file's name; application/octet-stream otherwise).
	ContentType string
}

// End is the offset just after Data.
func (a *ArtifactChunk) End() int64 { return a.Start + int64(len(a.Data)) }

// ErrArtifactIsDirectory: the path names a folder of the artifacts, not a
// file (DirectoryBrowserSupport redirects it to its "/" form, the folder's
// listing page).
var ErrArtifactIsDirectory = errors.New("the artifact path is a folder, not a file")

// ErrRangeNotSatisfiable: start is past the artifact's end. Stapler has no
// 416: it fails (a 500) when it cannot skip to the start.
var ErrRangeNotSatisfiable = errors.New("start is past the end of the artifact")

// maxRangeSkip bounds how much an answer that ignored the Range header (a
// proxy that drops it) may be read and discarded to reach start.
const maxRangeSkip = 64 << 20

// ReadArtifact reads at most maxBytes of an artifact from byte offset
// start (number 0: the last build). From start 0 it sends a plain GET and
// stops reading after maxBytes; past 0 a Range request for exactly the
// page (Stapler's serveStaticResource answers it with 206 and
// Content-Range). Jenkins answers a missing file 404 (ErrNotFound) and a
// folder with a redirect to its listing (ErrArtifactIsDirectory); any other
// redirect (a resource root URL, an artifact manager that serves from
// elsewhere, a login page) is ErrUnavailable: the client follows none. A
// start past the end is ErrRangeNotSatisfiable, told by one HEAD request
// after Jenkins's 500.
func (c *Client) ReadArtifact(ctx context.Context, cred Credential, job jobpath.Path, number int64, path ArtifactPath, start int64, maxBytes int) (*ArtifactChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if path.IsZero() {
		return nil, &Error{Op: "read artifact", Err: ErrBadRequest, Detail: "no path"}
	}
	if maxBytes <= 0 || start < 0 {
		return nil, &Error{Op: "read artifact", Err: ErrBadRequest, Detail: "bad range"}
	}
	op := fmt.Sprintf("read artifact %q of %s", path.String(), buildName(job, number))
	rel := buildRel(job, number) + "artifact/" + path.escaped()
	cl := call{op: op, method: http.MethodGet, rel: rel, cred: cred}
	if start > 0 {
		cl.headers = http.Header{"Range": {fmt.Sprintf("bytes=%d-%d", start, start+int64(maxBytes)-1)}}
	}
	resp, err := c.do(ctx, cl)
	if err != nil {
		var je *Error
		if start > 0 && errors.As(err, &je) && je.Status >= 500 {
			if size, herr := c.artifactSize(ctx, cred, rel, op); herr == nil && size >= 0 && start > size {
				return nil, &Error{Op: op, Status: je.Status, Err: ErrRangeNotSatisfiable, Detail: fmt.Sprintf("start %d is past the end (the artifact has %d bytes)", start, size)}
			}
		}
		return nil, err
	}
	defer drain(resp)
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if isDirectoryRedirect(resp, rel) {
			return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrArtifactIsDirectory, Detail: "it is a folder; list_artifacts lists its files"}
		}
		return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable,
			Detail: "Jenkins redirects this artifact elsewhere (a resource root URL, an external artifact store or a login page); Butler follows no redirect"}
	}
	chunk := &ArtifactChunk{Start: start, Size: -1, ContentType: resp.Header.Get("Content-Type")}
	body := io.Reader(resp.Body)
	switch resp.StatusCode {
	case http.StatusPartialContent:
		s, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || s != start {
			return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "a partial answer without the Content-Range asked for"}
		}
		chunk.Size = total
	case http.StatusOK:
		chunk.Size = resp.ContentLength
		if start > 0 {
			// The Range header was dropped on the way: skip to start.
			if start > maxRangeSkip {
				return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable,
					Detail: fmt.Sprintf("the answer ignored the Range header (a proxy in front of Jenkins?), and Butler skips at most %d bytes", maxRangeSkip)}
			}
			n, err := io.CopyN(io.Discard, body, start)
			if err != nil && err != io.EOF {
				return nil, transportError(ctx, op, err)
			}
			if n < start {
				return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrRangeNotSatisfiable, Detail: fmt.Sprintf("start %d is past the end (the artifact has %d bytes)", start, n)}
			}
		}
	default:
		return nil, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "unexpected answer"}
	}
	data, err := io.ReadAll(io.LimitReader(body, int64(maxBytes)))
	if err != nil {
		return nil, transportError(ctx, op, err)
	}
	chunk.Data = data
	if chunk.Size < 0 && len(data) < maxBytes {
		chunk.Size = start + int64(len(data)) // read to the end
	}
	return chunk, nil
}

// artifactSize asks for an artifact's length with a HEAD request.
func (c *Client) artifactSize(ctx context.Context, cred Credential, rel, op string) (int64, error) {
	resp, err := c.do(ctx, call{op: op, method: http.MethodHead, rel: rel, cred: cred})
	if err != nil {
		return -1, err
	}
	drain(resp)
	if resp.StatusCode != http.StatusOK {
		return -1, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable}
	}
	return resp.ContentLength, nil
}

// isDirectoryRedirect reports whether resp is DirectoryBrowserSupport's
// redirect of a folder to its listing: Location is the request's URL with
// a "/" added (rsp.sendRedirect2(reqUrl.append('/'))).
func isDirectoryRedirect(resp *http.Response, rel string) bool {
	if resp.StatusCode != http.StatusFound {
		return false
	}
	return redirectsTo(resp, rel+"/")
}

// parseContentRange reads "bytes S-E/TOTAL". Stapler writes E = S-1 for
// an empty page at the very end ("bytes 10-9/10").
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	total, err2 := strconv.ParseInt(tot, 10, 64)
	if err1 != nil || err2 != nil || start < 0 || total < 0 || start > total {
		return 0, 0, false
	}
	return start, total, true
}

// ArtifactURL is the address of an artifact under the configured Jenkins
// URL (number 0: the last build), for naming it to a client; it is never
// followed for them.
func (c *Client) ArtifactURL(job jobpath.Path, number int64, path ArtifactPath) string {
	return c.url(buildRel(job, number)+"artifact/"+path.escaped(), nil)
}
