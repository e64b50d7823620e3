package proxy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"mixmatch/app/dbtest"
	"mixmatch/app/keystone"
	"mixmatch/app/proxy"
	"mixmatch/app/store"
)

// countingAuth counts validations at the local Keystone.
type countingAuth struct {
	auth
	n atomic.Int32
}

func (c *countingAuth) Validate(ctx context.Context, token string) (*keystone.Token, error) {
	c.n.Add(1)
	return c.auth.Validate(ctx, token)
}

func TestAStaleMappingCostsOneValidation(t *testing.T) {
	s := newSetup(t, true)
	a := &countingAuth{auth: testAuth()}
	s.handler, s.store = newProxy(t, s.conf, dbtest.SQLite(t), proxy.Deps{Auth: a, Logger: slog.New(slog.DiscardHandler)})
	s.store.Upsert(context.Background(), store.Mapping{ResourceType: "images", ResourceID: imageID, ResourceSP: "remote1", ProjectID: "p"})
	s.backends["remote2"].has[imageKey] = true
	if rec := s.do(t, "GET", "/image/v2/images/"+imageID, nil); rec.Code != 200 || a.n.Load() != 1 {
		t.Fatalf("%d after %d validations, want 200 after 1", rec.Code, a.n.Load())
	}
}

// Failures between mixmatch and the clouds answer the client with mixmatch's
// own words and the request id; the internal address stays in the log.
func TestGatewayErrorsNameNoInternalAddress(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	addr := gone.URL
	gone.Close()
	var logs syncBuffer
	h, _ := newProxy(t, spConf(map[string]string{"default": addr}), dbtest.SQLite(t),
		proxy.Deps{Auth: testAuth(), Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	rec, _ := serveWith(t, h, "GET", "/image/v2/images/"+imageID, nil, "X-Openstack-Request-Id", "req-12345678-aaaa")
	var body struct{ Error struct{ Message string } }
	json.Unmarshal(rec.Body.Bytes(), &body)
	if rec.Code != 502 || strings.Contains(body.Error.Message, strings.TrimPrefix(addr, "http://")) ||
		!strings.Contains(body.Error.Message, "req-12345678-aaaa") {
		t.Fatalf("%d %q", rec.Code, body.Error.Message)
	}
	if !strings.Contains(logs.String(), strings.TrimPrefix(addr, "http://")) || !strings.Contains(logs.String(), "req-12345678-aaaa") {
		t.Fatalf("the log lacks the address or the request id: %s", logs.String())
	}
}
