package api

import (
	"net/http"
	"strings"
)

// apiKey is the key a request carries: the credentials of an Authorization
// header with the Bearer scheme, or else X-API-Key. The scheme is matched
// without regard to case, as RFC 7235 (section 2.1) requires: "bearer KEY"
// is as good as "Bearer KEY".
func apiKey(r *http.Request) string {
	scheme, credentials, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(credentials)
	}
	return r.Header.Get("X-API-Key")
}
