package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/butler-mcp/butler/internal/secret"
)

// OSGetenv looks a variable up in the process environment. Pass it to Load,
// Parse or ApplyStdioEnv in production; tests pass a map lookup instead, so
// that nothing in this package reads the environment on its own.
func OSGetenv(name string) (string, bool) { return os.LookupEnv(name) }

// Load reads the config file at path and parses it with Parse. Like Parse,
// on Problems it also returns the partly decoded config.
func Load(path string, getenv func(string) (string, bool)) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := parse(data, getenv)
	if err != nil {
		return c, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes a config file over the defaults. It is strict, because a
// mistyped key in a security setting must not silently fall back to the
// default: an unknown key, a duplicate key, a value of the wrong type or a
// second YAML document is an error, and all such problems are returned
// together as Problems, each naming the key and its line; the config is
// then returned as well, holding every key that did decode. An empty file
// gives the defaults; a key with an empty (null) value keeps its default.
//
// ${NAME} inside a string value (never in a key or a comment) is replaced
// by the variable's value from getenv, before the value is decoded, so
// `burst: ${BURST}` works too; "$${" stands for a literal "${". A variable
// that is not set expands to "", and Validate then says so in its message
// for that field. The replacement text is not expanded again.
//
// store.vault_key and web.session_key default to ${BUTLER_VAULT_KEY} and
// ${BUTLER_SESSION_KEY}, as in docs/configuration.md, so omitting them from the file
// reads the same variables.
//
// YAML itself reads "{" as the start of a mapping inside [ ] and { }, so a
// reference in a flow list must be quoted: ["${A}"], or use a block list.
//
// Entries of auth.tool_scopes are merged over the default entries; every
// other list replaces its default.
func Parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	c, err := parse(data, getenv)
	var ps Problems
	if err != nil && !errors.As(err, &ps) {
		return nil, fmt.Errorf("config: %w", err)
	}
	return c, err
}

// parse is Parse without the "config: " prefix on its errors, which Load
// replaces with one naming the file. Problems are returned bare, so that
// their Error is one problem a line.
func parse(data []byte, getenv func(string) (string, bool)) (*Config, error) {
	if getenv == nil {
		getenv = func(string) (string, bool) { return "", false }
	}
	cfg := Default()
	d := &decoder{getenv: getenv, notes: map[string]string{}}
	d.seed(&cfg.Store.VaultKey, "store.vault_key", "BUTLER_VAULT_KEY")
	d.seed(&cfg.Web.SessionKey, "web.session_key", "BUTLER_SESSION_KEY")

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	switch err := dec.Decode(&doc); {
	case errors.Is(err, io.EOF):
		// An empty file, or one with only comments: the defaults.
	case err != nil:
		return nil, err
	default:
		var extra yaml.Node
		if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
			if err != nil {
				return nil, err
			}
			line := extra.Line
			if len(extra.Content) > 0 {
				line = extra.Content[0].Line
			}
			return nil, fmt.Errorf("line %d: a second YAML document (after ---); a config file holds exactly one", line)
		}
		if len(doc.Content) > 0 {
			root := doc.Content[0]
			if root.Kind == yaml.AliasNode || root.ShortTag() != "!!null" {
				d.decode("", root, reflect.ValueOf(cfg).Elem())
			}
		}
	}
	cfg.normalize()
	if len(d.notes) > 0 {
		cfg.envNotes = d.notes
	}
	if len(d.problems) > 0 {
		// The keys that did decode are kept, so a caller such as
		// check-config can validate them too and report every problem.
		return cfg, d.problems
	}
	return cfg, nil
}

// normalize puts URLs in the form the rest of Butler relies on.
func (c *Config) normalize() {
	if c.Server.PublicURL != "" {
		c.Server.PublicURL = strings.TrimRight(c.Server.PublicURL, "/")
	}
	if c.Jenkins.URL != "" {
		if u, err := c.JenkinsBaseURL(); err == nil {
			c.Jenkins.URL = u.String()
		}
	}
}

// decoder walks the YAML node tree alongside the Config, so that it knows
// each value's key path and line, can tell keys from values when expanding
// variables, and can report every problem rather than the first.
// (yaml.Node.Decode has no KnownFields option, and decoding the expanded
// tree re-encoded would lose the line numbers.)
type decoder struct {
	getenv   func(string) (string, bool)
	problems Problems
	notes    map[string]string
}

func (d *decoder) problem(path string, n *yaml.Node, format string, args ...any) {
	if path == "" {
		path = "(top level)"
	}
	msg := fmt.Sprintf(format, args...)
	if n != nil && n.Line > 0 {
		msg = fmt.Sprintf("line %d: %s", n.Line, msg)
	}
	d.problems = append(d.problems, Problem{Field: path, Message: msg})
}

