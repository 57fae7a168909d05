package ha

import (
	"fmt"
	"sort"
	"time"
)

// Decide turns one cycle's observations into a plan. It is pure: same input, same plan.
//
// Safety rules it keeps (checked by FuzzDecide):
//   - PostgreSQL is promoted only in a plan that holds the lock or acquires it first;
//   - a running primary whose lock is held by another node, or whose fencing deadline has
//     passed without confirmation, is fenced (unless paused);
//   - in pause nothing automatic happens: no promotion, no fencing, no restart (a start the
//     operator asked for, OperatorStart, is not automatic).
func Decide(in Input) Plan {
	if !in.ConsulOK {
		return decideWithoutConsul(in)
	}
	if !in.Initialized {
		if in.LockConfirmedAt > 0 && in.PG.Running && !in.PG.InRecovery && !in.PG.Unknown && !in.Paused {
			return keepLeadingAndClaim(in)
		}
		return decideUninitialized(in)
	}
	if in.ClusterSystemID == 0 {
		if in.InitializeMine {
			return plan("bootstrap in progress")
		}
		return plan("another node is bootstrapping the cluster")
	}
	if in.Restoring {
		return decideRestoring(in)
	}
	if !in.PG.DataEmpty && in.PG.SystemID != 0 && in.PG.SystemID != in.ClusterSystemID {
		return plan(fmt.Sprintf("data directory belongs to another cluster (system identifier %d, cluster %d): refusing to touch it",
			in.PG.SystemID, in.ClusterSystemID))
	}
	if in.PG.DataEmpty {
		return decideEmpty(in)
	}
	if in.PG.Unknown {
		if in.HoldsLock() {
			return decideSilentLeader(in)
		}
		return plan("postgres runs but does not answer: waiting")
	}
	if in.HoldsLock() {
		return decideLeader(in)
	}
	if in.PG.Running && !in.PG.InRecovery {
		return decideUnlockedPrimary(in)
	}
	return decideReplica(in)
}

func decideWithoutConsul(in Input) Plan {
	if in.PG.Unknown && in.LockConfirmedAt == 0 {
		// A server that did not answer, on a node that never led in this epoch: nothing
		// says it takes writes, and stopping it could skip a clean exit (a synchronous
		// standby leaving the set).
		return plan("consul unreachable; postgres does not answer: waiting")
	}
	if in.PG.Running && !in.PG.InRecovery {
		if in.Paused {
			return plan("consul unreachable; paused, keeping postgres as it is")
		}
		if in.LockValid() {
			return plan("consul unreachable; confirming leadership with every member", act(ActFailsafe))
		}
		return plan("consul unreachable and leadership not confirmed in time: fencing", act(ActFence))
	}
	return plan("consul unreachable; waiting")
}

// keepLeadingAndClaim is a leader whose Consul lost its data (the initialize key is gone with
// the rest): it keeps its lock first, as any leader whose key vanished does within its fencing
// deadline, and only then claims the initialize key for its data directory. Claiming first
// would let the fencing deadline pass without a heartbeat.
func keepLeadingAndClaim(in Input) Plan {
	var p Plan
	if in.HoldsLock() {
		p = plan("leader", act(ActHeartbeat))
	} else {
		p = decideUnlockedPrimary(in)
	}
	if p.Has(ActFence) {
		return p
	}
	p.Actions = append(p.Actions, act(ActClaimInitialize))
	p.Reason += "; initialize key missing: claiming it for the existing data directory"
	return p
}

func decideUninitialized(in Input) Plan {
	if in.Paused {
		return plan("cluster not initialized; paused")
	}
	if in.PG.DataEmpty {
		return plan("cluster not initialized: racing to bootstrap", act(ActBootstrap))
	}
	return plan("initialize key missing: claiming it for the existing data directory", act(ActClaimInitialize))
}

