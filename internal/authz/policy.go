package authz

import (
	_ "embed"
	"errors"
	"fmt"
	"iter"
	"regexp"
	"slices"
	"strconv"
	"strings"

	cedar "github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"

	"github.com/butler-mcp/butler/internal/jobpath"
)

//go:embed default.cedar
var defaultPolicy []byte

// DefaultPolicy returns the source of the built-in policy, used when no
// policy file is configured: guests may call health, users may call every
// tool (Jenkins then decides per job), nothing else.
func DefaultPolicy() []byte { return slices.Clone(defaultPolicy) }

// defaultPolicyName names the built-in policy in positions and messages.
const defaultPolicyName = "default.cedar"

// idAnnotation is the annotation that names a policy: @id("prod-release-only").
const idAnnotation = "id"

// confirmAnnotation marks a permit whose calls run only after the person
// confirms them (CONTRACT §13): @confirm("Deploying to production").
const confirmAnnotation = "confirm"

// PolicyError is one problem in a policy source, located when possible.
type PolicyError struct {
	// File is the policy's name (Options.PolicyName).
	File string
	// Line and Column locate the problem, 1-based; 0 when unknown.
	Line, Column int
	// Policy is the id of the policy concerned, "" for a syntax error.
	Policy string
	Msg    string
}

// Error formats e as "authz: file:line:col: message", the form compilers
// and editors understand.
func (e *PolicyError) Error() string {
	var b strings.Builder
	b.WriteString("authz: ")
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d:%d", e.Line, e.Column)
	}
	b.WriteString(": ")
	if e.Policy != "" {
		fmt.Fprintf(&b, "policy %q: ", e.Policy)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ValidatePolicy checks a Cedar policy source for `butler check-config`
// and reports every problem it finds, joined (one per line): syntax errors
// with their position; an entity type outside the model (User, Group,
// Guest, Action, Job, Folder, Server); an action that is neither a tool
// nor "read" or "write" (a typo such as Action::"trigger" would make a
// forbid match nothing); a Job or Folder id that is not a canonical job
// path, a Guest other than "anonymous" or a Server other than "butler"
// (such ids can never match a request); duplicate or empty @id
// annotations; and a source with no policy at all. name is the file name
// used in messages.
func ValidatePolicy(src []byte, name string) error {
	_, err := compile(src, name)
	return err
}

// namedPolicy is a compiled policy and its id.
type namedPolicy struct {
	id     cedar.PolicyID
	policy *cedar.Policy
	// readsParameters: the policy may read context.parameters (it names
	// them, or the whole context), so its outcome can change with a
	// trigger's parameters.
	readsParameters bool
	// confirm is the message of the policy's @confirm annotation, "" when
	// it has none. Only permits carry one.
	confirm string
}

// policyList is a policy set that keeps the source order, so reasons and
// errors come out in the order the author wrote them. It implements
// cedar.PolicyIterator.
type policyList []namedPolicy

// All yields the policies in source order.
func (l policyList) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, p := range l {
			if !yield(p.id, p.policy) {
				return
			}
		}
	}
}

