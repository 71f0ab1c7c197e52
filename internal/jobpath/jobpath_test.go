package jobpath

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParse_Canonical(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		urlPath  string
	}{
		{"a", "a", "job/a/"},
		{"a/b/c", "a/b/c", "job/a/job/b/job/c/"},
		{"/a/b/", "a/b", "job/a/job/b/"},
		{"frontend/Release Notes", "frontend/Release Notes", "job/frontend/job/Release%20Notes/"},
		// Multibranch branch jobs carry a literal %2F in their name; it is
		// re-encoded so it stays one segment.
		{"repo/feature%2Flogin", "repo/feature%2Flogin", "job/repo/job/feature%252Flogin/"},
		{"a;b/c+d", "a;b/c+d", "job/a%3Bb/job/c%2Bd/"},
		{"v1.2", "v1.2", "job/v1.2/"},
		{"naïve/日本", "naïve/日本", "job/na%C3%AFve/job/%E6%97%A5%E6%9C%AC/"},
	}
	for _, tt := range tests {
		p, err := Parse(tt.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.in, err)
			continue
		}
		if p.String() != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.in, p.String(), tt.want)
		}
		if p.URLPath() != tt.urlPath {
			t.Errorf("Parse(%q).URLPath() = %q, want %q", tt.in, p.URLPath(), tt.urlPath)
		}
	}
}

func TestParse_RejectsHostilePaths(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, in, wantMsg string }{
		{"empty", "", "empty"},
		{"only slash", "/", "empty"},
		{"dot dot", "frontend/../backend/api", `".." is not allowed`},
		{"leading dot dot", "../backend", `".." is not allowed`},
		{"dot", "frontend/./app", `"." is not allowed`},
		{"empty segment", "frontend//app", "empty segment"},
		{"double leading slash", "//frontend", "empty segment"},
		{"encoded dot dot", "frontend/%2E%2E/backend", "percent-encoded dot segment"},
		{"lower encoded dot dot", "frontend/%2e%2e", "percent-encoded dot segment"},
		{"double encoded dot dot", "frontend/%252e%252e", "percent-encoded dot segment"},
		{"encoded traversal in segment", "frontend/..%2Fbackend", "percent-encoded dot segment"},
		{"encoded traversal mid", "a%2F..%2Fb", "percent-encoded dot segment"},
		{"encoded backslash", "a%5Cb", "percent-encoded"},
		{"backslash", `frontend\..\backend`, "backslash"},
		{"newline", "frontend/app\n", "control"},
		{"nul", "front\x00end", "control"},
		{"tab", "a\tb", "control"},
		{"encoded newline", "a%0Ab", "percent-encoded control"},
		{"zero width space", "front\u200bend", "control or format"},
		{"right to left override", "a\u202eb", "control or format"},
		{"fullwidth solidus", "frontend\uff0f..\uff0fbackend", "look-alike"},
		{"one dot leader pair", "frontend/\u2025", "look-alike"},
		{"fullwidth dots", "frontend/\uff0e\uff0e", "look-alike"},
		{"division slash", "frontend\u2215..\u2215backend", "look-alike"},
		{"fraction slash", "frontend\u2044backend", "look-alike"},
		{"set minus backslash", "frontend\u2216backend", "look-alike"},
		{"trailing dot", "prod./deploy", "end with"},
		{"trailing dots", "prod../deploy", "end with"},
		{"leading space", " prod/deploy", "white space"},
		{"trailing space", "prod /deploy", "white space"},
		{"invalid utf8", "a\xffb", "UTF-8"},
		{"too long", strings.Repeat("a", MaxLen+1), "longer than 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) succeeded, want an error", tt.in)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestParse_MaxLenIsBytes(t *testing.T) {
	t.Parallel()
	if _, err := Parse(strings.Repeat("a", MaxLen)); err != nil {
		t.Errorf("path of exactly %d bytes refused: %v", MaxLen, err)
	}
	// 342 three-byte runes = 1026 bytes but only 342 characters.
	if _, err := Parse(strings.Repeat("日", 342)); err == nil {
		t.Error("path over 1024 bytes accepted because it has few characters")
	}
}

func TestPath_Relations(t *testing.T) {
	t.Parallel()
	p, err := Parse("a/b/c")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "a/b"}, p.Ancestors()); diff != "" {
		t.Errorf("Ancestors (-want +got):\n%s", diff)
	}
	if p.Name() != "c" || p.Parent().String() != "a/b" || p.Parent().Parent().Parent().String() != "" {
		t.Errorf("Name/Parent wrong: %q %q", p.Name(), p.Parent())
	}
	if !p.Parent().Parent().Parent().IsRoot() {
		t.Error("root is not root")
	}
	c, err := p.Child("d")
	if err != nil || c.String() != "a/b/c/d" {
		t.Errorf("Child = %q, %v", c, err)
	}
	if p.String() != "a/b/c" {
		t.Errorf("Child changed its parent: %q", p)
	}
	if _, err := p.Child(".."); err == nil {
		t.Error("Child(\"..\") accepted")
	}
	segs := p.Segments()
	segs[0] = "x"
	if p.String() != "a/b/c" {
		t.Error("Segments exposes internal state")
	}
	if root, err := ParseFolder(""); err != nil || !root.IsRoot() || root.URLPath() != "" {
		t.Errorf("ParseFolder(\"\") = %q, %v", root, err)
	}
}

// FuzzParse checks that whatever Parse accepts is canonical and stays inside
// the job tree: re-parsing is stable, no segment is a dot segment, and the
// URL path has exactly one "job/" element per segment with nothing that a
// server would decode into a separator or a traversal.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"a/b", "frontend/../backend", "a%2Fb", "%2e%2e", "a//b", "/x/", "日本/語", "a\u2025", "prod.", "a%252e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Parse(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		again, err := Parse(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("canonical form %q does not re-parse to itself: %v", p, err)
		}
		for _, s := range p.Segments() {
			if s == "" || s == "." || s == ".." || strings.Contains(s, "/") {
				t.Fatalf("accepted segment %q", s)
			}
		}
		u := p.URLPath()
		parts := strings.Split(strings.TrimSuffix(u, "/"), "/")
		if len(parts) != 2*len(p.Segments()) {
			t.Fatalf("URLPath %q has %d parts for %d segments", u, len(parts), len(p.Segments()))
		}
		for i := 1; i < len(parts); i += 2 {
			if strings.ContainsAny(parts[i], "/\\?#;") || parts[i] == "." || parts[i] == ".." {
				t.Fatalf("URL segment %q is not opaque", parts[i])
			}
		}
	})
}
