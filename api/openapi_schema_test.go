package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
)

// bodyNode serves every route group with a snapshot, a job and the fixed catalog, so each
// documented route can answer a sample request with 2xx.
type bodyNode struct {
	opsNode
	st *daemon.Status
}

func (b *bodyNode) Status() *daemon.Status { return b.st }
func (b *bodyNode) Job(_ context.Context, id string) (consul.Job, error) {
	return consul.Job{ID: id, Kind: "switchover", From: "n1", To: "n2", State: "running",
		Phases: []consul.JobPhase{{Name: "requested", At: t0, Node: "n1"}}, CreatedAt: t0}, nil
}
func (b *bodyNode) Jobs(ctx context.Context) ([]consul.Job, error) {
	j, _ := b.Job(ctx, "job-1")
	return []consul.Job{j}, nil
}
func (b *bodyNode) RequestSwitchover(context.Context, daemon.SwitchoverRequest) (string, error) {
	return "job-1", nil
}
func (b *bodyNode) RollingRestart(context.Context, daemon.RollingRestartRequest) (string, error) {
	return "job-4", nil
}

// TestOpenAPIBodiesMatch: every documented route has its bodies described, and the answers
// of the real handlers decode into the types the document was made from, with no field the
// types lack; a text route answers text.
func TestOpenAPIBodiesMatch(t *testing.T) {
	t.Parallel()
	for _, d := range allDocs() {
		if _, ok := ioOf(d); !ok {
			t.Errorf("%s %s: no request and response types in adminIO", d.Method, d.Path)
		}
	}
	st := clusterStatus()
	st.Slots = []daemon.Slot{{Name: "n2", Active: true, RestartLSN: leaderLSN - 8192}}
	node := &bodyNode{opsNode: opsNode{configNode: configNode{cfg: map[string]any{"ttl": float64(30)}}, cat: testCatalog(t)}, st: st}
	r := NewRouter(routesOf(node), nil, nil, func() time.Time { return now })
	samples := []struct{ doc, method, path, body string }{
		{"GET /patroni", "GET", "/patroni", ""},
		{"GET /primary", "GET", "/primary", ""},
		{"OPTIONS /primary", "OPTIONS", "/primary", ""},
		{"GET /cluster", "GET", "/cluster", ""},
		{"GET /metrics", "GET", "/metrics", ""},
		{"GET /api/v1/cluster", "GET", "/api/v1/cluster", ""},
		{"GET /api/v1/cluster/status", "GET", "/api/v1/cluster/status", ""},
		{"GET /api/v1/cluster/health", "GET", "/api/v1/cluster/health", ""},
		{"GET /api/v1/cluster/metrics", "GET", "/api/v1/cluster/metrics", ""},
		{"GET /api/v1/jobs/{id}", "GET", "/api/v1/jobs/job-1", ""},
		{"GET /api/v1/backup/status/{id}", "GET", "/api/v1/backup/status/job-1", ""},
		{"GET /api/v1/jobs", "GET", "/api/v1/jobs", ""},
		{"POST /api/v1/switchover", "POST", "/api/v1/switchover", `{"leader":"n1","candidate":"n2"}`},
		{"POST /api/v1/cluster/switchover", "POST", "/api/v1/cluster/switchover", `{"candidate":"n2"}`},
		{"POST /api/v1/failover", "POST", "/api/v1/failover", `{"candidate":"n2"}`},
		{"POST /api/v1/pause", "POST", "/api/v1/pause", ""},
		{"POST /api/v1/resume", "POST", "/api/v1/resume", ""},
		{"POST /api/v1/restart", "POST", "/api/v1/restart", `{"in_place":true}`},
		{"POST /api/v1/reinitialize", "POST", "/api/v1/reinitialize", `{}`},
		{"POST /reload", "POST", "/reload", ""},
		{"DELETE /restart", "DELETE", "/restart", ""},
		{"GET /api/v1/sync-standbys", "GET", "/api/v1/sync-standbys", ""},
		{"GET /api/v1/sync-standbys/status", "GET", "/api/v1/sync-standbys/status", ""},
		{"PUT /api/v1/sync-standbys", "PUT", "/api/v1/sync-standbys", `{"synchronous_mode":"on"}`},
		{"POST /api/v1/sync-standbys/add", "POST", "/api/v1/sync-standbys/add", `{}`},
		{"POST /api/v1/sync-standbys/remove", "POST", "/api/v1/sync-standbys/remove", ``},
		{"POST /api/v1/sync-standbys/any-n", "POST", "/api/v1/sync-standbys/any-n", `{"n":2}`},
		{"GET /api/v1/parameters", "GET", "/api/v1/parameters", ""},
		{"GET /api/v1/parameter/list", "GET", "/api/v1/parameter/list", ""},
		{"GET /api/v1/parameters/{name}", "GET", "/api/v1/parameters/work_mem", ""},
		{"GET /api/v1/parameter/info/{name}", "GET", "/api/v1/parameter/info/work_mem", ""},
		{"POST /api/v1/parameters/validate", "POST", "/api/v1/parameters/validate", `{"parameters":{"work_mem":"8MB"}}`},
		{"POST /api/v1/parameter/validate", "POST", "/api/v1/parameter/validate", `{"parameters":{"work_mem":"8MB"}}`},
		{"POST /api/v1/parameters/tune", "POST", "/api/v1/parameters/tune", `{"workload":"web"}`},
		{"POST /api/v1/parameter/optimize", "POST", "/api/v1/parameter/optimize", `{"workload":"oltp"}`},
		{"GET /api/v1/openapi.json", "GET", "/api/v1/openapi.json", ""},
		{"GET /config", "GET", "/config", ""},
		{"GET /api/v1/config", "GET", "/api/v1/config", ""},
		{"PATCH /config", "PATCH", "/config", `{"loop_wait":2}`},
		{"PUT /api/v1/config", "PUT", "/api/v1/config", `{"ttl":30}`},
		{"PUT /config", "PUT", "/config", `{"ttl":30}`},
		{"PATCH /api/v1/config", "PATCH", "/api/v1/config", `{"loop_wait":1}`},
		{"POST /api/v1/config", "POST", "/api/v1/config", `{"loop_wait":3}`},
		{"GET /history", "GET", "/history", ""},
		{"GET /api/v1/history", "GET", "/api/v1/history", ""},
	}
	// The backup routes, over a node with a repository (backups_test.go).
	rn := &repoNode{staticNode: newNode(st), cat: backup.Catalog{Backups: []backup.Info{
		{ID: "F1", Type: "full", Status: backup.StatusDone, Start: t0.Add(-time.Hour), Stop: t0, JobID: "j0"}}},
		jobs: []consul.Job{{ID: "j0", Kind: consul.JobBackupKind, State: consul.JobSucceeded, CreatedAt: t0}}}
	br := NewRouter(routesOf(rn), nil, nil, func() time.Time { return now })
	backupSamples := []struct{ doc, method, path, body string }{
		{"POST /api/v1/backups", "POST", "/api/v1/backups", `{"type":"full"}`},
		{"POST /api/v1/backup/start", "POST", "/api/v1/backup/start", `{"type":"incr"}`},
		{"GET /api/v1/backups", "GET", "/api/v1/backups", ""},
		{"GET /api/v1/backup/list", "GET", "/api/v1/backup/list", ""},
		{"GET /api/v1/backups/{id}", "GET", "/api/v1/backups/F1", ""},
		{"POST /api/v1/backups/expire", "POST", "/api/v1/backups/expire", ""},
		{"POST /api/v1/backups/check", "POST", "/api/v1/backups/check", ""},
		{"GET /api/v1/backup/jobs", "GET", "/api/v1/backup/jobs", ""},
		{"GET /api/v1/backup-schedules", "GET", "/api/v1/backup-schedules", ""},
		{"POST /api/v1/backup/schedule", "POST", "/api/v1/backup/schedule", `{"type":"full","cron":"0 2 * * 0"}`},
		{"POST /api/v1/backup-schedules/{type}/run", "POST", "/api/v1/backup-schedules/full/run", ""},
		{"POST /api/v1/restore", "POST", "/api/v1/restore", `{"target":{"type":"time","value":"2026-01-02T15:04:05Z"},"confirm":"demo"}`},
		{"POST /api/v1/backup/restore", "POST", "/api/v1/backup/restore", `{"backup_id":"F1","confirm":"demo"}`},
	}
	routerOf := map[string]http.Handler{}
	for _, s := range backupSamples {
		routerOf[s.doc] = br
	}
	samples = append(samples, backupSamples...)
	sampled := map[string]bool{}
	for _, s := range samples {
		sampled[s.doc] = true
		method, path, _ := strings.Cut(s.doc, " ")
		io, ok := ioOf(routeDoc{Method: method, Path: path})
		if !ok {
			t.Errorf("%s is not documented", s.doc)
			continue
		}
		h := http.Handler(r)
		if rh, ok := routerOf[s.doc]; ok {
			h = rh
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), s.method, s.path, strings.NewReader(s.body)))
		if rec.Code < 200 || rec.Code > 299 {
			t.Errorf("%s %s: %d %s", s.method, s.path, rec.Code, rec.Body)
			continue
		}
		ct := rec.Header().Get("Content-Type")
		switch {
		case io.resp != nil:
			v := reflect.New(reflect.TypeOf(io.resp))
			dec := json.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
			dec.DisallowUnknownFields()
			if err := dec.Decode(v.Interface()); err != nil || !strings.HasPrefix(ct, "application/json") {
				t.Errorf("%s %s: the answer does not match %T (%s): %v\n%s", s.method, s.path, io.resp, ct, err, rec.Body)
			}
		case io.text && s.method != http.MethodOptions && s.method != http.MethodHead && !strings.HasPrefix(ct, "text/plain"):
			t.Errorf("%s %s: documented as text, answered %q", s.method, s.path, ct)
		}
	}
	// Every route with a JSON answer is sampled (the health GETs share one handler).
	for _, d := range allDocs() {
		io, _ := ioOf(d)
		key := d.Method + " " + d.Path
		if io.resp != nil && !sampled[key] && !isHealthPath(d.Path) {
			t.Errorf("%s has a JSON answer but no sample request in this test", key)
		}
	}
}

