package jenkins

import (
	"bytes"
	"strings"
	"testing"
)

// removeNotesRef is ConsoleNote.removeNotes(String), line by line: the
// reference the decoder must agree with.
func removeNotesRef(log string) string {
	lines := strings.SplitAfter(log, "\n")
	for i, line := range lines {
		for {
			idx := strings.Index(line, string(notePreamble))
			if idx < 0 {
				break
			}
			e := strings.Index(line[idx:], string(notePostamble))
			if e < 0 {
				break
			}
			line = line[:idx] + line[idx+e+len(notePostamble):]
		}
		lines[i] = line
	}
	return strings.Join(lines, "")
}

// wireFrom is progressiveText from Jenkins 2.509 on for a finished build:
// the stored log from start, each LF (never preceded by CR here) sent as
// CR LF.
func wireFrom(stored []byte, start int64) []byte {
	return bytes.ReplaceAll(stored[start:], []byte("\n"), []byte("\r\n"))
}

// pageThrough pages a stored log as ReadLog does, in pages of maxBytes,
// and returns the concatenated text.
func pageThrough(t testing.TB, stored []byte, maxBytes int) string {
	var out []byte
	a := &logAnswer{size: int64(len(stored)), raw: true}
	var start int64
	for i := 0; ; i++ {
		c := page(wireFrom(stored, start), true, a, start, maxBytes)
		if c.Next > c.Size || c.Next < start || len(c.Text) > maxBytes+4 {
			t.Fatalf("page from %d of %d: next %d, %d bytes", start, len(stored), c.Next, len(c.Text))
		}
		if c.Next == start && c.More() {
			t.Fatalf("page from %d of %d does not advance", start, len(stored))
		}
		out = append(out, c.Text...)
		start = c.Next
		if !c.More() {
			return string(out)
		}
	}
}

// A console note cut by a page end at every possible offset is held back
// whole: the concatenated pages are exactly the console text.
func TestPages_NoteCutAtEveryOffset(t *testing.T) {
	t.Parallel()
	note := "\x1b[8mha:AAAAWB+LCAAAAAAAAP9b85aBtbiIQTGjNKU4P08vOT+vOD8nVc83PyU1x6OyILUoJzMv2y+/JNU5PzevOD8nNVUvODlTryCnNDM5Q9+3NDk1PT8nJTWvOD8nVS8vPzUlNU/PQxESmCUQKAAAAA==\x1b[0m"
	stored := []byte("Started by user " + note + "Admin\n" + note + "[Pipeline] node\nplain größe\n" + "\x1b[8mha:not closed\n" + note)
	want := removeNotesRef(string(stored))
	for maxBytes := 1; maxBytes <= len(stored)+1; maxBytes++ {
		if got := pageThrough(t, stored, maxBytes); got != want {
			t.Fatalf("pages of %d: %q, want %q", maxBytes, got, want)
		}
	}
}

// FuzzConsolePages: for any stored log (LF line ends, any notes), paging
// through progressiveText's CR LF answer in pages of any size yields
// exactly ConsoleNote.removeNotes of the log.
func FuzzConsolePages(f *testing.F) {
	f.Add([]byte("Started by user \x1b[8mha:QUJD\x1b[0mAdmin\nok\n"), uint16(5))
	f.Add([]byte("\x1b[8mha:\x1b[8mha:x\x1b[0m\n\x1b[8m\n日本\n"), uint16(1))
	f.Fuzz(func(t *testing.T, stored []byte, size uint16) {
		stored = bytes.ReplaceAll(stored, []byte("\r"), nil)
		if len(stored) > 4096 {
			stored = stored[:4096]
		}
		maxBytes := int(size%512) + 1
		if got, want := pageThrough(t, stored, maxBytes), removeNotesRef(string(stored)); got != want {
			t.Fatalf("pages of %d: %q, want %q", maxBytes, got, want)
		}
	})
}