func decideEmpty(in Input) Plan {
	if in.Paused && !in.OperatorStart {
		return plan("empty data directory; paused")
	}
	if in.Leader.Present && in.Leader.Name != in.Name && !leaderStale(in) {
		return plan("empty data directory: cloning from the leader",
			actOn(ActClone, in.Leader.Name), actOn(ActStartReplica, in.Leader.Name))
	}
	return plan("empty data directory and no live leader to clone from: waiting")
}

// decideRestoring is a cluster under an in-place restore job. The job, not the plan, owns
// PostgreSQL on every member: the leader only keeps its lock (its server is stopped,
// restored, recovering to the target or promoted by the job), the others wait. A server
// running as a primary without the lock is handled as always (fenced unless paused).
func decideRestoring(in Input) Plan {
	if in.HoldsLock() {
		return plan("in-place restore in progress: holding the lock while the job owns postgres", act(ActHeartbeat))
	}
	if in.PG.Running && !in.PG.InRecovery && !in.PG.Unknown {
		return decideUnlockedPrimary(in)
	}
	return plan("in-place restore in progress: waiting for the job")
}

// decideSilentLeader handles a leader whose PostgreSQL runs but did not answer this cycle.
// A short silence (a busy server, a checkpoint, a postmaster stopped for a moment) keeps
// the lock: the leader heartbeats and decides nothing from a state it cannot read. A silence
// longer than PGUnresponsiveTimeout is a hung primary: clients cannot connect, and backends
// that still run may keep committing on their connections. The leader then fences itself
// and hands over (ActFenceUnresponsive): it kills the postmaster and every child first,
// and deletes the leader key only once they are gone, so no replica is promoted while the
// old server can still acknowledge a commit. Not in pause.
func decideSilentLeader(in Input) Plan {
	if in.Timings.Unresponsive(in.PG.SilentFor) {
		if in.Paused {
			return plan(fmt.Sprintf("paused: postgres has not answered for %s (limit %s); keeping the lock",
				in.PG.SilentFor, in.Timings.PGUnresponsiveTimeout), act(ActHeartbeat))
		}
		return plan(fmt.Sprintf("postgres has not answered for %s (limit %s): killing it and handing over",
			in.PG.SilentFor, in.Timings.PGUnresponsiveTimeout), act(ActFenceUnresponsive))
	}
	return plan("postgres runs but does not answer: keeping the lock, deciding nothing", act(ActHeartbeat))
}

// RestartWindow is how far back a leader counts the restarts in place of its PostgreSQL
// (PGState.RecentRestarts): MaxStartFailures of them within it make it hand over instead of
// restarting once more. A leader whose link to Consul drops its heartbeats is fenced by its
// guard, restarts in place when a heartbeat gets through, and is fenced again; meanwhile
// those heartbeats keep the replicas from taking over. A server that crashes again and again
// after starting well is the same pattern.
const RestartWindow = time.Minute

// decideLeader handles a node whose own session holds the leader key.
func decideLeader(in Input) Plan {
	hb := act(ActHeartbeat)
	if !in.PG.Running {
		if in.Paused && !in.OperatorStart {
			return plan("paused: postgres is not running, not starting it", hb)
		}
		if in.RestartOverdue && !in.Paused {
			return plan("the requested restart exceeded its timeout: handing over", act(ActRelease))
		}
		if in.PG.StartFailures >= max(1, in.MaxStartFailures) {
			return plan(fmt.Sprintf("postgres failed to start %d times: handing over", in.PG.StartFailures), act(ActRelease))
		}
		if in.PG.RecentRestarts >= max(1, in.MaxStartFailures) && !in.Paused {
			return plan(fmt.Sprintf("postgres stopped under the lock %d times within %s: handing over",
				in.PG.RecentRestarts, RestartWindow), act(ActRelease))
		}
		return plan("leader's postgres is not running: restarting it in place", hb, act(ActStartPrimary))
	}
	if in.PG.InRecovery {
		if in.Paused && in.Switchover == nil {
			return plan("paused: holding the lock as a standby, not promoting", hb)
		}
		return plan("holding the lock as a standby: promoting", hb, act(ActPromote))
	}
	actions := []Action{hb}
	if in.SyncManaged {
		actions = append(actions, act(ActSyncStandbys))
	}
	if sw := in.Switchover; sw != nil && sw.From == in.Name && sw.Due {
		target, why := switchoverTarget(in, sw)
		if target == "" {
			return plan("switchover refused: "+why, hb, act(ActRejectSwitchover))
		}
		return plan("switchover to "+target, hb, actOn(ActSwitchover, target))
	}
	return plan("leader", actions...)
}

