package api

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ramd-project/ramd/daemon"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// newTestRouter builds the router over st with the clock fixed at now.
func newTestRouter(t *testing.T, st *daemon.Status) (http.Handler, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	return NewRouter(routesOf(newNode(st)), reg, nil, func() time.Time { return now }), reg
}

// serve runs one request through the router without a network.
func serve(t *testing.T, h http.Handler, method, target string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequestWithContext(t.Context(), method, target, nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

// golden compares got with testdata/name.golden, or rewrites the file with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run go test -update to create it): %v", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", path, diff)
	}
}

// fullReplica is a sync standby with every optional field set.
func fullReplica() *daemon.Status {
	return replica(syncStandby, replayBehind(4096), func(st *daemon.Status) {
		st.Tags = map[string]any{"dc": "east", "nofailover": false, "failover_priority": float64(2)}
		st.PendingRestart = true
		st.PendingRestartReasons = map[string]daemon.PendingChange{
			"max_connections": {OldValue: "100", NewValue: "200"},
		}
		st.ReplayTimestamp = time.Date(2026, 3, 1, 11, 59, 58, 123456000, time.UTC)
	})
}

// clusterStatus is a primary that sees three members.
func clusterStatus() *daemon.Status {
	return primary(paused, func(st *daemon.Status) {
		st.Members = []daemon.MemberStatus{
			{Name: "n3", Role: "replica", State: "running", ReplicationState: "streaming", APIURL: "http://10.0.0.3:8008/patroni",
				Host: "10.0.0.3", Port: 5432, Timeline: 3, Tags: map[string]any{"nofailover": true},
				ReceiveLSN: leaderLSN - 1024, ReplayLSN: leaderLSN - 2048, LSN: leaderLSN - 1024, Lag: 1024},
			{Name: "n1", Role: "leader", State: "running", APIURL: "http://10.0.0.1:8008/patroni",
				Host: "10.0.0.1", Port: 5432, Timeline: 3, LSN: leaderLSN},
			{Name: "n2", Role: "sync_standby", State: "running", ReplicationState: "streaming", APIURL: "http://10.0.0.2:8008/patroni",
				Host: "10.0.0.2", Port: 5432, Timeline: 3, PendingRestart: true,
				ReceiveLSN: leaderLSN, ReplayLSN: leaderLSN, LSN: leaderLSN},
			{Name: "n4", Role: "replica", State: "stopped", APIURL: "http://10.0.0.4:8008/patroni"},
			{Name: "n5", Role: "replica", State: "running", ReplicationState: "in archive recovery", APIURL: "http://10.0.0.5:8008/patroni",
				Host: "10.0.0.5", Port: 5432, Timeline: 3, ReceiveLSN: 0, ReplayLSN: leaderLSN - 1<<20, LSN: leaderLSN - 1<<20, Lag: 1 << 20},
		}
		// As the leader's pg_stat_replication sees them: n3 measured 1.5 s behind, n2 caught
		// up and idle (PostgreSQL shows no replay_lag then).
		st.Members[3].ScheduledRestart = "2026-03-01T13:00:00Z"
		st.Members[3].ScheduledRestartPostmaster = "2026-03-01T11:00:00Z"
		st.Switchover = &daemon.PendingSwitchover{Leader: "n1", Candidate: "n2", ScheduledAt: "2026-03-01T14:00:00+00:00", JobID: "42"}
		lag := 1500 * time.Millisecond
		st.Replication[0].ReplayLSN = leaderLSN
		st.Replication[1].ReplayLSN, st.Replication[1].ReplayLag = leaderLSN-2048, &lag
	})
}

// TestRouterJSON checks the JSON answers of GET endpoints against golden files.
func TestRouterJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		st       *daemon.Status
		target   string
		wantCode int
	}{
		{"patroni_primary", primary(), "/patroni", 200},
		{"patroni_replica", fullReplica(), "/patroni", 200},
		{"patroni_stopped", replica(stopped, dcsDown), "/patroni", 200},
		{"patroni_standby_leader", primary(standbyLeader), "/patroni", 200},
		{"patroni_demoted", primary(noLock, func(st *daemon.Status) {
			st.Role = daemon.RoleDemoted
			st.Leader = "n2"
			st.Replication = nil
			st.ReplayLSN = st.WALLocation
		}), "/patroni", 200},
		{"patroni_no_status", nil, "/patroni", 503},
		{"health_primary_ok", primary(), "/primary", 200},
		{"health_replica_on_primary", primary(), "/replica", 503},
		{"health_replica_lagging", replica(behind(2 << 20)), "/replica?lag=1MB", 503},
		{"health_unknown_path", replica(), "/nothing-here", 503},
		{"health_no_status", nil, "/", 503},
		{"cluster", clusterStatus(), "/cluster", 200},
		{"cluster_v1", clusterStatus(), "/api/v1/cluster", 200},
		{"cluster_no_status", nil, "/cluster", 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, tt.st)
			rec := serve(t, h, http.MethodGet, tt.target)
			if rec.Code != tt.wantCode {
				t.Errorf("GET %s: code %d, want %d", tt.target, rec.Code, tt.wantCode)
			}
			if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q, want application/json", tt.target, ct)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, rec.Body.Bytes(), "", "  "); err != nil {
				t.Fatalf("GET %s: body is not JSON: %v\n%s", tt.target, err, rec.Body)
			}
			pretty.WriteByte('\n')
			golden(t, tt.name, pretty.Bytes())
		})
	}
}

