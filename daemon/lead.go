package daemon

// This file: holding the lock (acquire, heartbeat, failsafe), promotion, fencing, release.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
)

// takeLock acquires the leader key with this node's session, destroying a dead leader's
// session first, and arms the fence guard from the start of the attempt.
//
// A takeover (deadSession another node's) first claims it (claimTakeover): from the claim
// on, the old leader's heartbeat cannot succeed, and the claim cannot be made once a
// heartbeat landed after this cycle's read.
func (n *Node) takeLock(ctx context.Context, deadSession string, basis takeoverBasis) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if deadSession != "" && deadSession != n.session {
		if err := n.claimTakeover(cctx, deadSession, basis); err != nil {
			return err
		}
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
		err = n.sessionRefused(n.store.AcquireClearing(cctx, consul.KeyLeader, []byte(n.cfg.Name), n.session, consul.KeyTakeover))
		if errors.Is(err, consul.ErrSessionLost) && i == 0 {
			// The session ended since its last renewal (sessions are renewed every quarter
			// TTL): make a new one and race with it in this cycle.
			if serr := n.ensureSession(cctx, true); serr != nil {
				return fmt.Errorf("acquire leader lock: %w; new session: %w", err, serr)
			}
			continue
		}
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

// takeoverBasis is what a replica's decision to take over rested on: the leader it judged
// gone, the status and leader keys' indexes in the read it judged from, and when it last saw
// that leader alive (a heartbeat or a direct confirmation).
type takeoverBasis struct {
	leader                   string
	statusIndex, leaderIndex uint64
	seenAt                   time.Duration
}

// claimTakeover makes this node's takeover from the leader holding session exclusive of
// that leader's heartbeats and failsafe confirmations. From now on this node confirms no
// leader (ConfirmLeader) until a new holder of the lock is published (releaseTakeover); a
// confirmation that came after the decision's read aborts the takeover; then the claim is
// written only while the status and leader keys are as that read saw them, so a heartbeat
// that landed since aborts it too, and so does another replica's acquisition (whose own
// heartbeats the claim would block), and a heartbeat after the claim is refused (it
// requires the claim absent). Without this, a heartbeat that crossed a slow link between
// the replica's read and its destruction of the session gave the old leader a fresh
// fencing deadline while the replica promoted.
func (n *Node) claimTakeover(ctx context.Context, session string, basis takeoverBasis) error {
	n.confirm.mu.Lock()
	n.confirm.takeover = session
	from, at := n.confirm.from, n.confirm.at
	n.confirm.mu.Unlock()
	if from != "" && from == basis.leader && at > basis.seenAt {
		n.setTakeover("")
		return fmt.Errorf("take over from %s: it confirmed itself directly after this cycle's read", basis.leader)
	}
	claim, _ := json.Marshal(map[string]string{"by": n.cfg.Name, "session": session})
	if err := n.store.SetIfUnchanged(ctx, consul.KeyTakeover, claim,
		consul.Seen{Key: consul.KeyStatus, Index: basis.statusIndex}, consul.Seen{Key: consul.KeyLeader, Index: basis.leaderIndex}); err != nil {
		n.setTakeover("")
		if errors.Is(err, consul.ErrConflict) {
			return fmt.Errorf("take over from %s: its heartbeat or a new holder came after this cycle's read: %w", basis.leader, err)
		}
		return fmt.Errorf("take over from %s: claim: %w", basis.leader, err)
	}
	n.logger.Info("takeover claimed", "from", basis.leader, "session_id", session, "status_index", basis.statusIndex)
	return nil
}

// releaseTakeover ends a takeover once this cycle's read shows the leader key no longer held
// by the session taken over from, and the status published names whoever holds it now: from
// then on a confirmation of the old leader cannot outlive its lock.
func (n *Node) releaseTakeover(o *observation) {
	n.confirm.mu.Lock()
	defer n.confirm.mu.Unlock()
	if t := n.confirm.takeover; t != "" && o.in.ConsulOK && o.in.Leader.Session != t {
		n.confirm.takeover = ""
	}
}

func (n *Node) setTakeover(session string) {
	n.confirm.mu.Lock()
	defer n.confirm.mu.Unlock()
	n.confirm.takeover = session
}

// confirmed records a successful confirmation of leadership that started at start and moves
// the fence guard's deadline to ha.Lock.Deadline: start + TTL - FenceMargin, never past what
// the replicas were last told (ha.Timings.FenceWindow).
func (n *Node) confirmed(start time.Duration) {
	n.lock = ha.Lock{Held: true, ConfirmedAt: start}
	n.failsafeFailed = false
	n.fenceAt.Store(int64(n.fenceDeadline()))
	if pid := n.pg.PID(); pid > 0 {
		if err := n.guard.Arm(pid, n.fenceDeadline()); err != nil {
			n.logger.Error("arm fence guard", "err", err)
		}
	}
}

func (n *Node) acquire(ctx context.Context, o *observation, dead string) error {
	basis := takeoverBasis{leader: o.in.Leader.Name, statusIndex: n.lead.StatusIndex, leaderIndex: o.leaderIdx, seenAt: o.in.LeaderSeenAt}
	if err := n.takeLock(ctx, dead, basis); err != nil {
		return err
	}
	// The rest of the cycle (its heartbeat) counts from the new deadline.
	o.steps = n.leaderSteps(o.clock.mono)
	return nil
}

// heartbeat re-acquires the leader key (proof that the session holds it) and publishes the
// optime. Success moves the fencing deadline.
//
// Its Consul call ends at the cycle's Consul step (ha.Timings.LeaderSteps): a Consul that
// hangs (an agent cut from its servers waits on its RPC for the whole timeout) leaves the
// failsafe round its budget before the fencing deadline.
func (n *Node) heartbeat(ctx context.Context, o *observation) error {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	cctx, cancelStep := o.clock.bound(cctx, o.steps.Consul)
	defer cancelStep()
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
		// After the confirmation: its own budget, until the next heartbeat is due.
		sctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		defer cancel()
		clock := readClock()
		sctx, cancelBeat := clock.bound(sctx, n.lock.WorkUntil(clock.mono, n.timings(), n.lead.AnnouncedTTL))
		defer cancelBeat()
		n.maintainSlots(sctx, o)
	}
	return nil
}

