package backup_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// Every helper of this file starts with bm: the package's other tool tests share it.

const (
	bmOpTimeout = 90 * time.Second // bound of each tool call, Start, Basebackup
	bmWaitFor   = 30 * time.Second // bound of each Eventually
	bmPoll      = 200 * time.Millisecond
	bmServer    = "main"
)

var bmWALRe = regexp.MustCompile(`^[0-9A-F]{24}$`)

// bmLogWriter sends log lines to t.Log until the test's cleanups have run.
type bmLogWriter struct {
	mu   sync.Mutex // guards t and done
	t    testing.TB
	done bool
}

func (w *bmLogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func bmLogger(t *testing.T) *slog.Logger {
	t.Helper()
	w := &bmLogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func bmCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), bmOpTimeout)
	t.Cleanup(cancel)
	return ctx
}

// bmRequire skips (or fails under RAMD_TEST_REQUIRE_REAL=1) without Barman.
func bmRequire(t *testing.T) {
	t.Helper()
	testenv.Binary(t, "barman", "barman")
	if out, err := exec.Command("barman", "--version").CombinedOutput(); err != nil {
		testenv.Missing(t, "barman --version: %v: %s", err, out)
	}
}

// bmInstance builds an Instance on a fresh data directory and port; a cleanup stops it.
func bmInstance(t *testing.T, name string, logger *slog.Logger, dataDir string) *pg.Instance {
	t.Helper()
	if dataDir == "" {
		dataDir = testenv.DataDir(t, name)
	}
	inst, err := pg.New(pg.Config{
		BinDir:     testenv.PGBinDir(t),
		DataDir:    dataDir,
		ListenAddr: "127.0.0.1",
		Port:       testenv.FreePort(t),
	}, logger)
	if err != nil {
		t.Fatalf("pg.New %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := inst.Stop(ctx, pg.StopImmediate); err != nil {
			t.Errorf("cleanup: stop %s: %v", name, err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(inst.Config().LogFile); err == nil {
				lines := strings.Split(string(b), "\n")
				t.Logf("server log of %s (tail):\n%s", name, strings.Join(lines[max(len(lines)-30, 0):], "\n"))
			}
		}
	})
	return inst
}

// bmStart writes s and starts the server, moving it to another port when another process
// took its port meanwhile.
func bmStart(t *testing.T, inst **pg.Instance, logger *slog.Logger, s pg.Settings) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		if _, err := (*inst).WriteConfig(s); err != nil {
			t.Fatalf("WriteConfig: %v", err)
		}
		err := (*inst).Start(bmCtx(t))
		if err == nil {
			return
		}
		if attempt == 3 || !errors.Is(err, pg.ErrStartFailed) || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("Start: %v", err)
		}
		cfg := (*inst).Config()
		cfg.Port = testenv.FreePort(t)
		if *inst, err = pg.New(cfg, logger); err != nil {
			t.Fatalf("pg.New: %v", err)
		}
	}
}

