package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
)

// Bounds of the long actions. Each says why it has its value.
const (
	// cloneTimeout bounds pg_basebackup: large databases take long; the loop is blocked
	// meanwhile, which is fine for a node that has nothing else to do.
	cloneTimeout = 6 * time.Hour
	// rewindTimeout bounds pg_rewind, which copies only changed blocks.
	rewindTimeout = 30 * time.Minute
	// startTimeout bounds a PostgreSQL start including crash recovery.
	startTimeout = 5 * time.Minute
	// replayTimeout bounds the wait for received WAL to be replayed before a promotion.
	replayTimeout = 10 * time.Second
	// promoteTimeout bounds pg_promote.
	promoteTimeout = 30 * time.Second
	// fenceStopTimeout bounds an immediate stop when fencing.
	fenceStopTimeout = 5 * time.Second
	// stopTimeout bounds a clean stop before it escalates to immediate.
	stopTimeout = 30 * time.Second
)

// act runs the plan in order and stops at the first failure.
// Each action runs in its own span (telemetry.go) and is counted.
func (n *Node) act(ctx context.Context, o *observation, p ha.Plan) error {
	t := n.telemetry()
	for _, a := range p.Actions {
		at := n.startAction(ctx, t, o, p, a)
		err := n.do(at.ctx, o, a)
		at.end(err)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Kind, err)
		}
	}
	return nil
}

func (n *Node) do(ctx context.Context, o *observation, a ha.Action) error {
	switch a.Kind {
	case ha.ActBootstrap:
		return n.bootstrap(ctx)
	case ha.ActClaimInitialize:
		return n.claimInitialize(ctx, o)
	case ha.ActClone:
		return n.clone(ctx, a.Target)
	case ha.ActReclone:
		if err := n.removeDataDir(); err != nil {
			return err
		}
		n.pgMem.rewindFailedFor = ""
		return n.clone(ctx, a.Target)
	case ha.ActRewind:
		return n.rewind(ctx, a.Target)
	case ha.ActStartReplica:
		return n.startReplica(ctx, a.Target)
	case ha.ActFollow:
		return n.follow(ctx, a.Target)
	case ha.ActHeartbeat:
		return n.heartbeat(ctx, o)
	case ha.ActFailsafe:
		return n.failsafe(ctx, o)
	case ha.ActStartPrimary:
		return n.startPrimary(ctx, o)
	case ha.ActAcquire:
		return n.acquire(ctx, o, a.Session)
	case ha.ActPromote:
		return n.promote(ctx, o)
	case ha.ActSwitchover:
		return n.switchover(ctx, o, a.Target)
	case ha.ActRejectSwitchover:
		return n.rejectSwitchover(ctx, o)
	case ha.ActFence:
		return n.fence(ctx, "lost the leader lock")
	case ha.ActRelease:
		return n.release(ctx, o, "handing over")
	case ha.ActSyncStandbys:
		return n.syncStandbys(ctx, o)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// bootstrap races for the initialize key, then creates the cluster.
func (n *Node) bootstrap(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	err := n.store.CAS(cctx, consul.KeyInitialize, nil, 0)
	cancel()
	if errors.Is(err, consul.ErrConflict) {
		n.logger.Info("another node won the bootstrap race")
		return nil
	}
	if err != nil {
		return fmt.Errorf("race for initialize: %w", err)
	}
	n.initializeMine = true
	n.setState("initializing new cluster")
	if err := n.createCluster(ctx); err != nil {
		// Give the race back so another node (or a retry) can bootstrap.
		dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), n.timings().RetryTimeout)
		defer dcancel()
		_ = n.store.Delete(dctx, consul.KeyInitialize)
		n.initializeMine = false
		return err
	}
	return nil
}

