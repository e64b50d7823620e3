package extend

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"mixmatch/app/config"
)

// Name routing: a create whose name ends in @<sp> goes to that service provider,
// with the suffix removed from the name the SP receives, unless MM-SERVICE-PROVIDER
// already says where. A suffix that names no SP enabled for the service is part of
// the name.
func registerNameRouting(r *mux.Router, cfg *config.Config, next http.Handler) {
	nr := &nameRouting{cfg: cfg, next: next}
	r.Methods(http.MethodPost).Path("/image/{version}/images").Handler(nr.handler("image", ""))
	r.Methods(http.MethodPost).Path("/volume/{version}/{project}/volumes").Handler(nr.handler("volume", "volume"))
	r.Methods(http.MethodPost).Path("/volume/{version}/volumes").Handler(nr.handler("volume", "volume"))
}

type nameRouting struct {
	cfg  *config.Config
	next http.Handler
}

// handler routes by name; wrapper is the body key the object sits under ("volume"),
// "" for Glance's bare image.
func (nr *nameRouting) handler(service, wrapper string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("MM-SERVICE-PROVIDER") != "" {
			nr.next.ServeHTTP(w, r)
			return
		}
		// Glance v1 names the image in a header and streams the data as the body.
		if name := r.Header.Get("X-Image-Meta-Name"); service == "image" && name != "" {
			if base, sp := nr.split(name, service); sp != "" {
				r.Header.Set("X-Image-Meta-Name", base)
				r.Header.Set("MM-SERVICE-PROVIDER", sp)
			}
			nr.next.ServeHTTP(w, r)
			return
		}
		if !strings.Contains(r.Header.Get("Content-Type"), "json") {
			nr.next.ServeHTTP(w, r)
			return
		}
		body, raw, ok := readJSON(w, r, nr.cfg.MaxJSONBodySize)
		if !ok {
			return
		}
		obj := body
		if wrapper != "" {
			if json.Unmarshal(body[wrapper], &obj) != nil {
				setBody(r, raw)
				nr.next.ServeHTTP(w, r)
				return
			}
		}
		var name string
		if json.Unmarshal(obj["name"], &name) == nil {
			if base, sp := nr.split(name, service); sp != "" {
				obj["name"], _ = json.Marshal(base)
				if wrapper != "" {
					body[wrapper], _ = json.Marshal(obj)
				}
				raw, _ = json.Marshal(body)
				r.Header.Set("MM-SERVICE-PROVIDER", sp)
			}
		}
		setBody(r, raw)
		nr.next.ServeHTTP(w, r)
	})
}

// split cuts "name@sp" when sp is a service provider enabled for the service.
func (nr *nameRouting) split(name, service string) (string, string) {
	i := strings.LastIndex(name, "@")
	if i < 0 {
		return name, ""
	}
	if sp, ok := nr.cfg.SP(name[i+1:]); ok && sp.Enabled(service) {
		return name[:i], sp.Name
	}
	return name, ""
}
