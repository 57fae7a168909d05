package daemon

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
)

func hostPort(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }

// connURL is the member's published conn_url: where clients connect, without user or
// password; sslmode=require says the server accepts TLS connections only (clients that check
// the certificate ask for verify-full themselves).
func connURL(host string, port int, tls bool) string {
	u := "postgres://" + hostPort(host, port) + "/postgres"
	if tls {
		u += "?sslmode=require"
	}
	return u
}

// recentRestarts forgets the restarts in place older than ha.RestartWindow and counts the
// others.
func (m *pgMemory) recentRestarts(now time.Duration) int {
	m.restarts = slices.DeleteFunc(m.restarts, func(at time.Duration) bool { return now-at > ha.RestartWindow })
	return len(m.restarts)
}

// pgMemory is what the loop remembers of its PostgreSQL between cycles. Loop goroutine
// only.
type pgMemory struct {
	// startFailures counts consecutive failed starts (or crashes); lastStart is the last
	// start attempt.
	startFailures int
	lastStart     time.Time
	// restarts are the monotonic times (fence clock) of this leader's restarts in place
	// within ha.RestartWindow (recentRestarts).
	restarts []time.Duration
	// rewindFailedFor names the leader a pg_rewind failed against ("" when none).
	rewindFailedFor string
	// rewindRetries counts the pg_rewind runs in a row that failed before changing the data
	// directory (rewindAgain); rewindRetryAt is when the next may start (fence clock).
	rewindRetries int
	rewindRetryAt time.Duration
	// following is the member this standby was configured to follow.
	following string
	// timelinePID and standbyTimeline keep the highest timeline a running standby reported.
	timelinePID     int
	standbyTimeline int
	// cloneFromLeader makes the next clone take the leader as its source (reinitialize).
	cloneFromLeader bool
	// behindPID and behindSince: since when (monotonic) the running standby with that
	// postmaster pid has reported a timeline below the leader's (0 while it does not).
	behindPID   int
	behindSince time.Duration
	// silence is since when the running server has not answered (ha.Silence);
	// answerCheckedAt is when (monotonic) it was last asked for a new connection.
	silence         ha.Silence
	answerCheckedAt time.Duration
}

// observation is one cycle's view: the pure input plus the raw records the act step needs.
type observation struct {
	// backupQueue and backupSchedules are the backup keys (with their indexes for CAS).
	backupQueue        consul.BackupQueue
	backupSchedules    consul.BackupSchedules
	backupSchedulesIdx uint64
	in                 ha.Input
	pg                 pg.Status
	control            pg.ControlData
	members            map[string]consul.Member
	failover           *consul.Failover
	failIdx            uint64
	initIdx            uint64
	history            []consul.HistoryEntry
	histIdx            uint64
	dyn                dynconf.Config
	configIdx          uint64 // modify index of the config key (0 when absent)
	leaderIdx          uint64
	sync               syncObservation
	// steps bounds a leader's cycle (ha.Timings.LeaderSteps; zero when this node did not hold
	// the lock at the cycle's start), and clock relates them to context deadlines.
	steps ha.Steps
	clock cycleClock
}

// cycleClock is the cycle's one clock reading: the monotonic time the decision works with
// (fence.Now, the guard's clock) and the time.Time read with it, so a monotonic deadline
// becomes a context deadline.
type cycleClock struct {
	mono time.Duration
	wall time.Time
}

// readClock reads both clocks once.
func readClock() cycleClock { return cycleClock{mono: fence.Now(), wall: time.Now()} }

// at is the time.Time of the monotonic instant d.
func (c cycleClock) at(d time.Duration) time.Time { return c.wall.Add(d - c.mono) }

// bound returns ctx ending at the monotonic instant d as well (d == 0: ctx unchanged, with a
// no-op cancel).
func (c cycleClock) bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d == 0 {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, c.at(d))
}

