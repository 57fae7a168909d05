package api

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// Roles as /patroni publishes them (Patroni's names).
const (
	rolePrimary       = "primary"
	roleReplica       = "replica"
	roleStandbyLeader = "standby_leader"
	roleUninitialized = "uninitialized"
)

// newNodeStatus builds the /patroni document from st. Like Patroni, it publishes the
// PostgreSQL fields only while PostgreSQL answers.
func newNodeStatus(st *daemon.Status) client.NodeStatus {
	role := publicRole(st.Role)
	doc := client.NodeStatus{
		State:                    pgState(st),
		Role:                     role,
		Pause:                    st.Paused,
		ClusterUnlocked:          clusterUnlocked(st),
		FailsafeModeIsActive:     st.FailsafeActive,
		DCSLastSeen:              unixSeconds(st.DCSLastSeen),
		Tags:                     effectiveTags(st.Tags),
		DatabaseSystemIdentifier: st.SystemID,
		PendingRestart:           pendingRestart(st),
		Patroni:                  client.PatroniInfo{Version: st.Version, Scope: st.Scope, Name: st.Name},
		Ramd: client.RamdInfo{
			Version:      st.Version,
			HasLock:      st.HasLock,
			Leader:       st.Leader,
			Role:         string(st.Role),
			State:        st.State,
			DCSReachable: st.DCSReachable,
			Plan:         st.Plan,
		},
	}
	if sr := st.ScheduledRestart; sr != nil {
		doc.ScheduledRestart = &client.PatroniScheduledRestart{Schedule: sr.Schedule.Format(time.RFC3339), RestartPending: sr.RestartPending,
			Role: sr.Role, JobID: sr.JobID}
		if !sr.PostmasterStart.IsZero() {
			doc.ScheduledRestart.PostmasterStartTime = sr.PostmasterStart.Format(time.RFC3339Nano)
		}
	}
	if len(st.PendingRestartReasons) > 0 {
		doc.PendingRestartReason = make(map[string]client.PendingChange, len(st.PendingRestartReasons))
		for k, v := range st.PendingRestartReasons {
			doc.PendingRestartReason[k] = client.PendingChange{OldValue: v.OldValue, NewValue: v.NewValue}
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
		doc.Xlog = rawJSON(client.PrimaryXlog{Location: st.WALLocation})
	} else {
		x := client.ReplicaXlog{
			ReceivedLocation: receivedLocation(st),
			ReplayedLocation: st.ReplayLSN,
			Paused:           st.ReplayPaused,
		}
		if !st.ReplayTimestamp.IsZero() {
			ts := pythonTime(st.ReplayTimestamp)
			x.ReplayedTimestamp = &ts
		}
		doc.Xlog = rawJSON(x)
	}
	if role == roleReplica {
		doc.SyncStandby = st.SyncStandby
		doc.QuorumStandby = st.QuorumStandby
	}
	for _, r := range st.Replication {
		doc.Replication = append(doc.Replication, client.ReplicationRow{
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

// rawJSON is v as JSON; v is one of the xlog objects, which always marshal.
func rawJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
