package e2e

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestExamples_ButlerYAMLPassesCheckConfig: the annotated example config is
// one `butler serve` accepts, given the environment variables it names.
func TestExamples_ButlerYAMLPassesCheckConfig(t *testing.T) {
	t.Parallel()
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	env := []string{"BUTLER_VAULT_KEY=" + base64.StdEncoding.EncodeToString(key)}
	out, stderr, code := runButler(t, env, "check-config", "--config", "../examples/butler.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Errorf("check-config examples/butler.yaml: exit %d\nstdout: %s\nstderr: %s", code, out, stderr)
	}
	// Without the vault key it must say which variable is missing.
	_, stderr, code = runButler(t, []string{"BUTLER_VAULT_KEY="}, "check-config", "--config", "../examples/butler.yaml")
	if code != 1 || !strings.Contains(stderr, "store.vault_key") {
		t.Errorf("check-config without BUTLER_VAULT_KEY: exit %d, stderr %q; want 1 naming store.vault_key", code, stderr)
	}
}

// docsFiles are the Markdown files a reader of the repository follows:
// README.md and docs/*.md, relative to the e2e directory.
func docsFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"../README.md"}
	more, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(more) == 0 {
		t.Fatal("no docs/*.md found")
	}
	return append(files, more...)
}

// markdownLink finds the target of inline links and images: ](target) or
// ](target "title").
var markdownLink = regexp.MustCompile(`\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)`)

// inlineCode matches `code spans`, whose text is not a link.
var inlineCode = regexp.MustCompile("`[^`]*`")

// TestDocs_NoLinksOutsideRepo: the documentation stands on its own. It names
// nothing outside the repository, and every relative link points to a file
// or folder that exists in it.
func TestDocs_NoLinksOutsideRepo(t *testing.T) {
	t.Parallel()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A path out of the repository to the steering folder, spelled so that
	// this file itself does not contain it.
	forbidden := []string{".." + "/shared", "CONTRACT.md", "CONTRACT §"}

	files := docsFiles(t)
	examples, err := filepath.Glob("../examples/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(append([]string(nil), files...), examples...) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range forbidden {
			if strings.Contains(string(data), s) {
				t.Errorf("%s mentions %q, which a clone of the repository does not have", f, s)
			}
		}
	}

	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		inFence := false
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
				inFence = !inFence
				continue
			}
			if inFence {
				continue
			}
			line = inlineCode.ReplaceAllString(line, "")
			for _, m := range markdownLink.FindAllStringSubmatch(line, -1) {
				checkLink(t, root, f, n, m[1])
			}
		}
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		fh.Close()
	}
}

// checkLink fails the test when target, a link found at file:line, is a
// relative link to something missing from the repository, or leaves it.
func checkLink(t *testing.T, root, file string, line int, target string) {
	t.Helper()
	switch {
	case target == "", strings.HasPrefix(target, "#"):
		return // an anchor in the same file
	case strings.HasPrefix(target, "http://"), strings.HasPrefix(target, "https://"), strings.HasPrefix(target, "mailto:"):
		return
	}
	if u, err := url.Parse(target); err == nil && u.Scheme != "" {
		t.Errorf("%s:%d: link %q uses scheme %q; link to a file in the repository or an http(s) URL", file, line, target, u.Scheme)
		return
	}
	path, _, _ := strings.Cut(target, "#")
	path, _, _ = strings.Cut(path, "?")
	if unescaped, err := url.PathUnescape(path); err == nil {
		path = unescaped
	}
	if filepath.IsAbs(path) || strings.HasPrefix(path, "/") {
		t.Errorf("%s:%d: link %q is absolute; use a path relative to the file", file, line, target)
		return
	}
	abs, err := filepath.Abs(filepath.Join(filepath.Dir(file), filepath.FromSlash(path)))
	if err != nil {
		t.Errorf("%s:%d: link %q: %v", file, line, target, err)
		return
	}
	if rel, err := filepath.Rel(root, abs); err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		t.Errorf("%s:%d: link %q points outside the repository", file, line, target)
		return
	}
	if _, err := os.Stat(abs); err != nil {
		t.Errorf("%s:%d: link %q points to a file that does not exist in the repository", file, line, target)
	}
}
