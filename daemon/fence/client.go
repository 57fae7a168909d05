package fence

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Guard is ramd's handle on its guard process. Safe for concurrent use.
type Guard struct {
	mu    sync.Mutex // guards w and cmd
	w     io.WriteCloser
	cmd   *exec.Cmd
	armed bool
}

// GuardProgram is the guard as a program of its own (cmd/ramd-fence). Next to the ramd
// binary it is preferred: it links only this package, so it needs a fraction of ramd's
// memory.
const GuardProgram = "ramd-fence"

// Start launches the guard process in its own process group, so that a signal to ramd (or to
// ramd's group) does not reach it: GuardProgram when it lies next to the running executable,
// else the running executable itself with SubcommandName.
func Start(ctx context.Context, logger *slog.Logger) (*Guard, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("fence: locate executable: %w", err)
	}
	cmd := exec.Command(exe, SubcommandName) //nolint:gosec // our own binary
	if prog := filepath.Join(filepath.Dir(exe), GuardProgram); isExecutable(prog) {
		cmd = exec.Command(prog) //nolint:gosec // our own binary, next to ramd
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	w, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("fence: guard stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("fence: start guard: %w", err)
	}
	logger.Debug("fence guard started", "pid", cmd.Process.Pid, "program", cmd.Path)
	return &Guard{w: w, cmd: cmd}, nil
}

// Arm tells the guard to kill the postmaster pid at deadline (CLOCK_MONOTONIC).
func (g *Guard) Arm(pid int, deadline time.Duration) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, err := fmt.Fprintf(g.w, "arm %d %d\n", pid, int64(deadline)); err != nil {
		return fmt.Errorf("fence: arm: %w", err)
	}
	g.armed = true
	return nil
}

// Disarm cancels the deadline (the node is no longer a primary, or stops cleanly).
func (g *Guard) Disarm() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.armed {
		return nil
	}
	if _, err := fmt.Fprintln(g.w, "disarm"); err != nil {
		return fmt.Errorf("fence: disarm: %w", err)
	}
	g.armed = false
	return nil
}

// Armed reports whether a deadline is set.
func (g *Guard) Armed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.armed
}

// PID is the guard process's pid.
func (g *Guard) PID() int { return g.cmd.Process.Pid }

// Close disarms the guard and waits for it to exit (bounded by ctx, then killed).
func (g *Guard) Close(ctx context.Context) error {
	_ = g.Disarm()
	g.mu.Lock()
	_ = g.w.Close()
	g.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- g.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("fence: guard exit: %w", err)
		}
		return nil
	case <-ctx.Done():
		_ = g.cmd.Process.Kill()
		<-done //nolint:errcheck // the exit status of a killed guard says nothing more
		return fmt.Errorf("fence: guard did not exit: %w", ctx.Err())
	}
}

// isExecutable reports whether path is a regular file someone may execute.
func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
