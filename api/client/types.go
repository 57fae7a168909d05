package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Job states.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is GET /api/v1/jobs/{id}: a switchover, failover, restart or reinitialize tracked with
// its phases.
type Job struct {
	ID          string     `json:"id"`
	Kind        string     `json:"kind"`
	From        string     `json:"from,omitempty"`
	To          string     `json:"to,omitempty"`
	ScheduledAt string     `json:"scheduled_at,omitempty"`
	State       string     `json:"state"`
	Phases      []JobPhase `json:"phases"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	// TraceParent is the W3C trace context of the request that created the job.
	TraceParent string `json:"traceparent,omitempty"`
	// Node is the member that runs the job (backup jobs).
	Node string `json:"node,omitempty"`
	// Backup is what a backup, expire, check or restore job did.
	Backup *JobBackup `json:"backup,omitempty"`
}

// JobBackup is the record of a backup-family job, with the tool's own record of it.
type JobBackup struct {
	Tool      string     `json:"tool"`
	Type      string     `json:"type,omitempty"`
	Schedule  string     `json:"schedule,omitempty"`
	Label     string     `json:"label,omitempty"`
	StartLSN  string     `json:"start_lsn,omitempty"`
	StopLSN   string     `json:"stop_lsn,omitempty"`
	WALStart  string     `json:"wal_start,omitempty"`
	WALStop   string     `json:"wal_stop,omitempty"`
	Size      int64      `json:"size_bytes,omitempty"`
	RepoSize  int64      `json:"repo_size_bytes,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	Progress  string     `json:"progress,omitempty"`
	Output    string     `json:"output,omitempty"`
	Attempts  int        `json:"attempts,omitempty"`
	// Target is a restore's recovery target; Timeline the timeline the restored primary
	// promoted to.
	Target   *RestoreTarget `json:"target,omitempty"`
	Timeline int            `json:"timeline,omitempty"`
	// Member is the member a backup was taken from, MemberReason why that one.
	Member       string `json:"member,omitempty"`
	MemberReason string `json:"member_reason,omitempty"`
}

// Ended reports whether the job succeeded or failed.
func (j Job) Ended() bool { return j.State == JobSucceeded || j.State == JobFailed }

// JobPhase is one step of a job with the time it was reached and the member that reached it.
type JobPhase struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	Node string    `json:"node,omitempty"`
}

// JobAccepted is the 202 answer of an operation that runs as a job.
type JobAccepted struct {
	JobID  string `json:"job_id"`
	JobURL string `json:"job_url"`
}

// Member roles in the cluster view (Patroni's cluster_as_json).
const (
	RoleLeader        = "leader"
	RoleStandbyLeader = "standby_leader"
	RoleSyncStandby   = "sync_standby"
	RoleQuorumStandby = "quorum_standby"
	RoleReplica       = "replica"
)

// Unknown is the LSN and lag of a member that reported no position.
const Unknown = "unknown"

// Cluster is GET /cluster: the members as the answering node last observed them.
type Cluster struct {
	Members []Member `json:"members"`
	Scope   string   `json:"scope"`
	Pause   bool     `json:"pause,omitempty"`
	// ScheduledSwitchover is a switchover waiting for its time, as Patroni shows it.
	ScheduledSwitchover *ScheduledSwitchover `json:"scheduled_switchover,omitempty"`
}

// ScheduledSwitchover is Patroni's scheduled_switchover of /cluster: when, from which leader,
// to which member (empty: the best replica); JobID is ramd's job that follows it.
type ScheduledSwitchover struct {
	At    string `json:"at"`
	From  string `json:"from,omitempty"`
	To    string `json:"to,omitempty"`
	JobID string `json:"job_id,omitempty"`
}

