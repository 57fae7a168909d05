package pg_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestPrimaryLifecycle: Initdb, Start, Status, reload with a pending restart, Stop fast.
func TestPrimaryLifecycle(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "p", logger, nil)
	if st, err := inst.DataDirState(); err != nil || st.Exists {
		t.Fatalf("DataDirState before initdb = %+v, %v; want absent", st, err)
	}
	startPrimary(t, &inst, logger)

	ds, err := inst.DataDirState()
	if err != nil || !ds.Initialized || ds.MajorVersion < pg.MinMajorVersion {
		t.Fatalf("DataDirState = %+v, %v", ds, err)
	}
	st := mustStatus(t, inst)
	switch {
	case !st.Running, st.PID == 0, st.PID != inst.PID():
		t.Errorf("Running %v PID %d (inst.PID %d)", st.Running, st.PID, inst.PID())
	case st.InRecovery:
		t.Errorf("InRecovery on a fresh primary")
	case st.ServerVersion < 130000 || st.ServerVersion/10000 != ds.MajorVersion:
		t.Errorf("ServerVersion %d, PG_VERSION %d", st.ServerVersion, ds.MajorVersion)
	case st.SystemID == 0:
		t.Errorf("SystemID 0")
	case st.Timeline != 1:
		t.Errorf("Timeline %d, want 1", st.Timeline)
	case st.WriteLSN == 0:
		t.Errorf("WriteLSN 0")
	case st.StartTime.IsZero() || time.Since(st.StartTime) > time.Hour:
		t.Errorf("StartTime %v", st.StartTime)
	case st.PendingRestart || len(st.Replication) != 0 || st.ReceiverStatus != "":
		t.Errorf("unexpected status %+v", st)
	}

	cd, err := inst.ControlData(opCtx(t))
	if err != nil {
		t.Fatalf("ControlData: %v", err)
	}
	if cd.State != "in production" || cd.SystemID != st.SystemID || !cd.DataChecksums || !cd.WALLogHints || cd.Timeline != 1 {
		t.Errorf("ControlData while running = %+v (system id %d)", cd, st.SystemID)
	}

	// Slots: create idempotently, list, drop.
	if got, err := inst.EnsureSlots(opCtx(t), []string{"s1", "s2"}); err != nil || len(got) != 2 || got[0].Name != "s1" || got[1].Name != "s2" {
		t.Fatalf("EnsureSlots = %+v, %v; want s1 and s2 as created", got, err)
	}
	if got, err := inst.EnsureSlots(opCtx(t), []string{"s1"}); err != nil || len(got) != 2 {
		t.Fatalf("EnsureSlots again = %+v, %v; want both slots listed", got, err)
	}
	if got := mustStatus(t, inst).Slots; len(got) != 2 || got[0].Name != "s1" || got[1].Name != "s2" || got[0].RestartLSN == 0 {
		t.Errorf("Status().Slots = %+v; want s1 and s2, with WAL reserved", got)
	}
	if _, err := inst.EnsureSlots(opCtx(t), []string{"Bad-Name"}); !errors.Is(err, pg.ErrInvalidSlotName) {
		t.Errorf("EnsureSlots(bad name) = %v; want ErrInvalidSlotName", err)
	}
	if err := inst.DropSlot(opCtx(t), "s2"); err != nil {
		t.Fatalf("DropSlot: %v", err)
	}
	if err := inst.DropSlot(opCtx(t), "missing"); err != nil {
		t.Fatalf("DropSlot(missing): %v", err)
	}
	slots, err := inst.Slots(opCtx(t))
	if err != nil || len(slots) != 1 || slots[0].Name != "s1" || slots[0].Active || slots[0].RestartLSN == 0 {
		t.Errorf("Slots = %+v, %v; want only s1, inactive, with WAL reserved", slots, err)
	}
	if err := inst.Checkpoint(opCtx(t)); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	if _, err := inst.WaitReplayed(opCtx(t)); !errors.Is(err, pg.ErrNotInRecovery) {
		t.Errorf("WaitReplayed on a primary = %v; want ErrNotInRecovery", err)
	}
	if err := inst.Promote(opCtx(t)); err != nil {
		t.Errorf("Promote on a primary = %v; want no-op", err)
	}

	// A restart-only change shows up as pending after a reload.
	restart, err := inst.WriteConfig(pg.Settings{Parameters: map[string]string{"max_connections": "50"}})
	if err != nil || !restart {
		t.Fatalf("WriteConfig(max_connections) = %v, %v; want restart needed", restart, err)
	}
	if err := inst.Reload(opCtx(t)); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		st, err := inst.Status(t.Context())
		if err != nil {
			return err
		}
		if got := st.PendingRestartReasons["max_connections"]; !st.PendingRestart || got != [2]string{"100", "50"} {
			return fmt.Errorf("PendingRestart %v reasons %v", st.PendingRestart, st.PendingRestartReasons)
		}
		return nil
	})

	pid := inst.PID()
	if err := inst.Stop(opCtx(t), pg.StopFast); err != nil {
		t.Fatalf("Stop fast: %v", err)
	}
	if err := pidGone(pid); err != nil {
		t.Error(err)
	}
	if inst.Running() || inst.PID() != 0 {
		t.Errorf("after Stop: Running %v PID %d", inst.Running(), inst.PID())
	}
	if st, err := inst.Status(opCtx(t)); err != nil || st.Running {
		t.Errorf("Status after Stop = %+v, %v; want not running and no error", st, err)
	}
	if err := inst.Stop(opCtx(t), pg.StopFast); err != nil {
		t.Errorf("Stop when stopped = %v; want no-op", err)
	}
	cd, err = inst.ControlData(opCtx(t))
	if err != nil || cd.State != "shut down" {
		t.Errorf("ControlData after Stop = %+v, %v; want shut down", cd, err)
	}
	if err := inst.Reload(opCtx(t)); !errors.Is(err, pg.ErrNotRunning) {
		t.Errorf("Reload when stopped = %v; want ErrNotRunning", err)
	}
}

