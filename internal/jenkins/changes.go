package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Change sets: the SCM commits a build brought in.
//
// A freestyle build exports one change set, "changeSet"
// (AbstractBuild.getChangeSet, @Exported); a Pipeline build a list,
// "changeSets", one per checkout that found changes
// (WorkflowRun.getChangeSets, @Exported). Each is a ChangeLogSet whose
// items are its entries: ChangeLogSet.Entry exports commitId, timestamp
// (milliseconds, -1 when unknown), msg, author (a User: fullName) and
// affectedPaths; the git plugin's GitChangeSet adds id, comment (the whole
// message; msg is its first line), date, authorEmail and paths
// ({editType, file}). The repositories the build fetched from are the git
// plugin's BuildData action's remoteUrls, as configured: they may carry
// credentials in their user info. Jenkins:
// core/src/main/java/hudson/scm/ChangeLogSet.java,
// core/src/main/java/hudson/model/AbstractBuild.java (getChangeSet);
// workflow-job-plugin src/main/java/org/jenkinsci/plugins/workflow/job/WorkflowRun.java
// (getChangeSets); git-plugin src/main/java/hudson/plugins/git/GitChangeSet.java,
// src/main/java/hudson/plugins/git/util/BuildData.java (getRemoteUrls).

// Commit is one change of a build's change sets.
type Commit struct {
	ID     string // commitId (the git hash), else id
	Author string // author's full name
	// Message is the whole commit message (GitChangeSet's comment), or
	// its first line (msg) when the SCM exports no more.
	Message string
	// Timestamp in milliseconds since the epoch; -1 when Jenkins does not
	// know it.
	Timestamp int64
	// Paths are the files the commit touched (at most the max asked).
	Paths []ChangedPath
	// PathsTruncated: the commit touched more files than Paths holds.
	PathsTruncated bool
}

// ChangedPath is one file a commit touched.
type ChangedPath struct {
	File     string
	EditType string // add, edit or delete (hudson.scm.EditType); "" when the SCM does not say
}

// Changes are a build's commits.
type Changes struct {
	Build   int64
	Kinds   []string // each change set's kind ("git"), in order
	Commits []Commit
	// Truncated: the build has more commits than Commits holds.
	Truncated bool
	// Repositories are the remote URLs the build fetched from (git
	// BuildData remoteUrls), with any user info (credentials) removed.
	Repositories []string
}

// ChangesOptions bound what BuildChanges reads.
type ChangesOptions struct {
	// MaxCommits bounds the commits returned (over all change sets).
	// Default 200.
	MaxCommits int
	// MaxPaths bounds the paths of each commit. Default 50.
	MaxPaths int
}

type wireEntry struct {
	CommitID  *string `json:"commitId"`
	ID        *string `json:"id"`
	Timestamp *int64  `json:"timestamp"`
	Msg       *string `json:"msg"`
	Comment   *string `json:"comment"`
	Author    *struct {
		FullName string `json:"fullName"`
	} `json:"author"`
	AffectedPaths []string `json:"affectedPaths"`
	Paths         []struct {
		EditType string `json:"editType"`
		File     string `json:"file"`
	} `json:"paths"`
}

type wireChangeSet struct {
	Kind  *string     `json:"kind"`
	Items []wireEntry `json:"items"`
}

type wireChangesBuild struct {
	Number     int64           `json:"number"`
	ChangeSet  *wireChangeSet  `json:"changeSet"`
	ChangeSets []wireChangeSet `json:"changeSets"`
	Actions    []struct {
		RemoteURLs []string `json:"remoteUrls"`
	} `json:"actions"`
}

// changesTree asks for both shapes at once (Stapler leaves out what a
// build does not export), each list bounded by a range so an enormous
// change log cannot make an enormous answer.
func changesTree(o ChangesOptions) string {
	return "number," + changeSetsTree(o) + ",actions[remoteUrls]"
}

// changeSetsTree is the part of changesTree that asks for the change sets.
func changeSetsTree(o ChangesOptions) string {
	item := fmt.Sprintf("commitId,id,timestamp,msg,comment,author[fullName],affectedPaths{0,%d},paths[editType,file]{0,%d}", o.MaxPaths+1, o.MaxPaths+1)
	set := fmt.Sprintf("kind,items[%s]{0,%d}", item, o.MaxCommits+1)
	return "changeSet[" + set + "],changeSets[" + set + "]{0,20}"
}

