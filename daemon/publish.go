package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/url"
	"strconv"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/routing"
)

// setState shows a transitional state (creating replica, starting, promoting) at once,
// without waiting for the end of the cycle.
func (n *Node) setState(s string) {
	n.state = s
	if cur := n.Status(); cur != nil {
		next := *cur
		next.State = s
		n.status.Store(&next)
	}
}

// publish writes the member record, reconciles routing and stores the status snapshot.
func (n *Node) publish(ctx context.Context, o *observation, p ha.Plan) {
	// Re-read the local server after acting: the plan may have changed its role.
	if len(p.Actions) > 0 && !(len(p.Actions) == 1 && p.Actions[0].Kind == ha.ActHeartbeat) {
		// With a clock reading of its own: a server first seen silent here is silent from
		// now (a zero reading fenced a primary one cycle into a short stall).
		fresh := newObservation(o.members)
		n.observePG(ctx, &fresh)
		o.pg, o.control, o.in.PG = fresh.pg, fresh.control, fresh.in.PG
	}
	st := n.buildStatus(o, p)
	n.status.Store(st)
	n.state = ""
	if st.Role != n.lastRole {
		n.logger.Info("role", "role", st.Role, "timeline", st.Timeline, "has_lock", st.HasLock)
		n.lastRole = st.Role
	}
	if !o.in.ConsulOK || n.session == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	// A leader's publication ends when its next heartbeat is due: the record can wait a
	// cycle, the confirmation cannot.
	clock := readClock()
	if until := n.lock.WorkUntil(clock.mono, n.timings(), n.lead.AnnouncedTTL); until > 0 {
		var cancelBeat context.CancelFunc
		cctx, cancelBeat = clock.bound(cctx, until)
		defer cancelBeat()
	}
	n.writeMember(cctx, o, p, st)
	if n.registry != nil {
		if err := n.registry.Reconcile(cctx, n.routingWant(st)); err != nil {
			if n.registry.Failures() == 1 {
				n.logger.Warn("reconcile routing", "err", err)
			} else {
				n.logger.Debug("reconcile routing", "err", err)
			}
		}
	}
}

// memberRefresh is how often the member key is rewritten when nothing in it changed: its
// dcs_last_seen then tells readers the member is alive, at two writes a minute instead of
// one per cycle.
const memberRefresh = 30 * time.Second

// memberWrite is what this node last wrote to its member key. Loop goroutine only.
type memberWrite struct {
	record  []byte // the record without dcs_last_seen
	session string
	at      time.Time
}

// writeMember acquires members/<name> with this node's record when it changed: when the
// record (dcs_last_seen aside) differs from the last one written, the session changed, the
// cycle acted (an action may have written the key itself, e.g. a release), the key read
// this cycle differs or is missing (deleted by hand, or with a lost session), or
// memberRefresh passed. A steady idle node writes it twice a minute.
func (n *Node) writeMember(ctx context.Context, o *observation, p ha.Plan, st *Status) {
	rec := n.memberRecord(st)
	key := memberContent(rec)
	have, seen := o.members[n.cfg.Name]
	last := n.memberWritten
	if !acted(p) && seen && bytes.Equal(memberContent(have), key) && bytes.Equal(last.record, key) &&
		last.session == n.session && time.Since(last.at) < memberRefresh {
		return
	}
	b, _ := json.Marshal(rec)
	if err := n.sessionRefused(n.store.Acquire(ctx, consul.MemberKey(n.cfg.Name), b, n.session)); err != nil {
		n.logger.Debug("publish member", "err", err)
		n.memberWritten = memberWrite{}
		return
	}
	n.memberWritten = memberWrite{record: key, session: n.session, at: time.Now()}
}

// memberContent is a member record's JSON without dcs_last_seen, which changes every
// second and alone is no reason to write.
func memberContent(m consul.Member) []byte {
	m.DCSLastSeen = 0
	b, _ := json.Marshal(m)
	return b
}

