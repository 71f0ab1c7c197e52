package jenkins

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"unsafe"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Listing is a job listing held compactly, sorted by full name. A listing
// of a large controller is held once per caller for the listing cache's
// lifetime, so its size matters: every full name lives in one shared
// string, a job's class is an index into a small table, and its URL is not
// stored when it is the one Jenkins derives from the item's path
// (Item.getUrl: the parent's URL + "job/" + the encoded name + "/"), which
// is every job on a controller without unusual names. A job costs 24 bytes
// plus its full name, where a JobSummary costs five string headers and four
// separate strings.
//
// A listing holds no build status (colour, last build): reading those makes
// Jenkins load each job's last build record, which on a cold controller
// means one file read per job (AbstractLazyLoadRunMap). Statuses are read
// for one page at a time with Client.JobStatuses, from the positions the
// listing remembers.
//
// A Listing is immutable once built and safe for concurrent use.
type Listing struct {
	names   string       // every full name, back to back
	base    string       // URL of the listed folder as Jenkins reports it ("" when unknown)
	classes []string     // distinct _class values
	urls    []string     // URLs that are not base + the job's relative URL path
	folders []listFolder // folders[0] is the listed folder
	jobs    []listed
	prefix  int // length of the listed folder's full name plus its "/" (0 at the root)
}

// listed is one job of a Listing.
type listed struct {
	off, n    uint32 // full name: names[off : off+n]
	url       int32  // index in urls, or -1 when derived from base and the name
	folder    uint32 // index in folders of the job's parent
	index     uint32 // position in the parent's jobs array, as Jenkins answered
	class     uint16
	buildable bool
}

// listFolder is a folder the listing went through: where it sits in its
// parent's jobs array, so that a page's statuses can be asked for by
// position (Stapler's tree ranges, `jobs[...]{M,N}`).
type listFolder struct {
	path   string // full name ("" at the root)
	parent int32  // index in folders; -1 for the listed folder
	index  uint32 // position in the parent's jobs array
}

// Len is the number of jobs.
func (l *Listing) Len() int {
	if l == nil {
		return 0
	}
	return len(l.jobs)
}

// Name is the full name of job i, without allocating.
func (l *Listing) Name(i int) string {
	j := l.jobs[i]
	return l.names[j.off : j.off+j.n]
}

// Job is job i as a JobSummary, without its build status (see
// Client.JobStatuses).
func (l *Listing) Job(i int) JobSummary {
	j := l.jobs[i]
	s := JobSummary{FullName: l.Name(i), Class: l.classes[j.class], Buildable: j.buildable}
	if j.url >= 0 {
		s.URL = l.urls[j.url]
	} else {
		s.URL = l.base + relativeURLPath(s.FullName[l.prefix:])
	}
	return s
}

// After is the index of the first job whose full name sorts after name
// (Len when none does).
func (l *Listing) After(name string) int {
	return sort.Search(l.Len(), func(i int) bool { return l.Name(i) > name })
}

// Filter is the listing of the jobs keep accepts. It shares the names and
// tables with l; when keep accepts every job it is l itself.
func (l *Listing) Filter(keep func(fullName string) bool) *Listing {
	if l.Len() == 0 {
		return l
	}
	var kept []listed
	for i, j := range l.jobs {
		if keep(l.Name(i)) {
			if kept != nil {
				kept = append(kept, j)
			}
			continue
		}
		if kept == nil {
			kept = make([]listed, i, len(l.jobs))
			copy(kept, l.jobs[:i])
		}
	}
	if kept == nil {
		return l
	}
	out := *l
	out.jobs = slices.Clip(kept)
	return &out
}

// relativeURLPath is the URL path Jenkins gives an item below a folder:
// "job/<name>/" per segment (Item.getUrl), each name percent-encoded.
func relativeURLPath(rel string) string {
	var b strings.Builder
	for seg := range strings.SplitSeq(rel, "/") {
		b.WriteString("job/")
		b.WriteString(jobpath.EscapeSegment(seg))
		b.WriteByte('/')
	}
	return b.String()
}

