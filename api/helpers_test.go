package api

import (
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon"
)

// t0 is the wall time of every test snapshot's last cycle.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// leaderLSN is the leader's position in every test snapshot: 200/3000060, past 2 TiB so
// that any test lag fits below it.
const leaderLSN = 0x20003000060

// primary builds the snapshot of a healthy primary holding the lock, then applies mods.
func primary(mods ...func(*daemon.Status)) *daemon.Status {
	st := &daemon.Status{
		CycleAt:         t0,
		Scope:           "demo",
		Name:            "n1",
		Version:         "0.1.0",
		Role:            daemon.RolePrimary,
		State:           "running",
		HasLock:         true,
		Leader:          "n1",
		PGRunning:       true,
		ServerVersion:   170002,
		Timeline:        3,
		SystemID:        "7345678901234567890",
		PostmasterStart: t0.Add(-time.Hour),
		WALLocation:     leaderLSN,
		Replication: []daemon.Replica{
			{ApplicationName: "n2", ClientAddr: "10.0.0.2", State: "streaming", SyncState: "sync", SyncPriority: 1, Usename: "replicator"},
			{ApplicationName: "n3", ClientAddr: "10.0.0.3", State: "streaming", SyncState: "async", Usename: "replicator"},
		},
		LeaderOptime:         leaderLSN,
		DCSReachable:         true,
		DCSLastSeen:          t0,
		TTL:                  30 * time.Second,
		LoopWait:             10 * time.Second,
		MaximumLagOnFailover: 1 << 20,
	}
	for _, m := range mods {
		m(st)
	}
	return st
}

// replica builds the snapshot of a streaming replica that is fully caught up, then applies mods.
func replica(mods ...func(*daemon.Status)) *daemon.Status {
	st := primary()
	st.Name = "n2"
	st.Role = daemon.RoleReplica
	st.HasLock = false
	st.WALLocation = 0
	st.Replication = nil
	st.ReceiveLSN = leaderLSN
	st.ReplayLSN = leaderLSN
	st.ReplayTimestamp = t0.Add(-2 * time.Second)
	st.ReplicationState = "streaming"
	for _, m := range mods {
		m(st)
	}
	return st
}

// behind makes a replica that received and replayed n bytes less than the leader's optime.
func behind(n uint64) func(*daemon.Status) {
	return func(st *daemon.Status) {
		st.ReceiveLSN = st.LeaderOptime - n
		st.ReplayLSN = st.LeaderOptime - n
	}
}

// replayBehind makes a replica that received everything but replayed n bytes less.
func replayBehind(n uint64) func(*daemon.Status) {
	return func(st *daemon.Status) { st.ReplayLSN = st.LeaderOptime - n }
}

func tags(kv map[string]any) func(*daemon.Status) {
	return func(st *daemon.Status) { st.Tags = kv }
}

func stopped(st *daemon.Status) {
	st.State = "stopped"
	st.PGRunning = false
	st.ReplicationState = ""
}

func archiveRecovery(st *daemon.Status) { st.ReplicationState = "in archive recovery" }
func syncStandby(st *daemon.Status)     { st.SyncStandby = true }
func quorumStandby(st *daemon.Status)   { st.QuorumStandby = true }
func dcsDown(st *daemon.Status)         { st.DCSReachable = false }
func paused(st *daemon.Status)          { st.Paused = true }
func noLock(st *daemon.Status)          { st.HasLock = false }
func failsafe(st *daemon.Status)        { st.FailsafeActive = true }

func standbyLeader(st *daemon.Status) {
	st.Role = daemon.RoleStandbyLeader
	st.WALLocation = 0
	st.ReceiveLSN = leaderLSN
	st.ReplayLSN = leaderLSN
	st.ReplicationState = "streaming"
}

// staleBy moves the last cycle d before t0.
func staleBy(d time.Duration) func(*daemon.Status) {
	return func(st *daemon.Status) { st.CycleAt = t0.Add(-d) }
}

// query parses a raw query string, failing the test on a malformed one.
func query(t *testing.T, raw string) url.Values {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatalf("parse query %q: %v", raw, err)
	}
	return q
}

// staticNode serves whatever snapshot was stored last.
type staticNode struct{ st atomic.Pointer[daemon.Status] }

func newNode(st *daemon.Status) *staticNode {
	n := &staticNode{}
	n.st.Store(st)
	return n
}

func (n *staticNode) Status() *daemon.Status { return n.st.Load() }

// routesOf serves every route group n implements: a test node implements only what its test
// reaches. ramd itself wires each group by name (cmd/ramd).
func routesOf(n Node) Routes {
	rt := Routes{Node: n}
	rt.Admin, _ = n.(Admin)
	rt.Jobs, _ = n.(JobLister)
	rt.Sync, _ = n.(SyncAdmin)
	rt.Config, _ = n.(ConfigAdmin)
	rt.Ops, _ = n.(OpsAdmin)
	rt.Params, _ = n.(ParamAdmin)
	rt.Backups, _ = n.(BackupAdmin)
	return rt
}
