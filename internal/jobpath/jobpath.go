// Package jobpath parses, validates and canonicalizes Jenkins job paths.
//
// A job path names a Jenkins item by its full name, the folders it sits in
// joined by "/" ("frontend/web/deploy"), exactly as Jenkins's fullName. Every
// path a client sends is parsed here before anything else happens to it, and
// the canonical form returned is the one used for the policy, for the Jenkins
// URL and for the audit record, so the three can never disagree.
//
// Parsing is deliberately strict. A segment is taken literally: "%2F" inside a
// segment is not a separator (Jenkins multibranch projects name branch jobs
// "feature%2Ffoo"), and it is percent-encoded again when the URL is built, so
// no encoding trick can move a request into another folder. Segments that
// Jenkins would never accept as a name, or that could be read as a path
// traversal by some layer between Butler and Jenkins, are refused.
package jobpath

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxLen is the longest job path accepted, in bytes.
const MaxLen = 1024

// ErrInvalid is wrapped by every error Parse returns.
var ErrInvalid = errors.New("invalid job path")

// Path is a validated, canonical job path. The zero Path is the Jenkins root.
type Path struct {
	segs []string
}

// Parse validates raw and returns its canonical form. One leading and one
// trailing "/" are ignored; everything else that is not a plain name is an
// error wrapping ErrInvalid whose message says what is wrong.
func Parse(raw string) (Path, error) {
	if len(raw) > MaxLen {
		return Path{}, invalid("longer than %d bytes", MaxLen)
	}
	if !utf8.ValidString(raw) {
		return Path{}, invalid("not valid UTF-8")
	}
	trimmed := strings.TrimSuffix(strings.TrimPrefix(raw, "/"), "/")
	if trimmed == "" {
		return Path{}, invalid("empty")
	}
	parts := strings.Split(trimmed, "/")
	for i, seg := range parts {
		if err := checkSegment(seg); err != nil {
			return Path{}, fmt.Errorf("%w: segment %d: %s", ErrInvalid, i+1, err)
		}
	}
	return Path{segs: parts}, nil
}

// ParseFolder is Parse, except that the empty string (or "/") is the root.
func ParseFolder(raw string) (Path, error) {
	if raw == "" || raw == "/" {
		return Path{}, nil
	}
	return Parse(raw)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// segmentError is a reason a single segment is refused.
type segmentError string

func (e segmentError) Error() string { return string(e) }

func checkSegment(seg string) error {
	switch {
	case seg == "":
		return segmentError("empty segment (\"//\")")
	case seg == "." || seg == "..":
		return segmentError(fmt.Sprintf("%q is not allowed", seg))
	}
	for _, r := range seg {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return segmentError(fmt.Sprintf("control or format character %U", r))
		}
		if r == '\\' {
			return segmentError("backslash is not allowed")
		}
	}
	if strings.TrimSpace(seg) != seg {
		return segmentError("leading or trailing white space")
	}
	if strings.HasSuffix(seg, ".") {
		// Jenkins refuses item names ending with "." (Jenkins.checkGoodName);
		// some file systems and proxies drop a trailing dot, which would
		// turn "prod." into "prod".
		return segmentError("a name may not end with \".\"")
	}
	// A segment that decodes to a dot segment would be a traversal for any
	// layer that decodes once more than it should.
	dec := seg
	for range 3 {
		next, err := url.PathUnescape(dec)
		if err != nil || next == dec {
			break
		}
		dec = next
		if dec == "." || dec == ".." || strings.HasSuffix(dec, "/..") || strings.HasPrefix(dec, "../") || strings.Contains(dec, "/../") || strings.Contains(dec, "\\") {
			return segmentError("percent-encoded dot segment or backslash")
		}
		for _, r := range dec {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				return segmentError("percent-encoded control character")
			}
		}
	}
	// Look-alikes of "/", "\\" and "." (division slash, fullwidth solidus,
	// one-dot leader, ...) are used to fool readers of logs and policies,
	// and some of them turn into the real thing under normalization.
	if strings.ContainsAny(seg, lookAlikes) {
		return segmentError("Unicode look-alike of \"/\", \"\\\" or \".\"")
	}
	if nf := norm.NFKC.String(seg); nf != seg {
		if strings.ContainsAny(nf, "/\\") || nf == "." || nf == ".." || strings.HasSuffix(nf, ".") {
			return segmentError("Unicode look-alike of \"/\", \"\\\" or \".\"")
		}
	}
	return nil
}

// lookAlikes are characters that read as "/", "\\" or "." but are not.
const lookAlikes = "\u2044\u2215\u2571\u29F8\uFF0F\u3033" + // slashes
	"\u2216\u29F5\u29F9\uFE68\uFF3C" + // backslashes
	"\u2024\u2025\u2026\uFE52\uFF0E" // dots

// String returns the canonical path, segments joined by "/", no leading or
// trailing slash. The root is "".
func (p Path) String() string { return strings.Join(p.segs, "/") }

// IsRoot reports whether p is the Jenkins root (the zero Path).
func (p Path) IsRoot() bool { return len(p.segs) == 0 }

// Segments returns a copy of the path's segments.
func (p Path) Segments() []string { return append([]string(nil), p.segs...) }

// Name returns the last segment, the item's own name.
func (p Path) Name() string {
	if len(p.segs) == 0 {
		return ""
	}
	return p.segs[len(p.segs)-1]
}

// Parent returns the folder that holds p (the root for a top-level item).
func (p Path) Parent() Path {
	if len(p.segs) <= 1 {
		return Path{}
	}
	return Path{segs: p.segs[:len(p.segs)-1]}
}

// Child returns the path of the item name inside p. name must be a single
// segment that Parse would accept.
func (p Path) Child(name string) (Path, error) {
	if err := checkSegment(name); err != nil {
		return Path{}, fmt.Errorf("%w: %s", ErrInvalid, err)
	}
	segs := make([]string, len(p.segs), len(p.segs)+1)
	copy(segs, p.segs)
	return Path{segs: append(segs, name)}, nil
}

// Ancestors returns the canonical paths of every folder above p, outermost
// first: "a/b/c" gives ["a", "a/b"].
func (p Path) Ancestors() []string {
	if len(p.segs) <= 1 {
		return nil
	}
	out := make([]string, 0, len(p.segs)-1)
	for i := 1; i < len(p.segs); i++ {
		out = append(out, strings.Join(p.segs[:i], "/"))
	}
	return out
}

// URLPath returns the path of the item below the Jenkins root URL,
// "job/a/job/b/" for "a/b", each segment percent-encoded so that it stays
// one segment whatever it contains. The root gives "".
func (p Path) URLPath() string {
	var b strings.Builder
	for _, s := range p.segs {
		b.WriteString("job/")
		b.WriteString(EscapeSegment(s))
		b.WriteByte('/')
	}
	return b.String()
}

// EscapeSegment percent-encodes every byte of s except RFC 3986 unreserved
// characters. It is stricter than url.PathEscape on purpose: ";" (path
// parameters in Jetty), "%" and "+" must all arrive at Jenkins literally.
func EscapeSegment(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}
