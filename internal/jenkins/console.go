package jenkins

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Console notes: Jenkins stores hidden markup in build logs as
// notePreamble, base64, notePostamble (hudson.console.ConsoleNote). Since
// Jenkins 2.509 logText/progressiveText sends them raw; before, it
// removed them but still counted them in its offsets.
var (
	notePreamble  = []byte("\x1b[8mha:")
	notePostamble = []byte("\x1b[0m")
)

// consoleDecoder turns the body of logText/progressiveText into console
// text: console notes removed as ConsoleNote.removeNotes does (from the
// preamble to the next postamble), each CR LF (Stapler's
// LineEndNormalizingWriter sends every LF as CR LF) as LF. It counts the
// log's stored bytes it consumed: a CR LF counts 1 (the stored LF), a
// note its length.
//
// It never splits what it cannot yet judge: a note, or the start of a
// preamble, without its postamble, a CR that may be followed by LF, or an
// incomplete UTF-8 character at the end of what it was given is held back
// for the next page unless the body ended there (final).
type consoleDecoder struct {
	text   []byte
	stored int64 // stored bytes consumed
	used   int   // body bytes consumed
	// lines, when not nil, records where each line of text starts: the
	// text offset and the stored offset (relative to the page's start).
	lines *[]lineStart
}

type lineStart struct {
	text   int
	stored int64
}

// decode consumes body (which starts at a stored offset the caller
// knows) into d.text until the text would exceed maxText or body is used
// up. final says that nothing follows body (the log ended there). With
// lead, body may start inside a note (a page from an arbitrary offset):
// the note's rest, up to its postamble, is dropped.
func (d *consoleDecoder) decode(body []byte, maxText int, final, lead bool) {
	if lead {
		if n := noteTail(body); n > 0 {
			d.used, d.stored = n, int64(n)
		}
	}
	for d.used < len(body) {
		rest := body[d.used:]
		// The run of plain bytes up to the next CR or ESC.
		i := indexCRorESC(rest)
		if i < 0 {
			i = len(rest)
		}
		if i > 0 {
			room := maxText - len(d.text)
			if room <= 0 {
				return
			}
			chunk := rest[:i]
			if len(chunk) > room {
				chunk = trimToRune(chunk[:room])
			} else if !final && i == len(rest) {
				chunk = trimToRune(chunk)
			}
			if len(chunk) == 0 {
				if len(d.text) > 0 {
					return
				}
				// A page holds at least one character, even one longer
				// than maxText, so paging always advances; a byte that
				// cannot start a whole one (the log ends, or a CR or ESC
				// follows) goes alone.
				switch plain := rest[:i]; {
				case utf8.FullRune(plain):
					_, n := utf8.DecodeRune(plain)
					chunk = plain[:n]
				case final || i < len(rest):
					chunk = plain[:1]
				default:
					return
				}
			}
			d.emit(chunk)
			d.used += len(chunk)
			d.stored += int64(len(chunk))
			if len(chunk) < i {
				return
			}
			continue
		}
		switch rest[0] {
		case '\r':
			switch {
			case len(rest) >= 2 && rest[1] == '\n':
				// CR LF: the stored LF (LineEndNormalizingWriter added the
				// CR) or a stored CR LF; counted as the first.
				if len(d.text)+1 > maxText {
					return
				}
				d.emit([]byte{'\n'})
				d.used += 2
				d.stored++
			case len(rest) == 1 && !final:
				return // the LF may follow
			default:
				if len(d.text)+1 > maxText {
					return
				}
				d.emit(rest[:1])
				d.used++
				d.stored++
			}
		case 0x1b:
			n := noteLen(rest)
			switch {
			case n > 0:
				d.used += n
				d.stored += int64(n)
			case n < 0 && !final:
				return // an unfinished note: the next page has it whole
			default:
				if len(d.text)+1 > maxText {
					return
				}
				d.emit(rest[:1])
				d.used++
				d.stored++
			}
		}
	}
}

func (d *consoleDecoder) emit(b []byte) {
	if d.lines != nil {
		for i, c := range b {
			if c == '\n' {
				*d.lines = append(*d.lines, lineStart{text: len(d.text) + i + 1, stored: d.stored + int64(i) + 1})
			}
		}
	}
	d.text = append(d.text, b...)
}

func indexCRorESC(b []byte) int {
	for i, c := range b {
		if c == '\r' || c == 0x1b {
			return i
		}
	}
	return -1
}

// noteLen says what b, which starts with ESC, begins with: a whole console
// note (its length), possibly an unfinished one (-1: a preamble or its
// start, without a postamble before the line ends or b does), or not a
// note (0). A preamble whose line ends before a postamble is not a note
// (removeNotes leaves it), so a page never waits for it.
func noteLen(b []byte) int {
	if len(b) < len(notePreamble) {
		if bytes.HasPrefix(notePreamble, b) {
			return -1
		}
		return 0
	}
	if !bytes.HasPrefix(b, notePreamble) {
		return 0
	}
	rest := b[len(notePreamble):]
	if e := bytes.Index(rest, notePostamble); e >= 0 {
		if bytes.IndexAny(rest[:e], "\r\n") < 0 {
			return len(notePreamble) + e + len(notePostamble)
		}
		return 0
	}
	if bytes.IndexAny(rest, "\r\n") >= 0 {
		return 0
	}
	return -1
}

// noteTail is the length of the rest of a console note b starts inside
// of: the end of a preamble (at least its "ha:"), base64, then the
// postamble; 0 if b does not start so. It lets a page that starts inside
// a note (an offset not from next_start, or Jenkins before 2.509, whose
// offsets count notes it does not send) drop the note's rest.
func noteTail(b []byte) int {
	e := bytes.Index(b, notePostamble)
	if e <= 0 {
		return 0
	}
	head := b[:e]
	// A suffix of the preamble, then base64.
	for k := len(notePreamble) - 1; k >= 1; k-- {
		if bytes.HasPrefix(head, notePreamble[len(notePreamble)-k:]) {
			head = head[k:]
			break
		}
	}
	if len(head) < 4 || strings.Trim(string(head), base64Alphabet) != "" {
		return 0
	}
	return e + len(notePostamble)
}

const base64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="

// stripNotes removes the console notes from line as
// ConsoleNote.removeNotes does, appending the result to dst; a preamble
// without a postamble after it is left, except at the very end of a line
// cut short (cut), where it is dropped rather than shown half.
func stripNotes(dst, line []byte, cut bool) []byte {
	for {
		i := bytes.Index(line, notePreamble)
		if i < 0 {
			if cut {
				// A preamble's start at the cut.
				for k := min(len(notePreamble)-1, len(line)); k > 0; k-- {
					if bytes.HasSuffix(line, notePreamble[:k]) {
						return append(dst, line[:len(line)-k]...)
					}
				}
			}
			return append(dst, line...)
		}
		e := bytes.Index(line[i+len(notePreamble):], notePostamble)
		if e < 0 {
			if cut {
				return append(dst, line[:i]...)
			}
			return append(dst, line...)
		}
		dst = append(dst, line[:i]...)
		line = line[i+len(notePreamble)+e+len(notePostamble):]
	}
}

// rawNotes reports whether Jenkins version v (the X-Jenkins header)
// sends console notes raw in progressiveText: 2.509 and later
// (JENKINS-75081). Before, progressiveText strips them, and X-Text-Size is
// exactly the offset after the text sent, also while the build runs. An
// unknown version counts as new.
func rawNotes(v string) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return true
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return true
	}
	return ma > 2 || ma == 2 && mi >= 509
}
