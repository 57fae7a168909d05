package ha

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var timings = Timings{TTL: 3 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, FenceMargin: time.Second}

// base is a healthy three-node cluster seen from replica n2: leader n1 alive, n3 a replica.
func base(opts ...func(*Input)) Input {
	in := Input{
		Now:              100 * time.Second,
		Name:             "n2",
		Timings:          timings,
		MaxStartFailures: 3,
		ConsulOK:         true,
		SessionOK:        true,
		Session:          "s2",
		Initialized:      true,
		ClusterSystemID:  42,
		Leader:           LeaderKey{Present: true, Name: "n1", Session: "s1"},
		LastLeader:       "n1",
		LeaderSeenAt:     99500 * time.Millisecond,
		LeaderOptime:     1000,
		PG:               PGState{SystemID: 42, Running: true, InRecovery: true, Timeline: 1, LSN: 1000, Streaming: true, Upstream: "n1"},
		Members: []Member{
			{Name: "n1", Role: "primary", State: "running", LSN: 1000, Timeline: 1},
			{Name: "n2", Role: "replica", State: "running", LSN: 1000, Timeline: 1},
			{Name: "n3", Role: "replica", State: "running", LSN: 900, Timeline: 1},
		},
	}
	for _, o := range opts {
		o(&in)
	}
	return in
}

// asLeader turns the view into n1's own, holding the lock.
func asLeader(in *Input) {
	in.Name, in.Session = "n1", "s1"
	in.PG = PGState{SystemID: 42, Running: true, Timeline: 1, LSN: 1000}
	in.LockConfirmedAt = in.Now - 500*time.Millisecond
}

// leaderDead: the leader key is stale for more than TTL and its API does not answer.
func leaderDead(in *Input) {
	in.LeaderSeenAt = in.Now - 4*time.Second
	in.LeaderProbe = Probe{Asked: true}
}

// diverged: n2 on timeline 1 has WAL up to 2500, the leader n1 is on timeline 2, which
// forked from timeline 1 at 2000; n2 has been behind the leader's timeline for d.
func diverged(d time.Duration) func(*Input) {
	return func(in *Input) {
		in.PG.Timeline, in.PG.LSN, in.PG.Streaming, in.PG.BehindFor = 1, 2500, false, d
		in.LeaderTimeline, in.LeaderHistory = 2, []Fork{{Timeline: 1, LSN: 2000}}
	}
}

func reachable(name string, lsn uint64) func(*Input) {
	return func(in *Input) {
		for i := range in.Members {
			if in.Members[i].Name == name {
				in.Members[i].Probe = Probe{Asked: true, Reached: true, Running: true, ConsulOK: true, LSN: lsn}
			}
		}
	}
}

// silent: the local server runs and has not answered for d (the limit is 10 s).
func silent(d time.Duration) func(*Input) {
	return func(in *Input) {
		in.PG.Unknown, in.PG.SilentFor = true, d
		in.Timings.PGUnresponsiveTimeout = 10 * time.Second
	}
}

func kinds(p Plan) []Kind {
	out := []Kind{}
	for _, a := range p.Actions {
		out = append(out, a.Kind)
	}
	return out
}

