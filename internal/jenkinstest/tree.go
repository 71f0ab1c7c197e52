package jenkinstest

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// tree is a parsed "tree" query parameter, as Stapler's NamedPathPruner
// reads it: "a,b[c,d[e]]{0,10}". A property is written only if its name is
// a child of the tree at that level; an object written with an empty tree
// keeps only its "_class". A range applies to an array value: elements
// [lo, hi).
type tree struct {
	props map[string]*tree
	lo    int
	hi    int // -1: no upper bound
	// cache holds, per object type, the properties to write in the type's
	// order, so a listing of many objects resolves its tree once.
	cache map[any]any
}

var errTree = errors.New("bad tree")

// parseTree parses spec with Stapler's grammar:
//
//	list  := node (',' node)*
//	node  := name ('[' list ']')? ('{' range '}')?
//	range := N | M ',' | ',' N | M ',' N
func parseTree(spec string) (*tree, error) {
	p := &treeParser{s: spec}
	t := newTree()
	if err := p.list(t); err != nil {
		return nil, err
	}
	if p.i != len(p.s) {
		return nil, fmt.Errorf("%w: unexpected %q at %d", errTree, p.s[p.i], p.i)
	}
	return t, nil
}

func newTree() *tree { return &tree{props: map[string]*tree{}, hi: -1} }

type treeParser struct {
	s string
	i int
}

func (p *treeParser) list(t *tree) error {
	for {
		if err := p.node(t); err != nil {
			return err
		}
		if p.i < len(p.s) && p.s[p.i] == ',' {
			p.i++
			continue
		}
		return nil
	}
}

func (p *treeParser) node(t *tree) error {
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune("[]{},", rune(p.s[p.i])) {
		p.i++
	}
	if p.i == start {
		return fmt.Errorf("%w: expected a name at %d", errTree, start)
	}
	sub := newTree()
	t.props[p.s[start:p.i]] = sub
	if p.i < len(p.s) && p.s[p.i] == '[' {
		p.i++
		if err := p.list(sub); err != nil {
			return err
		}
		if p.i >= len(p.s) || p.s[p.i] != ']' {
			return fmt.Errorf("%w: expected ']' at %d", errTree, p.i)
		}
		p.i++
	}
	if p.i < len(p.s) && p.s[p.i] == '{' {
		end := strings.IndexByte(p.s[p.i:], '}')
		if end < 0 {
			return fmt.Errorf("%w: expected '}' after %d", errTree, p.i)
		}
		lo, hi, err := parseRange(p.s[p.i+1 : p.i+end])
		if err != nil {
			return err
		}
		sub.lo, sub.hi = lo, hi
		p.i += end + 1
	}
	return nil
}

func parseRange(s string) (lo, hi int, err error) {
	num := func(x string) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(x))
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: bad range {%s}", errTree, s)
		}
		return n, nil
	}
	a, b, comma := strings.Cut(s, ",")
	if !comma {
		n, err := num(a)
		return n, n + 1, err
	}
	hi = -1
	if strings.TrimSpace(a) != "" {
		if lo, err = num(a); err != nil {
			return 0, 0, err
		}
	}
	if strings.TrimSpace(b) != "" {
		if hi, err = num(b); err != nil {
			return 0, 0, err
		}
	}
	return lo, hi, nil
}

// inRange reports whether array index i is selected, and whether any later
// index can be.
func (t *tree) inRange(i int) (in, more bool) {
	if t == nil {
		return true, true
	}
	if t.hi >= 0 && i >= t.hi {
		return false, false
	}
	return i >= t.lo, true
}

// prop is one exported property of an object type.
type prop[T any] struct {
	name string
	// has, if set, says whether a value has this property at all (e.g.
	// "executable" only on Queue$LeftItem).
	has   func(v T) bool
	write func(e *enc, v T, sub *tree)
}

// objType is an exported bean: its "_class" and its properties, in the
// order Jenkins writes them.
type objType[T any] struct {
	class func(v T) string // nil or "": no "_class"
	props []prop[T]
}

type resolved[T any] struct {
	p   *prop[T]
	sub *tree
}

func resolve[T any](t *tree, ot *objType[T]) []resolved[T] {
	if t == nil || len(t.props) == 0 {
		return nil
	}
	if c, ok := t.cache[ot]; ok {
		return c.([]resolved[T])
	}
	var out []resolved[T]
	for i := range ot.props {
		if sub, ok := t.props[ot.props[i].name]; ok {
			out = append(out, resolved[T]{&ot.props[i], sub})
		}
	}
	if t.cache == nil {
		t.cache = map[any]any{}
	}
	t.cache[ot] = out
	return out
}

// writeObject writes v as a JSON object with the properties t selects.
func writeObject[T any](e *enc, ot *objType[T], v T, t *tree) {
	e.b = append(e.b, '{')
	first := true
	if ot.class != nil {
		if c := ot.class(v); c != "" {
			e.b = append(e.b, `"_class":`...)
			e.str(c)
			first = false
		}
	}
	for _, r := range resolve(t, ot) {
		if r.p.has != nil && !r.p.has(v) {
			continue
		}
		if !first {
			e.b = append(e.b, ',')
		}
		first = false
		e.b = append(e.b, '"')
		e.b = append(e.b, r.p.name...)
		e.b = append(e.b, '"', ':')
		r.p.write(e, v, r.sub)
	}
	e.b = append(e.b, '}')
}

// writeArray writes the elements of xs that t's range selects.
func writeArray[T any](e *enc, xs []T, t *tree, w func(e *enc, v T)) {
	e.b = append(e.b, '[')
	n := 0
	for i, x := range xs {
		in, more := t.inRange(i)
		if !more {
			break
		}
		if !in {
			continue
		}
		if n > 0 {
			e.b = append(e.b, ',')
		}
		n++
		w(e, x)
	}
	e.b = append(e.b, ']')
}

// enc is a JSON writer bound to one request.
type enc struct {
	b  []byte
	rc *reqCtx
	sc *schema
	// perm is the requesting user's permission on the item being written;
	// folder listings derive their children's from it.
	perm perm
}

func (e *enc) null()          { e.b = append(e.b, "null"...) }
func (e *enc) boolean(v bool) { e.b = strconv.AppendBool(e.b, v) }
func (e *enc) int(v int64)    { e.b = strconv.AppendInt(e.b, v, 10) }

func (e *enc) float(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		v = 0
	}
	start := len(e.b)
	e.b = strconv.AppendFloat(e.b, v, 'f', -1, 64)
	if !strings.ContainsRune(string(e.b[start:]), '.') {
		e.b = append(e.b, ".0"...) // Java writes doubles with a fraction
	}
}

// url writes the absolute URL of path below the root URL.
func (e *enc) url(path string) {
	e.b = append(e.b, '"')
	e.b = append(e.b, e.rc.rootJSON...)
	e.b = appendEscaped(e.b, path)
	e.b = append(e.b, '"')
}

func (e *enc) str(s string) {
	e.b = append(e.b, '"')
	e.b = appendEscaped(e.b, s)
	e.b = append(e.b, '"')
}

func (e *enc) strOrNull(s string) {
	if s == "" {
		e.null()
		return
	}
	e.str(s)
}

func (e *enc) value(v any) {
	switch x := v.(type) {
	case bool:
		e.boolean(x)
	case string:
		e.str(x)
	case nil:
		e.null()
	default:
		e.str(fmt.Sprint(x))
	}
}

const hexDigits = "0123456789abcdef"

// appendEscaped appends s as the inside of a JSON string, like
// encoding/json without its HTML escaping (Jenkins does not escape <>&).
func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
