// Package secret holds String, the type of every secret value in Butler.
package secret

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
)

// redacted is what every secret prints instead of its value.
const redacted = "[redacted]"

// String is a secret that must never reach a log line, an error message,
// an answer or a dump of the configuration: API tokens, bearer tokens,
// client secrets and keys. It is the one secret type of Butler: the config
// holds its secrets as String, the principal its access token, a Jenkins
// credential its API token or bearer token. Every way Go has of printing a value (fmt with any verb, JSON,
// text and YAML marshaling, slog) shows "[redacted]" instead, and an empty
// String prints as empty so that "not configured" stays visible. Only
// Reveal gives the value, so the places that use it are easy to find.
//
// Keeping the redaction on the type, rather than on the code that logs,
// follows oauth2-proxy: nobody has to remember to mask a field.
type String string

// Reveal returns the secret value. Call it only where the value is used
// (an HTTP request to Jenkins or the IdP, a cipher key), never to log it.
func (s String) Reveal() string { return string(s) }

// String returns "[redacted]", or "" when the secret is empty.
func (s String) String() string {
	if s == "" {
		return ""
	}
	return redacted
}

// GoString returns the same as String, so %#v cannot print the value.
func (s String) GoString() string { return s.String() }

// Format implements fmt.Formatter so that every verb, including %x, %q and
// %d, prints the placeholder rather than the bytes of the value.
func (s String) Format(f fmt.State, verb rune) { formatPlaceholder(f, verb, s.String()) }

// MarshalJSON encodes the placeholder, never the value.
func (s String) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the placeholder, never the value. YAML and other
// text encoders use it.
func (s String) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue implements slog.LogValuer so that a String logged as an
// attribute, by any handler, shows the placeholder.
func (s String) LogValue() slog.Value { return slog.StringValue(s.String()) }

// formatPlaceholder writes text for any verb, quoted for %q.
func formatPlaceholder(f fmt.State, verb rune, text string) {
	if verb == 'q' {
		text = strconv.Quote(text)
	}
	_, _ = io.WriteString(f, text)
}
