// Package extend holds what mixmatch adds to the services' APIs. Each extension
// binds its own gorilla/mux routes ahead of the proxy and hands the call on to it,
// so a new one is a file with a Register function.
package extend

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"

	"github.com/gorilla/mux"

	"mixmatch/app/apierr"
	"mixmatch/app/config"
)

// Register binds every extension's routes; next is the proxy.
func Register(r *mux.Router, cfg *config.Config, next http.Handler, deps Deps) {
	registerNameRouting(r, cfg, next)
	registerNetworksExtended(r, cfg, deps)
}

// readJSON reads a bounded JSON object body, answering 413 or 400 itself when it
// cannot; ok false means the answer is written.
// limit is [DEFAULT] max_json_body_size.
func readJSON(w http.ResponseWriter, r *http.Request, limit int) (map[string]json.RawMessage, []byte, bool) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
	r.Body.Close()
	if err != nil {
		apierr.Write(w, http.StatusBadRequest, "the request body could not be read")
		return nil, nil, false
	}
	if len(raw) > limit {
		apierr.Write(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the request body is larger than %d bytes (max_json_body_size)", limit))
		return nil, nil, false
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(raw, &body); err != nil {
		var syntax *json.SyntaxError
		msg := "the request body is not a JSON object"
		if errors.As(err, &syntax) {
			msg = fmt.Sprintf("the request body is not valid JSON (offset %d)", syntax.Offset)
		}
		apierr.Write(w, http.StatusBadRequest, msg)
		return nil, nil, false
	}
	return body, raw, true
}

// setBody replaces a request's body, its length fixed.
func setBody(r *http.Request, raw []byte) {
	r.Body = io.NopCloser(bytes.NewReader(raw))
	r.ContentLength = int64(len(raw))
	r.Header.Set("Content-Length", strconv.Itoa(len(raw)))
	r.TransferEncoding = nil
}
