package tools

import (
	"slices"

	"github.com/google/jsonschema-go/jsonschema"
)

// portableNullable rewrites, in place, every nullable node of an output
// schema from a type array (`"type": ["null", "object"]`, what
// jsonschema-go reflects for a pointer, slice or map field) to an anyOf of
// single types (`"anyOf": [{"type": "null"}, {"type": "object", ...}]`).
// Both mean the same in JSON Schema 2020-12, but clients that map tool
// schemas onto a single-type dialect (the OpenAPI subset of Gemini function
// declarations) reject or flatten type arrays; the MCP Inspector's
// `tools/list --strict` reports each as a portability warning. Input
// schemas keep their type arrays: checkArgs reads them to word its
// messages, and clients fill them in, so an anyOf there would cost forms.
func portableNullable(s *jsonschema.Schema) {
	if s == nil {
		return
	}
	for _, p := range s.Properties {
		portableNullable(p)
	}
	for _, sub := range s.Defs {
		portableNullable(sub)
	}
	for _, list := range [][]*jsonschema.Schema{s.AnyOf, s.OneOf, s.AllOf, s.PrefixItems} {
		for _, sub := range list {
			portableNullable(sub)
		}
	}
	portableNullable(s.Items)
	portableNullable(s.AdditionalProperties)

	if len(s.Types) != 2 || !slices.Contains(s.Types, "null") {
		return
	}
	other := s.Types[0]
	if other == "null" {
		other = s.Types[1]
	}
	branch := *s
	branch.Types, branch.Type = nil, other
	branch.Description = ""
	*s = jsonschema.Schema{Description: s.Description, AnyOf: []*jsonschema.Schema{{Type: "null"}, &branch}}
}
