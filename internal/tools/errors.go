package tools

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/butler-mcp/butler/internal/audit"
	"github.com/butler-mcp/butler/internal/credentials"
	"github.com/butler-mcp/butler/internal/jenkins"
	"github.com/butler-mcp/butler/internal/jobpath"
	"github.com/butler-mcp/butler/internal/store"
)

// UnavailableRetryAfter is the retry_after_seconds of an unavailable
// error: about one store deadline.
const UnavailableRetryAfter = 5

// Error codes of docs/tools.md "Tool errors".
const (
	CodeInvalidArgument    = "invalid_argument"
	CodeForbidden          = "forbidden"
	CodeNotFound           = "not_found"
	CodeConflict           = "conflict"
	CodeNotLinked          = "jenkins_account_not_linked"
	CodeRateLimited        = "rate_limited"
	CodeJenkinsUnavailable = "jenkins_unavailable"
	// CodeUnavailable: Butler's own state cannot be used right now (the
	// store does not answer, or the audit log cannot take the call's
	// record); the call did not run, or failed before it reached Jenkins
	// in a way that is safe to retry.
	CodeUnavailable = "unavailable"
	CodeInternal    = "internal"
	// Denials by authentication or scope. They reach a tool only when the
	// HTTP layer did not answer them first (stdio, or defense in depth).
	CodeUnauthenticated   = "unauthenticated"
	CodeInsufficientScope = "insufficient_scope"
	// CodeConfirmationRequired: a policy asks the person to confirm the
	// call (@confirm, CONTRACT §13) and this client cannot ask them (no
	// form-mode elicitation); the call did not run.
	CodeConfirmationRequired = "confirmation_required"
)

// ReasonCredentialRejected is the reason of a jenkins_account_not_linked
// error when the user's credential exists but Jenkins rejected it
// (docs/tools.md).
const ReasonCredentialRejected = "credential_rejected"

