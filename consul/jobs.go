package consul

import "time"

// JobKey is the key of one tracked job (switchover, failover).
func JobKey(id string) string { return KeyJobs + id }

// Job states.
const (
	JobPending   = "pending"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job is a tracked operation: a caller follows it by id instead of timing out.
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
	// TraceParent carries the W3C trace context of the request that created the job.
	TraceParent string `json:"traceparent,omitempty"`
	// Node is the member that runs the job (backup jobs), "" before one took it.
	Node string `json:"node,omitempty"`
	// Backup is the record of a backup, expire, check or restore job.
	Backup *JobBackup `json:"backup,omitempty"`
}

// JobBackup is what a backup-family job did, with the tool's own record of it.
type JobBackup struct {
	Tool string `json:"tool"`
	// Type is full, diff or incr for a backup.
	Type string `json:"type,omitempty"`
	// Schedule names the schedule that started the job ("" for a request).
	Schedule string `json:"schedule,omitempty"`
	// Label is the tool's backup label or id.
	Label     string     `json:"label,omitempty"`
	StartLSN  string     `json:"start_lsn,omitempty"`
	StopLSN   string     `json:"stop_lsn,omitempty"`
	WALStart  string     `json:"wal_start,omitempty"`
	WALStop   string     `json:"wal_stop,omitempty"`
	Size      int64      `json:"size_bytes,omitempty"`
	RepoSize  int64      `json:"repo_size_bytes,omitempty"`
	StartedAt *time.Time `json:"started_at,omitempty"`
	StoppedAt *time.Time `json:"stopped_at,omitempty"`
	// Progress is the tool's last progress line.
	Progress string `json:"progress,omitempty"`
	// Output is the tail of the tool's output when it failed.
	Output string `json:"output,omitempty"`
	// Attempts counts runs that found the repository busy and waited.
	Attempts int `json:"attempts,omitempty"`
	// Target is a restore's recovery target (nil: the end of the archive).
	Target *JobTarget `json:"target,omitempty"`
	// Timeline is the timeline a restored primary promoted to.
	Timeline int `json:"timeline,omitempty"`
	// Member is the member a backup was taken from, and MemberReason why that one.
	Member       string `json:"member,omitempty"`
	MemberReason string `json:"member_reason,omitempty"`
}

// JobTarget is a restore's recovery target as requested.
type JobTarget struct {
	Type      string `json:"type"`
	Value     string `json:"value,omitempty"`
	Exclusive bool   `json:"exclusive,omitempty"`
}

// Backup job kinds.
const (
	JobBackupKind  = "backup"
	JobExpireKind  = "backup-expire"
	JobCheckKind   = "backup-check"
	JobRestoreKind = "restore"
)

// KeyBackupQueue holds the ids of the backup-family jobs waiting or running, oldest first:
// the leader runs them one at a time.
const KeyBackupQueue = "ramd/backup/queue"

// KeyBackupSchedules holds the last tick each backup schedule fired for.
const KeyBackupSchedules = "ramd/backup/schedules"

// BackupQueue is the value of KeyBackupQueue.
type BackupQueue struct {
	Jobs []string `json:"jobs"`
	// Restore is set while an in-place restore owns the cluster: every member's HA loop
	// honours it (no failover, no automatic start), see RestoreState.
	Restore *RestoreState `json:"restore,omitempty"`
}

// In-place restore phases, as RestoreState.Phase.
const (
	// RestoreStopping: the replicas stop their PostgreSQL and say so in Stopped.
	RestoreStopping = "stopping"
	// RestoreRestoring: the leader stops its own server and restores the backup.
	RestoreRestoring = "restoring"
	// RestoreReclone: the restored primary runs on its new timeline; the replicas remove
	// their data directory (its history forked from the new one) and say so in Recloned;
	// they clone from the leader once the state is removed.
	RestoreReclone = "reclone"
)

// RestoreState is an in-place restore in progress, kept in the backup queue key so that
// every member reads it in the same observation as the rest of the cluster.
type RestoreState struct {
	Job    string `json:"job"`
	Leader string `json:"leader"`
	Phase  string `json:"phase"`
	// Members are the other members the restore waits for.
	Members []string `json:"members"`
	// Stopped and Recloned are the members that acknowledged the phases.
	Stopped  []string `json:"stopped,omitempty"`
	Recloned []string `json:"recloned,omitempty"`
	// Timeline is the restored primary's new timeline (phase reclone).
	Timeline int `json:"timeline,omitempty"`
}

// BackupSchedules is the value of KeyBackupSchedules: per backup type, the last tick fired.
type BackupSchedules struct {
	Fired map[string]time.Time `json:"fired"`
}

// JobPhase is one step of a job with the time it was reached.
type JobPhase struct {
	Name string    `json:"name"`
	At   time.Time `json:"at"`
	Node string    `json:"node,omitempty"`
}
