package api

import (
	"slices"
	"strings"

	"github.com/ramd-project/ramd/daemon"
)

// Member roles in /cluster (Patroni's cluster_as_json).
const (
	memberRoleLeader        = "leader"
	memberRoleStandbyLeader = "standby_leader"
	unknownLSN              = "unknown"
)

// clusterView is the JSON document of GET /cluster.
type clusterView struct {
	Members []memberView `json:"members"`
	Scope   string       `json:"scope"`
	Pause   bool         `json:"pause,omitempty"`
}

// memberView is one member in /cluster. The LSN fields are left out for the leader; on the
// others each is a formatted LSN and its lag in bytes behind the leader, or "unknown" for
// both when the member reported no position.
type memberView struct {
	Name           string         `json:"name"`
	Role           string         `json:"role"`
	State          string         `json:"state"`
	APIURL         string         `json:"api_url"`
	Host           string         `json:"host,omitempty"`
	Port           int            `json:"port,omitempty"`
	Timeline       int            `json:"timeline,omitempty"`
	PendingRestart bool           `json:"pending_restart,omitempty"`
	Tags           map[string]any `json:"tags,omitempty"`
	ReceiveLSN     any            `json:"receive_lsn,omitempty"`
	ReceiveLag     any            `json:"receive_lag,omitempty"`
	ReplayLSN      any            `json:"replay_lsn,omitempty"`
	ReplayLag      any            `json:"replay_lag,omitempty"`
	LSN            any            `json:"lsn,omitempty"`
	Lag            any            `json:"lag,omitempty"`
}

// newClusterView builds /cluster from the members in st, sorted by name.
func newClusterView(st *daemon.Status) clusterView {
	view := clusterView{Members: make([]memberView, 0, len(st.Members)), Scope: st.Scope, Pause: st.Paused}
	for _, m := range st.Members {
		mv := memberView{
			Name:           m.Name,
			Role:           m.Role,
			State:          m.State,
			APIURL:         m.APIURL,
			Timeline:       m.Timeline,
			PendingRestart: m.PendingRestart,
			Tags:           m.Tags,
		}
		if m.Host != "" {
			mv.Host = m.Host
			mv.Port = m.Port
		}
		isLeader := m.Role == memberRoleLeader || m.Role == memberRoleStandbyLeader ||
			(st.Leader != "" && m.Name == st.Leader)
		if !isLeader {
			mv.ReceiveLSN, mv.ReceiveLag = lsnAndLag(m.ReceiveLSN, bytesBehind(st.LeaderOptime, m.ReceiveLSN))
			mv.ReplayLSN, mv.ReplayLag = lsnAndLag(m.ReplayLSN, bytesBehind(st.LeaderOptime, m.ReplayLSN))
			mv.LSN, mv.Lag = lsnAndLag(m.LSN, m.Lag)
		}
		view.Members = append(view.Members, mv)
	}
	slices.SortFunc(view.Members, func(a, b memberView) int { return strings.Compare(a.Name, b.Name) })
	return view
}

// lsnAndLag is the pair Patroni prints for one position: both "unknown" when it is 0.
func lsnAndLag(lsn, lag uint64) (any, any) {
	if lsn == 0 {
		return unknownLSN, unknownLSN
	}
	return formatLSN(lsn), lag
}

// bytesBehind is how many bytes pos trails the leader's optime, 0 when it is ahead.
func bytesBehind(optime, pos uint64) uint64 {
	if optime >= pos {
		return optime - pos
	}
	return 0
}

// clusterStatusV1 is GET /api/v1/cluster: the members as /cluster shows them plus what an
// operator asks first: who leads, on which timeline, paused or not, which members wait for a
// restart, and what the answering node decided last.
type clusterStatusV1 struct {
	Scope          string         `json:"scope"`
	Leader         string         `json:"leader"`
	Timeline       int            `json:"timeline,omitempty"`
	Paused         bool           `json:"paused"`
	FailsafeActive bool           `json:"failsafe_active"`
	SyncStandbys   []string       `json:"sync_standbys"`
	PendingRestart []string       `json:"pending_restart"`
	Members        []memberView   `json:"members"`
	Node           clusterNodeDoc `json:"node"`
}

// clusterNodeDoc is the answering node's own view.
type clusterNodeDoc struct {
	Name             string                   `json:"name"`
	Plan             string                   `json:"plan"`
	DCSReachable     bool                     `json:"dcs_reachable"`
	ScheduledRestart *daemon.ScheduledRestart `json:"scheduled_restart,omitempty"`
	// Timings are the HA timings this node runs with, in seconds.
	Timings timingsDoc `json:"timings"`
	Config  configDoc  `json:"config"`
	// SyncDegraded, on a leader in synchronous mode, says why commits are acknowledged
	// without a synchronous standby.
	SyncDegraded string `json:"sync_degraded,omitempty"`
}

// timingsDoc is a member's HA timings in seconds.
type timingsDoc struct {
	TTL          float64 `json:"ttl"`
	LoopWait     float64 `json:"loop_wait"`
	RetryTimeout float64 `json:"retry_timeout"`
	FenceMargin  float64 `json:"fence_margin"`
}

// configDoc says which dynamic configuration a member acts on.
type configDoc struct {
	// Source is cluster, last-valid or environment.
	Source string `json:"source"`
	// Refusal is why the config key is not in force.
	Refusal string `json:"refusal,omitempty"`
	// EnvironmentDiffers: the member's RAMD_* timings differ from the cluster's, which it
	// follows.
	EnvironmentDiffers bool `json:"environment_differs"`
}

func newClusterStatus(st *daemon.Status) clusterStatusV1 {
	v := newClusterView(st)
	out := clusterStatusV1{Scope: st.Scope, Leader: st.Leader, Paused: st.Paused, FailsafeActive: st.FailsafeActive,
		SyncStandbys: []string{}, PendingRestart: []string{}, Members: v.Members,
		Node: clusterNodeDoc{Name: st.Name, Plan: st.Plan, DCSReachable: st.DCSReachable, ScheduledRestart: st.ScheduledRestart,
			Timings: timingsDoc{TTL: st.Timings.TTL.Seconds(), LoopWait: st.Timings.LoopWait.Seconds(),
				RetryTimeout: st.Timings.RetryTimeout.Seconds(), FenceMargin: st.Timings.FenceMargin.Seconds()},
			Config:       configDoc{Source: string(st.Config.Source), Refusal: st.Config.Refusal, EnvironmentDiffers: st.Config.EnvironmentDiffers},
			SyncDegraded: st.SyncDegraded}}
	for _, m := range v.Members {
		switch m.Role {
		case memberRoleLeader, memberRoleStandbyLeader:
			out.Timeline = m.Timeline
		case "sync_standby", "quorum_standby":
			out.SyncStandbys = append(out.SyncStandbys, m.Name)
		}
		if m.PendingRestart {
			out.PendingRestart = append(out.PendingRestart, m.Name)
		}
	}
	return out
}
