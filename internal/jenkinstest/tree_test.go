package jenkinstest

import (
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// String renders a tree canonically (children sorted) for tests.
func (t *tree) String() string {
	var keys []string
	for k := range t.props {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		sub := t.props[k]
		b.WriteString(k)
		if len(sub.props) > 0 {
			b.WriteString("[" + sub.String() + "]")
		}
		if sub.lo != 0 || sub.hi != -1 {
			b.WriteString("{" + strconv.Itoa(sub.lo) + "," + strconv.Itoa(sub.hi) + "}")
		}
	}
	return b.String()
}

func TestParseTree(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"name", "name"},
		{"name,url,color", "color,name,url"},
		{"jobs[name,jobs[name,jobs[name]]]", "jobs[jobs[jobs[name],name],name]"},
		{"builds[number]{0,2}", "builds[number]{0,2}"},
		{"builds{3}", "builds{3,4}"},
		{"builds{3,}", "builds{3,-1}"},
		{"builds{,5}", "builds{0,5}"},
		{"a[b{1,2},c]{0,1},d", "a[b{1,2},c]{0,1},d"},
		{"a,a[b]", "a[b]"}, // the later one wins, as in Stapler
	} {
		got, err := parseTree(tc.in)
		if err != nil {
			t.Errorf("parseTree(%q): %v", tc.in, err)
			continue
		}
		if got.String() != tc.want {
			t.Errorf("parseTree(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a[", "a]", "a[b]]", ",a", "a,,b", "a{1", "a{x}", "a{-1}", "a[]", "a{1,2,3}"} {
		if _, err := parseTree(bad); !errors.Is(err, errTree) {
			t.Errorf("parseTree(%q) = %v, want errTree", bad, err)
		}
	}
}

func decode(t *testing.T, b []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return v
}

func TestTree_Rendering(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	const wa = "/job/frontend/job/web-app/api/json?tree="
	fb := "hudson.model.FreeStyleBuild"
	num := func(ns ...int) []any {
		out := []any{}
		for _, n := range ns {
			out = append(out, map[string]any{"_class": fb, "number": float64(n)})
		}
		return out
	}
	for _, tc := range []struct {
		name, path, user string
		want             string // JSON
	}{
		{"range M,N", wa + "builds[number]{0,2}", "bob", ""},
		{"range M,", wa + "builds[number]{4,}", "bob", ""},
		{"range ,N", wa + "builds[number]{,1}", "bob", ""},
		{"range N", wa + "builds[number]{1}", "bob", ""},
		{"range past the end", wa + "builds[number]{10,20}", "bob", ""},
		{"range without sub-tree", wa + "builds{0,1}", "bob", `{"_class":"hudson.model.FreeStyleProject","builds":[{"_class":"hudson.model.FreeStyleBuild"}]}`},
		{"unknown properties are absent", wa + "name,nope,color[zzz],lastBuild[nope]", "bob",
			`{"_class":"hudson.model.FreeStyleProject","color":"red","lastBuild":{"_class":"hudson.model.FreeStyleBuild"},"name":"web-app"}`},
		{"object without sub-tree keeps _class", "/api/json?tree=jobs", "carol",
			`{"_class":"hudson.model.Hudson","jobs":[{"_class":"com.cloudbees.hudson.plugins.folder.Folder"},{"_class":"com.cloudbees.hudson.plugins.folder.Folder"}]}`},
		{"range over visible children", "/api/json?tree=jobs[name]{1,}", "carol",
			`{"_class":"hudson.model.Hudson","jobs":[{"_class":"com.cloudbees.hudson.plugins.folder.Folder","name":"prod"}]}`},
		{"nested three levels", "/job/frontend/api/json?tree=jobs[name,jobs[name,color]]{3,4}", "bob",
			`{"_class":"com.cloudbees.hudson.plugins.folder.Folder","jobs":[{"_class":"org.jenkinsci.plugins.workflow.multibranch.WorkflowMultiBranchProject","name":"mobile","jobs":[{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowJob","name":"feature%2Flogin","color":"yellow"},{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowJob","name":"main","color":"blue"}]}]}`},
		{"deep build fields", "/job/backend/job/api/api/json?tree=lastFailedBuild[number,result,actions[parameters[name,value]{0,2}]]", "bob",
			`{"_class":"hudson.model.FreeStyleProject","lastFailedBuild":{"_class":"hudson.model.FreeStyleBuild","actions":[{"_class":"hudson.model.ParametersAction","parameters":[{"_class":"hudson.model.StringParameterValue","name":"BRANCH","value":"feature/rate-limits"},{"_class":"hudson.model.StringParameterValue","name":"ENV","value":"staging"}]},{"_class":"hudson.model.CauseAction"},{"_class":"hudson.tasks.junit.TestResultAction"},{},{"_class":"org.jenkinsci.plugins.displayurlapi.actions.RunDisplayAction"}],"number":3,"result":"FAILURE"}}`},
		{"parameter definitions", "/job/prod/job/deploy/api/json?tree=property[parameterDefinitions[name,type,choices,defaultParameterValue[value]]]", "bob",
			`{"_class":"hudson.model.FreeStyleProject","property":[{"_class":"hudson.model.ParametersDefinitionProperty","parameterDefinitions":[{"_class":"hudson.model.ChoiceParameterDefinition","defaultParameterValue":{"_class":"hudson.model.StringParameterValue","value":"eu-west"},"name":"TARGET","type":"ChoiceParameterDefinition","choices":["eu-west","us-east"]},{"_class":"hudson.model.BooleanParameterDefinition","defaultParameterValue":{"_class":"hudson.model.BooleanParameterValue","value":false},"name":"CANARY","type":"BooleanParameterDefinition"}]}]}`},
	} {
		w := call(t, s, "GET", tc.path, tc.user)
		if w.Code != 200 {
			t.Errorf("%s: %d %s", tc.name, w.Code, w.Body.String())
			continue
		}
		got := decode(t, w.Body.Bytes())
		var want any
		switch tc.name {
		case "range M,N":
			want = map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": num(6, 5)}
		case "range M,":
			want = map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": num(2, 1)}
		case "range ,N":
			want = map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": num(6)}
		case "range N":
			want = map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": num(5)}
		case "range past the end":
			want = map[string]any{"_class": "hudson.model.FreeStyleProject", "builds": num()}
		default:
			want = decode(t, []byte(tc.want))
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
}

func TestDefaultShapes_FolderListingsHaveNoColorForFolders(t *testing.T) {
	t.Parallel()
	s, _ := sample(t)
	root := getJSON(t, s, "/api/json", "admin")
	for _, j := range root["jobs"].([]any) {
		m := j.(map[string]any)
		keys := slices.Sorted(mapsKeys(m))
		if !slices.Equal(keys, []string{"_class", "name", "url"}) {
			t.Errorf("root listing entry %v", m)
		}
	}
	f := getJSON(t, s, "/job/frontend/api/json", "admin")
	for _, j := range f["jobs"].([]any) {
		m := j.(map[string]any)
		_, hasColor := m["color"]
		isFolder := strings.Contains(str(m, "_class"), "MultiBranch") || strings.Contains(str(m, "_class"), "Folder")
		if hasColor == isFolder {
			t.Errorf("listing entry %v: color present=%v for folder=%v", m, hasColor, isFolder)
		}
	}
}

func mapsKeys(m map[string]any) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestAppendEscaped(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x01\x1f\n\r\t", "uni é » 日本", "bad\xffutf8", "sep\u2028\u2029", "<html>&"} {
		b := append([]byte{'"'}, appendEscaped(nil, s)...)
		b = append(b, '"')
		var back string
		if err := json.Unmarshal(b, &back); err != nil {
			t.Errorf("%q -> %s: %v", s, b, err)
			continue
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if back != want {
			t.Errorf("%q round-trips to %q", s, back)
		}
	}
}
