package jenkins

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// consoleTextOf is what consoleStream makes of body, read in small
// pieces.
func consoleTextOf(t testing.TB, body []byte) []byte {
	s := &consoleStream{body: io.NopCloser(bytes.NewReader(body)), br: newBufReader(bytes.NewReader(body)), cancel: func() {}}
	var out []byte
	buf := make([]byte, 7)
	for {
		n, err := s.Read(buf)
		out = append(out, buf[:n]...)
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
}

func TestConsoleStream_RemovesNotesAndCRs(t *testing.T) {
	t.Parallel()
	note := "\x1b[8mha:AAAAWB+LCAAAAAAAAP9b85aBtbiIQTGjNKU4P08vOT+vOD8nVc8DzHWtSE4tKMnMz/PLL0ldFfXz5ev3AwCyJ0N6MAAAAA==\x1b[0m"
	body := "Started by user " + note + "Alice\r\n[Pipeline] " + note + "sh\r\n+ make\r\nno newline at the end"
	want := "Started by user Alice\n[Pipeline] sh\n+ make\nno newline at the end"
	if got := consoleTextOf(t, []byte(body)); string(got) != want {
		t.Errorf("console text %q, want %q", got, want)
	}
}

// FuzzConsoleStream: whatever Jenkins sends, the stream never shows a
// whole console note or a CR LF, and keeps every line that has neither
// as it is.
func FuzzConsoleStream(f *testing.F) {
	f.Add([]byte("a\r\nb\x1b[8mha:xyz\x1b[0mc\n"))
	f.Add([]byte("\x1b[8mha:unterminated\n\x1b[0m\r\r\n"))
	f.Add([]byte(strings.Repeat("x", 70<<10) + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		got := consoleTextOf(t, body)
		if bytes.Contains(got, []byte("\r\n")) && !bytes.Contains(body, []byte("\r\r\n")) {
			t.Errorf("a CR LF survived: %q", got)
		}
		for _, line := range bytes.Split(body, []byte("\n")) {
			if len(line) < 1<<10 && !bytes.ContainsAny(line, "\r\x1b") && len(line) > 0 && !bytes.Contains(got, line) {
				t.Errorf("plain line %q lost", line)
			}
		}
		if len(got) > len(body) {
			t.Errorf("the text grew: %d bytes from %d", len(got), len(body))
		}
	})
}

// FuzzParseBuildRecord: any answer decodes to bounded facts or an error,
// never a panic.
func FuzzParseBuildRecord(f *testing.F) {
	f.Add([]byte(`{"_class":"org.jenkinsci.plugins.workflow.job.WorkflowRun","number":3,"result":"FAILURE","actions":[{"causes":[{"_class":"hudson.model.Cause$UpstreamCause","upstreamProject":"platform/bom","upstreamBuild":212}]}],"changeSets":[{"kind":"git","items":[{"commitId":"abc","msg":"m","author":{"fullName":"A"},"paths":[{"editType":"edit","file":"f"}]}]}]}`))
	f.Add([]byte(`{"number":1,"changeSet":{"items":[{"id":"1","affectedPaths":["a","b","c"]}]}}`))
	f.Add([]byte(`{"number":-1}`))
	o := ChangesOptions{MaxCommits: 2, MaxPaths: 2}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ParseBuildRecord(data, o)
		if err != nil {
			return
		}
		if r.Number <= 0 || len(r.Upstream) > maxUpstreamCauses || len(r.Changes.Commits) > o.MaxCommits {
			t.Errorf("unbounded record: %+v", r)
		}
		for _, c := range r.Changes.Commits {
			if len(c.Paths) > o.MaxPaths {
				t.Errorf("commit with %d paths", len(c.Paths))
			}
		}
		for _, u := range r.Upstream {
			if u.Project == "" || u.Build <= 0 {
				t.Errorf("upstream cause %+v", u)
			}
		}
	})
}
