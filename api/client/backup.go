package client

import (
	"context"
	"net/http"
	"time"
)

// BackupRequest is the body of POST /api/v1/backups: the backup type (full, diff or incr;
// full when empty).
type BackupRequest struct {
	Type string `json:"type,omitempty"`
}

// BackupInfo is one backup in the repository, as the tool reports it.
type BackupInfo struct {
	ID        string    `json:"id"`
	Type      string    `json:"type"`
	Status    string    `json:"status"`
	Start     time.Time `json:"start"`
	Stop      time.Time `json:"stop,omitzero"`
	StartLSN  string    `json:"start_lsn,omitempty"`
	StopLSN   string    `json:"stop_lsn,omitempty"`
	WALStart  string    `json:"wal_start,omitempty"`
	WALStop   string    `json:"wal_stop,omitempty"`
	Timeline  int       `json:"timeline,omitempty"`
	Size      int64     `json:"size_bytes,omitempty"`
	RepoSize  int64     `json:"repo_size_bytes,omitempty"`
	Prior     string    `json:"prior,omitempty"`
	JobID     string    `json:"job_id,omitempty"`
	Retention string    `json:"retention,omitempty"`
}

// BackupList is GET /api/v1/backups: the repository's backups (oldest first), its WAL range
// and the recoverability window.
type BackupList struct {
	Tool    string       `json:"tool"`
	Backups []BackupInfo `json:"backups"`
	WALMin  string       `json:"wal_min,omitempty"`
	WALMax  string       `json:"wal_max,omitempty"`
	// FirstRecoverability is the earliest point a restore can reach (end of the oldest backup).
	FirstRecoverability time.Time `json:"first_recoverability_point,omitzero"`
	// LastSuccess is the end of the newest good backup; AgeSeconds its age when listed.
	LastSuccess time.Time `json:"last_success,omitzero"`
	AgeSeconds  float64   `json:"last_success_age_seconds,omitempty"`
}

// BackupSchedule is one schedule of GET /api/v1/backup-schedules.
type BackupSchedule struct {
	Type      string    `json:"type"`
	Cron      string    `json:"cron"`
	Suspended bool      `json:"suspended"`
	LastTick  time.Time `json:"last_tick,omitzero"`
	NextTick  time.Time `json:"next_tick,omitzero"`
}

// ScheduleChange is the body of POST /api/v1/backup/schedule: set or change the schedule of
// a backup type (cron), suspend or resume it; cron "" with remove true deletes it.
type ScheduleChange struct {
	Type    string `json:"type"`
	Cron    string `json:"cron,omitempty"`
	Suspend *bool  `json:"suspend,omitempty"`
	Remove  bool   `json:"remove,omitempty"`
}

// BackupNode is the backup tool and WAL archiving as one member sees them.
type BackupNode struct {
	Tool        string `json:"tool,omitempty"`
	ConfigError string `json:"config_error,omitempty"`
	// LastSuccess is the end of the newest good backup this member knows (the leader's is the
	// cluster's), AgeSeconds its age.
	LastSuccess time.Time `json:"last_success,omitzero"`
	AgeSeconds  float64   `json:"last_success_age_seconds,omitempty"`
	CheckError  string    `json:"check_error,omitempty"`
	// Job is the backup job this member runs.
	Job string `json:"job,omitempty"`
	// ReadyWAL are the files waiting for the archiver; the archiver's counters follow.
	ReadyWAL        int       `json:"ready_wal"`
	ArchivedCount   int64     `json:"archived_count"`
	FailedCount     int64     `json:"failed_count"`
	LastArchivedWAL string    `json:"last_archived_wal,omitempty"`
	LastFailedWAL   string    `json:"last_failed_wal,omitempty"`
	LastFailedTime  time.Time `json:"last_failed_time,omitzero"`
}

// StartBackup queues a backup (POST /api/v1/backups) and returns its job.
func (c *Client) StartBackup(ctx context.Context, typ string) (JobAccepted, error) {
	var v JobAccepted
	_, err := c.call(ctx, http.MethodPost, "/api/v1/backups", BackupRequest{Type: typ}, nil, &v)
	return v, err
}

// Backups reads GET /api/v1/backups.
func (c *Client) Backups(ctx context.Context) (BackupList, error) {
	var v BackupList
	_, err := c.call(ctx, http.MethodGet, "/api/v1/backups", nil, nil, &v)
	return v, err
}

// Backup reads GET /api/v1/backups/{id}.
func (c *Client) Backup(ctx context.Context, id string) (BackupInfo, error) {
	var v BackupInfo
	_, err := c.call(ctx, http.MethodGet, "/api/v1/backups/"+id, nil, nil, &v)
	return v, err
}

// BackupJobs reads GET /api/v1/backup/jobs: the backup-family jobs, newest first.
func (c *Client) BackupJobs(ctx context.Context) ([]Job, error) {
	var v []Job
	_, err := c.call(ctx, http.MethodGet, "/api/v1/backup/jobs", nil, nil, &v)
	return v, err
}

// BackupSchedules reads GET /api/v1/backup-schedules.
func (c *Client) BackupSchedules(ctx context.Context) ([]BackupSchedule, error) {
	var v []BackupSchedule
	_, err := c.call(ctx, http.MethodGet, "/api/v1/backup-schedules", nil, nil, &v)
	return v, err
}

// ChangeSchedule sets, suspends, resumes or removes a schedule (POST /api/v1/backup/schedule).
func (c *Client) ChangeSchedule(ctx context.Context, s ScheduleChange) ([]BackupSchedule, error) {
	var v []BackupSchedule
	_, err := c.call(ctx, http.MethodPost, "/api/v1/backup/schedule", s, nil, &v)
	return v, err
}

// RunSchedule queues the scheduled backup of a type now (POST /api/v1/backup-schedules/{type}/run).
func (c *Client) RunSchedule(ctx context.Context, typ string) (JobAccepted, error) {
	var v JobAccepted
	_, err := c.call(ctx, http.MethodPost, "/api/v1/backup-schedules/"+typ+"/run", nil, nil, &v)
	return v, err
}

// RestoreTarget is a recovery target: type end (the default), immediate, time (RFC 3339),
// xid, lsn or name, its value, and whether to stop just before it.
type RestoreTarget struct {
	Type      string `json:"type"`
	Value     string `json:"value,omitempty"`
	Exclusive bool   `json:"exclusive,omitempty"`
}

// RestoreRequest is the body of POST /api/v1/restore: an in-place restore of the running
// cluster. Confirm must be the cluster's name (scope).
type RestoreRequest struct {
	// BackupID is the backup to restore ("" the latest that reaches the target).
	BackupID string         `json:"backup_id,omitempty"`
	Target   *RestoreTarget `json:"target,omitempty"`
	Confirm  string         `json:"confirm"`
}

// StartRestore queues an in-place restore (POST /api/v1/restore) and returns its job.
func (c *Client) StartRestore(ctx context.Context, r RestoreRequest) (JobAccepted, error) {
	var v JobAccepted
	_, err := c.call(ctx, http.MethodPost, "/api/v1/restore", r, nil, &v)
	return v, err
}

// StartBackupTask queues an expire or check job (POST /api/v1/backups/expire or /check).
func (c *Client) StartBackupTask(ctx context.Context, task string) (JobAccepted, error) {
	var v JobAccepted
	_, err := c.call(ctx, http.MethodPost, "/api/v1/backups/"+task, nil, nil, &v)
	return v, err
}
