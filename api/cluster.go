package api

import (
	"slices"
	"strings"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// newClusterView builds /cluster from the members in st, sorted by name. The LSN fields are
// left out for the leader; on the others each is a formatted LSN and its lag in bytes behind
// the leader, or "unknown" for both when the member reported no position. As Patroni 3 does,
// a replica's state is its replication state ("streaming", "in archive recovery") while it
// publishes one. On the leader's answer, the replicas connected to it carry their replay lag
// in seconds as its pg_stat_replication measures it.
func newClusterView(st *daemon.Status) client.Cluster {
	view := client.Cluster{Members: make([]client.Member, 0, len(st.Members)), Scope: st.Scope, Pause: st.Paused}
	for _, m := range st.Members {
		mv := client.Member{
			Name:           m.Name,
			Role:           m.Role,
			State:          m.State,
			APIURL:         m.APIURL,
			Timeline:       m.Timeline,
			PendingRestart: m.PendingRestart,
			Tags:           m.Tags,
		}
		if m.ScheduledRestart != "" {
			mv.ScheduledRestart = &client.MemberRestart{Schedule: m.ScheduledRestart, PostmasterStartTime: m.ScheduledRestartPostmaster}
		}
		if m.Host != "" {
			mv.Host = m.Host
			mv.Port = m.Port
		}
		isLeader := m.Role == client.RoleLeader || m.Role == client.RoleStandbyLeader ||
			(st.Leader != "" && m.Name == st.Leader)
		if !isLeader {
			mv.ReplicationState = m.ReplicationState
			if m.ReplicationState != "" {
				mv.State = m.ReplicationState
			}
			mv.LagSeconds = leaderSeenLag(st, m.Name)
			mv.ReceiveLSN, mv.ReceiveLag = lsnAndLag(m.ReceiveLSN, bytesBehind(st.LeaderOptime, m.ReceiveLSN))
			mv.ReplayLSN, mv.ReplayLag = lsnAndLag(m.ReplayLSN, bytesBehind(st.LeaderOptime, m.ReplayLSN))
			mv.LSN, mv.Lag = lsnAndLag(m.LSN, m.Lag)
		}
		view.Members = append(view.Members, mv)
	}
	slices.SortFunc(view.Members, func(a, b client.Member) int { return strings.Compare(a.Name, b.Name) })
	if sw := st.Switchover; sw != nil && sw.ScheduledAt != "" {
		view.ScheduledSwitchover = &client.ScheduledSwitchover{At: sw.ScheduledAt, From: sw.Leader, To: sw.Candidate, JobID: sw.JobID}
	}
	return view
}

// leaderSeenLag is the replay lag of the standby named name in seconds as this node measures
// it, when this node is the running primary holding the lock and name streams from it; nil
// otherwise. PostgreSQL shows no replay_lag once a standby has been caught up and idle for a
// while: a standby that replayed everything this primary wrote lags 0 s then.
func leaderSeenLag(st *daemon.Status, name string) *float64 {
	if !st.HasLock || !st.PGRunning || st.Role != daemon.RolePrimary {
		return nil
	}
	for _, r := range st.Replication {
		if r.ApplicationName != name {
			continue
		}
		var s float64
		switch {
		case r.ReplayLag != nil:
			s = r.ReplayLag.Seconds()
		case r.ReplayLSN == 0 || r.ReplayLSN < st.WALLocation:
			return nil
		}
		return &s
	}
	return nil
}

// lsnAndLag is the pair Patroni prints for one position: both "unknown" when it is 0.
func lsnAndLag(lsn, lag uint64) (string, *client.Lag) {
	if lsn == 0 {
		return client.Unknown, &client.Lag{Unknown: true}
	}
	return formatLSN(lsn), &client.Lag{Bytes: lag}
}

// bytesBehind is how many bytes pos trails the leader's optime, 0 when it is ahead.
func bytesBehind(optime, pos uint64) uint64 {
	if optime >= pos {
		return optime - pos
	}
	return 0
}

// newClusterStatus builds GET /api/v1/cluster from st.
func newClusterStatus(st *daemon.Status) client.ClusterStatus {
	v := newClusterView(st)
	out := client.ClusterStatus{Scope: st.Scope, Leader: st.Leader, Paused: st.Paused, FailsafeActive: st.FailsafeActive,
		SyncStandbys: []string{}, PendingRestart: []string{}, Members: v.Members,
		Node: client.ClusterNode{Name: st.Name, Plan: st.Plan, DCSReachable: st.DCSReachable, ScheduledRestart: scheduledRestart(st.ScheduledRestart),
			Timings: client.Timings{TTL: st.Timings.TTL.Seconds(), LoopWait: st.Timings.LoopWait.Seconds(),
				RetryTimeout: st.Timings.RetryTimeout.Seconds(), FenceMargin: st.Timings.FenceMargin.Seconds(),
				PGUnresponsiveTimeout: st.Timings.PGUnresponsiveTimeout.Seconds()},
			Config:       client.ConfigSource{Source: string(st.Config.Source), Refusal: st.Config.Refusal, EnvironmentDiffers: st.Config.EnvironmentDiffers, Index: st.Config.Index},
			SyncDegraded: st.SyncDegraded, ParameterErrors: st.ParameterErrors, Backup: backupNode(st, time.Now())}}
	out.ScheduledSwitchover = v.ScheduledSwitchover
	for _, m := range v.Members {
		switch m.Role {
		case client.RoleLeader, client.RoleStandbyLeader:
			out.Timeline = m.Timeline
		case client.RoleSyncStandby, client.RoleQuorumStandby:
			out.SyncStandbys = append(out.SyncStandbys, m.Name)
		}
		if m.PendingRestart {
			out.PendingRestart = append(out.PendingRestart, m.Name)
		}
	}
	return out
}

// scheduledRestart is the answering node's scheduled restart in /api/v1/cluster.
func scheduledRestart(sr *daemon.ScheduledRestart) *client.ScheduledRestart {
	if sr == nil {
		return nil
	}
	return &client.ScheduledRestart{Role: sr.Role, PostgresVersion: sr.PostgresVersion, RestartPending: sr.RestartPending,
		Timeout: sr.Timeout, Schedule: sr.Schedule, PostmasterStart: sr.PostmasterStart, JobID: sr.JobID}
}
