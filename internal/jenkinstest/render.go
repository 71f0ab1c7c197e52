package jenkinstest

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// This file declares what each Jenkins object exports, in Jenkins's order
// (superclass properties first, each class's sorted by name), and how each
// property is computed. A property is computed only when the request's tree
// asks for it, so a listing that wants names and colors never touches
// builds, health or the queue.

// Default trees reproduce Jenkins's depth=0 answers (no "tree" parameter).
const (
	defaultRootTree   = "assignedLabels[name],mode,nodeDescription,nodeName,numExecutors,description,jobs[name,url,color],overallLoad,primaryView[name,url],quietDownReason,quietingDown,slaveAgentPort,unlabeledLoad,url,useCrumbs,useSecurity,views[name,url]"
	defaultFolderTree = "actions,description,displayName,displayNameOrNull,fullDisplayName,fullName,name,url,healthReport[description,iconClassName,iconUrl,score],jobs[name,url,color],primaryView[name,url],views[name,url]"
	defaultJobTree    = "actions[parameterDefinitions[defaultParameterValue[name,value],description,name,type,choices]],description,displayName,displayNameOrNull,fullDisplayName,fullName,name,url," +
		"buildable,builds[number,url],color,firstBuild[number,url],healthReport[description,iconClassName,iconUrl,score],inQueue,keepDependencies," +
		"lastBuild[number,url],lastCompletedBuild[number,url],lastFailedBuild[number,url],lastStableBuild[number,url],lastSuccessfulBuild[number,url],lastUnstableBuild[number,url],lastUnsuccessfulBuild[number,url]," +
		"nextBuildNumber,property[parameterDefinitions[defaultParameterValue[name,value],description,name,type,choices]]," +
		"queueItem[blocked,buildable,id,inQueueSince,params,stuck,task[name,url,color],url,why,buildableStartMilliseconds,pending,timestamp]," +
		"concurrentBuild,disabled,downstreamProjects,labelExpression,resumeBlocked,scm,upstreamProjects"
	defaultBuildTree = "actions[parameters[name,value],causes[shortDescription,userId,userName],failCount,skipCount,totalCount,urlName,remoteUrls],artifacts[displayPath,fileName,relativePath],building,description,displayName,duration,estimatedDuration,executor,fullDisplayName,id,keepLog,number,queueId,result,timestamp,url," +
		"builtOn,changeSet[" + defaultChangeSetTree + "],changeSets[" + defaultChangeSetTree + "],culprits[absoluteUrl,fullName],inProgress,nextBuild[number,url],previousBuild[number,url]"
	// defaultChangeSetTree: a ChangeLogSet and its entries are exported
	// with defaultVisibility 999, so depth=0 shows them whole.
	defaultChangeSetTree = "items[affectedPaths,commitId,timestamp,author[absoluteUrl,fullName],authorEmail,comment,date,id,msg,paths[editType,file]],kind"
	defaultQueueItemTree = "actions[parameters[name,value],causes[shortDescription,userId,userName]],blocked,buildable,id,inQueueSince,params,stuck,task[name,url,color],url,why,buildableStartMilliseconds,pending,timestamp,cancelled,executable[number,url]"
	defaultQueueTree     = "discoverableItems,items[" + defaultQueueItemTree + "]"
	defaultUserTree      = "absoluteUrl,description,fullName,id,property[insensitiveSearch]"
	defaultTestTree      = "testActions,duration,empty,failCount,passCount,skipCount,suites[cases[testActions,age,className,duration,errorDetails,errorStackTrace,failedSince,name,skipped,skippedMessage,status,stderr,stdout],duration,enclosingBlockNames,enclosingBlocks,id,name,nodeId,stderr,stdout,timestamp]"
	defaultCrumbTree     = "crumb,crumbRequestField"
	// defaultAggregatedTestTree approximates the depth=0 answer of an
	// aggregated report: the counts and each child's reference and report.
	defaultAggregatedTestTree = "failCount,skipCount,totalCount,urlName,childReports[child[number,url],result[" + defaultTestTree + "]]"
)

type actionKind int

const (
	aPlain      actionKind = iota // class only, or {} when class is ""
	aParamsDef                    // hudson.model.ParametersDefinitionProperty
	aParams                       // hudson.model.ParametersAction
	aCauses                       // hudson.model.CauseAction
	aTestResult                   // hudson.tasks.junit.TestResultAction
	aBuildData                    // hudson.plugins.git.util.BuildData (artifacts.go)
)

type action struct {
	kind   actionKind
	class  string
	job    *item
	params []paramValue
	causes []cause
	tests  *TestReport
	// remoteURLs of a BuildData action.
	remoteURLs []string
	inputs     []inputExec // an InputAction's waiting executions (wfapi.go)
}

type health struct {
	score int
	desc  string
}

type viewRef struct {
	name, url string
}

type userProp struct {
	class             string
	insensitiveSearch bool
}

type suite struct {
	name  string
	cases []*TestCase
}

type crumbInfo struct{ crumb string }

// testAction is a build's aggregated test report action.
type testAction struct {
	build  *build
	report *TestReport
}

// childRef is one child of an aggregated report.
type childRef struct {
	build *build
	agg   *TestReport
	child *ChildReport
}

// schema holds the object types of one Server. Types refer to each other
// (a folder lists jobs, a job lists builds, a build names its job), so they
// are built together rather than as package variables.
type schema struct {
	root, folder, freestyle, workflow *objType[*item]
	build                             *objType[*build]
	queueItem                         *objType[*queueItem]
	queue                             *objType[*Server]
	action                            *objType[action]
	paramDef, paramDefault            *objType[Param]
	paramValue                        *objType[paramValue]
	cause                             *objType[cause]
	health                            *objType[health]
	view                              *objType[viewRef]
	label                             *objType[string]
	classOnly                         *objType[string]
	executor                          *objType[*build]
	user                              *objType[*user]
	userProp                          *objType[userProp]
	testResult                        *objType[*TestReport]
	aggregated                        *objType[testAction]
	childReport                       *objType[childRef]
	childRun                          *objType[childRef]
	suite                             *objType[suite]
	testCase                          *objType[*TestCase]
	crumb                             *objType[crumbInfo]
	scm                               *scmSchema      // artifacts and change logs (artifacts.go)
	computers                         *computerSchema // nodes.go
}

func fixed[T any](c string) func(T) string { return func(T) string { return c } }