// MemberRestart is a member's scheduled restart in /cluster (Patroni's scheduled_restart).
type MemberRestart struct {
	Schedule            string `json:"schedule"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
}

// Member is one member in the cluster views. The LSN fields are left out for the leader; on
// the others each is a formatted LSN and its lag in bytes behind the leader, or Unknown for
// both when the member reported no position.
type Member struct {
	Name             string         `json:"name"`
	Role             string         `json:"role"`
	State            string         `json:"state"`
	APIURL           string         `json:"api_url"`
	Host             string         `json:"host,omitempty"`
	Port             int            `json:"port,omitempty"`
	Timeline         int            `json:"timeline,omitempty"`
	PendingRestart   bool           `json:"pending_restart,omitempty"`
	ScheduledRestart *MemberRestart `json:"scheduled_restart,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	ReceiveLSN       string         `json:"receive_lsn,omitempty"`
	ReceiveLag       *Lag           `json:"receive_lag,omitempty"`
	ReplayLSN        string         `json:"replay_lsn,omitempty"`
	ReplayLag        *Lag           `json:"replay_lag,omitempty"`
	LSN              string         `json:"lsn,omitempty"`
	Lag              *Lag           `json:"lag,omitempty"`
	// ReplicationState is what a running replica publishes of its WAL source: "streaming"
	// or "in archive recovery" (Patroni's /cluster shows it as the state, as ramd does).
	ReplicationState string `json:"replication_state,omitempty"`
	// LagSeconds is the replay lag in seconds as the leader measures it
	// (pg_stat_replication.replay_lag, 0 once the replica replayed everything the leader
	// wrote). Only the leader's answer carries it, and only for replicas connected to it.
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
}

// IsLeader reports the roles at the top of the cluster: leader and standby_leader.
func (m Member) IsLeader() bool { return m.Role == RoleLeader || m.Role == RoleStandbyLeader }

// BaseURL is the member's api_url without the "/patroni" that Patroni's records carry.
func (m Member) BaseURL() string { return BaseURL(m.APIURL) }

// BaseURL is an api_url without a trailing slash and the "/patroni" of Patroni's records.
func BaseURL(apiURL string) string {
	return strings.TrimSuffix(strings.TrimRight(apiURL, "/"), "/patroni")
}

// Lag is how many bytes a member trails the leader; JSON a number, or "unknown" when the
// member reported no position.
type Lag struct {
	Bytes   uint64
	Unknown bool
}

// MarshalJSON writes the number of bytes, or "unknown".
func (l Lag) MarshalJSON() ([]byte, error) {
	if l.Unknown {
		return []byte(`"` + Unknown + `"`), nil
	}
	return strconv.AppendUint(nil, l.Bytes, 10), nil
}

// UnmarshalJSON reads a number of bytes or any string (unknown).
func (l *Lag) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*l = Lag{Unknown: true}
		return nil
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("lag %s: %w", b, err)
	}
	*l = Lag{Bytes: n}
	return nil
}

// ClusterStatus is GET /api/v1/cluster: the members as /cluster shows them plus what an
// operator asks first: who leads, on which timeline, paused or not, which members wait for a
// restart, and what the answering node decided last.
type ClusterStatus struct {
	Scope          string      `json:"scope"`
	Leader         string      `json:"leader"`
	Timeline       int         `json:"timeline,omitempty"`
	Paused         bool        `json:"paused"`
	FailsafeActive bool        `json:"failsafe_active"`
	SyncStandbys   []string    `json:"sync_standbys"`
	PendingRestart []string    `json:"pending_restart"`
	Members        []Member    `json:"members"`
	Node           ClusterNode `json:"node"`
	// ScheduledSwitchover is a switchover waiting for its time.
	ScheduledSwitchover *ScheduledSwitchover `json:"scheduled_switchover,omitempty"`
}

