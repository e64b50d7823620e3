package proxy

import (
	"net/http"
	"strings"
)

// The header policy. Requests go through an allowlist: what a client sends may be
// a credential (its token, which is replaced by the target's, Authorization,
// Cookie) or a claim about where the call came from that an SP would believe.
// Answers go through a denylist: clients read whatever the services say (import
// methods, request ids, ranges, digests, microversions, Retry-After), and only what
// is about the SP's own host or connection stays here. Hop-by-hop headers are
// net/http's business both ways, and Content-Length and Transfer-Encoding travel
// with the body.
var (
	// forwardedRequestHeaders reach every SP, with X-* (see droppedXHeaders):
	// negotiation, the body's own description, ranged and conditional reads and
	// writes, microversions, and the chain of proxies a call went through. Content-Range
	// stays out: no service takes a partial upload.
	forwardedRequestHeaders = []string{
		"Accept", "Accept-Language", "Content-Type", "Content-Encoding", "Content-MD5",
		"Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since",
		"OpenStack-API-Version", "MM-PROXY-LIST", "User-Agent",
	}
	// dataRequestHeaders reach an SP only on calls whose answer mixmatch passes on
	// unread (image data, see carriesData): any other answer is read for its links,
	// which a compressed body would hide, so it is asked for as it is.
	dataRequestHeaders = []string{"Accept-Encoding"}

	// droppedResponseHeaders never reach a client: a cookie of an SP's host (or of
	// its load balancer) would be set on mixmatch's, whose clients must not carry a
	// remote cloud's state; Server, X-Powered-By and Via name the software and hosts
	// behind mixmatch; Alt-Svc and Strict-Transport-Security are policies of the
	// SP's host, which would bind mixmatch's.
	droppedResponseHeaders = []string{"Set-Cookie", "Set-Cookie2", "Server", "X-Powered-By", "Via",
		"Alt-Svc", "Strict-Transport-Security", "Public-Key-Pins"}
	// droppedRemoteResponseHeaders name URLs that mixmatch does not rewrite (a
	// remote Keystone in WWW-Authenticate, RFC 8288 links, Refresh): from the local
	// cloud they lead where the user's token may go; from a remote SP they would
	// lead it to the remote cloud.
	droppedRemoteResponseHeaders = []string{"WWW-Authenticate", "Link", "Refresh"}
	// linkHeaders are rewritten as the links of a body are (see relinker.location).
	linkHeaders = []string{"Location", "Content-Location"}
)

// droppedXHeaders are X-* headers that never cross, either way: tokens, which are
// replaced by the target's (a service token reaches the local cloud as it came, and
// a remote one as [sp_*] service_token says: see rewrite), and what a client could
// use to make an SP believe in
// another host, scheme, address or method than the call has (an SP behind
// http_proxy_to_wsgi builds its links and checks from them).
var droppedXHeaders = map[string]bool{"X-Auth-Token": true, "X-Service-Token": true, "X-Subject-Token": true,
	"X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Forwarded-Port": true,
	"X-Forwarded-Prefix": true, "X-Forwarded-Server": true, "X-Real-Ip": true, "X-Original-Url": true,
	"X-Rewrite-Url": true, "X-Http-Method-Override": true, "X-Http-Method": true, "X-Method-Override": true}

// copyFiltered copies the headers named and X-* but droppedXHeaders.
func copyFiltered(dst, src http.Header, names []string) {
	copyNamed(dst, src, names)
	for name, v := range src {
		if strings.HasPrefix(name, "X-") && !droppedXHeaders[name] {
			dst[name] = append([]string(nil), v...)
		}
	}
}

func copyNamed(dst, src http.Header, names []string) {
	for _, name := range names {
		// The map holds canonical keys: "Content-Md5", "Openstack-Api-Version".
		if v, ok := src[http.CanonicalHeaderKey(name)]; ok {
			dst[http.CanonicalHeaderKey(name)] = append([]string(nil), v...)
		}
	}
}

// filterResponse drops from an SP's answer what must not reach the client.
func filterResponse(h http.Header, remote bool) {
	for _, name := range droppedResponseHeaders {
		h.Del(name)
	}
	if remote {
		for _, name := range droppedRemoteResponseHeaders {
			h.Del(name)
		}
	}
	for name := range h {
		if droppedXHeaders[name] {
			delete(h, name)
		}
	}
}
