package authn

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"time"
)

// claims is a JWT claims set (RFC 7519 §4) or an introspection answer
// (RFC 7662 §2.2), decoded with json.Number for numbers.
type claims map[string]any

// decodeClaims decodes one JSON object and nothing after it.
func decodeClaims(r io.Reader) (claims, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var c claims
	if err := dec.Decode(&c); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, errors.New("not a JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the JSON object")
	}
	return c, nil
}

func decodeClaimsBytes(b []byte) (claims, error) { return decodeClaims(bytes.NewReader(b)) }

// LookupClaim finds a claim in a decoded claims set by a dotted path, the
// way Options.UserClaim and Options.GroupsClaim name claims: a claim named
// by the whole path wins; otherwise each dot may separate an object's
// member from a path into it. Other packages that read a token's claims use
// it so a path means the same everywhere.
func LookupClaim(claims map[string]any, path string) (any, bool) { return lookupPath(claims, path) }

// lookup finds a claim by a dotted path. A claim named by the whole path
// wins; otherwise each dot may separate an object's member from a path into
// it, so "resource_access.my.app.roles" finds the client "my.app" too.
func (c claims) lookup(path string) (any, bool) { return lookupPath(c, path) }

func lookupPath(obj map[string]any, path string) (any, bool) {
	if v, ok := obj[path]; ok {
		return v, true
	}
	for i := 0; i < len(path); i++ {
		if path[i] != '.' {
			continue
		}
		if sub, ok := obj[path[:i]].(map[string]any); ok {
			if v, ok := lookupPath(sub, path[i+1:]); ok {
				return v, true
			}
		}
	}
	return nil, false
}

func (c claims) string(name string) string {
	s, _ := c[name].(string)
	return s
}

// maxNumericDate is 9999-12-31T23:59:59Z: later values, like negative ones,
// are no date a real issuer writes and would overflow time arithmetic.
const maxNumericDate = 253402300799

