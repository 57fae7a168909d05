package api

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon"
)

// healthPaths are the registered health endpoints of Patroni's contract. Any other GET, HEAD
// or OPTIONS path that no other route claims is answered by the same substring matching.
var healthPaths = []string{
	"/", "/primary", "/read-write", "/master", "/leader", "/standby-leader", "/standby_leader",
	"/replica", "/read-only", "/sync", "/synchronous", "/quorum", "/async", "/asynchronous",
	"/read-only-sync", "/read-only-synchronous", "/read-only-quorum", "/health",
}

// probePaths answer with the bare status line for every method, as Patroni's do.
var probePaths = []string{"/liveness", "/readiness"}

const (
	// stateRunning is Patroni's member state of a running PostgreSQL.
	stateRunning = "running"
	// stateUnknown is what Patroni reports when the state says running but PostgreSQL did
	// not answer.
	stateUnknown = "unknown"
	// replicationStreaming is the replication_state of a replica fed by a walreceiver.
	replicationStreaming = "streaming"
	// defaultTTL stands in for a Status without TTL, for liveness only: Patroni's default ttl.
	defaultTTL = 30 * time.Second
)

// healthCode is the whole health contract of PEERS.md §1.1 as a pure function: the status
// code (200 or 503) for a health request on path with query q, answered from st alone.
// A nil st (no HA cycle yet) is 503 everywhere. now is only read by /liveness.
func healthCode(path string, q url.Values, st *daemon.Status, now time.Time) int {
	switch firstSegment(path) {
	case "liveness":
		return livenessCode(st, now)
	case "readiness":
		return readinessCode(q, st)
	default:
		return roleCode(path, q, st)
	}
}

// roleCode is Patroni's generic health handler: the first matching substring rule decides.
func roleCode(path string, q url.Values, st *daemon.Status) int {
	if st == nil {
		return http.StatusServiceUnavailable
	}
	if path == "/" {
		path = "/primary"
	}
	replica := replicaOK(q, st)
	var leader, primary, standbyLeader bool
	switch {
	case !st.DCSReachable && st.Paused:
		// Paused with the DCS down: nobody can take over, so the local role answers.
		leader = st.Role == daemon.RolePrimary || st.Role == daemon.RoleStandbyLeader
		primary = st.Role == daemon.RolePrimary
		standbyLeader = st.Role == daemon.RoleStandbyLeader
	case st.HasLock && st.Role == daemon.RoleStandbyLeader:
		leader, standbyLeader, replica = true, true, false
	case st.HasLock:
		leader, primary = true, true
	}

	ok, ignoreTags := false, false
	switch {
	case strings.Contains(path, "standby_leader") || strings.Contains(path, "standby-leader"):
		ok, ignoreTags = standbyLeader, true
	case strings.Contains(path, "leader"):
		ok, ignoreTags = leader, true
	case strings.Contains(path, "master") || strings.Contains(path, "primary") ||
		strings.Contains(path, "read-write"):
		ok, ignoreTags = primary, true
	case strings.Contains(path, "replica"):
		ok = replica
	case strings.Contains(path, "read-only") && !strings.Contains(path, "sync") &&
		!strings.Contains(path, "quorum"):
		ok = primary || standbyLeader || replica
	case strings.Contains(path, "health"):
		ok = pgState(st) == stateRunning
	case st.DCSReachable:
		ok = syncOK(path, st, primary || standbyLeader, replica)
	}
	if ok && !ignoreTags && !tagsMatch(q, st.Tags) {
		ok = false
	}
	return code(ok)
}

// syncOK answers the exact paths that need the cluster's sync state, which is only
// trustworthy while the DCS is reachable.
func syncOK(path string, st *daemon.Status, writer, replica bool) bool {
	switch path {
	case "/sync", "/synchronous":
		return st.SyncStandby && replica
	case "/quorum":
		return st.QuorumStandby && replica
	case "/async", "/asynchronous":
		return !st.SyncStandby && !st.QuorumStandby && replica
	case "/read-only-quorum":
		return writer || st.QuorumStandby && replica
	case "/read-only-sync", "/read-only-synchronous":
		return writer || st.SyncStandby && replica
	default:
		return false
	}
}