// newObservation starts an observation at one clock reading, which the decision's Now is
// too: every silence and step of the observation counts from it. (An observation with no
// reading would count a server's silence from the monotonic clock's zero, which reads as
// silent since boot.)
func newObservation(members map[string]consul.Member) observation {
	o := observation{members: members, clock: readClock()}
	o.in.Now = o.clock.mono
	return o
}

// leaderSteps bounds the steps of a cycle starting at now: a node that holds a confirmed
// lock must confirm it again, or have failed to, before its fencing deadline, whatever
// Consul or PostgreSQL do meanwhile. With failsafe mode on (as last applied), the Consul
// calls leave the failsafe round its budget.
func (n *Node) leaderSteps(now time.Duration) ha.Steps {
	if !n.lock.Held || n.lock.ConfirmedAt == 0 {
		return ha.Steps{}
	}
	t := n.timings()
	return t.LeaderSteps(now, n.lock.Deadline(t, n.lead.AnnouncedTTL), n.conf.cfg.Failsafe())
}

// observe reads the local PostgreSQL and the cluster's keys. It never fails: what could not
// be read becomes a fact in the input (ConsulOK false, PG not running).
func (n *Node) observe(ctx context.Context) observation {
	o := newObservation(map[string]consul.Member{})
	o.steps = n.leaderSteps(o.clock.mono)
	// A leader's whole observation ends before its heartbeat's deadline.
	ctx, cancel := o.clock.bound(ctx, o.steps.Consul)
	defer cancel()
	in := &o.in
	in.Name = n.cfg.Name
	in.Timings = n.timings()
	in.NoFailover = n.cfg.tagBool("nofailover")
	in.FailoverPriority, _ = strconv.Atoi(n.cfg.Tags["failover_priority"])
	in.MaxStartFailures = n.cfg.MaxStartFailures
	in.RecloneOnRewindFailure = n.cfg.RecloneOnRewindFailure

	n.observePG(ctx, &o)
	n.observeConsul(ctx, &o)
	n.confirm.mu.Lock()
	n.lead = n.lead.ConfirmedBy(n.confirm.from, n.confirm.at)
	n.confirm.mu.Unlock()
	in.LockConfirmedAt = n.lock.ConfirmedAt
	in.LastLeader = n.lead.LastLeader
	in.LeaderSeenAt = n.lead.SeenAt
	in.AnnouncedTTL = n.lead.AnnouncedTTL
	n.probe(ctx, &o)
	n.observeLeaderTimeline(ctx, &o)
	if o.in.ConsulOK {
		n.observeSyncPG(&o)
		o.in.Sync = n.syncGate(&o)
		o.in.SyncManaged = o.syncManaged()
	}
	return o
}

