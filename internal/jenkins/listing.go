package jenkins

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"unsafe"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Listing is a job listing held compactly, sorted by full name. A listing
// of a large controller is held once per caller for the listing cache's
// lifetime, so its size matters: every full name lives in one shared
// string, a job's class and colour are indexes into small tables, and its
// URL is not stored when it is the one Jenkins derives from the item's
// path (Item.getUrl: the parent's URL + "job/" + the encoded name + "/"),
// which is every job on a controller without unusual names. A job costs
// about 24 bytes plus its full name, where a JobSummary costs five string
// headers and four separate strings.
//
// A Listing is immutable once built and safe for concurrent use.
type Listing struct {
	names   string   // every full name, back to back
	base    string   // URL of the listed folder as Jenkins reports it ("" when unknown)
	classes []string // distinct _class values
	colors  []string // distinct colours
	urls    []string // URLs that are not base + the job's relative URL path
	jobs    []listed
	prefix  int // length of the listed folder's full name plus its "/" (0 at the root)
}

// listed is one job of a Listing.
type listed struct {
	off, n uint32 // full name: names[off : off+n]
	// lastBuild is the last build's number; Jenkins's build numbers are
	// Java ints (Run.number), so 32 bits hold every one.
	lastBuild int32
	url       int32 // index in urls, or -1 when derived from base and the name
	class     uint16
	color     uint8
	buildable bool
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

// Job is job i as a JobSummary.
func (l *Listing) Job(i int) JobSummary {
	j := l.jobs[i]
	s := JobSummary{
		FullName:  l.Name(i),
		Class:     l.classes[j.class],
		Color:     l.colors[j.color],
		Buildable: j.buildable,
		LastBuild: int64(j.lastBuild),
	}
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

// listingBuilder collects the jobs of one listing request.
type listingBuilder struct {
	folder  string // full name of the listed folder ("" at the root)
	names   []byte
	base    string
	baseSet bool
	classes map[string]uint16
	colors  map[string]uint8
	urls    []string
	jobs    []listed
	deeper  []jobpath.Path
}

func newListingBuilder(folder string) *listingBuilder {
	return &listingBuilder{folder: folder, classes: map[string]uint16{}, colors: map[string]uint8{}}
}

// wireListItem is one item of a `jobs[...]` tree. Jobs stays raw: it is
// nil or null for a job, an array for a folder (any kind: plain,
// multibranch, organization), parsed item by item only when needed.
type wireListItem struct {
	Class     string          `json:"_class"`
	Name      string          `json:"name"`
	URL       string          `json:"url"`
	Color     string          `json:"color"`
	Buildable *bool           `json:"buildable"`
	LastBuild *buildRef       `json:"lastBuild"`
	Jobs      json.RawMessage `json:"jobs"`
}

// add records a job with full name full.
func (b *listingBuilder) add(full string, it *wireListItem) error {
	if len(b.jobs) >= 1<<31-1 || len(b.classes) >= 1<<16-1 || len(b.names)+len(full) >= 1<<32-1 {
		return errors.New("listing too large")
	}
	j := listed{off: uint32(len(b.names)), n: uint32(len(full)), lastBuild: buildNumber32(it.LastBuild.number()), url: -1, buildable: it.Buildable != nil && *it.Buildable}
	b.names = appendGrowing(b.names, len(full))
	b.names = append(b.names, full...)
	c, ok := b.classes[it.Class]
	if !ok {
		c = uint16(len(b.classes))
		b.classes[it.Class] = c
	}
	j.class = c
	k, ok := b.colors[it.Color]
	if !ok {
		if len(b.colors) >= 1<<8-1 {
			// Jenkins has about twenty colours; anything past that is
			// not one of them and is kept as the last colour seen.
			k = uint8(len(b.colors) - 1)
		} else {
			k = uint8(len(b.colors))
			b.colors[it.Color] = k
		}
	}
	j.color = k
	rel := full
	if b.folder != "" {
		rel = full[len(b.folder)+1:]
	}
	if !b.baseSet {
		// The first job tells where the listed folder is: its URL less
		// its own relative path.
		suffix := relativeURLPath(rel)
		if base, ok := strings.CutSuffix(it.URL, suffix); ok {
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

// buildNumber32 is n in 32 bits, clamped: Jenkins never sends a number
// outside them.
func buildNumber32(n int64) int32 {
	return int32(min(max(n, math.MinInt32), math.MaxInt32))
}

// frozenString is b as a string without copying it (as strings.Builder
// does): a listing's names are written once, by one builder, and b is
// never written again after this call, so the string cannot change. A
// copy would hold every name of a large listing twice while it is built.
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
// its sub-tree, while it is read). Items with a jobs list are folders;
// others are jobs. Folders whose children were cut off by the tree depth go
// to b.deeper; with recursive false folders are skipped.
func parseListing(r io.Reader, b *listingBuilder, recursive bool) error {
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
		if err := parseItems(dec, b, b.folder, recursive); err != nil {
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

// parseItems reads a jobs array (or null) of items under folder prefix.
func parseItems(dec *json.Decoder, b *listingBuilder, prefix string, recursive bool) error {
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
	first := true
	for dec.More() {
		var it wireListItem
		if err := dec.Decode(&it); err != nil {
			return err
		}
		if first && prefix != b.folder && it.URL == "" {
			// At the deepest level of the tree query children report only
			// their names: this folder's jobs need a request of their own.
			if p, err := jobpath.Parse(prefix); err == nil {
				b.deeper = append(b.deeper, p)
			}
			return skipRest(dec)
		}
		first = false
		if err := b.item(prefix, &it, recursive); err != nil {
			return err
		}
	}
	return expectDelim(dec, ']')
}

// item records one decoded item under prefix: a job is added, a folder's
// children are parsed when the listing is recursive.
func (b *listingBuilder) item(prefix string, it *wireListItem, recursive bool) error {
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
		return b.add(full, it)
	}
	if !recursive {
		return nil
	}
	return parseItems(json.NewDecoder(bytes.NewReader(kids)), b, full, recursive)
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

// build sorts the jobs and returns the listing.
func (b *listingBuilder) build() *Listing {
	l := &Listing{names: frozenString(b.names), base: b.base, urls: slices.Clip(b.urls), jobs: b.jobs}
	b.names, b.jobs = nil, nil // the listing owns them now
	if b.folder != "" {
		l.prefix = len(b.folder) + 1
	}
	l.classes = tableOf(b.classes)
	l.colors = tableOf(b.colors)
	slices.SortStableFunc(l.jobs, func(x, y listed) int {
		return cmp.Compare(l.names[x.off:x.off+x.n], l.names[y.off:y.off+y.n])
	})
	return l
}

func tableOf[K uint8 | uint16](m map[string]K) []string {
	t := make([]string, len(m))
	for s, i := range m {
		t[i] = s
	}
	return t
}

// mergeListings joins the listings of a folder and of its deeper folders
// (fetched separately) into one listing of the folder.
func mergeListings(folder string, parts []*listingBuilder) *Listing {
	if len(parts) == 1 {
		return parts[0].build()
	}
	all := newListingBuilder(folder)
	n := 0
	for _, p := range parts {
		n += len(p.jobs)
	}
	all.jobs = make([]listed, 0, n)
	for _, p := range parts {
		names := frozenString(p.names)
		classes, colors := tableOf(p.classes), tableOf(p.colors)
		for _, j := range p.jobs {
			it := wireListItem{Class: classes[j.class], Color: colors[j.color], LastBuild: &buildRef{Number: int64(j.lastBuild)}, Buildable: &j.buildable}
			if j.url >= 0 {
				it.URL = p.urls[j.url]
			} else {
				rel := names[j.off : j.off+j.n]
				if p.folder != "" {
					rel = rel[len(p.folder)+1:]
				}
				it.URL = p.base + relativeURLPath(rel)
			}
			_ = all.add(names[j.off:j.off+j.n], &it)
		}
	}
	return all.build()
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
