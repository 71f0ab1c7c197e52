package authn

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxResponseBytes bounds every answer read from the authorization server.
const maxResponseBytes = 1 << 20

// metadata is the part of the authorization server's metadata (RFC 8414 §2,
// OpenID Connect Discovery 1.0 §3) that Butler uses.
type metadata struct {
	Issuer        string `json:"issuer"`
	JWKSURI       string `json:"jwks_uri"`
	TokenEndpoint string `json:"token_endpoint"`
}

// errNoJWKSURI says the issuer's metadata has no jwks_uri: it issues no
// JWTs Butler could verify, so only introspection can tell.
var errNoJWKSURI = errors.New("the issuer's metadata has no jwks_uri")

// discoveryURLs are the places to look for the issuer's metadata, in the
// order of the MCP authorization specification (2025-11-25, "Authorization
// Server Metadata Discovery"): RFC 8414 §3.1 first, then OpenID Connect
// Discovery with the well-known segment inserted (RFC 8414 §5) and, for an
// issuer with a path, appended (OIDC Discovery §4.1, as Keycloak serves it).
func discoveryURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	base := u.Scheme + "://" + u.Host
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	if path == "" {
		return []string{
			base + "/.well-known/oauth-authorization-server",
			base + "/.well-known/openid-configuration",
		}
	}
	return []string{
		base + "/.well-known/oauth-authorization-server" + path,
		base + "/.well-known/openid-configuration" + path,
		base + path + "/.well-known/openid-configuration",
	}
}

// discover fetches the issuer's metadata from the first place that serves
// a document for exactly this issuer. A document naming another issuer is
// refused (RFC 8414 §3.3): it would let one tenant's metadata stand in for
// another's.
func (v *Verifier) discover(ctx context.Context) (*metadata, error) {
	var problems []string
	for _, u := range discoveryURLs(v.opts.Issuer) {
		body, err := v.get(ctx, u)
		if err == nil {
			var md metadata
			switch {
			case json.Unmarshal(body, &md) != nil:
				err = fmt.Errorf("GET %s: not a metadata document", u)
			case md.Issuer != v.opts.Issuer:
				err = fmt.Errorf("GET %s: refused: its issuer %.200q is not %q", u, md.Issuer, v.opts.Issuer)
				v.opts.Logger.WarnContext(ctx, "authn: issuer metadata refused", "url", u, "why", "issuer mismatch",
					"metadata_issuer", fmt.Sprintf("%.200q", md.Issuer), "issuer", v.opts.Issuer)
			case md.JWKSURI != "" && checkURL(md.JWKSURI) != nil:
				err = fmt.Errorf("GET %s: refused: its jwks_uri is not an absolute http(s) URL", u)
			default:
				return &md, nil
			}
		}
		problems = append(problems, err.Error())
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.New(strings.Join(problems, "; "))
}

// get fetches a JSON document: HTTP 200, a JSON media type, at most 1 MiB,
// within the HTTP timeout.
func (v *Verifier) get(ctx context.Context, u string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, DefaultHTTPTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, transportError(err))
	}
	defer resp.Body.Close()
	body, err := readJSON(resp)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return body, nil
}

// readJSON reads a JSON answer, bounded.
func readJSON(resp *http.Response) ([]byte, error) {
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !isJSON(ct) {
		return nil, fmt.Errorf("content type %.100q is not JSON", ct)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", transportError(err))
	}
	if len(body) > maxResponseBytes {
		return nil, errors.New("the answer is larger than 1 MiB")
	}
	return body, nil
}

// isJSON accepts application/json and the +json types (RFC 6839), such as
// application/jwk-set+json.
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && (mt == "application/json" || strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// transportError drops the *url.Error wrapper, whose text repeats the URL.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// TokenEndpoint returns the issuer's token endpoint from its metadata
// (discovered on first use and kept), for RFC 8693 token exchange.
func (v *Verifier) TokenEndpoint(ctx context.Context) (string, error) {
	v.mu.Lock()
	md := v.md
	v.mu.Unlock()
	if md == nil {
		var err error
		if md, err = v.discover(ctx); err != nil {
			return "", fmt.Errorf("authn: issuer metadata: %w", err)
		}
		v.mu.Lock()
		if v.md == nil {
			v.md = md
		}
		v.mu.Unlock()
	}
	if md.TokenEndpoint == "" || checkURL(md.TokenEndpoint) != nil {
		return "", errors.New("authn: the issuer's metadata has no usable token_endpoint")
	}
	return md.TokenEndpoint, nil
}
