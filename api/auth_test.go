package api

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	basic := func(u, p string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(u+":"+p)) }
	on := Auth{Username: "admin", Password: "s3cret", Token: "tok"}
	tests := []struct {
		name   string
		auth   Auth
		method string
		path   string
		header string
		code   int
	}{
		{"open when unconfigured", Auth{}, http.MethodPatch, "/config", "", 200},
		{"health stays open", on, http.MethodGet, "/primary", "", 503},
		{"reads stay open", on, http.MethodGet, "/config", "", 200},
		{"no credentials", on, http.MethodPatch, "/config", "", 401},
		{"wrong password", on, http.MethodPatch, "/config", basic("admin", "nope"), 401},
		{"wrong user", on, http.MethodPatch, "/config", basic("root", "s3cret"), 401},
		{"basic auth", on, http.MethodPatch, "/config", basic("admin", "s3cret"), 200},
		{"bearer token", on, http.MethodPatch, "/config", "Bearer tok", 200},
		{"wrong token", on, http.MethodPatch, "/config", "Bearer tik", 401},
		{"malformed header", on, http.MethodPatch, "/config", "Basic !!!", 401},
		{"delete needs auth", on, http.MethodDelete, "/switchover", "", 401},
		{"failsafe needs auth", on, http.MethodPost, "/failsafe", "", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := &configNode{cfg: map[string]any{"pause": true}}
			r := NewRouter(routesOf(node), nil, nil, nil, WithAuth(tt.auth))
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{"pause":false}`))
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 401 {
				if rec.Header().Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if node.cfg["pause"] != true {
					t.Error("a refused request changed the config")
				}
			}
		})
	}
}
