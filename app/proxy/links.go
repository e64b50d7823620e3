package proxy

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"mixmatch/app/reqinfo"
	"mixmatch/app/services"
	"mixmatch/app/versions"
)

// Services build URLs from their own host: Location of a create, the hrefs of
// Cinder's and Neutron's links and *_links, the version documents of their roots.
// A client follows them with the token it holds, so each must lead back to
// mixmatch: to a remote cloud the user's local token must never go, and a client
// that adopts a service's own URL as its endpoint bypasses mixmatch from then on.

// maxRelinkBody is the most of an answer held to rewrite it and give it its new
// Content-Length; a longer one is rewritten as it streams, without one.
const maxRelinkBody = 4 << 20

// errUncheckedAnswer is a remote SP's answer mixmatch cannot read for its links.
var errUncheckedAnswer = errors.New("an answer whose links cannot be checked")

// linkKeys are the keys whose string values clients follow: the href of an entry of
// links and *_links, and Glance's next, first, self, file and schema.
var linkKeys = map[string]bool{"href": true, "next": true, "previous": true, "first": true, "last": true,
	"self": true, "file": true, "schema": true}

// publicURL is mixmatch's URL as its clients reach it: [DEFAULT] public_url, else
// the scheme and Host of the call ("" when it had no Host: links then stay
// relative to wherever the client called).
func (p *Proxy) publicURL(r *http.Request) string {
	if p.cfg.PublicURL != "" {
		return p.cfg.PublicURL
	}
	return versions.BaseURL(r)
}

// relinker maps the URLs of one SP's answer about one service onto mixmatch's.
type relinker struct {
	endpoint *url.URL
	// public is mixmatch's URL of the service: public_url/volume.
	public string
	remote bool
	// remoteProject, in a remote Cinder's paths, becomes localProject: the inverse
	// of upstreamURL's substitution.
	remoteProject, localProject string
	logger                      *slog.Logger
	sp                          string
	warned                      bool
}

func (p *Proxy) newRelinker(t *target, in *http.Request) *relinker {
	l := &relinker{public: p.publicURL(in) + "/" + t.info.Service, remote: !t.sp.Local(), logger: p.logger, sp: t.sp.Name}
	// upstreamURL has checked it before the call went.
	l.endpoint, _ = url.Parse(t.sp.Endpoint(t.info.Service))
	if svc, ok := services.Get(t.info.Service); ok && svc.ProjectInPath && l.remote && t.project != "" {
		l.remoteProject, l.localProject = t.project, t.info.ProjectID
		if l.localProject == "" && t.user != nil {
			// A path without a project (Cinder 3.67 on): the SP's links still have one.
			l.localProject = t.user.Project.ID
		}
	}
	return l
}

// toMixmatch is u at mixmatch, when u lies under the SP's endpoint (scheme, host,
// port and path prefix); false for any other URL.
func (l *relinker) toMixmatch(u *url.URL) (string, bool) {
	scheme := strings.ToLower(u.Scheme)
	if scheme == "" {
		scheme = l.endpoint.Scheme
	}
	if scheme != l.endpoint.Scheme || hostPort(scheme, u.Host) != hostPort(scheme, l.endpoint.Host) {
		return "", false
	}
	base, path := l.endpoint.EscapedPath(), u.EscapedPath()
	if path != base && !strings.HasPrefix(path, base+"/") {
		return "", false
	}
	out := l.public + l.localPath(path[len(base):])
	if u.RawQuery != "" || u.ForceQuery {
		out += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		out += "#" + u.EscapedFragment()
	}
	return out, true
}

// localPath puts the user's local project where a remote Cinder named its own:
// /v3/<project>/volumes/ID (self) or /<project>/volumes/ID (bookmark).
func (l *relinker) localPath(rest string) string {
	if l.remoteProject == "" || l.localProject == "" {
		return rest
	}
	segs := strings.SplitN(rest, "/", 4)
	for i := 1; i < len(segs) && i <= 2; i++ {
		if segs[i] == l.remoteProject {
			segs[i] = l.localProject
			return strings.Join(segs, "/")
		}
	}
	return rest
}

func hostPort(scheme, host string) string {
	host = strings.ToLower(host)
	switch scheme {
	case "http":
		return strings.TrimSuffix(host, ":80")
	case "https":
		return strings.TrimSuffix(host, ":443")
	}
	return host
}

// value is what becomes of a string of a JSON answer under key. A URL under the
// SP's endpoint is rewritten wherever it is. Another absolute URL is left alone
// from the local cloud, which is trusted with the user's token and may link
// elsewhere (Cinder's describedby at docs.openstack.org); from a remote SP, in a
// link, it becomes "": it is either another name of that cloud, where the
// client's local token must not go, or a host no cloud of the federation is, and
// a client stops paging at an empty next link as at a missing one.
func (l *relinker) value(key, s string) (string, bool) {
	// Clients strip what urljoin strips before they follow a URL.
	t := strings.TrimLeftFunc(s, func(r rune) bool { return r <= ' ' })
	if !looksAbsolute(t) {
		return s, false
	}
	u, err := url.Parse(t)
	if err == nil && u.Host != "" {
		if out, ok := l.toMixmatch(u); ok {
			return out, true
		}
	}
	if l.remote && linkKeys[key] && (err != nil || u.Host != "") {
		l.dropped(key)
		return "", true
	}
	return s, false
}