// BuildChanges returns the commits of a build (number 0: the last build)
// as Jenkins recorded them, read as the user in one bounded tree query:
// a freestyle build's changeSet or a Pipeline build's changeSets, in
// Jenkins's order (each change set oldest commit first), and the
// repositories fetched from, credentials stripped.
func (c *Client) BuildChanges(ctx context.Context, cred Credential, job jobpath.Path, number int64, o ChangesOptions) (*Changes, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	if o.MaxCommits <= 0 {
		o.MaxCommits = 200
	}
	if o.MaxPaths <= 0 {
		o.MaxPaths = 50
	}
	w, err := getJSON(ctx, c, call{op: "get changes of " + buildName(job, number), rel: buildRel(job, number) + "api/json",
		query: url.Values{"tree": {changesTree(o)}}, cred: cred}, func(data []byte) (*wireChangesBuild, error) {
		var w wireChangesBuild
		if err := json.Unmarshal(data, &w); err != nil {
			return nil, err
		}
		return &w, nil
	})
	if err != nil {
		return nil, err
	}
	return changesOf(w, o), nil
}

func changesOf(w *wireChangesBuild, o ChangesOptions) *Changes {
	out := &Changes{Build: w.Number, Kinds: []string{}, Commits: []Commit{}, Repositories: []string{}}
	sets := w.ChangeSets
	if w.ChangeSet != nil {
		sets = append([]wireChangeSet{*w.ChangeSet}, sets...)
	}
	for _, s := range sets {
		if s.Kind != nil {
			out.Kinds = append(out.Kinds, *s.Kind)
		}
		for _, e := range s.Items {
			if len(out.Commits) == o.MaxCommits {
				out.Truncated = true
				break
			}
			out.Commits = append(out.Commits, commitOf(e, o.MaxPaths))
		}
	}
	seen := map[string]bool{}
	for _, a := range w.Actions {
		for _, u := range a.RemoteURLs {
			s := StripUserinfo(u)
			if !seen[s] && len(out.Repositories) < 20 {
				seen[s] = true
				out.Repositories = append(out.Repositories, s)
			}
		}
	}
	return out
}

func commitOf(e wireEntry, maxPaths int) Commit {
	c := Commit{Timestamp: -1}
	switch {
	case e.CommitID != nil && *e.CommitID != "":
		c.ID = *e.CommitID
	case e.ID != nil:
		c.ID = *e.ID
	}
	if e.Author != nil {
		c.Author = e.Author.FullName
	}
	switch {
	case e.Comment != nil && *e.Comment != "":
		c.Message = strings.TrimRight(*e.Comment, "\n")
	case e.Msg != nil:
		c.Message = *e.Msg
	}
	if e.Timestamp != nil {
		c.Timestamp = *e.Timestamp
	}
	if len(e.Paths) > 0 {
		for _, p := range e.Paths {
			if len(c.Paths) == maxPaths {
				c.PathsTruncated = true
				break
			}
			c.Paths = append(c.Paths, ChangedPath{File: p.File, EditType: p.EditType})
		}
	} else {
		for _, p := range e.AffectedPaths {
			if len(c.Paths) == maxPaths {
				c.PathsTruncated = true
				break
			}
			c.Paths = append(c.Paths, ChangedPath{File: p})
		}
	}
	if c.Paths == nil {
		c.Paths = []ChangedPath{}
	}
	return c
}

// StripUserinfo returns raw with any user info (a user name, a password or
// token) removed, so an SCM URL configured as
// https://user:token@host/repo.git is never shown with its secret. An SCP
// style git address (git@host:org/repo.git) keeps its user name, which is
// not a secret, but loses anything after a ':' in it. Text that is not a
// URL is returned with everything up to a last '@' before the host removed.
func StripUserinfo(raw string) string {
	if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" {
		u.User = nil
		return u.String()
	}
	// No scheme: "user:secret@host:path" (SCP-like) or garbage.
	if at := strings.LastIndex(raw, "@"); at >= 0 {
		user, rest := raw[:at], raw[at+1:]
		if name, _, found := strings.Cut(user, ":"); found || strings.ContainsAny(user, "/ ") {
			if found && !strings.ContainsAny(name, "/ ") {
				return name + "@" + rest
			}
			return rest
		}
		return raw
	}
	return raw
}