// Error is a tool error: the structured error of a result with isError set.
// Its fields are what the caller sees; nothing in it may carry a secret.
type Error struct {
	Code               string   `json:"code"`
	Status             int      `json:"status"`
	Message            string   `json:"message"`
	RequiredPermission string   `json:"required_permission,omitempty"`
	RequiredScopes     []string `json:"required_scopes,omitempty"`
	ConnectURL         string   `json:"connect_url,omitempty"`
	// Reason refines the code: ReasonCredentialRejected for a
	// jenkins_account_not_linked whose credential Jenkins rejected,
	// ReasonDeclined for a forbidden call the person declined to confirm.
	Reason            string `json:"reason,omitempty"`
	RetryAfterSeconds int    `json:"retry_after_seconds,omitempty"`
	RequestID         string `json:"request_id,omitempty"`
	// Confirmation is what the person would have to confirm, in words
	// ("Trigger prod/deploy #? as alice with ENV=production"), for
	// confirmation_required.
	Confirmation string `json:"confirmation,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns a tool error with the code's usual status.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Status: statusOf(code), Message: fmt.Sprintf(format, args...)}
}

func statusOf(code string) int {
	switch code {
	case CodeInvalidArgument:
		return http.StatusBadRequest
	case CodeForbidden, CodeInsufficientScope:
		return http.StatusForbidden
	case CodeUnauthenticated:
		return http.StatusUnauthorized
	case CodeNotFound:
		return http.StatusNotFound
	case CodeConflict:
		return http.StatusConflict
	case CodeNotLinked, CodeConfirmationRequired:
		return http.StatusPreconditionRequired
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeJenkinsUnavailable:
		return http.StatusBadGateway
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// IsDenial reports whether code is a denial (audited as "deny") rather
// than an error.
func IsDenial(code string) bool {
	return code == CodeForbidden || code == CodeUnauthenticated || code == CodeInsufficientScope ||
		code == CodeConfirmationRequired
}

// mapError turns any error from a tool into a tool error. It is the one
// place where Go errors become codes.
func (t *Toolset) mapError(err error, what string, requestID string) *Error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	if errors.Is(err, jobpath.ErrInvalid) {
		return Errorf(CodeInvalidArgument, "%v", err)
	}
	if errors.Is(err, store.ErrUnavailable) || errors.Is(err, audit.ErrFull) {
		e := Errorf(CodeUnavailable, "Butler cannot reach its database right now; retry in %d s (request id %s)", UnavailableRetryAfter, requestID)
		if errors.Is(err, audit.ErrFull) {
			e.Message = fmt.Sprintf("Butler cannot record this call in its audit log right now, so it does not run it; retry in %d s (request id %s)", UnavailableRetryAfter, requestID)
		}
		e.RetryAfterSeconds = UnavailableRetryAfter
		return e
	}
	if errors.Is(err, credentials.ErrRejected) {
		return t.rejected("Jenkins rejected your stored API token earlier (it may have been revoked or expired), so Butler no longer sends it; link a new one")
	}
	if errors.Is(err, credentials.ErrNotLinked) {
		return t.notLinked("you have not linked your Jenkins account to Butler yet")
	}
	if errors.Is(err, credentials.ErrExchangeRefused) {
		// The IdP answered with a token Butler will not use (another
		// user's, not an access token, the caller's own): nothing went to
		// Jenkins.
		e := Errorf(CodeJenkinsUnavailable, "could not obtain a Jenkins token for you: %v (request id %s)", err, requestID)
		e.Status = http.StatusBadGateway
		return e
	}
	if errors.Is(err, credentials.ErrExchangeUnavailable) {
		e := Errorf(CodeJenkinsUnavailable, "could not obtain a Jenkins token for you: the identity provider cannot be reached (request id %s)", requestID)
		e.Status = http.StatusServiceUnavailable
		return e
	}
	if errors.Is(err, credentials.ErrExchange) {
		return Errorf(CodeForbidden, "the identity provider refused to exchange your token for a Jenkins token")
	}
	var je *jenkins.Error
	if errors.As(err, &je) {
		switch {
		case errors.Is(je, jenkins.ErrNotFound):
			// The same words whether the item is missing or hidden.
			return Errorf(CodeNotFound, "%s not found (it does not exist or you may not see it)", what)
		case errors.Is(je, jenkins.ErrForbidden):
			e := Errorf(CodeForbidden, "Jenkins denied %s", what)
			if je.RequiredPermission != "" {
				e.RequiredPermission = je.RequiredPermission
				e.Message += ": you lack the permission " + je.RequiredPermission
			}
			return e
		case errors.Is(je, jenkins.ErrUnauthorized):
			msg := "Jenkins rejected your credential (HTTP 401)"
			if je.Anonymous {
				msg = "Jenkins did not accept your credential: it ran the request as anonymous"
			}
			switch t.deps.Credentials.(type) {
			case *credentials.Exchange:
				msg += "; the token exchanged for you was refused (check Jenkins's jwt-auth-filter configuration); retry to get a new one"
			case *credentials.Stored:
				msg += "; your stored API token may have been revoked or expired, and Butler will not send it again: link a new one"
			default:
				msg += "; check the configured Jenkins user and API token"
			}
			return t.rejected(msg)
		case errors.Is(je, jenkins.ErrConflict):
			detail := je.Detail
			if detail == "" {
				detail = "the job is disabled or not buildable"
			}
			return Errorf(CodeConflict, "Jenkins refused %s: %s", what, detail)
		case errors.Is(je, jenkins.ErrBadRequest):
			msg := fmt.Sprintf("Jenkins refused %s as invalid", what)
			if je.Detail != "" {
				msg += ": " + je.Detail
			}
			return Errorf(CodeInvalidArgument, "%s", msg)
		case errors.Is(je, jenkins.ErrUnavailable):
			e := Errorf(CodeJenkinsUnavailable, "Jenkins is unavailable for %s", what)
			switch {
			case je.Timeout:
				e.Status = http.StatusGatewayTimeout
				e.Message += ": it did not answer in time"
			case je.Status == 0:
				e.Status = http.StatusServiceUnavailable
				e.Message += ": it cannot be reached"
			default:
				e.Message += fmt.Sprintf(": it answered HTTP %d", je.Status)
				if je.Detail != "" && je.Status < 500 {
					e.Message += " (" + je.Detail + ")"
				}
			}
			return e
		}
	}
	e := Errorf(CodeInternal, "internal error (request id %s)", requestID)
	return e
}

// rejected is jenkins_account_not_linked for a credential Jenkins
// rejected (CONTRACT: reason credential_rejected, with connect_url).
func (t *Toolset) rejected(why string) *Error {
	e := t.notLinked(why)
	e.Reason = ReasonCredentialRejected
	return e
}

func (t *Toolset) notLinked(why string) *Error {
	e := Errorf(CodeNotLinked, "%s", why)
	if t.deps.ConnectURL != "" {
		e.ConnectURL = t.deps.ConnectURL
		e.Message += ": open " + t.deps.ConnectURL + " to link it"
	}
	return e
}
