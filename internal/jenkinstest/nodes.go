package jenkinstest

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Nodes and executors, as /computer/api/json shows them.
//
// Jenkins runs builds on the executors of its nodes: the controller's
// built-in node (Options.Executors of them, Jenkins's numExecutors, 2 by
// default) and the agents added with AddNode. A build takes the first free
// executor of an online node, in the order /computer lists them (by name,
// the built-in node's name being ""); Jenkins's default LoadBalancer
// (CONSISTENT_HASH, core/src/main/java/hudson/model/LoadBalancer.java)
// picks by a hash of the task's name instead, which no client can rely on
// either. The simulator has no labels on jobs, so any node may run any
// build. Every build, a Pipeline's too, holds one regular executor while it
// runs (a Pipeline run really sits on a one-off executor of the built-in
// node, with its node block's placeholder on a regular executor: the
// simulator's Pipelines are one node block long).

// NodeSpec describes an agent.
type NodeSpec struct {
	// Name is the node's name (Node.getNodeName), unique, not "".
	Name string
	// Labels are the labels assigned to the node, space-separated
	// (Node.getLabelString); Jenkins adds the node's own name
	// (Node.getSelfLabel) to them.
	Labels string
	// Executors is the node's number of executors (at least 1).
	Executors int
	// Description is Node.getNodeDescription.
	Description string
	// OfflineBy, when not "", is the user who marked the node temporarily
	// offline (Computer.doToggleOffline: OfflineCause.UserCause), with
	// OfflineMessage as the reason they gave.
	OfflineBy      string
	OfflineMessage string
	// LaunchFailed: the agent is not connected because Jenkins could not
	// launch it (SlaveComputer: OfflineCause.LaunchFailed).
	LaunchFailed bool
}

type node struct {
	spec  NodeSpec
	added time.Time // when it was added (and, if so, went offline)
}

// Messages of the offline causes, from Jenkins's resource bundles
// (core/src/main/resources/hudson/slaves/Messages.properties:
// SlaveComputer.DisconnectedBy, OfflineCause.LaunchFailed).
const (
	msgDisconnectedBy = "Disconnected by %s%s"
	msgLaunchFailed   = "This agent is offline because Jenkins failed to launch the agent process on it."
	// builtInDisplayName is Messages.Hudson_Computer_DisplayName
	// (core/src/main/resources/hudson/model/Messages.properties) of
	// Jenkins 2.307 and later, the built-in node's displayName.
	builtInDisplayName = "Built-In Node"
)

func (n *node) online() bool { return n.spec.OfflineBy == "" && !n.spec.LaunchFailed }

// AddNode adds an agent. Its executors take builds at once when it is
// online.
func (s *Server) AddNode(spec NodeSpec) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	switch {
	case spec.Name == "" || strings.ContainsAny(spec.Name, "/\\?*%<>|\"':;"):
		return fmt.Errorf("%w: node name %q", ErrInvalidSpec, spec.Name)
	case spec.Executors < 1:
		return fmt.Errorf("%w: node %q needs at least one executor", ErrInvalidSpec, spec.Name)
	case spec.OfflineBy != "" && spec.LaunchFailed:
		return fmt.Errorf("%w: node %q: one offline cause at a time", ErrInvalidSpec, spec.Name)
	}
	for _, n := range s.nodes {
		if n.spec.Name == spec.Name {
			return fmt.Errorf("%w: node %q", ErrExists, spec.Name)
		}
	}
	s.nodes = append(s.nodes, &node{spec: spec, added: s.now})
	slices.SortFunc(s.nodes, func(a, b *node) int { return strings.Compare(a.spec.Name, b.spec.Name) })
	s.dispatch(s.now)
	return nil
}

// capacity is how many builds may run at once: the executors of the
// online nodes. Callers hold s.mu.
func (s *Server) capacity() int {
	n := s.executors
	for _, nd := range s.nodes {
		if nd.online() {
			n += nd.spec.Executors
		}
	}
	return n
}

