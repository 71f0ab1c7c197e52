package authn

import (
	"net/http"
	"strings"
)

// BearerToken returns the bearer token of r's Authorization header
// (RFC 6750 §2.1): the scheme "Bearer" in any case, one space, and one
// token68 credential. present is false when there is no Authorization
// header. A header that is there but holds no usable bearer token (another
// scheme, no credential, two spaces, several headers) is an *Error wrapping
// ErrInvalidToken with Reason "malformed".
//
// Tokens in the query string (RFC 6750 §2.3) or a form body (§2.2) are
// never read: they end up in logs and browser history.
func BearerToken(r *http.Request) (token string, present bool, err error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", false, nil
	case 1:
	default:
		return "", true, invalid(ReasonMalformed, "the request has several Authorization headers")
	}
	scheme, cred, ok := strings.Cut(values[0], " ")
	switch {
	case !strings.EqualFold(scheme, "Bearer"):
		return "", true, invalid(ReasonMalformed, "the Authorization header does not use the Bearer scheme")
	case !ok || cred == "":
		return "", true, invalid(ReasonMalformed, "the Authorization header has no bearer token")
	case !isToken68(cred):
		return "", true, invalid(ReasonMalformed, "the Authorization header does not hold exactly one bearer token (RFC 6750 §2.1)")
	}
	return cred, true, nil
}
