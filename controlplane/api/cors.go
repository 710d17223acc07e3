package api

import (
	"net/http"
	"slices"
	"strings"
)

// CORS, as django-cors-headers answers it: a browser front end on an allowed origin may call the
// API, and its preflight (an OPTIONS with Access-Control-Request-Method) is answered without a
// token, since a browser never sends one on a preflight. Tokens travel in a header, not in
// cookies, so credentials are not allowed.

// corsMaxAge is how long a browser may keep a preflight's answer, in seconds.
const corsMaxAge = "86400"

var (
	corsMethods = []string{"DELETE, GET, OPTIONS, PATCH, POST, PUT"}
	corsHeaders = []string{"accept, authorization, content-type, user-agent, x-requested-with"}
	corsExpose  = []string{"Location, Retry-After, WWW-Authenticate"}
	corsMaxAgeV = []string{corsMaxAge}
	varyOrigin  = []string{"Origin"}
)

// corsAllowed reports whether a request's Origin header is one of origins ("*": any).
func corsAllowed(origins []string, origin string) bool {
	if origin == "" || len(origins) == 0 {
		return false
	}
	return slices.Contains(origins, "*") || slices.ContainsFunc(origins, func(o string) bool { return strings.EqualFold(o, origin) })
}

// cors adds the CORS headers for an allowed origin and answers its preflight; it reports
// whether it answered.
func (a *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if !corsAllowed(a.origins, origin) {
		return false
	}
	h := w.Header()
	h["Access-Control-Allow-Origin"] = []string{origin}
	h["Vary"] = varyOrigin
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		h["Access-Control-Expose-Headers"] = corsExpose
		return false
	}
	h["Access-Control-Allow-Methods"] = corsMethods
	h["Access-Control-Allow-Headers"] = corsHeaders
	h["Access-Control-Max-Age"] = corsMaxAgeV
	h["Content-Length"] = []string{"0"}
	w.WriteHeader(http.StatusOK)
	return true
}
