package jenkins

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/google/go-cmp/cmp"
)

// The decoder the streaming listing parser replaced, kept as the reference
// it is checked against: whole-answer json.Unmarshal, then a walk.

// wireTreeItem is one item of a `jobs[...]` tree listing. Jobs is nil for
// an item without a jobs list (a job), non-nil for a folder (empty when the
// folder is).
type wireTreeItem struct {
	Class     string          `json:"_class"`
	Name      string          `json:"name"`
	URL       string          `json:"url"`
	Color     string          `json:"color"`
	Buildable *bool           `json:"buildable"`
	LastBuild *buildRef       `json:"lastBuild"`
	Jobs      *[]wireTreeItem `json:"jobs"`
}

type wireTree struct {
	Class string         `json:"_class"`
	Jobs  []wireTreeItem `json:"jobs"`
}

// parseJobTreeRef decodes a root or folder /api/json answer with a jobs tree.
func parseJobTreeRef(data []byte) ([]wireTreeItem, error) {
	var w wireTree
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	return w.Jobs, nil
}

// collectRef walks a tree answer as ListJobs did before it streamed.
func collectRef(prefix string, items []wireTreeItem, recursive bool, jobs *[]JobSummary, deeper *[]jobpath.Path) {
	for _, it := range items {
		if it.Name == "" {
			continue
		}
		full := it.Name
		if prefix != "" {
			full = prefix + "/" + it.Name
		}
		if it.Jobs == nil {
			s := JobSummary{FullName: full, Class: it.Class, URL: it.URL, Color: it.Color, LastBuild: it.LastBuild.number()}
			if it.Buildable != nil {
				s.Buildable = *it.Buildable
			}
			*jobs = append(*jobs, s)
			continue
		}
		if !recursive {
			continue
		}
		kids := *it.Jobs
		if len(kids) > 0 && kids[0].URL == "" {
			if p, err := jobpath.Parse(full); err == nil {
				*deeper = append(*deeper, p)
			}
			continue
		}
		collectRef(full, kids, recursive, jobs, deeper)
	}
}

// streamListing parses data with the streaming parser into a listing of
// folder and the folders it found cut off.
func streamListing(data []byte, folder string, recursive bool) (*Listing, []jobpath.Path, error) {
	b := newListingBuilder(folder)
	if err := parseListing(bytes.NewReader(data), b, 0, folder, recursive); err != nil {
		return nil, nil, err
	}
	var deeper []jobpath.Path
	for _, d := range b.takeDeeper() {
		deeper = append(deeper, d.path)
	}
	return b.build(), deeper, nil
}

// checkListingAgainstReference parses data with both decoders and fails
// when both take it but the streaming one lists other jobs, URLs or cut-off
// folders.
func checkListingAgainstReference(t *testing.T, data []byte) {
	t.Helper()
	for _, recursive := range []bool{true, false} {
		l, deeper, err := streamListing(data, "", recursive)
		items, refErr := parseJobTreeRef(data)
		if err != nil || refErr != nil {
			// Either may refuse what the other takes: the streaming parser
			// refuses trailing data and a repeated jobs list, and does not
			// type-check the parts it skips (the children of a cut-off or,
			// without recursion, of any folder). Where both take an
			// answer, they must read the same jobs from it.
			continue
		}
		var want []JobSummary
		var wantDeeper []jobpath.Path
		collectRef("", items, recursive, &want, &wantDeeper)
		for i := range want {
			// A listing holds no build status (JobStatuses reads it).
			want[i].Color, want[i].LastBuild = "", 0
		}
		slices.SortStableFunc(want, func(a, b JobSummary) int { return strings.Compare(a.FullName, b.FullName) })
		got := make([]JobSummary, l.Len())
		for i := range got {
			got[i] = l.Job(i)
		}
		if len(want) == 0 {
			want = nil
		}
		if len(got) == 0 {
			got = nil
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("recursive=%t: listing differs from the reference (-want +got):\n%s\ninput %q", recursive, diff, data)
		}
		if diff := cmp.Diff(pathStrings(wantDeeper), pathStrings(deeper)); diff != "" {
			t.Fatalf("recursive=%t: cut-off folders differ (-want +got):\n%s", recursive, diff)
		}
	}
}

func pathStrings(ps []jobpath.Path) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