// TestPatroniFields checks the presence of the fields Patroni readers rely on, by role.
func TestPatroniFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		st     *daemon.Status
		want   []string
		absent []string
	}{
		{
			name: "primary",
			st:   primary(tags(map[string]any{"dc": "east"})),
			want: []string{"state", "postmaster_start_time", "role", "server_version", "timeline",
				"xlog.location", "replication", "dcs_last_seen", "tags", "database_system_identifier",
				"patroni.version", "patroni.scope", "patroni.name",
				"ramd.has_lock", "ramd.leader", "ramd.role", "ramd.state"},
			absent: []string{"xlog.received_location", "cluster_unlocked", "pause", "sync_standby",
				"replication_state", "pending_restart"},
		},
		{
			name: "replica",
			st:   fullReplica(),
			want: []string{"xlog.received_location", "xlog.replayed_location", "xlog.replayed_timestamp",
				"xlog.paused", "replication_state", "sync_standby", "pending_restart",
				"pending_restart_reason", "tags"},
			absent: []string{"xlog.location", "replication", "quorum_standby"},
		},
		{
			name:   "stopped, DCS down, paused, failsafe",
			st:     replica(stopped, dcsDown, paused, failsafe),
			want:   []string{"state", "role", "cluster_unlocked", "pause", "failsafe_mode_is_active", "dcs_last_seen", "patroni"},
			absent: []string{"xlog", "server_version", "timeline", "postmaster_start_time", "replication_state"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, tt.st)
			rec := serve(t, h, http.MethodGet, "/patroni")
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("decode: %v", err)
			}
			for _, f := range tt.want {
				if _, ok := lookup(doc, f); !ok {
					t.Errorf("field %s missing in %s", f, rec.Body)
				}
			}
			for _, f := range tt.absent {
				if _, ok := lookup(doc, f); ok {
					t.Errorf("field %s present in %s", f, rec.Body)
				}
			}
		})
	}
}

