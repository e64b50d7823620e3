// Package api is the HTTP face of mixmatch-fcgi: the route table of the three proxied
// services and everything that is not one of them.
package api

import (
	"log/slog"
	"net/http"

	"github.com/gorilla/mux"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/store"
)

// Services are the path prefixes mixmatch answers, one per OpenStack service.
var Services = []string{"image", "volume", "network"}

// NewRouter builds the handler of one worker.
func NewRouter(cfg *config.Config, s *store.Store, logger *slog.Logger) http.Handler {
	r := mux.NewRouter()
	for _, service := range Services {
		h := notImplemented(service)
		r.Path("/" + service).Handler(h)
		r.PathPrefix("/" + service + "/").Handler(h)
	}
	r.NotFoundHandler = http.HandlerFunc(notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(notFound)
	return r
}

// notImplemented stands where the proxy of each service will be routed.
func notImplemented(service string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, http.StatusNotImplemented, "proxying of the "+service+" service is not available in this build")
	})
}

// notFound answers every path outside /image, /volume and /network.
func notFound(w http.ResponseWriter, r *http.Request) {
	apierr.Write(w, http.StatusNotFound, "mixmatch serves /image, /volume and /network only")
}