// acted reports whether the plan did more than the leader's heartbeat.
func acted(p ha.Plan) bool {
	return len(p.Actions) > 0 && !(len(p.Actions) == 1 && p.Actions[0].Kind == ha.ActHeartbeat)
}

func (n *Node) buildStatus(o *observation, p ha.Plan) *Status {
	in := o.in
	t := n.timings()
	s := &Status{
		CycleAt:              time.Now(),
		Scope:                n.cfg.Scope,
		Name:                 n.cfg.Name,
		Version:              Version,
		Leader:               in.Leader.Name,
		ClusterUnlocked:      !in.Leader.Present,
		Paused:               in.Paused,
		FailsafeActive:       n.failsafeActive && !in.ConsulOK,
		PGRunning:            in.PG.Running && o.pg.Running,
		ServerVersion:        o.pg.ServerVersion,
		Timeline:             in.PG.Timeline,
		PostmasterStart:      o.pg.StartTime,
		Tags:                 n.cfg.publishedTags(),
		DCSReachable:         in.ConsulOK,
		DCSLastSeen:          n.dcsLastSeen,
		TTL:                  t.TTL,
		LoopWait:             t.LoopWait,
		Timings:              statusTimings(t),
		Config:               ConfigStatus{Source: n.conf.source, Refusal: n.conf.refusal, EnvironmentDiffers: n.conf.envDiffers, Index: n.conf.index},
		MaximumLagOnFailover: in.MaximumLagOnFailover,
		LeaderOptime:         in.LeaderOptime,
		Plan:                 p.String(),
		ScheduledRestart:     n.ScheduledRestart(),
	}
	if in.PG.SystemID != 0 {
		s.SystemID = strconv.FormatUint(in.PG.SystemID, 10)
	}
	// Holding the lock means: the key is ours (or Consul is away) and the fencing deadline
	// has not passed.
	s.HasLock = n.lock.Valid(fence.Now(), n.timings(), n.lead.AnnouncedTTL)
	if s.HasLock {
		s.Leader = n.cfg.Name
	}
	switch {
	case in.PG.DataEmpty:
		s.Role, s.State = RoleUninitialized, "stopped"
	case s.PGRunning && !o.pg.InRecovery:
		s.Role, s.State = RolePrimary, "running"
		s.WALLocation = uint64(o.pg.WriteLSN)
		if s.HasLock {
			s.LeaderOptime = s.WALLocation
		}
		for _, r := range o.pg.Replication {
			s.Replication = append(s.Replication, Replica{ApplicationName: r.ApplicationName, ClientAddr: r.ClientAddr,
				State: r.State, SyncState: r.SyncState, SyncPriority: r.SyncPriority, Usename: r.Usename,
				ReplayLSN: uint64(r.ReplayLSN), ReplayLag: r.ReplayLag})
		}
	case s.PGRunning:
		s.Role, s.State = RoleReplica, "running"
		s.ReceiveLSN, s.ReplayLSN = uint64(o.pg.ReceiveLSN), uint64(o.pg.ReplayLSN)
		s.ReplayPaused, s.ReplayTimestamp = o.pg.ReplayPaused, o.pg.ReplayTimestamp
		s.ReplicationState = "in archive recovery"
		if o.pg.ReceiverStatus == "streaming" {
			s.ReplicationState = "streaming"
		}
	case in.PG.WasPrimary:
		s.Role, s.State = RoleDemoted, "stopped"
	default:
		s.Role, s.State = RoleReplica, "stopped"
	}
	if !s.PGRunning && n.pgMem.startFailures > 0 {
		s.State = "start failed"
	}
	if s.PGRunning {
		s.Connections, s.XactCommit, s.XactRollback = o.pg.Connections, o.pg.XactCommit, o.pg.XactRollback
		now := xactReading{at: s.CycleAt, commit: s.XactCommit, rollback: s.XactRollback}
		s.CommitRate, s.RollbackRate = n.xactSeen.rates(now)
		n.xactSeen = now
	} else {
		n.xactSeen = xactReading{}
	}
	if s.HasLock && s.Role == RolePrimary {
		s.Slots = n.slots
	}
	if f := o.failover; f != nil {
		s.Switchover = &PendingSwitchover{Leader: f.Leader, Candidate: f.Member, ScheduledAt: f.ScheduledAt, JobID: f.JobID}
	}
	s.SyncDegraded = n.syncDegraded(o, s)
	s.ParameterErrors = n.paramErrors
	s.Backup = n.backupStatus(o)
	s.SyncStandby, s.QuorumStandby = n.syncRole(o)
	if s.Role == RolePrimary {
		s.SyncStandby, s.QuorumStandby = false, false
	}
	if o.pg.PendingRestart {
		s.PendingRestart = true
		s.PendingRestartReasons = map[string]PendingChange{}
		for k, v := range o.pg.PendingRestartReasons {
			s.PendingRestartReasons[k] = PendingChange{OldValue: v[0], NewValue: v[1]}
		}
	}
	for name, m := range o.members {
		ms := MemberStatus{Name: name, Role: m.Role, State: m.State, APIURL: m.APIURL, Timeline: m.Timeline, Tags: m.Tags,
			ReceiveLSN: deref(m.ReceiveLSN), ReplayLSN: deref(m.ReplayLSN), LSN: m.XLogLocation, PendingRestart: m.PendingRestart,
			ServerVersion: m.ServerVersion, ReplicationState: m.ReplicationState}
		ms.Host, ms.Port = connHostPort(m.ConnURL)
		if sr := m.ScheduledRestart; sr != nil {
			ms.ScheduledRestart, ms.ScheduledRestartPostmaster = sr.Schedule, sr.PostmasterStartTime
		}
		if name == in.Leader.Name {
			ms.Role = "leader"
		} else {
			if r := syncMemberRole(o, name); r != "" {
				ms.Role = r
			}
			if pos := max(ms.ReceiveLSN, ms.ReplayLSN, ms.LSN); s.LeaderOptime > pos {
				ms.Lag = s.LeaderOptime - pos
			}
		}
		s.Members = append(s.Members, ms)
	}
	return s
}