// lookup follows a dotted path through decoded JSON objects.
func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for key := range strings.SplitSeq(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[key]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// TestBareStatusLine sends raw requests to a real TCP server and reads every byte until the
// server closes: HEAD, OPTIONS and the probes must answer with the status line alone.
func TestBareStatusLine(t *testing.T) {
	t.Parallel()
	const (
		ok          = "HTTP/1.0 200 OK\r\n\r\n"
		unavailable = "HTTP/1.0 503 Service Unavailable\r\n\r\n"
	)
	tests := []struct {
		name    string
		st      *daemon.Status
		request string
		want    string
	}{
		{"haproxy httpchk on primary", primary(), "OPTIONS / HTTP/1.0\r\n\r\n", ok},
		{"haproxy httpchk on replica", replica(), "OPTIONS / HTTP/1.0\r\n\r\n", unavailable},
		{"HEAD primary", primary(), "HEAD /primary HTTP/1.1\r\nHost: n1\r\n\r\n", ok},
		{"HEAD replica on primary", primary(), "HEAD /replica HTTP/1.1\r\nHost: n1\r\n\r\n", unavailable},
		{"HEAD replica", replica(), "HEAD /replica HTTP/1.1\r\nHost: n2\r\n\r\n", ok},
		{"HEAD replica with query", replica(behind(2 << 20)), "HEAD /replica?lag=1MB HTTP/1.1\r\nHost: n2\r\n\r\n", unavailable},
		{"OPTIONS sync", replica(syncStandby), "OPTIONS /sync HTTP/1.1\r\nHost: n2\r\n\r\n", ok},
		{"OPTIONS unknown path", primary(), "OPTIONS /unknown HTTP/1.1\r\nHost: n1\r\n\r\n", unavailable},
		{"HEAD patroni is a health path", primary(), "HEAD /patroni HTTP/1.1\r\nHost: n1\r\n\r\n", unavailable},
		{"HEAD trailing slash", primary(), "HEAD /primary/ HTTP/1.1\r\nHost: n1\r\n\r\n", ok},
		{"HEAD no status", nil, "HEAD /primary HTTP/1.1\r\nHost: n1\r\n\r\n", unavailable},
		{"GET liveness fresh", replica(), "GET /liveness HTTP/1.1\r\nHost: n2\r\n\r\n", ok},
		{"GET liveness stale", replica(staleBy(time.Hour)), "GET /liveness HTTP/1.1\r\nHost: n2\r\n\r\n", unavailable},
		{"HEAD liveness", primary(), "HEAD /liveness HTTP/1.1\r\nHost: n1\r\n\r\n", ok},
		{"GET readiness", replica(), "GET /readiness HTTP/1.1\r\nHost: n2\r\n\r\n", ok},
		{"GET readiness lagging", replica(behind(2 << 20)), "GET /readiness HTTP/1.1\r\nHost: n2\r\n\r\n", unavailable},
		{"OPTIONS with a body", primary(), "OPTIONS / HTTP/1.1\r\nHost: n1\r\nContent-Length: 5\r\n\r\nhello", ok},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, tt.st)
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)

			var d net.Dialer
			conn, err := d.DialContext(t.Context(), "tcp", srv.Listener.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
				t.Fatal(err)
			}
			if _, err := io.WriteString(conn, tt.request); err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(conn)
			if err != nil {
				t.Fatalf("read until EOF: %v (got %q)", err, got)
			}
			if string(got) != tt.want {
				t.Errorf("response bytes = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestHeadWithoutHijack checks the fallback when the connection cannot be taken over: the
// code with no body.
func TestHeadWithoutHijack(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		st       *daemon.Status
		method   string
		target   string
		wantCode int
	}{
		{"HEAD primary", primary(), http.MethodHead, "/primary", 200},
		{"OPTIONS replica on primary", primary(), http.MethodOptions, "/replica", 503},
		{"liveness stale", primary(staleBy(time.Minute)), http.MethodGet, "/liveness", 503},
		{"liveness fresh", primary(), http.MethodGet, "/liveness", 200},
		{"liveness nil", nil, http.MethodGet, "/liveness", 503},
		{"readiness via first segment", replica(), http.MethodGet, "/readiness/x", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, tt.st)
			rec := serve(t, h, tt.method, tt.target)
			if rec.Code != tt.wantCode {
				t.Errorf("%s %s: code %d, want %d", tt.method, tt.target, rec.Code, tt.wantCode)
			}
			if rec.Body.Len() != 0 {
				t.Errorf("%s %s: body %q, want none", tt.method, tt.target, rec.Body)
			}
		})
	}
}

// TestRouting checks Patroni's first-segment routing and the non-health methods.
func TestRouting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		target   string
		wantCode int
		wantKey  string // a top-level JSON key the body must have, "" for none
	}{
		{"patroni subpath", http.MethodGet, "/patroni/anything", 200, "patroni"},
		{"cluster subpath", http.MethodGet, "/cluster/x", 200, "members"},
		{"health subpath", http.MethodGet, "/primary/x", 200, "patroni"},
		{"metrics subpath", http.MethodGet, "/metrics/x", 200, ""},
		{"POST is not served here", http.MethodPost, "/primary", 404, "error"},
		{"DELETE unknown", http.MethodDelete, "/anything", 404, "error"},
		// ramd's own paths never fall into Patroni's substring matching of health paths.
		{"v1 unknown path", http.MethodGet, "/api/v1/cluster/health-of-nothing", 404, "error"},
		{"v1 path with a health word", http.MethodGet, "/api/v1/replica-lag", 404, "error"},
		{"v1 backup route not built", http.MethodGet, "/api/v1/nothing/list", 404, "error"},
		{"v1 unknown HEAD", http.MethodHead, "/api/v1/primary", 404, ""},
		{"v1 unknown OPTIONS", http.MethodOptions, "/api/v1/health", 404, ""},
		{"api root", http.MethodGet, "/api/", 404, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, _ := newTestRouter(t, clusterStatus())
			rec := serve(t, h, tt.method, tt.target)
			if rec.Code != tt.wantCode {
				t.Fatalf("%s %s: code %d, want %d: %s", tt.method, tt.target, rec.Code, tt.wantCode, rec.Body)
			}
			if tt.wantKey == "" {
				return
			}
			var doc map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
				t.Fatalf("decode: %v", err)
			}
			if _, ok := doc[tt.wantKey]; !ok {
				t.Errorf("%s %s: no %q in %s", tt.method, tt.target, tt.wantKey, rec.Body)
			}
		})
	}
}

