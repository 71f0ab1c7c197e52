package config

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// redacted is what a DSN that cannot be masked prints instead.
const redacted = "[redacted]"

// DSN is a connection URL that may carry a password in its user info or
// query (store.dsn, limits.redis_url). It prints with the password
// replaced by "xxxxx", as url.URL.Redacted does, so that messages can still
// name the database or server they are about; a value that cannot be parsed
// as a URL prints as "[redacted]" because it cannot be masked reliably.
// Reveal gives the full value to the one place that connects.
type DSN string

// Reveal returns the full DSN, password included. Use it only to connect.
func (d DSN) Reveal() string { return string(d) }

// String returns the DSN with its password masked (see DSN).
func (d DSN) String() string { return redactDSN(string(d)) }

// GoString returns the same as String, so %#v cannot print the password.
func (d DSN) GoString() string { return d.String() }

// Format implements fmt.Formatter so that no verb prints the password.
func (d DSN) Format(f fmt.State, verb rune) { formatPlaceholder(f, verb, d.String()) }

// MarshalJSON encodes the masked DSN.
func (d DSN) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// MarshalText encodes the masked DSN.
func (d DSN) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// LogValue implements slog.LogValuer with the masked DSN.
func (d DSN) LogValue() slog.Value { return slog.StringValue(d.String()) }

// Scheme returns the lower-cased part of the DSN before its first ":"
// ("sqlite", "postgres", "postgresql", "redis", "rediss"), or "" if there is
// none.
func (d DSN) Scheme() string {
	s, _, ok := strings.Cut(string(d), ":")
	if !ok {
		return ""
	}
	return strings.ToLower(s)
}

func formatPlaceholder(f fmt.State, verb rune, text string) {
	if verb == 'q' {
		text = strconv.Quote(text)
	}
	_, _ = io.WriteString(f, text)
}

// redactDSN masks the password of a connection URL. It never returns a
// password: when it cannot tell where the password is, it hides everything.
func redactDSN(raw string) string {
	if raw == "" {
		return ""
	}
	if strings.HasPrefix(strings.ToLower(raw), "sqlite:") {
		// A file path or :memory:; there is no password to hide.
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || !strings.Contains(raw, "://") {
		// Not scheme://..., so not a URL whose password we can locate
		// (a libpq "key=value" string, say): hide it all.
		return redacted
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			return redacted
		}
		changed := false
		for k := range q {
			// libpq reads a password from these query parameters too.
			if strings.EqualFold(k, "password") || strings.EqualFold(k, "sslpassword") {
				q[k] = []string{"xxxxx"}
				changed = true
			}
		}
		if changed {
			u.RawQuery = q.Encode()
		}
	}
	return u.Redacted()
}

// showURL renders a URL-valued setting for an error message: a parsable URL
// with its password masked; an unparsable one as is, unless it may hold user
// info, in which case it is hidden.
func showURL(raw string) string {
	u, err := url.Parse(raw)
	if strings.Contains(raw, "@") && (err != nil || u.User == nil) {
		// An "@" where url did not find user info: it cannot be masked
		// reliably, so hide the whole value.
		return redacted
	}
	if err != nil {
		return strconv.Quote(raw)
	}
	return strconv.Quote(u.Redacted())
}
