package jenkinstest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ from the simulator's answers")

// goldenLog is the fixed build log of the golden files: a cause with a
// user's hyperlink note (as Run.execute writes it), a line with a note in
// the middle, a line Windows tools ended with CR LF, and a line with a
// lone CR (a progress bar).
func goldenLog() []string {
	return []string{
		"Running as " + HyperlinkNote("/user/bob", "Bob Jones") + " on agent-1",
		"windows tool output\r",
		"progress 10%\rprogress 100%",
		"done",
	}
}

// TestProgressiveText_Golden pins the exact bytes and headers of
// logText/progressiveText for a fixed log with console notes, finished and
// running, on both sides of 2.509, against golden files (go test -run
// TestProgressiveText_Golden -update rewrites them). Each golden was
// checked byte by byte against the source:
//
//   - Every LF is sent as CR LF, an LF already after a CR stays a single
//     CR LF, and a lone CR is kept: Stapler's LineEndNormalizingWriter
//     writes "\r\n" for an LF only when the previous char was not CR
//     (seenCR), and every other char as is (stapler
//     core/src/main/java/org/kohsuke/stapler/framework/io/LineEndNormalizingWriter.java,
//     write(char[], int, int)). LargeText.doProgressTextImpl writes all
//     text through it.
//   - Content-Type is "text/plain;charset=UTF-8" (LargeText.setContentTypeImpl),
//     status 200.
//   - X-More-Data: true only while the build runs (doProgressTextImpl: "if
//     (!completed)"), absent once it finished.
//   - start past the log's length restarts at 0 ("text rolled over").
//   - Before 2.509 (2.479.3): doProgressTextImpl calls writeLogTo, which
//     Jenkins's AnnotatedLargeText overrides to strip console notes
//     through a PlainTextConsoleOutputStream (core/src/main/java/hudson/console/AnnotatedLargeText.java,
//     writeLogTo(long, OutputStream)); the hyperlink note vanishes and only
//     its text "Bob Jones" stays. X-Text-Size is what LargeText.writeLogTo
//     returns: start plus the stored bytes it read (its
//     CountingOutputStream counts them before stripping), so it is the
//     next request's start, notes included. While running, the text stops
//     after the last complete line (writeLogTo reads up to the last line
//     end, and the stream is flushed, not closed), and X-Text-Size is that
//     line end.
//   - From 2.509 (2.509, CurrentLTS): for plain text AnnotatedLargeText's
//     delegateToWriteLogTo is false (it is isHtml), so doProgressTextImpl
//     copies the stored bytes raw, notes and all, through a
//     ThresholdingOutputStream of length-start bytes, and X-Text-Size is
//     source.length(), the log's length, also while the build runs
//     (Stapler 1979, JENKINS-75081).
func TestProgressiveText_Golden(t *testing.T) {
	t.Parallel()
	for _, version := range []string{DefaultVersion, "2.509", CurrentLTS} {
		for _, running := range []bool{false, true} {
			state := "finished"
			if running {
				state = "running"
			}
			name := fmt.Sprintf("%s-%s", version, state)
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				clk := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
				s := New(&Options{Version: version, Clock: clk, Executors: -1})
				s.AddUser("bob", "Bob Jones", "bob-token")
				s.Grant("bob", "", PermAdminister)
				if err := s.AddJob("j", JobSpec{}); err != nil {
					t.Fatal(err)
				}
				n, err := s.AddBuild("j", BuildSpec{UserID: "bob", Building: running, Timestamp: clk.Now().Add(-time.Minute), Duration: 90 * time.Second, Log: goldenLog()})
				if err != nil {
					t.Fatal(err)
				}
				base := "/job/j/" + strconv.Itoa(n) + "/logText/progressiveText"
				var out bytes.Buffer
				get := func(start string) string {
					w := call(t, s, "GET", base+"?start="+start, "bob")
					fmt.Fprintf(&out, "GET %s?start=%s\nstatus: %d\n", base, start, w.Code)
					for _, h := range []string{"Content-Type", "X-More-Data", "X-Text-Size"} {
						fmt.Fprintf(&out, "%s: %q\n", h, w.Header().Get(h))
					}
					fmt.Fprintf(&out, "body: %d bytes\n", w.Body.Len())
					for _, line := range strings.SplitAfter(w.Body.String(), "\n") {
						if line != "" {
							fmt.Fprintf(&out, "  %s\n", strconv.Quote(line))
						}
					}
					out.WriteString("\n")
					return w.Header().Get("X-Text-Size")
				}
				next := get("0")
				get(next)      // the follow-up request a poller sends
				get("5")       // from the middle of the first line
				get("1000000") // past the end: rolled over, from 0
				golden := filepath.Join("testdata", "progressive", name+".golden")
				if *update {
					if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (go test -run TestProgressiveText_Golden -update writes it)", err)
				}
				if !bytes.Equal(out.Bytes(), want) {
					t.Errorf("progressiveText differs from %s:\n--- got\n%s\n--- want\n%s", golden, out.Bytes(), want)
				}
			})
		}
	}
}

// TestProgressiveText_RecordedFixture compares the simulator's
// progressiveText with testdata/jenkins/progressive-text.txt. That file is
// the canned body of cdancy/jenkins-rest's mock web server
// (ProgressiveText tests), typed for the mock, not captured from a
// Jenkins: it proves the plain text's form (the cause first, "Finished:
// RESULT" last, no console notes, as a Jenkins before 2.509 sends it), but
// not Jenkins's line ends (the mock has LF where LineEndNormalizingWriter
// sends CR LF), nor any header (X-Text-Size, X-More-Data), nor the bytes
// from 2.509 on. The golden files above pin those from the source.
func TestProgressiveText_RecordedFixture(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(fixtureDir, "progressive-text.txt"))
	if err != nil {
		t.Fatal(err)
	}
	fix := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if bytes.Contains(raw, []byte("\x1b[8mha:")) || bytes.Contains(raw, []byte("\r")) {
		t.Fatalf("progressive-text.txt is no longer the mock's LF-only plain text: revisit this test")
	}
	s, _ := sample(t)
	w := call(t, s, "GET", "/job/frontend/job/web-app/1/logText/progressiveText?start=0", "admin")
	body := w.Body.String()
	if strings.Count(body, "\n") != strings.Count(body, "\r\n") {
		t.Errorf("simulator line ends are not all CR LF")
	}
	ours := strings.Split(strings.TrimSuffix(strings.ReplaceAll(body, "\r\n", "\n"), "\n"), "\n")
	if !strings.HasPrefix(fix[0], "Started by user ") || !strings.HasPrefix(ours[0], "Started by user ") {
		t.Errorf("first lines: fixture %q, simulator %q", fix[0], ours[0])
	}
	if fix[len(fix)-1] != "Finished: SUCCESS" || ours[len(ours)-1] != fix[len(fix)-1] {
		t.Errorf("last lines: fixture %q, simulator %q", fix[len(fix)-1], ours[len(ours)-1])
	}
	if strings.Contains(body, "\x1b[8mha:") {
		t.Errorf("%s strips notes in progressiveText, as the fixture has none", DefaultVersion)
	}
}
