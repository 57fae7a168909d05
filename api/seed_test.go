package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
)

// healthyCluster is a primary holding the lock that sees itself and two streaming replicas
// within the lag limit.
func healthyCluster(mods ...func(*daemon.Status)) *daemon.Status {
	st := primary(func(st *daemon.Status) {
		st.CycleAt = now
		st.Members = []daemon.MemberStatus{
			{Name: "n1", Role: "leader", State: "running", Timeline: 3, LSN: leaderLSN},
			{Name: "n2", Role: "replica", State: "running", ReplicationState: "streaming", Timeline: 3,
				ReceiveLSN: leaderLSN, ReplayLSN: leaderLSN, LSN: leaderLSN},
			{Name: "n3", Role: "replica", State: "running", ReplicationState: "streaming", Timeline: 3,
				ReceiveLSN: leaderLSN - 4096, ReplayLSN: leaderLSN - 4096, LSN: leaderLSN - 4096, Lag: 4096},
		}
	})
	for _, m := range mods {
		m(st)
	}
	return st
}

// member changes the member named name in the snapshot.
func member(name string, f func(*daemon.MemberStatus)) func(*daemon.Status) {
	return func(st *daemon.Status) {
		for i := range st.Members {
			if st.Members[i].Name == name {
				f(&st.Members[i])
			}
		}
	}
}

func TestClusterHealthVerdict(t *testing.T) {
	t.Parallel()
	type finding struct{ severity, member, reason string }
	tests := []struct {
		name   string
		st     *daemon.Status
		status string
		want   []finding // each reason is matched by its beginning
	}{
		{"healthy", healthyCluster(), client.HealthHealthy, nil},
		{"no replica left", healthyCluster(func(st *daemon.Status) { st.Members = st.Members[:1] }),
			client.HealthDegraded, []finding{{"warning", "", "no replica streams from the leader"}}},
		{"replica stopped", healthyCluster(member("n3", func(m *daemon.MemberStatus) {
			m.State, m.ReplicationState, m.ReceiveLSN, m.ReplayLSN, m.LSN, m.Lag = "stopped", "", 0, 0, 0, 0
		})), client.HealthDegraded, []finding{{"warning", "n3", "PostgreSQL is stopped"}}},
		{"replica in archive recovery", healthyCluster(member("n2", func(m *daemon.MemberStatus) {
			m.ReplicationState = "in archive recovery"
		})), client.HealthDegraded, []finding{{"warning", "n2", "not streaming from the leader"}}},
		{"replica too far behind", healthyCluster(member("n3", func(m *daemon.MemberStatus) { m.Lag = 2 << 20 })),
			client.HealthDegraded, []finding{{"warning", "n3", "2097152 bytes behind the leader, more than maximum_lag_on_failover (1048576)"}}},
		{"maintenance mode", healthyCluster(paused), client.HealthDegraded, []finding{{"warning", "", "maintenance mode"}}},
		{"failsafe", healthyCluster(failsafe), client.HealthDegraded, []finding{{"warning", "", "failsafe mode is active"}}},
		{"sync degraded", healthyCluster(func(st *daemon.Status) { st.SyncDegraded = "no synchronous standby streams" }),
			client.HealthDegraded, []finding{{"warning", "n1", "synchronous replication degraded: no synchronous standby streams"}}},
		{"no leader", healthyCluster(func(st *daemon.Status) {
			st.Leader, st.HasLock = "", false
			st.Members[0].Role = "replica"
			st.Members[0].ReplicationState = "in archive recovery"
		}), client.HealthUnhealthy, []finding{{"critical", "", "no member holds the leader lock"}, {"warning", "n1", "not streaming"}}},
		{"leader stopped", healthyCluster(member("n1", func(m *daemon.MemberStatus) { m.State = "stopped" })),
			client.HealthUnhealthy, []finding{{"critical", "n1", "the leader's PostgreSQL is stopped"}}},
		{"leader without record", healthyCluster(func(st *daemon.Status) { st.Members = st.Members[1:] }),
			client.HealthUnhealthy, []finding{{"critical", "n1", "the leader published no member record"}}},
		{"consul away", healthyCluster(dcsDown), client.HealthUnhealthy, []finding{{"critical", "", "n1 cannot reach Consul"}}},
		{"stale view", healthyCluster(func(st *daemon.Status) { st.CycleAt = now.Add(-time.Minute) }),
			client.HealthUnhealthy, []finding{{"critical", "", "n1 finished its last HA cycle 1m0s ago"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := clusterHealth(tt.st, now)
			if got.Status != tt.status {
				t.Errorf("status %s, want %s: %+v", got.Status, tt.status, got.Reasons)
			}
			if len(got.Reasons) != len(tt.want) {
				t.Fatalf("reasons %+v, want %d", got.Reasons, len(tt.want))
			}
			for i, w := range tt.want {
				r := got.Reasons[i]
				if r.Severity != w.severity || r.Member != w.member || !strings.HasPrefix(r.Reason, w.reason) {
					t.Errorf("reason %d = %+v, want %+v", i, r, w)
				}
			}
			for _, m := range got.Members {
				var mine []string
				for _, r := range got.Reasons {
					if r.Member == m.Name {
						mine = append(mine, r.Reason)
					}
				}
				if m.Healthy != (len(m.Reasons) == 0) || len(m.Reasons) > len(mine) {
					t.Errorf("member %+v does not match the reasons %v", m, mine)
				}
			}
		})
	}
}

// decodeInto decodes a recorded JSON answer, failing the test when it is not JSON.
func decodeInto(t *testing.T, rec *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("answer is not JSON: %v\n%s", err, rec.Body)
	}
}