// computer is one entry of /computer: the built-in node (node nil) or an
// agent, with the builds on each of its executors.
type computer struct {
	node  *node
	slots []*build // by executor number; nil: idle
}

func (c computer) name() string {
	if c.node == nil {
		return ""
	}
	return c.node.spec.Name
}

func (c computer) online() bool { return c.node == nil || c.node.online() }

// computers is Jenkins.getComputers: every node's computer, sorted by name
// (ComputerSet.getComputers), the built-in node's ("") first.
func (s *Server) computers() []computer {
	out := []computer{{slots: make([]*build, s.executors)}}
	for _, n := range s.nodes {
		out = append(out, computer{node: n, slots: make([]*build, n.spec.Executors)})
	}
	for _, b := range s.running {
		for i := range out {
			if out[i].name() != b.onNode {
				continue
			}
			// A build keeps its executor when the node's executors are
			// reduced under it (Computer.setNumExecutors removes idle
			// executors only): the list grows to hold it.
			for len(out[i].slots) <= b.onExecutor {
				out[i].slots = append(out[i].slots, nil)
			}
			out[i].slots[b.onExecutor] = b
		}
	}
	return out
}

// assignExecutor puts b, which is starting, on the first free executor of
// an online node. dispatch starts a build only below capacity, so one is
// free; a running build added with AddBuild beyond it gets an extra
// executor of the built-in node. Callers hold s.mu.
func (s *Server) assignExecutor(b *build) {
	cs := s.computers()
	for _, c := range cs {
		if !c.online() {
			continue
		}
		limit := s.executors
		if c.node != nil {
			limit = c.node.spec.Executors
		}
		for i := 0; i < limit && i < len(c.slots); i++ {
			if c.slots[i] == nil {
				b.onNode, b.onExecutor = c.name(), i
				return
			}
		}
	}
	i := 0
	for i < len(cs[0].slots) && cs[0].slots[i] != nil {
		i++
	}
	b.onNode, b.onExecutor = "", i
}

