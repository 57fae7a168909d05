package backup_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// customConfig runs the example script against repo for every operation.
func customConfig(script, repo string) dynconf.Backup {
	base := script + " " + repo
	return dynconf.Backup{
		Tool:      dynconf.ToolCustom,
		Retention: dynconf.Retention{FullCount: 1},
		Custom: dynconf.Custom{
			Backup: base, List: base, Restore: base, Expire: base,
			ArchiveCommand: base + ` archive "%p" "%f"`,
			RestoreCommand: base + ` restore-wal "%f" "%p"`,
			Timeout:        2 * time.Minute,
		},
	}
}

// TestCustomExampleScript runs deploy/backup/ramd-backup-example.sh through the contract:
// it archives, takes backups, lists them, restores to a time into a new data directory
// (exactly the rows committed before the target), restores a standby that streams, says
// "not found" with exit 4, and expires down to the retention.
func TestCustomExampleScript(t *testing.T) {
	t.Parallel()
	script := copyScript(t)
	logger := testLogger(t)
	inst := newInstance(t, "p", logger)
	if err := inst.Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	repo := testenv.DataDir(t, "repo")
	if err := inst.OwnedDir(repo, 0o700); err != nil {
		t.Fatal(err)
	}
	tool, err := backup.New(customConfig(script, repo), inst)
	if err != nil {
		t.Fatal(err)
	}
	m := member(t, inst, "")
	start(t, &inst, logger, archiving(tool.ArchiveCommand(m)))
	m = member(t, inst, "")
	ctx := opCtx(t)
	if err := tool.Configure(ctx, m); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	if err := tool.Init(ctx, m); err != nil {
		t.Fatalf("Init: %v", err)
	}

	execSQL(t, inst, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)")
	var prog progressLog
	b1, err := tool.Backup(ctx, backup.BackupRequest{Type: "full", JobID: "job-c1", Member: m}, prog.add)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	checkInfo(t, b1, backup.BackupRequest{Type: "full", JobID: "job-c1"})
	if ps := prog.all(); len(ps) != 2 || ps[1] != (backup.Progress{Message: "pg_basebackup finished", Percent: 90}) {
		t.Errorf("progress %+v", ps)
	}
	_, err = tool.Backup(ctx, backup.BackupRequest{Type: "diff", JobID: "job-c-diff", Member: m}, nil)
	if err == nil || !strings.Contains(err.Error(), "only full backups") {
		t.Errorf("diff backup with the example: %v; want a failure naming full backups", err)
	}

	afterSecond(b1.Stop)
	execSQL(t, inst, "INSERT INTO t SELECT generate_series(101, 200)")
	target := mustQuery(t, inst, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)
	execSQL(t, inst, "INSERT INTO t SELECT generate_series(201, 300)")
	switchAndArchive(t, inst)
	b2, err := tool.Backup(ctx, backup.BackupRequest{Type: "full", JobID: "job-c2", Member: m}, nil)
	if err != nil {
		t.Fatalf("second Backup: %v", err)
	}

	cat, err := tool.List(ctx, m)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(cat.Backups) != 2 || cat.Backups[0] != b1 || cat.Backups[1] != b2 {
		t.Fatalf("List = %+v, want [%+v %+v]", cat.Backups, b1, b2)
	}
	if len(cat.WALMin) != 24 || cat.WALMax < b1.WALStop {
		t.Errorf("archive %q..%q", cat.WALMin, cat.WALMax)
	}
	if err := tool.Check(ctx, m); err != nil {
		t.Errorf("Check: %v", err)
	}

	// Restore to the target: the script picks b1, the newest backup before it.
	pitr := newInstance(t, "pitr", logger)
	pm := member(t, pitr, "")
	if err := tool.Restore(ctx, backup.RestoreRequest{Member: pm, Target: backup.Target{Type: backup.TargetTime, Value: target}}, nil); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	auto := readFile(t, filepath.Join(pm.DataDir, "postgresql.auto.conf"))
	// ramd hands time targets over in the form PostgreSQL reads at start (no "Z").
	ts, err := time.Parse(time.RFC3339Nano, target)
	if err != nil {
		t.Fatal(err)
	}
	pgTime := ts.UTC().Format("2006-01-02 15:04:05.999999-07")
	if !strings.Contains(auto, "recovery_target_time = '"+pgTime+"'") || !strings.Contains(auto, "restore_command = ") {
		t.Errorf("postgresql.auto.conf:\n%s", auto)
	}
	start(t, &pitr, logger, pg.Settings{Parameters: map[string]string{"archive_mode": "off"}})
	if n := waitPromotedCount(t, pitr); n != "200" {
		t.Errorf("restored to %s: %s rows, want 200", target, n)
	}

	// A standby from the newest backup and the archive, streaming from the primary.
	sb := newInstance(t, "standby", logger)
	sm := member(t, sb, "")
	if err := tool.Restore(ctx, backup.RestoreRequest{Member: sm, Standby: true, Target: backup.Target{Type: backup.TargetTime, Value: target}}, nil); err != nil {
		t.Fatalf("Restore standby: %v", err)
	}
	auto = readFile(t, filepath.Join(sm.DataDir, "postgresql.auto.conf"))
	if strings.Contains(auto, "recovery_target") || !strings.Contains(auto, "restore_command = ") {
		t.Errorf("postgresql.auto.conf of a standby:\n%s", auto)
	}
	if _, err := os.Stat(filepath.Join(sm.DataDir, "standby.signal")); err != nil {
		t.Errorf("standby.signal: %v", err)
	}
	start(t, &sb, logger, pg.Settings{Standby: true, PrimaryConnInfo: pg.PrimaryConnInfo(inst.LocalConn(), "standby")})
	execSQL(t, inst, "INSERT INTO t VALUES (301)")
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		n, err := queryString(t.Context(), sb, "SELECT count(*)::text FROM t")
		if err != nil || n != "301" {
			return fmt.Errorf("standby rows %s (%w)", n, err)
		}
		return nil
	})

	other := member(t, newInstance(t, "other", logger), "")
	err = tool.Restore(ctx, backup.RestoreRequest{Member: other, BackupID: "nosuch"}, nil)
	if !errors.Is(err, backup.ErrNotFound) || !strings.Contains(err.Error(), "no backup nosuch") {
		t.Errorf("Restore of an unknown backup: %v; want ErrNotFound with the script's message", err)
	}

	if err := tool.Expire(ctx, m); err != nil {
		t.Fatalf("Expire: %v", err)
	}
	cat, err = tool.List(ctx, m)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(cat.Backups) != 1 || cat.Backups[0].ID != b2.ID || cat.WALMin < b2.WALStart {
		t.Errorf("after expire with retention 1: %+v (archive from %s), want only %s from %s", cat.Backups, cat.WALMin, b2.ID, b2.WALStart)
	}
}

