package jenkinstest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"strconv"
	"strings"
)

// Console notes, as Jenkins stores them in a build's log.
//
// Jenkins: core/src/main/java/hudson/console/ConsoleNote.java. A note is
// PREAMBLE ("\x1b[8mha:"), then base64 of: int -len(mac), the HMAC of the
// payload, int len(payload), the payload (a gzipped serialized Java
// object), then POSTAMBLE ("\x1b[0m"); see ConsoleNote.encodeToBytes.
const (
	notePreamble  = "\x1b[8mha:"
	notePostamble = "\x1b[0m"
)

// noteKey signs the simulator's notes, as ConsoleNote.MAC (an
// HMACConfidentialKey) signs Jenkins's. Nothing checks it: it only gives
// the notes Jenkins's shape and size.
var noteKey = []byte("jenkinstest ConsoleNote.MAC")

// EncodeNote returns a console note as ConsoleNote.encodeToBytes writes it,
// for a note of the given Java class carrying the given fields. The bytes
// are deterministic (no gzip timestamp). A hyperlink note to a user is
// about 200 bytes, like Jenkins's.
func EncodeNote(class string, fields ...string) string {
	// A Java serialization stream: STREAM_MAGIC, STREAM_VERSION,
	// TC_OBJECT, TC_CLASSDESC, the class name, a serialVersionUID, then
	// the fields as TC_STRINGs. Close enough in shape and size; Butler
	// never decodes it.
	var ser bytes.Buffer
	ser.Write([]byte{0xac, 0xed, 0x00, 0x05, 0x73, 0x72})
	writeUTF(&ser, class)
	ser.Write([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x00, byte(len(fields))})
	for i := range fields {
		ser.Write([]byte{'L'})
		writeUTF(&ser, "f"+strconv.Itoa(i))
		ser.Write([]byte{0x74})
		writeUTF(&ser, "Ljava/lang/String;")
	}
	ser.Write([]byte{0x78, 0x72})
	writeUTF(&ser, "hudson.console.ConsoleNote")
	ser.Write([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x02, 0x00, 0x00, 0x78, 0x70})
	for _, f := range fields {
		ser.WriteByte(0x74)
		writeUTF(&ser, f)
	}
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
	_, _ = zw.Write(ser.Bytes())
	_ = zw.Close()
	mac := hmac.New(sha256.New, noteKey)
	mac.Write(gz.Bytes())
	sum := mac.Sum(nil)
	var raw bytes.Buffer
	_ = binary.Write(&raw, binary.BigEndian, int32(-len(sum)))
	raw.Write(sum)
	_ = binary.Write(&raw, binary.BigEndian, int32(gz.Len()))
	raw.Write(gz.Bytes())
	return notePreamble + base64.StdEncoding.EncodeToString(raw.Bytes()) + notePostamble
}

func writeUTF(b *bytes.Buffer, s string) {
	_ = binary.Write(b, binary.BigEndian, uint16(len(s)))
	b.WriteString(s)
}

// HyperlinkNote is ModelHyperlinkNote.encodeTo(url, text): the note, then
// the text it links (which stays visible).
//
// Jenkins: core/src/main/java/hudson/console/HyperlinkNote.java, encodeTo;
// ModelHyperlinkNote.java, encodeTo(User).
func HyperlinkNote(url, text string) string {
	return EncodeNote("hudson.console.ModelHyperlinkNote", url, strconv.Itoa(len(text))) + text
}

// pipelineNote is the hidden note workflow-job writes before every
// "[Pipeline] ..." line (NewNodeConsoleNote, written by
// WorkflowRun.GraphL / logNodeMessage in jenkinsci/workflow-job).
func pipelineNote(id int) string {
	return EncodeNote("org.jenkinsci.plugins.workflow.job.console.NewNodeConsoleNote", strconv.Itoa(id), strconv.Itoa(id-1))
}

// withNotes adds to generated console lines the notes Jenkins writes with
// them: a NewNodeConsoleNote before each "[Pipeline]" line and a
// hyperlink to the agent in "Running on ...".
func withNotes(lines []string) []string {
	out := make([]string, len(lines))
	id := 2
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "[Pipeline] "):
			id++
			out[i] = pipelineNote(id) + l
		case strings.HasPrefix(l, "Running on Jenkins in "):
			out[i] = "Running on " + HyperlinkNote("/computer/(built-in)/", "Jenkins") + strings.TrimPrefix(l, "Running on Jenkins")
		default:
			out[i] = l
		}
	}
	return out
}

// stripNotes is PlainTextConsoleOutputStream.eol for one line: each note
// (from PREAMBLE to the POSTAMBLE that ends it) is removed. The
// simulator's notes are well formed, so ConsoleNote.skip consumes exactly
// PREAMBLE..POSTAMBLE; a PREAMBLE without a POSTAMBLE in the line is left
// as it is.
//
// Jenkins: core/src/main/java/hudson/console/PlainTextConsoleOutputStream.java, eol;
// ConsoleNote.java, findPreamble and skip.
func stripNotes(dst, line []byte) []byte {
	for {
		i := bytes.Index(line, []byte(notePreamble))
		if i < 0 {
			return append(dst, line...)
		}
		e := bytes.Index(line[i+len(notePreamble):], []byte(notePostamble))
		if e < 0 {
			return append(dst, line...)
		}
		dst = append(dst, line[:i]...)
		line = line[i+len(notePreamble)+e+len(notePostamble):]
	}
}