func TestClusterHealthRoute(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		st     *daemon.Status
		code   int
		status string
	}{
		{"healthy", healthyCluster(), 200, client.HealthHealthy},
		{"degraded", healthyCluster(paused), 200, client.HealthDegraded},
		{"unhealthy", healthyCluster(dcsDown), 503, client.HealthUnhealthy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, tt.st)
			rec := serve(t, h, http.MethodGet, "/api/v1/cluster/health")
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			var v client.ClusterHealth
			decodeInto(t, rec, &v)
			if v.Status != tt.status || len(v.Members) != 3 || v.Node != "n1" || v.Leader != "n1" {
				t.Errorf("answer %+v", v)
			}
		})
	}
	h, _ := newTestRouter(t, nil)
	if rec := serve(t, h, http.MethodGet, "/api/v1/cluster/health"); rec.Code != http.StatusServiceUnavailable {
		t.Errorf("before the first cycle: code %d, want 503", rec.Code)
	}
}

// TestClusterStatusAlias: the seed's /api/v1/cluster/status is /api/v1/cluster.
func TestClusterStatusAlias(t *testing.T) {
	t.Parallel()
	h, _ := newTestRouter(t, clusterStatus())
	a, b := serve(t, h, http.MethodGet, "/api/v1/cluster"), serve(t, h, http.MethodGet, "/api/v1/cluster/status")
	if a.Code != 200 || b.Code != 200 || a.Body.String() != b.Body.String() {
		t.Errorf("/api/v1/cluster %d and /api/v1/cluster/status %d differ:\n%s\n%s", a.Code, b.Code, a.Body, b.Body)
	}
}

// metricsNode is a snapshot with a failover history.
type metricsNode struct {
	configNode
	st      *daemon.Status
	histErr error
}

func (m *metricsNode) Status() *daemon.Status { return m.st }
func (m *metricsNode) History(context.Context) ([]consul.HistoryEntry, error) {
	if m.histErr != nil {
		return nil, m.histErr
	}
	return []consul.HistoryEntry{
		{Timeline: 1, LSN: 0x3000060, Reason: "no recent leader heartbeat", Timestamp: t0.Add(-2 * time.Hour), NewLeader: "n2"},
		{Timeline: 2, LSN: 0x5000060, Reason: "switchover to n1 (job 7)", Timestamp: t0.Add(-time.Hour), NewLeader: "n1"},
	}, nil
}

func TestClusterMetricsRoute(t *testing.T) {
	t.Parallel()
	st := clusterStatus()
	st.Connections, st.XactCommit, st.XactRollback, st.CommitRate, st.RollbackRate = 12, 4000, 7, 250.5, 0.5
	st.Slots = []daemon.Slot{{Name: "n2", Active: true, RestartLSN: leaderLSN - 8192}, {Name: "n4", RestartLSN: 0}}
	node := &metricsNode{st: st}
	r := NewRouter(routesOf(node), nil, nil, func() time.Time { return now })
	rec := serve(t, r, http.MethodGet, "/api/v1/cluster/metrics")
	if rec.Code != 200 {
		t.Fatalf("code %d: %s", rec.Code, rec.Body)
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, rec.Body.Bytes(), "", "  "); err != nil {
		t.Fatal(err)
	}
	pretty.WriteByte('\n')
	golden(t, "cluster_metrics", pretty.Bytes())

	node.histErr = errors.New("consul: unavailable")
	rec = serve(t, r, http.MethodGet, "/api/v1/cluster/metrics")
	var v client.ClusterMetrics
	decodeInto(t, rec, &v)
	if rec.Code != 200 || v.LastFailover != nil || !strings.Contains(v.HistoryError, "consul: unavailable") || len(v.Members) != 5 {
		t.Errorf("without history: code %d, %+v", rec.Code, v)
	}
}

