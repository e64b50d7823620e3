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
	// Routes match the path as written, and it is never cleaned into another: a
	// path is checked whole before it is routed (checkPath).
	r.UseEncodedPath()
	r.SkipClean(true)
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
	return checkPath(r)
}

// checkPath answers 400 to a path with empty or dot segments or broken escapes,
// whatever it names, so that both front ends answer alike: under --http the path
// arrives as the client wrote it, and so it does under Apache, which resolves such
// a path only for its own routing and passes REQUEST_URI as written.
func checkPath(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, err := reqinfo.Segments(r.URL.EscapedPath()); err != nil {
			apierr.Respond(w, r, nil, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// notFound answers every path outside the services.
func notFound(w http.ResponseWriter, r *http.Request) {
	apierr.Write(w, http.StatusNotFound, reqinfo.ErrNotProxied.Error())
}
