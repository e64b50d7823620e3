package fakecloud

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"strings"
)

// request is a call the token check let through.
type request struct {
	*http.Request
	body []byte
	// project is the token's project; "" when the cloud checks no tokens.
	project string
	q       query
	svc     service
	// serviceRoles are the roles of a valid X-Service-Token; nil without one.
	serviceRoles []string
}

// response is an answer, built under the cloud's lock and written after it.
type response struct {
	status int
	hdr    http.Header
	body   []byte
	// op is what Counts calls the call when it succeeds.
	op string
	// after runs once the answer is written (the notifier).
	after func()
}

func (r *response) header() http.Header {
	if r.hdr == nil {
		r.hdr = http.Header{}
	}
	return r.hdr
}

// reply is a JSON answer, written as the services' Python writes it (", " and ": "
// between items), so that what a test reads is what a client of the real services
// reads.
func reply(status int, op string, v any) response {
	resp := response{status: status, op: op, body: pyJSON(v)}
	resp.header().Set("Content-Type", "application/json")
	return resp
}

func empty(status int, op string) response { return response{status: status, op: op} }

func pyJSON(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	out := make([]byte, 0, len(raw)+len(raw)/8)
	inString, escaped := false, false
	for _, b := range raw {
		out = append(out, b)
		switch {
		case escaped:
			escaped = false
		case inString && b == '\\':
			escaped = true
		case b == '"':
			inString = !inString
		case !inString && (b == ':' || b == ','):
			out = append(out, ' ')
		}
	}
	return out
}

// service is whose error bodies an answer has.
type service int

const (
	glance service = iota
	cinder
	neutron
)

func serviceOf(path string) service {
	switch {
	case strings.HasPrefix(path, "/v3/"):
		return cinder
	case strings.HasPrefix(path, "/v2.0/"):
		return neutron
	}
	return glance
}

// fail is an error answer in the service's shape: Cinder's fault ({"itemNotFound":
// {"code": 404, "message": ...}}), Neutron's {"NeutronError": ...}, and for Glance
// the body webob makes of an HTTP exception, which depends on Accept.
func (s service) fail(r *http.Request, status int, msg string) response {
	switch s {
	case cinder:
		name, ok := cinderFaults[status]
		if !ok {
			name = "computeFault"
		}
		return reply(status, "", map[string]any{name: map[string]any{"code": status, "message": msg}})
	case neutron:
		typ, ok := neutronTypes[status]
		if !ok {
			typ = "NeutronException"
		}
		return s.neutronError(status, typ, msg)
	}
	return webobError(r, status, msg)
}

