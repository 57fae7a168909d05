package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon"
)

// readsNode is a configNode that is a healthy primary, so health checks answer 200.
type readsNode struct {
	configNode
	st *daemon.Status
}

func (n *readsNode) Status() *daemon.Status { return n.st }

// TestAuthReads checks RAMD_API_AUTH_READS: every read needs the credentials except the
// health checks, which load balancers call without any, and mutating requests still do.
func TestAuthReads(t *testing.T) {
	t.Parallel()
	on := Auth{Username: "admin", Password: "s3cret", Token: "tok", Reads: true}
	tests := []struct {
		method string
		path   string
		bearer string
		code   int
	}{
		{http.MethodGet, "/cluster", "", 401},
		{http.MethodGet, "/cluster", "tok", 200},
		{http.MethodGet, "/cluster", "tik", 401},
		{http.MethodGet, "/patroni", "", 401},
		{http.MethodGet, "/patroni/x", "", 401}, // unrouted, served as /patroni by the fallback
		{http.MethodGet, "/metrics", "", 401},
		{http.MethodGet, "/config", "", 401},
		{http.MethodGet, "/history", "", 401},
		{http.MethodGet, "/api/v1/openapi.json", "", 401},
		{http.MethodGet, "/api/v1/openapi.json", "tok", 200},
		{http.MethodHead, "/cluster", "", 401}, // unrouted and not named after a health check: fails closed
		{http.MethodPatch, "/config", "", 401},
		{http.MethodGet, "/", "", 200},
		{http.MethodGet, "/primary", "", 200},
		{http.MethodHead, "/primary", "", 200},
		{http.MethodOptions, "/primary", "", 200},
		{http.MethodGet, "/replica?lag=16MB", "", 503},
		{http.MethodGet, "/replica/", "", 503}, // unrouted health path, answered by the fallback
		{http.MethodGet, "/read-only", "", 200},
		{http.MethodGet, "/health", "", 200},
		{http.MethodGet, "/liveness", "", 200},
		{http.MethodHead, "/readiness", "", 200},
		{http.MethodOptions, "/liveness", "", 200},
	}
	node := &readsNode{configNode: configNode{cfg: map[string]any{"pause": true}}, st: primary()}
	r := NewRouter(routesOf(node), nil, nil, func() time.Time { return t0 }, WithAuth(on))
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path+" "+tt.bearer, func(t *testing.T) {
			t.Parallel()
			req := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
