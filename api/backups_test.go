package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

var noTool = &dynconf.FieldError{Field: "backup.tool", Reason: "no backup tool is configured"}

// opsNode has no backup tool: the routes exist and refuse.
func (o *opsNode) StartBackup(context.Context, daemon.BackupRequest) (string, error) {
	return "", noTool
}
func (o *opsNode) StartBackupExpire(context.Context) (string, error) { return "", noTool }
func (o *opsNode) StartBackupCheck(context.Context) (string, error)  { return "", noTool }
func (o *opsNode) BackupCatalog(context.Context) (backup.Catalog, string, error) {
	return backup.Catalog{}, "", noTool
}
func (o *opsNode) BackupSchedules(context.Context) ([]daemon.ScheduleView, error) { return nil, noTool }
func (o *opsNode) ChangeSchedule(context.Context, daemon.ScheduleChange) ([]daemon.ScheduleView, error) {
	return nil, noTool
}
func (o *opsNode) RunScheduleNow(context.Context, string) (string, error) { return "", noTool }
func (o *opsNode) StartRestore(context.Context, daemon.RestoreRequest) (string, error) {
	return "", noTool
}

// repoNode has a pgBackRest repository with two backups.
type repoNode struct {
	*staticNode
	requests []daemon.BackupRequest
	cat      backup.Catalog
	jobs     []consul.Job
	changes  []daemon.ScheduleChange
	restores []daemon.RestoreRequest
}

func (b *repoNode) StartBackup(_ context.Context, r daemon.BackupRequest) (string, error) {
	if r.Type != "" && r.Type != "full" && r.Type != "diff" && r.Type != "incr" {
		return "", &dynconf.FieldError{Field: "type", Value: r.Type, Reason: "pgbackrest takes [full diff incr] backups"}
	}
	b.requests = append(b.requests, r)
	return "j1", nil
}
func (b *repoNode) StartBackupExpire(context.Context) (string, error) { return "x1", nil }
func (b *repoNode) StartBackupCheck(context.Context) (string, error)  { return "c1", nil }
func (b *repoNode) BackupCatalog(context.Context) (backup.Catalog, string, error) {
	return b.cat, "pgbackrest", nil
}
func (b *repoNode) BackupSchedules(context.Context) ([]daemon.ScheduleView, error) {
	return []daemon.ScheduleView{{Type: "full", Cron: "0 1 * * 0"}}, nil
}
func (b *repoNode) ChangeSchedule(_ context.Context, ch daemon.ScheduleChange) ([]daemon.ScheduleView, error) {
	if ch.Cron == "bad" {
		return nil, dynconf.Errors{{Field: "backup.schedules.full", Value: "bad", Reason: "not a cron expression"}}
	}
	b.changes = append(b.changes, ch)
	return []daemon.ScheduleView{{Type: ch.Type, Cron: ch.Cron}}, nil
}
func (b *repoNode) RunScheduleNow(context.Context, string) (string, error) { return "j2", nil }
func (b *repoNode) StartRestore(_ context.Context, r daemon.RestoreRequest) (string, error) {
	switch {
	case r.Confirm != "demo":
		return "", &dynconf.FieldError{Field: "confirm", Value: r.Confirm, Reason: "is not this cluster's name (demo)"}
	case len(b.jobs) > 1:
		return "", &dynconf.FieldError{Field: "queue", Value: b.jobs[1].ID, Reason: "another backup job is queued or running"}
	}
	b.restores = append(b.restores, r)
	return "r1", nil
}
func (b *repoNode) Jobs(context.Context) ([]consul.Job, error) { return b.jobs, nil }

func do(t *testing.T, r http.Handler, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	r.ServeHTTP(rec, req)
	return rec
}

