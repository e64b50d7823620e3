package proxy

import (
	"net/http"
	"strings"

	"mixmatch/app/reqinfo"
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

// carriesData: the answer is image data, passed on as it comes, never read.
func carriesData(info reqinfo.Request) bool {
	if info.Service != "image" {
		return false
	}
	if n := len(info.Rest); n > 0 && info.Rest[n-1] == "file" {
		return true
	}
	// Glance v1 answers GET /v1/images/ID with the image's data.
	return strings.HasPrefix(info.Version, "v1") && info.ResourceType == "images" &&
		(info.ResourceID != "" && len(info.Rest) == 0 || info.ResourceID == "" && len(info.Rest) == 1 && info.Rest[0] != "detail")
}
