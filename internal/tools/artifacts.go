package tools

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"path"
	"time"
	"unicode/utf8"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/jenkins"
)

// withContent is an output that adds content items after the JSON text
// (get_artifact's embedded file).
type withContent interface{ extraContent() []mcp.Content }

// contentBytes is what extra content items cost on the wire (a blob is
// sent base64-encoded).
func contentBytes(cs []mcp.Content) int {
	n := 0
	for _, c := range cs {
		if r, ok := c.(*mcp.EmbeddedResource); ok && r.Resource != nil {
			n += base64.StdEncoding.EncodedLen(len(r.Resource.Blob)) + len(r.Resource.Text) + len(r.Resource.URI) + 64
		}
	}
	return n
}

// maxArtifacts bounds list_artifacts (CONTRACT §14: truncated over 1000).
const maxArtifacts = 1000

// ArtifactsIn names a build whose artifacts to list.
type ArtifactsIn struct {
	Job   string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
}

// ArtifactEntry is one archived file.
type ArtifactEntry struct {
	Path string `json:"path" jsonschema:"path below the build's artifacts, to pass to get_artifact as it is"`
	Size *int64 `json:"size" jsonschema:"size in bytes; null where Jenkins does not report it (freestyle builds, or no pipeline-stage-view plugin)"`
}

// ArtifactsOut lists a build's artifacts.
type ArtifactsOut struct {
	Build     int64           `json:"build" jsonschema:"number of the build listed"`
	Artifacts []ArtifactEntry `json:"artifacts"`
	Truncated bool            `json:"truncated" jsonschema:"true when the build has more than 1000 files; only the first 1000 are listed"`
}

func addListArtifacts(t *Toolset) (*def, error) {
	return add(t, spec[ArtifactsIn, ArtifactsOut]{
		name:   catalog.ListArtifacts,
		input:  buildSchema,
		target: func(in *ArtifactsIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *ArtifactsIn) (*ArtifactsOut, error) {
			l, err := t.deps.Jenkins.ListArtifacts(ctx, c.cred, c.target.job, buildNumber(in.Build), maxArtifacts)
			if err != nil {
				return nil, err
			}
			out := &ArtifactsOut{Build: l.Build, Artifacts: make([]ArtifactEntry, 0, len(l.Files)), Truncated: l.Truncated}
			for _, f := range l.Files {
				e := ArtifactEntry{Path: f.Path}
				if f.Size >= 0 {
					e.Size = ptr(f.Size)
				}
				out.Artifacts = append(out.Artifacts, e)
			}
			return out, nil
		},
	})
}

// ArtifactIn selects part of one artifact.
type ArtifactIn struct {
	Job      string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build    *int64 `json:"build,omitempty" jsonschema:"build number; default the last build (give it when paging)"`
	Path     string `json:"path" jsonschema:"the file's path as list_artifacts shows it, e.g. 'dist/report.txt': literal (not URL-encoded), relative, no '..', no backslashes"`
	Start    int64  `json:"start,omitempty" jsonschema:"byte offset to read a text file from; pass next_start of the previous call to continue"`
	MaxBytes int    `json:"max_bytes,omitempty" jsonschema:"most bytes to return, 1 to 1048576; default 65536. A binary file is returned only if it is no larger"`

	path jenkins.ArtifactPath // checked when the input is
}

// ArtifactOut is a page of a text artifact, or a binary one described.
type ArtifactOut struct {
	Path      string  `json:"path"`
	Kind      string  `json:"kind" jsonschema:"text (the first 8 KiB are UTF-8 without NUL bytes) or binary"`
	MediaType string  `json:"media_type" jsonschema:"media type from the file name, else from the content"`
	Size      *int64  `json:"size" jsonschema:"the whole file's size in bytes; null if Jenkins did not say"`
	Text      *string `json:"text,omitempty" jsonschema:"text files: the text from start"`
	Start     int64   `json:"start" jsonschema:"byte offset where text begins"`
	NextStart *int64  `json:"next_start,omitempty" jsonschema:"text files: byte offset just after text; pass as start to read on"`
	More      bool    `json:"more" jsonschema:"text files: true while bytes remain after next_start"`
	Embedded  bool    `json:"embedded" jsonschema:"binary files: true when the bytes are in this answer as an embedded resource (the file is at most max_bytes); false when too large, or when start is past 0"`

	blob []byte // the embedded resource's bytes
	uri  string
}

