package authn_test

import (
	"fmt"
	"net/http/httptest"

	"github.com/butler-mcp/butler/internal/authn"
)

// The challenge of a request without a token, and of one whose token
// failed a check (docs/http.md, RFC 6750 §3, RFC 9728 §5.1).
func ExampleChallenge_String() {
	base := authn.Challenge{
		ResourceMetadata: "https://butler.example.com/.well-known/oauth-protected-resource/mcp",
		Scopes:           []string{"jenkins:read", "jenkins:build"},
	}
	fmt.Println(base)

	failed := base
	failed.Error = "invalid_token"
	failed.Description = "the token expired at 2026-03-01T12:00:00Z"
	fmt.Println(failed)
	// Output:
	// Bearer resource_metadata="https://butler.example.com/.well-known/oauth-protected-resource/mcp", scope="jenkins:read jenkins:build"
	// Bearer resource_metadata="https://butler.example.com/.well-known/oauth-protected-resource/mcp", scope="jenkins:read jenkins:build", error="invalid_token", error_description="the token expired at 2026-03-01T12:00:00Z"
}

func ExampleBearerToken() {
	r := httptest.NewRequest("POST", "/mcp?access_token=ignored", nil)
	r.Header.Set("Authorization", "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln")
	token, present, err := authn.BearerToken(r)
	fmt.Println(token, present, err)

	r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	_, present, err = authn.BearerToken(r)
	fmt.Println(present, err)
	// Output:
	// eyJhbGciOiJFUzI1NiJ9.e30.c2ln true <nil>
	// true invalid token: the Authorization header does not use the Bearer scheme
}