// plainTextReader is a PlainTextConsoleOutputStream over r: it reads r a
// line at a time (a line ends at LF, or at a CR not followed by LF: see
// LineTransformationOutputStream.write) and returns each line with its
// notes removed. With keepLast false the last line is dropped when it has
// no end, as LargeText.writeLogTo leaves it in the stream's buffer (it
// flushes, but never closes or forceEol()s it); Run.doConsoleText closes
// the stream, so its last line is kept.
//
// Jenkins: core/src/main/java/hudson/console/LineTransformationOutputStream.java.
type plainTextReader struct {
	br       *bufio.Reader
	keepLast bool
	buf      []byte // p.out's storage
	out      []byte
	line     []byte
	done     bool
}

func newPlainTextReader(r io.Reader, keepLast bool) *plainTextReader {
	return &plainTextReader{br: bufio.NewReaderSize(r, 64<<10), keepLast: keepLast}
}

func (p *plainTextReader) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.done {
			return 0, io.EOF
		}
		if err := p.nextLine(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

// nextLine reads the next lines into p.out: up to an LF, each CR not
// followed by LF ending a line of its own.
func (p *plainTextReader) nextLine() error {
	if len(p.line) == 0 {
		// Fast path: whole lines without ESC have no notes to remove and
		// pass as they are.
		if p.br.Buffered() == 0 {
			_, _ = p.br.Peek(1)
		}
		data, _ := p.br.Peek(p.br.Buffered())
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 && bytes.IndexByte(data[:i+1], 0x1b) < 0 {
			p.buf = append(p.buf[:0], data[:i+1]...)
			p.out = p.buf
			_, _ = p.br.Discard(i + 1)
			return nil
		}
	}
	frag, err := p.br.ReadSlice('\n')
	switch err {
	case nil, bufio.ErrBufferFull:
	case io.EOF:
		p.done = true
	default:
		return err
	}
	p.line = append(p.line, frag...)
	if err == bufio.ErrBufferFull {
		return nil // the line goes on
	}
	line := p.line
	if p.done && len(line) > 0 && !p.keepLast {
		// The unfinished last line stays in the stream's buffer, but the
		// lines its CRs ended were written.
		// A CR as the last byte still waits for the next one.
		held := line
		if held[len(held)-1] == '\r' {
			held = held[:len(held)-1]
		}
		line = line[:bytes.LastIndexByte(held, '\r')+1]
	}
	out := p.buf[:0]
	for len(line) > 0 {
		i := bytes.IndexByte(line, '\r')
		if i < 0 || i == len(line)-1 || line[i+1] == '\n' && i == len(line)-2 {
			out = stripNotes(out, line)
			break
		}
		out = stripNotes(out, line[:i+1])
		line = line[i+1:]
	}
	p.buf, p.out = out, out
	p.line = p.line[:0]
	return nil
}

// lineEndReader is Stapler's LineEndNormalizingWriter over r: every LF not
// preceded by CR becomes CR LF.
//
// Stapler: core/src/main/java/org/kohsuke/stapler/framework/io/LineEndNormalizingWriter.java, write.
type lineEndReader struct {
	r      io.Reader
	seenCR bool
	in     []byte
	buf    []byte // l.out's storage
	out    []byte
}

func newLineEndReader(r io.Reader) *lineEndReader {
	return &lineEndReader{r: r, in: make([]byte, 32<<10)}
}

func (l *lineEndReader) Read(b []byte) (int, error) {
	for len(l.out) == 0 {
		n, err := l.r.Read(l.in)
		in, out := l.in[:n], l.buf[:0]
		for len(in) > 0 {
			i := bytes.IndexByte(in, '\n')
			if i < 0 {
				out = append(out, in...)
				l.seenCR = in[len(in)-1] == '\r'
				break
			}
			out = append(out, in[:i]...)
			if !(i > 0 && in[i-1] == '\r' || i == 0 && l.seenCR) {
				out = append(out, '\r')
			}
			out = append(out, '\n')
			l.seenCR = false
			in = in[i+1:]
		}
		l.buf, l.out = out, out
		if len(l.out) == 0 && err != nil {
			return 0, err
		}
	}
	n := copy(b, l.out)
	l.out = l.out[n:]
	return n, nil
}

// normalizeLineEnds is lineEndReader over a whole byte slice.
func normalizeLineEnds(b []byte) []byte {
	out, _ := io.ReadAll(newLineEndReader(bytes.NewReader(b)))
	return out
}

// writtenEnd is where LargeText.writeLogTo stops in a log that is still
// being written: after the last line end (CR or LF) it reaches, and after
// at most maxLinesRead of them (TailMark.moveToNextLine counts a CR and an
// LF each as a line end).
//
// Stapler: core/src/main/java/org/kohsuke/stapler/framework/io/LargeText.java,
// writeLogUncounted (the !completed branch) and MAX_LINES_READ.
func writtenEnd(log []byte, start int64) int64 {
	end, lines := start, 0
	for i := start; i < int64(len(log)); i++ {
		if c := log[i]; c == '\r' || c == '\n' {
			if lines == maxLinesRead {
				break
			}
			lines++
			end = i + 1
		}
	}
	return end
}

// maxLinesRead is LargeText.MAX_LINES_READ.
const maxLinesRead = 10000

// rawProgressiveText reports whether Jenkins version v writes
// progressiveText without removing console notes: 2.509 and later
// (JENKINS-75081, jenkinsci/jenkins#10515, Stapler 1979: LargeText.
// doProgressTextImpl no longer calls the overridden writeLogTo unless
// delegateToWriteLogTo, which AnnotatedLargeText answers true for HTML
// only). A version that does not parse counts as new.
func rawProgressiveText(v string) bool {
	return !versionBefore(v, 2, 509)
}

// versionBefore reports whether the dotted version v is before
// major.minor.
func versionBefore(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma < major || ma == major && mi < minor
}
