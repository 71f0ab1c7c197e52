// Package devidp is a development OAuth 2.0 / OpenID Connect provider for a
// handful of demo users.
//
// DEVELOPMENT ONLY. It is used by `butler demo` and by tests, and by nothing
// else: `butler serve` never imports it, and production deployments use a real
// identity provider (Keycloak, Entra ID, Okta, ...). It has no passwords — the
// login page lets whoever reaches it sign in as any configured user — and keeps
// everything (clients, codes, refresh tokens, keys) in memory.
//
// LOOPBACK ONLY. [New] refuses an issuer whose host is not 127.0.0.0/8, ::1 or
// localhost, [Provider.Start] refuses to listen anywhere else, and the handler
// answers 403 to a request whose Host header is not a loopback name (a defence
// against DNS rebinding from a browser).
//
// The OpenID provider machinery — request parsing, client authentication,
// redirect URI validation, authorization codes, ID tokens, the JWKS, userinfo,
// introspection and revocation — is github.com/zitadel/oidc/v3/pkg/op, wired
// through its [op.Server] interface with a Storage written for this package.
// The package adds what an MCP client needs and the library does not do:
//
//   - RFC 8414 metadata at /.well-known/oauth-authorization-server (the same
//     document as /.well-known/openid-configuration), with registration_endpoint
//     and client_id_metadata_document_supported;
//   - RFC 7591 dynamic client registration at /register;
//   - client ID metadata documents: a client_id that is an https URL (or, for
//     tests, an http loopback URL) is fetched and used as the client's metadata;
//   - RFC 8707 resource indicators: the access token's aud is the requested
//     resource, which must be one of [Options.Resources];
//   - PKCE S256 required for public clients, "plain" refused for everyone;
//   - access tokens that are RS256 JWTs (RFC 9068, typ "at+jwt") with scope,
//     client_id, groups, preferred_username and name claims, minted by one
//     function shared by every grant and by [Provider.IssueToken];
//   - RFC 8693 token exchange for confidential clients, re-targeting a user's
//     access token to another configured resource.
//
// Supported grants: authorization_code (with PKCE), refresh_token (rotated on
// every use; reuse of a rotated token revokes the whole chain),
// client_credentials (clients created with [Provider.CreateClient] or
// [Provider.AddClient]) and urn:ietf:params:oauth:grant-type:token-exchange.
//
// With net/http/httptest, learn the address before building the provider so the
// issuer is known:
//
//	srv := httptest.NewUnstartedServer(nil)
//	p, err := devidp.New(devidp.Options{Issuer: "http://" + srv.Listener.Addr().String(), ...})
//	srv.Config.Handler = p.Handler()
//	srv.Start()
//
// or simply call [Provider.Start] with "127.0.0.1:0".
package devidp
