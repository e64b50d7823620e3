package health

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"mixmatch/app/dbtest"
	"mixmatch/app/store"
)

func TestHealthcheck(t *testing.T) {
	s, err := store.Open(context.Background(), dbtest.SQLite(t), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tr := NewTracker()
	h, detailed := Summary(s), Detail(s, "memory", []string{"remote1", "default"}, tr)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthcheck", nil))
	if rec.Code != 200 || rec.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	tr.Observe("remote1", 0, errors.New("connection refused"))
	tr.Observe("default", 200, nil)
	// The API's answer says nothing of other users' calls or internal addresses.
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthcheck?detail", nil))
	if rec.Code != 200 || rec.Body.String() != "{\"status\":\"ok\"}\n" {
		t.Fatalf("?detail on the API: %d %s", rec.Code, rec.Body)
	}
	rec = httptest.NewRecorder()
	detailed.ServeHTTP(rec, httptest.NewRequest("GET", "/healthcheck", nil))
	var detail struct {
		Database struct {
			Engine string
			OK     bool
		}
		Cache            struct{ Backend string }
		ServiceProviders map[string]SPState `json:"service_providers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &detail); err != nil || rec.Code != 200 || !detail.Database.OK ||
		detail.Database.Engine != "sqlite3" || detail.Cache.Backend != "memory" ||
		detail.ServiceProviders["remote1"].LastError != "connection refused" || detail.ServiceProviders["default"].LastStatus != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	s.Close() // the database goes away
	for _, h := range []http.Handler{h, detailed} {
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/healthcheck", nil))
		if rec.Code != 503 {
			t.Fatalf("with the database closed: %d %s", rec.Code, rec.Body)
		}
	}
}
