package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/observability"
)

// statusMetric is one patroni_* series computed from a Status.
type statusMetric struct {
	name  string
	help  string
	value func(st *daemon.Status) float64
}

// statusMetrics are Patroni's metrics (PEERS.md §1.4) that the Status snapshot answers, with
// Patroni's names and {scope,name} labels. All are gauges: positions drop to 0 when the role
// changes, and counters would need a _total suffix.
var statusMetrics = []statusMetric{
	{"patroni_version", "Version of ramd written as Patroni writes its own: each dotted part as two digits, so 1.2.3 is 10203.",
		func(st *daemon.Status) float64 { return paddedVersion(st.Version) }},
	{"patroni_postgres_running", "1 if PostgreSQL is running, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(pgState(st) == stateRunning) }},
	{"patroni_postmaster_start_time", "Unix time in seconds when PostgreSQL started, 0 if it is not running.",
		func(st *daemon.Status) float64 { return runningTime(st, st.PostmasterStart) }},
	{"patroni_primary", "1 if this node is the primary, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(publicRole(st.Role) == rolePrimary) }},
	{"patroni_xlog_location", "Current WAL position of the primary in bytes, 0 if this node is not the primary.",
		func(st *daemon.Status) float64 { return primaryValue(st, st.WALLocation) }},
	{"patroni_standby_leader", "1 if this node is the standby leader of a standby cluster, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(publicRole(st.Role) == roleStandbyLeader) }},
	{"patroni_replica", "1 if this node is a replica, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(publicRole(st.Role) == roleReplica) }},
	{"patroni_sync_standby", "1 if this node is a synchronous standby, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(st.SyncStandby) }},
	{"patroni_quorum_standby", "1 if this node is a quorum standby, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(st.QuorumStandby) }},
	{"patroni_xlog_received_location", "WAL position received by this replica in bytes, 0 if this node is not a replica.",
		func(st *daemon.Status) float64 { return standbyValue(st, receivedLocation(st)) }},
	{"patroni_xlog_replayed_location", "WAL position replayed by this replica in bytes, 0 if this node is not a replica.",
		func(st *daemon.Status) float64 { return standbyValue(st, st.ReplayLSN) }},
	{"patroni_xlog_replayed_timestamp", "Unix time in seconds of the last transaction this replica replayed, 0 if none.",
		func(st *daemon.Status) float64 {
			if publicRole(st.Role) == rolePrimary {
				return 0
			}
			return runningTime(st, st.ReplayTimestamp)
		}},
	{"patroni_xlog_paused", "1 if WAL replay is paused on this replica, 0 otherwise.",
		func(st *daemon.Status) float64 {
			return boolValue(st.PGRunning && publicRole(st.Role) != rolePrimary && st.ReplayPaused)
		}},
	{"patroni_postgres_streaming", "1 if this replica streams WAL from another node, 0 otherwise.",
		func(st *daemon.Status) float64 {
			return boolValue(st.PGRunning && st.ReplicationState == replicationStreaming)
		}},
	{"patroni_postgres_in_archive_recovery", "1 if this replica replays WAL from the archive, 0 otherwise.",
		func(st *daemon.Status) float64 {
			return boolValue(st.PGRunning && st.ReplicationState == "in archive recovery")
		}},
	{"patroni_postgres_server_version", "PostgreSQL server version number, such as 170002, 0 if it is not running.",
		func(st *daemon.Status) float64 { return runningValue(st, uint64(max(st.ServerVersion, 0))) }},
	{"patroni_cluster_unlocked", "1 if no node holds the leader lock or the DCS cannot be read, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(clusterUnlocked(st)) }},
	{"patroni_failsafe_mode_is_active", "1 if failsafe mode is active, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(st.FailsafeActive) }},
	{"patroni_postgres_timeline", "PostgreSQL timeline of this node, 0 if it is not running.",
		func(st *daemon.Status) float64 { return runningValue(st, uint64(max(st.Timeline, 0))) }},
	{"patroni_dcs_last_seen", "Unix time in seconds when the DCS was last reached, 0 if never.",
		func(st *daemon.Status) float64 { return float64(unixSeconds(st.DCSLastSeen)) }},
	{"patroni_pending_restart", "1 if PostgreSQL needs a restart to apply a parameter change, 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(pendingRestart(st)) }},
	{"patroni_is_paused", "1 if automatic failover is paused (maintenance mode), 0 otherwise.",
		func(st *daemon.Status) float64 { return boolValue(st.Paused) }},
}

// metricLabels are the labels of every patroni_* series, as Patroni sets them.
var metricLabels = []string{"scope", "name"}

// statusCollector emits the patroni_* series from node.Status() at scrape time. It emits
// nothing before the first HA cycle.
type statusCollector struct {
	node  Node
	descs []*prometheus.Desc
}

// newStatusCollector returns the collector of the patroni_* series for node.
func newStatusCollector(node Node) *statusCollector {
	c := &statusCollector{node: node, descs: make([]*prometheus.Desc, len(statusMetrics))}
	for i, m := range statusMetrics {
		c.descs[i] = prometheus.NewDesc(m.name, m.help, metricLabels, nil)
	}
	return c
}

// Describe sends the descriptors of every patroni_* series.
func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

// Collect reads the current snapshot once and sends every series from it.
func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.Status()
	if st == nil {
		return
	}
	for i, m := range statusMetrics {
		metric, err := prometheus.NewConstMetric(c.descs[i], prometheus.GaugeValue, m.value(st), st.Scope, st.Name)
		if err != nil {
			metric = prometheus.NewInvalidMetric(c.descs[i], err)
		}
		ch <- metric
	}
}

// paddedVersion is Patroni's patroni_version value: every dotted part of the version padded
// to two digits and read as one number ("4.1.4" is 40104). A leading "v" and anything from
// the first character that is neither digit nor dot ("-dev", "+build") are ignored.
func paddedVersion(v string) float64 {
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexFunc(v, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		v = v[:i]
	}
	var b strings.Builder
	for part := range strings.SplitSeq(v, ".") {
		if len(part) < 2 {
			b.WriteString(strings.Repeat("0", 2-len(part)))
		}
		b.WriteString(part)
	}
	n, err := strconv.ParseFloat(b.String(), 64)
	if err != nil {
		return 0
	}
	return n
}

// boolValue is 1 for true and 0 for false.
func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// runningValue is v while PostgreSQL answers, else 0.
func runningValue(st *daemon.Status, v uint64) float64 {
	if !st.PGRunning {
		return 0
	}
	return float64(v)
}

// runningTime is t in fractional Unix seconds while PostgreSQL answers, 0 if unset.
func runningTime(st *daemon.Status, t time.Time) float64 {
	if !st.PGRunning || t.IsZero() {
		return 0
	}
	return float64(t.UnixNano()) / float64(time.Second)
}

// primaryValue is v on a running primary, else 0.
func primaryValue(st *daemon.Status, v uint64) float64 {
	if publicRole(st.Role) != rolePrimary {
		return 0
	}
	return runningValue(st, v)
}

// standbyValue is v on a running node that is not the primary, else 0.
func standbyValue(st *daemon.Status, v uint64) float64 {
	if publicRole(st.Role) == rolePrimary {
		return 0
	}
	return runningValue(st, v)
}

// statusGauges are the ramd_* gauges read from node.Status() at scrape time: each reads 0
// before the first HA cycle. Names and help texts live in observability.
func statusGauges(node Node, now func() time.Time) observability.StatusGauges {
	read := func(f func(st *daemon.Status) float64) func() float64 {
		return func() float64 {
			st := node.Status()
			if st == nil {
				return 0
			}
			return f(st)
		}
	}
	return observability.StatusGauges{
		LockHeld:              read(func(st *daemon.Status) float64 { return boolValue(st.HasLock) }),
		ReplicationLagBytes:   read(lagBytes),
		ReplicationLagSeconds: read(func(st *daemon.Status) float64 { return lagSeconds(st, now()) }),
		SyncStandbys:          read(syncStandbys),
		PendingRestart:        read(func(st *daemon.Status) float64 { return boolValue(pendingRestart(st)) }),
		ConfigValid: read(func(st *daemon.Status) float64 {
			return boolValue(st.Config.Source == daemon.SourceCluster && st.Config.Refusal == "")
		}),
		SyncDegraded: read(func(st *daemon.Status) float64 { return boolValue(st.SyncDegraded != "") }),
	}
}

// replaying reports whether the node is a running replica (or standby leader) that has
// replayed something, so that its lag means something. A demoted former primary may have
// diverged: it has no lag, it needs a rewind.
func replaying(st *daemon.Status) bool {
	return st.PGRunning && st.Role.IsReplicaRole() && st.ReplayLSN != 0
}

// lagBytes is how far this replica's replayed position is behind the leader's last known
// position (the /replica?lag= measure), 0 on the primary or when PostgreSQL is not running.
func lagBytes(st *daemon.Status) float64 {
	if !replaying(st) {
		return 0
	}
	if optime := leaderOptime(st); optime > st.ReplayLSN {
		return float64(optime - st.ReplayLSN)
	}
	return 0
}

// lagSeconds is, while this replica's replay is behind the leader's position, how old the
// last transaction it replayed is; 0 when it replayed everything known (an idle primary
// makes no lag), on the primary, or when PostgreSQL is not running.
func lagSeconds(st *daemon.Status, now time.Time) float64 {
	if lagBytes(st) == 0 || st.ReplayTimestamp.IsZero() {
		return 0
	}
	return max(now.Sub(st.ReplayTimestamp).Seconds(), 0)
}

// syncStandbys counts the standbys PostgreSQL reports as synchronous or quorum on this
// primary: what it enforces, not what the sync key says.
func syncStandbys(st *daemon.Status) float64 {
	if publicRole(st.Role) != rolePrimary || !st.PGRunning {
		return 0
	}
	n := 0
	for _, r := range st.Replication {
		if r.SyncState == "sync" || r.SyncState == "quorum" {
			n++
		}
	}
	return float64(n)
}
