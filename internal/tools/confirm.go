package tools

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/butler-mcp/butler/internal/authz"
	"github.com/butler-mcp/butler/internal/catalog"
	"github.com/butler-mcp/butler/internal/identity"
)

// Human confirmation of sensitive calls (CONTRACT §13, docs/policy.md
// "Asking the person first").
//
// When a permit annotated @confirm is among the policies that allowed a
// call, the call runs only after the person accepts a form-mode
// elicitation that says what will happen. The question is asked after the
// final decision (so it names the job as Jenkins spells it and a
// trigger's effective parameters, read from Jenkins as the user) and
// before the tool sends Jenkins anything that changes it.
//
// How the question travels depends on the revision in use:
//
//   - before 2026-07-28, Butler sends elicitation/create to the client
//     while the call waits (ServerSession.Elicit), for at most
//     confirmTimeout; a transport that cannot carry a request to the client
//     (a stateless server) makes the call confirmation_required;
//   - from 2026-07-28, server-initiated requests are gone (SEP-2322): the
//     call answers an input-required result carrying the elicitation and a
//     request state, and the client retries the call with the person's
//     answer. The retry goes through every check again, and the answer is
//     taken only if the request state is the digest of the very call the
//     retry would run now (same user, tool, job and effective parameters):
//     an answer to one question never confirms another call.
//
// The answer is never taken from the tool's arguments: they are checked
// against the input schema, which admits no extra property, so an agent
// sending "confirmed": true gets invalid_argument before anything else.
// inputResponses and requestState are protocol fields set by the client
// application, not by the model.

// confirmInputKey names Butler's elicitation in an input-required result.
const confirmInputKey = "butler_confirm"

// confirmTimeout bounds how long a call waits for the person's answer to
// an elicitation sent while it waits (revisions before 2026-07-28).
const confirmTimeout = 5 * time.Minute

// ReasonDeclined is the reason of the forbidden error of a call the person
// declined or cancelled when asked to confirm it.
const ReasonDeclined = "declined"

// confirmation is one question to the person.
type confirmation struct {
	messages []string // the @confirm messages of the allowing permits
	summary  string   // what will happen, in words
	state    string   // the digest an answer must come back with
}

// newConfirmation describes the call about to run for p.
func newConfirmation(p identity.Principal, entry catalog.Tool, tg target, messages []string) confirmation {
	c := confirmation{messages: messages, summary: describeCall(p, entry, tg)}
	h := sha256.New()
	for _, s := range []string{"butler-confirm-v1", p.User, p.JenkinsUser, entry.Name, tg.resource, c.summary} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	c.state = "confirm-v1." + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
	return c
}

// text is the elicitation's message: the policies' messages, then what
// will happen.
func (c confirmation) text() string {
	return strings.Join(c.messages, "\n") + "\n\n" + c.summary + "\n\nAccept to go ahead, decline to stop."
}

func (c confirmation) params() *mcp.ElicitParams {
	return &mcp.ElicitParams{
		Mode:    "form",
		Message: c.text(),
		// Nothing to fill in: the answer is accept or decline.
		RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{}},
	}
}

// describeCall says in words what the call will do: "Trigger prod/deploy
// #? as alice with ENV=production, VERSION=1.4.2" (the build number is not
// known before Jenkins starts the build). Password and file parameters
// are not in tg.params (effectiveParams), so never shown.
func describeCall(p identity.Principal, entry catalog.Tool, tg target) string {
	who := p.JenkinsUser
	if who == "" {
		who = p.User
	}
	var b strings.Builder
	switch entry.Name {
	case catalog.TriggerJob:
		fmt.Fprintf(&b, "Trigger %s #? as %s", tg.job.String(), who)
		if len(tg.params) == 0 {
			b.WriteString(" with no parameters")
		} else {
			b.WriteString(" with ")
			b.WriteString(formatParams(tg.params))
		}
	case catalog.StopBuild:
		fmt.Fprintf(&b, "Stop %s as %s", tg.what, who)
	case catalog.CancelQueueItem:
		fmt.Fprintf(&b, "Cancel %s as %s", tg.what, who)
		if tg.hasJob {
			fmt.Fprintf(&b, " (a build of %s)", tg.job.String())
		}
	case catalog.SubmitInput:
		// Parameter names only: the question is also the reason of a
		// declined call's audit record, which never holds values.
		fmt.Fprintf(&b, "%s as %s", tg.summary, who)
	default:
		fmt.Fprintf(&b, "%s: %s as %s", entry.Title, tg.whatOr(entry.Name), who)
	}
	return b.String()
}

