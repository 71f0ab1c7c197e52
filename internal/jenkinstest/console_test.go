package jenkinstest

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestRepeatConsole_ReadAt(t *testing.T) {
	t.Parallel()
	c := RepeatConsole([]byte("ab\n"), 4, []byte("end\n"))
	want := "ab\nab\nab\nab\nend\n"
	if c.Size() != int64(len(want)) {
		t.Fatalf("Size %d, want %d", c.Size(), len(want))
	}
	for off := range len(want) + 2 {
		for n := range len(want) + 2 {
			p := make([]byte, n)
			got, err := c.ReadAt(p, int64(off))
			exp := ""
			if off < len(want) {
				exp = want[off:min(off+n, len(want))]
			}
			if string(p[:got]) != exp {
				t.Fatalf("ReadAt(%d bytes, %d) = %q, want %q", n, off, p[:got], exp)
			}
			if got < n && !errors.Is(err, io.EOF) {
				t.Fatalf("ReadAt(%d bytes, %d): short read %d without EOF (%v)", n, off, got, err)
			}
		}
	}
	if _, err := c.ReadAt(make([]byte, 1), -1); err == nil {
		t.Error("negative offset accepted")
	}
	empty := RepeatConsole(nil, 5, nil)
	if empty.Size() != 0 {
		t.Errorf("empty console has size %d", empty.Size())
	}
}

