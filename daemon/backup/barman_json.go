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
	BackupName   string      `json:"backup_name,omitempty"`
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
	case e.complete():
		i.Retention = "VALID"
	}
	if job, ok := strings.CutPrefix(e.BackupName, barmanNamePrefix); ok {
		i.JobID = job
	}
	return barmanInfo{Info: i}
}

// complete reports whether the backup's copy is done (Barman's STATUS_COPY_DONE): the
// backups show-backup and list-backups give details of.
func (e barmanListEntry) complete() bool { return e.Status == "DONE" || e.Status == "WAITING_FOR_WALS" }

// barmanBackupInfo is a backup's backup.info: the key=value lines Barman writes
// (barman/infofile.py FieldListFile.save: one "name=value" per field, sorted by name,
// Python's str() of each value, "None" for a missing one).
type barmanBackupInfo map[string]string

// parseBarmanBackupInfo reads a backup.info file (pure): "None" values are left out.
func parseBarmanBackupInfo(data []byte) barmanBackupInfo {
	bi := barmanBackupInfo{}
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if !ok || k == "" || v == "None" {
			continue
		}
		bi[k] = v
	}
	return bi
}

// barmanInfoTime is how backup.info writes a time: Python's str() of an aware datetime
// ("2026-12-04 09:56:58.033710+00:00", no fraction when it is zero).
const barmanInfoTime = "2006-01-02 15:04:05.999999-07:00"

// merge adds to i (a backup of list-backups) what show-backup adds from the same file:
// begin_time (whole seconds, as begin_time_timestamp), begin_xlog and end_xlog, begin_wal
// and end_wal, timeline and size (disk_usage_bytes).
func (bi barmanBackupInfo) merge(i Info) (Info, error) {
	if v := bi["begin_time"]; v != "" {
		ts, err := time.Parse(barmanInfoTime, v)
		if err != nil {
			// Barman reads a time without a zone as local time (load_datetime_tz).
			ts, err = time.ParseInLocation("2006-01-02 15:04:05.999999", v, time.Local)
		}
		if err != nil {
			return i, fmt.Errorf("begin_time %q: %w", v, err)
		}
		i.Start = time.Unix(ts.Unix(), 0).UTC()
	}
	for _, f := range []struct {
		key string
		n   *int64
	}{{"timeline", nil}, {"size", &i.Size}} {
		v := bi[f.key]
		if v == "" {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return i, fmt.Errorf("%s %q: %w", f.key, v, err)
		}
		if f.n != nil {
			*f.n = n
		} else {
			i.Timeline = int(n)
		}
	}
	i.StartLSN, i.StopLSN = bi["begin_xlog"], bi["end_xlog"]
	i.WALStart, i.WALStop = bi["begin_wal"], bi["end_wal"]
	return i, nil
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
