package daemon

import (
	"testing"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

func TestCheckRestoreRequest(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	first := now.Add(-2 * time.Hour)
	second := now.Add(-time.Hour)
	cat := backup.Catalog{Backups: []backup.Info{
		{ID: "F1", Status: backup.StatusDone, Stop: first},
		{ID: "F2", Status: backup.StatusDone, Stop: second},
		{ID: "F3", Status: backup.StatusRunning},
	}}
	at := func(d time.Duration) dynconf.RecoveryTarget {
		return dynconf.RecoveryTarget{Type: dynconf.TargetTime, Value: now.Add(d).Format(time.RFC3339)}
	}
	tests := []struct {
		name  string
		req   RestoreRequest
		cat   backup.Catalog
		field string
	}{
		{"latest to the end", RestoreRequest{Confirm: "pg"}, cat, ""},
		{"no confirmation", RestoreRequest{}, cat, "confirm"},
		{"another cluster's name", RestoreRequest{Confirm: "prod"}, cat, "confirm"},
		{"confirmation checked before the target", RestoreRequest{Target: at(time.Hour)}, cat, "confirm"},
		{"time between the backups", RestoreRequest{Confirm: "pg", Target: at(-90 * time.Minute)}, cat, ""},
		{"time in the future", RestoreRequest{Confirm: "pg", Target: at(time.Minute)}, cat, "target.value"},
		{"time before the first recoverability point", RestoreRequest{Confirm: "pg", Target: at(-3 * time.Hour)}, cat, "target.value"},
		{"time before the end of the backup asked for", RestoreRequest{Confirm: "pg", BackupID: "F2", Target: at(-90 * time.Minute)}, cat, "target.value"},
		{"time after the backup asked for", RestoreRequest{Confirm: "pg", BackupID: "F1", Target: at(-90 * time.Minute)}, cat, ""},
		{"unknown backup", RestoreRequest{Confirm: "pg", BackupID: "F9"}, cat, "backup_id"},
		{"unfinished backup", RestoreRequest{Confirm: "pg", BackupID: "F3"}, cat, "backup_id"},
		{"empty repository", RestoreRequest{Confirm: "pg"}, backup.Catalog{}, "backup_id"},
		{"bad lsn", RestoreRequest{Confirm: "pg", Target: dynconf.RecoveryTarget{Type: dynconf.TargetLSN, Value: "x"}}, cat, "target.value"},
		{"lsn", RestoreRequest{Confirm: "pg", Target: dynconf.RecoveryTarget{Type: dynconf.TargetLSN, Value: "0/3000028"}}, cat, ""},
		{"immediate takes no value", RestoreRequest{Confirm: "pg", Target: dynconf.RecoveryTarget{Type: dynconf.TargetImmediate, Value: "1"}}, cat, "target.value"},
		{"unknown type", RestoreRequest{Confirm: "pg", Target: dynconf.RecoveryTarget{Type: "yesterday"}}, cat, "target.type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fe := checkRestoreRequest(tt.req, "pg", tt.cat, now)
			got := ""
			if fe != nil {
				got = fe.Field
			}
			if got != tt.field {
				t.Errorf("field %q, want %q (%v)", got, tt.field, fe)
			}
		})
	}
}

func TestErrRestoreBusy(t *testing.T) {
	t.Parallel()
	if fe := errRestoreBusy(consul.BackupQueue{}); fe != nil {
		t.Errorf("empty queue refused: %v", fe)
	}
	if fe := errRestoreBusy(consul.BackupQueue{Jobs: []string{"j1"}}); fe == nil || fe.Field != "queue" {
		t.Errorf("queued job: %v", fe)
	}
	if fe := errRestoreBusy(consul.BackupQueue{Restore: &consul.RestoreState{Job: "r1"}}); fe == nil || fe.Field != "queue" {
		t.Errorf("restore in progress: %v", fe)
	}
}