// decideUnlockedPrimary handles PostgreSQL running as a primary without the lock in hand.
func decideUnlockedPrimary(in Input) Plan {
	if in.Paused {
		return plan("paused: postgres runs as primary without the lock; not fencing")
	}
	if in.Leader.Present && in.Leader.Name != in.Name {
		return plan(fmt.Sprintf("%s holds the leader lock: fencing", in.Leader.Name), act(ActFence))
	}
	if !in.SessionOK {
		if in.LockValid() {
			return plan("session lost; waiting for a new one within the fencing deadline")
		}
		return plan("no session and leadership not confirmed in time: fencing", act(ActFence))
	}
	if !in.LockValid() {
		return plan("running as primary without a confirmed lock: fencing", act(ActFence))
	}
	// The lock was ours within the fencing deadline and nobody took it: re-acquire (a Consul
	// agent restart destroys every session made through it).
	a := act(ActAcquire)
	if in.Leader.Present {
		a.Session = in.Leader.Session // our own previous session
	}
	return plan("lock lost while still primary and nobody took it: re-acquiring", a, act(ActHeartbeat))
}

func decideReplica(in Input) Plan {
	if in.Leader.Present && in.Leader.Name != in.Name && !leaderStale(in) {
		return followLeader(in, in.Leader.Name)
	}
	if in.Paused {
		return plan("paused: no leader, no automatic failover")
	}
	if !in.PG.Running {
		if in.LastLeader == in.Name || in.Switchover != nil && in.Switchover.To != "" && in.Switchover.To != in.Name {
			// This node just handed over (or a switchover names another): wait for the new
			// leader and rejoin through pg_rewind; starting now would serve and write WAL that
			// the new timeline does not have.
			return plan("handed over: waiting for the new leader")
		}
		// No live leader: start read-only without an upstream, so this node's position becomes
		// visible and it can take part in the race (a whole-cluster restart).
		return plan("no live leader: starting postgres read-only to join the race", actOn(ActStartReplica, ""))
	}
	gone, why := leaderGone(in)
	if !gone {
		if in.Leader.Present && in.Leader.Name != in.Name {
			return followLeader(in, in.Leader.Name)
		}
		return plan(why)
	}
	ok, why := isBestCandidate(in)
	if !ok {
		return plan("leader is gone (" + why + ")")
	}
	a := act(ActAcquire)
	if in.Leader.Present {
		a.Session = in.Leader.Session
	}
	return plan("leader is gone: taking over", a, act(ActPromote))
}

// followLeader keeps a replica streaming from leader.
func followLeader(in Input, leader string) Plan {
	if in.PG.Running {
		if in.PG.InRecovery && in.PG.Upstream != leader {
			return plan("following the new leader "+leader, actOn(ActFollow, leader))
		}
		if in.PG.InRecovery && in.PG.BehindFor >= in.Timings.TTL && !in.Paused {
			if d, why := Diverged(in.PG.Timeline, in.PG.LSN, in.LeaderTimeline, in.LeaderHistory); d {
				return plan("cannot follow "+leader+" ("+why+"): rewinding", actOn(ActRewind, leader), actOn(ActStartReplica, leader))
			}
		}
		return plan("replica of " + leader)
	}
	if in.Paused && !in.OperatorStart {
		return plan("paused: postgres is stopped, not starting it")
	}
	if in.PG.RewindFailed {
		if in.RecloneOnRewindFailure {
			return plan("pg_rewind failed: recloning from the leader", actOn(ActReclone, leader), actOn(ActStartReplica, leader))
		}
		return plan("pg_rewind failed and recloning is disabled: staying stopped")
	}
	if in.PG.WasPrimary {
		return plan("rejoining as a replica of "+leader+" after pg_rewind", actOn(ActRewind, leader), actOn(ActStartReplica, leader))
	}
	return plan("starting as a replica of "+leader, actOn(ActStartReplica, leader))
}