// writeHeartbeat writes the status key (optime, a counter, the TTL in force) in a
// transaction that succeeds only while this node's session holds the leader key. On success
// the replicas race no earlier than that TTL after it.
func (n *Node) writeHeartbeat(ctx context.Context, optime uint64) error {
	n.heartbeats++
	ttl := n.timings().TTL
	b, _ := json.Marshal(consul.Status{Optime: optime, Heartbeat: n.heartbeats, TTLms: uint64(ttl.Milliseconds()), ArchivedWAL: n.bk.archived})
	if err := n.store.PutIfHeld(ctx, consul.KeyLeader, n.session, consul.KeyStatus, b, consul.KeyTakeover); err != nil {
		return n.sessionRefused(err)
	}
	n.lead.AnnouncedTTL = ttl
	return nil
}

// beatNow is a heartbeat in the middle of a leader's own work that took long (a promotion
// after the replay, a start of PostgreSQL): the fencing deadline then counts from now, not
// from the start of the cycle, and the replicas see the new position at once. A failure is
// only logged: the next cycle's heartbeat decides.
func (n *Node) beatNow(ctx context.Context, optime uint64) bool {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	start := fence.Now()
	if err := n.writeHeartbeat(cctx, optime); err != nil {
		n.logger.Warn("heartbeat after the leader's own work", "err", err)
		return false
	}
	n.confirmed(start)
	return true
}

