package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// The routes the seed project documented (/api/v1/cluster/..., /api/v1/sync-standbys/...,
// POST /api/v1/config). Where one means what an existing route does it is served by the
// same handler; the cluster health verdict, the cluster metrics and the one-step changes of
// the synchronous standbys are new.

// registerSeedNode registers the seed's read routes answered from the node's snapshot (and,
// for the metrics' failover history, from cfg when it is set).
func registerSeedNode(r *gin.Engine, h *handlers, cfg ConfigAdmin) {
	r.GET("/api/v1/cluster/status", h.clusterV1)
	r.GET("/api/v1/cluster/health", h.clusterHealth)
	r.GET("/api/v1/cluster/metrics", func(c *gin.Context) {
		st := h.node.Status()
		if st == nil {
			_ = c.Error(ErrNoStatus)
			return
		}
		var hist []client.HistoryEntry
		var histErr error
		if cfg != nil {
			hist, histErr = historyEntries(c.Request.Context(), cfg)
		}
		c.JSON(http.StatusOK, clusterMetrics(st, h.now(), hist, histErr))
	})
}

// clusterHealth answers GET /api/v1/cluster/health: 200 for healthy and degraded, 503 for
// unhealthy, with the verdict and its reasons either way.
func (h *handlers) clusterHealth(c *gin.Context) {
	st := h.node.Status()
	if st == nil {
		_ = c.Error(ErrNoStatus)
		return
	}
	v := clusterHealth(st, h.now())
	code := http.StatusOK
	if v.Status == client.HealthUnhealthy {
		code = http.StatusServiceUnavailable
	}
	c.JSON(code, v)
}

// clusterHealth is the one verdict over every member as st shows them. Critical findings
// (no leader, the leader's PostgreSQL not running, a view that cannot be trusted) make it
// unhealthy; warnings (a replica stopped, not streaming, too far behind; no replica
// streaming at all; maintenance mode; failsafe; synchronous replication degraded) make it
// degraded. A member stopped cleanly removes its record and is no longer listed.
func clusterHealth(st *daemon.Status, now time.Time) client.ClusterHealth {
	out := client.ClusterHealth{Scope: st.Scope, Leader: st.Leader, Node: st.Name, CheckedAt: st.CycleAt,
		Reasons: []client.HealthReason{}, Members: []client.MemberHealth{}}
	add := func(sev, member, reason string) {
		out.Reasons = append(out.Reasons, client.HealthReason{Severity: sev, Member: member, Reason: reason})
	}
	if livenessCode(st, now) != http.StatusOK {
		add(client.SeverityCritical, "", fmt.Sprintf("%s finished its last HA cycle %s ago: its view is stale", st.Name, now.Sub(st.CycleAt).Round(time.Millisecond)))
	}
	if !st.DCSReachable {
		add(client.SeverityCritical, "", st.Name+" cannot reach Consul: the members are as it saw them last")
	}
	if st.Leader == "" {
		add(client.SeverityCritical, "", "no member holds the leader lock")
	}
	leaderSeen, streaming := false, 0
	for _, m := range newClusterView(st).Members {
		mh := client.MemberHealth{Name: m.Name, Role: m.Role, State: m.State, Healthy: true, Reasons: []string{}}
		finding := func(sev, reason string) {
			mh.Healthy = false
			mh.Reasons = append(mh.Reasons, reason)
			add(sev, m.Name, reason)
		}
		if m.IsLeader() {
			leaderSeen = true
			if m.State != stateRunning {
				finding(client.SeverityCritical, "the leader's PostgreSQL is "+m.State)
			}
		} else {
			if m.ReplicationState == "streaming" {
				streaming++
			}
			replicaFindings(st, m, finding)
		}
		out.Members = append(out.Members, mh)
	}
	if st.Leader != "" && !leaderSeen {
		add(client.SeverityCritical, st.Leader, "the leader published no member record")
	}
	if st.Leader != "" && streaming == 0 {
		add(client.SeverityWarning, "", "no replica streams from the leader: a failover would have no candidate")
	}
	if st.Paused {
		add(client.SeverityWarning, "", "maintenance mode: automatic failover is paused")
	}
	if st.FailsafeActive {
		add(client.SeverityWarning, "", "failsafe mode is active: Consul is away and the leader lives on the members' confirmations")
	}
	if st.SyncDegraded != "" {
		add(client.SeverityWarning, st.Name, "synchronous replication degraded: "+st.SyncDegraded)
	}
	out.Status = client.HealthHealthy
	for _, r := range out.Reasons {
		switch {
		case r.Severity == client.SeverityCritical:
			out.Status = client.HealthUnhealthy
		case out.Status == client.HealthHealthy:
			out.Status = client.HealthDegraded
		}
	}
	return out
}

