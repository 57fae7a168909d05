package api

import (
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/daemon"
)

// now is one second after every test snapshot's cycle.
var now = t0.Add(time.Second)

// allHealthPaths is every path of the contract, probes included.
var allHealthPaths = append(append([]string{}, healthPaths...), probePaths...)

// Path groups for the matrix below.
var (
	writerPaths = []string{"/", "/primary", "/read-write", "/master", "/leader"}
	readPaths   = []string{"/read-only", "/read-only-sync", "/read-only-synchronous", "/read-only-quorum"}
)

func join(groups ...[]string) []string {
	var out []string
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// TestHealthCodeMatrix runs every health path against each kind of node and lists the paths
// that answer 200; every other path must answer 503.
func TestHealthCodeMatrix(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		st    *daemon.Status
		query string
		ok    []string
	}{
		{
			name: "primary",
			st:   primary(),
			ok:   join(writerPaths, readPaths, []string{"/health", "/liveness", "/readiness"}),
		},
		{
			name: "replica streaming",
			st:   replica(),
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "replica 2 MiB behind without lag limit",
			st:   replica(behind(2 << 20)),
			// /readiness defaults to maximum_lag_on_failover (1 MiB).
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health", "/liveness"},
		},
		{
			name:  "replica lagging over lag=1MB",
			st:    replica(behind(2 << 20)),
			query: "lag=1MB",
			ok:    []string{"/health", "/liveness"},
		},
		{
			name:  "replica within lag=4MB",
			st:    replica(behind(2 << 20)),
			query: "lag=4MB",
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "replica with noloadbalance tag",
			st:   replica(tags(map[string]any{"noloadbalance": true})),
			ok:   []string{"/health", "/liveness", "/readiness"},
		},
		{
			name: "replica with noloadbalance false",
			st:   replica(tags(map[string]any{"noloadbalance": false})),
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "replica in archive recovery",
			st:   replica(archiveRecovery),
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness"},
		},
		{
			name:  "replica in archive recovery asked for streaming",
			st:    replica(archiveRecovery),
			query: "replication_state=streaming",
			ok:    []string{"/health", "/liveness"},
		},
		{
			name:  "replica streaming asked for streaming",
			st:    replica(),
			query: "replication_state=streaming",
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "replica with PostgreSQL stopped",
			st:   replica(stopped),
			ok:   []string{"/liveness"},
		},
		{
			name: "replica state running but PostgreSQL not answering",
			st:   replica(func(st *daemon.Status) { st.PGRunning = false }),
			ok:   []string{"/liveness"},
		},
		{
			name: "primary holding the lock with PostgreSQL stopped",
			st:   primary(stopped),
			// Patroni answers from the lock: the leader paths stay 200, /health does not.
			ok: join(writerPaths, readPaths, []string{"/liveness", "/readiness"}),
		},
		{
			name: "nil status",
			st:   nil,
			ok:   nil,
		},
		{
			name: "sync standby",
			st:   replica(syncStandby),
			ok: []string{"/replica", "/read-only", "/sync", "/synchronous", "/read-only-sync",
				"/read-only-synchronous", "/health", "/liveness", "/readiness"},
		},
		{
			name: "quorum standby",
			st:   replica(quorumStandby),
			ok: []string{"/replica", "/read-only", "/quorum", "/read-only-quorum", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "sync standby with DCS unreachable",
			st:   replica(syncStandby, dcsDown),
			ok:   []string{"/replica", "/read-only", "/health", "/liveness", "/readiness"},
		},
		{
			name: "quorum standby with DCS unreachable",
			st:   replica(quorumStandby, dcsDown),
			ok:   []string{"/replica", "/read-only", "/health", "/liveness", "/readiness"},
		},
		{
			name: "async replica with DCS unreachable",
			st:   replica(dcsDown),
			ok:   []string{"/replica", "/read-only", "/health", "/liveness", "/readiness"},
		},
		{
			name: "primary with DCS unreachable still within its lock",
			st:   primary(dcsDown),
			ok:   join(writerPaths, []string{"/read-only", "/health", "/liveness", "/readiness"}),
		},
		{
			name: "primary that lost the lock",
			st:   primary(noLock, func(st *daemon.Status) { st.Leader = "" }),
			// Running read-write without the lock is no primary for a load balancer.
			ok: []string{"/health", "/liveness"},
		},
		{
			name: "paused primary with DCS unreachable answers from its role",
			st:   primary(noLock, paused, dcsDown),
			ok:   join(writerPaths, []string{"/read-only", "/health", "/liveness"}),
		},
		{
			name: "paused replica with DCS unreachable",
			st:   replica(paused, dcsDown),
			ok:   []string{"/replica", "/read-only", "/health", "/liveness", "/readiness"},
		},
		{
			name: "standby leader",
			st:   primary(standbyLeader),
			ok: []string{"/leader", "/standby-leader", "/standby_leader", "/read-only",
				"/read-only-sync", "/read-only-synchronous", "/read-only-quorum", "/health",
				"/liveness", "/readiness"},
		},
		{
			name: "demoted former primary",
			st: primary(noLock, func(st *daemon.Status) {
				st.Role = daemon.RoleDemoted
				st.Leader = "n2"
			}),
			ok: []string{"/health", "/liveness"},
		},
		{
			name: "uninitialized node",
			st: replica(stopped, func(st *daemon.Status) {
				st.Role = daemon.RoleUninitialized
				st.State = "initializing new cluster"
			}),
			ok: []string{"/liveness"},
		},
		{
			name:  "replica tag filter matches",
			st:    replica(tags(map[string]any{"dc": "east", "nofailover": true, "weight": float64(2)})),
			query: "tag_dc=east&tag_nofailover=true&tag_weight=2",
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name:  "replica tag filter value differs",
			st:    replica(tags(map[string]any{"dc": "east"})),
			query: "tag_dc=west",
			// Probes take no tag filters.
			ok: []string{"/liveness", "/readiness"},
		},
		{
			name:  "replica tag filter on a tag that is not set",
			st:    replica(tags(map[string]any{"dc": "east"})),
			query: "tag_rack=r1",
			ok:    []string{"/liveness", "/readiness"},
		},
		{
			name:  "false predefined tag counts as not set",
			st:    replica(tags(map[string]any{"nofailover": false})),
			query: "tag_nofailover=false",
			ok:    []string{"/liveness", "/readiness"},
		},
		{
			name:  "blank tag filter is ignored like parse_qs does",
			st:    replica(),
			query: "tag_dc=",
			ok: []string{"/replica", "/read-only", "/async", "/asynchronous", "/health",
				"/liveness", "/readiness"},
		},
		{
			name:  "primary ignores tag filters on leader paths only",
			st:    primary(tags(map[string]any{"dc": "east"})),
			query: "tag_dc=west",
			ok:    join(writerPaths, []string{"/liveness", "/readiness"}),
		},
		{
			name:  "primary ignores lag and replication_state",
			st:    primary(),
			query: "lag=0&replication_state=streaming",
			ok:    join(writerPaths, readPaths, []string{"/health", "/liveness", "/readiness"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q := query(t, tt.query)
			want := make(map[string]int, len(allHealthPaths))
			got := make(map[string]int, len(allHealthPaths))
			for _, p := range allHealthPaths {
				want[p] = http.StatusServiceUnavailable
				got[p] = healthCode(p, q, tt.st, now)
			}
			for _, p := range tt.ok {
				want[p] = http.StatusOK
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("healthCode per path (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHealthCodePaths covers the substring order for paths outside the registered list.
func TestHealthCodePaths(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		st   *daemon.Status
		want int
	}{
		{"root is primary on primary", "/", primary(), 200},
		{"root is primary on replica", "/", replica(), 503},
		{"legacy master", "/master", primary(), 200},
		{"legacy master on replica", "/master", replica(), 503},
		{"trailing slash still matches", "/primary/", primary(), 200},
		{"substring anywhere", "/xmasterx", primary(), 200},
		{"replica suffix", "/replica/extra", replica(), 200},
		{"standby-leader wins over leader", "/standby-leader", primary(), 503},
		{"leader wins over primary", "/leader-primary", primary(standbyLeader), 200},
		{"primary wins over replica", "/primary-replica", replica(), 503},
		{"replica wins over read-only", "/read-only-replica", primary(), 503},
		{"read-only with sync is not read-only", "/read-only-sync-x", primary(), 503},
		{"read-only with quorum is not read-only", "/x-read-only-quorum", primary(), 503},
		{"health anywhere", "/healthz", replica(), 200},
		{"sync needs the exact path", "/sync/", replica(syncStandby), 503},
		{"quorum needs the exact path", "/quorum/x", replica(quorumStandby), 503},
		{"async needs the exact path", "/async?", replica(), 503},
		{"unknown path", "/foo", primary(), 503},
		{"unknown path on replica", "/bar", replica(), 503},
		{"patroni is not a health path", "/patroni", primary(), 503},
		{"empty path", "", primary(), 503},
		{"liveness by first segment", "/liveness/x", replica(), 200},
		{"readiness by first segment", "/readiness/x", replica(), 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := healthCode(tt.path, nil, tt.st, now); got != tt.want {
				t.Errorf("healthCode(%q) = %d, want %d", tt.path, got, tt.want)
			}
		})
	}
}

// TestHealthCodeLag checks the lag boundary (strictly greater lags) and its units on /replica.
func TestHealthCodeLag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		st    *daemon.Status
		query string
		want  int
		path  string
	}{
		{"no lag param is unlimited", replica(behind(1 << 40)), "", 200, "/replica"},
		{"bytes at the limit", replica(behind(16384)), "lag=16384", 200, "/replica"},
		{"bytes over the limit", replica(behind(16385)), "lag=16384", 503, "/replica"},
		{"16kB at the limit", replica(behind(16384)), "lag=16kB", 200, "/replica"},
		{"16kB over the limit", replica(behind(16385)), "lag=16kB", 503, "/replica"},
		{"64MB at the limit", replica(behind(64 << 20)), "lag=64MB", 200, "/replica"},
		{"64MB over the limit", replica(behind(64<<20 + 1)), "lag=64MB", 503, "/replica"},
		{"1GB", replica(behind(1 << 30)), "lag=1GB", 200, "/replica"},
		{"1TB", replica(behind(1<<40 + 1)), "lag=1TB", 503, "/replica"},
		{"space before the unit", replica(behind(1 << 20)), "lag=1%20MB", 200, "/replica"},
		{"fraction", replica(behind(1<<20 + 512<<10)), "lag=1.5MB", 200, "/replica"},
		{"lag=0 on a caught-up replica", replica(), "lag=0", 200, "/replica"},
		{"lag=0 one byte behind", replica(behind(1)), "lag=0", 503, "/replica"},
		{"replay lag counts although everything was received", replica(replayBehind(2 << 20)), "lag=1MB", 503, "/replica"},
		{"received position bounds a stale published optime", replica(func(st *daemon.Status) {
			st.LeaderOptime = 0x1000000
			st.ReceiveLSN = leaderLSN
			st.ReplayLSN = leaderLSN - 100
		}), "lag=99", 503, "/replica"},
		{"unknown leader optime is never lagging", replica(func(st *daemon.Status) {
			st.LeaderOptime, st.ReceiveLSN, st.ReplayLSN = 0, 0, 0
		}), "lag=0", 200, "/replica"},
		{"lowercase unit is invalid and means unlimited", replica(behind(1 << 30)), "lag=1mb", 200, "/replica"},
		{"garbage means unlimited", replica(behind(1 << 30)), "lag=abc", 200, "/replica"},
		{"blank means unlimited", replica(behind(1 << 30)), "lag=", 200, "/replica"},
		{"first non-blank value wins", replica(behind(2 << 20)), "lag=&lag=1MB&lag=4MB", 503, "/replica"},
		{"negative lag makes even a caught-up replica lag", replica(), "lag=-1", 503, "/replica"},
		{"async applies lag", replica(behind(2 << 20)), "lag=1MB", 503, "/async"},
		{"read-only applies lag", replica(behind(2 << 20)), "lag=1MB", 503, "/read-only"},
		{"sync applies lag", replica(syncStandby, behind(2<<20)), "lag=1MB", 503, "/sync"},
		{"sync within lag", replica(syncStandby, behind(2<<20)), "lag=2MB", 200, "/sync"},
		{"health ignores lag", replica(behind(2 << 20)), "lag=1MB", 200, "/health"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := healthCode(tt.path, query(t, tt.query), tt.st, now); got != tt.want {
				t.Errorf("healthCode(%s?%s) = %d, want %d", tt.path, tt.query, got, tt.want)
			}
		})
	}
}

// TestLivenessCode checks the ttl (primary) and 2 × ttl (elsewhere) boundaries.
func TestLivenessCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		st   *daemon.Status
		want int
	}{
		{"primary fresh", primary(), 200},
		{"primary exactly ttl old", primary(staleBy(29 * time.Second)), 200},
		{"primary past ttl", primary(staleBy(30 * time.Second)), 503},
		{"replica within 2 ttl", primary(noLock, func(st *daemon.Status) { st.Role = daemon.RoleReplica }, staleBy(59*time.Second)), 200},
		{"replica past 2 ttl", replica(staleBy(60 * time.Second)), 503},
		{"primary with PostgreSQL stopped gets 2 ttl", primary(stopped, staleBy(45*time.Second)), 200},
		{"paused and stale", replica(paused, staleBy(time.Hour)), 200},
		{"nil status", nil, 503},
		{"cycle in the future", replica(staleBy(-time.Minute)), 200},
		{"missing ttl uses Patroni's default", replica(staleBy(59*time.Second), func(st *daemon.Status) { st.TTL = 0 }), 200},
		{"missing ttl uses Patroni's default past it", replica(staleBy(60*time.Second), func(st *daemon.Status) { st.TTL = 0 }), 503},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// now is t0 + 1 s, so staleBy(29 s) is exactly ttl old.
			if got := healthCode("/liveness", nil, tt.st, now); got != tt.want {
				t.Errorf("liveness = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestReadinessCode checks /readiness: lag default and units, mode, streaming and the DCS.
func TestReadinessCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		st    *daemon.Status
		query string
		want  int
	}{
		{"leader", primary(), "", 200},
		{"leader with PostgreSQL stopped", primary(stopped), "", 200},
		{"standby leader", primary(standbyLeader), "", 200},
		{"caught-up replica", replica(), "", 200},
		{"replica at maximum_lag_on_failover", replica(behind(1 << 20)), "", 200},
		{"replica past maximum_lag_on_failover", replica(behind(1<<20 + 1)), "", 503},
		{"lag param overrides the default", replica(behind(2 << 20)), "lag=4MB", 200},
		{"lag param stricter than the default", replica(behind(1024)), "lag=1kB", 200},
		{"lag param exceeded", replica(behind(1025)), "lag=1kB", 503},
		{"invalid lag falls back to the default", replica(behind(2 << 20)), "lag=lots", 503},
		{"apply mode counts replay lag", replica(replayBehind(2 << 20)), "", 503},
		{"explicit apply mode", replica(replayBehind(2 << 20)), "mode=apply", 503},
		{"write mode counts received WAL", replica(replayBehind(2 << 20)), "mode=write", 200},
		{"write mode still sees receive lag", replica(behind(2 << 20)), "mode=write", 503},
		{"unknown mode is apply", replica(replayBehind(2 << 20)), "mode=flush", 503},
		{"not streaming", replica(archiveRecovery), "", 503},
		{"stopped", replica(stopped), "", 503},
		{"nil", nil, "", 503},
		{"DCS down but WAL received", replica(dcsDown), "", 200},
		{"DCS down and nothing received", replica(dcsDown, func(st *daemon.Status) { st.ReceiveLSN = 0 }), "", 503},
		{"DCS down, nothing received, failsafe active", replica(dcsDown, failsafe, func(st *daemon.Status) { st.ReceiveLSN = 0 }), "", 200},
		{"tags do not apply", replica(tags(map[string]any{"noloadbalance": true})), "tag_dc=x", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := healthCode("/readiness", query(t, tt.query), tt.st, now); got != tt.want {
				t.Errorf("readiness?%s = %d, want %d", tt.query, got, tt.want)
			}
		})
	}
}

// TestParseLag follows Patroni's parse_int(value, 'B').
func TestParseLag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		want   int64
		wantOK bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"16kB", 16 << 10, true},
		{"64MB", 64 << 20, true},
		{"1GB", 1 << 30, true},
		{"2TB", 2 << 40, true},
		{"100B", 100, true},
		{" 16 kB ", 16 << 10, true},
		{"+5", 5, true},
		{"-1", -1, true},
		{"0x400", 1024, true},
		{"0x400MB", 1 << 30, true},
		{"010", 8, true},
		{"1.5MB", 3 << 19, true},
		{".5kB", 512, true},
		{"1e3", 1000, true},
		{"2.5", 2, true}, // halves round to even, as Python's round
		{"3.5", 4, true},
		{"1.0000001MB", 1 << 20, true}, // rounded to whole kB first
		{"99999999999999999999", math.MaxInt64, true},
		{"99999999TB", math.MaxInt64, true},
		{"", 0, false},
		{"MB", 0, false},
		{"16KB", 0, false},
		{"16mb", 0, false},
		{"16 k B", 0, false},
		{"1.", 0, false},
		{"08", 0, false},
		{"0x", 0, false},
		{"abc", 0, false},
		{"16kBx", 0, false},
		{"-.5", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, ok := parseLag(tt.in)
			if ok != tt.wantOK || (ok && got != tt.want) {
				t.Errorf("parseLag(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

// TestExceeds checks the exact a − b > limit comparison at the edges of uint64 and int64.
func TestExceeds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		a, b  uint64
		limit int64
		want  bool
	}{
		{"equal within zero", 10, 10, 0, false},
		{"one over zero", 11, 10, 0, true},
		{"at the limit", 20, 10, 10, false},
		{"ahead of the leader", 10, 20, 0, false},
		{"ahead but limit below", 10, 20, -11, true},
		{"ahead at a negative limit", 10, 20, -10, false},
		{"huge difference", math.MaxUint64, 0, math.MaxInt64, true},
		{"min int64 limit", 0, math.MaxUint64, math.MinInt64, false},
		{"min int64 limit close", 0, 1 << 62, math.MinInt64, true},
		{"unlimited", math.MaxInt64, 0, math.MaxInt64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := exceeds(tt.a, tt.b, tt.limit); got != tt.want {
				t.Errorf("exceeds(%d, %d, %d) = %v, want %v", tt.a, tt.b, tt.limit, got, tt.want)
			}
		})
	}
}

// TestTagString checks how non-string tag values are compared.
func TestTagString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   any
		want string
	}{
		{"East", "East"},
		{true, "true"},
		{false, "false"},
		{float64(1), "1"},
		{1.5, "1.5"},
		{42, "42"},
		{int64(-3), "-3"},
		{1e20, "1e+20"},
	}
	for _, tt := range tests {
		if got := tagString(tt.in); got != tt.want {
			t.Errorf("tagString(%#v) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
