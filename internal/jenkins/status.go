package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"sync"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// JobStatus is a job's build status, read for one page of a listing.
type JobStatus struct {
	Color     string // ball colour, e.g. "blue", "red_anime", "disabled"
	LastBuild int64  // the last build's number, 0 when the job never ran
	// Known is false when Jenkins's answer did not hold the job: it was
	// moved, renamed or deleted since the listing was read.
	Known bool
}

// MaxStatusRequests bounds the requests one page's statuses cost.
const MaxStatusRequests = 8

// statusGroup is one status request: the jobs at positions [lo, hi) of
// folder's jobs array, and depth levels of folders below them.
type statusGroup struct {
	folder  uint32
	lo, hi  uint32
	depth   int
	folders int // depth of folder below the listed folder
}

// JobStatuses reads the colour and last build of jobs [from, to) of l,
// which the listing does not hold (see Listing). Each request asks a folder
// for a range of its children by position (`jobs[...]{M,N}`), so Jenkins
// loads the build records of about one page of jobs, not of the whole
// listing; the page's jobs are grouped by folder, and when they are spread
// over more than MaxStatusRequests folders, folders are asked through their
// parents instead. A job Jenkins's answer does not hold comes back with
// Known false.
func (c *Client) JobStatuses(ctx context.Context, cred Credential, l *Listing, from, to int) ([]JobStatus, error) {
	out := make([]JobStatus, to-from)
	if to <= from {
		return out, nil
	}
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	groups := l.statusGroups(from, to)
	var (
		mu    sync.Mutex
		found = map[string]JobStatus{}
		errs  []error
		wg    sync.WaitGroup
		sem   = make(chan struct{}, 4)
	)
	for _, g := range groups {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			f := l.folders[g.folder]
			rel := ""
			if f.path != "" {
				p, err := jobpath.Parse(f.path)
				if err != nil {
					return
				}
				rel = p.URLPath()
			}
			tree := statusTree(g.depth) + "{" + strconv.FormatUint(uint64(g.lo), 10) + "," + strconv.FormatUint(uint64(g.hi), 10) + "}"
			items, err := getJSON(ctx, c, call{
				op: fmt.Sprintf("read job statuses in %q", f.path), rel: rel + "api/json",
				query: url.Values{"tree": {tree}}, cred: cred,
			}, parseStatusTree)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			collectStatuses(f.path, items, found)
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	for i := range out {
		if s, ok := found[l.Name(from+i)]; ok {
			out[i] = s
		}
	}
	return out, nil
}

// statusGroups plans the requests for the statuses of jobs [from, to).
func (l *Listing) statusGroups(from, to int) []statusGroup {
	depthOf := func(f uint32) int {
		d := 0
		for p := l.folders[f].parent; p >= 0; p = l.folders[p].parent {
			d++
		}
		return d
	}
	byFolder := map[uint32]*statusGroup{}
	merge := func(folder, index uint32, depth int) {
		g, ok := byFolder[folder]
		if !ok {
			byFolder[folder] = &statusGroup{folder: folder, lo: index, hi: index + 1, depth: depth, folders: depthOf(folder)}
			return
		}
		g.lo, g.hi, g.depth = min(g.lo, index), max(g.hi, index+1), max(g.depth, depth)
	}
	for i := from; i < to; i++ {
		j := l.jobs[i]
		merge(j.folder, j.index, 0)
	}
	// Too many folders: ask the deepest ones through their parents, one
	// level at a time, until the plan fits (the listed folder alone always
	// does).
	for len(byFolder) > MaxStatusRequests {
		deepest := 0
		for _, g := range byFolder {
			deepest = max(deepest, g.folders)
		}
		for f, g := range byFolder {
			if g.folders != deepest {
				continue
			}
			delete(byFolder, f)
			fo := l.folders[f]
			merge(uint32(fo.parent), fo.index, g.depth+1)
		}
	}
	groups := make([]statusGroup, 0, len(byFolder))
	for _, g := range byFolder {
		groups = append(groups, *g)
	}
	slices.SortFunc(groups, func(a, b statusGroup) int { return int(a.folder) - int(b.folder) })
	return groups
}

// statusTree is the tree query for the statuses of jobs and, depth levels
// down, of the jobs in folders among them.
func statusTree(depth int) string {
	const fields = "name,color,lastBuild[number]"
	inner := fields
	for range depth {
		inner = fields + ",jobs[" + inner + "]"
	}
	return "jobs[" + inner + "]"
}

// wireStatusItem is one item of a status answer.
type wireStatusItem struct {
	Name      string            `json:"name"`
	Color     string            `json:"color"`
	LastBuild *buildRef         `json:"lastBuild"`
	Jobs      *[]wireStatusItem `json:"jobs"`
}

// parseStatusTree decodes a status answer (at most about one page of jobs
// and the folders around them, bounded by MaxJSONBytes).
func parseStatusTree(data []byte) ([]wireStatusItem, error) {
	var w struct {
		Jobs []wireStatusItem `json:"jobs"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	return w.Jobs, nil
}

// collectStatuses records the statuses of the jobs in items, by full name.
func collectStatuses(prefix string, items []wireStatusItem, found map[string]JobStatus) {
	for _, it := range items {
		if it.Name == "" {
			continue
		}
		full := it.Name
		if prefix != "" {
			full = prefix + "/" + it.Name
		}
		if it.Jobs != nil {
			collectStatuses(full, *it.Jobs, found)
			continue
		}
		found[full] = JobStatus{Color: it.Color, LastBuild: it.LastBuild.number(), Known: true}
	}
}
