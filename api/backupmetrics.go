package api

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// backupCollector sends the ramd_backup_* and ramd_wal_archive_* series from the node's
// Status snapshot at scrape time. The backup results are the leader's (it runs the jobs and
// reads the repository); every member reports its own archiver.
type backupCollector struct {
	node                                                  Node
	now                                                   func() time.Time
	lastSuccess, lastFailure, age, took, size, firstPoint *prometheus.Desc
	checkOK, jobRunning                                   *prometheus.Desc
	ready, archived, failed, lastArchived                 *prometheus.Desc
}

func newBackupCollector(node Node, now func() time.Time) *backupCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &backupCollector{node: node, now: now,
		lastSuccess:  d("ramd_backup_last_success_timestamp_seconds", "End of the newest good backup of each type (Unix seconds), from the repository and the jobs.", "tool", "type"),
		lastFailure:  d("ramd_backup_last_failure_timestamp_seconds", "Time of the last failed backup job of each type since the last good one (Unix seconds); absent once a backup of the type succeeds.", "tool", "type"),
		age:          d("ramd_backup_age_seconds", "Age of the newest good backup of any type.", "tool"),
		took:         d("ramd_backup_last_duration_seconds", "Duration of the last good backup this node took.", "tool"),
		size:         d("ramd_backup_last_size_bytes", "Database size of the last good backup this node took.", "tool"),
		firstPoint:   d("ramd_backup_first_recoverability_timestamp_seconds", "The earliest point a restore can reach: end of the oldest backup in the repository (Unix seconds).", "tool"),
		checkOK:      d("ramd_backup_check_ok", "1 when the last check of the repository and archiving from this leader passed, 0 when it failed.", "tool"),
		jobRunning:   d("ramd_backup_job_running", "1 while this node runs a backup-family job."),
		ready:        d("ramd_wal_archive_ready_files", "WAL files waiting for the archiver on this primary (.ready)."),
		archived:     d("ramd_wal_archived_total", "WAL files archived by this server since its statistics were reset (pg_stat_archiver.archived_count)."),
		failed:       d("ramd_wal_archive_failures_total", "Failed archive attempts of this server since its statistics were reset (pg_stat_archiver.failed_count)."),
		lastArchived: d("ramd_wal_last_archived_timestamp_seconds", "Time the last WAL file was archived by this server (Unix seconds)."),
	}
}

// Describe sends every descriptor.
func (c *backupCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.lastSuccess, c.lastFailure, c.age, c.took, c.size, c.firstPoint, c.checkOK, c.jobRunning, c.ready, c.archived, c.failed, c.lastArchived} {
		ch <- d
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / float64(time.Second) }

// Collect sends the series of the current snapshot.
func (c *backupCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.node.Status()
	if st == nil {
		return
	}
	b := st.Backup
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	running := 0.0
	if b.Job != "" {
		running = 1
	}
	gauge(c.jobRunning, running)
	if st.PGRunning {
		gauge(c.ready, float64(b.ReadyWAL))
		counter(c.archived, float64(b.Archiver.ArchivedCount))
		counter(c.failed, float64(b.Archiver.FailedCount))
		if !b.Archiver.LastArchivedTime.IsZero() {
			gauge(c.lastArchived, unix(b.Archiver.LastArchivedTime))
		}
	}
	if b.Tool == "" {
		return
	}
	f := b.Figures
	var newest time.Time
	for typ, t := range f.LastSuccess {
		gauge(c.lastSuccess, unix(t), b.Tool, typ)
		if t.After(newest) {
			newest = t
		}
	}
	for typ, t := range f.LastFailure {
		gauge(c.lastFailure, unix(t), b.Tool, typ)
	}
	if !newest.IsZero() {
		gauge(c.age, max(c.now().Sub(newest).Seconds(), 0), b.Tool)
	}
	if f.LastDuration > 0 {
		gauge(c.took, f.LastDuration.Seconds(), b.Tool)
		gauge(c.size, float64(f.LastSize), b.Tool)
	}
	if !f.FirstRecoverability.IsZero() {
		gauge(c.firstPoint, unix(f.FirstRecoverability), b.Tool)
	}
	if !f.CheckAt.IsZero() {
		ok := 1.0
		if f.CheckError != "" {
			ok = 0
		}
		gauge(c.checkOK, ok, b.Tool)
	}
}

var _ prometheus.Collector = (*backupCollector)(nil)

// backupNode is the member's backup part of GET /api/v1/cluster.
func backupNode(st *daemon.Status, now time.Time) *client.BackupNode {
	b := st.Backup
	a := b.Archiver
	if b.Tool == "" && a.FailedCount == 0 && b.ReadyWAL == 0 {
		return nil
	}
	out := &client.BackupNode{Tool: b.Tool, ConfigError: b.ConfigError, CheckError: b.Figures.CheckError, Job: b.Job,
		ReadyWAL: b.ReadyWAL, ArchivedCount: a.ArchivedCount, FailedCount: a.FailedCount,
		LastArchivedWAL: a.LastArchivedWAL, LastFailedWAL: a.LastFailedWAL, LastFailedTime: a.LastFailedTime}
	for _, t := range b.Figures.LastSuccess {
		if t.After(out.LastSuccess) {
			out.LastSuccess = t
		}
	}
	if !out.LastSuccess.IsZero() {
		out.AgeSeconds = max(now.Sub(out.LastSuccess).Seconds(), 0)
	}
	return out
}