// ClusterNode is the answering node's own view in ClusterStatus.
type ClusterNode struct {
	Name             string            `json:"name"`
	Plan             string            `json:"plan"`
	DCSReachable     bool              `json:"dcs_reachable"`
	ScheduledRestart *ScheduledRestart `json:"scheduled_restart,omitempty"`
	// Timings are the HA timings this node runs with, in seconds.
	Timings Timings      `json:"timings"`
	Config  ConfigSource `json:"config"`
	// SyncDegraded, on a leader in synchronous mode, says why commits are acknowledged
	// without a synchronous standby.
	SyncDegraded string `json:"sync_degraded,omitempty"`
	// ParameterErrors are the settings PostgreSQL skipped on this member's last reload.
	ParameterErrors []string `json:"parameter_errors,omitempty"`
	// Backup is the backup tool and WAL archiving on this member (nil: no tool, nothing waiting).
	Backup *BackupNode `json:"backup,omitempty"`
}

// Timings are a member's HA timings in seconds.
type Timings struct {
	TTL          float64 `json:"ttl"`
	LoopWait     float64 `json:"loop_wait"`
	RetryTimeout float64 `json:"retry_timeout"`
	FenceMargin  float64 `json:"fence_margin"`
	// PGUnresponsiveTimeout is postgres_unresponsive_timeout (0: off).
	PGUnresponsiveTimeout float64 `json:"postgres_unresponsive_timeout"`
}

// ConfigSource says which dynamic configuration a member acts on.
type ConfigSource struct {
	// Source is cluster, last-valid or environment.
	Source string `json:"source"`
	// Refusal is why the config key is not in force.
	Refusal string `json:"refusal,omitempty"`
	// EnvironmentDiffers: the member's RAMD_* timings differ from the cluster's, which it
	// follows.
	EnvironmentDiffers bool `json:"environment_differs"`
	// Index is the version of the configuration in force (the ETag of GET /config).
	Index uint64 `json:"index"`
}

// ScheduledRestart is a restart waiting for its time in ClusterNode.
type ScheduledRestart struct {
	Role            string        `json:"role,omitempty"`
	PostgresVersion int           `json:"postgres_version,omitempty"`
	RestartPending  bool          `json:"restart_pending,omitempty"`
	Timeout         time.Duration `json:"timeout,omitempty"`
	Schedule        time.Time     `json:"schedule,omitzero"`
	PostmasterStart time.Time     `json:"postmaster_start_time,omitzero"`
	JobID           string        `json:"job_id,omitempty"`
}

