package jenkins

import (
	"net/url"
	"strings"
	"testing"
	"unicode"
)

// FuzzParseArtifactPath: whatever a caller sends as an artifact path, an
// accepted one stays below the build's artifacts: relative, no empty, "."
// or ".." segment, no backslash, control character, wildcard or escape,
// and its URL form decodes (once, as Jenkins does) to exactly the same
// segments, so no encoded '/' or '.' can move it.
func FuzzParseArtifactPath(f *testing.F) {
	for _, s := range []string{"a.txt", "dist/app.tar.gz", "..", "../x", "a/../b", "%2e%2e/x", "a%2Fb", "/etc/passwd", "C:/x",
		"a\\b", "a//b", "a/", "a\x00b", "*zip*/x.zip", "a;b", "résumé/ü.txt", "100%.txt", "a/%2", "．．/x", "a\u202eb"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := ParseArtifactPath(raw)
		if err != nil {
			return
		}
		if p.String() != raw {
			t.Fatalf("%q: String %q", raw, p.String())
		}
		if strings.HasPrefix(raw, "/") || strings.ContainsAny(raw, "\\*?;") || len(raw) > MaxArtifactPathLen {
			t.Fatalf("%q accepted", raw)
		}
		for _, r := range raw {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Fatalf("%q accepted with %U", raw, r)
			}
		}
		esc := strings.Split(p.escaped(), "/")
		segs := strings.Split(raw, "/")
		if len(esc) != len(segs) {
			t.Fatalf("%q: %d escaped segments for %d", raw, len(esc), len(segs))
		}
		for i, e := range esc {
			d, err := url.PathUnescape(e)
			if err != nil || d != segs[i] || d == "" || d == "." || d == ".." || strings.Contains(e, "/") {
				t.Fatalf("%q: segment %d escaped %q decodes to %q (%v)", raw, i, e, d, err)
			}
		}
	})
}

// FuzzStripUserinfo: no URL that carried a password comes back with it.
func FuzzStripUserinfo(f *testing.F) {
	for _, s := range []string{"https://u:secret@h/r.git", "git@h:o/r.git", "u:secret@h:o/r.git", "ssh://git:secret@h/r", "https://h/r", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := StripUserinfo(raw)
		if u, err := url.Parse(raw); err == nil && u.Scheme != "" && u.Host != "" && u.User != nil {
			if pw, ok := u.User.Password(); ok && pw != "" && strings.Contains(out, u.User.String()) {
				t.Fatalf("%q -> %q keeps the user info", raw, out)
			}
		}
	})
}
