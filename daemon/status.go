package daemon

import "time"

// Role is what the node is, as the API and routing report it.
type Role string

// Roles. The strings are Patroni's where Patroni has one.
const (
	RolePrimary       Role = "primary"
	RoleReplica       Role = "replica"
	RoleStandbyLeader Role = "standby_leader"
	RoleUninitialized Role = "uninitialized"
	RoleDemoted       Role = "demoted"
)

// Status is the immutable snapshot the HA loop publishes after every cycle. Health endpoints,
// metrics and routing read only this; nothing in it may be changed after publication.
type Status struct {
	// CycleAt is the wall time the cycle that produced this snapshot finished.
	CycleAt time.Time
	// Scope, Name and Version identify the node.
	Scope   string
	Name    string
	Version string

	Role Role
	// State is Patroni's member state: "running", "starting", "stopped", "stopping",
	// "crashed", "creating replica", "initializing new cluster", "running custom bootstrap
	// script", "restart failed", "start failed".
	State string
	// HasLock is true while this node holds the leader lock (confirmed this cycle or within
	// its fencing deadline).
	HasLock bool
	// Leader is the name in the leader key ("" when unlocked).
	Leader          string
	ClusterUnlocked bool
	Paused          bool
	FailsafeActive  bool

	PGRunning       bool
	ServerVersion   int
	Timeline        int
	SystemID        string
	PostmasterStart time.Time

	// WALLocation is pg_current_wal_lsn on a primary.
	WALLocation uint64
	// ReceiveLSN and ReplayLSN are a replica's positions; ReplayPaused and ReplayTimestamp
	// come from the replay functions.
	ReceiveLSN      uint64
	ReplayLSN       uint64
	ReplayPaused    bool
	ReplayTimestamp time.Time
	// ReplicationState is "streaming" or "in archive recovery" on a replica, "" otherwise.
	ReplicationState string
	// Replication lists the standbys connected to a primary (pg_stat_replication).
	Replication []Replica

	// LeaderOptime is the leader's last published WAL position (status key, or the leader's
	// own position on the leader).
	LeaderOptime uint64

	Tags map[string]any

	// SyncStandby and QuorumStandby tell whether this replica is in the sync key.
	SyncStandby   bool
	QuorumStandby bool

	PendingRestart        bool
	PendingRestartReasons map[string]PendingChange
	// ScheduledRestart is the restart waiting for its time, nil when none.
	ScheduledRestart *ScheduledRestart

	DCSReachable bool
	DCSLastSeen  time.Time

	// TTL and LoopWait are the timings in force, for liveness.
	TTL                  time.Duration
	LoopWait             time.Duration
	MaximumLagOnFailover uint64
	// Timings are all the HA timings in force.
	Timings Timings
	// Config says which dynamic configuration this member acts on.
	Config ConfigStatus
	// SyncDegraded is why a leader in synchronous mode acknowledges commits without a
	// synchronous standby ("" when it does not).
	SyncDegraded string
	// ParameterErrors are the settings PostgreSQL skipped on its last reload of the managed
	// configuration (pg_file_settings.error), as "name=value (file:line): error".
	ParameterErrors []string

	// Backup is the backup tool and WAL archiving as this node sees them.
	Backup BackupStatus

	// Plan is the last cycle's plan and reason, in plain words.
	Plan string

	// Connections is the number of backends (pg_stat_database.numbackends summed), and
	// XactCommit and XactRollback the cumulative transaction counters, while PostgreSQL runs.
	Connections  int
	XactCommit   int64
	XactRollback int64
	// CommitRate and RollbackRate are transactions per second between the last two cycles
	// that read the counters (0 on the first, or after the counters went back).
	CommitRate   float64
	RollbackRate float64
	// Slots are the leader's replication slots as its last cycle read them.
	Slots []Slot
	// Switchover is the pending switchover request (the failover key), nil when none.
	Switchover *PendingSwitchover

	// Members is the cluster as last observed, for /cluster.
	Members []MemberStatus
}

// Replica is one row of pg_stat_replication as published.
type Replica struct {
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
	Usename         string `json:"usename"`
	// ReplayLSN is the position the standby confirmed as replayed (0 when unknown).
	ReplayLSN uint64 `json:"replay_lsn,omitempty"`
	// ReplayLag is pg_stat_replication.replay_lag on this primary, nil when PostgreSQL shows
	// none (no measurement yet, or caught up and idle).
	ReplayLag *time.Duration `json:"-"`
}

// PendingSwitchover is a switchover waiting in the failover key: from Leader to Candidate
// (empty: the best replica) at ScheduledAt (empty: as soon as possible).
type PendingSwitchover struct {
	Leader      string
	Candidate   string
	ScheduledAt string
	JobID       string
}

// Slot is one replication slot of the leader.
type Slot struct {
	Name   string
	Active bool
	// RestartLSN is the oldest WAL position the slot keeps (0 when it reserved none).
	RestartLSN uint64
}

// PendingChange is a parameter whose new value needs a restart.
type PendingChange struct {
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
}

// MemberStatus is one member as seen from this node.
type MemberStatus struct {
	Name       string
	Role       string // leader, replica, sync_standby, quorum_standby, standby_leader
	State      string
	APIURL     string
	Host       string
	Port       int
	Timeline   int
	Tags       map[string]any
	ReceiveLSN uint64
	ReplayLSN  uint64
	LSN        uint64
	// ServerVersion is the member's server_version_num (0 when unknown).
	ServerVersion int
	// Lag is the leader optime minus this member's position, in bytes (0 for the leader).
	Lag            uint64
	PendingRestart bool
	// ReplicationState is what the member publishes of its WAL source: "streaming", "in
	// archive recovery", or "" when it is not a running replica.
	ReplicationState string
	// ScheduledRestart and ScheduledRestartPostmaster are the member's scheduled restart as
	// it publishes it (RFC 3339; "" when none).
	ScheduledRestart           string
	ScheduledRestartPostmaster string
}

// IsReplicaRole reports whether the role is a replica-like one.
func (r Role) IsReplicaRole() bool { return r == RoleReplica || r == RoleStandbyLeader }

// Timings are the HA timings in force on a member.
type Timings struct {
	TTL          time.Duration
	LoopWait     time.Duration
	RetryTimeout time.Duration
	FenceMargin  time.Duration
	// PGUnresponsiveTimeout is postgres_unresponsive_timeout (0: off).
	PGUnresponsiveTimeout time.Duration
}

// ConfigStatus tells where the dynamic configuration a member acts on comes from.
type ConfigStatus struct {
	// Source is cluster (the config key, valid), last-valid (the key is missing or refused;
	// the last valid configuration stays in force) or environment (no configuration yet).
	Source ConfigSource
	// Refusal is why the config key is not in force ("" when it is).
	Refusal string
	// EnvironmentDiffers is true when this member's RAMD_* timings differ from the ones in
	// force (it follows the cluster's).
	EnvironmentDiffers bool
	// Index is the config key's version in force (its Consul modify index, the ETag of
	// GET /config; 0 when it came from the local copy).
	Index uint64
}
