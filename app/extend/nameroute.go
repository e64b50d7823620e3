package extend

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/reqinfo"
	"mixmatch/app/services"
)

// Name routing: a create whose name ends in @<sp> goes to that service provider,
// with the suffix removed from the name the SP receives, unless MM-SERVICE-PROVIDER
// already says where. A suffix that names no SP is part of the name (see split).
func registerNameRouting(r *mux.Router, cfg *config.Config, next http.Handler) {
	nr := &nameRouting{cfg: cfg, next: next}
	for _, svc := range services.All() {
		for i := range svc.Collections {
			c := &svc.Collections[i]
			if !c.RouteByName {
				continue
			}
			h := nr.handler(svc.Name, c)
			r.Methods(http.MethodPost).Path("/" + svc.Name + "/{version}/" + c.Type).Handler(h)
			if svc.ProjectInPath {
				r.Methods(http.MethodPost).Path("/" + svc.Name + "/{version}/{project}/" + c.Type).Handler(h)
			}
		}
	}
}

type nameRouting struct {
	cfg  *config.Config
	next http.Handler
}

// handler routes the creates of one collection by name.
func (nr *nameRouting) handler(service string, c *services.Collection) http.Handler {
	wrapper := c.Key
	if c.Bare {
		wrapper = ""
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("MM-SERVICE-PROVIDER") != "" {
			nr.next.ServeHTTP(w, r)
			return
		}
		// The body of a create named in a header is the data, streamed.
		if name := r.Header.Get(c.NameHeader); c.NameHeader != "" && name != "" {
			base, sp, err := nr.split(name, service)
			if err != nil {
				apierr.Respond(w, r, nil, err)
				return
			}
			if sp != "" {
				r.Header.Set(c.NameHeader, base)
				r.Header.Set("MM-SERVICE-PROVIDER", sp)
				r = reqinfo.RoutedByName(r)
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
			// A map of its own: decoding into body would merge the wrapped fields
			// into the top level, a body the service refuses.
			obj = nil
			if json.Unmarshal(body[wrapper], &obj) != nil {
				setBody(r, raw)
				nr.next.ServeHTTP(w, r)
				return
			}
		}
		var name string
		if json.Unmarshal(obj["name"], &name) == nil {
			base, sp, err := nr.split(name, service)
			if err != nil {
				apierr.Respond(w, r, nil, err)
				return
			}
			if sp != "" {
				obj["name"], _ = json.Marshal(base)
				if wrapper != "" {
					body[wrapper], _ = json.Marshal(obj)
				}
				raw, _ = json.Marshal(body)
				r.Header.Set("MM-SERVICE-PROVIDER", sp)
				r = reqinfo.RoutedByName(r)
			}
		}
		setBody(r, raw)
		nr.next.ServeHTTP(w, r)
	})
}

// split cuts "name@sp" when sp is a service provider enabled for the service.
//
// A suffix that names no service provider is part of the name: names hold @ (an
// e-mail address, user@host, a release tag), and a misspelt SP cannot be told from
// them; refusing them would break creates that work without mixmatch. A suffix
// that names a configured SP which does not serve the service is refused (400),
// as MM-SERVICE-PROVIDER naming it is: the user meant that cloud, and an operator
// would not expect the resource in another one, under a name carrying the suffix.
func (nr *nameRouting) split(name, service string) (string, string, error) {
	i := strings.LastIndex(name, "@")
	if i < 0 {
		return name, "", nil
	}
	sp, ok := nr.cfg.SP(name[i+1:])
	switch {
	case !ok:
		return name, "", nil
	case !sp.Enabled(service):
		return "", "", apierr.New(http.StatusBadRequest, "the name ends in @%s, a service provider not enabled for %s", sp.Name, service)
	}
	return name[:i], sp.Name, nil
}
