package pg_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

const (
	opTimeout = 60 * time.Second // bound of each Start, Basebackup, Rewind, ...
	waitFor   = 30 * time.Second // bound of each Eventually
	pollEvery = 100 * time.Millisecond
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
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newInstance builds an Instance with its own data directory and port; mod adjusts the
// config. A cleanup stops the server (immediate) and removes its socket directory; on
// failure it prints the tail of the server log.
func newInstance(t *testing.T, name string, logger *slog.Logger, mod func(*pg.Config)) *pg.Instance {
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
		t.Fatalf("New: %v", err)
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
				t.Logf("server log of %s (tail):\n%s", name, strings.Join(lines[max(len(lines)-40, 0):], "\n"))
			}
		}
		if dir := inst.Config().SocketDir; dir != pg.SocketDirNone && strings.HasPrefix(dir, os.TempDir()) {
			_ = os.RemoveAll(dir)
		}
	})
	return inst
}

func opCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

// startPrimary initializes, configures and starts a primary.
func startPrimary(t *testing.T, inst **pg.Instance, logger *slog.Logger) {
	t.Helper()
	if err := (*inst).Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	start(t, inst, logger, pg.Settings{})
}

// start writes s and starts the server. Other processes on this host (other test
// binaries, smoke clusters) may grab the port between FreePort and the postmaster's bind;
// then the server is moved to a new port (a new Instance on the same data directory) and
// started again, a few times at most.
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
		if *inst, err = pg.New(cfg, logger); err != nil {
			t.Fatalf("New: %v", err)
		}
	}
}

func mustStatus(t *testing.T, inst *pg.Instance) pg.Status {
	t.Helper()
	st, err := inst.Status(opCtx(t))
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

// queryInt runs a single-value query as the superuser (tests only).
func queryInt(ctx context.Context, inst *pg.Instance, sql string) (int, error) {
	conn, err := pgx.Connect(ctx, inst.LocalConn().DSN())
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
		return 0, err
	}
	return n, nil
}

// waitCount waits until "SELECT count(*) FROM t" on inst returns want.
func waitCount(t *testing.T, inst *pg.Instance, want int) {
	t.Helper()
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		n, err := queryInt(t.Context(), inst, "SELECT count(*)::int FROM t")
		if err != nil {
			return err
		}
		if n != want {
			return fmt.Errorf("count(*) = %d, want %d", n, want)
		}
		return nil
	})
}

// waitStreaming waits until inst is a standby streaming on timeline tli.
func waitStreaming(t *testing.T, inst *pg.Instance, tli int) pg.Status {
	t.Helper()
	var st pg.Status
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		var err error
		st, err = inst.Status(t.Context())
		switch {
		case err != nil:
			return err
		case !st.InRecovery:
			return fmt.Errorf("not in recovery")
		case st.ReceiverStatus != "streaming":
			return fmt.Errorf("receiver status %q", st.ReceiverStatus)
		case st.Timeline != tli:
			return fmt.Errorf("timeline %d, want %d", st.Timeline, tli)
		}
		return nil
	})
	return st
}

// pidGone reports an error while process pid exists (the Instance reaps its children, so
// no zombie is left behind).
func pidGone(pid int) error {
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process %d still exists (kill 0: %w)", pid, err)
	}
	return nil
}