func (o *ArtifactOut) extraContent() []mcp.Content {
	if !o.Embedded {
		return nil
	}
	return []mcp.Content{&mcp.EmbeddedResource{Resource: &mcp.ResourceContents{URI: o.uri, MIMEType: o.MediaType, Blob: o.blob}}}
}

// textSniff is how much of a file decides whether it is text.
const textSniff = 8 << 10

func addGetArtifact(t *Toolset) (*def, error) {
	return add(t, spec[ArtifactIn, ArtifactOut]{
		name: catalog.GetArtifact,
		input: func(s *jsonschema.Schema) {
			buildSchema(s)
			p := prop(s, "path")
			p.MinLength, p.MaxLength = ptr(1), ptr(jenkins.MaxArtifactPathLen)
			prop(s, "start").Minimum = ptr(0.0)
			bounds(s, "max_bytes", 1, 1<<20)
			setDefault(s, "max_bytes", 65536)
		},
		target: func(in *ArtifactIn) (target, error) {
			// The path is checked before anything reaches Jenkins.
			p, err := jenkins.ParseArtifactPath(in.Path)
			if err != nil {
				return target{}, Errorf(CodeInvalidArgument, "path: %v", err)
			}
			in.path = p
			return buildTarget(in.Job, in.Build)
		},
		run: func(ctx context.Context, c *call, in *ArtifactIn) (*ArtifactOut, error) {
			p := in.path
			if p.IsZero() {
				var err error
				if p, err = jenkins.ParseArtifactPath(in.Path); err != nil {
					return nil, Errorf(CodeInvalidArgument, "path: %v", err)
				}
			}
			n := buildNumber(in.Build)
			chunk, err := t.deps.Jenkins.ReadArtifact(ctx, c.cred, c.target.job, n, p, in.Start, in.MaxBytes)
			switch {
			case errors.Is(err, jenkins.ErrArtifactIsDirectory):
				return nil, Errorf(CodeInvalidArgument, "path %q is a folder of the artifacts, not a file; list_artifacts lists its files", p.String())
			case errors.Is(err, jenkins.ErrRangeNotSatisfiable):
				var je *jenkins.Error
				msg := "start is past the end of the artifact"
				if errors.As(err, &je) && je.Detail != "" {
					msg = je.Detail
				}
				return nil, Errorf(CodeInvalidArgument, "start: %s", msg)
			case errors.Is(err, jenkins.ErrNotFound):
				return nil, Errorf(CodeNotFound, "artifact %q of %s not found (the build archived no such file, does not exist, or you may not see it)", p.String(), c.target.what)
			case err != nil:
				return nil, err
			}
			return artifactOut(p, chunk, in, t.deps.Jenkins.ArtifactURL(c.target.job, n, p)), nil
		},
	})
}

func artifactOut(p jenkins.ArtifactPath, chunk *jenkins.ArtifactChunk, in *ArtifactIn, uri string) *ArtifactOut {
	out := &ArtifactOut{Path: p.String(), Start: chunk.Start, MediaType: mediaType(p.Name(), chunk.Data)}
	if chunk.Size >= 0 {
		out.Size = ptr(chunk.Size)
	}
	end := chunk.End()
	whole := chunk.Size >= 0 && end >= chunk.Size
	if isText(chunk.Data, chunk.Start > 0, whole) {
		data := chunk.Data
		if !whole {
			data = trimPartialRune(data) // the rest of a rune cut by the page end comes with the next page
		}
		next := chunk.Start + int64(len(data))
		out.Kind, out.Text, out.NextStart = "text", ptr(validUTF8(data)), ptr(next)
		out.More = chunk.Size < 0 && len(chunk.Data) == in.MaxBytes || chunk.Size >= 0 && next < chunk.Size
		return out
	}
	out.Kind = "binary"
	if chunk.Start == 0 && whole && len(chunk.Data) <= in.MaxBytes {
		out.Embedded, out.blob, out.uri = true, chunk.Data, uri
	}
	return out
}

