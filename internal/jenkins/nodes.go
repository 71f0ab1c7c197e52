package jenkins

import (
	"context"
	"encoding/json"
	"html"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// Bounds of ListNodes: the nodes read (Jenkins is asked for one more, a
// tree range), and the labels and running builds kept of each node.
const (
	MaxNodes            = 1000
	MaxNodeLabels       = 100
	MaxNodeRunning      = 100
	builtInNodeName     = "built-in"
	masterComputerClass = "hudson.model.Hudson$MasterComputer"
)

// nodesTree is what ListNodes asks of /computer: of each computer its class
// (the built-in node's is Hudson$MasterComputer, and it exports no name),
// displayName (an agent's node name), whether it is offline and why, its
// labels, and what each executor runs. Executor.getCurrentExecutableForApi
// exports a build only to a user who may read it, so an executor running
// a hidden build is busy (idle false) with no currentExecutable.
var nodesTree = "computer[displayName,offline,offlineCause[description],offlineCauseReason,numExecutors,assignedLabels[name]," +
	"executors[idle,currentExecutable[number,url]],oneOffExecutors[idle,currentExecutable[number,url]]]{0," +
	strconv.Itoa(MaxNodes+1) + "}"

// RunningBuild is a build an executor runs.
type RunningBuild struct {
	Job    jobpath.Path
	Number int64
}

// Node is one node (Jenkins's Computer) as the user sees it.
type Node struct {
	// Name is the node's name: "built-in" for the controller's own node
	// (which Jenkins names "" and displays as "Built-In Node" since 2.307,
	// "master" before).
	Name          string
	Online        bool
	OfflineReason string // the offline cause's description, else its reason; "" when none
	// Labels are the node's labels, sorted, without its self label (its
	// own name, which Jenkins adds to every node's labels).
	Labels         []string
	ExecutorsTotal int // the node's executors (one-off executors of Pipeline runs not counted)
	ExecutorsBusy  int // of them, those running something, whether or not the user may see what
	// Running are the builds the user may read that the node's executors
	// (one-off ones included) run, at most MaxNodeRunning.
	Running          []RunningBuild
	RunningTruncated bool
}

// Nodes is the list of Jenkins's nodes.
type Nodes struct {
	Nodes []Node
	// Truncated: Jenkins has more than MaxNodes nodes; Nodes has the first
	// (by name, as ComputerSet.getComputers sorts them).
	Truncated bool
}

// ListNodes returns Jenkins's nodes and what runs on them, as cred's user
// sees them. Jenkins needs Overall/Read for it (Jenkins.getTarget), and
// answers 403 without it.
func (c *Client) ListNodes(ctx context.Context, cred Credential) (*Nodes, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	return getJSON(ctx, c, call{op: "list nodes", rel: "computer/api/json", cred: cred,
		query: url.Values{"tree": {nodesTree}}}, ParseNodes)
}

type wireExecutor struct {
	Idle              bool `json:"idle"`
	CurrentExecutable *struct {
		Number int64  `json:"number"`
		URL    string `json:"url"`
	} `json:"currentExecutable"`
}

type wireComputer struct {
	Class        string `json:"_class"`
	DisplayName  string `json:"displayName"`
	Offline      bool   `json:"offline"`
	OfflineCause *struct {
		Description string `json:"description"`
	} `json:"offlineCause"`
	OfflineCauseReason string `json:"offlineCauseReason"`
	NumExecutors       int    `json:"numExecutors"`
	AssignedLabels     []struct {
		Name string `json:"name"`
	} `json:"assignedLabels"`
	Executors       []wireExecutor `json:"executors"`
	OneOffExecutors []wireExecutor `json:"oneOffExecutors"`
}

// ParseNodes decodes computer/api/json. It keeps at most MaxNodes nodes.
func ParseNodes(data []byte) (*Nodes, error) {
	var w struct {
		Computer []wireComputer `json:"computer"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, err
	}
	out := &Nodes{Nodes: make([]Node, 0, min(len(w.Computer), MaxNodes))}
	if len(w.Computer) > MaxNodes {
		w.Computer, out.Truncated = w.Computer[:MaxNodes], true
	}
	for _, wc := range w.Computer {
		out.Nodes = append(out.Nodes, nodeOf(wc))
	}
	return out, nil
}

func nodeOf(wc wireComputer) Node {
	n := Node{Name: wc.DisplayName, Online: !wc.Offline, ExecutorsTotal: len(wc.Executors), Labels: []string{}, Running: []RunningBuild{}}
	self := wc.DisplayName
	builtIn := wc.Class == masterComputerClass
	if builtIn {
		n.Name, self = builtInNodeName, builtInNodeName
	}
	if n.ExecutorsTotal == 0 {
		n.ExecutorsTotal = max(wc.NumExecutors, 0)
	}
	if wc.Offline {
		// SimpleOfflineCause (a user's, a monitor's) exports its
		// description; other causes (LaunchFailed, ChannelTermination)
		// only Computer.getOfflineCauseReason, which Jenkins escapes for
		// HTML (IOfflineCause.getReason).
		if wc.OfflineCause != nil && wc.OfflineCause.Description != "" {
			n.OfflineReason = wc.OfflineCause.Description
		} else {
			n.OfflineReason = html.UnescapeString(wc.OfflineCauseReason)
		}
	}
	for _, l := range wc.AssignedLabels {
		// The self label: the node's name, for the built-in node
		// "built-in" (or "master" on an instance not yet migrated,
		// Jenkins.getSelfLabel).
		if l.Name == "" || l.Name == self || builtIn && l.Name == "master" || slices.Contains(n.Labels, l.Name) {
			continue
		}
		if len(n.Labels) == MaxNodeLabels {
			break
		}
		n.Labels = append(n.Labels, l.Name)
	}
	slices.Sort(n.Labels)
	for _, x := range wc.Executors {
		if !x.Idle {
			n.ExecutorsBusy++
		}
	}
	for _, x := range slices.Concat(wc.Executors, wc.OneOffExecutors) {
		if x.CurrentExecutable == nil || x.CurrentExecutable.Number <= 0 {
			continue // idle, hidden from the user, or not a build
		}
		job, ok := jobPathFromURL(buildDir(x.CurrentExecutable.URL))
		if !ok {
			continue
		}
		rb := RunningBuild{Job: job, Number: x.CurrentExecutable.Number}
		if slices.ContainsFunc(n.Running, func(r RunningBuild) bool { return r.Number == rb.Number && r.Job.String() == rb.Job.String() }) {
			continue
		}
		if len(n.Running) == MaxNodeRunning {
			n.RunningTruncated = true
			break
		}
		n.Running = append(n.Running, rb)
	}
	return n
}

// buildDir is a build URL without its number: ".../job/a/7/" →
// ".../job/a/". Anything else is returned as it is (and then names no job).
func buildDir(raw string) string {
	s := strings.TrimSuffix(raw, "/")
	i := strings.LastIndexByte(s, '/')
	if i < 0 {
		return raw
	}
	if _, err := strconv.ParseInt(s[i+1:], 10, 64); err != nil {
		return raw
	}
	return s[:i+1]
}