// seed sets a default that is itself a variable reference.
func (d *decoder) seed(dst *secret.String, path, name string) {
	v, set := d.getenv(name)
	*dst = secret.String(v)
	switch {
	case !set:
		d.notes[path] = fmt.Sprintf("it defaults to ${%s}, which is not set", name)
	case v == "":
		d.notes[path] = fmt.Sprintf("it defaults to ${%s}, which is set but empty", name)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases (*anchor) to the node they name.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 64; i++ {
		n = n.Alias
	}
	return n
}

func describeKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	}
	return "something else"
}

// decode stores node n into v, recording problems rather than stopping.
func (d *decoder) decode(path string, n *yaml.Node, v reflect.Value) {
	n = resolve(n)
	if n.Kind == yaml.AliasNode {
		d.problem(path, n, "alias chain too long")
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		// "key:" or "key: ~" leaves the default in place.
		return
	}
	switch {
	case v.Kind() == reflect.Struct:
		d.decodeStruct(path, n, v)
	case v.Kind() == reflect.Map:
		d.decodeMap(path, n, v)
	case v.Kind() == reflect.Slice:
		d.decodeSlice(path, n, v)
	default:
		d.decodeScalar(path, n, v)
	}
}

func (d *decoder) decodeStruct(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.problem(path, n, "expected a mapping of keys, got %s", describeKind(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(path, k, "a key must be a plain name, got %s", describeKind(k))
			continue
		}
		name := k.Value
		field := joinPath(path, name)
		if name == "<<" {
			d.problem(path, k, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[name]; dup {
			d.problem(field, k, "duplicate key (first at line %d)", first)
			continue
		}
		seen[name] = k.Line
		idx, ok := fields[name]
		if !ok {
			d.problem(field, k, "unknown key%s", suggest(name, names, path))
			continue
		}
		d.decode(field, val, v.Field(idx))
	}
}

// suggest explains an unknown key: the likely intended one, and the keys
// that are valid at that level.
func suggest(name string, valid []string, parent string) string {
	where := parent
	if where == "" {
		where = "the top level"
	}
	best, bestDist := "", 3
	for _, v := range valid {
		if dist := editDistance(strings.ToLower(name), v); dist < bestDist {
			best, bestDist = v, dist
		}
	}
	s := ""
	if best != "" {
		s = fmt.Sprintf(" (did you mean %q?)", best)
	}
	return fmt.Sprintf("%s; valid keys in %s: %s", s, where, strings.Join(valid, ", "))
}

// editDistance is the Levenshtein distance, for "did you mean" hints.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func (d *decoder) decodeMap(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.problem(path, n, "expected a mapping, got %s", describeKind(n))
		return
	}
	t := v.Type()
	m := reflect.MakeMap(t)
	// Copy rather than write into the default map, which Default returns
	// fresh but a caller might share.
	iter := v.MapRange()
	for iter.Next() {
		m.SetMapIndex(iter.Key(), iter.Value())
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.problem(path, k, "a key must be a plain name, got %s", describeKind(k))
			continue
		}
		field := joinPath(path, k.Value)
		if k.Value == "<<" {
			d.problem(path, k, "merge keys (<<) are not supported; write the keys out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.problem(field, k, "duplicate key (first at line %d)", first)
			continue
		}
		seen[k.Value] = k.Line
		elem := reflect.New(t.Elem()).Elem()
		if cur := m.MapIndex(reflect.ValueOf(k.Value)); cur.IsValid() {
			elem.Set(cur)
		}
		d.decode(field, val, elem)
		m.SetMapIndex(reflect.ValueOf(k.Value), elem)
	}
	v.Set(m)
}

func (d *decoder) decodeSlice(path string, n *yaml.Node, v reflect.Value) {
	if n.Kind != yaml.SequenceNode {
		d.problem(path, n, "expected a list, like [a, b], got %s", describeKind(n))
		return
	}
	// Non-nil even when empty: "[]" is an explicit choice (tool_scopes).
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		d.decode(fmt.Sprintf("%s[%d]", path, i), item, s.Index(i))
	}
	v.Set(s)
}

