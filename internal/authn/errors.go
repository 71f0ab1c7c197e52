package authn

import (
	"errors"
	"fmt"
)

// ErrInvalidToken is wrapped by every verification failure that is the
// token's fault: the caller should get HTTP 401 with error="invalid_token"
// (RFC 6750 §3.1) and obtain a new token.
var ErrInvalidToken = errors.New("invalid token")

// ErrUnavailable is wrapped when verifying a token needs the authorization
// server and it cannot be reached: no cached key for the token's kid and the
// key set cannot be fetched, or the introspection endpoint (RFC 7662) does
// not answer. The token may well be valid; the caller should answer 503, not
// 401, so the client retries instead of discarding its token.
var ErrUnavailable = errors.New("authorization server unavailable")

// Reasons are the values of Error.Reason: short, stable, machine-readable
// names of the check that failed, for metrics and audit records.
const (
	ReasonMalformed   = "malformed"    // not a usable bearer token, JWS (RFC 7515) or claims set (RFC 7519)
	ReasonTooLarge    = "too_large"    // longer than Options.MaxTokenBytes
	ReasonAlg         = "alg"          // the JWS alg is not allowed, or does not fit the key
	ReasonCrit        = "crit"         // the JWS has critical header parameters (RFC 7515 §4.1.11)
	ReasonSignature   = "signature"    // the signature does not verify
	ReasonUnknownKID  = "unknown_kid"  // no key in the issuer's key set for the token's kid
	ReasonExp         = "exp"          // expired, or exp is not a NumericDate
	ReasonMissingExp  = "missing_exp"  // a JWT without exp
	ReasonNbf         = "nbf"          // not valid yet
	ReasonIat         = "iat"          // issued in the future
	ReasonIss         = "iss"          // another issuer
	ReasonAud         = "aud"          // issued for another audience (resource)
	ReasonUserClaim   = "user_claim"   // the user claim is missing or not a non-empty string
	ReasonGroupsClaim = "groups_claim" // the groups claim is neither an array of strings nor a string
	ReasonInactive    = "inactive"     // introspection says active:false (RFC 7662 §2.2)
	ReasonTokenType   = "token_type"   // introspection says it is not an access token (e.g. a refresh token)
	ReasonUnavailable = "unavailable"  // the authorization server is needed and cannot be reached
)

// Error is the error of every failed verification. Its Description is safe
// to send to the client as the RFC 6750 error_description: it names the
// failed check and never contains the token, key material or the text of a
// library's error.
type Error struct {
	// Reason is one of the Reason constants.
	Reason string
	// Description says, for a human, which check failed.
	Description string
	// Err is ErrInvalidToken or ErrUnavailable.
	Err error
}

// Error returns the sentinel's text and the description.
func (e *Error) Error() string {
	if e.Description == "" {
		return e.Err.Error() + " (" + e.Reason + ")"
	}
	return e.Err.Error() + ": " + e.Description
}

// Unwrap returns ErrInvalidToken or ErrUnavailable, for errors.Is.
func (e *Error) Unwrap() error { return e.Err }

func invalid(reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Description: fmt.Sprintf(format, args...), Err: ErrInvalidToken}
}

func unavailable(format string, args ...any) *Error {
	return &Error{Reason: ReasonUnavailable, Description: fmt.Sprintf(format, args...), Err: ErrUnavailable}
}

// safeText returns s for inclusion in a description when it is short
// printable ASCII, else a placeholder: values such as a kid or an alg come
// from the token and must not carry anything surprising into a header.
func safeText(s string) string {
	const limit = 64
	if len(s) > limit {
		return "(too long to show)"
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return "(not printable)"
		}
	}
	return s
}
