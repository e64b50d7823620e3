package proxy

import (
	"net/http"
	"strings"
)

// Request headers that reach a service provider. Everything else stays here: above
// all X-Auth-Token and X-Service-Token, which are replaced by the token valid at the
// target, so a local token never leaves the IdP. Hop-by-hop headers are net/http's
// business; Content-Length and Transfer-Encoding travel with the body.
var forwardedRequestHeaders = []string{
	"Accept", "Accept-Encoding", "Content-Type", "Content-MD5", "Range", "If-Match", "If-None-Match",
	"OpenStack-API-Version", "MM-PROXY-LIST",
}

// Response headers that come back; with X-* (request ids, Glance's image metadata
// headers of v1) they are what clients read, including for ranged and resumed
// image downloads and for creates (Location).
var returnedResponseHeaders = []string{
	"Content-Type", "Content-Length", "Content-MD5", "Content-Range", "Accept-Ranges", "ETag", "Location",
	"Last-Modified", "OpenStack-API-Version", "Vary",
}

// droppedXHeaders are X-* headers that never cross: tokens, which are replaced by the
// target's, and what a client could use to make an SP believe in another host,
// scheme, address or method than the call has (an SP behind http_proxy_to_wsgi
// builds its links and checks from them).
var droppedXHeaders = map[string]bool{"X-Auth-Token": true, "X-Service-Token": true, "X-Subject-Token": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true,
	"X-Forwarded-Prefix": true, "X-Forwarded-Server": true, "X-Real-Ip": true, "X-Original-Url": true,
	"X-Rewrite-Url": true, "X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true}

func copyFiltered(dst, src http.Header, names []string) {
	for _, name := range names {
		// The map holds canonical keys: "Content-Md5", "Openstack-Api-Version".
		if v, ok := src[http.CanonicalHeaderKey(name)]; ok {
			dst[http.CanonicalHeaderKey(name)] = append([]string(nil), v...)
		}
	}
	for name, v := range src {
		if strings.HasPrefix(name, "X-") && !droppedXHeaders[name] {
			dst[name] = append([]string(nil), v...)
		}
	}
}