// NodeStatus is GET /patroni and every GET health answer: Patroni's fields, in Patroni's
// shape, plus the ramd object. Optional fields are left out where Patroni leaves them out.
type NodeStatus struct {
	State               string `json:"state"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
	Role                string `json:"role"`
	ServerVersion       int    `json:"server_version,omitempty"`
	Timeline            int    `json:"timeline,omitempty"`
	// Xlog is a PrimaryXlog on a primary, a ReplicaXlog elsewhere.
	Xlog                     json.RawMessage          `json:"xlog,omitempty"`
	Replication              []ReplicationRow         `json:"replication,omitempty"`
	ReplicationState         string                   `json:"replication_state,omitempty"`
	SyncStandby              bool                     `json:"sync_standby,omitempty"`
	QuorumStandby            bool                     `json:"quorum_standby,omitempty"`
	Pause                    bool                     `json:"pause,omitempty"`
	ClusterUnlocked          bool                     `json:"cluster_unlocked,omitempty"`
	FailsafeModeIsActive     bool                     `json:"failsafe_mode_is_active,omitempty"`
	DCSLastSeen              int64                    `json:"dcs_last_seen"`
	Tags                     map[string]any           `json:"tags,omitempty"`
	DatabaseSystemIdentifier string                   `json:"database_system_identifier,omitempty"`
	PendingRestart           bool                     `json:"pending_restart,omitempty"`
	PendingRestartReason     map[string]PendingChange `json:"pending_restart_reason,omitempty"`
	ScheduledRestart         *PatroniScheduledRestart `json:"scheduled_restart,omitempty"`
	Patroni                  PatroniInfo              `json:"patroni"`
	Ramd                     RamdInfo                 `json:"ramd"`
}

// PrimaryXlog is the xlog object of a primary.
type PrimaryXlog struct {
	Location uint64 `json:"location"`
}

// ReplicaXlog is the xlog object of a replica; replayed_timestamp is null until something
// was replayed.
type ReplicaXlog struct {
	ReceivedLocation  uint64  `json:"received_location"`
	ReplayedLocation  uint64  `json:"replayed_location"`
	ReplayedTimestamp *string `json:"replayed_timestamp"`
	Paused            bool    `json:"paused"`
}

// ReplicationRow is one connected standby, as pg_stat_replication shows it.
type ReplicationRow struct {
	Usename         string `json:"usename"`
	ApplicationName string `json:"application_name"`
	ClientAddr      string `json:"client_addr"`
	State           string `json:"state"`
	SyncState       string `json:"sync_state"`
	SyncPriority    int    `json:"sync_priority"`
}

// PendingChange is a parameter waiting for a restart.
type PendingChange struct {
	OldValue string `json:"old_value"`
	NewValue string `json:"new_value"`
}

// PatroniInfo identifies the node the way Patroni does.
type PatroniInfo struct {
	Version string `json:"version"`
	Scope   string `json:"scope"`
	Name    string `json:"name"`
}

// RamdInfo is ramd's own view, which Patroni readers ignore and other ramd nodes read: the
// lock, the leader's name, and the unmapped role and state.
type RamdInfo struct {
	// Version is ramd's version (Patroni's version field carries the same: the member runs
	// ramd, not Patroni).
	Version string `json:"version"`
	HasLock bool   `json:"has_lock"`
	Leader  string `json:"leader"`
	Role    string `json:"role"`
	State   string `json:"state"`
	// DCSReachable tells peers whether this node reaches Consul: a member that lost Consul
	// must not block a leader race.
	DCSReachable bool `json:"dcs_reachable"`
	// Plan is the last HA decision and its reason, in plain words.
	Plan string `json:"plan,omitempty"`
}

// PatroniScheduledRestart is Patroni's scheduled_restart in /patroni.
type PatroniScheduledRestart struct {
	Schedule            string `json:"schedule"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
	RestartPending      bool   `json:"restart_pending,omitempty"`
	Role                string `json:"role,omitempty"`
	JobID               string `json:"job_id,omitempty"`
}

// SyncView is GET (and the answer to PUT) /api/v1/sync-standbys.
type SyncView struct {
	Mode     string       `json:"synchronous_mode"`
	Count    int          `json:"synchronous_node_count"`
	Strict   bool         `json:"synchronous_mode_strict"`
	Commit   string       `json:"synchronous_commit"`
	Leader   string       `json:"leader"`
	Quorum   int          `json:"quorum"`
	Standbys []SyncMember `json:"sync_standbys"`
}

// SyncMember is one published synchronous standby with its position.
type SyncMember struct {
	Name       string `json:"name"`
	ReceiveLSN uint64 `json:"receive_lsn"`
	ReplayLSN  uint64 `json:"replay_lsn"`
	State      string `json:"state"`
}

// SyncSettings is PUT /api/v1/sync-standbys: the settings to change (nil: unchanged).
type SyncSettings struct {
	Mode   *string `json:"synchronous_mode,omitempty"`
	Count  *int    `json:"synchronous_node_count,omitempty"`
	Strict *bool   `json:"synchronous_mode_strict,omitempty"`
	Commit *string `json:"synchronous_commit,omitempty"`
}

// HistoryEntry is one row of GET /history, Patroni's
// [timeline, lsn, reason, timestamp, new_leader].
type HistoryEntry struct {
	Timeline  int
	LSN       uint64
	Reason    string
	Timestamp time.Time
	NewLeader string
}