func newSchema() *schema {
	sc := &schema{scm: newSCMSchema()}

	sc.classOnly = &objType[string]{class: func(c string) string { return c }}
	sc.label = &objType[string]{props: []prop[string]{
		{name: "name", write: func(e *enc, v string, _ *tree) { e.str(v) }},
	}}
	sc.view = &objType[viewRef]{class: fixed[viewRef]("hudson.model.AllView"), props: []prop[viewRef]{
		{name: "name", write: func(e *enc, v viewRef, _ *tree) { e.str(v.name) }},
		{name: "url", write: func(e *enc, v viewRef, _ *tree) { e.url(v.url) }},
	}}
	sc.health = &objType[health]{props: []prop[health]{
		{name: "description", write: func(e *enc, h health, _ *tree) { e.str(h.desc) }},
		{name: "iconClassName", write: func(e *enc, h health, _ *tree) { e.str("icon-" + healthIcon(h.score)) }},
		{name: "iconUrl", write: func(e *enc, h health, _ *tree) { e.str(healthIcon(h.score) + ".png") }},
		{name: "score", write: func(e *enc, h health, _ *tree) { e.int(int64(h.score)) }},
	}}

	sc.cause = &objType[cause]{
		class: func(c cause) string {
			if c.upstream != nil {
				return "hudson.model.Cause$UpstreamCause"
			}
			if c.userID == "" {
				return "hudson.triggers.TimerTrigger$TimerTriggerCause"
			}
			return "hudson.model.Cause$UserIdCause"
		},
		props: append([]prop[cause]{
			{name: "shortDescription", write: func(e *enc, c cause, _ *tree) { e.str(c.short()) }},
			{name: "userId", has: isUserCause, write: func(e *enc, c cause, _ *tree) { e.str(c.userID) }},
			{name: "userName", has: isUserCause, write: func(e *enc, c cause, _ *tree) { e.str(c.userName) }},
		}, upstreamCauseProps()...),
	}
	sc.paramValue = &objType[paramValue]{
		class: func(p paramValue) string { return valueClass(p.typ) },
		props: []prop[paramValue]{
			{name: "name", write: func(e *enc, p paramValue, _ *tree) { e.str(p.name) }},
			// PasswordParameterValue and FileParameterValue export no value.
			{name: "value", has: func(p paramValue) bool { return p.typ != "password" && p.typ != "file" }, write: func(e *enc, p paramValue, _ *tree) { e.value(p.value) }},
		},
	}
	sc.paramDefault = &objType[Param]{
		class: func(p Param) string { return valueClass(p.Type) },
		props: []prop[Param]{
			{name: "name", write: func(e *enc, p Param, _ *tree) { e.str(p.Name) }},
			{name: "value", has: func(p Param) bool { return p.Type != "password" }, write: func(e *enc, p Param, _ *tree) { e.value(p.Default) }},
		},
	}
	sc.paramDef = &objType[Param]{
		class: func(p Param) string { return "hudson.model." + defType(p.Type) },
		props: []prop[Param]{
			{name: "defaultParameterValue", write: func(e *enc, p Param, t *tree) {
				if p.Type == "file" {
					// FileParameterDefinition keeps ParameterDefinition's
					// getDefaultParameterValue: null.
					e.null()
					return
				}
				writeObject(e, sc.paramDefault, p, t)
			}},
			{name: "description", write: func(e *enc, p Param, _ *tree) { e.str(p.Description) }},
			{name: "name", write: func(e *enc, p Param, _ *tree) { e.str(p.Name) }},
			{name: "type", write: func(e *enc, p Param, _ *tree) { e.str(defType(p.Type)) }},
			{name: "choices", has: func(p Param) bool { return p.Type == "choice" }, write: func(e *enc, p Param, t *tree) {
				writeArray(e, p.Choices, t, func(e *enc, c string) { e.str(c) })
			}},
		},
	}

	isKind := func(k actionKind) func(action) bool { return func(a action) bool { return a.kind == k } }
	defer func() { sc.action.props = append(sc.action.props, inputActionProps(sc)...) }()
	sc.action = &objType[action]{
		class: func(a action) string { return a.class },
		props: []prop[action]{
			{name: "parameterDefinitions", has: isKind(aParamsDef), write: func(e *enc, a action, t *tree) {
				writeArray(e, a.job.spec.Params, t, func(e *enc, p Param) { writeObject(e, sc.paramDef, p, t) })
			}},
			{name: "parameters", has: isKind(aParams), write: func(e *enc, a action, t *tree) {
				writeArray(e, a.params, t, func(e *enc, p paramValue) { writeObject(e, sc.paramValue, p, t) })
			}},
			{name: "causes", has: isKind(aCauses), write: func(e *enc, a action, t *tree) {
				writeArray(e, a.causes, t, func(e *enc, c cause) { writeObject(e, sc.cause, c, t) })
			}},
			{name: "failCount", has: isKind(aTestResult), write: func(e *enc, a action, _ *tree) { e.int(int64(reportCounts(a.tests).fail)) }},
			{name: "skipCount", has: isKind(aTestResult), write: func(e *enc, a action, _ *tree) { e.int(int64(reportCounts(a.tests).skip)) }},
			{name: "totalCount", has: isKind(aTestResult), write: func(e *enc, a action, _ *tree) { e.int(int64(reportCounts(a.tests).total())) }},
			{name: "urlName", has: isKind(aTestResult), write: func(e *enc, a action, _ *tree) { e.str("testReport") }},
			{name: "remoteUrls", has: isKind(aBuildData), write: func(e *enc, a action, t *tree) {
				writeArray(e, a.remoteURLs, t, func(e *enc, u string) { e.str(u) })
			}},
		},
	}

	// Items. The item properties (AbstractItem) come first.
	itemProps := func(actions func(*item) []action) []prop[*item] {
		return []prop[*item]{
			{name: "actions", write: func(e *enc, it *item, t *tree) {
				writeArray(e, actions(it), t, func(e *enc, a action) { writeObject(e, sc.action, a, t) })
			}},
			{name: "description", write: func(e *enc, it *item, _ *tree) {
				if it.isJob() {
					e.str(it.desc)
				} else {
					e.strOrNull(it.desc)
				}
			}},
			{name: "displayName", write: func(e *enc, it *item, _ *tree) { e.str(it.name) }},
			{name: "displayNameOrNull", write: func(e *enc, _ *item, _ *tree) { e.null() }},
			{name: "fullDisplayName", write: func(e *enc, it *item, _ *tree) { e.str(fullDisplayName(it)) }},
			{name: "fullName", write: func(e *enc, it *item, _ *tree) { e.str(it.fullName) }},
			{name: "name", write: func(e *enc, it *item, _ *tree) { e.str(it.name) }},
			{name: "url", write: func(e *enc, it *item, _ *tree) { e.url(it.urlPath) }},
		}
	}
	buildRef := func(get func(*item) *build) func(e *enc, it *item, t *tree) {
		return func(e *enc, it *item, t *tree) {
			if b := get(it); b != nil {
				writeObject(e, sc.build, b, t)
			} else {
				e.null()
			}
		}
	}
	permalinkProp := func(name string) prop[*item] {
		return prop[*item]{name: name, write: func(e *enc, j *item, t *tree) {
			b := permalink(j, name)
			e.rc.s.records.touch(j, b)
			buildRef(func(*item) *build { return b })(e, j, t)
		}}
	}
	buildList := func(limit int) func(e *enc, it *item, t *tree) {
		return func(e *enc, it *item, t *tree) {
			bs := newestFirst(it.builds, limit)
			writeArray(e, bs, t, func(e *enc, b *build) { writeObject(e, sc.build, b, t) })
		}
	}
	empty := func(e *enc, _ *item, _ *tree) { e.b = append(e.b, "[]"...) }
	jobProps := []prop[*item]{
		{name: "allBuilds", write: buildList(-1)},
		{name: "buildable", write: func(e *enc, j *item, _ *tree) { e.boolean(!j.spec.Disabled) }},
		{name: "builds", write: buildList(100)},
		{name: "color", write: func(e *enc, j *item, _ *tree) {
			e.rc.s.records.touch(j, permalink(j, "lastCompletedBuild"))
			e.str(jobColor(j))
		}},
		permalinkProp("firstBuild"),
		{name: "healthReport", write: func(e *enc, j *item, t *tree) {
			writeArray(e, jobHealth(j), t, func(e *enc, h health) { writeObject(e, sc.health, h, t) })
		}},
		{name: "inQueue", write: func(e *enc, j *item, _ *tree) { e.boolean(e.rc.s.queueItemOf(j) != nil) }},
		{name: "keepDependencies", write: func(e *enc, _ *item, _ *tree) { e.boolean(false) }},
		permalinkProp("lastBuild"),
		permalinkProp("lastCompletedBuild"),
		permalinkProp("lastFailedBuild"),
		permalinkProp("lastStableBuild"),
		permalinkProp("lastSuccessfulBuild"),
		permalinkProp("lastUnstableBuild"),
		permalinkProp("lastUnsuccessfulBuild"),
		{name: "nextBuildNumber", write: func(e *enc, j *item, _ *tree) { e.int(int64(j.nextBuild)) }},
		{name: "property", write: func(e *enc, j *item, t *tree) {
			var ps []action
			if len(j.spec.Params) > 0 {
				ps = append(ps, action{kind: aParamsDef, class: "hudson.model.ParametersDefinitionProperty", job: j})
			}
			writeArray(e, ps, t, func(e *enc, a action) { writeObject(e, sc.action, a, t) })
		}},
		{name: "queueItem", write: func(e *enc, j *item, t *tree) {
			if q := e.rc.s.queueItemOf(j); q != nil {
				writeObject(e, sc.queueItem, q, t)
			} else {
				e.null()
			}
		}},
	}
	concurrent := prop[*item]{name: "concurrentBuild", write: func(e *enc, j *item, _ *tree) { e.boolean(j.spec.Concurrent) }}
	disabled := prop[*item]{name: "disabled", write: func(e *enc, j *item, _ *tree) { e.boolean(j.spec.Disabled) }}

	sc.freestyle = &objType[*item]{class: func(it *item) string { return it.class }}
	sc.freestyle.props = concat(itemProps(jobActions), jobProps, []prop[*item]{
		concurrent,
		disabled,
		{name: "downstreamProjects", write: empty},
		{name: "labelExpression", write: func(e *enc, _ *item, _ *tree) { e.null() }},
		{name: "scm", write: func(e *enc, _ *item, t *tree) { writeObject(e, sc.classOnly, "hudson.scm.NullSCM", t) }},
		{name: "upstreamProjects", write: empty},
	})
	sc.workflow = &objType[*item]{class: func(it *item) string { return it.class }}
	sc.workflow.props = concat(itemProps(jobActions), jobProps, []prop[*item]{
		concurrent,
		disabled,
		{name: "resumeBlocked", write: func(e *enc, _ *item, _ *tree) { e.boolean(false) }},
	})

	jobsProp := prop[*item]{name: "jobs", write: func(e *enc, f *item, t *tree) { writeChildren(e, f, t) }}
	sc.folder = &objType[*item]{class: func(it *item) string { return it.class }}
	sc.folder.props = concat(itemProps(folderActions), []prop[*item]{
		{name: "healthReport", write: func(e *enc, f *item, t *tree) {
			writeArray(e, folderHealth(e, f), t, func(e *enc, h health) { writeObject(e, sc.health, h, t) })
		}},
		jobsProp,
		{name: "primaryView", write: func(e *enc, f *item, t *tree) { writeObject(e, sc.view, viewRef{"All", f.urlPath}, t) }},
		{name: "views", write: func(e *enc, f *item, t *tree) {
			writeArray(e, []viewRef{{"All", f.urlPath}}, t, func(e *enc, v viewRef) { writeObject(e, sc.view, v, t) })
		}},
	})
	sc.root = &objType[*item]{class: fixed[*item]("hudson.model.Hudson"), props: []prop[*item]{
		{name: "assignedLabels", write: func(e *enc, _ *item, t *tree) {
			writeArray(e, []string{"built-in"}, t, func(e *enc, l string) { writeObject(e, sc.label, l, t) })
		}},
		{name: "mode", write: func(e *enc, _ *item, _ *tree) { e.str("NORMAL") }},
		{name: "nodeDescription", write: func(e *enc, _ *item, _ *tree) { e.str("the Jenkins controller's built-in node") }},
		{name: "nodeName", write: func(e *enc, _ *item, _ *tree) { e.str("") }},
		{name: "numExecutors", write: func(e *enc, _ *item, _ *tree) { e.int(int64(e.rc.s.executors)) }},
		{name: "description", write: func(e *enc, _ *item, _ *tree) { e.null() }},
		jobsProp,
		{name: "overallLoad", write: func(e *enc, _ *item, t *tree) { writeObject(e, sc.classOnly, "", t) }},
		{name: "primaryView", write: func(e *enc, _ *item, t *tree) { writeObject(e, sc.view, viewRef{"all", ""}, t) }},
		{name: "quietDownReason", write: func(e *enc, _ *item, _ *tree) { e.null() }},
		{name: "quietingDown", write: func(e *enc, _ *item, _ *tree) { e.boolean(false) }},
		{name: "slaveAgentPort", write: func(e *enc, _ *item, _ *tree) { e.int(-1) }},
		{name: "unlabeledLoad", write: func(e *enc, _ *item, t *tree) {
			writeObject(e, sc.classOnly, "jenkins.model.UnlabeledLoadStatistics", t)
		}},
		{name: "url", write: func(e *enc, _ *item, _ *tree) { e.url("") }},
		{name: "useCrumbs", write: func(e *enc, _ *item, _ *tree) { e.boolean(true) }},
		{name: "useSecurity", write: func(e *enc, _ *item, _ *tree) { e.boolean(true) }},
		{name: "views", write: func(e *enc, _ *item, t *tree) {
			writeArray(e, []viewRef{{"all", ""}}, t, func(e *enc, v viewRef) { writeObject(e, sc.view, v, t) })
		}},
	}}

	// Builds.
	isWorkflow := func(b *build) bool { return b.job.spec.Class == ClassWorkflowJob }
	notWorkflow := func(b *build) bool { return !isWorkflow(b) }
	emptyList := func(e *enc, _ *build, _ *tree) { e.b = append(e.b, "[]"...) }
	sc.executor = &objType[*build]{
		class: func(b *build) string {
			if isWorkflow(b) {
				return "hudson.model.OneOffExecutor"
			}
			return "hudson.model.Executor"
		},
		props: []prop[*build]{
			{name: "idle", write: func(e *enc, _ *build, _ *tree) { e.boolean(false) }},
			{name: "likelyStuck", write: func(e *enc, _ *build, _ *tree) { e.boolean(false) }},
			{name: "number", write: func(e *enc, _ *build, _ *tree) { e.int(0) }},
			{name: "progress", write: func(e *enc, b *build, _ *tree) { e.int(int64(progress(b, e.rc.now))) }},
		},
	}
	sc.build = &objType[*build]{
		class: func(b *build) string {
			if isWorkflow(b) {
				return "org.jenkinsci.plugins.workflow.job.WorkflowRun"
			}
			return "hudson.model.FreeStyleBuild"
		},
		props: []prop[*build]{
			{name: "actions", write: func(e *enc, b *build, t *tree) {
				writeArray(e, buildActions(b), t, func(e *enc, a action) { writeObject(e, sc.action, a, t) })
			}},
			{name: "artifacts", write: writeBuildArtifacts},
			{name: "building", write: func(e *enc, b *build, _ *tree) { e.boolean(b.building) }},
			{name: "description", write: func(e *enc, _ *build, _ *tree) { e.null() }},
			{name: "displayName", write: func(e *enc, b *build, _ *tree) { e.str("#" + strconv.Itoa(b.number)) }},
			{name: "duration", write: func(e *enc, b *build, _ *tree) {
				if b.building {
					e.int(0)
				} else {
					e.int(b.duration.Milliseconds())
				}
			}},
			{name: "estimatedDuration", write: func(e *enc, b *build, _ *tree) { e.int(estimatedDuration(b.job)) }},
			{name: "executor", write: func(e *enc, b *build, t *tree) {
				if b.building {
					writeObject(e, sc.executor, b, t)
				} else {
					e.null()
				}
			}},
			{name: "fullDisplayName", write: func(e *enc, b *build, _ *tree) {
				e.str(fullDisplayName(b.job) + " #" + strconv.Itoa(b.number))
			}},
			{name: "id", write: func(e *enc, b *build, _ *tree) { e.str(strconv.Itoa(b.number)) }},
			{name: "keepLog", write: func(e *enc, _ *build, _ *tree) { e.boolean(false) }},
			{name: "number", write: func(e *enc, b *build, _ *tree) { e.int(int64(b.number)) }},
			{name: "queueId", write: func(e *enc, b *build, _ *tree) { e.int(b.queueID) }},
			{name: "result", write: func(e *enc, b *build, _ *tree) {
				if b.building {
					e.null()
				} else {
					e.str(b.result)
				}
			}},
			{name: "timestamp", write: func(e *enc, b *build, _ *tree) { e.int(b.start.UnixMilli()) }},
			{name: "url", write: func(e *enc, b *build, _ *tree) { e.url(buildPath(b)) }},
			{name: "builtOn", has: notWorkflow, write: func(e *enc, _ *build, _ *tree) { e.str("") }},
			{name: "changeSet", has: notWorkflow, write: writeChangeSet},
			{name: "changeSets", has: isWorkflow, write: writeChangeSets},
			{name: "culprits", write: emptyList},
			{name: "inProgress", has: isWorkflow, write: func(e *enc, b *build, _ *tree) { e.boolean(b.building) }},
			{name: "nextBuild", has: isWorkflow, write: func(e *enc, b *build, t *tree) {
				if n := neighbour(b, +1); n != nil {
					writeObject(e, sc.build, n, t)
				} else {
					e.null()
				}
			}},
			{name: "previousBuild", has: isWorkflow, write: func(e *enc, b *build, t *tree) {
				if n := neighbour(b, -1); n != nil {
					writeObject(e, sc.build, n, t)
				} else {
					e.null()
				}
			}},
		},
	}

	// Queue.
	inState := func(sts ...qstate) func(*queueItem) bool {
		return func(q *queueItem) bool {
			for _, st := range sts {
				if q.state == st {
					return true
				}
			}
			return false
		}
	}
	sc.queueItem = &objType[*queueItem]{
		class: func(q *queueItem) string {
			return "hudson.model.Queue$" + [...]string{"WaitingItem", "BlockedItem", "BuildableItem", "LeftItem"}[q.state]
		},
		props: []prop[*queueItem]{
			{name: "actions", write: func(e *enc, q *queueItem, t *tree) {
				writeArray(e, queueActions(q), t, func(e *enc, a action) { writeObject(e, sc.action, a, t) })
			}},
			{name: "blocked", write: func(e *enc, q *queueItem, _ *tree) { e.boolean(q.state == qBlocked) }},
			{name: "buildable", write: func(e *enc, q *queueItem, _ *tree) { e.boolean(q.state == qBuildable) }},
			{name: "id", write: func(e *enc, q *queueItem, _ *tree) { e.int(q.id) }},
			{name: "inQueueSince", write: func(e *enc, q *queueItem, _ *tree) { e.int(q.inQueueSince.UnixMilli()) }},
			{name: "params", write: func(e *enc, q *queueItem, _ *tree) { e.str(paramsString(q.params)) }},
			{name: "stuck", write: func(e *enc, q *queueItem, _ *tree) { e.boolean(isStuck(q, e.rc.now)) }},
			{name: "task", write: func(e *enc, q *queueItem, t *tree) { writeItem(e, q.job, t) }},
			{name: "url", write: func(e *enc, q *queueItem, _ *tree) { e.str("queue/item/" + strconv.FormatInt(q.id, 10) + "/") }},
			{name: "why", write: func(e *enc, q *queueItem, _ *tree) { e.strOrNull(e.rc.s.why(q, e.rc.now)) }},
			{name: "buildableStartMilliseconds", has: inState(qBlocked, qBuildable), write: func(e *enc, q *queueItem, _ *tree) {
				e.int(q.buildableStart.UnixMilli())
			}},
			{name: "pending", has: inState(qBuildable), write: func(e *enc, _ *queueItem, _ *tree) { e.boolean(false) }},
			{name: "timestamp", has: inState(qWaiting), write: func(e *enc, q *queueItem, _ *tree) { e.int(q.due.UnixMilli()) }},
			{name: "cancelled", has: inState(qLeft), write: func(e *enc, q *queueItem, _ *tree) { e.boolean(q.cancelled) }},
			{name: "executable", has: inState(qLeft), write: func(e *enc, q *queueItem, t *tree) {
				if q.build != nil {
					writeObject(e, sc.build, q.build, t)
				} else {
					e.null()
				}
			}},
		},
	}
	sc.queue = &objType[*Server]{class: fixed[*Server]("hudson.model.Queue"), props: []prop[*Server]{
		{name: "discoverableItems", write: func(e *enc, s *Server, t *tree) {
			// Queue.StubItem {task: StubTask {name}}, declared types
			// both, so without _class.
			writeArray(e, s.discoverableQueue(e.rc), t, func(e *enc, q *queueItem) {
				e.b = append(e.b, `{"task":{"name":`...)
				e.str(q.job.name)
				e.b = append(e.b, "}}"...)
			})
		}},
		{name: "items", write: func(e *enc, s *Server, t *tree) {
			writeArray(e, s.visibleQueue(e.rc), t, func(e *enc, q *queueItem) { writeObject(e, sc.queueItem, q, t) })
		}},
	}}

	// Users.
	sc.userProp = &objType[userProp]{class: func(p userProp) string { return p.class }, props: []prop[userProp]{
		{name: "insensitiveSearch", has: func(p userProp) bool { return p.class == "hudson.search.UserSearchProperty" },
			write: func(e *enc, p userProp, _ *tree) { e.boolean(p.insensitiveSearch) }},
	}}
	sc.user = &objType[*user]{class: fixed[*user]("hudson.model.User"), props: []prop[*user]{
		{name: "absoluteUrl", write: func(e *enc, u *user, _ *tree) { e.url("user/" + userKey(u.id)) }},
		{name: "description", write: func(e *enc, _ *user, _ *tree) { e.null() }},
		{name: "fullName", write: func(e *enc, u *user, _ *tree) { e.str(u.fullName) }},
		{name: "id", write: func(e *enc, u *user, _ *tree) { e.str(u.id) }},
		{name: "property", write: func(e *enc, _ *user, t *tree) {
			writeArray(e, userProps(), t, func(e *enc, p userProp) { writeObject(e, sc.userProp, p, t) })
		}},
	}}

	// Test reports.
	sc.testCase = &objType[*TestCase]{props: []prop[*TestCase]{
		{name: "testActions", write: func(e *enc, _ *TestCase, _ *tree) { e.b = append(e.b, "[]"...) }},
		{name: "age", write: func(e *enc, c *TestCase, _ *tree) {
			if failing(c.Status) {
				e.int(1)
			} else {
				e.int(0)
			}
		}},
		{name: "className", write: func(e *enc, c *TestCase, _ *tree) { e.str(c.Class) }},
		{name: "duration", write: func(e *enc, c *TestCase, _ *tree) { e.float(c.Duration) }},
		{name: "errorDetails", write: func(e *enc, c *TestCase, _ *tree) { e.strOrNull(c.ErrorDetails) }},
		{name: "errorStackTrace", write: func(e *enc, c *TestCase, _ *tree) {
			if failing(c.Status) {
				e.str(stackTrace(c))
			} else {
				e.null()
			}
		}},
		{name: "failedSince", write: func(e *enc, _ *TestCase, _ *tree) { e.int(0) }},
		{name: "name", write: func(e *enc, c *TestCase, _ *tree) { e.str(c.Name) }},
		{name: "skipped", write: func(e *enc, c *TestCase, _ *tree) { e.boolean(c.Status == "SKIPPED") }},
		{name: "skippedMessage", write: func(e *enc, _ *TestCase, _ *tree) { e.null() }},
		{name: "status", write: func(e *enc, c *TestCase, _ *tree) { e.str(e.rc.s.caseStatus(c.Status)) }},
		{name: "stderr", write: func(e *enc, _ *TestCase, _ *tree) { e.null() }},
		{name: "stdout", write: func(e *enc, _ *TestCase, _ *tree) { e.null() }},
	}}
	nullProp := func(name string) prop[suite] {
		return prop[suite]{name: name, write: func(e *enc, _ suite, _ *tree) { e.null() }}
	}
	sc.suite = &objType[suite]{props: []prop[suite]{
		{name: "cases", write: func(e *enc, s suite, t *tree) {
			writeArray(e, s.cases, t, func(e *enc, c *TestCase) { writeObject(e, sc.testCase, c, t) })
		}},
		{name: "duration", write: func(e *enc, s suite, _ *tree) { e.float(sumDuration(s.cases)) }},
		{name: "enclosingBlockNames", write: func(e *enc, _ suite, _ *tree) { e.b = append(e.b, "[]"...) }},
		{name: "enclosingBlocks", write: func(e *enc, _ suite, _ *tree) { e.b = append(e.b, "[]"...) }},
		nullProp("id"),
		{name: "name", write: func(e *enc, s suite, _ *tree) { e.str(s.name) }},
		nullProp("nodeId"),
		nullProp("stderr"),
		nullProp("stdout"),
		nullProp("timestamp"),
	}}
	sc.testResult = &objType[*TestReport]{class: fixed[*TestReport]("hudson.tasks.junit.TestResult"), props: []prop[*TestReport]{
		{name: "testActions", write: func(e *enc, _ *TestReport, _ *tree) { e.b = append(e.b, "[]"...) }},
		{name: "duration", write: func(e *enc, r *TestReport, _ *tree) { e.float(sumDuration(casePtrs(r))) }},
		{name: "empty", write: func(e *enc, r *TestReport, _ *tree) { e.boolean(len(r.Cases) == 0) }},
		{name: "failCount", write: func(e *enc, r *TestReport, _ *tree) { e.int(int64(countTests(r).fail)) }},
		{name: "passCount", write: func(e *enc, r *TestReport, _ *tree) { e.int(int64(countTests(r).pass)) }},
		{name: "skipCount", write: func(e *enc, r *TestReport, _ *tree) { e.int(int64(countTests(r).skip)) }},
		{name: "suites", write: func(e *enc, r *TestReport, t *tree) {
			writeArray(e, suites(r), t, func(e *enc, s suite) { writeObject(e, sc.suite, s, t) })
		}},
	}}

	// Aggregated reports (hudson.tasks.test.AggregatedTestResultAction, as
	// hudson.matrix.MatrixTestResult or
	// hudson.maven.reporters.SurefireAggregatedReport): the action is the
	// testReport URL's target. AbstractTestResultAction exports failCount,
	// skipCount, totalCount and urlName (no passCount);
	// AggregatedTestResultAction adds childReports, each a ChildReport of
	// the child run ("child") and its TestResult ("result").
	sc.childRun = &objType[childRef]{
		class: func(c childRef) string {
			if c.agg.Class == classMavenAggregated {
				return "hudson.maven.MavenBuild"
			}
			return "hudson.matrix.MatrixRun"
		},
		props: []prop[childRef]{
			{name: "number", write: func(e *enc, c childRef, _ *tree) { e.int(int64(c.build.number)) }},
			{name: "url", write: func(e *enc, c childRef, _ *tree) {
				// Util.rawEncode keeps '=' and ',' of a matrix combination.
				e.url(c.build.job.urlPath + url.PathEscape(c.child.Name) + "/" + strconv.Itoa(c.build.number) + "/")
			}},
		},
	}
	sc.childReport = &objType[childRef]{props: []prop[childRef]{
		{name: "child", write: func(e *enc, c childRef, t *tree) { writeObject(e, sc.childRun, c, t) }},
		{name: "result", write: func(e *enc, c childRef, t *tree) {
			writeObject(e, sc.testResult, &TestReport{Cases: c.child.Cases}, t)
		}},
	}}
	sc.aggregated = &objType[testAction]{
		class: func(a testAction) string { return testActionClass(a.report) },
		props: []prop[testAction]{
			{name: "failCount", write: func(e *enc, a testAction, _ *tree) { e.int(int64(reportCounts(a.report).fail)) }},
			{name: "skipCount", write: func(e *enc, a testAction, _ *tree) { e.int(int64(reportCounts(a.report).skip)) }},
			{name: "totalCount", write: func(e *enc, a testAction, _ *tree) { e.int(int64(reportCounts(a.report).total())) }},
			{name: "urlName", write: func(e *enc, _ testAction, _ *tree) { e.str("testReport") }},
			{name: "childReports", write: func(e *enc, a testAction, t *tree) {
				refs := make([]childRef, len(a.report.Children))
				for i := range a.report.Children {
					refs[i] = childRef{build: a.build, agg: a.report, child: &a.report.Children[i]}
				}
				writeArray(e, refs, t, func(e *enc, c childRef) { writeObject(e, sc.childReport, c, t) })
			}},
		},
	}

	sc.crumb = &objType[crumbInfo]{class: fixed[crumbInfo]("hudson.security.csrf.DefaultCrumbIssuer"), props: []prop[crumbInfo]{
		{name: "crumb", write: func(e *enc, c crumbInfo, _ *tree) { e.str(c.crumb) }},
		{name: "crumbRequestField", write: func(e *enc, _ crumbInfo, _ *tree) { e.str(crumbField) }},
	}}
	sc.computers = newComputerSchema(sc)
	return sc
}