// TestReplicationPromoteRewind: clone a standby with a slot, stream, promote it, let the
// old primary diverge, rewind it and make it a standby of the new primary.
func TestReplicationPromoteRewind(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	withPasswords := func(c *pg.Config) {
		c.SuperuserPassword = "su'pw\\1"
		c.ReplicationPassword = "rep pw"
	}
	a := newInstance(t, "a", logger.With("node", "a"), withPasswords)
	b := newInstance(t, "b", logger.With("node", "b"), withPasswords)

	startPrimary(t, &a, logger)
	if err := a.EnsureRoles(opCtx(t)); err != nil {
		t.Fatalf("EnsureRoles: %v", err)
	}
	if err := a.EnsureRoles(opCtx(t)); err != nil {
		t.Fatalf("EnsureRoles again: %v", err)
	}
	slotB, slotA := pg.SlotName("b"), pg.SlotName("a")
	if _, err := a.EnsureSlots(opCtx(t), []string{slotB}); err != nil {
		t.Fatalf("EnsureSlots: %v", err)
	}
	if err := a.Exec(opCtx(t), "CREATE TABLE t (id int PRIMARY KEY, origin text)"); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(opCtx(t), "INSERT INTO t VALUES ($1, $2)", 1, "a"); err != nil {
		t.Fatal(err)
	}

	// Clone b from a over the replication role, then stream.
	if err := b.Basebackup(opCtx(t), a.ReplicationConn(), slotB); err != nil {
		t.Fatalf("Basebackup: %v", err)
	}
	if err := b.Start(opCtx(t)); !errors.Is(err, pg.ErrNotConfigured) {
		t.Fatalf("Start of a fresh clone without WriteConfig = %v; want ErrNotConfigured", err)
	}
	start(t, &b, logger, pg.Settings{
		Standby:         true,
		PrimaryConnInfo: pg.PrimaryConnInfo(a.ReplicationConn(), "b"),
		PrimarySlotName: slotB,
	})
	stB := waitStreaming(t, b, 1)
	stA := mustStatus(t, a)
	if stB.SystemID != stA.SystemID || stB.ReceiverPort != a.Config().Port || stB.ReceiverHost != "127.0.0.1" {
		t.Errorf("standby status %+v; primary system id %d port %d", stB, stA.SystemID, a.Config().Port)
	}
	if len(stA.Replication) != 1 || stA.Replication[0].ApplicationName != "b" ||
		stA.Replication[0].Usename != "replicator" || stA.Replication[0].State != "streaming" {
		t.Errorf("primary Replication = %+v", stA.Replication)
	}
	if slots, err := a.Slots(opCtx(t)); err != nil || len(slots) != 1 || !slots[0].Active {
		t.Errorf("primary slots = %+v, %v; want %s active", slots, err, slotB)
	}
	if err := a.Exec(opCtx(t), "INSERT INTO t VALUES (2, 'a')"); err != nil {
		t.Fatal(err)
	}
	waitCount(t, b, 2)
	// The primary measures the standby's replay: its position, and a replay_lag once the
	// standby confirmed replaying the insert.
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		st := mustStatus(t, a)
		if len(st.Replication) != 1 || st.Replication[0].ReplayLSN < st.WriteLSN || st.Replication[0].ReplayLag == nil {
			return fmt.Errorf("primary Replication = %+v, write lsn %s", st.Replication, st.WriteLSN)
		}
		return nil
	})
	replayed, err := b.WaitReplayed(opCtx(t))
	if err != nil || replayed == 0 {
		t.Fatalf("WaitReplayed = %v, %v", replayed, err)
	}
	if _, err := b.EnsureSlots(opCtx(t), []string{"x"}); !errors.Is(err, pg.ErrInRecovery) {
		t.Errorf("EnsureSlots on a standby = %v; want ErrInRecovery", err)
	}

	// Promote b: a new timeline.
	if err := b.Promote(opCtx(t)); err != nil {
		t.Fatalf("Promote: %v", err)
	}
	stB = mustStatus(t, b)
	if stB.InRecovery || stB.Timeline != 2 || stB.WriteLSN == 0 {
		t.Fatalf("after Promote: InRecovery %v Timeline %d WriteLSN %s", stB.InRecovery, stB.Timeline, stB.WriteLSN)
	}
	if _, err := os.Stat(filepath.Join(b.Config().DataDir, "standby.signal")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("standby.signal after promote: %v", err)
	}
	if err := b.Exec(opCtx(t), "INSERT INTO t VALUES (3, 'b')"); err != nil {
		t.Fatal(err)
	}

	// Split brain: a still takes writes on timeline 1, then stops.
	if err := a.Exec(opCtx(t), "INSERT INTO t SELECT g, 'lost' FROM generate_series(100, 199) g"); err != nil {
		t.Fatal(err)
	}
	if err := a.Stop(opCtx(t), pg.StopFast); err != nil {
		t.Fatalf("Stop a: %v", err)
	}
	if _, err := b.EnsureSlots(opCtx(t), []string{slotA}); err != nil {
		t.Fatalf("EnsureSlots on new primary: %v", err)
	}
	if err := a.Rewind(opCtx(t), b.LocalConn()); err != nil {
		t.Fatalf("Rewind: %v", err)
	}
	start(t, &a, logger, pg.Settings{
		Standby:         true,
		PrimaryConnInfo: pg.PrimaryConnInfo(b.ReplicationConn(), "a"),
		PrimarySlotName: slotA,
	})
	waitStreaming(t, a, 2)
	if err := b.Exec(opCtx(t), "INSERT INTO t VALUES (4, 'b')"); err != nil {
		t.Fatal(err)
	}
	waitCount(t, a, 4) // rows 1-4; the 100 rows written on the old timeline are gone
	if n, err := queryInt(t.Context(), a, "SELECT count(*)::int FROM t WHERE origin = 'lost'"); err != nil || n != 0 {
		t.Errorf("diverged rows on the rewound node: %d, %v", n, err)
	}
}