// looksAbsolute: an http(s) URL or a network-path reference, the only URLs a
// client follows to another host.
func looksAbsolute(s string) bool {
	if strings.HasPrefix(s, "//") {
		return true
	}
	scheme, _, ok := strings.Cut(s, ":")
	return ok && (strings.EqualFold(scheme, "http") || strings.EqualFold(scheme, "https"))
}

// dropLong: a link from a remote SP too long to check is dropped.
func (l *relinker) dropLong(key string) bool {
	if l.remote && linkKeys[key] {
		l.dropped(key)
		return true
	}
	return false
}

func (l *relinker) dropped(key string) {
	if !l.warned {
		l.warned = true
		l.logger.Warn("a link outside the service provider's endpoint was dropped from its answer", "sp", l.sp,
			"key", key, "endpoint", l.endpoint.Redacted())
	}
}

// location is what becomes of a Location or Content-Location header; keep false
// drops it. A path (webob makes them absolute, other servers may not) is one on
// the SP's host.
func (l *relinker) location(v string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(v))
	switch {
	case err != nil:
		return v, !l.remote
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
		abs := *u
		abs.Scheme, abs.Host = l.endpoint.Scheme, l.endpoint.Host
		u = &abs
	case u.Scheme == "" && u.Host == "":
		return v, true // relative to the call's URL, which is mixmatch's
	}
	if out, ok := l.toMixmatch(u); ok {
		return out, true
	}
	if l.remote {
		l.dropped("Location")
		return "", false
	}
	return v, true
}

// reader rewrites the JSON text r.
func (l *relinker) reader(r io.Reader) *linkReader { return newLinkReader(r, l.value, l.dropLong) }

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

// relink rewrites the links of an SP's answer, headers and body. Only answers that
// can carry links are read (everything but image data), at most maxRelinkBody of
// them held; a longer one streams through the rewriting.
func (p *Proxy) relink(resp *http.Response, t *target) error {
	l := p.newRelinker(t, t.in)
	for _, name := range linkHeaders {
		if v := resp.Header.Get(name); v != "" {
			if out, keep := l.location(v); keep {
				resp.Header.Set(name, out)
			} else {
				resp.Header.Del(name)
			}
		}
	}
	if !hasBody(resp) || carriesData(t.info) {
		return nil
	}
	body := resp.Body
	var src io.Reader = body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		// Not asked for (see dataRequestHeaders), but some front ends compress anyway.
		zr, err := gzip.NewReader(body)
		if err != nil {
			return fmt.Errorf("%w: gzip: %v", errUncheckedAnswer, err)
		}
		src = zr
		resp.Header.Del("Content-Encoding")
		resp.Header.Del("Content-Length")
		resp.ContentLength = -1
	default:
		if l.remote {
			return fmt.Errorf("%w: Content-Encoding %s", errUncheckedAnswer, enc)
		}
		p.logger.Warn("an answer passed on with its links as they are: its encoding cannot be read",
			"sp", t.sp.Name, "encoding", enc)
		return nil
	}
	head, err := io.ReadAll(io.LimitReader(src, maxRelinkBody+1))
	if err != nil {
		return err
	}
	if !asciiCompatible(head, resp.Header.Get("Content-Type")) {
		if l.remote {
			return fmt.Errorf("%w: not ASCII-compatible text", errUncheckedAnswer)
		}
		resp.Body = readCloser{io.MultiReader(bytes.NewReader(head), src), body}
		return nil
	}
	if len(head) <= maxRelinkBody {
		body.Close()
		out, changed := head, false
		// An absolute URL has two slashes, as they are or escaped.
		if bytes.Contains(head, []byte("//")) || bytes.IndexByte(head, '\\') >= 0 {
			lr := l.reader(bytes.NewReader(head))
			out, _ = io.ReadAll(lr)
			changed = lr.changed
		}
		resp.Body = io.NopCloser(bytes.NewReader(out))
		resp.ContentLength = int64(len(out))
		resp.Header.Set("Content-Length", strconv.Itoa(len(out)))
		if changed {
			staleDigests(resp.Header)
		}
		return nil
	}
	p.logger.Info("rewriting the links of a large answer as it streams", "sp", t.sp.Name, "bytes_over", maxRelinkBody)
	resp.Body = readCloser{l.reader(io.MultiReader(bytes.NewReader(head), src)), body}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
	staleDigests(resp.Header)
	return nil
}

func hasBody(resp *http.Response) bool {
	return resp.Request.Method != http.MethodHead && resp.StatusCode >= 200 &&
		resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified &&
		resp.Body != nil && resp.Body != http.NoBody
}

// asciiCompatible: the text's quotes, slashes and colons are the bytes linkReader
// looks for. Python's clients also read JSON in UTF-16 and UTF-32 (told by NUL
// bytes or a BOM) and in any charset the Content-Type names.
func asciiCompatible(head []byte, contentType string) bool {
	if len(head) >= 2 && (head[0] == 0 || head[1] == 0 || head[0] == 0xfe && head[1] == 0xff ||
		head[0] == 0xff && head[1] == 0xfe) {
		return false
	}
	_, params, _ := mime.ParseMediaType(contentType)
	switch strings.ToLower(params["charset"]) {
	case "", "utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1":
		return true
	}
	return false
}

// staleDigests fixes what described the body as the SP sent it.
func staleDigests(h http.Header) {
	h.Del("Content-MD5")
	if etag := h.Get("ETag"); etag != "" && !strings.HasPrefix(etag, "W/") {
		h.Set("ETag", "W/"+etag)
	}
}

// readCloser reads one thing and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
