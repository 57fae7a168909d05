package ha

import "time"

// Timings are the durations the decision depends on. They are validated together by
// Timings.Validate (the fencing inequality).
type Timings struct {
	// TTL is how long a leader heartbeat stays fresh for the replicas: a replica may race for
	// the lock only when it has seen no heartbeat (and no direct confirmation) for TTL.
	TTL time.Duration
	// LoopWait is the interval between HA cycles.
	LoopWait time.Duration
	// RetryTimeout bounds the Consul calls of one cycle.
	RetryTimeout time.Duration
	// FenceMargin is how much earlier than TTL the leader stops taking writes when it cannot
	// confirm its leadership: the time needed to stop PostgreSQL plus clock-rate slack.
	FenceMargin time.Duration
	// PGUnresponsiveTimeout is how long a leader's PostgreSQL may run without answering
	// (Silence) before the leader kills it and hands the lock over; 0 disables the rule.
	PGUnresponsiveTimeout time.Duration
}

// FenceAfter is how long after the start of its last successful heartbeat a leader may keep
// taking writes. See Validate for why it is safe.
func (t Timings) FenceAfter() time.Duration { return t.TTL - t.FenceMargin }

// PGState is what the node knows of its local PostgreSQL.
type PGState struct {
	// DataEmpty is true when the data directory is absent or empty.
	DataEmpty bool
	// SystemID of the data directory (0 when unknown).
	SystemID uint64
	Running  bool
	// InRecovery is true for a standby. Meaningful only when Running.
	InRecovery bool
	// WasPrimary is true when the data directory was last a primary (pg_control state
	// "in production", "shut down", "shutting down" or "in crash recovery"; not a
	// standby's archive recovery): a rejoin needs pg_rewind.
	WasPrimary bool
	Timeline   int
	// LSN is the write position on a primary, max(receive, replay) on a standby, or the last
	// checkpoint location when stopped.
	LSN uint64
	// Streaming is true when the walreceiver streams.
	Streaming bool
	// Upstream is the member this standby is configured to follow ("" when none).
	Upstream string
	// StartFailures counts consecutive failed starts (or crashes) since the last healthy cycle.
	StartFailures int
	// RecentRestarts counts the restarts in place of this leader's PostgreSQL within
	// RestartWindow: its server stopped (fenced, crashed) while the node kept the lock.
	RecentRestarts int
	// RewindFailed is true after pg_rewind failed for the current leader.
	RewindFailed bool
	// Unknown is true when the postmaster runs but did not answer this cycle (starting,
	// stopping, overloaded): nothing is decided from its state.
	Unknown bool
	// SilentFor is how long the running server has not answered at all (Silence.For): its
	// postmaster stopped, no new connection accepted, or no reply to the status read. A server that answers with a
	// refusal (starting up, shutting down) is not silent. 0 while it answers.
	SilentFor time.Duration
	// BehindFor is how long this running standby, following the leader, has reported a
	// timeline below the one the leader published (0 when it does not, and for a primary).
	// A standby that can follow switches to the leader's timeline within moments of
	// streaming from it; a walreceiver's status is no test, since a standby that cannot
	// follow still streams its old timeline up to the fork, again and again.
	BehindFor time.Duration
}

// LeaderKey is the leader key as read this cycle.
type LeaderKey struct {
	Present bool
	Name    string
	Session string
}

// Probe is the answer of a member's API to a direct status request.
type Probe struct {
	Asked   bool
	Reached bool
	// Primary is true when the member's PostgreSQL runs as a writable primary.
	Primary bool
	Running bool
	HasLock bool
	// ConsulOK is true when the member itself can reach Consul.
	ConsulOK bool
	LSN      uint64
	// Timeline of the member.
	Timeline int
}

// Member is another node of the cluster as observed.
type Member struct {
	Name             string
	Role             string // as published: primary, replica, demoted, uninitialized
	State            string // running, stopped, ...
	LSN              uint64
	Timeline         int
	NoFailover       bool
	FailoverPriority int
	// Probe is set when the member's API was asked this cycle.
	Probe Probe
}

// Switchover is a pending planned switchover (or manual failover) request.
type Switchover struct {
	// From is the leader that must hand over ("" for a failover request without a leader).
	From string
	// To is the designated candidate ("" = the best replica).
	To string
	// Due is true when the scheduled time (if any) has come.
	Due bool
	// AllowDataLoss lets a manual failover promote a candidate that may lack commits.
	AllowDataLoss bool
	// JobID identifies the job tracking this request.
	JobID string
}

