//go:build bench

package benchrig

import (
	"crypto/sha256"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"

	"mixmatch/app/bintest"
)

// startBackend is a Glance v2 stand-in as fast as Go serves: the one image's
// document, its data (BENCH_STREAM_MIB of the pattern) and its upload, with the
// token required and 404 for anything else. It is the "direct" reference and what
// every proxy in the rig forwards to.
func startBackend(t *testing.T, dir string) string {
	t.Helper()
	size := streamSize()
	doc, _ := json.Marshal(map[string]any{
		"id": imageID, "name": "bench", "status": "active", "visibility": "private", "owner": project,
		"container_format": "bare", "disk_format": "raw", "size": size, "virtual_size": nil,
		"checksum": "c9f2f4d7b1a3b0b6a2c1d2e3f4a5b6c7", "os_hash_algo": "sha512", "os_hash_value": nil,
		"min_disk": 0, "min_ram": 0, "protected": false, "os_hidden": false, "tags": []string{},
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"self": "/v2/images/" + imageID, "file": "/v2/images/" + imageID + "/file", "schema": "/v2/schemas/image",
	})
	sum := bintest.PatternSum(size)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/images/"+imageID, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(doc)
	})
	mux.HandleFunc("GET /v2/images/"+imageID+"/file", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		io.Copy(w, &bintest.Pattern{N: size})
	})
	mux.HandleFunc("PUT /v2/images/"+imageID+"/file", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		n, err := io.Copy(h, r.Body)
		if err != nil || n != size || [32]byte(h.Sum(nil)) != sum {
			http.Error(w, "the image data arrived changed", http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Auth-Token") == "" {
			http.Error(w, "a token is required", http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: handler}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}
