// Package authn verifies the OAuth 2.0 bearer tokens (RFC 6750) that MCP
// clients send on behalf of users, as a resource server of the company's
// identity provider (Keycloak, Okta, Auth0, Entra ID, Ory Hydra).
//
// A Verifier checks JWT access tokens (RFC 7519, RFC 9068) signed with a
// key from the issuer's JWK Set (RFC 7517), found through the issuer's
// metadata (RFC 8414, OpenID Connect Discovery), and opaque tokens by
// introspection (RFC 7662). Keys are cached and fetched again only for an
// unknown kid (at most once per JWKSMinRefresh, concurrent fetches merged)
// and every JWKSRefreshInterval; when the issuer is down, cached keys keep
// verifying. Verified tokens are cached by their SHA-256 until they expire,
// so a token's signature is checked once, not on every request.
// Introspection makes at most one call per token and 16 in all at once
// (beyond that a token is refused as unavailable, to be retried); negative
// answers are cached for 10 s and apart from active ones, so junk tokens
// neither cost a call each time nor push real tokens' answers out.
//
// The package also writes the WWW-Authenticate challenges (Challenge),
// serves the protected resource metadata (RFC 9728,
// ResourceMetadataHandler) and reads the token from a request
// (BearerToken). It knows nothing of tools or Jenkins.
//
// Tokens and keys are never logged, never put in an error, and never used
// as cache keys; logs carry only reasons and kids.
package authn