// labels is Node.getAssignedLabels: the node's labels and its self label
// (the node's name; "built-in" for the built-in node, Jenkins.getSelfLabel
// once the 2.307 rename is done), each once. Jenkins returns a HashSet;
// the simulator sorts it.
func (c computer) labels() []string {
	self, assigned := "built-in", ""
	if c.node != nil {
		self, assigned = c.node.spec.Name, c.node.spec.Labels
	}
	out := []string{self}
	for _, l := range strings.Fields(assigned) {
		if !slices.Contains(out, l) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// offlineCause is Computer.getOfflineCause: the temporary cause a user
// set (Node.getTemporaryOfflineCause), else the channel's.
type offlineCause struct {
	since       time.Time
	class       string
	description string // SimpleOfflineCause.toString, exported as "description"; "" when the class exports none
	reason      string // IOfflineCause.getReason, Computer.getOfflineCauseReason
}

func (c computer) cause() (offlineCause, bool) {
	if c.node == nil {
		return offlineCause{}, false
	}
	switch sp := c.node.spec; {
	case sp.OfflineBy != "":
		// OfflineCause.UserCause: "Disconnected by <user> : <message>";
		// getReason strips the "Disconnected by ... : " prefix (and
		// escapes the rest for HTML, Util.escape).
		msg := ""
		if sp.OfflineMessage != "" {
			msg = " : " + sp.OfflineMessage
		}
		return offlineCause{
			since:       c.node.added,
			class:       "hudson.slaves.OfflineCause$UserCause",
			description: fmt.Sprintf(msgDisconnectedBy, sp.OfflineBy, msg),
			reason:      htmlEscape(sp.OfflineMessage),
		}, true
	case sp.LaunchFailed:
		// OfflineCause.LaunchFailed exports no description (its toString
		// is not @Exported); getReason is its toString, escaped.
		return offlineCause{since: c.node.added, class: "hudson.slaves.OfflineCause$LaunchFailed", reason: htmlEscape(msgLaunchFailed)}, true
	}
	return offlineCause{}, false
}

// nodeExecutor is one executor of a computer.
type nodeExecutor struct {
	number int
	build  *build // nil: idle
}

func (c computer) executors() []nodeExecutor {
	out := make([]nodeExecutor, len(c.slots))
	for i, b := range c.slots {
		out[i] = nodeExecutor{number: i, build: b}
	}
	return out
}

func (c computer) busy() int {
	n := 0
	for _, b := range c.slots {
		if b != nil {
			n++
		}
	}
	return n
}

// defaultComputerTree is /computer/api/json at depth 0: the computers
// inline (ComputerSet.getComputers is @Exported(inline = true)), their
// executors and causes as empty objects, their monitor data inline
// (Computer.getMonitorData is @Exported(inline = true)).
const defaultComputerTree = "busyExecutors,computer[actions,assignedLabels[name],description,displayName,executors,icon,iconClassName,idle,jnlpAgent," +
	"launchSupported,loadStatistics,manualLaunchAllowed,monitorData,numExecutors,offline,offlineCause,offlineCauseReason,oneOffExecutors,temporarilyOffline],displayName,totalExecutors"

// computerSchema declares what ComputerSet, Computer and Executor export.
//
// Jenkins: core/src/main/java/hudson/model/ComputerSet.java (getComputers
// as "computer", getBusyExecutors and getTotalExecutors counting online
// computers only, getDisplayName), core/src/main/java/hudson/model/Computer.java
// (the @Exported getters, sorted by name after Actionable's actions;
// getMonitorData only with Computer.CONNECT), core/src/main/java/hudson/model/Executor.java
// (currentExecutable: getCurrentExecutableForApi, null unless the user
// has Item.READ on the build; idle, likelyStuck, number, progress).
type computerSchema struct {
	set      *objType[*Server]
	computer *objType[computer]
	executor *objType[nodeExecutor]
	cause    *objType[offlineCause]
	monitors *objType[computer]
	// allMonitors selects every monitor: Computer.getMonitorData is a map
	// written whole.
	allMonitors *tree
}

func newComputerSchema(sc *schema) *computerSchema {
	cs := &computerSchema{}
	cs.cause = &objType[offlineCause]{class: func(c offlineCause) string { return c.class }, props: []prop[offlineCause]{
		{name: "description", has: func(c offlineCause) bool { return c.description != "" },
			write: func(e *enc, c offlineCause, _ *tree) { e.str(c.description) }},
		{name: "timestamp", write: func(e *enc, c offlineCause, _ *tree) { e.int(c.since.UnixMilli()) }},
	}}
	cs.executor = &objType[nodeExecutor]{class: fixed[nodeExecutor]("hudson.model.Executor"), props: []prop[nodeExecutor]{
		{name: "currentExecutable", write: func(e *enc, x nodeExecutor, t *tree) {
			// Executor.getCurrentExecutableForApi: the build only for a
			// user who may read it (Run's ACL is its job's).
			if x.build == nil || e.rc.jobPerm(x.build.job)&pRead == 0 {
				e.null()
				return
			}
			writeObject(e, sc.build, x.build, t)
		}},
		{name: "idle", write: func(e *enc, x nodeExecutor, _ *tree) { e.boolean(x.build == nil) }},
		{name: "likelyStuck", write: func(e *enc, _ nodeExecutor, _ *tree) { e.boolean(false) }},
		{name: "number", write: func(e *enc, x nodeExecutor, _ *tree) { e.int(int64(x.number)) }},
		{name: "progress", write: func(e *enc, x nodeExecutor, _ *tree) {
			if x.build == nil {
				e.int(-1)
				return
			}
			e.int(int64(progress(x.build, e.rc.now)))
		}},
	}}
	// Node monitors (core/src/main/java/hudson/node_monitors/): what an
	// online node reports; an offline agent has data only from the
	// response-time monitor, which keeps timing out (5000 ms).
	obj := func(class string, fields ...string) func(e *enc, c computer, _ *tree) {
		return func(e *enc, c computer, _ *tree) {
			if !c.online() {
				e.null()
				return
			}
			e.b = append(e.b, `{"_class":`...)
			e.str(class)
			for i := 0; i+1 < len(fields); i += 2 {
				e.b = append(e.b, ',')
				e.str(fields[i])
				e.b = append(e.b, ':')
				e.b = append(e.b, fields[i+1]...)
			}
			e.b = append(e.b, '}')
		}
	}
	cs.monitors = &objType[computer]{props: []prop[computer]{
		{name: "hudson.node_monitors.SwapSpaceMonitor", write: obj("hudson.node_monitors.SwapSpaceMonitor$MemoryUsage2",
			"availablePhysicalMemory", "2147483648", "availableSwapSpace", "1073741824", "totalPhysicalMemory", "8589934592", "totalSwapSpace", "2147483648")},
		{name: "hudson.node_monitors.ArchitectureMonitor", write: func(e *enc, c computer, _ *tree) {
			if !c.online() {
				e.null()
				return
			}
			e.str("Linux (amd64)")
		}},
		{name: "hudson.node_monitors.ResponseTimeMonitor", write: func(e *enc, c computer, _ *tree) {
			avg := "12"
			if !c.online() {
				avg = "5000"
			}
			e.b = append(e.b, `{"_class":"hudson.node_monitors.ResponseTimeMonitor$Data","timestamp":`...)
			e.int(e.rc.now.UnixMilli())
			e.b = append(e.b, `,"average":`...)
			e.b = append(e.b, avg...)
			e.b = append(e.b, '}')
		}},
		{name: "hudson.node_monitors.TemporarySpaceMonitor", write: obj("hudson.node_monitors.DiskSpaceMonitorDescriptor$DiskSpace",
			"path", `"/tmp"`, "size", "53687091200")},
		{name: "hudson.node_monitors.DiskSpaceMonitor", write: obj("hudson.node_monitors.DiskSpaceMonitorDescriptor$DiskSpace",
			"path", `"/var/jenkins_home"`, "size", "107374182400")},
		{name: "hudson.node_monitors.ClockMonitor", write: obj("hudson.util.ClockDifference", "diff", "0")},
	}}
	cs.allMonitors = newTree()
	for _, p := range cs.monitors.props {
		cs.allMonitors.props[p.name] = newTree()
	}
	cs.computer = &objType[computer]{
		class: func(c computer) string {
			if c.node == nil {
				return "hudson.model.Hudson$MasterComputer"
			}
			return "hudson.slaves.SlaveComputer"
		},
		props: []prop[computer]{
			{name: "actions", write: func(e *enc, _ computer, _ *tree) { e.b = append(e.b, "[]"...) }},
			{name: "assignedLabels", write: func(e *enc, c computer, t *tree) {
				writeArray(e, c.labels(), t, func(e *enc, l string) { writeObject(e, sc.label, l, t) })
			}},
			{name: "description", write: func(e *enc, c computer, _ *tree) {
				if c.node == nil {
					e.str("the Jenkins controller's built-in node")
					return
				}
				e.str(c.node.spec.Description)
			}},
			{name: "displayName", write: func(e *enc, c computer, _ *tree) {
				if c.node == nil {
					e.str(builtInDisplayName)
					return
				}
				e.str(c.node.spec.Name)
			}},
			{name: "executors", write: func(e *enc, c computer, t *tree) {
				writeArray(e, c.executors(), t, func(e *enc, x nodeExecutor) { writeObject(e, cs.executor, x, t) })
			}},
			{name: "icon", write: func(e *enc, c computer, _ *tree) { e.str(computerIcon(c)) }},
			{name: "iconClassName", write: func(e *enc, c computer, _ *tree) { e.str(computerIcon(c)) }},
			{name: "idle", write: func(e *enc, c computer, _ *tree) { e.boolean(c.busy() == 0) }},
			{name: "jnlpAgent", write: func(e *enc, _ computer, _ *tree) { e.boolean(false) }},
			{name: "launchSupported", write: func(e *enc, _ computer, _ *tree) { e.boolean(true) }},
			{name: "loadStatistics", write: func(e *enc, _ computer, t *tree) {
				writeObject(e, sc.classOnly, "hudson.model.Label$1", t)
			}},
			{name: "manualLaunchAllowed", write: func(e *enc, _ computer, _ *tree) { e.boolean(true) }},
			{name: "monitorData", write: func(e *enc, c computer, t *tree) {
				if e.rc.rootPerm()&pAll != pAll {
					// Computer.getMonitorData needs Computer.CONNECT,
					// which the simulator grants administrators only.
					e.b = append(e.b, "{}"...)
					return
				}
				writeObject(e, cs.monitors, c, cs.allMonitors)
			}},
			{name: "numExecutors", write: func(e *enc, c computer, _ *tree) {
				if c.node == nil {
					e.int(int64(e.rc.s.executors))
					return
				}
				e.int(int64(c.node.spec.Executors))
			}},
			{name: "offline", write: func(e *enc, c computer, _ *tree) { e.boolean(!c.online()) }},
			{name: "offlineCause", write: func(e *enc, c computer, t *tree) {
				oc, ok := c.cause()
				if !ok {
					e.null()
					return
				}
				writeObject(e, cs.cause, oc, t)
			}},
			{name: "offlineCauseReason", write: func(e *enc, c computer, _ *tree) {
				oc, _ := c.cause()
				e.str(oc.reason)
			}},
			{name: "oneOffExecutors", write: func(e *enc, _ computer, _ *tree) { e.b = append(e.b, "[]"...) }},
			{name: "temporarilyOffline", write: func(e *enc, c computer, _ *tree) { e.boolean(c.node != nil && c.node.spec.OfflineBy != "") }},
		},
	}
	cs.set = &objType[*Server]{class: fixed[*Server]("hudson.model.ComputerSet"), props: []prop[*Server]{
		{name: "busyExecutors", write: func(e *enc, s *Server, _ *tree) {
			n := 0
			for _, c := range s.computers() {
				if c.online() {
					n += c.busy()
				}
			}
			e.int(int64(n))
		}},
		{name: "computer", write: func(e *enc, s *Server, t *tree) {
			writeArray(e, s.computers(), t, func(e *enc, c computer) { writeObject(e, cs.computer, c, t) })
		}},
		{name: "displayName", write: func(e *enc, _ *Server, _ *tree) { e.str("Nodes") }},
		{name: "totalExecutors", write: func(e *enc, s *Server, _ *tree) {
			n := 0
			for _, c := range s.computers() {
				if c.online() {
					n += len(c.slots)
				}
			}
			e.int(int64(n))
		}},
	}}
	return cs
}

// computerIcon is IComputer.getIcon: the offline cause's icon
// (UserCause: symbol-computer-disconnected), else offline or not.
func computerIcon(c computer) string {
	switch {
	case c.node != nil && c.node.spec.OfflineBy != "":
		return "symbol-computer-disconnected"
	case !c.online():
		return "symbol-computer-offline"
	}
	return "symbol-computer"
}

// computerAPI answers /computer/api/json. Jenkins.getTarget has checked
// Overall/Read; ComputerSet lists every computer to whoever may read the
// instance (its ComputerSourceImpl filters nothing), hiding only the builds
// on their executors that the user may not read.
func (s *Server) computerAPI(rc *reqCtx) *reply {
	return s.render(rc, defaultComputerTree, 0, func(e *enc, t *tree) { writeObject(e, s.schema.computers.set, s, t) })
}