func TestBackupRoutes(t *testing.T) {
	t.Parallel()
	now := time.Now().UTC()
	full := now.Add(-26 * time.Hour)
	incr := now.Add(-2 * time.Hour)
	st := &daemon.Status{Name: "n1", Scope: "pg", PGRunning: true, Role: daemon.RolePrimary,
		Backup: daemon.BackupStatus{Tool: "pgbackrest", ReadyWAL: 3, Archiver: pgArchiver(7, 2),
			Figures: daemon.BackupFigures{LastSuccess: map[string]time.Time{"full": full, "incr": incr}, LastFailure: map[string]time.Time{"diff": now},
				LastDuration: 42 * time.Second, LastSize: 1 << 30, FirstRecoverability: full, CheckAt: now}}}
	n := &repoNode{staticNode: newNode(st), cat: backup.Catalog{WALMin: "000000010000000000000002", WALMax: "000000010000000000000010", Backups: []backup.Info{
		{ID: "F1", Type: "full", Status: backup.StatusDone, Start: full.Add(-time.Minute), Stop: full, JobID: "j0"},
		{ID: "F1_I1", Type: "incr", Status: backup.StatusDone, Start: incr.Add(-time.Minute), Stop: incr, Prior: "F1"},
	}}, jobs: []consul.Job{{ID: "s1", Kind: "switchover"}, {ID: "j0", Kind: consul.JobBackupKind, State: consul.JobSucceeded,
		Backup: &consul.JobBackup{Tool: "pgbackrest", Type: "full", Label: "F1"}}}}
	r := NewRouter(routesOf(n), nil, nil, nil)

	for _, path := range []string{"/api/v1/backups", "/api/v1/backup/start"} {
		rec := do(t, r, http.MethodPost, path, `{"type":"incr"}`)
		var a client.JobAccepted
		if rec.Code != http.StatusAccepted || json.Unmarshal(rec.Body.Bytes(), &a) != nil || a.JobID != "j1" || rec.Header().Get(client.HeaderJobID) != "j1" {
			t.Errorf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backups", ""); rec.Code != http.StatusAccepted || n.requests[2].Type != "" {
		t.Errorf("POST without a body: %d %s %+v", rec.Code, rec.Body, n.requests)
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backups", `{"type":"weekly"}`); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"type"`) {
		t.Errorf("bad type: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backups", `{"kind":"full"}`); rec.Code != http.StatusBadRequest {
		t.Errorf("unknown field: %d %s", rec.Code, rec.Body)
	}
	for _, path := range []string{"/api/v1/backups", "/api/v1/backup/list"} {
		rec := do(t, r, http.MethodGet, path, "")
		var l client.BackupList
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &l) != nil {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
		if len(l.Backups) != 2 || !l.FirstRecoverability.Equal(full) || !l.LastSuccess.Equal(incr) || l.AgeSeconds < 7190 || l.AgeSeconds > 7300 || l.WALMax == "" {
			t.Errorf("GET %s: %+v", path, l)
		}
	}
	for id, code := range map[string]int{"F1_I1": 200, "j0": 200, "nope": 404} {
		if rec := do(t, r, http.MethodGet, "/api/v1/backups/"+id, ""); rec.Code != code {
			t.Errorf("GET backup %s: %d %s", id, rec.Code, rec.Body)
		}
	}
	rec := do(t, r, http.MethodGet, "/api/v1/backup/jobs", "")
	var js []client.Job
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &js) != nil || len(js) != 1 || js[0].Backup == nil || js[0].Backup.Label != "F1" {
		t.Errorf("backup jobs keep only backup-family jobs: %d %s", rec.Code, rec.Body)
	}
	for path, id := range map[string]string{"/api/v1/backups/expire": "x1", "/api/v1/backups/check": "c1", "/api/v1/backup-schedules/full/run": "j2"} {
		if rec := do(t, r, http.MethodPost, path, ""); rec.Code != http.StatusAccepted || !strings.Contains(rec.Body.String(), id) {
			t.Errorf("POST %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backup/schedule", `{"type":"full","cron":"bad"}`); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "backup.schedules.full") {
		t.Errorf("bad schedule: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backup/schedule", `{"cron":"@daily"}`); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), `"field":"type"`) {
		t.Errorf("schedule without a type: %d %s", rec.Code, rec.Body)
	}
	if rec := do(t, r, http.MethodPost, "/api/v1/backup/schedule", `{"type":"full","suspend":true}`); rec.Code != http.StatusOK || len(n.changes) != 1 || n.changes[0].Suspend == nil || !*n.changes[0].Suspend {
		t.Errorf("suspend: %d %s %+v", rec.Code, rec.Body, n.changes)
	}

	// The metrics and the cluster view read the status.
	body := do(t, r, http.MethodGet, "/metrics", "").Body.String()
	for _, want := range []string{
		`ramd_backup_last_success_timestamp_seconds{tool="pgbackrest",type="incr"}`,
		`ramd_backup_last_failure_timestamp_seconds{tool="pgbackrest",type="diff"}`,
		`ramd_backup_age_seconds{tool="pgbackrest"} 72`, // 2 h = 7200 s: the newest of any type
		`ramd_backup_last_duration_seconds{tool="pgbackrest"} 42`,
		`ramd_backup_check_ok{tool="pgbackrest"} 1`,
		"ramd_wal_archive_ready_files 3", "ramd_wal_archive_failures_total 2", "ramd_wal_archived_total 7",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	var cs client.ClusterStatus
	if err := json.Unmarshal(do(t, r, http.MethodGet, "/api/v1/cluster", "").Body.Bytes(), &cs); err != nil || cs.Node.Backup == nil ||
		cs.Node.Backup.ReadyWAL != 3 || cs.Node.Backup.FailedCount != 2 || !cs.Node.Backup.LastSuccess.Equal(incr) {
		t.Errorf("cluster view backup: %+v (%v)", cs.Node.Backup, err)
	}
}

func TestBackupRoutesWithoutTool(t *testing.T) {
	t.Parallel()
	r := NewRouter(routesOf(&opsNode{configNode: configNode{cfg: map[string]any{}}}), nil, nil, nil)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/api/v1/backups"}, {http.MethodGet, "/api/v1/backups"}, {http.MethodGet, "/api/v1/backup-schedules"},
	} {
		rec := do(t, r, c.method, c.path, "")
		if rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), "backup.tool") {
			t.Errorf("%s %s without a tool: %d %s", c.method, c.path, rec.Code, rec.Body)
		}
	}
}