func TestDecide(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   Input
		want []Kind
	}{
		{"healthy replica does nothing", base(), []Kind{}},
		{"uninitialized with empty data races to bootstrap", base(func(in *Input) {
			in.Initialized, in.ClusterSystemID, in.Leader = false, 0, LeaderKey{}
			in.PG = PGState{DataEmpty: true}
		}), []Kind{ActBootstrap}},
		{"uninitialized with existing data claims initialize", base(func(in *Input) {
			in.Initialized, in.ClusterSystemID = false, 0
		}), []Kind{ActClaimInitialize}},
		{"another node bootstrapping: wait", base(func(in *Input) {
			in.ClusterSystemID = 0
			in.PG = PGState{DataEmpty: true}
		}), []Kind{}},
		{"foreign data directory is refused", base(func(in *Input) { in.PG.SystemID = 7 }), []Kind{}},
		{"empty data dir clones from a live leader", base(func(in *Input) { in.PG = PGState{DataEmpty: true} }),
			[]Kind{ActClone, ActStartReplica}},
		{"empty data dir and no leader waits", base(func(in *Input) {
			in.PG = PGState{DataEmpty: true}
			in.Leader = LeaderKey{}
		}), []Kind{}},
		{"leader heartbeats", base(asLeader), []Kind{ActHeartbeat}},
		{"leader whose postgres does not answer only heartbeats", base(asLeader, func(in *Input) {
			in.PG.InRecovery, in.PG.Unknown = true, true
		}), []Kind{ActHeartbeat}},
		{"replica whose postgres does not answer waits", base(leaderDead, func(in *Input) { in.PG.Unknown = true }), []Kind{}},
		// A stalled primary (postgres_unresponsive_timeout, 10 s here).
		{"leader silent below the limit heartbeats", base(asLeader, silent(5*time.Second)), []Kind{ActHeartbeat}},
		{"leader silent exactly at the limit heartbeats", base(asLeader, silent(10*time.Second)), []Kind{ActHeartbeat}},
		{"leader silent past the limit kills postgres and hands over", base(asLeader, silent(10*time.Second+time.Nanosecond)),
			[]Kind{ActFenceUnresponsive}},
		{"leader silent long with the rule off heartbeats", base(asLeader, silent(time.Hour), func(in *Input) {
			in.Timings.PGUnresponsiveTimeout = 0
		}), []Kind{ActHeartbeat}},
		{"paused leader silent past the limit keeps the lock", base(asLeader, silent(time.Minute), func(in *Input) { in.Paused = true }),
			[]Kind{ActHeartbeat}},
		{"leader refused (starting up, not silent) keeps the lock", base(asLeader, silent(0), func(in *Input) {
			in.Timings.PGUnresponsiveTimeout = time.Nanosecond
		}), []Kind{ActHeartbeat}},
		{"leader silent past the limit during a restore keeps the lock", base(asLeader, silent(time.Minute), func(in *Input) { in.Restoring = true }),
			[]Kind{ActHeartbeat}},
		{"replica silent past the limit with the leader gone waits", base(leaderDead, silent(time.Minute)), []Kind{}},
		{"replica silent past the limit with a live leader waits", base(silent(time.Minute)), []Kind{}},
		{"a silent replica ahead does not block the race", base(leaderDead, reachable("n3", 5000), func(in *Input) {
			in.Members[2].Probe.Running = false // its API reports its PostgreSQL as not running
		}), []Kind{ActAcquire, ActPromote}},
		{"a silent synchronous standby ahead does not block the race", base(leaderDead, reachable("n3", 5000), func(in *Input) {
			in.Members[2].Probe.Running = false
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 0, Leader: "n1"}
		}), []Kind{ActAcquire, ActPromote}},
		{"once the silent leader released, the best replica takes over at once", base(func(in *Input) {
			in.Leader = LeaderKey{}
			in.LeaderReleased = true
		}, reachable("n3", 900)), []Kind{ActAcquire, ActPromote}},
		{"leader with crashed postgres restarts in place", base(asLeader, func(in *Input) { in.PG.Running = false }),
			[]Kind{ActHeartbeat, ActStartPrimary}},
		{"leader whose postgres keeps failing hands over", base(asLeader, func(in *Input) {
			in.PG.Running, in.PG.StartFailures = false, 3
		}), []Kind{ActRelease}},
		{"leader restarted in place twice within the window restarts again", base(asLeader, func(in *Input) {
			in.PG.Running, in.PG.RecentRestarts = false, 2
		}), []Kind{ActHeartbeat, ActStartPrimary}},
		{"leader restarted in place as often as allowed within the window hands over", base(asLeader, func(in *Input) {
			in.PG.Running, in.PG.RecentRestarts = false, 3
		}), []Kind{ActRelease}},
		{"paused leader restarted in place often is left alone", base(asLeader, func(in *Input) {
			in.PG.Running, in.PG.RecentRestarts, in.Paused = false, 5, true
		}), []Kind{ActHeartbeat}},
		{"lock holder still in recovery promotes", base(asLeader, func(in *Input) { in.PG.InRecovery = true }),
			[]Kind{ActHeartbeat, ActPromote}},
		{"leader carries out a due switchover to a named replica", base(asLeader, func(in *Input) {
			in.Switchover = &Switchover{From: "n1", To: "n3", Due: true}
		}), []Kind{ActHeartbeat, ActSwitchover}},
		{"switchover to a missing member is rejected", base(asLeader, func(in *Input) {
			in.Switchover = &Switchover{From: "n1", To: "n9", Due: true}
		}), []Kind{ActHeartbeat, ActRejectSwitchover}},
		{"scheduled switchover not yet due", base(asLeader, func(in *Input) {
			in.Switchover = &Switchover{From: "n1", To: "n3"}
		}), []Kind{ActHeartbeat}},
		{"primary that sees another leader fences", base(asLeader, func(in *Input) {
			in.Leader = LeaderKey{Present: true, Name: "n2", Session: "s2"}
		}), []Kind{ActFence}},
		{"primary whose key vanished re-acquires within its deadline", base(asLeader, func(in *Input) {
			in.Leader = LeaderKey{}
		}), []Kind{ActAcquire, ActHeartbeat}},
		{"primary whose key vanished past its deadline fences", base(asLeader, func(in *Input) {
			in.Leader = LeaderKey{}
			in.LockConfirmedAt = in.Now - 2*time.Second
		}), []Kind{ActFence}},
		// Mixed timings while a change spreads (ha.Timings.RaceAfter and FenceWindow).
		{"replica waits for the longer ttl the leader announced", base(func(in *Input) {
			in.LeaderSeenAt = in.Now - 4*time.Second // past its own 3s ttl
			in.AnnouncedTTL = 6 * time.Second
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{}},
		{"replica races exactly at the announced ttl", base(func(in *Input) {
			in.LeaderSeenAt = in.Now - 6*time.Second
			in.AnnouncedTTL = 6 * time.Second
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{ActAcquire, ActPromote}},
		{"replica with a longer own ttl ignores a shorter announcement", base(func(in *Input) {
			in.Timings.TTL = 5 * time.Second
			in.LeaderSeenAt = in.Now - 4*time.Second
			in.AnnouncedTTL = 2 * time.Second
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{}},
		{"replica races exactly at its own ttl", base(func(in *Input) {
			in.LeaderSeenAt = in.Now - 3*time.Second
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{ActAcquire, ActPromote}},
		{"replica just below its own ttl waits", base(func(in *Input) {
			in.LeaderSeenAt = in.Now - 3*time.Second + time.Millisecond
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{}},
		{"leader whose ttl grew fences by the window it announced", base(asLeader, func(in *Input) {
			in.Timings = Timings{TTL: 10 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, FenceMargin: time.Second}
			in.AnnouncedTTL = 3 * time.Second
			in.Leader = LeaderKey{}
			in.LockConfirmedAt = in.Now - 2*time.Second // = announced 3s - margin 1s
		}), []Kind{ActFence}},
		{"leader whose ttl grew is valid within the announced window", base(asLeader, func(in *Input) {
			in.Timings = Timings{TTL: 10 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, FenceMargin: time.Second}
			in.AnnouncedTTL = 3 * time.Second
			in.Leader = LeaderKey{}
			in.LockConfirmedAt = in.Now - 2*time.Second + time.Millisecond
		}), []Kind{ActAcquire, ActHeartbeat}},
		{"replica whose postgres does not answer without consul waits", base(func(in *Input) {
			in.ConsulOK = false
			in.PG = PGState{SystemID: 42, Running: true, Unknown: true}
		}), []Kind{}},
		{"leader whose postgres does not answer without consul past its deadline fences", base(asLeader, func(in *Input) {
			in.ConsulOK = false
			in.PG = PGState{SystemID: 42, Running: true, Unknown: true}
			in.LockConfirmedAt = in.Now - 2*time.Second
		}), []Kind{ActFence}},
		{"leader after consul lost its data keeps the lock before claiming initialize", base(asLeader, func(in *Input) {
			in.Initialized, in.ClusterSystemID = false, 0
			in.Leader = LeaderKey{}
		}), []Kind{ActAcquire, ActHeartbeat, ActClaimInitialize}},
		{"leader after consul lost its data past its deadline fences", base(asLeader, func(in *Input) {
			in.Initialized, in.ClusterSystemID = false, 0
			in.Leader = LeaderKey{}
			in.LockConfirmedAt = in.Now - 2*time.Second
		}), []Kind{ActFence}},
		{"replica after consul lost its data claims initialize", base(func(in *Input) {
			in.Initialized, in.ClusterSystemID = false, 0
			in.Leader = LeaderKey{}
		}), []Kind{ActClaimInitialize}},
		{"primary without consul within its deadline asks members", base(asLeader, func(in *Input) { in.ConsulOK = false }),
			[]Kind{ActFailsafe}},
		{"primary without consul past its deadline fences", base(asLeader, func(in *Input) {
			in.ConsulOK = false
			in.LockConfirmedAt = in.Now - 2*time.Second
		}), []Kind{ActFence}},
		{"paused primary without consul keeps running", base(asLeader, func(in *Input) {
			in.ConsulOK, in.Paused = false, true
			in.LockConfirmedAt = 0
		}), []Kind{}},
		{"replica without consul waits", base(func(in *Input) { in.ConsulOK = false }), []Kind{}},
		{"replica follows a new leader", base(func(in *Input) {
			in.Leader = LeaderKey{Present: true, Name: "n3", Session: "s3"}
		}), []Kind{ActFollow}},
		{"stopped replica starts", base(func(in *Input) { in.PG.Running = false }), []Kind{ActStartReplica}},
		{"stopped former primary rewinds then starts", base(func(in *Input) {
			in.PG.Running, in.PG.WasPrimary = false, true
		}), []Kind{ActRewind, ActStartReplica}},
		{"failed rewind without reclone stays stopped", base(func(in *Input) {
			in.PG.Running, in.PG.WasPrimary, in.PG.RewindFailed = false, true, true
		}), []Kind{}},
		{"failed rewind with reclone reclones", base(func(in *Input) {
			in.PG.Running, in.PG.WasPrimary, in.PG.RewindFailed = false, true, true
			in.RecloneOnRewindFailure = true
		}), []Kind{ActReclone, ActStartReplica}},
		{"stale leader answering as primary is not raced", base(leaderDead, func(in *Input) {
			in.LeaderProbe = Probe{Asked: true, Reached: true, Primary: true, Running: true, HasLock: true}
		}), []Kind{}},
		{"leader key gone but ttl not over: wait", base(func(in *Input) {
			in.Leader = LeaderKey{}
			in.LeaderProbe = Probe{Asked: true}
		}), []Kind{}},
		{"leader dead: best replica takes over", base(leaderDead, reachable("n3", 900)), []Kind{ActAcquire, ActPromote}},
		{"leader dead: a replica ahead wins", base(leaderDead, reachable("n3", 1100)), []Kind{}},
		{"leader dead: equal lsn, higher priority wins", base(leaderDead, reachable("n3", 1000), func(in *Input) {
			in.Members[2].FailoverPriority = 5
		}), []Kind{}},
		{"leader dead: equal lsn and priority, lower name wins", base(leaderDead, reachable("n3", 1000)), []Kind{ActAcquire, ActPromote}},
		{"leader dead: a member ahead that lost consul does not block", base(leaderDead, reachable("n3", 5000), func(in *Input) {
			in.Members[2].Probe.ConsulOK = false
		}), []Kind{ActAcquire, ActPromote}},
		{"leader dead: an unreachable member does not block", base(leaderDead), []Kind{ActAcquire, ActPromote}},
		{"leader dead: the old leader's higher lsn does not block", base(leaderDead, func(in *Input) {
			in.Members[0].Probe = Probe{Asked: true, Reached: false, LSN: 9000}
		}), []Kind{ActAcquire, ActPromote}},
		{"leader dead: nofailover does not race", base(leaderDead, func(in *Input) { in.NoFailover = true }), []Kind{}},
		{"leader dead: too much lag does not race", base(leaderDead, func(in *Input) {
			in.MaximumLagOnFailover, in.LeaderOptime = 100, 5000
		}), []Kind{}},
		{"leader dead: stopped standby starts read-only first", base(leaderDead, func(in *Input) { in.PG.Running = false }), []Kind{ActStartReplica}},
		{"the node that just handed over waits for the new leader", base(func(in *Input) {
			in.Leader, in.LastLeader = LeaderKey{}, "n2"
			in.PG.Running, in.PG.WasPrimary = false, true
		}), []Kind{}},
		{"no leader at all: stopped former primary starts read-only", base(func(in *Input) {
			in.Leader, in.LastLeader = LeaderKey{}, ""
			in.PG.Running, in.PG.WasPrimary = false, true
		}), []Kind{ActStartReplica}},
		{"leader dead but paused: no failover", base(leaderDead, func(in *Input) { in.Paused = true }), []Kind{}},
		{"paused leader stopped by the operator starts again", base(asLeader, func(in *Input) {
			in.PG.Running, in.Paused, in.OperatorStart = false, true, true
		}), []Kind{ActHeartbeat, ActStartPrimary}},
		{"leader whose requested restart is overdue hands over", base(asLeader, func(in *Input) {
			in.PG.Running, in.OperatorStart, in.RestartOverdue = false, true, true
		}), []Kind{ActRelease}},
		{"paused leader whose restart is overdue keeps trying", base(asLeader, func(in *Input) {
			in.PG.Running, in.Paused, in.OperatorStart, in.RestartOverdue = false, true, true, true
		}), []Kind{ActHeartbeat, ActStartPrimary}},
		{"paused leader stopped otherwise stays stopped", base(asLeader, func(in *Input) {
			in.PG.Running, in.Paused = false, true
		}), []Kind{ActHeartbeat}},
		{"paused replica stopped by the operator starts again", base(func(in *Input) {
			in.PG.Running, in.Paused, in.OperatorStart = false, true, true
		}), []Kind{ActStartReplica}},
		{"paused replica wiped by the operator clones again", base(func(in *Input) {
			in.PG.DataEmpty, in.Paused, in.OperatorStart = true, true, true
		}), []Kind{ActClone, ActStartReplica}},
		{"operator start without a live leader does not race", base(leaderDead, func(in *Input) {
			in.PG.DataEmpty, in.Paused, in.OperatorStart = true, true, true
		}), []Kind{}},
		{"leader released: race at once", base(func(in *Input) {
			in.Leader, in.LeaderReleased = LeaderKey{}, true
		}), []Kind{ActAcquire, ActPromote}},
		{"leader API says it stopped: race at once", base(func(in *Input) {
			in.Leader = LeaderKey{}
			in.LeaderProbe = Probe{Asked: true, Reached: true, Running: false}
		}), []Kind{ActAcquire, ActPromote}},
		{"switchover names another: wait", base(func(in *Input) {
			in.Leader, in.LeaderReleased = LeaderKey{}, true
			in.Switchover = &Switchover{From: "n1", To: "n3", Due: true}
		}), []Kind{}},
		{"switchover names me: race", base(func(in *Input) {
			in.Leader, in.LeaderReleased = LeaderKey{}, true
			in.Switchover = &Switchover{From: "n1", To: "n2", Due: true}
		}), []Kind{ActAcquire, ActPromote}},
		{"sync: a member of the sync key takes over", base(leaderDead, reachable("n3", 900), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2"}}
		}), []Kind{ActAcquire, ActPromote}},
		{"sync: a non-member never takes over even when ahead", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n3"}}
			in.PG.LSN = 5000
		}), []Kind{}},
		{"sync: no members (standalone leader): nobody takes over", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true}
		}), []Kind{}},
		{"sync: after a restart of the whole cluster the key's leader leads again", base(leaderDead, reachable("n3", 900), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n3"}, Leader: "n2"}
		}), []Kind{ActAcquire, ActPromote}},
		{"sync: the key's leader yields to a standby further ahead", base(leaderDead, reachable("n3", 2000), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n3"}, Leader: "n2"}
		}), []Kind{}},
		{"sync: a standby yields to the key's leader further ahead", base(leaderDead, reachable("n3", 2000), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2"}, Leader: "n3"}
		}), []Kind{}},
		{"sync: the key's leader does not need the quorum's answers", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n1", "n3"}, Quorum: 2, Leader: "n2"}
		}), []Kind{ActAcquire, ActPromote}},
		{"sync: lag limit does not apply to a sync member", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2"}}
			in.MaximumLagOnFailover, in.LeaderOptime = 100, 5000
		}), []Kind{ActAcquire, ActPromote}},
		{"quorum: compared with enough members and most advanced", base(leaderDead, reachable("n3", 900), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 1}
		}), []Kind{ActAcquire, ActPromote}},
		{"quorum: the other member did not answer", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 1}
		}), []Kind{}},
		{"quorum: the other member answers but its postgres is down", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 1}
			in.Members[2].Probe = Probe{Asked: true, Reached: true, ConsulOK: true}
		}), []Kind{}},
		{"quorum: a member ahead that lost consul still blocks (it may hold commits)", base(leaderDead, reachable("n3", 2000), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 1}
			in.Members[2].Probe.ConsulOK = false
		}), []Kind{}},
		{"quorum: failover_priority breaks a tie", base(leaderDead, reachable("n3", 1000), func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2", "n3"}, Quorum: 1}
			in.Members[2].FailoverPriority = 3
		}), []Kind{}},
		{"sync: forced failover with allow_data_loss to a non-member", base(leaderDead, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n3"}}
			in.Switchover = &Switchover{To: "n2", Due: true, AllowDataLoss: true}
		}), []Kind{ActAcquire, ActPromote}},
		{"sync: leader manages its standbys", base(asLeader, func(in *Input) { in.SyncManaged = true }), []Kind{ActHeartbeat, ActSyncStandbys}},
		{"sync: switchover only to a sync member", base(asLeader, func(in *Input) {
			in.Sync = SyncGate{Enabled: true, Members: []string{"n2"}}
			in.Switchover = &Switchover{From: "n1", To: "n3", Due: true}
		}), []Kind{ActHeartbeat, ActRejectSwitchover}},
		{"restore: the leader with its server stopped only heartbeats", base(asLeader, func(in *Input) {
			in.Restoring, in.PG = true, PGState{SystemID: 42, WasPrimary: true}
		}), []Kind{ActHeartbeat}},
		{"restore: the leader with its directory moved aside only heartbeats", base(asLeader, func(in *Input) {
			in.Restoring, in.PG = true, PGState{DataEmpty: true}
		}), []Kind{ActHeartbeat}},
		{"restore: the leader's copy recovering is not promoted by the loop", base(asLeader, func(in *Input) {
			in.Restoring, in.PG.InRecovery = true, true
		}), []Kind{ActHeartbeat}},
		{"restore: a stopped replica is not started", base(func(in *Input) {
			in.Restoring, in.PG = true, PGState{SystemID: 42}
		}), []Kind{}},
		{"restore: a replica with its data removed does not clone yet", base(func(in *Input) {
			in.Restoring, in.PG = true, PGState{DataEmpty: true}
		}), []Kind{}},
		{"restore: no race while the leader's heartbeat is stale", base(leaderDead, func(in *Input) { in.Restoring = true }), []Kind{}},
		{"restore: a primary without the lock is still fenced", base(func(in *Input) {
			in.Restoring, in.PG.InRecovery = true, false
		}), []Kind{ActFence}},
		{"replica past the leader's fork, behind its timeline for ttl: rewound", base(diverged(3 * time.Second)), []Kind{ActRewind, ActStartReplica}},
		{"replica past the fork, behind for ttl, its old timeline streaming: rewound", base(diverged(3*time.Second), func(in *Input) { in.PG.Streaming = true }), []Kind{ActRewind, ActStartReplica}},
		{"replica past the fork but behind for less than ttl: waits", base(diverged(2 * time.Second)), []Kind{}},
		{"replica past the fork in pause: left alone", base(diverged(3*time.Second), func(in *Input) { in.Paused = true }), []Kind{}},
		{"replica exactly at the fork: not rewound", base(diverged(3*time.Second), func(in *Input) { in.PG.LSN = 2000 }), []Kind{}},
		{"replica past the fork of the leader it no longer follows: follows first", base(diverged(3*time.Second), func(in *Input) { in.PG.Upstream = "n3" }), []Kind{ActFollow}},
		{"designated candidate that never came: others race after 2*ttl", base(leaderDead, func(in *Input) {
			in.LeaderSeenAt = in.Now - 7*time.Second
			in.Switchover = &Switchover{From: "n1", To: "n3", Due: true}
		}), []Kind{ActAcquire, ActPromote}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := Decide(tt.in)
			if diff := cmp.Diff(tt.want, kinds(p)); diff != "" {
				t.Errorf("plan %q (-want +got):\n%s", p.String(), diff)
			}
			if p.Reason == "" {
				t.Error("plan without a reason")
			}
		})
	}
}

