package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

// configNode keeps a config in memory with a version, standing in for the daemon in these
// handler tests only (the integration suite drives the real one).
type configNode struct {
	syncNode
	cfg map[string]any
	idx uint64
}

func (c *configNode) DynamicConfig(context.Context) (map[string]any, uint64, error) {
	return c.cfg, c.idx, nil
}

func (c *configNode) apply(next map[string]any, index *uint64) (map[string]any, error) {
	if index != nil && *index != c.idx {
		return nil, consul.ErrConflict
	}
	if err := daemon.ValidateDynamicConfig(next); err != nil {
		return nil, err
	}
	c.cfg, c.idx = next, c.idx+1
	return next, nil
}

func (c *configNode) PatchConfig(_ context.Context, p map[string]any, index *uint64) (map[string]any, error) {
	next := map[string]any{}
	for k, v := range c.cfg {
		next[k] = v
	}
	for k, v := range p {
		if v == nil {
			delete(next, k)
		} else {
			next[k] = v
		}
	}
	return c.apply(next, index)
}

func (c *configNode) ReplaceConfig(_ context.Context, cfg map[string]any, index *uint64) (map[string]any, error) {
	return c.apply(cfg, index)
}

func (c *configNode) History(context.Context) ([]consul.HistoryEntry, error) {
	return []consul.HistoryEntry{{Timeline: 1, LSN: 100, Reason: "failover", NewLeader: "n2"}}, nil
}

func TestConfigEndpoints(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, path, body, ifMatch string
		code                              int
		wantPause                         any // pause in the stored config afterwards
	}{
		{"get", http.MethodGet, "/config", "", "", 200, true},
		{"patch pause off", http.MethodPatch, "/config", `{"pause":false}`, "", 200, false},
		{"patch null deletes", http.MethodPatch, "/config", `{"pause":null}`, "", 200, nil},
		{"patch with current etag", http.MethodPatch, "/api/v1/config", `{"pause":false}`, `"7"`, 200, false},
		{"patch with stale etag", http.MethodPatch, "/config", `{"pause":false}`, `"3"`, 409, true},
		{"patch bad value", http.MethodPatch, "/config", `{"maximum_lag_on_failover":-5}`, "", 400, true},
		{"patch not an object", http.MethodPatch, "/config", `[1,2]`, "", 400, true},
		{"put replaces", http.MethodPut, "/config", `{"ttl":30}`, "", 200, nil},
		{"put bad sync mode", http.MethodPut, "/config", `{"synchronous_mode":"maybe"}`, "", 400, true},
		{"history", http.MethodGet, "/history", "", "", 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := &configNode{cfg: map[string]any{"pause": true}, idx: 7}
			r := NewRouter(routesOf(node), nil, nil, nil)
			req := httptest.NewRequest(tt.method, tt.path, strings.NewReader(tt.body))
			if tt.ifMatch != "" {
				req.Header.Set("If-Match", tt.ifMatch)
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, req)
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if !json.Valid(rec.Body.Bytes()) {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if got := node.cfg["pause"]; got != tt.wantPause {
				t.Fatalf("stored pause %v, want %v (config %v)", got, tt.wantPause, node.cfg)
			}
			if tt.method == http.MethodGet && tt.path == "/config" && rec.Header().Get("ETag") != `"7"` {
				t.Errorf("ETag %q", rec.Header().Get("ETag"))
			}
		})
	}
}