// isHealthPath reports whether p is one of Patroni's health paths.
func isHealthPath(p string) bool {
	for _, h := range healthPaths {
		if h == p {
			return true
		}
	}
	return false
}

// TestOpenAPISchemas: each operation with a JSON body refers to a schema, every $ref
// resolves, and a few schemas have the properties the wire types have.
func TestOpenAPISchemas(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(openAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths      map[string]map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]any `json:"properties"`
				Required   []string       `json:"required"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, ref := range regexpRefs(string(b)) {
		if _, ok := doc.Components.Schemas[ref]; !ok {
			t.Errorf("$ref %s does not resolve", ref)
		}
	}
	for name, props := range map[string][]string{
		"ClusterHealth":     {"status", "reasons", "members"},
		"SwitchoverRequest": {"leader", "candidate", "scheduled_at"},
		"Member":            {"replication_state", "lag_seconds", "scheduled_restart"},
		"NodeStatus":        {"state", "role", "patroni"},
	} {
		s, ok := doc.Components.Schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		for _, p := range props {
			if _, ok := s.Properties[p]; !ok {
				t.Errorf("schema %s lacks %s", name, p)
			}
		}
	}
	op := doc.Paths["/api/v1/sync-standbys/any-n"]["post"]
	if _, ok := op["requestBody"]; !ok {
		t.Errorf("POST /api/v1/sync-standbys/any-n has no request body: %v", op)
	}
}

// regexpRefs lists the component names the document refers to.
func regexpRefs(doc string) []string {
	var out []string
	const prefix = `"$ref":"#/components/schemas/`
	for {
		i := strings.Index(doc, prefix)
		if i < 0 {
			return out
		}
		doc = doc[i+len(prefix):]
		j := strings.IndexByte(doc, '"')
		out = append(out, doc[:j])
		doc = doc[j:]
	}
}