// noRoute is the answer to a path no route matches: webob's 404 for Glance and
// Cinder (their routers answer it before any controller), Neutron's own.
func (s service) noRoute(r *http.Request) response {
	if s == neutron {
		return s.neutronError(http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
	}
	return webobError(r, http.StatusNotFound, "The resource could not be found.")
}

// collection answers a call on a collection itself: a list, a create, or the
// service's refusal of another method.
func (s service) collection(req *request, list, create func(*request) response) response {
	switch req.Method {
	case http.MethodGet:
		return list(req)
	case http.MethodPost:
		return create(req)
	}
	return s.badMethod(req.Request, "GET", "POST")
}

// badMethod is a route that exists with other methods: Glance and Neutron answer
// 405; Cinder's routes do not match at all.
func (s service) badMethod(r *http.Request, allow ...string) response {
	if s == cinder {
		return s.noRoute(r)
	}
	var resp response
	if s == neutron {
		resp = s.neutronError(http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The method is not allowed for this resource.")
	} else {
		resp = webob(r, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource. <br /><br />\n")
	}
	resp.header().Set("Allow", strings.Join(allow, ", "))
	return resp
}

func (s service) neutronError(status int, typ, msg string) response {
	return reply(status, "", map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}

// cinderFaults name Cinder's fault bodies (wsgi.Fault); others are computeFault.
var cinderFaults = map[int]string{
	http.StatusBadRequest: "badRequest", http.StatusUnauthorized: "unauthorized", http.StatusForbidden: "forbidden",
	http.StatusNotFound: "itemNotFound", http.StatusMethodNotAllowed: "badMethod", http.StatusConflict: "conflictingRequest",
	http.StatusRequestEntityTooLarge: "overLimit", http.StatusUnsupportedMediaType: "badMediaType",
	http.StatusNotImplemented: "notImplemented", http.StatusServiceUnavailable: "serviceUnavailable",
}

// neutronTypes are the exception types of Neutron's errors by status.
var neutronTypes = map[int]string{
	http.StatusBadRequest: "BadRequest", http.StatusNotFound: "NotFound", http.StatusConflict: "Conflict",
	http.StatusServiceUnavailable: "ServiceUnavailable",
}

// webobError is webob's rendering of an HTTP exception with an explanation: HTML
// when Accept prefers it or says nothing, JSON when it asks for JSON, else text; the
// JSON and HTML as a real Glance sends them.
func webobError(r *http.Request, status int, explanation string) response {
	return webob(r, status, html.EscapeString(explanation)+"<br /><br />\n\n\n")
}

// webob renders an exception's body template, filled in.
func webob(r *http.Request, status int, body string) response {
	line := fmt.Sprintf("%d %s", status, http.StatusText(status))
	var resp response
	switch acceptWebob(r.Header.Get("Accept")) {
	case "application/json":
		return reply(status, "", map[string]any{"message": html.UnescapeString(body), "code": line, "title": http.StatusText(status)})
	case "text/html":
		resp = response{status: status, body: []byte("<html>\n <head>\n  <title>" + line + "</title>\n </head>\n <body>\n  <h1>" +
			line + "</h1>\n  " + body + "\n </body>\n</html>")}
		resp.header().Set("Content-Type", "text/html; charset=UTF-8")
	default:
		resp = response{status: status, body: []byte(line + "\n\n" + html.UnescapeString(strings.ReplaceAll(body, "<br />", "\n")))}
		resp.header().Set("Content-Type", "text/plain; charset=UTF-8")
	}
	return resp
}

// acceptWebob picks between webob's two offers as it does: the higher quality,
// text/html on a tie; none acceptable means plain text.
func acceptWebob(accept string) string {
	if strings.TrimSpace(accept) == "" {
		return "text/html"
	}
	var htmlQ, jsonQ float64
	for _, part := range strings.Split(accept, ",") {
		fields := strings.Split(part, ";")
		mt := strings.ToLower(strings.TrimSpace(fields[0]))
		q := 1.0
		for _, p := range fields[1:] {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				fmt.Sscan(v, &q)
			}
		}
		switch mt {
		case "*/*":
			htmlQ, jsonQ = max(htmlQ, q), max(jsonQ, q)
		case "text/*", "text/html":
			htmlQ = max(htmlQ, q)
		case "application/*", "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	switch {
	case htmlQ == 0 && jsonQ == 0:
		return "text/plain"
	case jsonQ > htmlQ:
		return "application/json"
	}
	return "text/html"
}

// unauthorized is keystonemiddleware's answer to a missing or unknown token.
func unauthorized() response {
	resp := reply(http.StatusUnauthorized, "", map[string]any{"error": map[string]any{"code": 401, "title": "Unauthorized",
		"message": "The request you have made requires authentication."}})
	resp.header().Set("WWW-Authenticate", `Keystone uri="http://127.0.0.1/identity"`)
	return resp
}

// query is a query string in its order, repeated keys included, as webob keeps it.
type query []param

type param struct{ key, value string }

func parseQuery(raw string) (query, error) {
	var q query
	for _, part := range strings.Split(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		key, errKey := url.QueryUnescape(k)
		value, errValue := url.QueryUnescape(v)
		if err := errors.Join(errKey, errValue); err != nil {
			return nil, fmt.Errorf("malformed query string: %v", err)
		}
		q = append(q, param{key, value})
	}
	return q, nil
}

func (q query) has(key string) bool {
	_, ok := q.first(key)
	return ok
}

func (q query) first(key string) (string, bool) {
	for _, p := range q {
		if p.key == key {
			return p.value, true
		}
	}
	return "", false
}

func (q query) all(key string) []string {
	var out []string
	for _, p := range q {
		if p.key == key {
			out = append(out, p.value)
		}
	}
	return out
}

func (q query) without(keys ...string) query {
	var out query
	for _, p := range q {
		drop := false
		for _, k := range keys {
			drop = drop || p.key == k
		}
		if !drop {
			out = append(out, p)
		}
	}
	return out
}

// withoutFirst drops the first of each key, as webob's pop does.
func (q query) withoutFirst(keys ...string) query {
	out := append(query(nil), q...)
	for _, k := range keys {
		for i, p := range out {
			if p.key == k {
				out = append(out[:i:i], out[i+1:]...)
				break
			}
		}
	}
	return out
}

// lastValues is dict(webob_multidict): each key once, where it first came, with its
// last value.
func (q query) lastValues() query {
	var out query
	index := map[string]int{}
	for _, p := range q {
		if i, ok := index[p.key]; ok {
			out[i].value = p.value
			continue
		}
		index[p.key] = len(out)
		out = append(out, p)
	}
	return out
}

// encode is Python's urllib.parse.urlencode.
func (q query) encode() string {
	parts := make([]string, len(q))
	for i, p := range q {
		parts[i] = url.QueryEscape(p.key) + "=" + url.QueryEscape(p.value)
	}
	return strings.Join(parts, "&")
}

func splitPath(path string) []string {
	return strings.Split(strings.TrimPrefix(path, "/"), "/")
}

// baseURL is how the service names itself in links: the scheme and the Host the
// client used.
func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// decodeObject reads a JSON object body; ok false when it is none.
func decodeObject(body []byte) (map[string]any, bool) {
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	if d.Decode(&m) != nil || m == nil {
		return nil, false
	}
	return m, true
}
