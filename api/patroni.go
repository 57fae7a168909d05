package api

import (
	"fmt"
	"time"

	"github.com/ramd-project/ramd/daemon"
)

// Roles as /patroni publishes them (Patroni's names).
const (
	rolePrimary       = "primary"
	roleReplica       = "replica"
	roleStandbyLeader = "standby_leader"
	roleUninitialized = "uninitialized"
)

// nodeStatus is the JSON document of GET /patroni and of every GET health answer: Patroni's
// fields, in Patroni's shape, plus the ramd object. Optional fields are left out where
// Patroni leaves them out.
type nodeStatus struct {
	State                    string                   `json:"state"`
	PostmasterStartTime      string                   `json:"postmaster_start_time,omitempty"`
	Role                     string                   `json:"role"`
	ServerVersion            int                      `json:"server_version,omitempty"`
	Timeline                 int                      `json:"timeline,omitempty"`
	Xlog                     any                      `json:"xlog,omitempty"`
	Replication              []replicationRow         `json:"replication,omitempty"`
	ReplicationState         string                   `json:"replication_state,omitempty"`
	SyncStandby              bool                     `json:"sync_standby,omitempty"`
	QuorumStandby            bool                     `json:"quorum_standby,omitempty"`
	Pause                    bool                     `json:"pause,omitempty"`
	ClusterUnlocked          bool                     `json:"cluster_unlocked,omitempty"`
	FailsafeModeIsActive     bool                     `json:"failsafe_mode_is_active,omitempty"`
	DCSLastSeen              int64                    `json:"dcs_last_seen"`
	Tags                     map[string]any           `json:"tags,omitempty"`
	DatabaseSystemIdentifier string                   `json:"database_system_identifier,omitempty"`
	PendingRestart           bool                     `json:"pending_restart,omitempty"`
	PendingRestartReason     map[string]pendingChange `json:"pending_restart_reason,omitempty"`
	ScheduledRestart         *scheduledRestartDoc     `json:"scheduled_restart,omitempty"`
	Patroni                  patroniInfo              `json:"patroni"`
	Ramd                     ramdInfo                 `json:"ramd"`
}

// primaryXlog is the xlog object of a primary.
type primaryXlog struct {
	Location uint64 `json:"location"`
}

// replicaXlog is the xlog object of a replica; replayed_timestamp is null until something
// was replayed.
type replicaXlog struct {
	ReceivedLocation  uint64  `json:"received_location"`
	ReplayedLocation  uint64  `json:"replayed_location"`
	ReplayedTimestamp *string `json:"replayed_timestamp"`
	Paused            bool    `json:"paused"`
}

// replicationRow is one connected standby, as pg_stat_replication shows it.
type replicationRow struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
}

// pendingChange is a parameter waiting for a restart.
type pendingChange struct {
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
}

// patroniInfo identifies the node the way Patroni does.
type patroniInfo struct {
	Version string `json:"version"`
	Scope   string `json:"scope"`
	Name    string `json:"name"`
}

// ramdInfo is ramd's own view, which Patroni readers ignore and other ramd nodes read: the
// lock, the leader's name, and the unmapped role and state.
type ramdInfo struct {
	HasLock bool   `json:"has_lock"`
	Leader  string `json:"leader"`
	Role    string `json:"role"`
	State   string `json:"state"`
	// DCSReachable tells peers whether this node reaches Consul: a member that lost Consul
	// must not block a leader race.
	DCSReachable bool `json:"dcs_reachable"`
	// Plan is the last HA decision and its reason, in plain words.
	Plan string `json:"plan,omitempty"`
}