func TestDecideDestroysDeadLeaderSession(t *testing.T) {
	t.Parallel()
	p := Decide(base(leaderDead))
	if len(p.Actions) == 0 || p.Actions[0].Kind != ActAcquire || p.Actions[0].Session != "s1" {
		t.Fatalf("want acquire destroying s1, got %+v", p.Actions)
	}
}

func TestTimingsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		t    Timings
		ok   bool
	}{
		{"defaults", timings, true},
		{"margin too small", Timings{TTL: 3 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, FenceMargin: 100 * time.Millisecond}, false},
		{"loop_wait + retry_timeout beyond fence point", Timings{TTL: 3 * time.Second, LoopWait: 2 * time.Second, RetryTimeout: time.Second, FenceMargin: time.Second}, false},
		{"margin not below ttl", Timings{TTL: 2 * time.Second, LoopWait: 200 * time.Millisecond, RetryTimeout: 200 * time.Millisecond, FenceMargin: 2 * time.Second}, false},
		{"zero loop_wait", Timings{TTL: 3 * time.Second, RetryTimeout: time.Second, FenceMargin: time.Second}, false},
		{"large", Timings{TTL: 30 * time.Second, LoopWait: 10 * time.Second, RetryTimeout: 10 * time.Second, FenceMargin: 5 * time.Second}, true},
		{"unresponsive timeout off", unresponsive(0), true},
		{"unresponsive timeout default", unresponsive(30 * time.Second), true},
		{"unresponsive timeout at ttl + loop_wait", unresponsive(4 * time.Second), false},
		{"unresponsive timeout just above ttl + loop_wait", unresponsive(4*time.Second + time.Nanosecond), true},
		{"unresponsive timeout below ttl", unresponsive(2 * time.Second), false},
		{"unresponsive timeout negative", unresponsive(-time.Second), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.t.Validate()
			if (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// unresponsive: the default timings with postgres_unresponsive_timeout d.
func unresponsive(d time.Duration) Timings {
	t := timings
	t.PGUnresponsiveTimeout = d
	return t
}

func TestFenceWindowAndRaceAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		t           Timings
		announced   time.Duration
		wantWindow  time.Duration
		wantRaceAft time.Duration
	}{
		{"nothing announced", timings, 0, 2 * time.Second, 3 * time.Second},
		{"announced equal", timings, 3 * time.Second, 2 * time.Second, 3 * time.Second},
		{"announced shorter", timings, 2 * time.Second, time.Second, 3 * time.Second},
		{"announced longer", timings, 6 * time.Second, 2 * time.Second, 6 * time.Second},
		{"announced below the margin", timings, 500 * time.Millisecond, 0, 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.t.FenceWindow(tt.announced); got != tt.wantWindow {
				t.Errorf("FenceWindow(%s) = %s, want %s", tt.announced, got, tt.wantWindow)
			}
			if got := tt.t.RaceAfter(tt.announced); got != tt.wantRaceAft {
				t.Errorf("RaceAfter(%s) = %s, want %s", tt.announced, got, tt.wantRaceAft)
			}
			// The inequality for any pair of members: a leader with timings t that announced
			// a, and a replica with any ttl, race no sooner than a margin after the fence.
			for _, replicaTTL := range []time.Duration{time.Second, 3 * time.Second, 10 * time.Second} {
				r := Timings{TTL: replicaTTL}
				if tt.announced > 0 && r.RaceAfter(tt.announced)-tt.t.FenceWindow(tt.announced) < MinFenceMargin {
					t.Errorf("replica ttl %s races %s after the fence, want >= %s", replicaTTL,
						r.RaceAfter(tt.announced)-tt.t.FenceWindow(tt.announced), MinFenceMargin)
				}
			}
		})
	}
}