// MarshalJSON writes Patroni's array form.
func (h HistoryEntry) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{h.Timeline, h.LSN, h.Reason, h.Timestamp.UTC().Format(time.RFC3339Nano), h.NewLeader})
}

// UnmarshalJSON reads Patroni's array form (3 to 5 elements).
func (h *HistoryEntry) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("history entry: %w", err)
	}
	if len(raw) < 3 {
		return fmt.Errorf("history entry: %d fields, want at least 3", len(raw))
	}
	var ts string
	for i, v := range []any{&h.Timeline, &h.LSN, &h.Reason, &ts, &h.NewLeader}[:min(len(raw), 5)] {
		if err := json.Unmarshal(raw[i], v); err != nil && i < 3 {
			return fmt.Errorf("history entry field %d: %w", i, err)
		}
	}
	h.Timestamp, _ = time.Parse(time.RFC3339Nano, ts)
	return nil
}

// SwitchoverRequest is POST /api/v1/switchover and /api/v1/failover. A switchover without
// Leader is from the current leader; a failover needs Candidate and can't be scheduled.
type SwitchoverRequest struct {
	Candidate string `json:"candidate,omitempty"`
	Leader    string `json:"leader,omitempty"`
	// ScheduledAt is an RFC 3339 time with a zone, in the future.
	ScheduledAt   string `json:"scheduled_at,omitempty"`
	AllowDataLoss bool   `json:"allow_data_loss,omitempty"`
}

// RestartRequest is Patroni's POST /restart: the filters a member must match, and a schedule.
type RestartRequest struct {
	PostgresVersion string `json:"postgres_version,omitempty"`
	RestartPending  bool   `json:"restart_pending,omitempty"`
	// Role is primary or replica.
	Role string `json:"role,omitempty"`
	// Schedule is an RFC 3339 time with a zone.
	Schedule string `json:"schedule,omitempty"`
	// Timeout is a number of seconds or a duration like "30s".
	Timeout string `json:"timeout,omitempty"`
}

// RollingRestartRequest is POST /api/v1/restart: restart every member, one at a time.
type RollingRestartRequest struct {
	// InPlace restarts the primary where it is instead of switching over first.
	InPlace bool `json:"in_place"`
	// RestartPending restarts only members with settings waiting for a restart.
	RestartPending bool `json:"restart_pending"`
}

// ReinitializeRequest is POST /reinitialize and /api/v1/reinitialize.
type ReinitializeRequest struct {
	// Force replaces an operation in progress on the member.
	Force bool `json:"force"`
	// FromLeader clones from the leader even when a replica is tagged clonefrom.
	FromLeader bool `json:"from_leader"`
}

// Paused is the answer of POST /api/v1/pause and /api/v1/resume.
type Paused struct {
	Paused bool `json:"paused"`
}

