// Package api is the HTTP face of mixmatch-fcgi: the route table of the three proxied
// services and everything that is not one of them.
package api

import (
	"net/http"

	"github.com/gorilla/mux"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/extend"
	"mixmatch/app/reqinfo"
	"mixmatch/app/services"
)

// NewRouter builds the handler of one worker; proxy serves the three services, the
// extensions' routes come before it, and health answers /healthcheck itself.
func NewRouter(cfg *config.Config, proxy, health http.Handler, deps extend.Deps) http.Handler {
	r := mux.NewRouter()
	// The raw path: ids and names in paths may hold escaped slashes.
	r.UseEncodedPath()
	if health != nil {
		r.Methods(http.MethodGet, http.MethodHead).Path("/healthcheck").Handler(health)
	}
	extend.Register(r, cfg, proxy, deps)
	for _, service := range services.Names() {
		r.Path("/" + service).Handler(proxy)
		r.PathPrefix("/" + service + "/").Handler(proxy)
	}
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(notFound)
	return r
}

// notFound answers every path outside the services.
func notFound(w http.ResponseWriter, r *http.Request) {
	apierr.Write(w, http.StatusNotFound, reqinfo.ErrNotProxied.Error())
}
