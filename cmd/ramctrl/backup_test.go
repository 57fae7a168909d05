package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// The members of the ramctrl tests keep backup requests and answer from a fixed repository;
// each request's job runs through its phases on the next reads.
func (n *memNode) StartBackup(_ context.Context, r daemon.BackupRequest) (string, error) {
	if r.Type != "full" && r.Type != "diff" && r.Type != "incr" {
		return "", &dynconf.FieldError{Field: "type", Value: r.Type, Reason: "pgbackrest takes [full diff incr] backups"}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.backupRequests = append(n.backupRequests, r)
	id := fmt.Sprintf("b%d", len(n.backupRequests))
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	queued := consul.Job{ID: id, Kind: consul.JobBackupKind, State: consul.JobPending, Backup: &consul.JobBackup{Tool: "pgbackrest", Type: r.Type},
		Phases: []consul.JobPhase{{Name: "requested", At: at, Node: "n1"}}}
	running := queued
	running.State, running.Node = consul.JobRunning, "n1"
	running.Phases = append(slices.Clone(queued.Phases), consul.JobPhase{Name: "running on n1", At: at.Add(time.Second), Node: "n1"})
	running.Backup = &consul.JobBackup{Tool: "pgbackrest", Type: r.Type, Progress: "copying files"}
	done := running
	done.State = consul.JobSucceeded
	done.Phases = append(slices.Clone(running.Phases), consul.JobPhase{Name: "succeeded", At: at.Add(9 * time.Second), Node: "n1"})
	done.Backup = &consul.JobBackup{Tool: "pgbackrest", Type: r.Type, Label: "20260102-030405F", StartLSN: "0/2000028", StopLSN: "0/2000100",
		WALStart: "000000010000000000000002", WALStop: "000000010000000000000002", Size: 23 << 20}
	n.jobs[id] = []consul.Job{queued, running, done}
	n.listed = append([]consul.Job{done}, n.listed...)
	return id, nil
}

func (n *memNode) StartBackupExpire(context.Context) (string, error) {
	return "", fmt.Errorf("not used")
}
func (n *memNode) StartBackupCheck(context.Context) (string, error) {
	return "", fmt.Errorf("not used")
}

func (n *memNode) StartRestore(context.Context, daemon.RestoreRequest) (string, error) {
	return "", fmt.Errorf("not used")
}

func (n *memNode) BackupCatalog(context.Context) (backup.Catalog, string, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.backups, "pgbackrest", nil
}

func (n *memNode) BackupSchedules(context.Context) ([]daemon.ScheduleView, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.schedules, nil
}

func (n *memNode) ChangeSchedule(_ context.Context, ch daemon.ScheduleChange) ([]daemon.ScheduleView, error) {
	if _, err := dynconf.CronParser.Parse(ch.Cron); ch.Cron != "" && err != nil {
		return nil, &dynconf.FieldError{Field: "backup.schedules." + ch.Type, Value: ch.Cron, Reason: "not a cron expression"}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	i := slices.IndexFunc(n.schedules, func(v daemon.ScheduleView) bool { return v.Type == ch.Type })
	switch {
	case ch.Remove && i >= 0:
		n.schedules = slices.Delete(n.schedules, i, i+1)
	case i < 0:
		n.schedules = append(n.schedules, daemon.ScheduleView{Type: ch.Type, Cron: ch.Cron})
	case ch.Cron != "":
		n.schedules[i].Cron = ch.Cron
	}
	if ch.Suspend != nil && i >= 0 {
		n.schedules[i].Suspended = *ch.Suspend
	}
	return n.schedules, nil
}

func (n *memNode) RunScheduleNow(ctx context.Context, typ string) (string, error) {
	return n.StartBackup(ctx, daemon.BackupRequest{Type: typ, Schedule: typ})
}

func TestBackupCommands(t *testing.T) {
	t.Parallel()
	srv := startAPI(t, "n1")
	n := srv.nodes["n1"]
	stop := time.Now().Add(-90 * time.Minute)
	n.backups = backup.Catalog{WALMin: "000000010000000000000002", WALMax: "000000010000000000000009", Backups: []backup.Info{
		{ID: "20260102-030405F", Type: "full", Status: backup.StatusDone, Start: stop.Add(-time.Minute), Stop: stop, Size: 23 << 20, RepoSize: 3 << 20,
			WALStart: "000000010000000000000002", WALStop: "000000010000000000000002", JobID: "b1"},
	}}
	runIt := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(args, "--api", srv.URL), "", &out, &errb)
		return code, out.String(), errb.String()
	}
	// create follows the job through its phases and prints the tool's record.
	code, out, errs := runIt("backup", "create", "--type", "diff")
	if code != exitOK || !strings.Contains(out, "running on n1") || !strings.Contains(out, "copying files") ||
		!strings.Contains(out, "backup 20260102-030405F (diff): lsn 0/2000028..0/2000100") {
		t.Fatalf("backup create: %d\n%s\n%s", code, out, errs)
	}
	if got := n.backupRequests; len(got) != 1 || got[0].Type != "diff" {
		t.Errorf("requests %+v", got)
	}
	if code, _, errs := runIt("backup", "create", "--type", "weekly"); code != exitError || !strings.Contains(errs, "type") {
		t.Errorf("bad type: %d %s", code, errs)
	}
	if code, out, _ := runIt("backup", "create", "--no-wait"); code != exitOK || !strings.Contains(out, "job b2 queued") {
		t.Errorf("create --no-wait: %d %s", code, out)
	}
	code, out, _ = runIt("backup", "list")
	if code != exitOK || !strings.Contains(out, "20260102-030405F") || !strings.Contains(out, "23.0 MiB") || !strings.Contains(out, "last good 1h30m") {
		t.Errorf("backup list: %d\n%s", code, out)
	}
	code, out, _ = runIt("backup", "list", "-output", "json")
	var l struct {
		Backups []struct{ ID string } `json:"backups"`
		Age     float64               `json:"last_success_age_seconds"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &l) != nil || len(l.Backups) != 1 || l.Age < 5000 {
		t.Errorf("backup list json: %d %s", code, out)
	}
	if code, out, _ := runIt("backup", "show", "b1"); code != exitOK || !strings.Contains(out, "20260102-030405F") {
		t.Errorf("backup show by job id: %d %s", code, out)
	}
	if code, _, errs := runIt("backup", "show", "nope"); code != exitError || !strings.Contains(errs, "no backup nope") {
		t.Errorf("backup show missing: %d %s", code, errs)
	}
	if code, out, _ := runIt("backup", "jobs"); code != exitOK || !strings.Contains(out, "b2") || !strings.Contains(out, "succeeded") {
		t.Errorf("backup jobs: %d %s", code, out)
	}
	if code, out, _ := runIt("backup", "schedule", "set", "full", "0 1 * * 0"); code != exitOK || !strings.Contains(out, "0 1 * * 0") {
		t.Errorf("schedule set: %d %s", code, out)
	}
	if code, out, _ := runIt("backup", "schedule", "suspend", "full"); code != exitOK || !strings.Contains(out, "yes") {
		t.Errorf("schedule suspend: %d %s", code, out)
	}
	if code, _, errs := runIt("backup", "schedule", "set", "full", "every sunday"); code != exitError || !strings.Contains(errs, "cron") {
		t.Errorf("schedule set bad cron: %d %s", code, errs)
	}
	if code, _, _ := runIt("backup", "schedule", "run", "full", "--no-wait"); code != exitOK {
		t.Errorf("schedule run: %d", code)
	}
	if code, _, _ := runIt("backup", "frobnicate"); code != exitUsage {
		t.Errorf("unknown subcommand: %d", code)
	}
}

func TestRestoreFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		f     restoreFlags
		want  client.RestoreRequest
		fails bool
	}{
		{"latest to the end", restoreFlags{confirm: "pg"}, client.RestoreRequest{Confirm: "pg"}, false},
		{"time target", restoreFlags{confirm: "pg", backup: "F1", time: "2026-12-04T12:00:00Z"},
			client.RestoreRequest{BackupID: "F1", Confirm: "pg", Target: &client.RestoreTarget{Type: "time", Value: "2026-12-04T12:00:00Z"}}, false},
		{"exclusive lsn", restoreFlags{confirm: "pg", lsn: "0/3000028", exclusive: true},
			client.RestoreRequest{Confirm: "pg", Target: &client.RestoreTarget{Type: "lsn", Value: "0/3000028", Exclusive: true}}, false},
		{"immediate", restoreFlags{confirm: "pg", immediate: true}, client.RestoreRequest{Confirm: "pg", Target: &client.RestoreTarget{Type: "immediate"}}, false},
		{"two targets", restoreFlags{confirm: "pg", lsn: "0/1", xid: "7"}, client.RestoreRequest{}, true},
		{"exclusive without a target", restoreFlags{confirm: "pg", exclusive: true}, client.RestoreRequest{}, true},
		{"no confirmation", restoreFlags{time: "2026-12-04T12:00:00Z"}, client.RestoreRequest{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := tt.f.request()
			if tt.fails {
				if err == nil {
					t.Errorf("accepted: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