// syncMemberRole is "sync_standby" or "quorum_standby" for a member of the sync key (as
// Patroni's /cluster shows it), "" otherwise.
func syncMemberRole(o *observation, name string) string {
	mode := o.dyn.SyncMode()
	if mode == "off" || o.sync.key == nil || !contains(o.sync.published().Names, name) {
		return ""
	}
	if mode == "quorum" {
		return "quorum_standby"
	}
	return "sync_standby"
}

func (n *Node) memberRecord(st *Status) consul.Member {
	m := consul.Member{
		ConnURL:        n.connURL,
		APIURL:         n.cfg.APIURL,
		State:          st.State,
		Role:           string(st.Role),
		Version:        Version,
		Timeline:       st.Timeline,
		Tags:           st.Tags,
		PendingRestart: st.PendingRestart,
		ServerVersion:  st.ServerVersion,
		Pause:          st.Paused,
		DCSLastSeen:    st.DCSLastSeen.Unix(),
	}
	if n.backupsFromStandby() {
		n.bk.mu.Lock()
		m.DataDir, m.SocketDir = n.bk.member.DataDir, n.bk.member.SocketDir
		n.bk.mu.Unlock()
	}
	if sr := st.ScheduledRestart; sr != nil {
		m.ScheduledRestart = &consul.ScheduledRestart{Schedule: sr.Schedule.Format(time.RFC3339)}
		if !sr.PostmasterStart.IsZero() {
			m.ScheduledRestart.PostmasterStartTime = sr.PostmasterStart.Format(time.RFC3339Nano)
		}
	}
	if st.Role == RolePrimary {
		m.XLogLocation = st.WALLocation
	} else {
		rcv, rep := st.ReceiveLSN, st.ReplayLSN
		m.ReceiveLSN, m.ReplayLSN = &rcv, &rep
		m.XLogLocation = max(rcv, rep)
		m.ReplicationState = st.ReplicationState
	}
	return m
}