// TestCrashRestart: SIGKILL of the postmaster is seen as not running; Start recovers.
func TestCrashRestart(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "c", logger, nil)
	startPrimary(t, &inst, logger)
	if err := inst.Exec(opCtx(t), "CREATE TABLE t AS SELECT 1 AS id"); err != nil {
		t.Fatal(err)
	}
	pid := inst.PID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		if inst.Running() {
			return fmt.Errorf("still running as %d", inst.PID())
		}
		return nil
	})
	if st, err := inst.Status(opCtx(t)); err != nil || st.Running {
		t.Errorf("Status after SIGKILL = %+v, %v; want not running, no error", st, err)
	}
	start(t, &inst, logger, pg.Settings{})
	if inst.PID() == pid || inst.PID() == 0 {
		t.Errorf("PID after restart %d (crashed %d)", inst.PID(), pid)
	}
	waitCount(t, inst, 1)
	if st := mustStatus(t, inst); st.InRecovery || st.Timeline != 1 {
		t.Errorf("after crash recovery: InRecovery %v Timeline %d", st.InRecovery, st.Timeline)
	}
}

// TestAdopt: a fresh Instance on the data directory of a running server adopts it.
func TestAdopt(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	first := newInstance(t, "d", logger, func(c *pg.Config) { c.SocketDir = pg.SocketDirNone })
	startPrimary(t, &first, logger)
	second, err := pg.New(first.Config(), logger.With("instance", "second"))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if !second.Running() || second.PID() != first.PID() {
		t.Fatalf("second: Running %v PID %d; first PID %d", second.Running(), second.PID(), first.PID())
	}
	pid := first.PID()
	if err := second.Start(opCtx(t)); err != nil {
		t.Fatalf("Start (adopt): %v", err)
	}
	if second.PID() != pid {
		t.Errorf("after adopt: PID %d, want %d", second.PID(), pid)
	}
	if st := mustStatus(t, second); !st.Running || st.PID != pid || st.InRecovery {
		t.Errorf("Status via adopter = %+v", st)
	}
	if n, err := queryInt(t.Context(), second, "SELECT length(current_setting('unix_socket_directories'))"); err != nil || n != 0 {
		t.Errorf("unix_socket_directories length %d, %v; want sockets disabled", n, err)
	}
	if err := second.Stop(opCtx(t), pg.StopFast); err != nil {
		t.Fatalf("Stop via adopter: %v", err)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error { return pidGone(pid) })
	// The first instance is the postmaster's parent: it learns of the exit when its wait
	// returns, which can come a moment after the process is gone from /proc.
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		if first.Running() || second.Running() {
			return fmt.Errorf("after Stop: first running %v, second running %v", first.Running(), second.Running())
		}
		return nil
	})
}

