package consul

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Keys of Patroni's layout, relative to "<namespace>/<scope>/".
const (
	KeyLeader     = "leader"
	KeyMembers    = "members/"
	KeyConfig     = "config"
	KeySync       = "sync"
	KeyFailover   = "failover"
	KeyHistory    = "history"
	KeyInitialize = "initialize"
	KeyStatus     = "status"
	KeyFailsafe   = "failsafe"
	// Keys of our own, under names Patroni does not use.
	KeyJobs = "ramd/jobs/"
	// KeyTakeover is a replica's claim that the leader is gone, written only while the
	// status and leader keys are as the replica last read them (Store.SetIfUnchanged); the
	// leader's heartbeat succeeds only while it is absent, and the next holder of the lock
	// deletes it as it acquires (Store.AcquireClearing).
	KeyTakeover = "ramd/takeover"
)

// MemberKey is the key of one member's record.
func MemberKey(name string) string { return KeyMembers + name }

// Member is the record a node publishes under members/<name>, acquired with its session.
// Field names and shapes are Patroni's; dcs_last_seen and api fields are additions that
// Patroni readers ignore.
type Member struct {
	ConnURL string `json:"conn_url"`
	APIURL  string `json:"api_url"`
	State   string `json:"state"`
	Role    string `json:"role"`
	Version string `json:"version"`
	// ServerVersion is PostgreSQL's server_version_num (ramd's field: parameters are checked
	// against every member's major version).
	ServerVersion    int            `json:"server_version,omitempty"`
	XLogLocation     uint64         `json:"xlog_location"`
	ReceiveLSN       *uint64        `json:"receive_lsn,omitempty"`
	ReplayLSN        *uint64        `json:"replay_lsn,omitempty"`
	ReplicationState string         `json:"replication_state,omitempty"`
	Timeline         int            `json:"timeline,omitempty"`
	Tags             map[string]any `json:"tags,omitempty"`
	PendingRestart   bool           `json:"pending_restart,omitempty"`
	Pause            bool           `json:"pause,omitempty"`
	// DCSLastSeen is the unix time (seconds) of this member's last successful Consul contact.
	DCSLastSeen int64 `json:"dcs_last_seen,omitempty"`
	// ScheduledRestart is Patroni's scheduled_restart: when, and the postmaster start time
	// it was scheduled against.
	ScheduledRestart *ScheduledRestart `json:"scheduled_restart,omitempty"`
	// DataDir and SocketDir are where this member's PostgreSQL keeps its data and listens
	// (ramd's fields, published only while backups may be taken from a standby: the leader
	// runs the tool against a standby's directory on the same machine).
	DataDir   string `json:"data_dir,omitempty"`
	SocketDir string `json:"socket_dir,omitempty"`
}

// ScheduledRestart is a member's pending scheduled restart.
type ScheduledRestart struct {
	Schedule            string `json:"schedule"`
	PostmasterStartTime string `json:"postmaster_start_time,omitempty"`
}

// Status is the leader's status key: the last known leader optime and slot positions.
type Status struct {
	Optime uint64 `json:"optime"`
	// Heartbeat changes with every leader heartbeat (a counter), so replicas watching the key
	// see each one; Patroni readers ignore it.
	Heartbeat uint64 `json:"heartbeat,omitempty"`
	// TTLms is the TTL (milliseconds) the leader fenced itself by for this heartbeat: no
	// replica races sooner after seeing it, whatever its own configuration says, so members
	// with different timings stay safe while a change spreads. Patroni readers ignore it.
	TTLms       uint64            `json:"ttl_ms,omitempty"`
	Slots       map[string]uint64 `json:"slots,omitempty"`
	RetainSlots []string          `json:"retain_slots,omitempty"`
	// ArchivedWAL is the last WAL segment the leader archived (pg_stat_archiver): a
	// candidate requeues for archiving what it streamed past it before it promotes.
	ArchivedWAL string `json:"archived_wal,omitempty"`
}

// Sync is the sync key: who may be promoted without losing an acknowledged commit.
type Sync struct {
	Leader      string `json:"leader"`
	SyncStandby string `json:"sync_standby"`
	Quorum      int    `json:"quorum,omitempty"`
}

// Failover is a pending switchover or failover request (Patroni's shape plus a job id).
type Failover struct {
	Leader      string `json:"leader,omitempty"`
	Member      string `json:"member,omitempty"`
	ScheduledAt string `json:"scheduled_at,omitempty"`
	JobID       string `json:"job_id,omitempty"`
}

// HistoryEntry is one line of the history key: [timeline, lsn, reason, timestamp, new_leader].
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
	if err := json.Unmarshal(raw[0], &h.Timeline); err != nil {
		return fmt.Errorf("history timeline: %w", err)
	}
	if err := json.Unmarshal(raw[1], &h.LSN); err != nil {
		return fmt.Errorf("history lsn: %w", err)
	}
	if err := json.Unmarshal(raw[2], &h.Reason); err != nil {
		return fmt.Errorf("history reason: %w", err)
	}
	if len(raw) > 3 {
		var ts string
		if err := json.Unmarshal(raw[3], &ts); err == nil {
			h.Timestamp, _ = time.Parse(time.RFC3339Nano, ts)
		}
	}
	if len(raw) > 4 {
		_ = json.Unmarshal(raw[4], &h.NewLeader)
	}
	return nil
}

// Initialize is the initialize key: the system identifier of the cluster, written once by CAS 0.
type Initialize string

// SystemID returns the identifier as a number.
func (i Initialize) SystemID() (uint64, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(string(i)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse initialize %q: %w", string(i), err)
	}
	return v, nil
}