// replicaFindings reports what is wrong with a member that is not the leader: PostgreSQL not
// running, not streaming, or behind the leader by more than maximum_lag_on_failover.
func replicaFindings(st *daemon.Status, m client.Member, finding func(sev, reason string)) {
	switch {
	case m.ReplicationState == "in archive recovery":
		finding(client.SeverityWarning, "not streaming from the leader (in archive recovery)")
	case m.ReplicationState == "" && m.State != stateRunning:
		finding(client.SeverityWarning, "PostgreSQL is "+m.State)
		return
	}
	switch {
	case m.Lag == nil || m.Lag.Unknown:
		finding(client.SeverityWarning, "reports no WAL position")
	case st.MaximumLagOnFailover > 0 && m.Lag.Bytes > st.MaximumLagOnFailover:
		finding(client.SeverityWarning, fmt.Sprintf("%d bytes behind the leader, more than maximum_lag_on_failover (%d): not a failover candidate",
			m.Lag.Bytes, st.MaximumLagOnFailover))
	}
}

// historyEntries reads the failover history in its wire form.
func historyEntries(ctx context.Context, cfg ConfigAdmin) ([]client.HistoryEntry, error) {
	hist, err := cfg.History(ctx)
	if err != nil {
		return nil, fmt.Errorf("read history: %w", err)
	}
	out := make([]client.HistoryEntry, len(hist))
	for i, e := range hist {
		out[i] = client.HistoryEntry{Timeline: e.Timeline, LSN: e.LSN, Reason: e.Reason, Timestamp: e.Timestamp, NewLeader: e.NewLeader}
	}
	return out, nil
}

// clusterMetrics builds GET /api/v1/cluster/metrics from st and the history (oldest first).
func clusterMetrics(st *daemon.Status, now time.Time, hist []client.HistoryEntry, histErr error) client.ClusterMetrics {
	view := newClusterView(st)
	out := client.ClusterMetrics{Scope: st.Scope, Leader: st.Leader, CheckedAt: st.CycleAt,
		Members: make([]client.MemberMetrics, 0, len(view.Members)), Slots: []client.SlotMetrics{}, Failovers: len(hist),
		Node: client.NodeMetrics{Name: st.Name, Role: publicRole(st.Role), PostgresRunning: st.PGRunning,
			Connections: st.Connections, XactCommit: st.XactCommit, XactRollback: st.XactRollback,
			CommitsPerSec: st.CommitRate, RollbacksPerSec: st.RollbackRate,
			LagBytes: uint64(lagBytes(st)), LagSeconds: lagSeconds(st, now)}}
	for _, m := range view.Members {
		mm := client.MemberMetrics{Name: m.Name, Role: m.Role, State: m.State, ReplicationState: m.ReplicationState,
			Timeline: m.Timeline, LagSeconds: m.LagSeconds}
		if m.IsLeader() {
			out.Timeline = m.Timeline
		} else if m.Lag != nil && !m.Lag.Unknown {
			b := m.Lag.Bytes
			mm.LagBytes = &b
		}
		out.Members = append(out.Members, mm)
	}
	for _, s := range st.Slots {
		sm := client.SlotMetrics{Name: s.Name, Active: s.Active}
		if s.RestartLSN != 0 {
			sm.RestartLSN = formatLSN(s.RestartLSN)
			sm.RetainedBytes = bytesBehind(st.WALLocation, s.RestartLSN)
		}
		out.Slots = append(out.Slots, sm)
	}
	if histErr != nil {
		out.HistoryError = histErr.Error()
	}
	if len(hist) > 0 {
		e := hist[len(hist)-1]
		out.LastFailover = &client.FailoverInfo{Timeline: e.Timeline, LSN: e.LSN, Reason: e.Reason, At: e.Timestamp, NewLeader: e.NewLeader}
	}
	return out
}

// Operations of the seed's one-step synchronous-standby routes.
const (
	syncAdd    = "add"
	syncRemove = "remove"
	syncAnyN   = "any-n"
)

// errSyncOff refuses removing a synchronous standby while synchronous replication is off.
var errSyncOff = errors.New("synchronous replication is off: there is no synchronous standby to remove")