func concat[T any](lists ...[]T) []T {
	var out []T
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// userProps are the user properties a stock Jenkins exports.
func userProps() []userProp {
	return []userProp{
		{class: "jenkins.security.ApiTokenProperty"},
		{class: "com.cloudbees.plugins.credentials.UserCredentialsProvider$UserCredentialsProperty"},
		{class: "hudson.model.MyViewsProperty"},
		{class: "hudson.model.PaneStatusProperties"},
		{class: "jenkins.security.seed.UserSeedProperty"},
		{class: "hudson.search.UserSearchProperty", insensitiveSearch: true},
		{class: "hudson.model.TimeZoneProperty"},
		{class: "hudson.security.HudsonPrivateSecurityRealm$Details"},
		{class: "jenkins.security.LastGrantedAuthoritiesProperty"},
	}
}

// writeItem writes a root, folder or job with the type its class calls for.
func writeItem(e *enc, it *item, t *tree) {
	switch {
	case it.parent == nil:
		writeObject(e, e.sc.root, it, t)
	case it.folder:
		writeObject(e, e.sc.folder, it, t)
	case it.spec.Class == ClassWorkflowJob:
		writeObject(e, e.sc.workflow, it, t)
	default:
		writeObject(e, e.sc.freestyle, it, t)
	}
}

// writeChildren writes the "jobs" of a folder or the root: the children the
// user can see, in the order of Jenkins's item maps (case-insensitive at the
// top level, by exact name in folders, see lookup);
// the range counts visible children only.
func writeChildren(e *enc, f *item, t *tree) {
	parent := e.perm
	e.b = append(e.b, '[')
	n, i := 0, 0
	for _, c := range f.sortedKids() {
		p := e.rc.childPerm(parent, c)
		if p&pRead == 0 {
			continue
		}
		in, more := t.inRange(i)
		if !more {
			break
		}
		i++
		if !in {
			continue
		}
		if n > 0 {
			e.b = append(e.b, ',')
		}
		n++
		e.perm = p
		writeItem(e, c, t)
	}
	e.perm = parent
	e.b = append(e.b, ']')
}

func isUserCause(c cause) bool { return c.userID != "" && c.upstream == nil }

func valueClass(typ string) string {
	switch typ {
	case "boolean":
		return "hudson.model.BooleanParameterValue"
	case "text":
		return "hudson.model.TextParameterValue"
	case "password":
		return "hudson.model.PasswordParameterValue"
	case "file":
		return "hudson.model.FileParameterValue"
	}
	return "hudson.model.StringParameterValue" // string and choice
}

func defType(typ string) string {
	switch typ {
	case "boolean":
		return "BooleanParameterDefinition"
	case "text":
		return "TextParameterDefinition"
	case "password":
		return "PasswordParameterDefinition"
	case "choice":
		return "ChoiceParameterDefinition"
	case "file":
		return "FileParameterDefinition"
	}
	return "StringParameterDefinition"
}

func jobActions(j *item) []action {
	var as []action
	if len(j.spec.Params) > 0 {
		as = append(as, action{kind: aParamsDef, class: "hudson.model.ParametersDefinitionProperty", job: j})
	}
	return append(as,
		action{}, // actions that are not exported beans are written as {}
		action{class: "org.jenkinsci.plugins.displayurlapi.actions.JobDisplayAction"},
		action{class: "com.cloudbees.plugins.credentials.ViewCredentialsAction"},
	)
}

func folderActions(*item) []action {
	return []action{{}, {}, {class: "com.cloudbees.plugins.credentials.ViewCredentialsAction"}}
}

func buildActions(b *build) []action {
	var as []action
	if b.params != nil {
		as = append(as, action{kind: aParams, class: "hudson.model.ParametersAction", params: b.params})
	}
	as = append(as, action{kind: aCauses, class: "hudson.model.CauseAction", causes: b.causes})
	if r := b.testReport(); r != nil {
		as = append(as, action{kind: aTestResult, class: testActionClass(r), tests: r})
	}
	as = append(as, scmActions(b)...)
	as = append(as, action{}, action{class: "org.jenkinsci.plugins.displayurlapi.actions.RunDisplayAction"})
	if a, ok := inputActionOf(b); ok {
		as = append(as, a)
	}
	if b.job.spec.Class == ClassWorkflowJob {
		as = append(as, action{class: "org.jenkinsci.plugins.workflow.job.views.FlowGraphAction"})
	}
	return as
}

func queueActions(q *queueItem) []action {
	var as []action
	if q.params != nil {
		as = append(as, action{kind: aParams, class: "hudson.model.ParametersAction", params: q.params})
	}
	return append(as, action{kind: aCauses, class: "hudson.model.CauseAction", causes: q.causes})
}

// paramsString is Queue.Item.getParams: "\nname=value" per parameter,
// passwords masked as ParameterValue.getShortDescription does.
func paramsString(ps []paramValue) string {
	var b strings.Builder
	for _, p := range ps {
		b.WriteByte('\n')
		if p.typ == "file" {
			// FileParameterValue.getShortDescription: name=originalFileName.
			b.WriteString(p.name + "=" + fmt.Sprint(p.value))
			continue
		}
		b.WriteString(p.name)
		b.WriteByte('=')
		switch v := p.value.(type) {
		case bool:
			b.WriteString(strconv.FormatBool(v))
		case string:
			if p.typ == "password" {
				b.WriteString("****")
			} else {
				b.WriteString(v)
			}
		}
	}
	return b.String()
}

func fullDisplayName(it *item) string {
	if it.parent == nil || it.parent.parent == nil {
		return it.name
	}
	return fullDisplayName(it.parent) + " \u00bb " + it.name
}

func buildPath(b *build) string { return b.job.urlPath + strconv.Itoa(b.number) + "/" }

func userKey(id string) string {
	// Jenkins's default IdStrategy is case-insensitive and URLs use the
	// lower-cased id.
	return escapePathSegment(strings.ToLower(id))
}

// newestFirst returns up to limit builds (all when limit < 0), newest first.
func newestFirst(bs []*build, limit int) []*build {
	n := len(bs)
	if limit >= 0 && n > limit {
		n = limit
	}
	out := make([]*build, n)
	for i := range out {
		out[i] = bs[len(bs)-1-i]
	}
	return out
}

func neighbour(b *build, dir int) *build {
	bs := b.job.builds
	for i, x := range bs {
		if x == b {
			if j := i + dir; j >= 0 && j < len(bs) {
				return bs[j]
			}
			return nil
		}
	}
	return nil
}

// permalink resolves Jenkins's permalinks (and firstBuild); nil if none.
func permalink(j *item, name string) *build {
	bs := j.builds
	if name == "firstBuild" {
		if len(bs) == 0 {
			return nil
		}
		return bs[0]
	}
	var match func(b *build) bool
	switch name {
	case "lastBuild":
		match = func(*build) bool { return true }
	case "lastCompletedBuild":
		match = func(b *build) bool { return !b.building }
	case "lastSuccessfulBuild":
		match = func(b *build) bool { return !b.building && (b.result == "SUCCESS" || b.result == "UNSTABLE") }
	case "lastStableBuild":
		match = func(b *build) bool { return !b.building && b.result == "SUCCESS" }
	case "lastFailedBuild":
		match = func(b *build) bool { return !b.building && b.result == "FAILURE" }
	case "lastUnstableBuild":
		match = func(b *build) bool { return !b.building && b.result == "UNSTABLE" }
	case "lastUnsuccessfulBuild":
		match = func(b *build) bool { return !b.building && b.result != "SUCCESS" }
	default:
		return nil
	}
	for i := len(bs) - 1; i >= 0; i-- {
		if match(bs[i]) {
			return bs[i]
		}
	}
	return nil
}

func resultColor(r string) string {
	switch r {
	case "SUCCESS":
		return "blue"
	case "UNSTABLE":
		return "yellow"
	case "FAILURE":
		return "red"
	case "ABORTED":
		return "aborted"
	}
	return "notbuilt"
}

// jobColor is Job.getIconColor: disabled, else the newest finished build's
// color, animated while the newest build runs.
func jobColor(j *item) string {
	if j.spec.Disabled {
		return "disabled"
	}
	bs := j.builds
	if len(bs) == 0 {
		return "notbuilt"
	}
	base := "notbuilt"
	for i := len(bs) - 1; i >= 0; i-- {
		if !bs[i].building {
			base = resultColor(bs[i].result)
			break
		}
	}
	if bs[len(bs)-1].building {
		return base + "_anime"
	}
	return base
}

// jobHealth is Job.getBuildStabilityHealthReport over the last five
// conclusive builds.
func jobHealth(j *item) []health {
	total, failed := 0, 0
	for i := len(j.builds) - 1; i >= 0 && total < 5; i-- {
		b := j.builds[i]
		if b.building {
			continue
		}
		switch b.result {
		case "SUCCESS", "UNSTABLE":
			total++
		case "FAILURE":
			total++
			failed++
		}
	}
	if total == 0 {
		return []health{}
	}
	var desc string
	switch {
	case failed == 0:
		desc = "No recent builds failed."
	case failed == total:
		desc = "All recent builds failed."
	default:
		desc = strconv.Itoa(failed) + " out of the last " + strconv.Itoa(total) + " builds failed."
	}
	return []health{{score: 100 * (total - failed) / total, desc: "Build stability: " + desc}}
}

// folderHealth reports the worst health of the jobs the user can see below
// f, the way the Folder plugin's WorstChildHealthMetric does.
func folderHealth(e *enc, f *item) []health {
	var worst *health
	var worstName string
	var walk func(f *item, p perm)
	walk = func(f *item, p perm) {
		for _, c := range f.sortedKids() {
			cp := e.rc.childPerm(p, c)
			if cp&pRead == 0 {
				continue
			}
			if c.folder {
				walk(c, cp)
				continue
			}
			for _, h := range jobHealth(c) {
				if worst == nil || h.score < worst.score {
					h := h
					worst, worstName = &h, c.fullName
				}
			}
		}
	}
	walk(f, e.perm)
	if worst == nil {
		return []health{}
	}
	return []health{{score: worst.score, desc: "Worst health: " + worstName + ": " + worst.desc}}
}

func healthIcon(score int) string {
	switch {
	case score <= 20:
		return "health-00to19"
	case score <= 40:
		return "health-20to39"
	case score <= 60:
		return "health-40to59"
	case score <= 80:
		return "health-60to79"
	}
	return "health-80plus"
}

// estimatedDuration is Job.getEstimatedDuration: the mean of the last
// three successful (or unstable) builds, padded with other completed
// builds; -1 without history.
func estimatedDuration(j *item) int64 {
	var good, other []*build
	for i := len(j.builds) - 1; i >= 0 && len(good) < 3; i-- {
		b := j.builds[i]
		if b.building {
			continue
		}
		if b.result == "SUCCESS" || b.result == "UNSTABLE" {
			good = append(good, b)
		} else if len(other) < 3 {
			other = append(other, b)
		}
	}
	for len(good) < 3 && len(other) > 0 {
		good, other = append(good, other[0]), other[1:]
	}
	if len(good) == 0 {
		return -1
	}
	var sum time.Duration
	for _, b := range good {
		sum += b.duration
	}
	return (sum / time.Duration(len(good))).Milliseconds()
}

// progress is Executor.getProgress: percent of the estimate, -1 if none.
func progress(b *build, now time.Time) int {
	est := estimatedDuration(b.job)
	if est <= 0 {
		return -1
	}
	p := int(now.Sub(b.start).Milliseconds() * 100 / est)
	return min(max(p, 0), 99)
}

// isStuck is BuildableItem.isStuck.
func isStuck(q *queueItem, now time.Time) bool {
	if q.state != qBuildable {
		return false
	}
	elapsed := now.Sub(q.buildableStart)
	if d := estimatedDuration(q.job); d >= 0 {
		return elapsed.Milliseconds() > max(d, 60000)*10
	}
	return elapsed > 24*time.Hour
}

type testCounts struct{ pass, fail, skip int }

func (c testCounts) total() int { return c.pass + c.fail + c.skip }

func failing(status string) bool { return status == "FAILED" || status == "REGRESSION" }

const (
	classMatrixAggregated = "hudson.matrix.MatrixTestResult"
	classMavenAggregated  = "hudson.maven.reporters.SurefireAggregatedReport"
)

// testActionClass is the class of a build's test report action.
func testActionClass(r *TestReport) string {
	switch {
	case len(r.Children) == 0:
		return "hudson.tasks.junit.TestResultAction"
	case r.Class != "":
		return r.Class
	}
	return classMatrixAggregated
}

// reportCounts counts a report, adding up the children of an aggregated
// one as AggregatedTestResultAction.update does.
func reportCounts(r *TestReport) testCounts {
	if len(r.Children) == 0 {
		return countTests(r)
	}
	var sum testCounts
	for _, c := range r.Children {
		n := countTests(&TestReport{Cases: c.Cases})
		sum.pass += n.pass
		sum.fail += n.fail
		sum.skip += n.skip
	}
	return sum
}

// caseStatus is what CaseResult.getStatus reports for a case: since junit
// 1363 only PASSED, FAILED or SKIPPED (REGRESSION and FIXED became
// getCondition, which is not exported); older plugins report all five.
func (s *Server) caseStatus(st string) string {
	if s.legacyJUnit {
		return st
	}
	switch st {
	case "REGRESSION":
		return "FAILED"
	case "FIXED":
		return "PASSED"
	}
	return st
}

func countTests(r *TestReport) testCounts {
	var c testCounts
	for _, tc := range r.Cases {
		switch {
		case failing(tc.Status):
			c.fail++
		case tc.Status == "SKIPPED":
			c.skip++
		default:
			c.pass++
		}
	}
	return c
}

func casePtrs(r *TestReport) []*TestCase {
	out := make([]*TestCase, len(r.Cases))
	for i := range r.Cases {
		out[i] = &r.Cases[i]
	}
	return out
}

func sumDuration(cs []*TestCase) float64 {
	var d float64
	for _, c := range cs {
		d += c.Duration
	}
	return d
}

// suites groups the cases by suite, in order of first appearance.
func suites(r *TestReport) []suite {
	var out []suite
	idx := map[string]int{}
	for i := range r.Cases {
		c := &r.Cases[i]
		name := c.Suite
		if name == "" {
			name = c.Class
		}
		k, ok := idx[name]
		if !ok {
			k = len(out)
			idx[name] = k
			out = append(out, suite{name: name})
		}
		out[k].cases = append(out[k].cases, c)
	}
	return out
}

func stackTrace(c *TestCase) string {
	msg := c.ErrorDetails
	if msg == "" {
		msg = "expected success"
	}
	return "java.lang.AssertionError: " + msg + "\n\tat " + c.Class + "." + c.Name + "(" + lastDot(c.Class) + ".java:42)\n"
}

func lastDot(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}