func pgArchiver(archived, failed int64) pg.Archiver {
	return pg.Archiver{ArchivedCount: archived, FailedCount: failed, LastArchivedWAL: "000000010000000000000009"}
}

func TestRestoreRoutes(t *testing.T) {
	t.Parallel()
	st := &daemon.Status{Name: "n1", Scope: "demo", PGRunning: true, Role: daemon.RolePrimary}
	n := &repoNode{staticNode: newNode(st)}
	r := NewRouter(routesOf(n), nil, nil, nil)
	for _, tc := range []struct {
		name, path, body string
		code             int
		field            string
	}{
		{"no confirm", "/api/v1/restore", `{}`, http.StatusBadRequest, "confirm"},
		{"wrong confirm", "/api/v1/backup/restore", `{"confirm":"other"}`, http.StatusBadRequest, "confirm"},
		{"unknown field", "/api/v1/restore", `{"confirm":"demo","to":"x"}`, http.StatusBadRequest, ""},
		{"accepted", "/api/v1/restore", `{"backup_id":"F1","target":{"type":"lsn","value":"0/3000028","exclusive":true},"confirm":"demo"}`, http.StatusAccepted, ""},
		{"accepted, other path", "/api/v1/backup/restore", `{"confirm":"demo"}`, http.StatusAccepted, ""},
	} {
		rec := do(t, r, http.MethodPost, tc.path, tc.body)
		if rec.Code != tc.code || tc.field != "" && !strings.Contains(rec.Body.String(), `"field":"`+tc.field+`"`) {
			t.Errorf("%s: %d %s", tc.name, rec.Code, rec.Body)
		}
	}
	want := []daemon.RestoreRequest{
		{BackupID: "F1", Target: dynconf.RecoveryTarget{Type: "lsn", Value: "0/3000028", Exclusive: true}, Confirm: "demo"},
		{Confirm: "demo"},
	}
	if len(n.restores) != 2 || n.restores[0] != want[0] || n.restores[1] != want[1] {
		t.Errorf("requests passed on: %+v", n.restores)
	}
	n.jobs = []consul.Job{{ID: "j0"}, {ID: "j1"}}
	if rec := do(t, r, http.MethodPost, "/api/v1/restore", `{"confirm":"demo"}`); rec.Code != http.StatusConflict || !strings.Contains(rec.Body.String(), `"field":"queue"`) {
		t.Errorf("busy queue: %d %s", rec.Code, rec.Body)
	}
}