// registerSyncSteps registers GET /api/v1/sync-standbys/status and the seed's one-step
// changes. ramd picks the synchronous standbys itself (streaming members not tagged
// nosync), so add and remove change how many it keeps by one, and any-n sets quorum commit
// on n of them. Each reads the configuration and writes it back by CAS against that read.
func registerSyncSteps(r *gin.Engine, s SyncAdmin, cfg ConfigAdmin) {
	r.GET("/api/v1/sync-standbys/status", func(c *gin.Context) {
		v, err := s.SyncStandbys(c.Request.Context())
		if err != nil {
			c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
			return
		}
		c.JSON(http.StatusOK, syncView(v))
	})
	step := func(op string) gin.HandlerFunc {
		return func(c *gin.Context) {
			n := 0
			switch op {
			case syncAnyN:
				var in client.SyncAnyN
				if err := decodeBody(c, &in, false); err != nil {
					c.JSON(http.StatusBadRequest, badJSON(err))
					return
				}
				if in.N < 1 {
					c.JSON(http.StatusBadRequest, client.ErrorBody{Error: "invalid value", Field: "n", Value: in.N,
						Detail: "n is the number of synchronous standbys that must acknowledge a commit (ANY n), at least 1"})
					return
				}
				n = in.N
			default:
				var in client.SyncAddRemove
				if err := decodeBody(c, &in, true); err != nil {
					b := badJSON(err)
					if b.Field != "" {
						b.Detail = "ramd chooses the synchronous standbys (streaming members not tagged nosync); " + op + " takes no fields and changes their number by one"
					}
					c.JSON(http.StatusBadRequest, b)
					return
				}
			}
			ctx := c.Request.Context()
			cur, idx, err := cfg.DynamicConfig(ctx)
			if err != nil && !errors.Is(err, daemon.ErrNoConfig) {
				c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
				return
			}
			patch, err := syncStep(cur, op, n)
			switch {
			case errors.Is(err, errSyncOff):
				c.JSON(http.StatusUnprocessableEntity, client.ErrorBody{Error: "refused", Detail: err.Error(), Field: "synchronous_mode"})
				return
			case err != nil: // the stored configuration, not the request, is at fault
				c.JSON(http.StatusServiceUnavailable, client.ErrorBody{Error: "unavailable", Detail: err.Error()})
				return
			}
			if _, err := cfg.PatchConfig(ctx, patch, &idx); err != nil {
				writeResult(c, nil, err)
				return
			}
			v, err := s.SyncStandbys(ctx)
			writeResult(c, syncView(v), err)
		}
	}
	r.POST("/api/v1/sync-standbys/add", step(syncAdd))
	r.POST("/api/v1/sync-standbys/remove", step(syncRemove))
	r.POST("/api/v1/sync-standbys/any-n", step(syncAnyN))
}

// decodeBody decodes a strict JSON body (at most maxBody bytes) into v; an empty body is an
// empty object when emptyOK.
func decodeBody(c *gin.Context, v any, emptyOK bool) error {
	dec := json.NewDecoder(io.LimitReader(c.Request.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if emptyOK && errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// syncStep is the merge patch of one step from the configuration cur: add keeps one more
// synchronous standby (turning synchronous replication on with one when it is off), remove
// one fewer (turning it off after the last), any-n sets quorum commit on n. The values are
// judged by the configuration's own validator when written; a configuration in Consul that
// is refused is an error here too.
func syncStep(cur map[string]any, op string, n int) (map[string]any, error) {
	dyn, err := dynconf.Validate(cur)
	if err != nil {
		return nil, fmt.Errorf("the configuration in Consul is refused: %w", err)
	}
	mode, count := dyn.SyncMode(), dyn.SyncCount()
	switch op {
	case syncAdd:
		if mode == "off" {
			return map[string]any{"synchronous_mode": "on", "synchronous_node_count": float64(1)}, nil
		}
		return map[string]any{"synchronous_node_count": float64(count + 1)}, nil
	case syncRemove:
		switch {
		case mode == "off":
			return nil, errSyncOff
		case count <= 1:
			return map[string]any{"synchronous_mode": "off"}, nil
		}
		return map[string]any{"synchronous_node_count": float64(count - 1)}, nil
	default:
		return map[string]any{"synchronous_mode": "quorum", "synchronous_node_count": float64(n)}, nil
	}
}