// A build with a generated Console serves it from consoleText and
// progressiveText (with X-Text-Size and offsets) without storing it.
func TestAddBuild_GeneratedConsole(t *testing.T) {
	t.Parallel()
	s, _ := newTestServer(t, nil, map[string]JobSpec{"j": {}})
	text := strings.Repeat("line\n", 1000) + "Finished: SUCCESS\n"
	n, err := s.AddBuild("j", BuildSpec{Console: strings.NewReader(text), Log: []string{"ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, s, "GET", "/job/j/"+itoa(n)+"/consoleText", "bob").Body.String(); got != text {
		t.Errorf("consoleText: %d bytes, want the console's %d", len(got), len(text))
	}
	for _, tc := range []struct {
		start string
		want  string
	}{
		{"0", text}, {"5", text[5:]}, {itoa(len(text)), ""}, {itoa(len(text) + 1), text}, {"-3", text}, {"x", text},
	} {
		// LineEndNormalizingWriter: every LF is sent as CR LF.
		tc.want = strings.ReplaceAll(tc.want, "\n", "\r\n")
		w := call(t, s, "GET", "/job/j/"+itoa(n)+"/logText/progressiveText?start="+tc.start, "bob")
		if w.Code != 200 || w.Body.String() != tc.want || w.Header().Get("X-Text-Size") != itoa(len(text)) || w.Header().Get("X-More-Data") != "" {
			t.Errorf("progressiveText?start=%s: %d, %d bytes, X-Text-Size %q X-More-Data %q", tc.start, w.Code, w.Body.Len(),
				w.Header().Get("X-Text-Size"), w.Header().Get("X-More-Data"))
		}
	}
	if w := call(t, s, "HEAD", "/job/j/"+itoa(n)+"/consoleText", "bob"); w.Body.Len() != 0 {
		t.Errorf("HEAD has a body of %d bytes", w.Body.Len())
	}
	if _, err := s.AddBuild("j", BuildSpec{Building: true, Console: strings.NewReader("x\n")}); !errors.Is(err, ErrInvalidSpec) {
		t.Errorf("running build with a Console: %v, want ErrInvalidSpec", err)
	}
	// Builds without a Console are unchanged.
	m, err := s.AddBuild("j", BuildSpec{Log: []string{"x"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := call(t, s, "GET", "/job/j/"+itoa(m)+"/consoleText", "bob").Body.String(); got != "Started by timer\nx\nFinished: SUCCESS\n" {
		t.Errorf("stored console: %q", got)
	}
}

// Serving a 256 MiB generated console allocates far less than the log.
func TestAddBuild_GeneratedConsoleIsNotHeld(t *testing.T) {
	s, _ := newTestServer(t, nil, map[string]JobSpec{"j": {}})
	block := bytes.Repeat([]byte("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\n"), 1024)
	n, err := s.AddBuild("j", BuildSpec{Console: RepeatConsole(block, 4096, nil)})
	if err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	w := &countingWriter{}
	r := newRequest("GET", "/job/j/"+itoa(n)+"/logText/progressiveText?start=0", "bob")
	s.ServeHTTP(w, r)
	runtime.ReadMemStats(&after)
	// 256 MiB of 64-byte lines, each LF sent as CR LF.
	if want := int64(256<<20 + 4096*1024); w.n != want {
		t.Fatalf("served %d bytes, want %d", w.n, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 {
		t.Errorf("serving a 256 MiB generated console allocated %d MiB", alloc>>20)
	}
}

// countingWriter is a ResponseWriter that keeps only the body's length.
type countingWriter struct {
	h http.Header
	n int64
}

func (w *countingWriter) Header() http.Header {
	if w.h == nil {
		w.h = http.Header{}
	}
	return w.h
}
func (w *countingWriter) WriteHeader(int) {}
func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func newRequest(method, target, user string) *http.Request {
	r := httptest.NewRequest(method, "http://jenkins.test"+target, nil)
	r.SetBasicAuth(user, user+"-token")
	return r
}

// progressiveText as Stapler writes it, on both sides of 2.509: CR LF line
// ends; before 2.509 notes stripped but counted in X-Text-Size (and, while
// running, X-Text-Size is where the text stops); from 2.509 notes raw and
// X-Text-Size the log's length even when the text stops at the last line
// end. consoleText strips notes on every version and keeps LF.
func TestProgressiveText_BothSidesOf2509(t *testing.T) {
	t.Parallel()
	note := HyperlinkNote("/user/bob", "Bob Jones")
	stored := "Started by user " + note + "\nx\n"
	for _, tc := range []struct {
		version string
		body    string
	}{
		{"2.508", "Started by user Bob Jones\r\nx\r\n"},
		{"2.509", "Started by user " + note + "\r\nx\r\n"},
		{CurrentLTS, "Started by user " + note + "\r\nx\r\n"},
	} {
		clk := NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		s := New(&Options{Version: tc.version, Clock: clk, Executors: -1})
		s.AddUser("bob", "Bob Jones", "bob-token")
		s.Grant("bob", "", PermAdminister)
		if err := s.AddJob("j", JobSpec{Log: []string{"x"}}); err != nil {
			t.Fatal(err)
		}
		n, err := s.AddBuild("j", BuildSpec{UserID: "bob", Building: true, Timestamp: clk.Now(), Duration: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		clk.Advance(6 * time.Second) // "x" is printed at +5s
		w := call(t, s, "GET", "/job/j/"+itoa(n)+"/logText/progressiveText?start=0", "bob")
		if w.Body.String() != tc.body || w.Header().Get("X-Text-Size") != itoa(len(stored)) || w.Header().Get("X-More-Data") != "true" {
			t.Errorf("%s: %q X-Text-Size %s, want %q and %d", tc.version, w.Body.String(), w.Header().Get("X-Text-Size"), tc.body, len(stored))
		}
		if got := call(t, s, "GET", "/job/j/"+itoa(n)+"/consoleText", "bob").Body.String(); got != "Started by user Bob Jones\nx\n" {
			t.Errorf("%s: consoleText %q", tc.version, got)
		}
		// Jenkins's notes are about 200 bytes (ConsoleNote.encodeToBytes).
		if len(note) < 150 || len(note) > 300 {
			t.Errorf("a user's hyperlink note is %d bytes, want about 200", len(note))
		}
	}
}

// A running build's text stops after its last line end; from 2.509 on
// X-Text-Size still says the log's length.
func TestProgressiveText_RunningPartialLine(t *testing.T) {
	t.Parallel()
	log := []byte("a\nb\npart")
	if got := writtenEnd(log, 0); got != 4 {
		t.Errorf("writtenEnd = %d, want 4", got)
	}
	pre, _ := io.ReadAll(newLineEndReader(newPlainTextReader(bytes.NewReader(log), false)))
	if string(pre) != "a\r\nb\r\n" {
		t.Errorf("before 2.509 the unfinished line stays in the stream: %q", pre)
	}
	whole, _ := io.ReadAll(newPlainTextReader(bytes.NewReader([]byte("a\r\nb\rc\x1b[8mha:QQ==\x1b[0md")), true))
	if string(whole) != "a\r\nb\rcd" {
		t.Errorf("consoleText keeps the last line and line ends: %q", whole)
	}
}