// bmPrimary initializes and starts a primary with the replication role.
func bmPrimary(t *testing.T, name string, logger *slog.Logger) *pg.Instance {
	t.Helper()
	inst := bmInstance(t, name, logger, "")
	if err := inst.Initdb(bmCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	bmStart(t, &inst, logger, pg.Settings{})
	if err := inst.EnsureRoles(bmCtx(t)); err != nil {
		t.Fatalf("EnsureRoles: %v", err)
	}
	return inst
}

// bmMember describes inst for the tool; state is this node's state directory.
func bmMember(inst *pg.Instance, state string) backup.Member {
	c := inst.Config()
	return backup.Member{
		Scope: "ramdtest", Name: filepath.Base(c.DataDir), DataDir: c.DataDir, BinDir: c.BinDir, Major: 15,
		Host: "127.0.0.1", Port: c.Port, SocketDir: c.SocketDir,
		Superuser: c.Superuser, SuperuserPassword: c.SuperuserPassword,
		ReplicationUser: c.ReplicationUser, ReplicationPassword: c.ReplicationPassword, StateDir: state,
	}
}

// bmSetup is a primary, a Barman home and state directory, and the tool; a cleanup stops
// the streaming archiver by pid (Stop) and checks that the pid is gone.
type bmSetup struct {
	logger  *slog.Logger
	primary *pg.Instance
	home    string
	state   string
	tool    backup.Tool
}

func bmNew(t *testing.T, retention dynconf.Retention) *bmSetup {
	t.Helper()
	bmRequire(t)
	s := &bmSetup{logger: bmLogger(t)}
	s.primary = bmPrimary(t, "primary", s.logger)
	s.home = testenv.DataDir(t, "barman")
	s.state = testenv.DataDir(t, "state")
	tool, err := backup.New(dynconf.Backup{
		Tool:      dynconf.ToolBarman,
		Retention: retention,
		Barman:    dynconf.Barman{Home: s.home, Server: bmServer},
	}, s.primary)
	if err != nil {
		t.Fatalf("backup.New: %v", err)
	}
	s.tool = tool
	t.Cleanup(func() { bmStopArchiver(t, s) })
	return s
}

func (s *bmSetup) member() backup.Member { return bmMember(s.primary, s.state) }

// bmStopArchiver stops receive-wal through the tool and checks that its pid is gone.
func bmStopArchiver(t *testing.T, s *bmSetup) {
	t.Helper()
	pid := bmReceiverPID(s)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.tool.(backup.Stopper).Stop(ctx, s.member()); err != nil {
		t.Errorf("cleanup: stop the streaming archiver: %v", err)
	}
	if pid > 0 {
		if err := testenv.Poll(10*time.Second, 50*time.Millisecond, func() error { return bmPIDGone(pid) }); err != nil {
			t.Errorf("cleanup: receive-wal: %v", err)
		}
	}
}

// bmReceiverPID is the pid in Barman's receive-wal lock file while it is held (0 none).
func bmReceiverPID(s *bmSetup) int {
	path := filepath.Join(s.home, "."+bmServer+"-receive-wal.lock")
	if !bmLockHeld(path) {
		return 0
	}
	b, _ := os.ReadFile(path)
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

func bmLockHeld(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// bmPIDGone reports an error while pid runs (a zombie counts as gone).
func bmPIDGone(pid int) error {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	if i := strings.LastIndexByte(string(b), ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return nil
	}
	return fmt.Errorf("process %d still runs", pid)
}

func bmConn(ctx context.Context, inst *pg.Instance) (*pgx.Conn, error) {
	return pgx.Connect(ctx, inst.LocalConn().DSN())
}

// bmExec runs statements on inst, each in its own transaction.
func bmExec(t *testing.T, inst *pg.Instance, stmts ...string) {
	t.Helper()
	ctx := bmCtx(t)
	conn, err := bmConn(ctx, inst)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// bmQuery returns the single text value of sql on inst.
func bmQuery(ctx context.Context, inst *pg.Instance, sql string) (string, error) {
	conn, err := bmConn(ctx, inst)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		return "", err
	}
	return s, nil
}

func bmMustQuery(t *testing.T, inst *pg.Instance, sql string) string {
	t.Helper()
	s, err := bmQuery(bmCtx(t), inst, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// bmWaitArchived switches WAL on inst and waits until the switched segment is in the
// archive (Maintain files it from the streaming directory).
func bmWaitArchived(t *testing.T, s *bmSetup, inst *pg.Instance, m backup.Member) string {
	t.Helper()
	seg := bmMustQuery(t, inst, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	bmMustQuery(t, inst, "SELECT pg_switch_wal()::text")
	p := filepath.Join(s.home, bmServer, "wals", seg[:16], seg)
	var last time.Time
	testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
		if _, err := os.Stat(p); err == nil {
			return nil
		}
		// barman cron files what pg_receivewal finished (each run starts a few Python
		// processes: not more than once a second).
		if time.Since(last) > time.Second {
			last = time.Now()
			if err := s.tool.Maintain(bmCtx(t), m); err != nil {
				return err
			}
		}
		return fmt.Errorf("segment %s not archived yet", seg)
	})
	return seg
}

func bmProgress(t *testing.T) func(backup.Progress) {
	t.Helper()
	start := time.Now()
	return func(p backup.Progress) { t.Logf("progress %5.1fs: %s", time.Since(start).Seconds(), p.Message) }
}

// TestBarmanLifecycle runs one primary through Init, Check, a backup job, the catalog, a
// point-in-time recovery into a new cluster, a standby clone, a concurrent backup refused
// as busy, and retention.
//
//nolint:tparallel // the subtests are the steps of one server's life, in order
func TestBarmanLifecycle(t *testing.T) {
	t.Parallel()
	s := bmNew(t, dynconf.Retention{FullCount: 1})
	m := s.member()

	start := time.Now()
	if err := s.tool.Init(bmCtx(t), m); err != nil {
		t.Fatalf("Init: %v", err)
	}
	if err := s.tool.Configure(bmCtx(t), m); err != nil {
		t.Fatalf("Configure after Init: %v", err)
	}
	if err := s.tool.Check(bmCtx(t), m); err != nil {
		t.Fatalf("Check after Init: %v", err)
	}
	t.Logf("init and check: %s", time.Since(start))
	conf, err := os.ReadFile(filepath.Join(s.state, "barman.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"backup_method = postgres", "streaming_archiver = on", "archiver = off",
		"retention_policy = REDUNDANCY 1", "slot_name = barman", "port=" + strconv.Itoa(m.Port)} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("barman.conf lacks %q:\n%s", want, conf)
		}
	}
	if got := s.tool.ArchiveCommand(m); got != "" {
		t.Errorf("ArchiveCommand = %q, want none (streaming archiver)", got)
	}

	bmExec(t, s.primary, "CREATE TABLE t (i int)", "INSERT INTO t SELECT generate_series(1, 1000)")
	start = time.Now()
	b1, err := s.tool.Backup(bmCtx(t), backup.BackupRequest{Type: "full", JobID: "job-1", Member: m}, bmProgress(t))
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	t.Logf("backup: %s: %+v", time.Since(start), b1)
	bmCheckInfo(t, b1, "job-1")

	// Rows committed before the target, the target, rows after it.
	bmExec(t, s.primary, "INSERT INTO t SELECT generate_series(1, 500)")
	target := bmMustQuery(t, s.primary, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
	time.Sleep(50 * time.Millisecond) // the next commit's timestamp is past the target
	bmExec(t, s.primary, "INSERT INTO t SELECT generate_series(1, 700)")
	bmWaitArchived(t, s, s.primary, m)

	t.Run("List", func(t *testing.T) {
		cat, err := s.tool.List(bmCtx(t), m)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(cat.Backups) != 1 || cat.Backups[0].ID != b1.ID || cat.Backups[0].Retention != "VALID" || cat.Backups[0].JobID != "job-1" {
			t.Fatalf("List = %+v, want backup %s VALID of job-1", cat.Backups, b1.ID)
		}
		sysid, _ := strconv.ParseUint(bmMustQuery(t, s.primary, "SELECT system_identifier::text FROM pg_control_system()"), 10, 64)
		if cat.SystemID != sysid || cat.WALMin != b1.WALStart || cat.WALMax <= b1.WALStop {
			t.Errorf("catalog system id %d WAL %s..%s, want %d and %s..(> %s)", cat.SystemID, cat.WALMin, cat.WALMax, sysid, b1.WALStart, b1.WALStop)
		}
	})

	// The restores read backup 1 and the archive only: they run side by side.
	t.Run("Restores", func(t *testing.T) { bmRestores(t, s, m, b1, target) })

	t.Run("BusyAndRetention", func(t *testing.T) {
		lock := filepath.Join(s.home, "."+bmServer+"-backup.lock")
		type result struct {
			info backup.Info
			err  error
		}
		done := make(chan result, 1)
		go func() {
			i, err := s.tool.Backup(context.WithoutCancel(bmCtx(t)), backup.BackupRequest{JobID: "job-2", Member: m}, nil)
			done <- result{i, err}
		}()
		testenv.Eventually(t, bmWaitFor, 20*time.Millisecond, func() error {
			if !bmLockHeld(lock) {
				return errors.New("the first backup does not hold the lock yet")
			}
			return nil
		})
		if _, err := s.tool.Backup(bmCtx(t), backup.BackupRequest{JobID: "job-3", Member: m}, nil); !errors.Is(err, backup.ErrBusy) {
			t.Errorf("second concurrent Backup: %v, want ErrBusy", err)
		}
		var b2 result
		select {
		case b2 = <-done:
		case <-time.After(bmOpTimeout):
			t.Fatal("the first backup did not end")
		}
		if b2.err != nil {
			t.Fatalf("Backup job-2: %v", b2.err)
		}
		bmCheckInfo(t, b2.info, "job-2")

		cat, err := s.tool.List(bmCtx(t), m)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		got := map[string]string{}
		for _, b := range cat.Backups {
			got[b.JobID] = b.Retention
		}
		// REDUNDANCY 1: the older backup is obsolete (unless cron deleted it already).
		if got["job-2"] != "VALID" || (got["job-1"] != "" && got["job-1"] != "OBSOLETE") {
			t.Errorf("retention = %v, want job-1 OBSOLETE (or gone), job-2 VALID", got)
		}
		if err := s.tool.Expire(bmCtx(t), m); err != nil {
			t.Fatalf("Expire: %v", err)
		}
		cat, err = s.tool.List(bmCtx(t), m)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if len(cat.Backups) != 1 || cat.Backups[0].ID != b2.info.ID {
			t.Errorf("after Expire: %+v, want only %s", cat.Backups, b2.info.ID)
		}
		if err := s.tool.Check(bmCtx(t), m); err != nil {
			t.Errorf("Check: %v", err)
		}
	})
}

// bmStripRecovery removes restore_command and recovery_end_command from a copy's
// postgresql.auto.conf, as the daemon does before it starts a replica restored from a
// backup (Barman's members get no restore_command).
func bmStripRecovery(t *testing.T, dir string) {
	t.Helper()
	path := filepath.Join(dir, "postgresql.auto.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(b), "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && (strings.TrimSpace(k) == "restore_command" || strings.TrimSpace(k) == "recovery_end_command") {
			continue
		}
		kept = append(kept, line)
	}
	if err := os.WriteFile(path, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
}

// bmRestores restores backup b1 of s in several ways side by side: to the time target, to
// the end of the archive, as a standby clone, and refused requests.
func bmRestores(t *testing.T, s *bmSetup, m backup.Member, b1 backup.Info, target string) {
	t.Helper()
	t.Run("PITR", func(t *testing.T) {
		t.Parallel()
		dir := testenv.DataDir(t, "pitr")
		rm := m
		rm.DataDir = dir
		start := time.Now()
		if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, Target: backup.Target{Type: backup.TargetTime, Value: target}}, bmProgress(t)); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		auto, _ := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
		if !strings.Contains(string(auto), "restore_command = 'cp barman_wal/%f %p'") || !strings.Contains(string(auto), "recovery_target_action = 'promote'") {
			t.Errorf("postgresql.auto.conf of the copy:\n%s", auto)
		}
		inst := bmInstance(t, "pitr", s.logger, dir)
		bmStart(t, &inst, s.logger, pg.Settings{})
		testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
			r, err := bmQuery(t.Context(), inst, "SELECT pg_is_in_recovery()::text || ' ' || (SELECT count(*) FROM t)::text")
			if err != nil {
				return err
			}
			if r != "false 1500" {
				return fmt.Errorf("in recovery, rows: %s; want false 1500", r)
			}
			return nil
		})
		t.Logf("restore to %s and recovery: %s", target, time.Since(start))
	})

	t.Run("RestoreEnd", func(t *testing.T) {
		t.Parallel()
		dir := testenv.DataDir(t, "end")
		rm := m
		rm.DataDir = dir
		start := time.Now()
		if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm}, nil); err != nil {
			t.Fatalf("Restore: %v", err)
		}
		auto, _ := os.ReadFile(filepath.Join(dir, "postgresql.auto.conf"))
		if !strings.Contains(string(auto), "restore_command = '"+strings.ReplaceAll(s.tool.RestoreCommand(rm), " get-wal", " get-wal -P")) ||
			strings.Contains(string(auto), "sudo") {
			t.Errorf("postgresql.auto.conf of the copy:\n%s", auto)
		}
		inst := bmInstance(t, "end", s.logger, dir)
		bmStart(t, &inst, s.logger, pg.Settings{})
		// Every row: the archive and the newest streamed (.partial) segment.
		testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
			r, err := bmQuery(t.Context(), inst, "SELECT pg_is_in_recovery()::text || ' ' || (SELECT count(*) FROM t)::text || ' ' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)")
			if err != nil {
				return err
			}
			if r != "false 2200 00000002" {
				return fmt.Errorf("in recovery, rows, timeline: %s; want false 2200 00000002", r)
			}
			return nil
		})
		t.Logf("restore to the end and recovery: %s", time.Since(start))
	})

	t.Run("PITRErrors", func(t *testing.T) {
		t.Parallel()
		rm := m
		rm.DataDir = testenv.DataDir(t, "none")
		err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, Target: backup.Target{Type: backup.TargetTime, Value: "2000-01-01T00:00:00Z"}}, nil)
		if !errors.Is(err, backup.ErrNotFound) {
			t.Errorf("Restore before the first backup: %v, want ErrNotFound", err)
		}
		err = s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, BackupID: "20000101T000000"}, nil)
		if !errors.Is(err, backup.ErrNotFound) {
			t.Errorf("Restore of an unknown backup: %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(rm.DataDir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a refused restore created %s", rm.DataDir)
		}
	})

	t.Run("StandbyClone", func(t *testing.T) {
		t.Parallel()
		dir := testenv.DataDir(t, "clone")
		rm := m
		rm.DataDir = dir
		if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, Standby: true}, nil); err != nil {
			t.Fatalf("Restore standby: %v", err)
		}
		if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil {
			t.Errorf("no standby.signal: %v", err)
		}
		// The archived WAL is in pg_wal: the clone needs no restore_command (the daemon
		// strips the tool's before the start, as here).
		if _, err := os.Stat(filepath.Join(dir, "pg_wal", b1.WALStop)); err != nil {
			t.Errorf("the clone's pg_wal lacks the backup's last segment: %v", err)
		}
		bmStripRecovery(t, dir)
		inst := bmInstance(t, "clone", s.logger, dir)
		bmStart(t, &inst, s.logger, pg.Settings{Standby: true, PrimaryConnInfo: pg.PrimaryConnInfo(s.primary.ReplicationConn(), "clone")})
		testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
			st, err := inst.Status(t.Context())
			switch {
			case err != nil:
				return err
			case !st.InRecovery || st.ReceiverStatus != "streaming":
				return fmt.Errorf("in recovery %v, receiver %q", st.InRecovery, st.ReceiverStatus)
			}
			n, err := bmQuery(t.Context(), inst, "SELECT count(*)::text FROM t")
			if err != nil || n != "2200" {
				return fmt.Errorf("rows %s (%w), want 2200", n, err)
			}
			return nil
		})
	})

}