// ErrorBody is the JSON body of a refusal of the /api/v1 routes and of the config writes:
// what was refused, why, and which fields.
type ErrorBody struct {
	Error  string `json:"error"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
	// Value is the refused value of Field, as given.
	Value any `json:"value,omitempty"`
	// Errors lists every refused field when a document was refused (the first is Field).
	Errors []FieldRefusal `json:"errors,omitempty"`
}

// FieldRefusal is one refused field of a document.
type FieldRefusal struct {
	Field  string `json:"field"`
	Value  any    `json:"value"`
	Reason string `json:"reason"`
}

// Reason is the refusal in words: one line per refused field when there are several, else
// error, detail and field.
func (b ErrorBody) Reason() string {
	if len(b.Errors) > 1 {
		// One line per refused field, so a user fixing a document sees them all at once.
		lines := []string{fmt.Sprintf("%s: %d fields refused", firstNonEmpty(b.Error, "refused"), len(b.Errors))}
		for _, fe := range b.Errors {
			v, _ := json.Marshal(fe.Value)
			lines = append(lines, fmt.Sprintf("  %s = %s: %s", fe.Field, v, fe.Reason))
		}
		return strings.Join(lines, "\n")
	}
	parts := []string{}
	for _, p := range []string{b.Error, b.Detail} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	s := strings.Join(parts, ": ")
	if b.Field != "" {
		s += " (field " + b.Field + ")"
	}
	return s
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}

// Parameter is one PostgreSQL setting of the local server's catalog
// (GET /api/v1/parameters/{name}).
type Parameter struct {
	Name        string `json:"name"`
	Context     string `json:"context"`
	Type        string `json:"vartype"`
	Unit        string `json:"unit,omitempty"`
	Category    string `json:"category,omitempty"`
	Description string `json:"description,omitempty"`
	// Min and Max bound integer and real values, in Unit.
	Min        *float64 `json:"min_val,omitempty"`
	Max        *float64 `json:"max_val,omitempty"`
	EnumValues []string `json:"enumvals,omitempty"`
	BootValue  string   `json:"boot_val"`
	ResetValue string   `json:"reset_val"`
	// RestartNeeded is true when a change takes effect only after a restart.
	RestartNeeded bool `json:"restart_needed"`
}

// ParameterList is GET /api/v1/parameters: the catalog of the server's version.
type ParameterList struct {
	ServerVersionNum int         `json:"server_version_num"`
	Parameters       []Parameter `json:"parameters"`
}

// ParameterIssue is one refusal or warning about a parameter.
type ParameterIssue struct {
	Field   string `json:"field"`
	Value   string `json:"value"`
	Message string `json:"message"`
	Rule    string `json:"rule"`
}

// ParameterReport is the verdict on a parameter set (POST /api/v1/parameters/validate).
type ParameterReport struct {
	OK       bool             `json:"ok"`
	Refusals []ParameterIssue `json:"refusals"`
	Warnings []ParameterIssue `json:"warnings"`
}

// ValidateParametersRequest is POST /api/v1/parameters/validate.
type ValidateParametersRequest struct {
	Parameters map[string]any `json:"parameters"`
}

// TuneRequest is POST /api/v1/parameters/tune; zero fields take the node's own facts.
type TuneRequest struct {
	Workload       string `json:"workload,omitempty"`
	MemoryBytes    int64  `json:"memory_bytes,omitempty"`
	CPUs           int    `json:"cpus,omitempty"`
	Storage        string `json:"storage,omitempty"`
	MaxConnections int    `json:"max_connections,omitempty"`
}

// TuneSuggestion is one suggested parameter beside the value in force.
type TuneSuggestion struct {
	Name      string `json:"name"`
	Current   string `json:"current"`
	Suggested string `json:"suggested"`
	Reason    string `json:"reason"`
	Changes   bool   `json:"changes"`
}

// TuneResult is the answer of POST /api/v1/parameters/tune.
type TuneResult struct {
	Workload    string           `json:"workload"`
	MemoryBytes int64            `json:"memory_bytes"`
	CPUs        int              `json:"cpus"`
	Storage     string           `json:"storage"`
	ServerMajor int              `json:"server_major"`
	Suggestions []TuneSuggestion `json:"suggestions"`
	Review      ParameterReport  `json:"review"`
}

// Health verdicts of GET /api/v1/cluster/health.
const (
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthUnhealthy = "unhealthy"
)

// Severities of a HealthReason.
const (
	SeverityCritical = "critical"
	SeverityWarning  = "warning"
)

// ClusterHealth is GET /api/v1/cluster/health: one verdict over every member, with the
// reasons. unhealthy (answered with 503) means no usable primary or a view that cannot be
// trusted; degraded (200) means the primary serves but something needs attention.
type ClusterHealth struct {
	Status string `json:"status"`
	Scope  string `json:"scope"`
	Leader string `json:"leader"`
	// Node is the member that answered, CheckedAt the end of its last HA cycle.
	Node      string         `json:"node"`
	CheckedAt time.Time      `json:"checked_at"`
	Reasons   []HealthReason `json:"reasons"`
	Members   []MemberHealth `json:"members"`
}

// HealthReason is one finding of the health verdict; Member is empty for cluster-wide ones.
type HealthReason struct {
	Severity string `json:"severity"`
	Member   string `json:"member,omitempty"`
	Reason   string `json:"reason"`
}

// MemberHealth is one member in ClusterHealth.
type MemberHealth struct {
	Name    string   `json:"name"`
	Role    string   `json:"role"`
	State   string   `json:"state"`
	Healthy bool     `json:"healthy"`
	Reasons []string `json:"reasons"`
}

// ClusterMetrics is GET /api/v1/cluster/metrics: the figures an operator watches, as JSON.
// Node figures (connections, transaction rates) are the answering member's; the lag of
// each replica is as /cluster shows it, with the time lag only on the leader's answer;
// slots only on the leader's answer.
type ClusterMetrics struct {
	Scope     string          `json:"scope"`
	Leader    string          `json:"leader"`
	Timeline  int             `json:"timeline,omitempty"`
	CheckedAt time.Time       `json:"checked_at"`
	Node      NodeMetrics     `json:"node"`
	Members   []MemberMetrics `json:"members"`
	Slots     []SlotMetrics   `json:"replication_slots"`
	// Failovers counts the history's entries; LastFailover is the newest one (nil when the
	// cluster never changed leader, or the history could not be read: HistoryError says why).
	Failovers    int           `json:"failovers"`
	LastFailover *FailoverInfo `json:"last_failover"`
	HistoryError string        `json:"history_error,omitempty"`
}

// NodeMetrics are the answering member's own figures.
type NodeMetrics struct {
	Name            string  `json:"name"`
	Role            string  `json:"role"`
	PostgresRunning bool    `json:"postgres_running"`
	Connections     int     `json:"connections"`
	XactCommit      int64   `json:"xact_commit"`
	XactRollback    int64   `json:"xact_rollback"`
	CommitsPerSec   float64 `json:"commits_per_second"`
	RollbacksPerSec float64 `json:"rollbacks_per_second"`
	// LagBytes and LagSeconds are this replica's own lag (0 on the primary).
	LagBytes   uint64  `json:"lag_bytes"`
	LagSeconds float64 `json:"lag_seconds"`
}

// MemberMetrics is one member's replication figures in ClusterMetrics.
type MemberMetrics struct {
	Name             string `json:"name"`
	Role             string `json:"role"`
	State            string `json:"state"`
	ReplicationState string `json:"replication_state,omitempty"`
	Timeline         int    `json:"timeline,omitempty"`
	// LagBytes is nil for the leader and for a member that reported no position.
	LagBytes   *uint64  `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds"`
}

// SlotMetrics is one replication slot of the leader.
type SlotMetrics struct {
	Name       string `json:"name"`
	Active     bool   `json:"active"`
	RestartLSN string `json:"restart_lsn,omitempty"`
	// RetainedBytes is how much WAL the slot holds back behind the leader's position.
	RetainedBytes uint64 `json:"retained_bytes"`
}

// FailoverInfo is one history entry in ClusterMetrics.
type FailoverInfo struct {
	Timeline  int       `json:"timeline"`
	LSN       uint64    `json:"lsn"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	NewLeader string    `json:"new_leader,omitempty"`
}

// SyncAddRemove is POST /api/v1/sync-standbys/add and /remove: an empty object. ramd
// chooses the synchronous standbys itself (streaming members not tagged nosync), so these
// change how many it keeps by one.
type SyncAddRemove struct{}

// SyncAnyN is POST /api/v1/sync-standbys/any-n: quorum commit on N standbys (ANY N).
type SyncAnyN struct {
	N int `json:"n"`
}