// publishStopped announces that this node's PostgreSQL is stopped and it no longer leads:
// replicas that see it may race at once instead of waiting for TTL.
func (n *Node) publishStopped(ctx context.Context, o *observation) {
	st := n.Status()
	if st == nil {
		return
	}
	next := *st
	next.Role, next.State, next.HasLock, next.PGRunning = RoleDemoted, "stopped", false, false
	n.status.Store(&next)
	if n.session == "" {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	b, _ := json.Marshal(n.memberRecord(&next))
	if err := n.store.Acquire(cctx, consul.MemberKey(n.cfg.Name), b, n.session); err != nil {
		n.logger.Warn("publish stopped member", "err", err)
	}
}

// connHostPort extracts host and port from a conn_url.
func connHostPort(connURL string) (string, int) {
	u, err := url.Parse(connURL)
	if err != nil {
		return "", 0
	}
	port, _ := strconv.Atoi(u.Port())
	return u.Hostname(), port
}

// routingWant maps the status to what clients should see. A primary is announced only
// while it holds the lock and accepts writes; a replica's read-pool membership depends on
// its replay lag (what a read on it misses) and the noloadbalance tag; its sync state comes
// from the sync key as the status carries it (async when not named there).
func (n *Node) routingWant(st *Status) routing.Want {
	pc := n.pg.Config()
	addr := pc.ConnectAddr
	if addr == "" {
		addr = pc.ListenAddr
	}
	switch addr {
	case "*", "0.0.0.0", "::":
		addr = "" // Consul then answers with the agent's node address
	}
	noLB, _ := st.Tags["noloadbalance"].(bool)
	w := routing.Want{Scope: n.cfg.Scope, Node: n.cfg.Name, Address: addr, Port: pc.Port, Role: routing.RoleNone,
		Leader: st.HasLock, NoLoadBalance: noLB, Timeline: st.Timeline, Output: st.Plan, APIURL: n.cfg.APIURL,
		TLS: pc.TLSEnabled(), CheckTTL: n.timings().FenceAfter()}
	switch {
	case st.Role == RolePrimary && st.HasLock:
		w.Role, w.Healthy, w.LSN = routing.RolePrimary, true, st.WALLocation
	case st.Role == RoleReplica && st.PGRunning:
		w.Role, w.Healthy = routing.RoleReplica, st.ReplicationState == "streaming"
		w.LSN = max(st.ReceiveLSN, st.ReplayLSN)
		if st.LeaderOptime > st.ReplayLSN {
			w.LagBytes = st.LeaderOptime - st.ReplayLSN
		}
		switch {
		case st.SyncStandby:
			w.SyncState = routing.SyncSync
		case st.QuorumStandby:
			w.SyncState = routing.SyncQuorum
		default:
			w.SyncState = routing.SyncAsync
		}
	}
	return w
}

// xactReading is one cycle's reading of the transaction counters.
type xactReading struct {
	at               time.Time
	commit, rollback int64
}

// rates are the commits and rollbacks per second from r to next: 0 when r is unset, no time
// passed, or a counter went back (statistics reset, another server).
func (r xactReading) rates(next xactReading) (commit, rollback float64) {
	dt := next.at.Sub(r.at).Seconds()
	if r.at.IsZero() || dt <= 0 || next.commit < r.commit || next.rollback < r.rollback {
		return 0, 0
	}
	return float64(next.commit-r.commit) / dt, float64(next.rollback-r.rollback) / dt
}

// statusTimings are the timings in force as the status reports them.
func statusTimings(t ha.Timings) Timings {
	return Timings{TTL: t.TTL, LoopWait: t.LoopWait, RetryTimeout: t.RetryTimeout, FenceMargin: t.FenceMargin,
		PGUnresponsiveTimeout: t.PGUnresponsiveTimeout}
}
