package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
	"mixmatch/app/extend"
)

func TestRoutes(t *testing.T) {
	h := NewRouter(&config.Config{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, http.StatusNotImplemented, "proxied")
	}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apierr.Write(w, http.StatusTeapot, "health")
	}), extend.Deps{})
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/", 404},
		{"GET", "/healthcheck", 418},
		{"POST", "/healthcheck", 404},
		{"GET", "/compute/v2.1/servers", 404},
		{"DELETE", "/images", 404},
		{"GET", "/imagefoo", 404},
		{"GET", "/image", 501},
		{"GET", "/image/v2/images", 501},
		{"POST", "/volume/v3/8a1e/volumes", 501},
		{"GET", "/network/v2.0/networks", 501},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		var body struct {
			Error struct{ Code int } `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != tc.status ||
			body.Error.Code != tc.status || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s = %d %q, want %d with a JSON body", tc.method, tc.path, rec.Code, rec.Body, tc.status)
		}
	}
}