func TestPGBudget(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name string
		t    Timings
		want time.Duration
	}{
		{"defaults: half of the one second of slack", Timings{TTL: 3 * s, LoopWait: s, RetryTimeout: s, FenceMargin: s}, 500 * time.Millisecond},
		{"long ttl: capped by retry_timeout", Timings{TTL: 30 * s, LoopWait: 10 * s, RetryTimeout: 10 * s, FenceMargin: 5 * s}, 7500 * time.Millisecond},
		{"slack far above retry_timeout", Timings{TTL: 30 * s, LoopWait: s, RetryTimeout: 2 * s, FenceMargin: s}, 2 * s},
		{"tight: never below the floor", Timings{TTL: 1100 * time.Millisecond, LoopWait: 100 * time.Millisecond, RetryTimeout: 100 * time.Millisecond, FenceMargin: 900 * time.Millisecond}, MinPGBudget},
	}
	for _, tt := range tests {
		if err := tt.t.Validate(); err != nil {
			t.Fatalf("%s: invalid timings: %v", tt.name, err)
		}
		got := tt.t.PGBudget()
		if got != tt.want {
			t.Errorf("%s: PGBudget = %s, want %s", tt.name, got, tt.want)
		}
		// The read and the Consul calls fit between the wake-up and the fencing deadline
		// whenever the floor is not what bounds the read.
		if got > MinPGBudget && tt.t.LoopWait+got > tt.t.FenceAfter() {
			t.Errorf("%s: loop_wait %s + read %s passes the fencing deadline %s", tt.name, tt.t.LoopWait, got, tt.t.FenceAfter())
		}
	}
}
