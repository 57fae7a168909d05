package pg_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestAnswersAndKill: a postmaster stopped by SIGSTOP accepts no new connection while a
// backend forked before keeps answering (and committing) on its connection; Answers sees
// the difference, over the unix socket and over TCP, and Kill ends the stopped postmaster
// and every child.
func TestAnswersAndKill(t *testing.T) {
	t.Parallel()
	for _, sock := range []string{"", pg.SocketDirNone} {
		name := "unix socket"
		if sock == pg.SocketDirNone {
			name = "tcp"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			logger := testLogger(t)
			inst := newInstance(t, "k"+sock, logger, func(c *pg.Config) { c.SocketDir = sock })
			startPrimary(t, &inst, logger)
			pid := inst.PID()
			if err := inst.Answers(opCtx(t)); err != nil {
				t.Fatalf("Answers on a healthy server: %v", err)
			}
			if dir := inst.Config().SocketDir; dir != pg.SocketDirNone {
				// A socket file removed behind the server's back (a temporary-file cleaner):
				// the check goes over TCP and the server still answers.
				sockPath := filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(inst.Config().Port))
				if err := os.Rename(sockPath, sockPath+".away"); err != nil {
					t.Fatal(err)
				}
				err := inst.Answers(opCtx(t))
				if rerr := os.Rename(sockPath+".away", sockPath); rerr != nil {
					t.Fatal(rerr)
				}
				if err != nil {
					t.Fatalf("Answers without the socket file: %v", err)
				}
			}
			conn, err := pgx.Connect(t.Context(), inst.LocalConn().DSN())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close(context.Background()) })
			var backend int
			if err := conn.QueryRow(t.Context(), "SELECT pg_backend_pid()").Scan(&backend); err != nil {
				t.Fatal(err)
			}

			if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
			ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
			defer cancel()
			if err := inst.Answers(ctx); err == nil {
				t.Fatal("Answers on a stopped postmaster: nil, want an error")
			}
			// The old connection still commits: why the loop's pooled read is no test.
			if _, err := conn.Exec(t.Context(), "CREATE TABLE still_commits (id int)"); err != nil {
				t.Fatalf("backend of a stopped postmaster: %v", err)
			}

			if err := inst.Kill(opCtx(t)); err != nil {
				t.Fatalf("Kill: %v", err)
			}
			if inst.Running() {
				t.Error("still running after Kill")
			}
			if err := pidGone(pid); err != nil {
				t.Error(err)
			}
			// The backend is gone too; its zombie is reaped by whoever adopted it, in a moment.
			testenv.Eventually(t, waitFor, pollEvery, func() error { return pidGone(backend) })
			if err := inst.Kill(opCtx(t)); err != nil {
				t.Errorf("Kill of a stopped server: %v", err)
			}
			// It starts again from the crash.
			start(t, &inst, logger, pg.Settings{})
			testenv.Eventually(t, waitFor, pollEvery, func() error { return inst.Answers(opCtx(t)) })
			if _, err := inst.Status(opCtx(t)); err != nil && !errors.Is(err, pg.ErrNotReady) {
				t.Errorf("Status after restart: %v", err)
			}
			// The checks leave nothing in the server log (the loop makes one every cycle).
			b, err := os.ReadFile(inst.Config().LogFile)
			if err != nil {
				t.Fatal(err)
			}
			for _, noise := range []string{"incomplete startup packet", "could not accept SSL", "could not receive data"} {
				if strings.Contains(string(b), noise) {
					t.Errorf("server log has %q after the checks", noise)
				}
			}
		})
	}
}