func bmCheckInfo(t *testing.T, i backup.Info, job string) {
	t.Helper()
	if !regexp.MustCompile(`^\d{8}T\d{6}$`).MatchString(i.ID) || i.Status != backup.StatusDone || i.Type != "full" || i.JobID != job {
		t.Errorf("backup id %q status %q type %q job %q, want a Barman ID, done, full, %s", i.ID, i.Status, i.Type, i.JobID, job)
	}
	l1, err1 := pg.ParseLSN(i.StartLSN)
	l2, err2 := pg.ParseLSN(i.StopLSN)
	if err1 != nil || err2 != nil || l2 <= l1 {
		t.Errorf("LSN range %q..%q", i.StartLSN, i.StopLSN)
	}
	if !bmWALRe.MatchString(i.WALStart) || !bmWALRe.MatchString(i.WALStop) || i.WALStop < i.WALStart || i.Timeline < 1 {
		t.Errorf("WAL range %q..%q timeline %d", i.WALStart, i.WALStop, i.Timeline)
	}
	if i.Size <= 0 || i.RepoSize < i.Size || i.Start.IsZero() || i.Stop.Before(i.Start) || time.Since(i.Stop) > time.Hour {
		t.Errorf("size %d repo %d start %s stop %s", i.Size, i.RepoSize, i.Start, i.Stop)
	}
}