// numericDate reads a NumericDate (RFC 7519 §2): a JSON number of seconds,
// integer or not. Strings are refused.
func (c claims) numericDate(name string) (t time.Time, present bool, ok bool) {
	v, present := c[name]
	if !present {
		return time.Time{}, false, false
	}
	n, isNum := v.(json.Number)
	if !isNum {
		return time.Time{}, true, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > maxNumericDate {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true, true
}

// stringList reads an array of strings or a space-separated string. Empty
// lists are nil.
func stringList(v any) ([]string, bool) {
	var out []string
	switch v := v.(type) {
	case string:
		out = splitSpaces(v)
	case []any:
		out = make([]string, 0, len(v))
		for _, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	default:
		return nil, false
	}
	if len(out) == 0 {
		return nil, true
	}
	return out, true
}

// splitSpaces splits a space-delimited list (RFC 6749 §3.3: scope tokens
// separated by %x20) on ASCII spaces only, dropping empty elements. Other
// white space (tabs, U+00A0 no-break space, U+2003, ...) belongs to the
// element: "Not\u00a0release" is one group, never the group "release".
func splitSpaces(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, " ") {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

// audience reads aud (RFC 7519 §4.1.3): a string or an array of strings.
func (c claims) audience() (aud []string, present bool, ok bool) {
	v, present := c["aud"]
	if !present {
		return nil, false, false
	}
	if s, isString := v.(string); isString {
		return []string{s}, true, true
	}
	if _, isArray := v.([]any); !isArray {
		return nil, true, false
	}
	aud, ok = stringList(v)
	return aud, true, ok
}

// scopes merges "scope" (RFC 8693 §4.2, RFC 9068 §2.2.3: space-separated)
// and "scp" (Ory Hydra, Entra ID, Okta: an array or a space-separated
// string), keeping the first occurrence of each. A claim of another type is
// ignored: fewer scopes grant less.
func (c claims) scopes() []string {
	var out []string
	for _, name := range []string{"scope", "scp"} {
		list, _ := stringList(c[name])
		for _, s := range list {
			if !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
	}
	return out
}

// clientID is client_id (RFC 9068, RFC 7662), else azp (OIDC), else cid (Okta).
func (c claims) clientID() string {
	for _, name := range []string{"client_id", "azp", "cid"} {
		if s := c.string(name); s != "" {
			return s
		}
	}
	return ""
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// identity checks the claims and builds the Identity. For a JWT, exp, iss
// and aud are required and iat is checked. For an introspection answer
// (RFC 7662 §2.2 makes them optional) exp, nbf and iss are checked when
// present, and aud is required unless Introspection.AllowMissingAudience.
func (o *options) identity(c claims, now time.Time, jwt bool) (*Identity, *Error) {
	skew := o.ClockSkew
	id := &Identity{Opaque: !jwt}

	exp, present, ok := c.numericDate("exp")
	switch {
	case !present && jwt:
		return nil, invalid(ReasonMissingExp, "the token has no exp claim")
	case !present:
		id.Expiry = now.Add(o.intro.CacheTTL)
	case !ok:
		return nil, invalid(ReasonExp, "the exp claim is not a NumericDate")
	case !exp.Add(skew).After(now):
		return nil, invalid(ReasonExp, "the token expired at %s", stamp(exp))
	default:
		id.Expiry = exp
	}

	if nbf, present, ok := c.numericDate("nbf"); present {
		if !ok {
			return nil, invalid(ReasonNbf, "the nbf claim is not a NumericDate")
		}
		if now.Before(nbf.Add(-skew)) {
			return nil, invalid(ReasonNbf, "the token is not valid before %s", stamp(nbf))
		}
	}
	if iat, present, ok := c.numericDate("iat"); present && jwt {
		if !ok {
			return nil, invalid(ReasonIat, "the iat claim is not a NumericDate")
		}
		if iat.After(now.Add(skew)) {
			return nil, invalid(ReasonIat, "the token was issued in the future, at %s", stamp(iat))
		}
	}

	iss, present := c["iss"]
	issuer, _ := iss.(string)
	switch {
	case !present && jwt:
		return nil, invalid(ReasonIss, "the token has no iss claim")
	case present && issuer != o.Issuer:
		return nil, invalid(ReasonIss, "the token was not issued by %s", o.Issuer)
	}
	id.Issuer = o.Issuer

	aud, present, ok := c.audience()
	switch {
	case !present && jwt:
		return nil, invalid(ReasonAud, "the token has no aud claim")
	case present && !ok:
		return nil, invalid(ReasonAud, "the aud claim is neither a string nor an array of strings")
	case len(aud) == 0 && !jwt && o.intro.AllowMissingAudience:
		// Absent, or an empty array (Ory Hydra): no audience restriction,
		// which the configuration accepts.
	case len(aud) == 0 && !jwt:
		return nil, invalid(ReasonAud, "the introspection answer names no audience, so it does not say the token is for %s", strings.Join(o.Audiences, " or "))
	case !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(o.Audiences, a) }):
		return nil, invalid(ReasonAud, "the token's audience does not include %s", strings.Join(o.Audiences, " or "))
	}
	id.Audience = aud

	user, present := c.lookup(o.UserClaim)
	if !present {
		return nil, invalid(ReasonUserClaim, "the token has no %s claim naming the user", o.UserClaim)
	}
	if id.User, _ = user.(string); id.User == "" {
		return nil, invalid(ReasonUserClaim, "the %s claim is not a non-empty string", o.UserClaim)
	}

	if groups, present := c.lookup(o.GroupsClaim); present && groups != nil {
		if id.Groups, ok = stringList(groups); !ok {
			return nil, invalid(ReasonGroupsClaim, "the %s claim is neither an array of strings nor a space-separated string", o.GroupsClaim)
		}
	}
	id.Scopes = c.scopes()
	id.ClientID = c.clientID()
	id.TokenID = c.string("jti")
	return id, nil
}
