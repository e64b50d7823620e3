package proxy

import (
	"net/http"

	"mixmatch/app/versions"
)

// publicURL is mixmatch's URL as its clients reach it: [DEFAULT] public_url, else
// the scheme and Host of the call ("" when it had no Host: links then stay
// relative to wherever the client called).
func (p *Proxy) publicURL(r *http.Request) string {
	if p.cfg.PublicURL != "" {
		return p.cfg.PublicURL
	}
	return versions.BaseURL(r)
}