func (n *Node) createCluster(ctx context.Context) error {
	bctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.pg.Initdb(bctx); err != nil {
		return fmt.Errorf("initdb: %w", err)
	}
	if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := n.startPG(bctx); err != nil {
		return err
	}
	if err := n.pg.EnsureRoles(bctx); err != nil {
		return fmt.Errorf("create roles: %w", err)
	}
	st, err := n.pg.Status(bctx)
	if err != nil {
		return fmt.Errorf("status after initdb: %w", err)
	}
	if err := n.takeLock(ctx, ""); err != nil {
		return err
	}
	cctx, ccancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer ccancel()
	p, err := n.store.Get(cctx, consul.KeyInitialize, true)
	if err != nil {
		return fmt.Errorf("read initialize: %w", err)
	}
	if err := n.store.CAS(cctx, consul.KeyInitialize, []byte(strconv.FormatUint(st.SystemID, 10)), p.ModifyIndex); err != nil {
		return fmt.Errorf("record system identifier: %w", err)
	}
	n.initializeMine = false
	n.logger.Info("cluster bootstrapped", "system_id", st.SystemID)
	// Publish the defaults in force as the dynamic configuration, as Patroni does at
	// bootstrap (tools such as patronictl expect the key). Create-only: a configuration an
	// operator wrote beforehand wins.
	if err := n.store.CAS(cctx, consul.KeyConfig, bootstrapDocument(n.cfg.Timings()), 0); err != nil && !errors.Is(err, consul.ErrConflict) {
		n.logger.Warn("write initial dynamic configuration", "err", err)
	}
	return nil
}

func (n *Node) claimInitialize(ctx context.Context, o *observation) error {
	if o.in.PG.SystemID == 0 {
		return errors.New("unknown local system identifier")
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	err := n.store.CAS(cctx, consul.KeyInitialize, []byte(strconv.FormatUint(o.in.PG.SystemID, 10)), 0)
	if errors.Is(err, consul.ErrConflict) {
		return nil
	}
	return err
}

// errNotPublished: a member (typically a leader that just bootstrapped) has not published
// its record yet; the next cycle tries again. Not worth an error in the log.
var errNotPublished = errors.New("member record not published yet")

// memberConn returns how to reach a member's PostgreSQL with this node's credentials.
func (n *Node) memberConn(name string, replication bool) (pg.ConnParams, error) {
	m, ok := n.members[name]
	if !ok || m.ConnURL == "" {
		return pg.ConnParams{}, fmt.Errorf("member %s has no conn_url: %w", name, errNotPublished)
	}
	u, err := url.Parse(m.ConnURL)
	if err != nil {
		return pg.ConnParams{}, fmt.Errorf("member %s conn_url: %w", name, err)
	}
	port, _ := strconv.Atoi(u.Port())
	base := n.pg.LocalConn()
	if replication {
		base = n.pg.ReplicationConn()
	}
	base.Host, base.Port = u.Hostname(), port
	return base, nil
}

func (n *Node) clone(ctx context.Context, leader string) error {
	src := leader
	if cf := n.cloneSource(); cf != "" && !n.pgMem.cloneFromLeader {
		src = cf
	}
	conn, err := n.memberConn(src, true)
	if err != nil {
		return err
	}
	n.setState("creating replica")
	n.logger.Info("cloning", "from", src)
	cctx, cancel := context.WithTimeout(ctx, cloneTimeout)
	defer cancel()
	if err := n.pg.Basebackup(cctx, conn, ""); err != nil {
		return fmt.Errorf("clone from %s: %w", src, err)
	}
	return nil
}

// cloneSource is a running replica tagged clonefrom, to spare the primary.
func (n *Node) cloneSource() string {
	for name, m := range n.members {
		if name == n.cfg.Name || m.Role != string(RoleReplica) || m.State != "running" {
			continue
		}
		if b, ok := m.Tags["clonefrom"].(bool); ok && b {
			return name
		}
	}
	return ""
}

func (n *Node) removeDataDir() error {
	dir := n.pg.Config().DataDir
	n.logger.Warn("removing the data directory to clone it again", "data_dir", dir)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove data dir: %w", err)
	}
	return nil
}

func (n *Node) rewind(ctx context.Context, leader string) error {
	conn, err := n.memberConn(leader, false)
	if err != nil {
		return err
	}
	n.setState("rewinding")
	rctx, cancel := context.WithTimeout(ctx, rewindTimeout)
	defer cancel()
	if err := n.pg.Rewind(rctx, conn); err != nil {
		n.pgMem.rewindFailedFor = leader
		return fmt.Errorf("pg_rewind from %s: %w", leader, err)
	}
	n.logger.Info("pg_rewind done", "from", leader)
	return nil
}

func (n *Node) standbySettings(leader string) (pg.Settings, error) {
	if leader == "" {
		return pg.Settings{Standby: true}, nil
	}
	conn, err := n.memberConn(leader, true)
	if err != nil {
		return pg.Settings{}, err
	}
	return pg.Settings{
		Standby:         true,
		PrimaryConnInfo: pg.PrimaryConnInfo(conn, n.cfg.Name),
		PrimarySlotName: pg.SlotName(n.cfg.Name),
	}, nil
}

