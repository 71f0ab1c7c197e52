package devidp

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// registerPath is the RFC 7591 registration endpoint. The library has none.
const registerPath = "/register"

// maxRegistrationBytes bounds a registration request body.
const maxRegistrationBytes = 64 << 10

// registrationRequest is the client metadata this provider reads (RFC 7591
// §2); other fields are accepted and ignored.
type registrationRequest struct {
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
	ApplicationType         string   `json:"application_type"`
}

// registrationResponse is RFC 7591 §3.2.1. The secret is returned once; only
// its hash is kept.
type registrationResponse struct {
	ClientID                string   `json:"client_id"`
	ClientSecret            string   `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at,omitempty"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name,omitempty"`
	Scope                   string   `json:"scope,omitempty"`
	ApplicationType         string   `json:"application_type,omitempty"`
}

// serveRegister is the dynamic client registration endpoint (RFC 7591).
// Public clients (token_endpoint_auth_method none) get no secret;
// client_secret_basic (the default) and client_secret_post clients get a
// generated one. Only authorization_code and refresh_token may be registered.
func (p *Provider) serveRegister(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSONError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be application/json")
		return
	}
	var req registrationRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxRegistrationBytes))
	if err := dec.Decode(&req); err != nil {
		writeJSONError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not a JSON client metadata object")
		return
	}

	method := oidc.AuthMethod(req.TokenEndpointAuthMethod)
	if method == "" {
		method = oidc.AuthMethodBasic // RFC 7591 §2
	}
	var secret string
	switch method {
	case oidc.AuthMethodNone:
	case oidc.AuthMethodBasic, oidc.AuthMethodPost:
		secret = randomID(32)
	default:
		writeJSONError(w, http.StatusBadRequest, "invalid_client_metadata",
			"token_endpoint_auth_method must be none, client_secret_basic or client_secret_post")
		return
	}
	if len(req.RedirectURIs) == 0 {
		writeJSONError(w, http.StatusBadRequest, "invalid_redirect_uri", "redirect_uris is required")
		return
	}
	for _, rt := range req.ResponseTypes {
		if rt != string(oidc.ResponseTypeCode) {
			writeJSONError(w, http.StatusBadRequest, "invalid_client_metadata", "only the code response type is supported")
			return
		}
	}
	grants := req.GrantTypes
	if len(grants) == 0 {
		grants = []string{string(oidc.GrantTypeCode)} // RFC 7591 §2
	}

	c, err := p.newClient(clientMeta{
		id:           "dcr-" + randomID(16),
		secret:       secret,
		name:         req.ClientName,
		authMethod:   method,
		redirectURIs: req.RedirectURIs,
		scopes:       p.filterScopes(req.Scope),
		grants:       grants,
	})
	if err != nil {
		code := "invalid_client_metadata"
		if errors.Is(err, errInvalidRedirectURI) {
			code = "invalid_redirect_uri"
		}
		writeJSONError(w, http.StatusBadRequest, code, err.Error())
		return
	}
	if err := p.store.addClient(c); err != nil {
		writeJSONError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "no more clients can be registered")
		return
	}
	p.log.InfoContext(r.Context(), "devidp: client registered", "client_id", c.id, "client_name", c.name,
		"redirect_uris", c.redirectURIs, "auth_method", method)

	resp := registrationResponse{
		ClientID:                c.id,
		ClientSecret:            secret,
		ClientIDIssuedAt:        p.now().Unix(),
		RedirectURIs:            c.redirectURIs,
		TokenEndpointAuthMethod: string(method),
		ResponseTypes:           []string{string(oidc.ResponseTypeCode)},
		ClientName:              c.name,
		Scope:                   strings.Join(c.scopes, " "),
	}
	for _, g := range c.grantTypes {
		resp.GrantTypes = append(resp.GrantTypes, string(g))
	}
	if secret != "" {
		never := int64(0)
		resp.ClientSecretExpiresAt = &never
	}
	// The type the redirect URIs imply is the one the provider applies.
	resp.ApplicationType = "web"
	if c.ApplicationType() == op.ApplicationTypeNative {
		resp.ApplicationType = "native"
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, resp)
}

// writeJSON writes v as the JSON body with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeJSONError writes an OAuth error body (RFC 6749 §5.2).
func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}