// TestBarmanFailover: the streaming archiver follows a failover to a promoted standby
// after Configure with the new primary and one Maintain, without receive-wal --reset; the
// slot is created on the new primary; the old timeline's last segment (partial), the
// history file and the new timeline reach the archive; check passes. The backup taken on
// timeline 1 then restores to a time on timeline 2, and clones a standby of the new primary.
//
//nolint:tparallel // the subtests are the steps of one failover, in order
func TestBarmanFailover(t *testing.T) {
	t.Parallel()
	s := bmNew(t, dynconf.Retention{})
	m := s.member()
	if err := s.tool.Init(bmCtx(t), m); err != nil {
		t.Fatalf("Init: %v", err)
	}
	standby := bmInstance(t, "standby", s.logger, "")
	if err := standby.Basebackup(bmCtx(t), s.primary.ReplicationConn(), ""); err != nil {
		t.Fatalf("Basebackup: %v", err)
	}
	bmStart(t, &standby, s.logger, pg.Settings{Standby: true, PrimaryConnInfo: pg.PrimaryConnInfo(s.primary.ReplicationConn(), "standby")})
	bmExec(t, s.primary, "CREATE TABLE t (i int)", "INSERT INTO t SELECT generate_series(1, 100)")
	b1, err := s.tool.Backup(bmCtx(t), backup.BackupRequest{JobID: "fo-1", Member: m}, nil)
	if err != nil {
		t.Fatalf("Backup: %v", err)
	}
	bmExec(t, s.primary, "INSERT INTO t SELECT generate_series(1, 100)")
	lastOld := bmMustQuery(t, s.primary, "SELECT pg_walfile_name(pg_current_wal_lsn())")
	testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
		n, err := bmQuery(t.Context(), standby, "SELECT count(*)::text FROM t")
		if err != nil || n != "200" {
			return fmt.Errorf("standby rows %s (%w)", n, err)
		}
		return nil
	})
	oldPID := bmReceiverPID(s)

	// Failover: the primary dies, the standby is promoted, the daemon reconfigures.
	if err := s.primary.Stop(bmCtx(t), pg.StopImmediate); err != nil {
		t.Fatalf("stop primary: %v", err)
	}
	if err := standby.Promote(bmCtx(t)); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	nm := bmMember(standby, s.state)
	start := time.Now()
	if err := s.tool.Configure(bmCtx(t), nm); err != nil {
		t.Fatalf("Configure with the new primary: %v", err)
	}
	if oldPID > 0 {
		// The old receive-wal exits by itself when its primary goes away (pg_receivewal
		// runs with --no-loop); Configure stops it when it still runs.
		if err := testenv.Poll(5*time.Second, 50*time.Millisecond, func() error { return bmPIDGone(oldPID) }); err != nil {
			t.Errorf("old receive-wal after Configure: %v", err)
		}
	}
	testenv.Eventually(t, bmWaitFor, time.Second, func() error {
		if err := s.tool.Maintain(bmCtx(t), nm); err != nil {
			return err
		}
		return s.tool.Check(bmCtx(t), nm)
	})
	t.Logf("check OK on the new primary %s after the failover", time.Since(start))
	if slot := bmMustQuery(t, standby, "SELECT string_agg(slot_name || ':' || active::text, ',') FROM pg_replication_slots"); slot != "barman:true" {
		t.Errorf("slots on the new primary: %q, want barman:true", slot)
	}
	bmExec(t, standby, "INSERT INTO t SELECT generate_series(1, 100)")
	seg := bmWaitArchived(t, s, standby, nm)
	if !strings.HasPrefix(seg, "00000002") {
		t.Errorf("segment %s on the new primary, want timeline 2", seg)
	}
	wals := filepath.Join(s.home, bmServer, "wals")
	testenv.Eventually(t, bmWaitFor, time.Second, func() error {
		for _, want := range []string{"00000002.history", filepath.Join(lastOld[:16], lastOld+".partial")} {
			p := filepath.Join(wals, want)
			if _, err := os.Stat(p); err != nil {
				// The old timeline's last segment is complete when the switch fell on a
				// segment boundary.
				if _, err2 := os.Stat(strings.TrimSuffix(p, ".partial")); err2 != nil {
					_ = s.tool.Maintain(bmCtx(t), nm)
					return fmt.Errorf("archive lacks %s", want)
				}
			}
		}
		return nil
	})
	// Restores of the timeline 1 backup across the failover.
	target := bmMustQuery(t, standby, "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')")
	time.Sleep(50 * time.Millisecond)
	bmExec(t, standby, "INSERT INTO t SELECT generate_series(1, 50)")
	bmWaitArchived(t, s, standby, nm)
	t.Run("Restores", func(t *testing.T) {
		t.Run("PITR", func(t *testing.T) {
			t.Parallel()
			rm := nm
			rm.DataDir = testenv.DataDir(t, "pitr")
			if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, BackupID: b1.ID, Target: backup.Target{Type: backup.TargetTime, Value: target}}, nil); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			inst := bmInstance(t, "pitr", s.logger, rm.DataDir)
			bmStart(t, &inst, s.logger, pg.Settings{})
			testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
				r, err := bmQuery(t.Context(), inst, "SELECT pg_is_in_recovery()::text || ' ' || (SELECT count(*) FROM t)::text")
				if err != nil || r != "false 300" {
					return fmt.Errorf("in recovery, rows: %s (%w); want false 300", r, err)
				}
				return nil
			})
		})
		t.Run("StandbyClone", func(t *testing.T) {
			t.Parallel()
			rm := nm
			rm.DataDir = testenv.DataDir(t, "clone")
			if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, BackupID: b1.ID, Standby: true}, nil); err != nil {
				t.Fatalf("Restore standby: %v", err)
			}
			if _, err := os.Stat(filepath.Join(rm.DataDir, "pg_wal", "00000002.history")); err != nil {
				t.Errorf("the clone's pg_wal lacks the history file: %v", err)
			}
			bmStripRecovery(t, rm.DataDir)
			inst := bmInstance(t, "clone", s.logger, rm.DataDir)
			bmStart(t, &inst, s.logger, pg.Settings{Standby: true, PrimaryConnInfo: pg.PrimaryConnInfo(standby.ReplicationConn(), "clone")})
			testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
				st, err := inst.Status(t.Context())
				switch {
				case err != nil:
					return err
				case !st.InRecovery || st.ReceiverStatus != "streaming" || st.Timeline != 2:
					return fmt.Errorf("in recovery %v, receiver %q, timeline %d", st.InRecovery, st.ReceiverStatus, st.Timeline)
				}
				n, err := bmQuery(t.Context(), inst, "SELECT count(*)::text FROM t")
				if err != nil || n != "350" {
					return fmt.Errorf("rows %s (%w), want 350", n, err)
				}
				return nil
			})
		})
	})

	// pg_receivewal resumed on timeline 1 and followed the switch by itself.
	if log, _ := os.ReadFile(filepath.Join(s.state, "barman.log")); !strings.Contains(string(log), "switched to timeline 2") {
		t.Errorf("barman.log does not show pg_receivewal following the timeline switch")
	}
	if t.Failed() {
		out, _ := exec.Command("find", filepath.Join(s.home, bmServer), "-type", "f").CombinedOutput()
		t.Logf("barman home:\n%s", out)
	}
	s.primary = standby // cleanup stops the archiver with the new member
}

