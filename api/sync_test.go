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

// syncNode is a node that answers the sync endpoints from memory; it stands in for the
// daemon only in these handler tests (the integration suite uses the real one).
type syncNode struct {
	set      []daemon.SyncSettings
	conflict bool
}

func (s *syncNode) Status() *daemon.Status    { return &daemon.Status{} }
func (s *syncNode) ConfirmLeader(string) bool { return true }
func (s *syncNode) Job(context.Context, string) (consul.Job, error) {
	return consul.Job{}, consul.ErrNotFound
}
func (s *syncNode) RequestSwitchover(context.Context, daemon.SwitchoverRequest) (string, error) {
	return "", nil
}
func (s *syncNode) SyncStandbys(context.Context) (daemon.SyncView, error) {
	return daemon.SyncView{Mode: "on", Count: 1, Commit: "on", Standbys: []daemon.SyncMember{{Name: "n2"}}}, nil
}
func (s *syncNode) SetSync(ctx context.Context, in daemon.SyncSettings) (daemon.SyncView, error) {
	if err := in.Validate(); err != nil {
		return daemon.SyncView{}, err
	}
	if s.conflict {
		return daemon.SyncView{}, consul.ErrConflict
	}
	s.set = append(s.set, in)
	return s.SyncStandbys(ctx)
}

func TestSyncStandbysEndpoint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		body     string
		conflict bool
		code     int
		field    string
		applied  bool
	}{
		{"get", http.MethodGet, "", false, 200, "", false},
		{"set quorum", http.MethodPut, `{"synchronous_mode":"quorum","synchronous_node_count":2}`, false, 200, "", true},
		{"malformed", http.MethodPut, `{"synchronous_mode":`, false, 400, "", false},
		{"unknown field", http.MethodPut, `{"synchronous_mood":"on"}`, false, 400, "synchronous_mood", false},
		{"wrong type", http.MethodPut, `{"synchronous_node_count":"two"}`, false, 400, "synchronous_node_count", false},
		{"bad mode", http.MethodPut, `{"synchronous_mode":"sometimes"}`, false, 400, "synchronous_mode", false},
		{"bad count", http.MethodPut, `{"synchronous_node_count":0}`, false, 400, "synchronous_node_count", false},
		{"bad commit level", http.MethodPut, `{"synchronous_commit":"local"}`, false, 400, "synchronous_commit", false},
		{"cas conflict", http.MethodPut, `{"synchronous_mode":"on"}`, true, 409, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := &syncNode{conflict: tt.conflict}
			r := NewRouter(routesOf(node), nil, nil, nil)
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequest(tt.method, "/api/v1/sync-standbys", strings.NewReader(tt.body)))
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body is not JSON: %s", rec.Body)
			}
			if tt.field != "" && body["field"] != tt.field {
				t.Errorf("field %v, want %s", body["field"], tt.field)
			}
			if applied := len(node.set) > 0; applied != tt.applied {
				t.Errorf("applied %v, want %v", applied, tt.applied)
			}
		})
	}
}

func (s *syncNode) CancelSwitchover(context.Context) error { return daemon.ErrNoSwitchover }