// leaderStale reports whether no proof of the leader's life was seen for TTL.
func leaderStale(in Input) bool {
	return Leadership{SeenAt: in.LeaderSeenAt, AnnouncedTTL: in.AnnouncedTTL}.Stale(in.Now, in.Timings)
}

// leaderGone decides whether the last leader can no longer take writes, so a replica may race.
//
// The leader fences itself FenceAfter = TTL - FenceMargin after the start of its last
// successful heartbeat; a replica records LeaderSeenAt no earlier than that start. So
// Now-LeaderSeenAt >= TTL implies the leader stopped taking writes at least FenceMargin ago,
// unless it can still be reached and says it is primary.
func leaderGone(in Input) (bool, string) {
	p := in.LeaderProbe
	switch {
	case in.LeaderReleased:
		return true, "the leader released the lock"
	case p.Reached && p.Primary:
		return false, "the last leader still runs as primary"
	case p.Reached && p.HasLock:
		return false, "the last leader still believes it holds the lock"
	case p.Reached && !p.Primary:
		return true, "the last leader is not running as primary"
	case leaderStale(in):
		return true, "no leader heartbeat for ttl and the leader's API does not answer"
	}
	return false, "waiting for ttl since the last leader heartbeat"
}

// isBestCandidate applies the candidate rule: healthy, allowed, not too far behind, and no
// reachable healthy replica ahead (ties: failover priority, then name).
func isBestCandidate(in Input) (bool, string) {
	sw := in.Switchover
	if sw != nil && sw.To != "" && sw.To != in.Name && in.Now-in.LeaderSeenAt < 2*in.Timings.TTL {
		// Give the designated candidate a chance first; after 2*TTL anyone may race.
		return false, "a switchover names " + sw.To
	}
	designated := sw != nil && sw.To == in.Name
	if !in.PG.Running || !in.PG.InRecovery {
		return false, "local postgres is not a running standby"
	}
	if in.NoFailover && !designated {
		return false, "nofailover is set"
	}
	allowLoss := designated && sw.AllowDataLoss
	if in.Sync.Enabled && !allowLoss {
		return syncCandidate(in)
	}
	if in.MaximumLagOnFailover > 0 && !allowLoss && in.LeaderOptime > in.PG.LSN+in.MaximumLagOnFailover {
		return false, fmt.Sprintf("lag %d bytes exceeds maximum_lag_on_failover", in.LeaderOptime-in.PG.LSN)
	}
	if designated {
		return true, "designated candidate"
	}
	me := rival{name: in.Name, lsn: in.PG.LSN, priority: in.FailoverPriority}
	var ahead []string
	for _, m := range in.Members {
		if m.Name == in.Name || m.Name == in.LastLeader || m.NoFailover {
			continue
		}
		// Only members we can reach and that run as healthy standbys can win a race; a member
		// that lost Consul or does not answer must not block the race forever.
		if !m.Probe.Reached || !m.Probe.ConsulOK || !m.Probe.Running || m.Probe.Primary {
			continue
		}
		r := rival{name: m.Name, lsn: m.Probe.LSN, priority: m.FailoverPriority}
		if r.better(me) {
			ahead = append(ahead, m.Name)
		}
	}
	if len(ahead) > 0 {
		sort.Strings(ahead)
		return false, fmt.Sprintf("better candidates: %v", ahead)
	}
	return true, "best candidate"
}

