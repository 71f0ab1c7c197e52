package jenkins

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/butler-mcp/butler/internal/jobpath"
)

// LogChunk is a piece of a build's console text.
type LogChunk struct {
	Text []byte
	// Start is the byte offset Text begins at; Next the offset just after it.
	Start, Next int64
	// Size is the length of the whole log when it was read (X-Text-Size).
	Size int64
	// Running is true while the build still writes to the log
	// (X-More-Data).
	Running bool
}

// More reports whether text remains after Next or may still come.
func (l *LogChunk) More() bool { return l.Next < l.Size || l.Running }

// openLog requests the progressive console text from byte offset start.
// The caller reads the body as far as it likes and closes it.
func (c *Client) openLog(ctx context.Context, cred Credential, job jobpath.Path, number, start int64) (*http.Response, int64, bool, error) {
	op := "read log of " + buildName(job, number)
	resp, err := c.do(ctx, call{op: op, method: http.MethodGet, rel: buildRel(job, number) + "logText/progressiveText",
		query: url.Values{"start": {strconv.FormatInt(start, 10)}}, cred: cred})
	if err != nil {
		return nil, 0, false, err
	}
	size, err := strconv.ParseInt(resp.Header.Get("X-Text-Size"), 10, 64)
	if err != nil || size < 0 {
		drain(resp)
		return nil, 0, false, &Error{Op: op, Status: resp.StatusCode, Err: ErrUnavailable, Detail: "no X-Text-Size in the answer"}
	}
	return resp, size, resp.Header.Get("X-More-Data") == "true", nil
}

// ReadLog returns at most maxBytes of console text from byte offset start.
// Jenkins's progressive text always runs to the end of the log, so the
// client stops reading after maxBytes and cuts at the last complete UTF-8
// character. Offsets are Jenkins's (bytes of the stored log); for consoles
// with hidden console notes the text returned is shorter than Next-Start,
// and a page may repeat a little of the one before rather than lose any.
func (c *Client) ReadLog(ctx context.Context, cred Credential, job jobpath.Path, number, start int64, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, size, running, err := c.openLog(ctx, cred, job, number, start)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if start > size {
		// Jenkins restarts from 0 when start is past the end; Butler
		// answers with nothing instead, so paging never loops.
		return &LogChunk{Start: start, Next: start, Size: size, Running: running}, nil
	}
	buf, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
	if err != nil {
		return nil, transportError(ctx, "read log of "+buildName(job, number), err)
	}
	if len(buf) > maxBytes {
		buf = trimToRune(buf[:maxBytes])
	}
	next := start + int64(len(buf))
	if next > size {
		size = next
	}
	return &LogChunk{Text: buf, Start: start, Next: next, Size: size, Running: running}, nil
}

// trimToRune drops a partial UTF-8 sequence at the end of b.
func trimToRune(b []byte) []byte {
	for i := 1; i <= utf8.UTFMax && i <= len(b); i++ {
		if utf8.RuneStart(b[len(b)-i]) {
			if !utf8.FullRune(b[len(b)-i:]) {
				return b[:len(b)-i]
			}
			return b
		}
	}
	return b
}

// TailLog returns the last lines lines of the console text, in at most
// maxBytes (the oldest lines are dropped first if they do not fit). It
// reads only the end of the log: a first request learns the log's size, a
// second reads a window before the end, growing it when it holds too few
// lines.
func (c *Client) TailLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, lines, maxBytes int) (*LogChunk, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	window := int64(maxBytes)
	if guess := int64(lines) * 256; guess < window {
		window = guess
	}
	if window < 4096 {
		window = 4096
	}
	// First request: from 0, but read no more than the window. If the log
	// fits, this is the only request.
	resp, size, running, err := c.openLog(ctx, cred, job, number, 0)
	if err != nil {
		return nil, err
	}
	head, err := io.ReadAll(io.LimitReader(resp.Body, window+1))
	resp.Body.Close()
	if err != nil {
		return nil, transportError(ctx, "read log of "+buildName(job, number), err)
	}
	if int64(len(head)) <= window {
		return tailChunk(head, 0, size, running, lines, maxBytes), nil
	}
	for {
		start := max(size-window, 0)
		resp, newSize, run, err := c.openLog(ctx, cred, job, number, start)
		if err != nil {
			return nil, err
		}
		buf, err := io.ReadAll(io.LimitReader(resp.Body, window+int64(maxBytes)))
		resp.Body.Close()
		if err != nil {
			return nil, transportError(ctx, "read log of "+buildName(job, number), err)
		}
		size, running = max(newSize, start+int64(len(buf))), run
		// Enough lines (one more newline than asked, so the first line is
		// whole), or the window reached the start or the byte budget.
		if start == 0 || bytes.Count(buf, []byte{'\n'}) > lines || window >= int64(maxBytes) {
			if start > 0 {
				// Drop the partial first line.
				if i := bytes.IndexByte(buf, '\n'); i >= 0 {
					buf, start = buf[i+1:], start+int64(i+1)
				}
			}
			return tailChunk(buf, start, size, running, lines, maxBytes), nil
		}
		window = min(window*4, int64(maxBytes))
	}
}

