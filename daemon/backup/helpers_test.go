package backup_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

const (
	opTimeout = 90 * time.Second // bound of each Start, Backup, Restore, ...
	waitFor   = 30 * time.Second // bound of each Eventually
	pollEvery = 100 * time.Millisecond
	scope     = "ramdtest"
)

// testWriter sends log lines to t.Log until the test's cleanups have run.
type testWriter struct {
	mu   sync.Mutex // guards t and done
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	t.Helper()
	w := &testWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

func opCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// requirePgBackRest skips the test (fails under RAMD_TEST_REQUIRE_REAL=1) without pgbackrest.
func requirePgBackRest(t *testing.T) {
	t.Helper()
	testenv.Binary(t, "pgbackrest", "pgbackrest")
}

// newInstance builds an Instance for a data directory that does not exist yet, on its own
// port. A cleanup stops the server (immediate) and, on failure, prints its log tail.
func newInstance(t *testing.T, name string, logger *slog.Logger) *pg.Instance {
	t.Helper()
	return newInstanceWith(t, name, logger, nil)
}

// newInstanceWith is newInstance with mod applied to the configuration.
func newInstanceWith(t *testing.T, name string, logger *slog.Logger, mod func(*pg.Config)) *pg.Instance {
	t.Helper()
	cfg := pg.Config{
		BinDir:     testenv.PGBinDir(t),
		DataDir:    testenv.DataDir(t, name),
		ListenAddr: "127.0.0.1",
		Port:       testenv.FreePort(t),
	}
	if mod != nil {
		mod(&cfg)
	}
	inst, err := pg.New(cfg, logger)
	if err != nil {
		t.Fatalf("pg.New: %v", err)
	}
	cleanupInstance(t, name, inst)
	return inst
}

func cleanupInstance(t *testing.T, name string, inst *pg.Instance) {
	t.Helper()
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
		if dir := inst.Config().SocketDir; dir != pg.SocketDirNone && strings.HasPrefix(dir, os.TempDir()) {
			_ = os.RemoveAll(dir)
		}
	})
}

// start writes s and starts the server. When another process grabbed the port between
// FreePort and the postmaster's bind, the server moves to a new port (a new Instance on
// the same data directory), a few times at most.
func start(t *testing.T, inst **pg.Instance, logger *slog.Logger, s pg.Settings) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		if _, err := (*inst).WriteConfig(s); err != nil {
			t.Fatalf("WriteConfig: %v", err)
		}
		err := (*inst).Start(opCtx(t))
		if err == nil {
			return
		}
		if attempt == 3 || !errors.Is(err, pg.ErrStartFailed) || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("Start: %v", err)
		}
		cfg := (*inst).Config()
		t.Logf("port %d taken by another process, moving to a new port", cfg.Port)
		cfg.Port = testenv.FreePort(t)
		next, err := pg.New(cfg, logger)
		if err != nil {
			t.Fatalf("pg.New: %v", err)
		}
		cleanupInstance(t, filepath.Base(cfg.DataDir), next)
		*inst = next
	}
}

// stateDir is a fresh path for a member's state directory (created by the tool).
func stateDir(t *testing.T, name string) string {
	t.Helper()
	return testenv.DataDir(t, name)
}

// member describes inst for a tool.
func member(t *testing.T, inst *pg.Instance, state string) backup.Member {
	t.Helper()
	c := inst.Config()
	ds, err := inst.DataDirState()
	if err != nil {
		t.Fatalf("DataDirState: %v", err)
	}
	sock := c.SocketDir
	if sock == pg.SocketDirNone {
		sock = ""
	}
	return backup.Member{
		Scope: scope, Name: filepath.Base(c.DataDir), DataDir: c.DataDir, BinDir: c.BinDir,
		Major: ds.MajorVersion, Host: "127.0.0.1", Port: c.Port, SocketDir: sock,
		Superuser: c.Superuser, SuperuserPassword: c.SuperuserPassword, StateDir: state,
	}
}

// archiving are the settings of a server that archives with command.
func archiving(command string) pg.Settings {
	return pg.Settings{Parameters: map[string]string{"archive_mode": "on", "archive_command": command}}
}

// execSQL runs statements as the superuser.
func execSQL(t *testing.T, inst *pg.Instance, sql string) {
	t.Helper()
	if err := inst.Exec(opCtx(t), sql); err != nil {
		t.Fatalf("exec %q: %v", sql, err)
	}
}

// queryString runs a single-value query as the superuser.
func queryString(ctx context.Context, inst *pg.Instance, sql string) (string, error) {
	conn, err := pgx.Connect(ctx, inst.LocalConn().DSN())
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

func mustQuery(t *testing.T, inst *pg.Instance, sql string) string {
	t.Helper()
	s, err := queryString(opCtx(t), inst, sql)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	return s
}

// waitPromoted waits until inst left recovery and returns its row count of table t.
func waitPromotedCount(t *testing.T, inst *pg.Instance) string {
	t.Helper()
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		s, err := queryString(t.Context(), inst, "SELECT pg_is_in_recovery()::text")
		if err != nil {
			return err
		}
		if s != "false" {
			return fmt.Errorf("still in recovery")
		}
		return nil
	})
	return mustQuery(t, inst, "SELECT count(*)::text FROM t")
}

// switchAndArchive switches WAL on inst and waits until the segment is archived.
func switchAndArchive(t *testing.T, inst *pg.Instance) {
	t.Helper()
	seg := mustQuery(t, inst, "SELECT pg_walfile_name(pg_switch_wal())")
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		last, err := queryString(t.Context(), inst, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
		if err != nil {
			return err
		}
		if last < seg {
			return fmt.Errorf("last archived %q, waiting for %s", last, seg)
		}
		return nil
	})
}

// afterSecond waits until the wall clock is past the second after ts: tools record backup
// times in whole seconds, and a time target must fall after the backup's stop second.
func afterSecond(ts time.Time) {
	if d := time.Until(ts.Truncate(time.Second).Add(time.Second + 20*time.Millisecond)); d > 0 {
		time.Sleep(d)
	}
}

// progressLog collects progress lines (tools call it from their output goroutine).
type progressLog struct {
	mu    sync.Mutex // guards lines
	lines []backup.Progress
}

func (p *progressLog) add(pr backup.Progress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if os.Getenv("RAMD_TEST_PROGRESS") != "" && (pr.Percent < 0 || pr.Percent%20 == 0) {
		fmt.Printf("%s %+v\n", time.Now().Format("15:04:05.000"), pr)
	}
	p.lines = append(p.lines, pr)
}

func (p *progressLog) all() []backup.Progress {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]backup.Progress(nil), p.lines...)
}

// copyScript copies the example script into a directory the OS user can read.
func copyScript(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("..", "..", "deploy", "backup", "ramd-backup-example.sh"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("read the example script: %v", err)
	}
	dir, err := os.MkdirTemp("", "ramd-script-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "ramd-backup-example.sh")
	if err := os.WriteFile(dst, data, 0o755); err != nil { //nolint:gosec // an executable script
		t.Fatal(err)
	}
	if _, err := exec.LookPath("tar"); err != nil {
		testenv.Missing(t, "tar not found")
	}
	return dst
}