func (n *Node) observePG(ctx context.Context, o *observation) {
	in := &o.in
	in.PG.StartFailures = n.pgMem.startFailures
	in.PG.RecentRestarts = n.pgMem.recentRestarts(fence.Now())
	st, err := n.pg.DataDirState()
	if err != nil || !st.Initialized {
		in.PG.DataEmpty = true
		n.pgMem.silence = ha.Silence{}
		return
	}
	if pid := n.pg.PID(); pid != 0 {
		// A leader's read must leave room for its heartbeat before the fencing deadline; a
		// replica's has no such deadline and waits for a busy server as long as it always did.
		budget := n.timings().RetryTimeout + time.Second
		if n.lock.Held {
			budget = n.timings().PGBudget()
		}
		cctx, cancel := context.WithTimeout(ctx, budget)
		defer cancel()
		cctx, cancelStep := o.clock.bound(cctx, o.steps.PG)
		defer cancelStep()
		// The postmaster first: the status read goes through a pooled backend, which still
		// answers while the postmaster accepts nothing (stopped, hung).
		s, err := pg.Status{}, n.postmasterAnswers(cctx, pid, in.Now)
		silent := err != nil
		if err == nil {
			s, err = n.pg.Status(cctx)
			// A refusal (starting up, shutting down) is an answer; no reply is not.
			silent = err != nil && !errors.Is(err, pg.ErrNotReady)
		}
		n.pgMem.silence = n.pgMem.silence.Next(pid, !silent, in.Now)
		in.PG.SilentFor = n.pgMem.silence.For(in.Now)
		if err == nil && s.Running {
			o.pg = s
			in.PG.Running = true
			in.PG.InRecovery = s.InRecovery
			in.PG.WasPrimary = !s.InRecovery
			in.PG.SystemID = s.SystemID
			in.PG.Timeline = s.Timeline
			in.PG.Streaming = s.ReceiverStatus == "streaming"
			in.PG.LSN = uint64(s.WriteLSN)
			if s.InRecovery {
				in.PG.LSN = uint64(max(s.ReceiveLSN, s.ReplayLSN))
				in.PG.Upstream = n.upstream()
				// Without a walreceiver a standby reports its last checkpoint's timeline, which
				// lags after it followed a promotion: keep the highest seen while it runs.
				if s.PID == n.pgMem.timelinePID {
					in.PG.Timeline = max(in.PG.Timeline, n.pgMem.standbyTimeline)
				}
				n.pgMem.timelinePID, n.pgMem.standbyTimeline = s.PID, in.PG.Timeline
			}
			return
		}
		if err != nil {
			n.logger.Debug("postgres runs but cannot be queried", "err", err, "silent_for", in.PG.SilentFor)
		}
		// Starting up, shutting down or overloaded: its role is unknown this cycle.
		in.PG.Running = true
		in.PG.Unknown = true
		return
	}
	n.pgMem.silence = ha.Silence{}
	// A stopped server: pg_controldata is a program to start, with the budget it always had.
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout+time.Second)
	defer cancel()
	cd, err := n.pg.ControlData(cctx)
	if err != nil {
		n.logger.Warn("read pg_controldata", "err", err)
		return
	}
	o.control = cd
	in.PG.SystemID = cd.SystemID
	in.PG.Timeline = cd.Timeline
	in.PG.LSN = uint64(cd.CheckpointLSN)
	in.PG.WasPrimary = wasPrimary(cd.State)
	in.PG.RewindFailed = n.pgMem.rewindFailedFor != ""
}

// wasPrimary reports whether a stopped data directory in pg_control state was last a
// primary's: running ("in production", so it crashed), stopped or stopping as one, or in
// the crash recovery of one. PostgreSQL enters crash recovery only without standby.signal
// or before a standby's first consistent point, so that data directory may hold WAL past a
// new leader's fork too. A leader whose restart in place was killed during crash recovery
// (a slow link: its guard fenced the new postmaster) once took such a directory for a
// standby's: it started it as one and promoted it, onto the very timeline the next leader
// chose, and pg_rewind, seeing both on one timeline, had nothing to do; the two histories
// stayed apart and the old primary never streamed (found by the primary-latency fault
// scenario under load).
func wasPrimary(state string) bool {
	switch state {
	case "in production", "shut down", "shutting down", "in crash recovery":
		return true
	}
	return false
}

// behindFor is how long the standby with postmaster pid has been behind the leader's
// timeline as of now (the cycle's clock). A restarted standby counts from its first cycle.
func (n *Node) behindFor(pid int, behind bool, now time.Duration) time.Duration {
	m := &n.pgMem
	if !behind {
		m.behindPID, m.behindSince = pid, 0
		return 0
	}
	if pid != m.behindPID || m.behindSince == 0 {
		m.behindPID, m.behindSince = pid, now
	}
	return now - m.behindSince
}

// divergeGrace is the least time a standby must look behind the leader's timeline before
// its WAL is checked against the leader's fork point. Until its walreceiver streams, a
// standby reports the timeline of its last restartpoint, which lags while it replays the
// newer timeline from pg_wal or the archive (a member just cloned from a backup): checking
// at once took such a standby for diverged and rewound it for nothing.
const divergeGrace = 30 * time.Second