func (n *Node) startReplica(ctx context.Context, leader string) error {
	s, err := n.standbySettings(leader)
	if err != nil {
		return err
	}
	if _, err := n.pg.WriteConfig(s); err != nil {
		return fmt.Errorf("write standby config: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.startPG(sctx); err != nil {
		return err
	}
	n.pgMem.following = leader
	return nil
}

func (n *Node) follow(ctx context.Context, leader string) error {
	s, err := n.standbySettings(leader)
	if err != nil {
		return err
	}
	restart, err := n.pg.WriteConfig(s)
	if err != nil {
		return fmt.Errorf("write standby config: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if restart {
		if err := n.pg.Stop(cctx, pg.StopFast); err != nil {
			return fmt.Errorf("restart to follow %s: %w", leader, err)
		}
		if err := n.startPG(cctx); err != nil {
			return err
		}
	} else if err := n.pg.Reload(cctx); err != nil {
		return fmt.Errorf("reload to follow %s: %w", leader, err)
	}
	n.pgMem.following = leader
	n.logger.Info("following", "leader", leader)
	return nil
}

// startPG starts PostgreSQL and counts failures for the bounded-restart rule.
func (n *Node) startPG(ctx context.Context) error {
	n.setState("starting")
	n.pgMem.lastStart = time.Now()
	if err := n.pg.Start(ctx); err != nil {
		n.pgMem.startFailures++
		n.setState("start failed")
		return fmt.Errorf("start postgres (failure %d): %w", n.pgMem.startFailures, err)
	}
	return nil
}

// takeLock acquires the leader key with this node's session, destroying a dead leader's
// session first, and arms the fence guard from the start of the attempt.
func (n *Node) takeLock(ctx context.Context, deadSession string) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if deadSession != "" && deadSession != n.session {
		if err := n.consul.DestroySession(cctx, deadSession); err != nil {
			return fmt.Errorf("destroy the dead leader's session: %w", err)
		}
	} else if deadSession != "" {
		// Our own old session still names us: release, then take with the new one.
		_ = n.store.Release(cctx, consul.KeyLeader, deadSession)
	}
	// After destroying a session Consul refuses its keys for the lock delay; retry a few
	// times within a bound instead of losing a whole cycle.
	var start time.Duration
	var err error
	for i := range 5 {
		start = fence.Now()
		err = n.store.Acquire(cctx, consul.KeyLeader, []byte(n.cfg.Name), n.session)
		if err == nil || deadSession == "" || !errors.Is(err, consul.ErrConflict) {
			break
		}
		select {
		case <-cctx.Done():
		case <-time.After(n.cfg.LockDelay + time.Duration(i+1)*10*time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("acquire leader lock: %w", err)
	}
	n.confirmed(start)
	n.logger.Info("leader lock acquired", "session_id", n.session)
	return nil
}

// confirmed records a successful confirmation of leadership that started at start and moves
// the fence guard's deadline to ha.Lock.Deadline: start + TTL - FenceMargin, never past what
// the replicas were last told (ha.Timings.FenceWindow).
func (n *Node) confirmed(start time.Duration) {
	n.lock = ha.Lock{Held: true, ConfirmedAt: start}
	if pid := n.pg.PID(); pid > 0 {
		if err := n.guard.Arm(pid, n.fenceDeadline()); err != nil {
			n.logger.Error("arm fence guard", "err", err)
		}
	}
}

func (n *Node) acquire(ctx context.Context, o *observation, dead string) error {
	return n.takeLock(ctx, dead)
}

// heartbeat re-acquires the leader key (proof that the session holds it) and publishes the
// optime. Success moves the fencing deadline.
func (n *Node) heartbeat(ctx context.Context, o *observation) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	start := fence.Now()
	optime := o.in.LeaderOptime
	if o.pg.Running && !o.pg.InRecovery {
		optime = uint64(o.pg.WriteLSN)
	}
	if err := n.writeHeartbeat(cctx, optime); err != nil {
		// Consul may answer reads before writes, or not know a session yet, while a server
		// recovers. Confirm directly with the members instead: each confirms only the leader
		// it knows, so a node that really lost the lock to another gets no confirmation.
		if ferr := n.failsafe(ctx, o); ferr != nil {
			n.lock.Held = false
			return fmt.Errorf("leader heartbeat: %w; failsafe: %w", err, ferr)
		}
		n.logger.Warn("heartbeat failed; leadership confirmed by every member", "err", err)
		return nil
	}
	n.confirmed(start)
	n.failsafeActive = false
	if o.pg.Running && !o.pg.InRecovery {
		n.pgMem.startFailures = 0
		n.maintainSlots(cctx, o)
	}
	return nil
}

// writeHeartbeat writes the status key (optime, a counter, the TTL in force) in a
// transaction that succeeds only while this node's session holds the leader key. On success
// the replicas race no earlier than that TTL after it.
func (n *Node) writeHeartbeat(ctx context.Context, optime uint64) error {
	n.heartbeats++
	ttl := n.timings().TTL
	b, _ := json.Marshal(consul.Status{Optime: optime, Heartbeat: n.heartbeats, TTLms: uint64(ttl.Milliseconds())})
	if err := n.store.PutIfHeld(ctx, consul.KeyLeader, n.session, consul.KeyStatus, b); err != nil {
		return err
	}
	n.lead.AnnouncedTTL = ttl
	return nil
}

// beatNow is a heartbeat in the middle of a leader's own work that took long (a promotion
// after the replay, a start of PostgreSQL): the fencing deadline then counts from now, not
// from the start of the cycle, and the replicas see the new position at once. A failure is
// only logged: the next cycle's heartbeat decides.
func (n *Node) beatNow(ctx context.Context, optime uint64) {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	start := fence.Now()
	if err := n.writeHeartbeat(cctx, optime); err != nil {
		n.logger.Warn("heartbeat after the leader's own work", "err", err)
		return
	}
	n.confirmed(start)
}

// maintainSlots keeps a physical slot per member on the leader and drops slots of members
// gone longer than MemberSlotsTTL.
func (n *Node) maintainSlots(ctx context.Context, o *observation) {
	want := []string{}
	wanted := map[string]bool{}
	for name := range o.members {
		if name == n.cfg.Name {
			continue
		}
		s := pg.SlotName(name)
		want = append(want, s)
		wanted[s] = true
		delete(n.slotsGoneSince, s)
	}
	if err := n.pg.EnsureSlots(ctx, want); err != nil {
		n.logger.Warn("ensure replication slots", "err", err)
	}
	slots, err := n.pg.Slots(ctx)
	if err != nil {
		return
	}
	for _, s := range slots {
		if wanted[s.Name] || s.Active || s.Name == pg.SlotName(n.cfg.Name) {
			continue
		}
		since, ok := n.slotsGoneSince[s.Name]
		if !ok {
			n.slotsGoneSince[s.Name] = time.Now()
			continue
		}
		if time.Since(since) > n.slotsTTL(o) {
			if err := n.pg.DropSlot(ctx, s.Name); err == nil {
				n.logger.Info("dropped slot of a departed member", "slot", s.Name)
				delete(n.slotsGoneSince, s.Name)
			}
		}
	}
}

// failsafe asks every known member to confirm this leader while Consul is away. Only when all
// confirm does the deadline move: a member that confirmed will not race for TTL after it.
func (n *Node) failsafe(ctx context.Context, o *observation) error {
	if !o.dyn.Failsafe() {
		return errors.New("failsafe mode is off")
	}
	start := fence.Now()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for name, m := range n.members {
		if name == n.cfg.Name {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := n.postFailsafe(ctx, m.APIURL); err != nil {
				mu.Lock()
				failed = append(failed, name)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(failed) > 0 {
		return fmt.Errorf("members did not confirm: %v", failed)
	}
	n.confirmed(start)
	n.failsafeActive = true
	return nil
}

func (n *Node) startPrimary(ctx context.Context, o *observation) error {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if o.in.PG.WasPrimary {
		if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(sctx); err != nil {
			return err
		}
	} else {
		// The data directory is a standby's: start it as one, then promote, so the new
		// history gets its own timeline.
		s := n.primarySettings()
		s.Standby = true
		if _, err := n.pg.WriteConfig(s); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(sctx); err != nil {
			return err
		}
		if err := n.pg.Promote(sctx); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
	}
	n.confirmed(n.lock.ConfirmedAt)
	if st, err := n.pg.Status(sctx); err == nil {
		n.beatNow(ctx, uint64(st.WriteLSN))
	}
	n.logger.Info("postgres restarted in place as primary")
	return nil
}

// promote turns this standby into the primary: replay what was received, promote, then
// record history and status. The lock is held (checked by Decide).
func (n *Node) promote(ctx context.Context, o *observation) error {
	oldTL := o.in.PG.Timeline
	rctx, cancel := context.WithTimeout(ctx, replayTimeout)
	lsn, err := n.pg.WaitReplayed(rctx)
	cancel()
	if err != nil {
		n.logger.Warn("replay did not finish before promotion", "err", err)
	}
	if err := n.beforePromote(ctx, o); err != nil {
		return err
	}
	pctx, pcancel := context.WithTimeout(ctx, promoteTimeout)
	defer pcancel()
	n.setState("promoting")
	if err := n.pg.Promote(pctx); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.confirmed(n.lock.ConfirmedAt) // arm the guard on the now writable postmaster
	n.beatNow(ctx, uint64(lsn))
	n.pgMem.following = ""
	n.pgMem.startFailures = 0
	reason := "failover"
	if o.failover != nil && (o.failover.Member == n.cfg.Name || o.failover.Leader != "") {
		reason = "switchover" // named or not, a planned handover
	}
	n.logger.Info("promoted", "timeline", oldTL+1, "lsn", pg.LSN(lsn), "reason", reason)
	cctx, ccancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer ccancel()
	n.maintainSlots(cctx, o)
	n.appendHistory(cctx, o, consul.HistoryEntry{Timeline: oldTL, LSN: uint64(lsn), Reason: reason, Timestamp: time.Now(), NewLeader: n.cfg.Name})
	if o.failover != nil {
		n.finishSwitchover(cctx, o, true, "")
	}
	return nil
}

func (n *Node) appendHistory(ctx context.Context, o *observation, e consul.HistoryEntry) {
	h := append(append([]consul.HistoryEntry(nil), o.history...), e)
	if keep := o.dyn.MaxTimelinesHistory; keep > 0 && len(h) > keep {
		h = h[len(h)-keep:]
	}
	b, err := json.Marshal(h)
	if err != nil {
		return
	}
	if err := n.store.CAS(ctx, consul.KeyHistory, b, o.histIdx); err != nil {
		n.logger.Warn("record history", "err", err)
	}
}

// fence stops PostgreSQL at once: this node may no longer take writes.
func (n *Node) fence(ctx context.Context, why string) error {
	n.logger.Warn("fencing: stopping postgres", "reason", why)
	if n.registry != nil {
		rctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		_ = n.registry.MarkCritical(rctx, "fenced: "+why)
		cancel()
	}
	sctx, cancel := context.WithTimeout(ctx, fenceStopTimeout)
	defer cancel()
	err := n.pg.Stop(sctx, pg.StopImmediate)
	_ = n.guard.Disarm()
	n.lock.ConfirmedAt, n.lock.Held = 0, false
	n.failsafeActive = false
	if err != nil {
		return fmt.Errorf("fence: %w", err)
	}
	return nil
}

// release stops PostgreSQL cleanly (if running), announces it, and releases the leader key.
func (n *Node) release(ctx context.Context, o *observation, why string) error {
	n.logger.Info("releasing the leader lock", "reason", why)
	if n.registry != nil {
		rctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		_ = n.registry.MarkCritical(rctx, "releasing: "+why)
		cancel()
	}
	if n.pg.Running() {
		sctx, cancel := context.WithTimeout(ctx, stopTimeout)
		err := n.pg.Stop(sctx, pg.StopFast)
		cancel()
		if err != nil {
			return fmt.Errorf("stop before release: %w", err)
		}
	}
	_ = n.guard.Disarm()
	n.lock.ConfirmedAt, n.lock.Held = 0, false
	n.publishStopped(ctx, o)
	return n.dropLeaderKey(ctx)
}

// dropLeaderKey deletes the leader key if this node's session still holds it, by CAS on the
// index just read, so a key someone else acquired meanwhile is never deleted. Deleting (not
// invalidating the session) triggers no lock delay: the successor can take it at once.
func (n *Node) dropLeaderKey(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	p, err := n.store.Get(cctx, consul.KeyLeader, true)
	if errors.Is(err, consul.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read leader key: %w", err)
	}
	if p.Session != n.session {
		return nil
	}
	if err := n.store.DeleteCAS(cctx, consul.KeyLeader, p.ModifyIndex); err != nil {
		return fmt.Errorf("delete leader key: %w", err)
	}
	return nil
}
