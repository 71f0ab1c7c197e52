package authn

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// ResourceMetadata describes Butler as an OAuth protected resource
// (RFC 9728 §2), so MCP clients find the authorization server to get a
// token from.
type ResourceMetadata struct {
	// Resource is the resource identifier: public_url + "/mcp".
	Resource string
	// AuthorizationServers are the issuers whose tokens are accepted.
	AuthorizationServers []string
	// ScopesSupported are the scopes a client may request.
	ScopesSupported []string
	// ResourceName is a human-readable name.
	ResourceName string
}

// resourceMetadataJSON is the RFC 9728 §2 document.
type resourceMetadataJSON struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported,omitempty"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
}

// ResourceMetadataHandler serves m as the protected resource metadata
// document (RFC 9728 §3), at /.well-known/oauth-protected-resource/mcp and
// /.well-known/oauth-protected-resource. GET and HEAD get the JSON;
// bearer_methods_supported is ["header"] because tokens are accepted only
// in the Authorization header. The document is public and the same for
// everyone, so it is cacheable and readable cross-origin (browser-based
// MCP clients fetch it): Access-Control-Allow-Origin: *, and OPTIONS
// preflights get 204. Other methods get 405.
func ResourceMetadataHandler(m ResourceMetadata) http.Handler {
	doc := resourceMetadataJSON{
		Resource:               m.Resource,
		AuthorizationServers:   m.AuthorizationServers,
		ScopesSupported:        m.ScopesSupported,
		BearerMethodsSupported: []string{"header"},
		ResourceName:           m.ResourceName,
	}
	if doc.AuthorizationServers == nil {
		doc.AuthorizationServers = []string{}
	}
	body, err := json.Marshal(doc)
	if err != nil {
		panic("authn: resource metadata does not marshal: " + err.Error()) // strings only: cannot happen
	}
	body = append(body, '\n')
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			h.Set("Content-Type", "application/json")
			h.Set("Cache-Control", "public, max-age=3600")
			h.Set("Content-Length", strconv.Itoa(len(body)))
			w.WriteHeader(http.StatusOK)
			if r.Method == http.MethodGet {
				_, _ = w.Write(body)
			}
		case http.MethodOptions:
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
			if req := r.Header.Get("Access-Control-Request-Headers"); req != "" {
				// Reflecting is safe: the document is public and no
				// credentials are allowed.
				h.Set("Access-Control-Allow-Headers", req)
			}
			h.Set("Access-Control-Max-Age", "86400")
			w.WriteHeader(http.StatusNoContent)
		default:
			h.Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}