// tailChunk keeps the last n (≥ 1) lines of buf, which starts at offset
// start, within maxBytes.
func tailChunk(buf []byte, start, size int64, running bool, n, maxBytes int) *LogChunk {
	end := start + int64(len(buf))
	body := bytes.TrimSuffix(buf, []byte{'\n'})
	cut := len(body)
	for range n {
		cut = bytes.LastIndexByte(body[:cut], '\n')
		if cut < 0 {
			break
		}
	}
	text := buf[cut+1:]
	for len(text) > maxBytes {
		i := bytes.IndexByte(text, '\n')
		if i < 0 || len(text)-i-1 == 0 {
			text = text[len(text)-maxBytes:]
			break
		}
		text = text[i+1:]
	}
	return &LogChunk{Text: text, Start: end - int64(len(text)), Next: end, Size: max(size, end), Running: running}
}

// Match is one line of a log search.
type Match struct {
	LineNumber int // 1-based over the whole console text
	Line       string
	Before     []string
	After      []string
}

// SearchResult is the outcome of a log search.
type SearchResult struct {
	Matches []Match
	// Truncated: the search stopped early, at maxMatches or at the scan
	// limit, so more matches may exist.
	Truncated bool
	// ScannedBytes is how much of the log was read.
	ScannedBytes int64
}

// maxLineBytes bounds one returned line; longer lines are cut (and still
// matched on their first maxLineBytes).
const maxLineBytes = 4096

// SearchLog scans the console text line by line for re, returning at most
// maxMatches matches each with contextLines lines before and after. It
// streams the log and reads at most MaxScanBytes of it.
func (c *Client) SearchLog(ctx context.Context, cred Credential, job jobpath.Path, number int64, re *regexp.Regexp, maxMatches, contextLines int) (*SearchResult, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, _, _, err := c.openLog(ctx, cred, job, number, 0)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limited := &countingReader{r: io.LimitReader(resp.Body, c.opts.MaxScanBytes)}
	res, err := scanLog(limited, re, maxMatches, contextLines)
	if err != nil {
		return nil, transportError(ctx, "search log of "+buildName(job, number), err)
	}
	res.ScannedBytes = limited.n
	if limited.n >= c.opts.MaxScanBytes {
		res.Truncated = true
	}
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// scanLog is the search itself, separate from HTTP so it can be fuzzed.
func scanLog(r io.Reader, re *regexp.Regexp, maxMatches, contextLines int) (*SearchResult, error) {
	res := &SearchResult{Matches: []Match{}}
	br := bufio.NewReaderSize(r, 64<<10)
	var (
		before  []string // ring of the last contextLines lines
		pending []int    // indexes of matches still collecting after-lines
		lineNo  int
	)
	for {
		line, err := readLine(br)
		if err != nil && err != io.EOF {
			return nil, err
		}
		if err == io.EOF && line == nil {
			break
		}
		lineNo++
		s := string(line)
		// Feed after-context of earlier matches.
		kept := pending[:0]
		for _, i := range pending {
			m := &res.Matches[i]
			m.After = append(m.After, s)
			if len(m.After) < contextLines {
				kept = append(kept, i)
			}
		}
		pending = kept
		if re.MatchString(s) {
			if len(res.Matches) == maxMatches {
				res.Truncated = true
				break
			}
			res.Matches = append(res.Matches, Match{LineNumber: lineNo, Line: s, Before: append([]string{}, before...), After: []string{}})
			if contextLines > 0 {
				pending = append(pending, len(res.Matches)-1)
			}
		}
		if contextLines > 0 {
			if len(before) == contextLines {
				before = append(before[:0], before[1:]...)
			}
			before = append(before, s)
		}
		if err == io.EOF {
			break
		}
	}
	return res, nil
}

// readLine returns the next line without its newline, cut to maxLineBytes
// (the rest of a long line is skipped). It returns io.EOF with the last line
// when the input does not end in a newline, and (nil, io.EOF) at the end.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	cut := false
	for {
		frag, err := br.ReadSlice('\n')
		if !cut {
			if room := maxLineBytes - len(line); len(frag) > room {
				frag, cut = trimToRune(frag[:room]), true
			}
			line = append(line, frag...)
		}
		switch err {
		case bufio.ErrBufferFull:
			continue
		case nil:
			line = bytes.TrimSuffix(line, []byte{'\n'})
			return bytes.TrimSuffix(line, []byte{'\r'}), nil
		case io.EOF:
			if len(line) == 0 {
				return nil, io.EOF
			}
			return bytes.TrimSuffix(line, []byte{'\r'}), io.EOF
		default:
			return nil, fmt.Errorf("reading log: %w", err)
		}
	}
}