// isJobURLPath reports whether rest is the relative URL path of the
// segments rel (as relativeURLPath would write it), without allocating
// for names that need no encoding.
func isJobURLPath(rest, rel string) bool {
	for seg := range strings.SplitSeq(rel, "/") {
		var ok bool
		if rest, ok = strings.CutPrefix(rest, "job/"); !ok {
			return false
		}
		esc := seg
		if needsEscape(seg) {
			esc = jobpath.EscapeSegment(seg)
		}
		if rest, ok = strings.CutPrefix(rest, esc); !ok {
			return false
		}
		if rest, ok = strings.CutPrefix(rest, "/"); !ok {
			return false
		}
	}
	return rest == ""
}

func needsEscape(s string) bool {
	for i := range len(s) {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return true
		}
	}
	return false
}

// listingBuilder collects the jobs of one listing, from one request or
// several at once (folders deeper than the tree query reach are fetched
// separately); it is safe for concurrent use.
type listingBuilder struct {
	mu      sync.Mutex
	folder  string // full name of the listed folder ("" at the root)
	names   []byte
	base    string
	baseSet bool
	classes map[string]uint16
	urls    []string
	folders []listFolder
	jobs    []listed
	deeper  []cutOff
}

// cutOff is a folder whose children the tree query did not reach.
type cutOff struct {
	path   jobpath.Path
	folder uint32 // index in folders
}

func newListingBuilder(folder string) *listingBuilder {
	return &listingBuilder{folder: folder, classes: map[string]uint16{}, folders: []listFolder{{path: folder, parent: -1}}}
}

// wireListItem is one item of a `jobs[...]` tree. Jobs stays raw: it is
// nil or null for a job, an array for a folder (any kind: plain,
// multibranch, organization), parsed item by item only when needed.
type wireListItem struct {
	Class     string          `json:"_class"`
	Name      string          `json:"name"`
	URL       string          `json:"url"`
	Buildable *bool           `json:"buildable"`
	Jobs      json.RawMessage `json:"jobs"`
}

// addFolder records a folder at position index of parent and returns its
// index in folders.
func (b *listingBuilder) addFolder(full string, parent, index uint32) (uint32, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.folders) >= 1<<31-1 {
		return 0, errors.New("listing too large")
	}
	b.folders = append(b.folders, listFolder{path: full, parent: int32(parent), index: index})
	return uint32(len(b.folders) - 1), nil
}

// cut records a folder whose children need a request of their own.
func (b *listingBuilder) cut(full string, folder uint32) {
	if p, err := jobpath.Parse(full); err == nil {
		b.mu.Lock()
		b.deeper = append(b.deeper, cutOff{path: p, folder: folder})
		b.mu.Unlock()
	}
}

// takeDeeper returns and forgets the cut-off folders found so far.
func (b *listingBuilder) takeDeeper() []cutOff {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.deeper
	b.deeper = nil
	return d
}

// add records a job with full name full at position index of folder.
func (b *listingBuilder) add(full string, it *wireListItem, folder, index uint32) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.jobs) >= 1<<31-1 || len(b.classes) >= 1<<16-1 || len(b.names)+len(full) >= 1<<32-1 {
		return errors.New("listing too large")
	}
	j := listed{off: uint32(len(b.names)), n: uint32(len(full)), url: -1, folder: folder, index: index,
		buildable: it.Buildable != nil && *it.Buildable}
	b.names = appendGrowing(b.names, len(full))
	b.names = append(b.names, full...)
	c, ok := b.classes[it.Class]
	if !ok {
		c = uint16(len(b.classes))
		b.classes[it.Class] = c
	}
	j.class = c
	rel := full
	if b.folder != "" {
		rel = full[len(b.folder)+1:]
	}
	if !b.baseSet {
		// The first job tells where the listed folder is: its URL less
		// its own relative path.
		if base, ok := strings.CutSuffix(it.URL, relativeURLPath(rel)); ok {
			b.base = base
		}
		b.baseSet = true
	}
	if b.base == "" || !strings.HasPrefix(it.URL, b.base) || !isJobURLPath(it.URL[len(b.base):], rel) {
		j.url = int32(len(b.urls))
		b.urls = append(b.urls, it.URL)
	}
	b.jobs = appendGrowing(b.jobs, 1)
	b.jobs = append(b.jobs, j)
	return nil
}