// TestMetricsEndpoint scrapes /metrics and parses the exposition.
func TestMetricsEndpoint(t *testing.T) {
	t.Parallel()
	h, reg := newTestRouter(t, fullReplica())
	extra := prometheus.NewGauge(prometheus.GaugeOpts{Name: "ramd_test_extra", Help: "A collector added by the caller."})
	reg.MustRegister(extra)

	rec := serve(t, h, http.MethodGet, "/metrics")
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /metrics: code %d: %s", rec.Code, rec.Body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("parse exposition: %v", err)
	}
	for _, m := range statusMetrics {
		if _, ok := families[m.name]; !ok {
			t.Errorf("%s missing from /metrics", m.name)
		}
	}
	if _, ok := families["ramd_test_extra"]; !ok {
		t.Error("collector registered by the caller missing from /metrics")
	}
	wantValues := map[string]float64{
		"patroni_replica":                 1,
		"patroni_primary":                 0,
		"patroni_sync_standby":            1,
		"patroni_postgres_streaming":      1,
		"patroni_pending_restart":         1,
		"patroni_xlog_replayed_location":  float64(leaderLSN - 4096),
		"patroni_postgres_server_version": 170002,
		"patroni_version":                 100,
	}
	for name, want := range wantValues {
		f := families[name]
		if f == nil || len(f.GetMetric()) != 1 {
			t.Errorf("%s: want one series, got %v", name, f)
			continue
		}
		m := f.GetMetric()[0]
		if got := m.GetGauge().GetValue(); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if diff := cmp.Diff(map[string]string{"scope": "demo", "name": "n2"}, labels); diff != "" {
			t.Errorf("%s labels (-want +got):\n%s", name, diff)
		}
	}
}

// TestStatusCollector lints the patroni_* series and compares them with golden expositions.
func TestStatusCollector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   *daemon.Status
	}{
		{"metrics_primary", primary(func(st *daemon.Status) {
			st.PostmasterStart = time.Date(2026, 3, 1, 11, 0, 0, 500000000, time.UTC)
		})},
		{"metrics_replica", fullReplica()},
		{"metrics_stopped", replica(stopped, dcsDown, paused)},
		{"metrics_no_status", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := newStatusCollector(newNode(tt.st))
			problems, err := testutil.CollectAndLint(c)
			if err != nil {
				t.Fatalf("lint: %v", err)
			}
			for _, p := range problems {
				t.Errorf("lint %s: %s", p.Metric, p.Text)
			}
			if tt.st == nil {
				if n := testutil.CollectAndCount(c); n != 0 {
					t.Errorf("collected %d series before the first cycle, want 0", n)
				}
				return
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(c)
			if *update {
				families, err := reg.Gather()
				if err != nil {
					t.Fatal(err)
				}
				var buf bytes.Buffer
				enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
				for _, f := range families {
					if err := enc.Encode(f); err != nil {
						t.Fatal(err)
					}
				}
				golden(t, tt.name, buf.Bytes())
				return
			}
			want, err := os.ReadFile(filepath.Join("testdata", tt.name+".golden"))
			if err != nil {
				t.Fatalf("read golden file (run go test -update to create it): %v", err)
			}
			if err := testutil.GatherAndCompare(reg, bytes.NewReader(want)); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestNewRouterSharedRegistry checks that two routers on one registry do not panic and that
// the registry keeps one set of series.
func TestNewRouterSharedRegistry(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	node := newNode(primary())
	NewRouter(routesOf(node), reg, nil, nil)
	NewRouter(routesOf(node), reg, nil, nil)
	n, err := testutil.GatherAndCount(reg, "patroni_primary")
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("patroni_primary series = %d, want 1", n)
	}
}

// TestLivenessStaleThroughRouter is the liveness probe of a frozen loop, end to end.
func TestLivenessStaleThroughRouter(t *testing.T) {
	t.Parallel()
	node := newNode(primary())
	clock := t0
	h := NewRouter(routesOf(node), prometheus.NewRegistry(), nil, func() time.Time { return clock })
	for _, step := range []struct {
		at   time.Duration
		want int
	}{{0, 200}, {30 * time.Second, 200}, {31 * time.Second, 503}} {
		clock = t0.Add(step.at)
		if rec := serve(t, h, http.MethodGet, "/liveness"); rec.Code != step.want {
			t.Errorf("liveness %v after the cycle: %d, want %d", step.at, rec.Code, step.want)
		}
	}
	node.st.Store(primary(func(st *daemon.Status) { st.CycleAt = clock }))
	if rec := serve(t, h, http.MethodGet, "/liveness"); rec.Code != 200 {
		t.Errorf("liveness after a new cycle: %d, want 200", rec.Code)
	}
}