// isText reports whether a page looks like text: its first 8 KiB are
// UTF-8 without NUL bytes. A rune cut at the end of what is checked does
// not count against it, nor (past offset 0) continuation bytes at its start.
func isText(data []byte, mid, whole bool) bool {
	head := data[:min(len(data), textSniff)]
	if bytes.IndexByte(head, 0) >= 0 {
		return false
	}
	if mid {
		for i := 0; i < utf8.UTFMax-1 && len(head) > 0 && !utf8.RuneStart(head[0]); i++ {
			head = head[1:]
		}
	}
	if len(head) < len(data) || !whole {
		head = trimPartialRune(head)
	}
	return utf8.Valid(head)
}

// trimPartialRune drops an incomplete UTF-8 sequence at the end of b.
func trimPartialRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// mediaType is the file's media type from its name (mime.TypeByExtension),
// else from its first bytes (http.DetectContentType).
func mediaType(name string, data []byte) string {
	if ext := path.Ext(name); ext != "" {
		if t := mime.TypeByExtension(ext); t != "" {
			return t
		}
	}
	return http.DetectContentType(data[:min(len(data), 512)])
}

// Build changes.

// maxCommits and maxCommitPaths bound get_build_changes (CONTRACT §14:
// paths max 50); maxMessage is the message's cut, in characters.
const (
	maxCommits     = 200
	maxCommitPaths = 50
	maxMessage     = 1000
)

// ChangesIn names a build whose changes to list.
type ChangesIn struct {
	Job   string `json:"job" jsonschema:"full path of the job: folders and job name joined by '/', e.g. 'frontend/web-app' (Jenkins's fullName)"`
	Build *int64 `json:"build,omitempty" jsonschema:"build number; default the last build"`
}

// CommitOut is one commit.
type CommitOut struct {
	ID        string   `json:"id" jsonschema:"the commit id (git hash)"`
	Author    string   `json:"author" jsonschema:"author's name as Jenkins knows it"`
	Message   string   `json:"message" jsonschema:"the commit message (its first 1000 characters)"`
	Timestamp *string  `json:"timestamp" jsonschema:"commit time, RFC 3339 in UTC; null if Jenkins does not know it"`
	Paths     []string `json:"paths" jsonschema:"files the commit touched (at most 50)"`
}

// ChangesOut lists a build's commits.
type ChangesOut struct {
	Build        int64       `json:"build" jsonschema:"number of the build"`
	Commits      []CommitOut `json:"commits" jsonschema:"the commits Jenkins recorded for this build, each change set oldest first"`
	Truncated    bool        `json:"truncated" jsonschema:"true when more than 200 commits, or more than 50 paths of a commit, were left out"`
	Repositories []string    `json:"repositories" jsonschema:"repository URLs the build fetched from, without any credentials"`
}

func addGetBuildChanges(t *Toolset) (*def, error) {
	return add(t, spec[ChangesIn, ChangesOut]{
		name:   catalog.GetBuildChanges,
		input:  buildSchema,
		target: func(in *ChangesIn) (target, error) { return buildTarget(in.Job, in.Build) },
		run: func(ctx context.Context, c *call, in *ChangesIn) (*ChangesOut, error) {
			ch, err := t.deps.Jenkins.BuildChanges(ctx, c.cred, c.target.job, buildNumber(in.Build), jenkins.ChangesOptions{MaxCommits: maxCommits, MaxPaths: maxCommitPaths})
			if err != nil {
				return nil, err
			}
			return changesOut(ch), nil
		},
	})
}

func changesOut(ch *jenkins.Changes) *ChangesOut {
	out := &ChangesOut{Build: ch.Build, Commits: make([]CommitOut, 0, len(ch.Commits)), Truncated: ch.Truncated, Repositories: nonNil(ch.Repositories)}
	for _, cm := range ch.Commits {
		co := CommitOut{ID: cutBytes(cm.ID, 200), Author: cut(cm.Author, 200), Message: cutRunes(cm.Message, maxMessage), Paths: make([]string, 0, len(cm.Paths))}
		if cm.Timestamp >= 0 {
			co.Timestamp = ptr(time.UnixMilli(cm.Timestamp).UTC().Format(time.RFC3339))
		}
		for _, p := range cm.Paths {
			co.Paths = append(co.Paths, cut(p.File, 1000))
		}
		if cm.PathsTruncated {
			out.Truncated = true
		}
		out.Commits = append(out.Commits, co)
	}
	return out
}

// cutRunes keeps the first n characters of s (no ellipsis: the contract's
// "first 1000 chars").
func cutRunes(s string, n int) string {
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

func cutBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return fmt.Sprintf("%s…", cutRunes(s, n))
}