// frozenString is b as a string without copying it (as strings.Builder
// does): a listing's names are written by one builder, and b is never
// written again after this call, so the string cannot change. A copy would
// hold every name of a large listing twice while it is built.
func frozenString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// appendGrowing makes room for n more elements in s, growing it by a
// quarter rather than doubling as append does, so a large listing wastes at
// most a quarter of its size while it is built.
func appendGrowing[E any](s []E, n int) []E {
	if need := len(s) + n; need > cap(s) {
		grown := make([]E, len(s), max(need, cap(s)+cap(s)/4, 256))
		copy(grown, s)
		s = grown
	}
	return s
}

// parseListing reads a root or folder /api/json answer with a jobs tree
// from r as it arrives: the top-level items are decoded one at a time, so
// the answer is never held whole (only the largest top-level item is, with
// its sub-tree, while it is read). The items are children of folder (an
// index in b's folders; prefix is its full name). Items with a jobs list
// are folders; others are jobs. Folders whose children were cut off by the
// tree depth are recorded for a request of their own; with recursive
// false, folders are skipped.
func parseListing(r io.Reader, b *listingBuilder, folder uint32, prefix string, recursive bool) error {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seenJobs := false
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return err
		}
		if !strings.EqualFold(key, "jobs") {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return err
			}
			continue
		}
		if seenJobs {
			return errors.New("jobs given twice")
		}
		seenJobs = true
		if err := parseItems(dec, b, folder, prefix, true, recursive); err != nil {
			return err
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON object")
	}
	return nil
}

// parseItems reads a jobs array (or null) of the items of folder, whose
// full name is prefix. top is false for a nested array, which may be cut
// at the tree depth.
func parseItems(dec *json.Decoder, b *listingBuilder, folder uint32, prefix string, top, recursive bool) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok == nil {
		return nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return fmt.Errorf("jobs is %v, not an array", tok)
	}
	for index := uint32(0); dec.More(); index++ {
		var it wireListItem
		if err := dec.Decode(&it); err != nil {
			return err
		}
		if index == 0 && !top && it.URL == "" {
			// At the deepest level of the tree query children report only
			// their names: this folder's jobs need a request of their own.
			b.cut(prefix, folder)
			return skipRest(dec)
		}
		if err := b.item(folder, prefix, index, &it, recursive); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// item records one decoded item at position index of folder: a job is
// added, a folder's children are parsed when the listing is recursive.
func (b *listingBuilder) item(folder uint32, prefix string, index uint32, it *wireListItem, recursive bool) error {
	if it.Name == "" {
		// Jenkins names every item; one without a name cannot be listed
		// under any path (found by FuzzParseJenkinsJSON).
		return nil
	}
	full := it.Name
	if prefix != "" {
		full = prefix + "/" + it.Name
	}
	kids := bytes.TrimSpace(it.Jobs)
	if len(kids) == 0 || bytes.Equal(kids, []byte("null")) {
		return b.add(full, it, folder, index)
	}
	if !recursive {
		return nil
	}
	id, err := b.addFolder(full, folder, index)
	if err != nil {
		return err
	}
	return parseItems(json.NewDecoder(bytes.NewReader(kids)), b, id, full, false, recursive)
}

// skipRest skips the remaining elements of an array and its end.
func skipRest(dec *json.Decoder) error {
	for dec.More() {
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// build sorts the jobs and returns the listing; b is not used again.
func (b *listingBuilder) build() *Listing {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := &Listing{names: frozenString(b.names), base: b.base, urls: slices.Clip(b.urls), jobs: b.jobs, folders: slices.Clip(b.folders)}
	b.names, b.jobs = nil, nil // the listing owns them now
	if b.folder != "" {
		l.prefix = len(b.folder) + 1
	}
	l.classes = make([]string, len(b.classes))
	for s, i := range b.classes {
		l.classes[i] = s
	}
	slices.SortStableFunc(l.jobs, func(x, y listed) int {
		return cmp.Compare(l.names[x.off:x.off+x.n], l.names[y.off:y.off+y.n])
	})
	return l
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("got %v, want %v", tok, want)
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", fmt.Errorf("got %v, want an object key", tok)
	}
	return key, nil
}
