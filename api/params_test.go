package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/params"
)

// testCatalog is a two-parameter catalog in the shape the server reports.
func testCatalog(t *testing.T) *params.Catalog {
	t.Helper()
	c, err := params.NewCatalog(150018, []params.Param{
		{Name: "work_mem", Context: params.ContextUser, Type: "integer", Unit: "kB", Min: 64, Max: 2147483647, BootVal: "4096", ResetVal: "4096"},
		{Name: "shared_buffers", Context: params.ContextPostmaster, Type: "integer", Unit: "8kB", Min: 16, Max: 1073741823, BootVal: "16384", ResetVal: "16384"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The opsNode of the route tests serves the parameter routes from a fixed catalog with the
// real validator and tuning.
func (o *opsNode) Catalog(context.Context) (*params.Catalog, error) { return o.cat, nil }

func (o *opsNode) ReviewParameters(_ context.Context, p map[string]string) (params.Report, error) {
	return params.Review(o.cat, p, params.Facts{MemoryBytes: 16 << 30, Members: 3}), nil
}

func (o *opsNode) TuneParameters(_ context.Context, r daemon.TuneRequest) (daemon.Tuning, error) {
	in := params.TuneInput{MemoryBytes: 16 << 30, CPUs: 8, Storage: params.StorageSSD, Major: 15, Workload: params.Workload(r.Workload)}
	s, err := params.Tune(in)
	if err != nil {
		return daemon.Tuning{}, &daemon.FieldError{Field: "workload", Value: r.Workload, Reason: err.Error()}
	}
	out := daemon.Tuning{Input: in}
	for _, x := range s {
		out.Suggestions = append(out.Suggestions, daemon.TunedParameter{Suggestion: x})
	}
	return out, nil
}

func TestParamRoutes(t *testing.T) {
	t.Parallel()
	node := &opsNode{configNode: configNode{cfg: map[string]any{}}, cat: testCatalog(t)}
	r := NewRouter(routesOf(node), nil, nil, nil)
	do := func(method, path, body string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), method, path, strings.NewReader(body))
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	for _, p := range []string{"/api/v1/parameters", "/api/v1/parameter/list"} {
		rec := do("GET", p, "")
		var l client.ParameterList
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil || len(l.Parameters) != 2 || l.ServerVersionNum != 150018 {
			t.Fatalf("GET %s: %d %s", p, rec.Code, rec.Body)
		}
		if l.Parameters[0].Name != "shared_buffers" || !l.Parameters[0].RestartNeeded || l.Parameters[1].RestartNeeded {
			t.Errorf("GET %s: %+v", p, l.Parameters)
		}
	}
	if rec := do("GET", "/api/v1/parameter/info/work_mem", ""); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"unit":"kB"`) {
		t.Errorf("info work_mem: %d %s", rec.Code, rec.Body)
	}
	if rec := do("GET", "/api/v1/parameters/nosuch", ""); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "unrecognized configuration parameter") {
		t.Errorf("info nosuch: %d %s", rec.Code, rec.Body)
	}
	tests := []struct {
		body   string
		code   int
		expect string
	}{
		{`{"parameters":{"work_mem":"8MB"}}`, http.StatusOK, `"ok":true`},
		{`{"parameters":{"work_mem":"-5"}}`, http.StatusUnprocessableEntity, `outside the valid range`},
		{`{"parameters":{"work_mem":"3TB"}}`, http.StatusUnprocessableEntity, `invalid value for parameter`},
		{`{"parameters":{"nosuch":"1"}}`, http.StatusUnprocessableEntity, `unrecognized configuration parameter`},
		{`{"parameters":{"shared_buffers":"32GB"}}`, http.StatusUnprocessableEntity, `memory`},
		{`{"parameters":{}}`, http.StatusBadRequest, `name at least one parameter`},
		{`{"parameters":{"work_mem":[1]}}`, http.StatusBadRequest, `parameters.work_mem`},
		{`{"params":{}}`, http.StatusBadRequest, `unknown field`},
	}
	for _, tt := range tests {
		for _, p := range []string{"/api/v1/parameters/validate", "/api/v1/parameter/validate"} {
			rec := do("POST", p, tt.body)
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.expect) {
				t.Errorf("POST %s %s: %d %s, want %d with %q", p, tt.body, rec.Code, rec.Body, tt.code, tt.expect)
			}
		}
	}
	for _, p := range []string{"/api/v1/parameters/tune", "/api/v1/parameter/optimize"} {
		rec := do("POST", p, `{"workload":"web"}`)
		var res client.TuneResult
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || len(res.Suggestions) == 0 {
			t.Fatalf("POST %s: %d %s", p, rec.Code, rec.Body)
		}
	}
	if rec := do("POST", "/api/v1/parameters/tune", `{"workload":"space"}`); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"workload"`) {
		t.Errorf("tune with an unknown workload: %d %s", rec.Code, rec.Body)
	}
}