// TestWriteConfig: restartNeeded, quoting, protected parameters, standby.signal.
func TestWriteConfig(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "w", logger, nil)
	if _, err := inst.WriteConfig(pg.Settings{}); !errors.Is(err, pg.ErrNotInitialized) {
		t.Fatalf("WriteConfig before initdb = %v; want ErrNotInitialized", err)
	}
	if err := inst.Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	dir := inst.Config().DataDir
	src := pg.ConnParams{Host: "127.0.0.1", Port: 1, User: "replicator"}
	steps := []struct {
		name    string
		s       pg.Settings
		restart bool
	}{
		{name: "first write", s: pg.Settings{}, restart: true},
		{name: "same again", s: pg.Settings{}, restart: false},
		{name: "primary_conninfo only", s: pg.Settings{PrimaryConnInfo: pg.PrimaryConnInfo(src, "w")}, restart: false},
		{name: "slot and reloadable parameter", s: pg.Settings{
			PrimaryConnInfo: pg.PrimaryConnInfo(src, "w"), PrimarySlotName: "w",
			Parameters: map[string]string{"work_mem": "8MB"}}, restart: false},
		{name: "restart-only parameter", s: pg.Settings{Parameters: map[string]string{"shared_buffers": "64MB"}}, restart: true},
		{name: "protected parameter ignored", s: pg.Settings{Parameters: map[string]string{"shared_buffers": "64MB", "port": "1"}}, restart: false},
		{name: "override of a managed default", s: pg.Settings{Parameters: map[string]string{"shared_buffers": "64MB", "max_wal_senders": "20"}}, restart: true},
		{name: "standby.signal created", s: pg.Settings{Standby: true, Parameters: map[string]string{"shared_buffers": "64MB", "max_wal_senders": "20"}}, restart: true},
		{name: "standby.signal removed while stopped", s: pg.Settings{Parameters: map[string]string{"shared_buffers": "64MB", "max_wal_senders": "20"}}, restart: false},
	}
	for _, step := range steps {
		restart, err := inst.WriteConfig(step.s)
		if err != nil {
			t.Fatalf("%s: WriteConfig: %v", step.name, err)
		}
		if restart != step.restart {
			t.Errorf("%s: restartNeeded = %v, want %v", step.name, restart, step.restart)
		}
		_, err = os.Stat(filepath.Join(dir, "standby.signal"))
		if exists := err == nil; exists != step.s.Standby {
			t.Errorf("%s: standby.signal exists %v, want %v", step.name, exists, step.s.Standby)
		}
	}
	if _, err := inst.WriteConfig(pg.Settings{Parameters: map[string]string{"x = 1\ny": "1"}}); !errors.Is(err, pg.ErrInvalidParameter) {
		t.Errorf("WriteConfig(bad name) = %v; want ErrInvalidParameter", err)
	}

	conf, err := os.ReadFile(filepath.Join(dir, "ramd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"port = '" + fmt.Sprint(inst.Config().Port) + "'", "max_wal_senders = '20'", "shared_buffers = '64MB'", "wal_level = 'replica'"} {
		if !strings.Contains(string(conf), want+"\n") {
			t.Errorf("ramd.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(string(conf), "port = '1'") {
		t.Errorf("protected parameter written:\n%s", conf)
	}
	st, err := os.Stat(filepath.Join(dir, "ramd.conf"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("ramd.conf mode %v, %v; want 0600", st.Mode(), err)
	}
	main, err := os.ReadFile(filepath.Join(dir, "postgresql.conf"))
	if err != nil || strings.Count(string(main), "include_if_exists = 'ramd.conf'") != 1 {
		t.Errorf("postgresql.conf includes ramd.conf %d times, %v", strings.Count(string(main), "include_if_exists = 'ramd.conf'"), err)
	}

	// A value needing quotes survives the server's parser: start and read it back.
	start(t, &inst, logger, pg.Settings{Parameters: map[string]string{"application_name": `it's a \ test`}})
	if err := inst.Exec(opCtx(t), "DO $$ BEGIN IF current_setting('application_name') <> 'ramd' THEN RAISE 'bad'; END IF; END $$"); err != nil {
		t.Errorf("session application_name: %v", err)
	}
	n, err := queryInt(t.Context(), inst, `SELECT count(*)::int FROM pg_file_settings WHERE name = 'application_name' AND setting = 'it''s a \ test'`)
	if err != nil || n != 1 {
		t.Errorf("application_name in pg_file_settings: %d, %v", n, err)
	}
	// While running, Standby=false leaves a standby.signal alone.
	if _, err := inst.WriteConfig(pg.Settings{Standby: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := inst.WriteConfig(pg.Settings{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "standby.signal")); err != nil {
		t.Errorf("standby.signal removed under a running server: %v", err)
	}
}

// TestStartFailsFast: a postmaster that exits at start is reported at once with its log.
func TestStartFailsFast(t *testing.T) {
	t.Parallel()
	inst := newInstance(t, "f", testLogger(t), nil)
	if err := inst.Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	if err := inst.Start(opCtx(t)); !errors.Is(err, pg.ErrNotConfigured) {
		t.Fatalf("Start without ramd.conf = %v; want ErrNotConfigured", err)
	}
	if _, err := inst.WriteConfig(pg.Settings{Parameters: map[string]string{"shared_buffers": "lots"}}); err != nil {
		t.Fatal(err)
	}
	err := inst.Start(opCtx(t))
	if !errors.Is(err, pg.ErrStartFailed) || !strings.Contains(err.Error(), "shared_buffers") {
		t.Fatalf("Start with a bad parameter = %v; want ErrStartFailed naming shared_buffers", err)
	}
	if inst.Running() {
		t.Errorf("Running after a failed start")
	}
}

// TestBasebackupFailure: a missing slot fails the clone and leaves no data directory.
func TestBasebackupFailure(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	src := newInstance(t, "s", logger, nil)
	startPrimary(t, &src, logger)
	if err := src.EnsureRoles(opCtx(t)); err != nil {
		t.Fatal(err)
	}
	dst := newInstance(t, "t", logger, nil)
	err := dst.Basebackup(opCtx(t), src.ReplicationConn(), "nope")
	var cmdErr *pg.CommandError
	if !errors.Is(err, pg.ErrBasebackupFailed) || !errors.As(err, &cmdErr) || cmdErr.ExitCode == 0 {
		t.Fatalf("Basebackup with a missing slot = %v; want ErrBasebackupFailed with a CommandError", err)
	}
	if st, err := dst.DataDirState(); err != nil || st.Exists {
		t.Errorf("DataDirState after failed clone = %+v, %v; want absent", st, err)
	}
	// Initdb refuses a non-empty directory.
	if err := os.MkdirAll(dst.Config().DataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dst.Config().DataDir, "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := dst.Initdb(opCtx(t)); !errors.Is(err, pg.ErrDataDirNotEmpty) {
		t.Errorf("Initdb into a non-empty directory = %v; want ErrDataDirNotEmpty", err)
	}
	// Rewind against a stopped source stops before pg_rewind runs: the source cannot
	// checkpoint, and the data directory is as it was.
	err = dst.Rewind(opCtx(t), pg.ConnParams{Host: "127.0.0.1", Port: dst.Config().Port, User: "postgres"})
	if !errors.Is(err, pg.ErrRewindSourceNotReady) || errors.Is(err, pg.ErrRewindFailed) {
		t.Errorf("Rewind = %v; want ErrRewindSourceNotReady", err)
	}
	if pg.RewindChangedTarget(err) {
		t.Errorf("RewindChangedTarget(%v) = true; want false: pg_rewind never ran", err)
	}
}

// TestNewErrors: configuration and binary problems are reported by New.
func TestNewErrors(t *testing.T) {
	t.Parallel()
	if _, err := pg.New(pg.Config{DataDir: "relative"}, nil); !errors.Is(err, pg.ErrInvalidConfig) {
		t.Errorf("New(relative DataDir) = %v; want ErrInvalidConfig", err)
	}
	if _, err := pg.New(pg.Config{DataDir: "/nonexistent/data", BinDir: t.TempDir()}, nil); !errors.Is(err, pg.ErrBinariesNotFound) {
		t.Errorf("New(empty BinDir) = %v; want ErrBinariesNotFound", err)
	}
	inst, err := pg.New(pg.Config{DataDir: "/nonexistent/data", BinDir: testenv.PGBinDir(t)}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	c := inst.Config()
	if c.Port != 5432 || c.ConnectAddr != "127.0.0.1" || c.LogFile != "/nonexistent/data.log" ||
		c.SocketDir == "" || len(c.SocketDir) > 60 || c.Superuser != "postgres" || c.ReplicationUser != "replicator" {
		t.Errorf("resolved config %+v", c)
	}
	if inst.Running() {
		t.Errorf("Running on a nonexistent data directory")
	}
	if st, err := inst.Status(context.Background()); err != nil || st.Running {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

// TestStopEscalation: smart gives up with the server still running when ctx expires;
// fast escalates to immediate and SIGKILL when the shutdown checkpoint cannot happen
// (the checkpointer is frozen with SIGSTOP), and nothing of the server survives.
func TestStopEscalation(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "e", logger, nil)
	startPrimary(t, &inst, logger)
	pid := inst.PID()

	conn, err := pgx.Connect(t.Context(), inst.LocalConn().DSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	var checkpointer int
	if err := conn.QueryRow(t.Context(), "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'").Scan(&checkpointer); err != nil {
		t.Fatal(err)
	}

	// Smart waits for our open session: it times out and leaves the server running.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	if err := inst.Stop(ctx, pg.StopSmart); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop smart with a session open = %v; want deadline exceeded", err)
	}
	if inst.PID() != pid {
		t.Fatalf("after smart timeout PID %d, want %d", inst.PID(), pid)
	}

	if err := syscall.Kill(checkpointer, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if err := inst.Stop(ctx, pg.StopFast); err != nil {
		t.Fatalf("Stop fast with a frozen checkpointer: %v", err)
	}
	if err := pidGone(pid); err != nil {
		t.Error(err)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error { return pidGone(checkpointer) })
	// The next start recovers from the crash.
	start(t, &inst, logger, pg.Settings{})
	if st := mustStatus(t, inst); st.InRecovery || !st.Running {
		t.Errorf("after restart: %+v", st)
	}
}

// TestFileSettingErrors: a value the server skips on reload is reported with its file and
// line; a restart-only change that merely waits for the restart is not.
func TestFileSettingErrors(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "f", logger, nil)
	startPrimary(t, &inst, logger)
	if bad, err := inst.FileSettingErrors(opCtx(t)); err != nil || len(bad) != 0 {
		t.Fatalf("FileSettingErrors on a clean configuration = %v, %v", bad, err)
	}
	if _, err := inst.WriteConfig(pg.Settings{Parameters: map[string]string{"work_mem": "-5", "shared_buffers": "64MB"}}); err != nil {
		t.Fatal(err)
	}
	if err := inst.Reload(opCtx(t)); err != nil {
		t.Fatal(err)
	}
	var bad []string
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		var err error
		if bad, err = inst.FileSettingErrors(opCtx(t)); err != nil || len(bad) == 0 {
			return fmt.Errorf("no skipped setting reported yet (%w)", err)
		}
		return nil
	})
	if len(bad) != 1 || !strings.Contains(bad[0], "work_mem=-5") || !strings.Contains(bad[0], "ramd.conf") {
		t.Errorf("FileSettingErrors = %q, want only work_mem=-5 from ramd.conf (shared_buffers only waits for a restart)", bad)
	}
}

// TestStatusAfterBackendsRestart: when every backend was restarted between two reads (a
// backend's crash makes the postmaster end them all), the pooled connection Status takes is
// dead; Status finds it closed and reads again over a new one, so the read after the
// restart succeeds at once.
func TestStatusAfterBackendsRestart(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	inst := newInstance(t, "r", logger, nil)
	startPrimary(t, &inst, logger)
	before := mustStatus(t, inst) // the pool now holds an idle connection
	other, err := pgx.Connect(opCtx(t), inst.LocalConn().DSN())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	victim := int(other.PgConn().PID())
	// A backend killed by a signal counts as a crash: the postmaster ends every other
	// backend (the pooled one too) and runs crash recovery, keeping its own pid.
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatalf("kill backend %d: %v", victim, err)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		_, err := queryInt(t.Context(), inst, "SELECT 1")
		return err
	})
	st, err := inst.Status(opCtx(t))
	if err != nil {
		t.Fatalf("Status after the backends' restart: %v", err)
	}
	if st.PID != before.PID || st.InRecovery || st.WriteLSN == 0 {
		t.Errorf("Status after the backends' restart = pid %d (before %d), in recovery %v, write LSN %d",
			st.PID, before.PID, st.InRecovery, st.WriteLSN)
	}
}