// switchoverRecorder records the switchover requests it is asked for.
type switchoverRecorder struct {
	syncNode
	got []daemon.SwitchoverRequest
}

func (s *switchoverRecorder) RequestSwitchover(_ context.Context, r daemon.SwitchoverRequest) (string, error) {
	s.got = append(s.got, r)
	return "job-1", nil
}

// TestSeedSwitchover: POST /api/v1/cluster/switchover is POST /api/v1/switchover.
func TestSeedSwitchover(t *testing.T) {
	t.Parallel()
	node := &switchoverRecorder{}
	r := NewRouter(routesOf(node), nil, nil, nil)
	for _, path := range []string{"/api/v1/switchover", "/api/v1/cluster/switchover"} {
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(`{"leader":"n1","candidate":"n2"}`)))
		var acc client.JobAccepted
		decodeInto(t, rec, &acc)
		if rec.Code != http.StatusAccepted || acc.JobID != "job-1" {
			t.Errorf("%s: code %d, %s", path, rec.Code, rec.Body)
		}
		rec = httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, path, strings.NewReader(`{"leader":"n1","candidate":"n1"}`)))
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%s to the leader itself: code %d, want 400", path, rec.Code)
		}
	}
	want := daemon.SwitchoverRequest{From: "n1", To: "n2"}
	if diff := cmp.Diff([]daemon.SwitchoverRequest{want, want}, node.got); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestSeedConfigPost: POST /api/v1/config is a merge patch, with If-Match.
