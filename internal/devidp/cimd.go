package devidp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Client ID metadata documents (draft-ietf-oauth-client-id-metadata-document,
// the MCP 2025-11-25 preferred registration): the client_id is an https URL
// whose JSON document describes the client.
const (
	// maxMetadataBytes bounds a fetched document.
	maxMetadataBytes = 16 << 10
	// metadataTimeout bounds one fetch, whatever the HTTP client allows.
	metadataTimeout = 5 * time.Second
	// metadataCacheTTL is how long a fetched document is reused. The library
	// looks the client up several times per flow (authorize, callback, token).
	metadataCacheTTL = 5 * time.Minute
)

type cachedClient struct {
	c       *client
	fetched time.Time
}

// clientMetadataDocument holds the fields of a document this provider uses.
type clientMetadataDocument struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	ClientSecret            string   `json:"client_secret"`
}

// isMetadataClientID reports whether id names a client ID metadata document:
// an https URL, or — for tests and demos on one machine — an http URL on a
// loopback host.
func isMetadataClientID(id string) bool {
	return strings.HasPrefix(id, "https://") || (strings.HasPrefix(id, "http://") && isLoopbackHTTP(id))
}

// checkMetadataURL applies the draft's rules to the client_id URL: a path,
// no fragment, no user info, no dot segments.
func checkMetadataURL(id string) error {
	u, err := url.Parse(id)
	if err != nil {
		return err
	}
	switch {
	case u.Host == "":
		return errors.New("no host")
	case u.Path == "" || u.Path == "/":
		return errors.New("the URL must have a path")
	case u.Fragment != "" || strings.Contains(id, "#"):
		return errors.New("the URL must not have a fragment")
	case u.User != nil:
		return errors.New("the URL must not have user info")
	}
	for _, seg := range strings.Split(u.Path, "/") {
		if seg == "." || seg == ".." {
			return errors.New("the URL must not have dot segments")
		}
	}
	return nil
}

// metadataClient returns the client described by the document at id,
// fetching it unless a fresh copy is cached.
func (p *Provider) metadataClient(ctx context.Context, id string) (*client, error) {
	s := p.store
	now := p.now()
	s.mu.Lock()
	cached, ok := s.metaCache[id]
	s.mu.Unlock()
	if ok && now.Sub(cached.fetched) < metadataCacheTTL {
		return cached.c, nil
	}
	c, err := p.fetchClientMetadata(ctx, id)
	if err != nil {
		p.log.InfoContext(ctx, "devidp: client ID metadata document refused", "client_id", id, "err", err)
		return nil, fmt.Errorf("devidp: client ID metadata document %s: %w", id, err)
	}
	s.mu.Lock()
	for k, v := range s.metaCache {
		if now.Sub(v.fetched) >= metadataCacheTTL {
			delete(s.metaCache, k)
		}
	}
	s.metaCache[id] = cachedClient{c: c, fetched: now}
	s.mu.Unlock()
	p.log.InfoContext(ctx, "devidp: client ID metadata document accepted", "client_id", id, "redirect_uris", c.redirectURIs)
	return c, nil
}

func (p *Provider) fetchClientMetadata(ctx context.Context, id string) (*client, error) {
	if err := checkMetadataURL(id); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, id, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch: status %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		(mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return nil, fmt.Errorf("fetch: content type %q is not JSON", resp.Header.Get("Content-Type"))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxMetadataBytes+1))
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	if len(body) > maxMetadataBytes {
		return nil, fmt.Errorf("document larger than %d bytes", maxMetadataBytes)
	}
	var doc clientMetadataDocument
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	switch {
	case doc.ClientID != id:
		return nil, fmt.Errorf("client_id %q in the document does not equal its URL", doc.ClientID)
	case doc.ClientSecret != "":
		return nil, errors.New("a metadata document must not carry a client_secret")
	case doc.TokenEndpointAuthMethod != "" && doc.TokenEndpointAuthMethod != string(oidc.AuthMethodNone):
		return nil, fmt.Errorf("token_endpoint_auth_method %q is not supported (only none)", doc.TokenEndpointAuthMethod)
	case len(doc.RedirectURIs) == 0:
		return nil, errors.New("redirect_uris is empty")
	}
	for _, rt := range doc.ResponseTypes {
		if rt != string(oidc.ResponseTypeCode) {
			return nil, fmt.Errorf("response type %q is not supported", rt)
		}
	}
	grants := []string{string(oidc.GrantTypeCode)}
	if slices.Contains(doc.GrantTypes, string(oidc.GrantTypeRefreshToken)) {
		grants = append(grants, string(oidc.GrantTypeRefreshToken))
	}
	return p.newClient(clientMeta{
		id:           id,
		name:         doc.ClientName,
		redirectURIs: doc.RedirectURIs,
		scopes:       p.filterScopes(doc.Scope),
		grants:       grants,
		metadataDoc:  true,
	})
}

// filterScopes keeps the known resource scopes of a space-separated scope
// value from a client's metadata. An absent value (nil) allows every scope; a
// value naming none that is known allows none.
func (p *Provider) filterScopes(scope string) []string {
	if strings.TrimSpace(scope) == "" {
		return nil
	}
	kept := []string{}
	for _, s := range strings.Fields(scope) {
		if slices.Contains(p.opts.Scopes, s) && !slices.Contains(kept, s) {
			kept = append(kept, s)
		}
	}
	return kept
}