// syncCandidate is the candidate rule in synchronous mode: only a member of the sync key, and
// only after comparing positions with Quorum other members (the ones that answered) and
// being the most advanced of them, so that every acknowledged commit is on this node.
// failover_priority and then the name break ties, also in quorum mode.
func syncCandidate(in Input) (bool, string) {
	// The leader that wrote the key (back after a restart of the whole cluster) has every
	// commit it acknowledged: it may lead again, ahead of its standbys.
	formerLeader := in.Sync.Leader != "" && in.Sync.Leader == in.Name
	if !in.Sync.has(in.Name) && !formerLeader {
		return false, "not a synchronous standby: promoting it could lose acknowledged commits"
	}
	me := rival{name: in.Name, lsn: in.PG.LSN, priority: in.FailoverPriority}
	designated := in.Switchover != nil && in.Switchover.To == in.Name
	compared := 0
	var ahead []string
	for _, m := range in.Members {
		// Only a position actually reported counts: a member whose PostgreSQL is down may be
		// the one holding a commit nobody else has.
		peer := in.Sync.has(m.Name) || (in.Sync.Leader != "" && m.Name == in.Sync.Leader)
		if m.Name == in.Name || !peer || !m.Probe.Reached || !m.Probe.Running || m.Probe.LSN == 0 {
			continue
		}
		compared++
		if m.Probe.LSN > me.lsn {
			ahead = append(ahead, m.Name)
			continue
		}
		if designated || !m.Probe.ConsulOK || m.Probe.Primary || m.NoFailover {
			continue // it cannot (or must not) win the race, but its position counted
		}
		if (rival{name: m.Name, lsn: m.Probe.LSN, priority: m.FailoverPriority}).better(me) {
			ahead = append(ahead, m.Name)
		}
	}
	if compared < in.Sync.Quorum && !formerLeader {
		return false, fmt.Sprintf("compared with %d of the %d synchronous standbys needed", compared, in.Sync.Quorum)
	}
	if len(ahead) > 0 {
		sort.Strings(ahead)
		return false, fmt.Sprintf("synchronous standbys ahead: %v", ahead)
	}
	return true, "best synchronous candidate"
}

type rival struct {
	name     string
	lsn      uint64
	priority int
}

// better orders candidates: more WAL first, then higher failover priority, then name.
func (r rival) better(o rival) bool {
	if r.lsn != o.lsn {
		return r.lsn > o.lsn
	}
	if r.priority != o.priority {
		return r.priority > o.priority
	}
	return r.name < o.name
}

// switchoverTarget picks the switchover candidate, or says why there is none.
func switchoverTarget(in Input, sw *Switchover) (string, string) {
	var best *rival
	for _, m := range in.Members {
		if m.Name == in.Name {
			continue
		}
		if sw.To != "" && m.Name != sw.To {
			continue
		}
		if m.NoFailover {
			if sw.To != "" {
				return "", sw.To + " has nofailover set"
			}
			continue
		}
		if m.Role != "replica" || m.State != "running" {
			if sw.To != "" {
				return "", sw.To + " is not a running replica"
			}
			continue
		}
		if in.Sync.Enabled && !in.Sync.has(m.Name) {
			if sw.To != "" {
				return "", sw.To + " is not a synchronous standby"
			}
			continue
		}
		if in.MaximumLagOnFailover > 0 && in.PG.LSN > m.LSN+in.MaximumLagOnFailover {
			if sw.To != "" {
				return "", sw.To + " lags more than maximum_lag_on_failover"
			}
			continue
		}
		r := rival{name: m.Name, lsn: m.LSN, priority: m.FailoverPriority}
		if best == nil || r.better(*best) {
			best = &r
		}
	}
	if best == nil {
		if sw.To != "" {
			return "", sw.To + " is not a member"
		}
		if in.Paused {
			return "", "paused: a switchover needs a named candidate"
		}
		return "", "no healthy replica to switch over to"
	}
	if in.Paused && sw.To == "" {
		return "", "paused: a switchover needs a named candidate"
	}
	return best.name, ""
}