// compile parses and validates src. Policies are named by their @id
// annotation, else "policy<N>" (N counting from 0 in source order, as
// cedar.NewPolicySetFromBytes names them).
func compile(src []byte, name string) (policyList, error) {
	if err := checkNesting(src, name); err != nil {
		return nil, err
	}
	list, err := cedar.NewPolicyListFromBytes(name, src)
	if err != nil {
		return nil, parseError(err, name)
	}
	if len(list) == 0 {
		return nil, &PolicyError{File: name, Msg: "contains no policy, so every call would be denied"}
	}
	var errs []error
	out := make(policyList, 0, len(list))
	seen := make(map[cedar.PolicyID]bool, len(list))
	for i, p := range list {
		pos := p.Position()
		id := cedar.PolicyID("policy" + strconv.Itoa(i))
		if v, ok := p.Annotations()[idAnnotation]; ok {
			id = cedar.PolicyID(v)
			if strings.TrimSpace(string(v)) == "" {
				errs = append(errs, &PolicyError{File: name, Line: pos.Line, Column: pos.Column, Msg: "empty @id"})
			}
		}
		if seen[id] {
			errs = append(errs, &PolicyError{File: name, Line: pos.Line, Column: pos.Column, Policy: string(id), Msg: "duplicate policy id"})
		}
		seen[id] = true
		for _, msg := range checkReferences(p) {
			errs = append(errs, &PolicyError{File: name, Line: pos.Line, Column: pos.Column, Policy: string(id), Msg: msg})
		}
		confirm, msg := confirmMessage(p)
		if msg != "" {
			errs = append(errs, &PolicyError{File: name, Line: pos.Line, Column: pos.Column, Policy: string(id), Msg: msg})
		}
		out = append(out, namedPolicy{id: id, policy: p, readsParameters: readsParameters(p), confirm: confirm})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// confirmMessage returns p's @confirm message, or the problem with it: an
// empty message would ask the person nothing, and @confirm on a forbid
// means nothing (a forbid never allows a call), so both are refused rather
// than silently ignored.
func confirmMessage(p *cedar.Policy) (message, problem string) {
	v, ok := p.Annotations()[confirmAnnotation]
	if !ok {
		return "", ""
	}
	switch {
	case p.Effect() == cedar.Forbid:
		return "", "@confirm on a forbid: only a permit can ask for confirmation"
	case strings.TrimSpace(string(v)) == "":
		return "", "empty @confirm: the message is what the person is asked"
	}
	return strings.TrimSpace(string(v)), ""
}

// cedarPos finds the position cedar-go puts in its scanner and parser
// errors ("<input>:3:14").
var cedarPos = regexp.MustCompile(`<input>:(\d+):(\d+)`)

// parseError turns cedar-go's "parser error: parse error at <input>:3:14
// \"tok\": msg" into a PolicyError at line 3, column 14.
func parseError(err error, name string) error {
	msg := strings.TrimPrefix(err.Error(), "parser error: ")
	loc := cedarPos.FindStringSubmatchIndex(msg)
	if loc == nil {
		return &PolicyError{File: name, Msg: "syntax error: " + msg}
	}
	line, _ := strconv.Atoi(msg[loc[2]:loc[3]])
	col, _ := strconv.Atoi(msg[loc[4]:loc[5]])
	rest := strings.TrimSpace(msg[loc[1]:])
	// The parser puts the offending token in quotes before the message.
	near := ""
	if strings.HasPrefix(rest, `"`) {
		if tok, tail, ok := cutQuoted(rest); ok {
			near, rest = tok, strings.TrimSpace(strings.TrimPrefix(tail, ":"))
		}
	} else {
		rest = strings.TrimSpace(strings.TrimPrefix(rest, ":"))
	}
	text := "syntax error: " + rest
	switch {
	case strings.HasPrefix(msg, "parse error at") && near == "":
		text += " (at end of input)"
	case near != "":
		text += fmt.Sprintf(" (near %q)", near)
	}
	return &PolicyError{File: name, Line: line, Column: col, Msg: text}
}

// cutQuoted splits a Go-quoted string off the front of s.
func cutQuoted(s string) (tok, tail string, ok bool) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", s, false
	}
	tok, err = strconv.Unquote(q)
	if err != nil {
		return "", s, false
	}
	return tok, s[len(q):], true
}

// references are the entity types and entity uids a policy names, in its
// scope and anywhere in its conditions.
type references struct {
	types []cedar.EntityType
	uids  []cedar.EntityUID
}

// policyReferences walks p's AST (cedar-go's x/exp/ast, the documented way
// to analyse a parsed policy): the scope's ==, in, is and "is ... in"
// constraints, and every literal in the conditions (entity literals, sets
// and records of them, and `is` tests).
func policyReferences(p *cedar.Policy) references {
	var r references
	addUID := func(u cedar.EntityUID) {
		r.types = append(r.types, u.Type)
		r.uids = append(r.uids, u)
	}
	scope := func(s xast.IsScopeNode) {
		switch s := s.(type) {
		case xast.ScopeTypeEq:
			addUID(s.Entity)
		case xast.ScopeTypeIn:
			addUID(s.Entity)
		case xast.ScopeTypeInSet:
			for _, e := range s.Entities {
				addUID(e)
			}
		case xast.ScopeTypeIs:
			r.types = append(r.types, s.Type)
		case xast.ScopeTypeIsIn:
			r.types = append(r.types, s.Type)
			addUID(s.Entity)
		}
	}
	var value func(v cedar.Value)
	value = func(v cedar.Value) {
		switch v := v.(type) {
		case cedar.EntityUID:
			addUID(v)
		case cedar.Set:
			for e := range v.All() {
				value(e)
			}
		case cedar.Record:
			for _, e := range v.All() {
				value(e)
			}
		}
	}
	a := (*xast.Policy)(p.AST())
	scope(a.Principal)
	scope(a.Action)
	scope(a.Resource)
	for _, c := range a.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeValue:
				value(n.Value)
			case xast.NodeTypeIs:
				r.types = append(r.types, n.EntityType)
			case xast.NodeTypeIsIn:
				r.types = append(r.types, n.EntityType)
			}
			return true
		})
	}
	return r
}

