package backup

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

// The JSON Barman 3.4 prints with -f json (barman/output.py, JsonOutputWriter); samples in
// testdata/barman. Every answer is an object keyed by the server name.

// barmanEpoch is a Unix time that Barman prints as a string ("1796378221"); a number, ""
// or null are accepted too.
type barmanEpoch int64

func (e *barmanEpoch) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(bytes.TrimSpace(b)), `"`)
	if s == "" || s == "null" {
		*e = 0
		return nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("barman timestamp %s: %w", b, err)
	}
	*e = barmanEpoch(f)
	return nil
}

func (e barmanEpoch) time() time.Time {
	if e <= 0 {
		return time.Time{}
	}
	return time.Unix(int64(e), 0).UTC()
}

// barmanListEntry is one backup of `list-backups`. retention_status "-" means VALID for a
// complete backup (Barman prints only the other states) and nothing for the others.
type barmanListEntry struct {
	BackupID     string      `json:"backup_id"`
	Status       string      `json:"status"`
	EndTime      barmanEpoch `json:"end_time_timestamp"`
	SizeBytes    int64       `json:"size_bytes"`
	WALSizeBytes int64       `json:"wal_size_bytes"`
	Retention    string      `json:"retention_status"`
}

// barmanInfo is an Info plus what only List needs.
type barmanInfo struct {
	Info
	// lastWAL is the newest WAL segment in the archive (show-backup's
	// wal_information.last_available).
	lastWAL string
}

func (e barmanListEntry) info() barmanInfo {
	i := Info{
		ID:       e.BackupID,
		Type:     dynconf.BackupFull,
		Status:   barmanStatus(e.Status),
		Stop:     e.EndTime.time(),
		RepoSize: e.SizeBytes,
	}
	switch {
	case e.Retention != "" && e.Retention != "-":
		i.Retention = e.Retention
	case e.Status == "DONE" || e.Status == "WAITING_FOR_WALS":
		i.Retention = "VALID"
	}
	return barmanInfo{Info: i}
}

// barmanShowBackup is `show-backup SERVER ID`. Backups that are not complete (STARTED,
// FAILED, ...) carry only backup_id, status, backup_name and error.
type barmanShowBackup struct {
	BackupID   string `json:"backup_id"`
	BackupName string `json:"backup_name"`
	Status     string `json:"status"`
	Error      string `json:"error"`
	Base       struct {
		BeginLSN          string      `json:"begin_lsn"`
		EndLSN            string      `json:"end_lsn"`
		BeginWAL          string      `json:"begin_wal"`
		EndWAL            string      `json:"end_wal"`
		BeginTime         barmanEpoch `json:"begin_time_timestamp"`
		EndTime           barmanEpoch `json:"end_time_timestamp"`
		Timeline          int         `json:"timeline"`
		DiskUsage         int64       `json:"disk_usage_bytes"`
		DiskUsageWithWALs int64       `json:"disk_usage_with_wals_bytes"`
	} `json:"base_backup_information"`
	Catalog struct {
		Retention string `json:"retention_policy"`
	} `json:"catalog_information"`
	WAL struct {
		LastAvailable string `json:"last_available"`
	} `json:"wal_information"`
}

func (s barmanShowBackup) info() barmanInfo {
	i := Info{
		ID:        s.BackupID,
		Type:      dynconf.BackupFull,
		Status:    barmanStatus(s.Status),
		Start:     s.Base.BeginTime.time(),
		Stop:      s.Base.EndTime.time(),
		StartLSN:  s.Base.BeginLSN,
		StopLSN:   s.Base.EndLSN,
		WALStart:  s.Base.BeginWAL,
		WALStop:   s.Base.EndWAL,
		Timeline:  s.Base.Timeline,
		Size:      s.Base.DiskUsage,
		RepoSize:  s.Base.DiskUsageWithWALs,
		Retention: s.Catalog.Retention,
	}
	if i.Retention == "not enforced" {
		i.Retention = ""
	}
	if job, ok := strings.CutPrefix(s.BackupName, barmanNamePrefix); ok {
		i.JobID = job
	}
	return barmanInfo{Info: i, lastWAL: s.WAL.LastAvailable}
}

// barmanStatus maps Barman's backup status: DONE is done, FAILED failed; EMPTY, STARTED,
// WAITING_FOR_WALS (copied, its WAL not archived yet: not restorable) and SYNCING are
// running.
func barmanStatus(s string) string {
	switch s {
	case "DONE":
		return StatusDone
	case "FAILED":
		return StatusFailed
	}
	return StatusRunning
}

// barmanCheck is one entry of `check`: {"hint": "...", "status": "OK" | "FAILED"}.
type barmanCheck struct {
	Hint   string `json:"hint"`
	Status string `json:"status"`
}

// barmanReplicationStatus is `replication-status`.
type barmanReplicationStatus struct {
	ServerLSN string `json:"server_lsn"`
	Clients   []struct {
		ApplicationName string `json:"application_name"`
		State           string `json:"current_state"`
		Slot            string `json:"replication_slot"`
		FlushLSN        string `json:"flush_lsn"`
	} `json:"streaming_clients"`
}

// ensure the JSON types decode what decodeBarman hands them.
var _ json.Unmarshaler = (*barmanEpoch)(nil)