// TestBarmanBackupFromStandby: a backup taken from a streaming standby (Barman's postgres
// method with conninfo and streaming_conninfo at the standby, primary_conninfo at the
// primary) while the streaming archiver stays on the primary. Barman's record shows the
// standby's data directory and "BACKUP FROM: standby"; the slot stays on the primary; the
// backup restores with exactly the rows committed before it.
//
//nolint:tparallel // the restores share the one Barman server and run in turn
func TestBarmanBackupFromStandby(t *testing.T) {
	t.Parallel()
	s := bmNew(t, dynconf.Retention{})
	m := s.member()
	if err := s.tool.Init(bmCtx(t), m); err != nil {
		t.Fatalf("Init: %v", err)
	}
	standby := bmInstance(t, "standby", s.logger, "")
	if err := standby.Basebackup(bmCtx(t), s.primary.ReplicationConn(), ""); err != nil {
		t.Fatalf("Basebackup: %v", err)
	}
	// As ramd keeps every member with Barman (Barman's check of a standby backup wants
	// archive_mode on and an archive_command there).
	sset := archiving("/bin/true")
	sset.Standby, sset.PrimaryConnInfo = true, pg.PrimaryConnInfo(s.primary.ReplicationConn(), "standby")
	bmStart(t, &standby, s.logger, sset)
	bmExec(t, s.primary, "CREATE TABLE t (i int)", "INSERT INTO t SELECT generate_series(1, 1000)")
	testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
		n, err := bmQuery(t.Context(), standby, "SELECT count(*)::text FROM t")
		if err != nil || n != "1000" {
			return fmt.Errorf("standby rows %s (%w)", n, err)
		}
		return nil
	})
	sm := bmMember(standby, filepath.Join(s.state, "standby"))
	start := time.Now()
	b, err := s.tool.Backup(bmCtx(t), backup.BackupRequest{JobID: "sb-1", Member: sm, Primary: &m}, bmProgress(t))
	if err != nil {
		t.Fatalf("Backup from the standby: %v (barman log: %s)", err, bmLogTail(filepath.Join(sm.StateDir, "barman.log")))
	}
	t.Logf("backup %s from the standby in %s: LSN %s..%s, WAL %s..%s", b.ID, time.Since(start).Round(time.Millisecond), b.StartLSN, b.StopLSN, b.WALStart, b.WALStop)
	bmCheckInfo(t, b, "sb-1")
	// Barman's record: the files came from the standby's data directory, and the backup
	// label PostgreSQL wrote says a standby served.
	raw, err := os.ReadFile(filepath.Join(s.home, bmServer, "base", b.ID, "backup.info"))
	if err != nil {
		t.Fatal(err)
	}
	info := string(raw)
	if !strings.Contains(info, "\npgdata="+standby.Config().DataDir+"\n") || !strings.Contains(info, `BACKUP FROM: standby`) {
		t.Errorf("backup.info does not show the standby %s as the source:\n%s", standby.Config().DataDir, info)
	}
	// The streaming archiver still streams from the primary through its slot; the standby
	// has no slot.
	if slot := bmMustQuery(t, s.primary, "SELECT coalesce(string_agg(slot_name || ':' || active::text, ','), '') FROM pg_replication_slots"); slot != "barman:true" {
		t.Errorf("slots on the primary: %q, want barman:true", slot)
	}
	if slot := bmMustQuery(t, standby, "SELECT count(*)::text FROM pg_replication_slots"); slot != "0" {
		t.Errorf("the standby has %s replication slots, want 0", slot)
	}
	if err := s.tool.Check(bmCtx(t), m); err != nil {
		t.Errorf("Check after the backup from the standby: %v", err)
	}
	bmExec(t, s.primary, "INSERT INTO t SELECT generate_series(1, 500)")
	bmWaitArchived(t, s, s.primary, m)

	// The backup restores: to its consistency point (the 1000 rows it holds), and to the end
	// of the archive (the 500 rows after it too).
	for _, tc := range []struct {
		name   string
		target backup.Target
		rows   string
	}{
		{"immediate", backup.Target{Type: backup.TargetImmediate}, "1000"},
		{"end", backup.Target{}, "1500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rm := m
			rm.DataDir = testenv.DataDir(t, "restored-"+tc.name)
			if err := s.tool.Restore(bmCtx(t), backup.RestoreRequest{Member: rm, BackupID: b.ID, Target: tc.target}, nil); err != nil {
				t.Fatalf("Restore: %v", err)
			}
			inst := bmInstance(t, "restored-"+tc.name, s.logger, rm.DataDir)
			bmStart(t, &inst, s.logger, pg.Settings{})
			testenv.Eventually(t, bmWaitFor, bmPoll, func() error {
				r, err := bmQuery(t.Context(), inst, "SELECT pg_is_in_recovery()::text || ' ' || (SELECT count(*) FROM t)::text")
				if err != nil || r != "false "+tc.rows {
					return fmt.Errorf("in recovery, rows: %s (%w); want false %s", r, err, tc.rows)
				}
				return nil
			})
		})
	}
}