// beating runs f (a leader's start or promotion of PostgreSQL) while the loop keeps
// heartbeating every LoopWait: work that takes longer than the fencing window (crash
// recovery under load, a slow restore_command asked for history files) must not let the
// guard fence the server it brings up, nor the replicas race. The heartbeats stop when
// Consul refuses them, and the guard then fences at its deadline as always.
func (n *Node) beating(ctx context.Context, optime uint64, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	tick := time.NewTicker(n.timings().LoopWait)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			n.beatNow(ctx, optime)
		}
	}
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
	// The backup tool's slot (Barman's streaming archiver) exists on every new primary from
	// its promotion on, so the archiver resumes where it stopped.
	for _, s := range n.toolSlots() {
		want = append(want, s)
		wanted[s] = true
	}
	// The cycle's status read listed the slots: a query is needed only to create one.
	slots := o.pg.Slots
	if !pg.HasSlots(slots, want) {
		var err error
		if slots, err = n.pg.EnsureSlots(ctx, want); err != nil {
			n.logger.Warn("ensure replication slots", "err", err)
			if slots, err = n.pg.Slots(ctx); err != nil {
				return
			}
		}
	}
	n.slots = n.slots[:0:0]
	for _, s := range slots {
		n.slots = append(n.slots, Slot{Name: s.Name, Active: s.Active, RestartLSN: uint64(s.RestartLSN)})
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
// The round ends at the cycle's failsafe step, before the fencing deadline, so the guard
// learns the new deadline before the old one passes; the confirmation counts from the
// round's start.
func (n *Node) failsafe(ctx context.Context, o *observation) error {
	n.failsafeFailed = true // until confirmed says otherwise
	if !o.dyn.Failsafe() {
		return errors.New("failsafe mode is off")
	}
	ctx, cancel := o.clock.bound(ctx, o.steps.Failsafe)
	defer cancel()
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
	n.requeueBeforePromote()
	pctx, pcancel := context.WithTimeout(ctx, promoteTimeout)
	defer pcancel()
	n.setState("promoting")
	if err := n.beating(ctx, uint64(lsn), func() error { return n.pg.Promote(pctx) }); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	n.confirmed(n.lock.ConfirmedAt) // arm the guard on the now writable postmaster
	n.beatNow(ctx, uint64(lsn))
	n.announcePrimary(ctx, oldTL+1, uint64(lsn))
	n.pgMem.following = ""
	n.pgMem.startFailures = 0
	reason := "failover"
	if o.failover != nil && (o.failover.Member == n.cfg.Name || o.failover.Leader != "") {
		reason = "switchover" // named or not, a planned handover
	}
	// The history entry names the switch as the new timeline's history file has it: a
	// standby's timeline read before the promotion can lag (no WAL receiver, no restartpoint
	// since its last timeline switch), and PostgreSQL may skip a timeline number.
	entry := consul.HistoryEntry{Timeline: oldTL, LSN: uint64(lsn), Reason: reason, Timestamp: time.Now(), NewLeader: n.cfg.Name}
	newTL := oldTL + 1
	if tl, sw, err := n.timelineSwitch(ctx); err == nil {
		newTL, entry.Timeline, entry.LSN = tl, sw.Parent, uint64(sw.LSN)
	} else {
		n.logger.Warn("read the new timeline's history; the entry names the timeline read before promoting", "timeline", oldTL, "err", err)
	}
	n.logger.Info("promoted", "timeline", newTL, "lsn", pg.LSN(lsn), "reason", reason)
	cctx, ccancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer ccancel()
	n.maintainSlots(cctx, o)
	n.appendHistory(cctx, o, entry)
	if o.failover != nil {
		n.finishSwitchover(cctx, o, true, "")
	}
	return nil
}

// announcePrimary makes this node the primary for its clients right after its promotion,
// before the rest of the cycle's work (slots, history, the switchover job, the member
// record): the status snapshot the health endpoints answer from (so /primary is 200 for
// HAProxy's next check) and the routing registration (so DNS names it). The time no client
// finds a primary is then no longer than the time no node takes writes (the old primary
// failed its check before it stopped, see release). It announces only while the lock is
// still valid; the publish at the end of the cycle replaces both with the observed state.
func (n *Node) announcePrimary(ctx context.Context, timeline int, lsn uint64) {
	if !n.lock.Valid(fence.Now(), n.timings(), n.lead.AnnouncedTTL) {
		return
	}
	var st Status
	if cur := n.Status(); cur != nil {
		st = *cur
	}
	st.Role, st.State, st.HasLock, st.PGRunning, st.Leader, st.ClusterUnlocked = RolePrimary, "running", true, true, n.cfg.Name, false
	st.Timeline, st.WALLocation, st.LeaderOptime, st.Plan = timeline, lsn, lsn, "promoted"
	st.ReceiveLSN, st.ReplayLSN, st.ReplicationState, st.Replication = 0, 0, "", nil
	st.SyncStandby, st.QuorumStandby = false, false
	n.status.Store(&st)
	if n.registry == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.registry.Reconcile(cctx, n.routingWant(&st)); err != nil {
		n.logger.Warn("announce the new primary", "err", err)
	}
}

func (n *Node) appendHistory(ctx context.Context, o *observation, e consul.HistoryEntry) {
	h := append(append([]consul.HistoryEntry(nil), o.history...), e)
	// A retried entry may come after later ones (retryHistory): keep the key in timeline order.
	slices.SortStableFunc(h, func(a, b consul.HistoryEntry) int { return cmp.Compare(a.Timeline, b.Timeline) })
	if keep := o.dyn.MaxTimelinesHistory; keep > 0 && len(h) > keep {
		h = h[len(h)-keep:]
	}
	b, err := json.Marshal(h)
	if err != nil {
		return
	}
	if err := n.store.CAS(ctx, consul.KeyHistory, b, o.histIdx); err != nil {
		n.logger.Warn("record history; retried next cycle", "err", err)
		n.historyPending = &e
		return
	}
	n.historyPending = nil
	o.history = h // what the key holds now, for the rest of the cycle (recordTimeline)
}

// retryHistory writes this node's promotion entry again when its first write failed (a
// Consul call that timed out under load, a CAS that lost to another writer), until the key
// holds an entry for that timeline. Only the lock holder writes the history: a node that
// lost the lock right after its promotion (fenced under load) keeps the entry and writes it
// when it leads again. Loop goroutine only.
func (n *Node) retryHistory(ctx context.Context, o *observation) {
	e := n.historyPending
	if e == nil || !o.in.ConsulOK {
		return
	}
	if !historyMissing(o.history, *e) {
		n.historyPending = nil
		return
	}
	if !o.in.HoldsLock() {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	n.appendHistory(cctx, o, *e)
}

// recordTimeline makes the history key hold the switch that began this leader's timeline,
// whatever promoted it: a promotion whose entry was never written (a leader that started a
// standby's data directory under the lock and promoted it, a promotion whose call failed
// after the server had promoted) or was removed from the key is read from the server's
// timeline history file and recorded. The file is read once per timeline, and only when the
// key lacks an entry for the timeline before this one. Loop goroutine only.
func (n *Node) recordTimeline(ctx context.Context, o *observation) {
	tl := o.in.PG.Timeline
	if n.historyPending != nil || tl <= 1 || !o.in.ConsulOK || !o.in.HoldsLock() ||
		!o.in.PG.Running || o.in.PG.InRecovery || o.in.PG.Unknown {
		return
	}
	if n.tlSwitch.timeline != tl {
		// Usually the key names the timeline before this one, and nothing need be read.
		if !historyMissing(o.history, consul.HistoryEntry{Timeline: tl - 1}) {
			return
		}
		cur, _, err := n.timelineSwitch(ctx)
		if err == nil && cur != tl {
			err = fmt.Errorf("the server is on timeline %d now", cur)
		}
		if err != nil {
			n.logger.Warn("read this primary's timeline history; tried again next cycle", "timeline", tl, "err", err)
			return
		}
	}
	// PostgreSQL takes the next free timeline number: the parent is usually, not always, tl-1.
	if !historyMissing(o.history, consul.HistoryEntry{Timeline: n.tlSwitch.Parent}) {
		return
	}
	n.logger.Info("history key lacks this primary's timeline switch: recording it from the timeline history file",
		"timeline", tl, "parent", n.tlSwitch.Parent, "lsn", n.tlSwitch.LSN)
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	n.appendHistory(cctx, o, consul.HistoryEntry{Timeline: n.tlSwitch.Parent, LSN: uint64(n.tlSwitch.LSN), Reason: "promoted",
		Timestamp: time.Now(), NewLeader: n.cfg.Name})
}

// timelineSwitch reads the switch that began this primary's timeline, the last line of its
// timeline history file, and remembers it (tlSwitch). It is a local read, bounded as the
// probes are: a server that stalls meanwhile must not hold the loop, and a leader's next
// heartbeat, for a Consul call's whole timeout.
func (n *Node) timelineSwitch(ctx context.Context) (int, pg.TimelineSwitch, error) {
	pctx, cancel := context.WithTimeout(ctx, probeTimeout(n.timings()))
	defer cancel()
	tl, switches, err := pg.PrimaryTimeline(pctx, n.pg.LocalConn())
	if err != nil {
		return 0, pg.TimelineSwitch{}, err
	}
	if len(switches) == 0 {
		return 0, pg.TimelineSwitch{}, fmt.Errorf("timeline %d has no switch in its history", tl)
	}
	n.tlSwitch.timeline, n.tlSwitch.TimelineSwitch = tl, switches[len(switches)-1]
	return tl, n.tlSwitch.TimelineSwitch, nil
}

// historyMissing reports whether history lacks the entry of e's timeline switch.
func historyMissing(history []consul.HistoryEntry, e consul.HistoryEntry) bool {
	for _, h := range history {
		if h.Timeline == e.Timeline {
			return false
		}
	}
	return true
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

// fenceUnresponsive hands the lock over from a PostgreSQL that stopped answering (ha
// decideSilentLeader). The order keeps the guarantee: first the postmaster and every child
// are killed (SIGKILL reaches a stopped process; backends on existing connections could
// otherwise keep committing) and confirmed gone, only then is the leader key deleted, so no
// replica can be promoted while the old server may still acknowledge a commit. If the kill
// cannot be confirmed, the key is kept and no heartbeat renews it: the fence guard fires at
// the fencing deadline and the replicas race after TTL, as for a leader that lost Consul.
func (n *Node) fenceUnresponsive(ctx context.Context, o *observation) error {
	why := fmt.Sprintf("postgres has not answered for %s (postgres_unresponsive_timeout %s)",
		o.in.PG.SilentFor.Round(time.Millisecond), o.in.Timings.PGUnresponsiveTimeout)
	n.logger.Warn("fencing: killing postgres and handing over", "reason", why)
	if n.registry != nil {
		rctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		_ = n.registry.MarkCritical(rctx, "fenced: "+why)
		cancel()
	}
	err := n.pg.Kill(ctx)
	n.lock.ConfirmedAt, n.lock.Held = 0, false
	n.failsafeActive = false
	if err != nil {
		return fmt.Errorf("kill unresponsive postgres: %w", err)
	}
	n.pgMem.silence = ha.Silence{}
	_ = n.guard.Disarm()
	n.publishStopped(ctx, o)
	if err := n.dropLeaderKey(ctx); err != nil {
		return fmt.Errorf("release after killing unresponsive postgres: %w", err)
	}
	n.logger.Warn("killed the unresponsive postgres and released the leader lock")
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
	n.pgMem.restarts = nil
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