// observeLeaderTimeline measures how long this standby, following the leader, has been
// behind the timeline the leader published, and once that lasted TTL reads the leader's
// timeline and its history from its PostgreSQL: the decision checks whether this standby
// holds WAL past the leader's fork point (ha.Diverged), which no walreceiver retry gets past.
func (n *Node) observeLeaderTimeline(ctx context.Context, o *observation) {
	in := &o.in
	pgs := &in.PG
	if !in.ConsulOK || !pgs.Running || !pgs.InRecovery || pgs.Unknown {
		return
	}
	leader := in.Leader.Name
	behind := false
	if in.Leader.Present && leader != n.cfg.Name && pgs.Upstream == leader && pgs.Timeline > 0 {
		for _, m := range in.Members {
			if m.Name == leader && m.Timeline > pgs.Timeline {
				behind = true
			}
		}
	}
	pgs.BehindFor = n.behindFor(o.pg.PID, behind, in.Now)
	if !behind || pgs.BehindFor < max(in.Timings.TTL, divergeGrace) {
		return
	}
	conn, err := n.memberConn(leader, false)
	if err != nil {
		n.logger.Debug("leader timeline", "err", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, probeTimeout(in.Timings))
	defer cancel()
	tli, hist, err := pg.PrimaryTimeline(cctx, conn)
	if err != nil {
		n.logger.Debug("leader timeline", "leader", leader, "err", err)
		return
	}
	in.LeaderTimeline = tli
	in.LeaderHistory = make([]ha.Fork, 0, len(hist))
	for _, h := range hist {
		in.LeaderHistory = append(in.LeaderHistory, ha.Fork{Timeline: h.Parent, LSN: uint64(h.LSN)})
	}
}

// upstream is the member this standby's primary_conninfo names, as remembered by the loop.
func (n *Node) upstream() string { return n.pgMem.following }

func (n *Node) observeConsul(ctx context.Context, o *observation) {
	in := &o.in
	// One budget for the cycle's Consul reads. A leader living on member confirmations keeps
	// it short, so a hanging (restarting) agent cannot delay the next confirmation past the
	// fencing deadline.
	budget := n.timings().RetryTimeout
	if n.failsafeActive {
		budget = min(budget, failsafeConsulBudget)
	}
	cctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	// Until the config key is read, the configuration in force is the last one applied.
	o.dyn = n.conf.cfg
	in.Paused = o.dyn.Pause
	in.MaximumLagOnFailover = o.dyn.MaximumLag()
	in.AnnouncedTTL = n.lead.AnnouncedTTL
	if err := n.ensureSession(cctx, false); err != nil {
		n.logger.Debug("session", "err", err)
	} else {
		in.SessionOK = true
	}
	in.Session = n.session
	pairs, err := n.store.List(cctx, "")
	if err != nil {
		n.logger.Debug("read cluster keys", "err", err)
		return
	}
	in.ConsulOK = true
	n.dcsLastSeen = time.Now()
	snap := consul.DecodeSnapshot(pairs)
	n.noteBadRecords(snap.Bad)
	in.Leader = ha.LeaderKey{Present: snap.LeaderPresent, Name: snap.LeaderName, Session: snap.LeaderSession}
	o.leaderIdx = snap.LeaderIndex
	if p := snap.Initialize; p != nil {
		in.Initialized = true
		o.initIdx = p.ModifyIndex
		in.ClusterSystemID = n.initializeValue(*p)
	}
	o.configIdx = snap.ConfigIndex
	o.failover, o.failIdx = snap.Failover, snap.FailoverIndex
	o.sync.key, o.sync.keyIdx = snap.Sync, snap.SyncIndex
	o.history, o.histIdx = snap.History, snap.HistoryIndex
	var announced time.Duration
	if st := snap.Status; st != nil {
		in.LeaderOptime = st.Optime
		announced = time.Duration(st.TTLms) * time.Millisecond
		if st.ArchivedWAL != "" {
			n.bk.leaderArchived = st.ArchivedWAL
		}
	}
	statusIdx := snap.StatusIndex
	o.backupQueue = snap.BackupQueue
	o.backupSchedules, o.backupSchedulesIdx = snap.BackupSchedules, snap.BackupSchedulesIndex
	for name, m := range snap.Members {
		o.members[name] = m
		n.members[name] = m
	}
	in.InitializeMine = n.initializeMine
	o.dyn = n.configInForce(cctx, snap.Config, snap.ConfigSeen, o.configIdx)
	n.applyTimings(o.dyn.Timings(), n.conf.source)
	in.Timings = n.timings()
	in.Paused = o.dyn.Pause
	in.Restoring = n.restoreInForce(o)
	in.OperatorStart, in.RestartOverdue = n.operatorStart()
	in.MaximumLagOnFailover = o.dyn.MaximumLag()
	n.lead = n.lead.Saw(ha.Sighting{Leader: in.Leader, StatusIndex: statusIdx, AnnouncedTTL: announced}, in.Now)
	if !in.HoldsLock() {
		n.lock.Held = false
	}
	for name, m := range o.members {
		in.Members = append(in.Members, memberView(name, m))
	}
	if last, ok := o.members[n.lead.LastLeader]; ok && !in.Leader.Present {
		in.LeaderReleased = last.Role == string(RoleDemoted) && last.State == "stopped"
	}
	if f := o.failover; f != nil {
		in.Switchover = &ha.Switchover{From: f.Leader, To: f.Member, Due: due(f.ScheduledAt), JobID: f.JobID}
	}
}

func due(scheduledAt string) bool {
	if scheduledAt == "" {
		return true
	}
	t, err := time.Parse(time.RFC3339, scheduledAt)
	return err != nil || !time.Now().Before(t)
}

func memberView(name string, m consul.Member) ha.Member {
	v := ha.Member{Name: name, Role: m.Role, State: m.State, LSN: m.XLogLocation, Timeline: m.Timeline}
	if m.ReceiveLSN != nil || m.ReplayLSN != nil {
		v.LSN = max(deref(m.ReceiveLSN), deref(m.ReplayLSN))
	}
	if b, ok := m.Tags["nofailover"].(bool); ok {
		v.NoFailover = b
	}
	if p, ok := m.Tags["failover_priority"].(float64); ok {
		v.FailoverPriority = int(p)
	}
	return v
}

// sessionRefused notes a Consul write refused for the node's session (lost, or not holding
// the key it should): the next ensureSession renews at once instead of trusting the last
// renewal. It returns err.
func (n *Node) sessionRefused(err error) error {
	if errors.Is(err, consul.ErrSessionLost) || errors.Is(err, consul.ErrConflict) {
		n.sessionRenewed.Store(0)
	}
	return err
}

func deref(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// sessionRenewShare is the share of the session's TTL after which the loop renews it.
// Consul ends a session only 2 × TTL after its last renewal, so a renewal every quarter
// TTL (2.5 s at the 10 s default) leaves that TTL seven times over, and spares two Consul
// writes of every three on a node cycling each second. The leader's heartbeat proves every
// cycle that its session still holds the lock; a write refused for the session makes the
// next cycle renew at once (sessionRefused).
const sessionRenewShare = 4

// ensureSession renews the node's session when a renewal is due (or forced) and creates a
// new one when it is gone.
func (n *Node) ensureSession(ctx context.Context, force bool) error {
	if n.session != "" {
		if !force && fence.Now()-time.Duration(n.sessionRenewed.Load()) < n.cfg.SessionTTL/sessionRenewShare {
			return nil
		}
		start := fence.Now()
		err := n.consul.RenewSession(ctx, n.session)
		if err == nil {
			n.sessionRenewed.Store(int64(start))
			return nil
		}
		if !errors.Is(err, consul.ErrSessionLost) {
			return err
		}
		n.logger.Warn("session lost; creating a new one", "session_id", n.session)
		n.session = ""
	}
	start := fence.Now()
	id, err := n.consul.CreateSession(ctx, consul.SessionOptions{
		Name:      n.cfg.Scope + "-" + n.cfg.Name,
		TTL:       n.cfg.SessionTTL,
		LockDelay: n.cfg.LockDelay,
	})
	if err != nil {
		return err
	}
	n.session = id
	n.sessionRenewed.Store(int64(start))
	n.logger.Info("session created", "session_id", id)
	return nil
}