// formatParams writes parameters as NAME=value, sorted by name; strings
// as they are, other values as JSON. The values come from the agent, and
// the person reads them to decide: a value that could pass for more of the
// question (a line break, a ", " separator, "=", a quote, a control or
// Unicode format character, spaces around it) is shown quoted, and a long
// one cut to maxShownValue bytes with its length, so no value can write
// its own lines into the question.
func formatParams(params map[string]any) string {
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, k := range names {
		v := params[k]
		s, ok := v.(string)
		if !ok {
			data, err := json.Marshal(v)
			if err != nil {
				s = fmt.Sprint(v)
			} else {
				s = string(data)
			}
		}
		parts[i] = k + "=" + shownValue(s)
	}
	return strings.Join(parts, ", ")
}

// maxShownValue bounds a parameter value in a confirmation question.
const maxShownValue = 200

// shownValue is s as the question shows it (see formatParams).
func shownValue(s string) string {
	cut := ""
	if len(s) > maxShownValue {
		n := maxShownValue
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		cut = fmt.Sprintf("… (%d bytes)", len(s))
		s = s[:n]
	}
	plain := s != "" && strings.TrimSpace(s) == s && !strings.ContainsAny(s, ",=\"'`")
	for _, r := range s {
		if !plain {
			break
		}
		plain = unicode.IsPrint(r) && !unicode.Is(unicode.Cf, r)
	}
	if !plain {
		s = strconv.Quote(s)
	}
	return s + cut
}

// confirm asks the person to confirm a call dec allowed and that needs it.
// It returns nil when the person accepted; an input-required result to
// send the client (2026-07-28, first round); or the error the call ends
// with: forbidden with ReasonDeclined when the person declined or
// cancelled, confirmation_required when the client cannot be asked,
// conflict when the answer is for another call.
func (t *Toolset) confirm(ctx context.Context, req *mcp.CallToolRequest, p identity.Principal, entry catalog.Tool,
	tg target, dec authz.Decision) (*mcp.CallToolResult, error) {
	c := newConfirmation(p, entry, tg, dec.Confirm)
	if req == nil || req.Session == nil {
		return nil, c.required("this connection cannot ask the person")
	}
	if multiRoundTrip(req) {
		if req.Params != nil && req.Params.InputResponses != nil {
			resp, ok := req.Params.InputResponses[confirmInputKey]
			if ok {
				if req.Params.RequestState != c.state {
					// The answer was given to another question: the
					// arguments, the job's spelling or its parameter
					// defaults changed since the person was asked.
					return nil, Errorf(CodeConflict, "the confirmation given is not for this call (what it would do changed since the person was asked): call again to be asked about %s", c.summary)
				}
				return nil, c.answer(resp)
			}
		}
		if !canElicitForm(req.ClientCapabilities()) {
			return nil, c.required("the client does not support form elicitation")
		}
		return &mcp.CallToolResult{
			InputRequests: mcp.InputRequestMap{confirmInputKey: c.params()},
			RequestState:  c.state,
		}, nil
	}
	if !canElicitForm(req.ClientCapabilities()) {
		return nil, c.required("the client does not support form elicitation")
	}
	ctx, cancel := context.WithTimeout(ctx, confirmTimeout)
	defer cancel()
	res, err := req.Session.Elicit(ctx, c.params())
	if err != nil {
		t.deps.Logger.InfoContext(ctx, "confirmation could not be asked", "tool", entry.Name, "err", err)
		return nil, c.required("the client could not be asked: " + err.Error())
	}
	return nil, c.answer(res)
}

// answer is the outcome of the person's answer: nil for accept.
func (c confirmation) answer(resp mcp.InputResponse) error {
	res, ok := resp.(*mcp.ElicitResult)
	if ok && res.Action == "accept" {
		return nil
	}
	action := "gave no answer"
	if ok {
		switch res.Action {
		case "decline":
			action = "declined"
		case "cancel":
			action = "cancelled"
		default:
			action = fmt.Sprintf("answered %q", res.Action)
		}
	}
	e := Errorf(CodeForbidden, "declined: the person %s the confirmation of: %s", action, c.summary)
	e.Reason = ReasonDeclined
	return e
}

// required is the error of a call that needs a confirmation nobody can
// give here; it names what would need confirming.
func (c confirmation) required(why string) error {
	e := Errorf(CodeConfirmationRequired, "this call runs only after the person confirms it (%s), and %s: %s. Use an MCP client that supports form elicitation",
		strings.Join(c.messages, "; "), why, c.summary)
	e.Confirmation = c.summary
	return e
}

// multiRoundTrip reports whether the call is on a revision where input
// is asked by an input-required result (2026-07-28 and later).
func multiRoundTrip(req *mcp.CallToolRequest) bool {
	ip := req.Session.InitializeParams()
	return ip != nil && ip.ProtocolVersion >= "2026-07-28"
}

// canElicitForm reports whether a client with caps can answer a form-mode
// elicitation: it declared elicitation, with form, or with neither mode
// (before 2025-11-25 an empty elicitation capability meant form).
func canElicitForm(caps *mcp.ClientCapabilities) bool {
	if caps == nil || caps.Elicitation == nil {
		return false
	}
	e := caps.Elicitation
	return e.Form != nil || e.URL == nil
}