func TestSeedConfigPost(t *testing.T) {
	t.Parallel()
	node := &configNode{cfg: map[string]any{"ttl": float64(30), "loop_wait": float64(10)}, idx: 5}
	r := NewRouter(routesOf(node), nil, nil, nil)
	post := func(body, ifMatch string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/config", strings.NewReader(body))
		if ifMatch != "" {
			req.Header.Set("If-Match", ifMatch)
		}
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, req)
		return rec
	}
	if rec := post(`{"maximum_lag_on_failover": 2097152, "loop_wait": null}`, `"5"`); rec.Code != 200 {
		t.Fatalf("patch: code %d: %s", rec.Code, rec.Body)
	}
	want := map[string]any{"ttl": float64(30), "maximum_lag_on_failover": float64(2097152)}
	if diff := cmp.Diff(want, node.cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
	if rec := post(`{"ttl": 20}`, `"5"`); rec.Code != http.StatusConflict {
		t.Errorf("stale If-Match: code %d, want 409", rec.Code)
	}
	if rec := post(`{"ttl": "banana"}`, ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"ttl"`) {
		t.Errorf("bad value: code %d, %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff(want, node.cfg); diff != "" {
		t.Errorf("a refused request changed the config (-want +got):\n%s", diff)
	}
}

func TestSyncStep(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cur  string
		op   string
		n    int
		want map[string]any
		err  error
	}{
		{"add when off", `{}`, syncAdd, 0, map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(1)}, nil},
		{"add when on", `{"synchronous_mode":"on","synchronous_node_count":1}`, syncAdd, 0, map[string]any{"synchronous_node_count": float64(2)}, nil},
		{"add in quorum", `{"synchronous_mode":"quorum","synchronous_node_count":2}`, syncAdd, 0, map[string]any{"synchronous_node_count": float64(3)}, nil},
		{"add as Patroni writes on", `{"synchronous_mode":true}`, syncAdd, 0, map[string]any{"synchronous_node_count": float64(2)}, nil},
		{"remove the last", `{"synchronous_mode":"on"}`, syncRemove, 0, map[string]any{"synchronous_mode": "off"}, nil},
		{"remove one of two", `{"synchronous_mode":"quorum","synchronous_node_count":2}`, syncRemove, 0, map[string]any{"synchronous_node_count": float64(1)}, nil},
		{"remove when off", `{"synchronous_mode":"off"}`, syncRemove, 0, nil, errSyncOff},
		{"any n", `{"synchronous_mode":"on"}`, syncAnyN, 2, map[string]any{"synchronous_mode": "quorum", "synchronous_node_count": float64(2)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var cur map[string]any
			if err := json.Unmarshal([]byte(tt.cur), &cur); err != nil {
				t.Fatal(err)
			}
			got, err := syncStep(cur, tt.op, tt.n)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("patch (-want +got):\n%s", diff)
			}
		})
	}
	if _, err := syncStep(map[string]any{"ttl": "banana"}, syncAdd, 0); err == nil {
		t.Error("a refused stored configuration gave no error")
	}
}

// TestSyncStepRoutes runs the seed's sync routes through the router over a config kept in
// memory: each answers the sync view, refuses bad input with the field, and writes by CAS.
func TestSyncStepRoutes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cfg   map[string]any
		path  string
		body  string
		code  int
		field string
		want  map[string]any // the configuration afterwards
	}{
		{"status", map[string]any{}, "/api/v1/sync-standbys/status", "", 200, "", map[string]any{}},
		{"add, no body", map[string]any{}, "/api/v1/sync-standbys/add", "", 200, "",
			map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(1)}},
		{"add, empty object", map[string]any{"synchronous_mode": "on"}, "/api/v1/sync-standbys/add", "{}", 200, "",
			map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(2)}},
		{"add a named standby", map[string]any{}, "/api/v1/sync-standbys/add", `{"name":"n2"}`, 400, "name", map[string]any{}},
		{"add past the limit", map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(64)}, "/api/v1/sync-standbys/add", "", 400, "synchronous_node_count",
			map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(64)}},
		{"remove the last", map[string]any{"synchronous_mode": "on"}, "/api/v1/sync-standbys/remove", "", 200, "",
			map[string]any{"synchronous_mode": "off"}},
		{"remove when off", map[string]any{}, "/api/v1/sync-standbys/remove", "", 422, "synchronous_mode", map[string]any{}},
		{"any-n", map[string]any{}, "/api/v1/sync-standbys/any-n", `{"n":2}`, 200, "",
			map[string]any{"synchronous_mode": "quorum", "synchronous_node_count": float64(2)}},
		{"any-n without n", map[string]any{}, "/api/v1/sync-standbys/any-n", `{}`, 400, "n", map[string]any{}},
		{"any-n wrong type", map[string]any{}, "/api/v1/sync-standbys/any-n", `{"n":"two"}`, 400, "n", map[string]any{}},
		{"any-n too many", map[string]any{}, "/api/v1/sync-standbys/any-n", `{"n":65}`, 400, "synchronous_node_count", map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			node := &configNode{cfg: tt.cfg, idx: 3}
			r := NewRouter(routesOf(node), nil, nil, nil)
			method := http.MethodPost
			if tt.body == "" && strings.HasSuffix(tt.path, "/status") {
				method = http.MethodGet
			}
			rec := httptest.NewRecorder()
			r.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), method, tt.path, strings.NewReader(tt.body)))
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code == 200 {
				var v client.SyncView
				decodeInto(t, rec, &v)
				if v.Mode == "" {
					t.Errorf("answer is not the sync view: %s", rec.Body)
				}
			} else {
				var b client.ErrorBody
				decodeInto(t, rec, &b)
				if b.Field != tt.field {
					t.Errorf("field %q, want %q: %s", b.Field, tt.field, rec.Body)
				}
			}
			if diff := cmp.Diff(tt.want, node.cfg); diff != "" {
				t.Errorf("config (-want +got):\n%s", diff)
			}
		})
	}
}

// casNode changes the configuration between the read and the write of a sync step.
type casNode struct{ configNode }

func (c *casNode) DynamicConfig(ctx context.Context) (map[string]any, uint64, error) {
	cfg, idx, err := c.configNode.DynamicConfig(ctx)
	c.idx++ // someone else wrote meanwhile
	return cfg, idx, err
}

func TestSyncStepCAS(t *testing.T) {
	t.Parallel()
	node := &casNode{configNode{cfg: map[string]any{"synchronous_mode": "on"}, idx: 3}}
	r := NewRouter(routesOf(node), nil, nil, nil)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequestWithContext(t.Context(), http.MethodPost, "/api/v1/sync-standbys/add", nil))
	if rec.Code != http.StatusConflict {
		t.Errorf("code %d, want 409: %s", rec.Code, rec.Body)
	}
	if diff := cmp.Diff(map[string]any{"synchronous_mode": "on"}, node.cfg); diff != "" {
		t.Errorf("config changed (-want +got):\n%s", diff)
	}
}
