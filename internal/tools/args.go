package tools

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
)

// checkArgs checks the arguments m against the tool's input schema s and
// says what is wrong in a sentence a model (and a person) can act on:
// "limit must be at most 500", "job is required", "unknown argument
// \"jobb\"". It covers what the tools' schemas use (required properties,
// no extra properties, types, bounds, enums); the schema's own validation
// runs after it as the backstop.
func checkArgs(s *jsonschema.Schema, m map[string]any) error {
	var unknown []string
	for k := range m {
		if _, ok := s.Properties[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, 0, len(s.Properties))
		for k := range s.Properties {
			known = append(known, k)
		}
		sort.Strings(known)
		return fmt.Errorf("unknown argument %q; the arguments are %s", unknown[0], strings.Join(known, ", "))
	}
	for _, name := range s.Required {
		if v, ok := m[name]; !ok || v == nil {
			return fmt.Errorf("%s is required", name)
		}
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := checkValue(name, s.Properties[name], m[name]); err != nil {
			return err
		}
	}
	return nil
}

func checkValue(name string, p *jsonschema.Schema, v any) error {
	if v == nil {
		return nil // an explicit null is "not given"
	}
	types := p.Types
	if p.Type != "" {
		types = []string{p.Type}
	}
	if len(types) > 0 && !slices.ContainsFunc(types, func(t string) bool { return hasType(v, t) }) {
		return fmt.Errorf("%s must be %s", name, typeWords(types))
	}
	if n, ok := v.(float64); ok {
		if p.Minimum != nil && n < *p.Minimum {
			return fmt.Errorf("%s must be at least %s", name, number(*p.Minimum))
		}
		if p.Maximum != nil && n > *p.Maximum {
			return fmt.Errorf("%s must be at most %s", name, number(*p.Maximum))
		}
	}
	if len(p.Enum) > 0 && !slices.ContainsFunc(p.Enum, func(e any) bool { return e == v }) {
		words := make([]string, len(p.Enum))
		for i, e := range p.Enum {
			b, _ := json.Marshal(e)
			words[i] = string(b)
		}
		return fmt.Errorf("%s must be one of %s", name, strings.Join(words, ", "))
	}
	return nil
}

// hasType reports whether the decoded JSON value v has JSON Schema type t.
func hasType(v any, t string) bool {
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		n, ok := v.(float64)
		return ok && n == math.Trunc(n) && !math.IsInf(n, 0)
	case "number":
		_, ok := v.(float64)
		return ok
	case "object":
		_, ok := v.(map[string]any)
		return ok
	case "array":
		_, ok := v.([]any)
		return ok
	case "null":
		return v == nil
	}
	return false
}

func typeWords(types []string) string {
	words := make([]string, 0, len(types))
	for _, t := range types {
		if t == "null" {
			continue
		}
		article := "a"
		if t == "integer" || t == "object" || t == "array" {
			article = "an"
		}
		words = append(words, article+" "+t)
	}
	return strings.Join(words, " or ")
}

// number prints a bound as people write it: 500, not 500.000000.
func number(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprint(f)
}