// Input is everything a node observed in one cycle. It is a value: Decide never changes it.
type Input struct {
	// Now is the node's monotonic clock, read once per cycle.
	Now  time.Duration
	Name string
	// NoFailover and FailoverPriority are this node's own tags.
	NoFailover       bool
	FailoverPriority int
	Timings          Timings
	// MaximumLagOnFailover in bytes: a replica further behind the last known leader optime
	// does not race. 0 means no limit.
	MaximumLagOnFailover uint64
	Paused               bool
	// OperatorStart is true when this node stopped PostgreSQL for a requested restart or
	// reinitialization: the plan starts it again (cloning first when empty), also in pause.
	OperatorStart bool
	// Restoring is true while an in-place restore job owns the cluster: the leader keeps its
	// lock and heartbeats while the job stops, restores and starts its server; the other
	// members neither race nor start PostgreSQL (the job tells them what to do).
	Restoring bool
	// RestartOverdue is true when a restart of the leader requested with a timeout did not
	// bring PostgreSQL back in time: the leader hands over, as Patroni does.
	RestartOverdue bool
	// MaxStartFailures is how many failed starts of a leader's PostgreSQL are tolerated before
	// it hands over.
	MaxStartFailures int
	// RecloneOnRewindFailure allows removing the data directory and cloning again when
	// pg_rewind fails.
	RecloneOnRewindFailure bool

	// ConsulOK is true when every Consul read of this cycle succeeded.
	ConsulOK bool
	// SessionOK is true when this node holds a live session: created or renewed this cycle,
	// or within a quarter of the session's TTL with no write refused for it since.
	SessionOK bool
	// Session is this node's session id.
	Session string
	// Initialized reports whether the initialize key exists; ClusterSystemID is its value
	// (0 while a bootstrap is in progress).
	Initialized     bool
	ClusterSystemID uint64
	// InitializeMine is true when this node wrote the initialize key and is bootstrapping.
	InitializeMine bool

	Leader LeaderKey
	// LastLeader is the last leader name this node saw ("" when never).
	LastLeader string
	// LeaderSeenAt is the monotonic time this node last saw proof that the leader is alive:
	// a change of the leader key written by its holder, or a direct confirmation. A replica
	// races only when Now-LeaderSeenAt >= TTL (or the leader said it stopped).
	LeaderSeenAt time.Duration
	// LeaderProbe is the last leader's answer to a direct request, when it was asked.
	LeaderProbe Probe
	// LeaderReleased is true when the last leader announced that it released the lock after
	// stopping PostgreSQL (graceful stop or switchover).
	LeaderReleased bool
	// LeaderOptime is the last known leader WAL position (status key).
	LeaderOptime uint64
	// AnnouncedTTL is the TTL announced in the last leader heartbeat seen or written (0 when
	// none): replicas wait RaceAfter(AnnouncedTTL), a leader fences by FenceWindow(AnnouncedTTL).
	AnnouncedTTL time.Duration

	// LeaderTimeline and LeaderHistory are the leader's timeline and the history that led to
	// it, read from the leader's PostgreSQL only when this standby has been behind its
	// timeline for TTL (0 and nil otherwise): the test of whether it can still follow
	// (Diverged).
	LeaderTimeline int
	LeaderHistory  []Fork

	// LockConfirmedAt is the start (monotonic) of this node's last successful leader
	// heartbeat; 0 when it never held the lock in this epoch.
	LockConfirmedAt time.Duration

	PG      PGState
	Members []Member

	Switchover *Switchover

	// Sync is the synchronous-replication gate for failover (the sync key).
	Sync SyncGate
	// SyncManaged is true when the leader must manage synchronous standbys this cycle
	// (synchronous mode on, or leftovers of it to clear).
	SyncManaged bool
}

// SyncGate is what the sync key allows: in synchronous mode only Members may be promoted, and
// a candidate must compare its position with Quorum other Members and be the most advanced.
type SyncGate struct {
	// Enabled is true when synchronous mode is on and the key was written by LastLeader.
	Enabled bool
	Members []string
	Quorum  int
	// Leader is the leader that wrote the key: it has every commit it acknowledged, as its
	// synchronous standbys do. "" when the key cannot be trusted.
	Leader string
}

func (g SyncGate) has(name string) bool {
	for _, m := range g.Members {
		if m == name {
			return true
		}
	}
	return false
}

// LeaderLive reports whether proof of the leader's life was seen within TTL.
func (in Input) LeaderLive() bool { return !leaderStale(in) }

// HoldsLock reports whether the leader key names this node with its own live session.
func (in Input) HoldsLock() bool {
	return in.Leader.Present && in.Leader.Name == in.Name && in.Session != "" && in.Leader.Session == in.Session
}

// LockValid reports whether this node may still act as the leader: it confirmed the lock
// and its fencing deadline has not passed.
func (in Input) LockValid() bool {
	return Lock{Held: true, ConfirmedAt: in.LockConfirmedAt}.Valid(in.Now, in.Timings, in.AnnouncedTTL)
}