// bmLogTail is the end of a Barman log file, for a failure message.
func bmLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-10, 0):], "\n")
}

// TestBarmanListOneProcess: with three backups (REDUNDANCY 3: Barman's cron deletes an
// obsolete one at once), List (one list-backups, then each backup's backup.info) reads exactly what one
// show-backup per backup reads, and takes one Barman process instead of four.
func TestBarmanListOneProcess(t *testing.T) {
	t.Parallel()
	s := bmNew(t, dynconf.Retention{FullCount: 3})
	m := s.member()
	if err := s.tool.Init(bmCtx(t), m); err != nil {
		t.Fatalf("Init: %v", err)
	}
	bmExec(t, s.primary, "CREATE TABLE t (i int)")
	for i := 1; i <= 3; i++ {
		bmExec(t, s.primary, "INSERT INTO t SELECT generate_series(1, 1000)")
		job := fmt.Sprintf("job-%d", i)
		b, err := s.tool.Backup(bmCtx(t), backup.BackupRequest{Type: "full", JobID: job, Member: m}, nil)
		if err != nil {
			t.Fatalf("Backup %s: %v", job, err)
		}
		bmCheckInfo(t, b, job)
	}
	bmWaitArchived(t, s, s.primary, m)
	// Each way three times: the best of three is what the machine allows.
	var oneBest, showBest time.Duration
	var one, show backup.Catalog
	for range 3 {
		start := time.Now()
		c, err := s.tool.List(bmCtx(t), m)
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if d := time.Since(start); oneBest == 0 || d < oneBest {
			oneBest = d
		}
		one = c
		start = time.Now()
		c, err = backup.BarmanListByShow(bmCtx(t), s.tool, m)
		if err != nil {
			t.Fatalf("list by show-backup: %v", err)
		}
		if d := time.Since(start); showBest == 0 || d < showBest {
			showBest = d
		}
		show = c
	}
	t.Logf("list of %d backups: one process %s, one show-backup per backup %s (best of 3)", len(one.Backups), oneBest.Round(time.Millisecond), showBest.Round(time.Millisecond))
	if len(one.Backups) != 3 {
		t.Fatalf("List: %d backups, want 3: %+v", len(one.Backups), one.Backups)
	}
	if d := cmp.Diff(show, one); d != "" {
		t.Errorf("List differs from show-backup (-show +List):\n%s", d)
	}
	for i, b := range one.Backups {
		if job := fmt.Sprintf("job-%d", i+1); b.Retention != "VALID" || b.JobID != job || b.Start.IsZero() || b.Size == 0 || b.RepoSize <= b.Size {
			t.Errorf("backup %d: %+v: want %s, VALID, a start time and sizes", i, b, job)
		}
	}
	if os.Getenv("RAMD_TEST_SHOW_BACKUP_INFO") != "" {
		b, _ := os.ReadFile(filepath.Join(s.home, bmServer, "base", one.Backups[2].ID, "backup.info"))
		t.Logf("backup.info of %s:\n%s", one.Backups[2].ID, b)
		out, _ := exec.Command("barman", "-c", filepath.Join(s.state, "barman.conf"), "-f", "json", "show-backup", bmServer, one.Backups[2].ID).CombinedOutput()
		t.Logf("show-backup:\n%s", out)
	}
}