// replicaOK is Patroni's REPLICA_OK: no noloadbalance tag, role replica, PostgreSQL running,
// the wanted replication_state if one is asked, and not lagging beyond ?lag=. A demoted
// node (fenced former primary, possibly diverged) is not a replica here although /patroni
// publishes it as one.
func replicaOK(q url.Values, st *daemon.Status) bool {
	if truthy(st.Tags["noloadbalance"]) || st.Role != daemon.RoleReplica || pgState(st) != stateRunning {
		return false
	}
	if want, ok := queryValue(q, "replication_state"); ok && st.ReplicationState != want {
		return false
	}
	maxLag := int64(math.MaxInt64)
	if s, ok := queryValue(q, "lag"); ok {
		if n, ok := parseLag(s); ok {
			maxLag = n
		}
	}
	optime := leaderOptime(st)
	return optime == 0 || !exceeds(optime, st.ReplayLSN, maxLag)
}

// livenessCode is 200 while the HA loop runs: paused, or the last cycle finished within ttl
// on a running primary and 2 × ttl elsewhere (a replica can be late longer without harm).
func livenessCode(st *daemon.Status, now time.Time) int {
	if st == nil {
		return http.StatusServiceUnavailable
	}
	if st.Paused {
		return http.StatusOK
	}
	limit := st.TTL
	if limit <= 0 {
		limit = defaultTTL
	}
	if st.Role != daemon.RolePrimary || !st.PGRunning {
		limit *= 2
	}
	return code(now.Sub(st.CycleAt) <= limit)
}

// readinessCode is Patroni's /readiness: the leader is ready; otherwise PostgreSQL must run,
// stream, and be within ?lag= (default maximum_lag_on_failover) of the leader, measured on
// the replayed position, or the received one with ?mode=write. With the DCS down and no
// received WAL, only an active failsafe makes the node ready.
func readinessCode(q url.Values, st *daemon.Status) int {
	switch {
	case st == nil:
		return http.StatusServiceUnavailable
	case st.HasLock:
		return http.StatusOK
	case pgState(st) != stateRunning || st.ReplicationState != replicationStreaming:
		return http.StatusServiceUnavailable
	case !st.DCSReachable && st.ReceiveLSN == 0:
		return code(st.FailsafeActive)
	}
	pos := st.ReplayLSN
	if mode, _ := queryValue(q, "mode"); mode == "write" {
		pos = receivedLocation(st)
	}
	maxLag := int64(min(st.MaximumLagOnFailover, math.MaxInt64))
	if s, ok := queryValue(q, "lag"); ok {
		if n, ok := parseLag(s); ok {
			maxLag = n
		}
	}
	return code(!exceeds(leaderOptime(st), pos, maxLag))
}

// leaderOptime is the best known lower bound of the leader's WAL position: the published
// optime, or what this replica already received when that is newer (Patroni takes the
// walreceiver's latest_end_lsn the same way).
func leaderOptime(st *daemon.Status) uint64 {
	return max(st.LeaderOptime, st.ReceiveLSN)
}

// receivedLocation is the received position, or the replayed one when nothing was received
// (a replica restoring from the archive), as Patroni reports received_location.
func receivedLocation(st *daemon.Status) uint64 {
	if st.ReceiveLSN != 0 {
		return st.ReceiveLSN
	}
	return st.ReplayLSN
}

// pgState is the member state as Patroni reports it: "unknown" when the state says running
// but PostgreSQL did not answer this cycle.
func pgState(st *daemon.Status) string {
	if st.State == stateRunning && !st.PGRunning {
		return stateUnknown
	}
	return st.State
}

// tagsMatch applies the tag_<k>=<v> filters: every asked tag must be set on the node with
// that value, non-string values compared in lowercase string form.
func tagsMatch(q url.Values, tags map[string]any) bool {
	effective := effectiveTags(tags)
	for key := range q {
		name, isTag := strings.CutPrefix(key, "tag_")
		if !isTag {
			continue
		}
		want, ok := queryValue(q, key)
		if !ok {
			continue
		}
		got, ok := effective[name]
		if !ok || got == nil || tagString(got) != want {
			return false
		}
	}
	return true
}

// queryValue returns the first non-empty value of key. Patroni parses the query with
// parse_qs, which drops blank values, so "?lag=" counts as not given.
func queryValue(q url.Values, key string) (string, bool) {
	for _, v := range q[key] {
		if v != "" {
			return v, true
		}
	}
	return "", false
}

// firstSegment is the first element of path, which picks the handler in Patroni's routing.
func firstSegment(path string) string {
	seg, _, _ := strings.Cut(strings.TrimLeft(path, "/"), "/")
	return seg
}

// code maps a health verdict to its status code.
func code(ok bool) int {
	if ok {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}
