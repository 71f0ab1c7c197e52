package authn

import (
	"strings"
)

// Challenge is a WWW-Authenticate challenge of the Bearer scheme
// (RFC 6750 §3), with the resource_metadata parameter of RFC 9728 §5.1 that
// tells an MCP client where to start the authorization flow.
type Challenge struct {
	// ResourceMetadata is the URL of the protected resource metadata:
	// public_url + "/.well-known/oauth-protected-resource/mcp".
	ResourceMetadata string
	// Scopes are the scopes needed: all supported ones when no token was
	// sent, those of the call on insufficient_scope (RFC 6750 §3.1).
	Scopes []string
	// Error is "", "invalid_token" or "insufficient_scope".
	Error string
	// Description is the error_description: which check failed. It must
	// not contain the token.
	Description string
}

// String returns the WWW-Authenticate value:
//
//	Bearer resource_metadata="...", scope="a b", error="...", error_description="..."
//
// Empty parameters are left out. Values are RFC 7235 §2.1 quoted-strings
// (backslash and double quote escaped); control characters are removed and
// non-ASCII characters replaced by "?", so a value can neither end the
// header nor break the RFC 6750 §3 character set of error_description.
func (c Challenge) String() string {
	var b strings.Builder
	b.WriteString("Bearer")
	sep := " "
	param := func(name, value string) {
		b.WriteString(sep)
		b.WriteString(name)
		b.WriteString(`="`)
		writeQuoted(&b, value)
		b.WriteByte('"')
		sep = ", "
	}
	if c.ResourceMetadata != "" {
		param("resource_metadata", c.ResourceMetadata)
	}
	if len(c.Scopes) > 0 {
		param("scope", strings.Join(c.Scopes, " "))
	}
	if c.Error != "" {
		param("error", c.Error)
	}
	if c.Description != "" {
		param("error_description", c.Description)
	}
	return b.String()
}

func writeQuoted(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r < 0x20 || r == 0x7f:
			// Dropped: a newline here would end the header.
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
}