// newNodeStatus builds the /patroni document from st. Like Patroni, it publishes the
// PostgreSQL fields only while PostgreSQL answers.
func newNodeStatus(st *daemon.Status) nodeStatus {
	role := publicRole(st.Role)
	doc := nodeStatus{
		State:                    pgState(st),
		Role:                     role,
		Pause:                    st.Paused,
		ClusterUnlocked:          clusterUnlocked(st),
		FailsafeModeIsActive:     st.FailsafeActive,
		DCSLastSeen:              unixSeconds(st.DCSLastSeen),
		Tags:                     effectiveTags(st.Tags),
		DatabaseSystemIdentifier: st.SystemID,
		PendingRestart:           pendingRestart(st),
		Patroni:                  patroniInfo{Version: st.Version, Scope: st.Scope, Name: st.Name},
		Ramd: ramdInfo{
			HasLock:      st.HasLock,
			Leader:       st.Leader,
			Role:         string(st.Role),
			State:        st.State,
			DCSReachable: st.DCSReachable,
			Plan:         st.Plan,
		},
	}
	if sr := st.ScheduledRestart; sr != nil {
		doc.ScheduledRestart = &scheduledRestartDoc{Schedule: sr.Schedule.Format(time.RFC3339), RestartPending: sr.RestartPending,
			Role: sr.Role, JobID: sr.JobID}
		if !sr.PostmasterStart.IsZero() {
			doc.ScheduledRestart.PostmasterStartTime = sr.PostmasterStart.Format(time.RFC3339Nano)
		}
	}
	if len(st.PendingRestartReasons) > 0 {
		doc.PendingRestartReason = make(map[string]pendingChange, len(st.PendingRestartReasons))
		for k, v := range st.PendingRestartReasons {
			doc.PendingRestartReason[k] = pendingChange{OldValue: v.OldValue, NewValue: v.NewValue}
		}
	}
	if !st.PGRunning {
		return doc
	}
	if !st.PostmasterStart.IsZero() {
		doc.PostmasterStartTime = pythonTime(st.PostmasterStart)
	}
	doc.ServerVersion = st.ServerVersion
	doc.Timeline = st.Timeline
	doc.ReplicationState = st.ReplicationState
	if role == rolePrimary {
		doc.Xlog = primaryXlog{Location: st.WALLocation}
	} else {
		x := replicaXlog{
			ReceivedLocation: receivedLocation(st),
			ReplayedLocation: st.ReplayLSN,
			Paused:           st.ReplayPaused,
		}
		if !st.ReplayTimestamp.IsZero() {
			ts := pythonTime(st.ReplayTimestamp)
			x.ReplayedTimestamp = &ts
		}
		doc.Xlog = x
	}
	if role == roleReplica {
		doc.SyncStandby = st.SyncStandby
		doc.QuorumStandby = st.QuorumStandby
	}
	for _, r := range st.Replication {
		doc.Replication = append(doc.Replication, replicationRow{
			Usename:         r.Usename,
			ApplicationName: r.ApplicationName,
			ClientAddr:      r.ClientAddr,
			State:           r.State,
			SyncState:       r.SyncState,
			SyncPriority:    r.SyncPriority,
		})
	}
	return doc
}

// publicRole maps a daemon role to the role Patroni publishes: a demoted node is a replica to
// the outside, and an unknown role is published as uninitialized.
func publicRole(r daemon.Role) string {
	switch r {
	case daemon.RolePrimary:
		return rolePrimary
	case daemon.RoleReplica, daemon.RoleDemoted:
		return roleReplica
	case daemon.RoleStandbyLeader:
		return roleStandbyLeader
	default:
		return roleUninitialized
	}
}

// clusterUnlocked is Patroni's cluster_unlocked: no leader lock, or no cluster view at all
// because the DCS cannot be reached.
func clusterUnlocked(st *daemon.Status) bool {
	return st.ClusterUnlocked || !st.DCSReachable
}

// pendingRestart is true when PostgreSQL needs a restart for a parameter change.
func pendingRestart(st *daemon.Status) bool {
	return st.PendingRestart || len(st.PendingRestartReasons) > 0
}

// unixSeconds is t in whole Unix seconds, 0 for the zero time (never seen).
func unixSeconds(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// pythonTime formats t as Python's str(datetime) does, which is what Patroni puts in JSON:
// "2006-01-02 15:04:05.000000+00:00", without the fraction when it is zero.
func pythonTime(t time.Time) string {
	layout := "2006-01-02 15:04:05-07:00"
	if t.Nanosecond()/1000 != 0 {
		layout = "2006-01-02 15:04:05.000000-07:00"
	}
	return t.Format(layout)
}

// formatLSN writes an LSN as PostgreSQL does: high and low 32 bits in hex.
func formatLSN(lsn uint64) string {
	return fmt.Sprintf("%X/%X", lsn>>32, lsn&0xFFFFFFFF)
}

// scheduledRestartDoc is Patroni's scheduled_restart in /patroni.
type scheduledRestartDoc struct {
	Schedule            string `json:"schedule"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
	RestartPending      bool   `json:"restart_pending,omitempty"`
	Role                string `json:"role,omitempty"`
	JobID               string `json:"job_id,omitempty"`
}
