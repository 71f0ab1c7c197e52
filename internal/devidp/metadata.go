package devidp

import (
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// claimsSupported lists the claims of access and ID tokens.
var claimsSupported = []string{
	"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "auth_time", "nonce", "at_hash", "c_hash", "azp",
	"scope", "client_id", "groups", "preferred_username", "name", "email", "email_verified", "act",
}

// authServerMetadata is both the OpenID Provider Metadata (OIDC Discovery §3)
// and the OAuth 2.0 Authorization Server Metadata (RFC 8414 §2). It is written
// here rather than taken from the library, whose document has neither
// registration_endpoint nor client_id_metadata_document_supported and
// advertises grants and response types this provider refuses.
type authServerMetadata struct {
	Issuer                                    string   `json:"issuer"`
	AuthorizationEndpoint                     string   `json:"authorization_endpoint"`
	TokenEndpoint                             string   `json:"token_endpoint"`
	JWKSURI                                   string   `json:"jwks_uri"`
	RegistrationEndpoint                      string   `json:"registration_endpoint"`
	UserinfoEndpoint                          string   `json:"userinfo_endpoint"`
	IntrospectionEndpoint                     string   `json:"introspection_endpoint"`
	RevocationEndpoint                        string   `json:"revocation_endpoint"`
	ScopesSupported                           []string `json:"scopes_supported"`
	ResponseTypesSupported                    []string `json:"response_types_supported"`
	ResponseModesSupported                    []string `json:"response_modes_supported"`
	GrantTypesSupported                       []string `json:"grant_types_supported"`
	SubjectTypesSupported                     []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported          []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported         []string `json:"token_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	RevocationEndpointAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported             []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                           []string `json:"claims_supported"`
	// ClientIDMetadataDocumentSupported: client IDs may be metadata document
	// URLs (draft-ietf-oauth-client-id-metadata-document; MCP 2025-11-25).
	ClientIDMetadataDocumentSupported bool `json:"client_id_metadata_document_supported"`
}

// metadata returns the discovery document for issuer.
func (p *Provider) metadata(issuer string) authServerMetadata {
	return authServerMetadata{
		Issuer:                                    issuer,
		AuthorizationEndpoint:                     endpoints.Authorization.Absolute(issuer),
		TokenEndpoint:                             endpoints.Token.Absolute(issuer),
		JWKSURI:                                   endpoints.JwksURI.Absolute(issuer),
		RegistrationEndpoint:                      issuer + registerPath,
		UserinfoEndpoint:                          endpoints.Userinfo.Absolute(issuer),
		IntrospectionEndpoint:                     endpoints.Introspection.Absolute(issuer),
		RevocationEndpoint:                        endpoints.Revocation.Absolute(issuer),
		ScopesSupported:                           p.scopesSupported(),
		ResponseTypesSupported:                    []string{string(oidc.ResponseTypeCode)},
		ResponseModesSupported:                    []string{string(oidc.ResponseModeQuery), string(oidc.ResponseModeFragment), string(oidc.ResponseModeFormPost)},
		GrantTypesSupported:                       []string{string(oidc.GrantTypeCode), string(oidc.GrantTypeRefreshToken), string(oidc.GrantTypeClientCredentials), string(oidc.GrantTypeTokenExchange)},
		SubjectTypesSupported:                     []string{"public"},
		IDTokenSigningAlgValuesSupported:          []string{"RS256"},
		TokenEndpointAuthMethodsSupported:         []string{string(oidc.AuthMethodNone), string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost)},
		IntrospectionEndpointAuthMethodsSupported: []string{string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost)},
		RevocationEndpointAuthMethodsSupported:    []string{string(oidc.AuthMethodNone), string(oidc.AuthMethodBasic), string(oidc.AuthMethodPost)},
		CodeChallengeMethodsSupported:             []string{string(oidc.CodeChallengeMethodS256)},
		ClaimsSupported:                           claimsSupported,
		ClientIDMetadataDocumentSupported:         true,
	}
}

// serveMetadata answers both well-known paths with the same document; an MCP
// client tries RFC 8414's first.
func (p *Provider) serveMetadata(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-cache")
	writeJSON(w, http.StatusOK, p.metadata(p.Issuer()))
}
