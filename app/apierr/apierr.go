// Package apierr writes errors in the JSON shape OpenStack clients print:
// {"error": {"code": 404, "title": "Not Found", "message": "..."}}.
package apierr

import (
	"encoding/json"
	"net/http"
)

type body struct {
	Error struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"error"`
}

// Write answers with status and message. The message must not carry a token or a
// password: it reaches the client and, through it, logs we do not control.
func Write(w http.ResponseWriter, status int, message string) {
	var b body
	b.Error.Code = status
	b.Error.Title = http.StatusText(status)
	b.Error.Message = message
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(b)
}