func (d *decoder) decodeScalar(path string, n *yaml.Node, v reflect.Value) {
	want := describeType(v.Type())
	if n.Kind != yaml.ScalarNode {
		d.problem(path, n, "expected %s, got %s", want, describeKind(n))
		return
	}
	text, expanded, ok := d.expand(path, n)
	if !ok {
		return
	}
	if v.Kind() == reflect.String {
		// Any scalar is text here: "user: 12345" is the id "12345".
		v.SetString(text)
		return
	}
	got := func() string {
		if expanded {
			return fmt.Sprintf("%s, which expands to something else", strconv.Quote(n.Value))
		}
		return strconv.Quote(truncate(n.Value))
	}
	if v.Type() == reflect.TypeFor[time.Duration]() {
		dur, err := time.ParseDuration(text)
		if err != nil {
			d.problem(path, n, "expected %s, got %s", want, got())
			return
		}
		v.SetInt(int64(dur))
		return
	}
	// Let yaml.v3 resolve numbers and booleans (0x10, 1e3, true). A value
	// that came from the environment is resolved afresh, as if written
	// plainly, so that `burst: ${BURST}` gives a number.
	leaf := &yaml.Node{Kind: yaml.ScalarNode, Tag: n.Tag, Style: n.Style, Value: text, Line: n.Line, Column: n.Column}
	if expanded {
		leaf.Tag, leaf.Style = "", 0
	}
	if err := leaf.Decode(v.Addr().Interface()); err != nil {
		d.problem(path, n, "expected %s, got %s", want, got())
	}
}

func describeType(t reflect.Type) string {
	if t == reflect.TypeFor[time.Duration]() {
		return `a duration like "30s" or "1m30s"`
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int64:
		return "a whole number"
	case reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// expand applies ${NAME} expansion to a string scalar and records a note
// for unset variables. Non-string scalars (numbers, booleans, explicitly
// tagged values) are returned as written.
func (d *decoder) expand(path string, n *yaml.Node) (text string, expanded bool, ok bool) {
	delete(d.notes, path)
	if n.ShortTag() != "!!str" || !strings.Contains(n.Value, "$") {
		return n.Value, false, true
	}
	out, refs, err := expandEnv(n.Value, d.getenv)
	if err != nil {
		d.problem(path, n, "%v", err)
		return "", false, false
	}
	if note := envNote(n.Value, refs); note != "" {
		d.notes[path] = note
	}
	return out, out != n.Value, true
}

// envRef is one ${NAME} found while expanding.
type envRef struct {
	name  string
	set   bool
	empty bool
}

// expandEnv replaces ${NAME} with getenv(NAME) ("" when unset) and "$${"
// with "${". Any other "$" is kept. An unterminated "${" or an invalid
// name is an error, since it is almost surely a typo for a variable.
func expandEnv(s string, getenv func(string) (string, bool)) (string, []envRef, error) {
	var b strings.Builder
	var refs []envRef
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			b.WriteByte(c)
			i++
			continue
		}
		if strings.HasPrefix(s[i:], "$${") {
			b.WriteString("${")
			i += 3
			continue
		}
		if !strings.HasPrefix(s[i:], "${") {
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", nil, errors.New(`"${" without a closing "}"; write ${NAME}, or $${ for a literal ${`)
		}
		name := s[i+2 : i+2+end]
		if !validEnvName(name) {
			return "", nil, fmt.Errorf("%q is not a variable reference: write ${NAME} with letters, digits and _ only (no defaults or other shell forms), or $${ for a literal ${", truncate("${"+name+"}"))
		}
		v, set := getenv(name)
		refs = append(refs, envRef{name: name, set: set, empty: set && v == ""})
		b.WriteString(v)
		i += 2 + end + 1
	}
	return b.String(), refs, nil
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// envNote describes the variables of raw that are unset or empty, for
// Validate's messages: "it is ${X}, which is not set". It quotes raw only
// when raw is a lone reference, since other text might be a secret.
func envNote(raw string, refs []envRef) string {
	var unset, empty []string
	for _, r := range refs {
		switch {
		case !r.set:
			unset = append(unset, "${"+r.name+"}")
		case r.empty:
			empty = append(empty, "${"+r.name+"}")
		}
	}
	sort.Strings(unset)
	sort.Strings(empty)
	unset, empty = compactStrings(unset), compactStrings(empty)
	lone := len(refs) == 1 && raw == "${"+refs[0].name+"}"
	var parts []string
	describe := func(list []string, what string) {
		if len(list) == 0 {
			return
		}
		verb := "which is " + what
		if len(list) > 1 {
			verb = "which are " + what
		}
		if lone {
			parts = append(parts, fmt.Sprintf("it is %s, %s", list[0], verb))
		} else {
			parts = append(parts, fmt.Sprintf("it uses %s, %s", strings.Join(list, " and "), verb))
		}
	}
	describe(unset, "not set")
	describe(empty, "set but empty")
	return strings.Join(parts, "; ")
}

func compactStrings(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