// MaxNesting bounds how deeply a policy may nest brackets and unary
// operators: Cedar's parser recurses on each level, and a policy of a
// million nested "!" would exhaust the stack.
const MaxNesting = 200

// checkNesting refuses a policy source nested deeper than MaxNesting:
// brackets ((, [, {) open a level, and so does each unary operator (!, -)
// in a row. It skips string literals and comments, and runs before the
// parser sees the source.
func checkNesting(src []byte, name string) error {
	depth, unary, line := 0, 0, 1
	for i := 0; i < len(src); i++ {
		c := src[i]
		switch {
		case c == '\n':
			line++
			continue
		case c == '"':
			for i++; i < len(src) && src[i] != '"'; i++ {
				if src[i] == '\\' {
					i++
				} else if src[i] == '\n' {
					line++
				}
			}
			unary = 0
			continue
		case c == '/' && i+1 < len(src) && src[i+1] == '/':
			for i < len(src) && src[i] != '\n' {
				i++
			}
			line++
			continue
		case c == ' ' || c == '\t' || c == '\r':
			continue
		case c == '(' || c == '[' || c == '{':
			depth++
		case c == ')' || c == ']' || c == '}':
			depth--
		}
		if c == '!' && (i+1 >= len(src) || src[i+1] != '=') || c == '-' {
			unary++
		} else {
			unary = 0
		}
		if depth+unary > MaxNesting {
			return &PolicyError{File: name, Line: line, Msg: fmt.Sprintf("nested deeper than %d levels (brackets and unary operators); Butler refuses such policies", MaxNesting)}
		}
	}
	return nil
}

// readsParameters reports whether p's conditions may read
// context.parameters: an access or has-test of "parameters", or the
// context used whole. It errs on the side of yes (costing a re-decision,
// never a wrong one).
func readsParameters(p *cedar.Policy) bool {
	found := false
	a := (*xast.Policy)(p.AST())
	for _, c := range a.Conditions {
		xast.Inspect(xast.NewNode(c.Body), func(n xast.IsNode) bool {
			switch n := n.(type) {
			case xast.NodeTypeAccess:
				if n.Value == "parameters" {
					found = true
				}
			case xast.NodeTypeHas:
				if n.Value == "parameters" {
					found = true
				}
			case xast.NodeTypeVariable:
				if n.Name == "context" {
					// context used other than as context.<attr> (handled
					// above): assume it reads everything.
					found = found || !contextAttrOnly(c.Body)
				}
			}
			return !found
		})
	}
	return found
}

// contextAttrOnly reports whether every use of the context variable in
// body is an attribute access or has-test (context.x, context has x).
func contextAttrOnly(body xast.IsNode) bool {
	uses, attrUses := 0, 0
	xast.Inspect(xast.NewNode(body), func(n xast.IsNode) bool {
		switch n := n.(type) {
		case xast.NodeTypeVariable:
			if n.Name == "context" {
				uses++
			}
		case xast.NodeTypeAccess:
			if v, ok := n.Arg.(xast.NodeTypeVariable); ok && v.Name == "context" {
				attrUses++
			}
		case xast.NodeTypeHas:
			if v, ok := n.Arg.(xast.NodeTypeVariable); ok && v.Name == "context" {
				attrUses++
			}
		}
		return true
	})
	return uses == attrUses
}

// checkReferences reports the entity types and ids in p that cannot be
// part of any request Butler makes.
func checkReferences(p *cedar.Policy) []string {
	r := policyReferences(p)
	var probs []string
	add := func(s string) {
		if !slices.Contains(probs, s) {
			probs = append(probs, s)
		}
	}
	for _, t := range r.types {
		if !slices.Contains(entityTypes, t) {
			add(fmt.Sprintf("unknown entity type %s (the model has User, Group, Guest, Action, Job, Folder, Server)", t))
		}
	}
	for _, u := range r.uids {
		id := string(u.ID)
		switch u.Type {
		case typeAction:
			if !knownAction(id) {
				add(fmt.Sprintf("unknown action %s (actions are the tool names, \"read\" and \"write\")", u))
			}
		case typeJob, typeFolder:
			if jp, err := jobpath.Parse(id); err != nil || jp.String() != id {
				add(fmt.Sprintf("%s is not a canonical job path (no leading or trailing \"/\", no empty, \".\" or \"..\" segment), so it never matches", u))
			}
		case typeGuest:
			if id != guestID {
				add(fmt.Sprintf("%s never matches: the only guest is Guest::%q", u, guestID))
			}
		case typeServer:
			if id != serverID {
				add(fmt.Sprintf("%s never matches: the only server is Server::%q", u, serverID))
			}
		}
	}
	return probs
}