// TestCustomContract: environment and standard input of a command, result lines, exit codes
// 75 and 4, failures with the standard error tail, the timeout, a missing result line.
func TestCustomContract(t *testing.T) {
	t.Parallel()
	inst := newInstance(t, "p", testLogger(t))
	dir := testenv.DataDir(t, "out")
	if err := inst.OwnedDir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	m := backup.Member{Scope: scope, Name: "n1", DataDir: filepath.Join(dir, "data"), BinDir: inst.Config().BinDir,
		Major: 15, Host: "127.0.0.1", Port: 5999, Superuser: "postgres", SuperuserPassword: "s3cret", StateDir: dir}
	tool := func(c dynconf.Custom) backup.Tool {
		if c.List == "" {
			c.List = `echo '{"backups":[]}'`
		}
		tl, err := backup.New(dynconf.Backup{Tool: dynconf.ToolCustom, Retention: dynconf.Retention{FullCount: 3}, Custom: c}, inst)
		if err != nil {
			t.Fatal(err)
		}
		return tl
	}
	ctx := opCtx(t)

	// The request, in the environment and on standard input.
	reqFile := filepath.Join(dir, "request.json")
	envFile := filepath.Join(dir, "env")
	var prog progressLog
	in, err := tool(dynconf.Custom{Backup: `cat > ` + reqFile + `; env | grep -E '^(RAMD_|PG)' | sort > ` + envFile + `
echo 'plain text'
echo '{"progress":"half","percent":50}'
printf '{"backup":{"id":"b-%s","start":"2026-12-04T10:00:00Z","stop":"2026-12-04T10:01:00Z","size_bytes":12}}\n' "$RAMD_JOB_ID"`,
	}).Backup(ctx, backup.BackupRequest{Type: "incr", JobID: "j7", Member: m, Primary: &backup.Member{DataDir: "/p", Host: "10.0.0.1", Port: 5432}}, prog.add)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	want := backup.Info{ID: "b-j7", Type: "incr", Status: backup.StatusDone, JobID: "j7", Size: 12,
		Start: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC), Stop: time.Date(2026, 12, 4, 10, 1, 0, 0, time.UTC)}
	if in != want {
		t.Errorf("Backup = %+v, want %+v", in, want)
	}
	if ps := prog.all(); !slices.Equal(ps, []backup.Progress{{Message: "plain text", Percent: -1}, {Message: "half", Percent: 50}}) {
		t.Errorf("progress %+v", ps)
	}
	var req map[string]any
	if err := json.Unmarshal([]byte(readFile(t, reqFile)), &req); err != nil {
		t.Fatalf("request on stdin: %v", err)
	}
	for k, v := range map[string]any{"operation": "backup", "scope": scope, "member": "n1", "pgdata": m.DataDir,
		"pghost": "127.0.0.1", "pgport": 5999.0, "pguser": "postgres", "backup_type": "incr", "job_id": "j7",
		"primary":   map[string]any{"pgdata": "/p", "pghost": "10.0.0.1", "pgport": 5432.0},
		"retention": map[string]any{"full_count": 3.0}} {
		if got, err := json.Marshal(req[k]); err != nil || string(got) != mustJSON(t, v) {
			t.Errorf("request %s = %s, want %s", k, got, mustJSON(t, v))
		}
	}
	if strings.Contains(readFile(t, reqFile), "s3cret") {
		t.Errorf("the password is on standard input")
	}
	env := readFile(t, envFile)
	for _, kv := range []string{"RAMD_BACKUP_OPERATION=backup", "RAMD_SCOPE=" + scope, "RAMD_MEMBER=n1", "RAMD_PGDATA=" + m.DataDir,
		"RAMD_PGHOST=127.0.0.1", "RAMD_PGPORT=5999", "RAMD_PGUSER=postgres", "RAMD_BACKUP_TYPE=incr", "RAMD_JOB_ID=j7",
		"RAMD_PRIMARY_PGHOST=10.0.0.1", "RAMD_RETENTION_FULL_COUNT=3", "RAMD_BACKUP_ID=", "RAMD_TARGET_TYPE=",
		"RAMD_RESTORE_STANDBY=false", "PGPASSWORD=s3cret", "PGHOST=127.0.0.1", "PGPORT=5999", "PGUSER=postgres"} {
		if !strings.Contains("\n"+env, "\n"+kv+"\n") {
			t.Errorf("environment lacks %s:\n%s", kv, env)
		}
	}

	// Restore: target and flags.
	err = tool(dynconf.Custom{Restore: `[ "$RAMD_BACKUP_OPERATION $RAMD_BACKUP_ID $RAMD_TARGET_TYPE $RAMD_TARGET_VALUE $RAMD_TARGET_EXCLUSIVE $RAMD_RESTORE_STANDBY $RAMD_RESTORE_DELTA" = "restore b1 lsn 0/3000000 true false true" ] && [ -d "$RAMD_PGDATA" ]`}).
		Restore(ctx, backup.RestoreRequest{Member: m, BackupID: "b1", Target: backup.Target{Type: "lsn", Value: "0/3000000", Exclusive: true}, Delta: true}, nil)
	if err != nil {
		t.Errorf("Restore with a target: %v", err)
	}

	for _, c := range []struct {
		name, cmd string
		is        error
		contains  string
	}{
		{"busy", `echo '{"error":"repository locked"}'; exit 75`, backup.ErrBusy, "repository locked"},
		{"not found", `exit 4`, backup.ErrNotFound, "exit code 4"},
		{"failure", `echo progress; echo 'disk full' >&2; exit 3`, nil, "disk full"},
		{"no result", `echo '{"progress":"done"}'`, nil, "without a result line"},
		{"bad result", `echo '{"backup":{"id":"x","start":"yesterday"}}'`, nil, "result line"},
		{"no id", `echo '{"backup":{"type":"full"}}'`, nil, `without "id"`},
		{"failed status", `echo '{"backup":{"id":"x","status":"failed"}}'`, nil, "reported backup x as failed"},
	} {
		_, err := tool(dynconf.Custom{Backup: c.cmd}).Backup(ctx, backup.BackupRequest{Type: "full", Member: m}, nil)
		switch {
		case err == nil:
			t.Errorf("%s: no error", c.name)
		case c.is != nil && !errors.Is(err, c.is):
			t.Errorf("%s: %v, want %v", c.name, err, c.is)
		case c.is == nil && (errors.Is(err, backup.ErrBusy) || errors.Is(err, backup.ErrNotFound)):
			t.Errorf("%s: %v is busy or not found", c.name, err)
		case !strings.Contains(err.Error(), c.contains):
			t.Errorf("%s: %v, want it to contain %q", c.name, err, c.contains)
		}
	}

	// The timeout kills the command (its process group) by pid.
	began := time.Now()
	slow, err := backup.New(dynconf.Backup{Tool: dynconf.ToolCustom, Custom: dynconf.Custom{
		Backup: `sleep 30 & wait`, List: "true", Timeout: time.Second}}, inst)
	if err != nil {
		t.Fatal(err)
	}
	_, err = slow.Backup(ctx, backup.BackupRequest{Type: "full", Member: m}, nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(began) > 10*time.Second {
		t.Errorf("slow command after %s: %v; want the deadline", time.Since(began), err)
	}

	// List: oldest first, a system identifier above 2^53.
	cat, err := tool(dynconf.Custom{Backup: "true", List: `echo '{"backups":[{"id":"b2","start":"2026-12-04T11:00:00Z"},{"id":"b1","start":"2026-12-04T10:00:00Z","status":"failed"}],"wal_min":"000000010000000000000001","system_id":7715385814919701325}'`}).List(ctx, m)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(cat.Backups) != 2 || cat.Backups[0].ID != "b1" || cat.Backups[0].Status != backup.StatusFailed ||
		cat.Backups[1].Status != backup.StatusDone || cat.SystemID != 7715385814919701325 || cat.WALMin != "000000010000000000000001" {
		t.Errorf("List = %+v", cat)
	}
	if err := tool(dynconf.Custom{Backup: "true", List: `echo '{"backups":[{"start":"2026-12-04T11:00:00Z"}]}'`}).Check(ctx, m); err == nil {
		t.Errorf("Check with a list result lacking ids: no error")
	}
	if err := tool(dynconf.Custom{Backup: "true"}).Expire(ctx, m); err != nil {
		t.Errorf("Expire without a command: %v", err)
	}
	if err := tool(dynconf.Custom{Backup: "true"}).Restore(ctx, backup.RestoreRequest{Member: m}, nil); err == nil {
		t.Errorf("Restore without a command: no error")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
