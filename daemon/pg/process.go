package pg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ramd-project/ramd/daemon/proc"

	"github.com/jackc/pgx/v5/pgconn"
)

// StopMode selects how Stop shuts the server down.
type StopMode string

// Shutdown modes, as in pg_ctl stop -m.
const (
	StopSmart     StopMode = "smart"     // SIGTERM: wait for clients to disconnect
	StopFast      StopMode = "fast"      // SIGINT: disconnect clients, checkpoint, exit
	StopImmediate StopMode = "immediate" // SIGQUIT: exit without checkpoint (crash recovery at next start)
)

const (
	pollEvery     = 100 * time.Millisecond
	maxPolls      = 1_000_000 // every poll loop is bounded in count as well as by ctx
	escalateGrace = 5 * time.Second
	postmasterPID = "postmaster.pid"
)

// child is a postmaster we started (cmd, done set) or adopted (done nil).
type child struct {
	pid     int
	done    chan struct{} // closed once our child was reaped; nil when adopted
	exitErr error         // written before done is closed
	logOff  int64         // size of the log file when we started it
}

// PID returns the pid of the postmaster running on the data directory, or 0. It checks
// liveness every time: our own child until it is reaped, else postmaster.pid (the process
// must exist, not be a zombie, be a postgres process, and the file must name our data
// directory).
func (i *Instance) PID() int {
	i.mu.Lock()
	c := i.child
	i.mu.Unlock()
	if c != nil && c.done != nil {
		select {
		case <-c.done:
		default:
			return c.pid
		}
	}
	return i.pidFromFile()
}

// Running reports whether a postmaster runs on the data directory.
func (i *Instance) Running() bool { return i.PID() != 0 }

// pidFromFile reads postmaster.pid and returns its pid when that postmaster is alive.
func (i *Instance) pidFromFile() int {
	f, err := os.Open(filepath.Join(i.cfg.DataDir, postmasterPID))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 8<<10))
	var lines []string
	for sc.Scan() && len(lines) < 2 {
		lines = append(lines, strings.TrimSpace(sc.Text()))
	}
	if len(lines) < 1 {
		return 0
	}
	pid, err := strconv.Atoi(lines[0])
	if err != nil {
		return 0
	}
	if pid < 0 { // a standalone (single-user) backend writes its pid negated
		pid = -pid
	}
	if pid <= 1 || !processAlive(pid) {
		return 0
	}
	if len(lines) > 1 && filepath.Clean(lines[1]) != i.cfg.DataDir && !sameFile(lines[1], i.cfg.DataDir) {
		return 0
	}
	return pid
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// processAlive reports whether pid exists, is not a zombie and (where /proc tells) is a
// postgres process, so a recycled pid is not mistaken for the postmaster.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	st, err := proc.ReadStat(pid)
	if err != nil {
		return !errors.Is(err, os.ErrNotExist) || !proc.Mounted()
	}
	if st.State == 'Z' || st.State == 'X' {
		return false
	}
	return st.Comm == "postgres" || st.Comm == "postmaster"
}

// Start starts the postmaster (`postgres -D <DataDir>`) as a child process in its own
// process group, as the OS user when ramd runs as root, with stdout and stderr appended to
// LogFile, and waits (bounded by ctx) until it accepts TCP connections. If the postmaster
// exits meanwhile, Start fails at once with ErrStartFailed and the log tail. A goroutine
// reaps the child; it ends when the postmaster exits.
//
// If postmaster.pid shows a live postmaster on this data directory that this Instance did
// not start, Start adopts it (tracks its pid) and only waits for connections. When ctx
// expires before the server accepts connections (a standby that cannot reach consistency,
// say) the server is left running and the error wraps ctx's error. ramd.conf must exist
// (ErrNotConfigured): call WriteConfig first.
func (i *Instance) Start(ctx context.Context) error { return i.StartWatched(ctx, nil) }

// StartWatched is Start, calling onSpawn (when not nil) with the postmaster's pid as soon as
// it exists (or is adopted), before it can accept a connection: a leader arms its fence
// guard on it there.
func (i *Instance) StartWatched(ctx context.Context, onSpawn func(pid int)) error {
	i.op.Lock()
	defer i.op.Unlock()
	if pid := i.PID(); pid != 0 {
		i.mu.Lock()
		c := i.child
		if c == nil || c.pid != pid {
			c = &child{pid: pid}
			i.child = c
			i.logger.InfoContext(ctx, "adopting running postmaster", "pid", pid, "data_dir", i.cfg.DataDir)
		}
		i.mu.Unlock()
		if onSpawn != nil {
			onSpawn(pid)
		}
		return i.waitReady(ctx, c)
	}
	st, err := i.DataDirState()
	if err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if !st.Initialized {
		return fmt.Errorf("start: %w: %s", ErrNotInitialized, i.cfg.DataDir)
	}
	if _, err := os.Stat(filepath.Join(i.cfg.DataDir, ramdConf)); err != nil {
		return fmt.Errorf("start: %w: %w", ErrNotConfigured, err)
	}
	if err := i.prepareSocketDir(); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := i.ensureTraversable(i.cfg.DataDir); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	if err := i.waitOrphans(ctx); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	logf, err := os.OpenFile(i.cfg.LogFile, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o640)
	if err != nil {
		return fmt.Errorf("start: open log file: %w", err)
	}
	defer logf.Close() // the child holds its own descriptor
	if err := i.chown(i.cfg.LogFile); err != nil {
		return fmt.Errorf("start: %w", err)
	}
	off, _ := logf.Seek(0, io.SeekEnd)

	cmd := exec.Command(filepath.Join(i.cfg.BinDir, "postgres"), "-D", i.cfg.DataDir) //nolint:gosec // configured BinDir
	i.setup(cmd, nil)
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	c := &child{pid: cmd.Process.Pid, done: make(chan struct{}), logOff: off}
	i.mu.Lock()
	i.child = c
	i.mu.Unlock()
	if onSpawn != nil {
		onSpawn(c.pid)
	}
	i.logger.InfoContext(ctx, "started postmaster", "pid", c.pid, "data_dir", i.cfg.DataDir, "port", i.cfg.Port)
	go func() {
		err := cmd.Wait()
		i.logger.Info("postmaster exited", "pid", c.pid, "status", cmd.ProcessState.String())
		c.exitErr = err
		close(c.done)
	}()
	return i.waitReady(ctx, c)
}

// orphanWait bounds how long Start waits for the processes of a dead postmaster (killed
// with SIGKILL by someone else, say) to exit by themselves.
const orphanWait = 10 * time.Second

// waitOrphans waits until no process of a dead postmaster runs on the data directory:
// while one lives, the old shared memory is attached and a new postmaster refuses to
// start. Postmaster children lead their own process groups (they call setsid), so they are
// found as the postgres processes whose working directory is the data directory (Linux
// /proc). They notice the postmaster's death and exit within moments; ones that do not
// (frozen, say) are not killed, since ramd did not see them start: the error names them.
func (i *Instance) waitOrphans(ctx context.Context) error {
	pids := i.dataDirPIDs()
	if len(pids) == 0 {
		return nil
	}
	i.logger.WarnContext(ctx, "waiting for processes of a dead postmaster to exit", "pids", pids)
	ctx, cancel := context.WithTimeout(ctx, orphanWait)
	defer cancel()
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	for range maxPolls {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: pids %v: %w", ErrOrphans, pids, ctx.Err())
		case <-ticker.C:
		}
		if pids = i.dataDirPIDs(); len(pids) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: pids %v", ErrOrphans, pids)
}

// dataDirPIDs lists the live postgres processes whose working directory is the data
// directory (the postmaster chdirs there and its children inherit it). Linux only; nil
// where /proc is unavailable.
func (i *Instance) dataDirPIDs() []int {
	var pids []int
	for _, pid := range proc.PIDs() {
		if pid <= 1 {
			continue
		}
		cwd, err := proc.Cwd(pid)
		if err != nil || filepath.Clean(cwd) != i.cfg.DataDir {
			continue
		}
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// prepareSocketDir creates the socket directory (0700, owned by the OS user) when missing.
func (i *Instance) prepareSocketDir() error {
	dir := i.cfg.SocketDir
	if dir == SocketDirNone {
		return nil
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create socket directory: %w", err)
		}
		if err := i.chown(dir); err != nil {
			return err
		}
	} else if err != nil {
		return fmt.Errorf("stat socket directory: %w", err)
	}
	return i.ensureTraversable(dir)
}

// waitReady polls until the server accepts a connection, c's process exits, or ctx ends.
func (i *Instance) waitReady(ctx context.Context, c *child) error {
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	var last error
	for range maxPolls {
		if c.done != nil {
			select {
			case <-c.done:
				return fmt.Errorf("%w (%w); log %s:\n%s", ErrStartFailed, c.exitErr, i.cfg.LogFile, i.logTail(c.logOff))
			default:
			}
		} else if !processAlive(c.pid) {
			return fmt.Errorf("%w: adopted postmaster %d exited", ErrStartFailed, c.pid)
		}
		last = i.ping(ctx)
		if last == nil {
			return nil
		}
		if isAuthError(last) {
			return fmt.Errorf("start: server runs but refuses ramd's credentials: %w", last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("start: wait for connections: %w (last: %w)", ctx.Err(), last)
		case <-ticker.C:
		case <-c.done: // nil channel for adopted: never ready
		}
	}
	return fmt.Errorf("start: wait for connections: gave up after %d polls: %w", maxPolls, last)
}

// ping connects once (bounded by connectTimeout) and runs SELECT 1.
func (i *Instance) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	conn, err := i.connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	return nil
}

// logTail returns the postmaster log written since offset off (last lines).
func (i *Instance) logTail(off int64) string {
	f, err := os.Open(i.cfg.LogFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 16 << 10
	st, err := f.Stat()
	if err != nil || st.Size() <= off {
		return ""
	}
	start := max(off, st.Size()-maxRead)
	b := make([]byte, st.Size()-start)
	n, _ := f.ReadAt(b, start)
	return tail(string(b[:n]), tailLines)
}

// Stop shuts the postmaster down: smart sends SIGTERM, fast SIGINT, immediate SIGQUIT to
// the postmaster pid, then waits for it to exit, bounded by ctx. When ctx expires, fast
// escalates to immediate and then to SIGKILL of the process group (each given a few
// seconds; SIGKILL goes to the postmaster and each of its children), immediate escalates
// to SIGKILL, and smart returns ctx's error with the server
// still running. Stop is a no-op when no postmaster runs.
func (i *Instance) Stop(ctx context.Context, mode StopMode) error {
	var sig syscall.Signal
	switch mode {
	case StopSmart:
		sig = syscall.SIGTERM
	case StopFast:
		sig = syscall.SIGINT
	case StopImmediate:
		sig = syscall.SIGQUIT
	default:
		return fmt.Errorf("stop: unknown mode %q", mode)
	}
	i.op.Lock()
	defer i.op.Unlock()
	pid := i.PID()
	if pid == 0 {
		return nil
	}
	i.logger.InfoContext(ctx, "stopping postmaster", "pid", pid, "mode", string(mode))
	i.resetPool() // a smart shutdown waits for every client, ramd's pooled connections too
	if err := signal(pid, sig); err != nil {
		return fmt.Errorf("stop %s: %w", mode, err)
	}
	err := i.waitExit(ctx, pid)
	if err == nil {
		i.afterExit()
		return nil
	}
	if mode == StopSmart {
		return fmt.Errorf("stop smart: %w", err)
	}
	if mode == StopFast {
		i.logger.WarnContext(ctx, "fast shutdown timed out, escalating to immediate", "pid", pid)
		_ = signal(pid, syscall.SIGQUIT)
		if err := i.waitExitFor(ctx, pid, escalateGrace); err == nil {
			i.afterExit()
			return nil
		}
	}
	i.logger.WarnContext(ctx, "shutdown timed out, killing the postmaster and its children", "pid", pid)
	proc.KillPostmaster(pid)
	if err := i.waitExitFor(ctx, pid, escalateGrace); err != nil {
		return fmt.Errorf("stop %s: postmaster %d survived SIGKILL: %w", mode, pid, err)
	}
	i.afterExit()
	return nil
}

func signal(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal %d with %v: %w", pid, sig, err)
	}
	return nil
}

// waitExitFor waits up to d for pid to exit, also when ctx has ended (an escalating stop
// must finish).
func (i *Instance) waitExitFor(ctx context.Context, pid int, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	defer cancel()
	return i.waitExit(ctx, pid)
}

// waitExit waits until process pid has exited (our child: reaped), bounded by ctx.
func (i *Instance) waitExit(ctx context.Context, pid int) error {
	i.mu.Lock()
	c := i.child
	i.mu.Unlock()
	if c != nil && c.pid == pid && c.done != nil {
		select {
		case <-c.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ticker := time.NewTicker(pollEvery / 2)
	defer ticker.Stop()
	for range maxPolls {
		if !processAlive(pid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ticker.C:
		}
	}
	return fmt.Errorf("postmaster %d still alive after %d polls", pid, maxPolls)
}

// afterExit forgets the stopped postmaster and removes the default socket directory when
// it is empty.
func (i *Instance) afterExit() {
	i.mu.Lock()
	i.child = nil
	i.mu.Unlock()
	i.resetPool()
	if i.defaultSocketDir && i.cfg.SocketDir != SocketDirNone {
		_ = os.Remove(i.cfg.SocketDir) // fails harmlessly when not empty
	}
}

// Reload makes the postmaster re-read its configuration files (SIGHUP).
func (i *Instance) Reload(ctx context.Context) error {
	pid := i.PID()
	if pid == 0 {
		return fmt.Errorf("reload: %w", ErrNotRunning)
	}
	i.logger.DebugContext(ctx, "reloading configuration", "pid", pid)
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// isNotReady reports SQLSTATE 57P03 (cannot_connect_now).
func isNotReady(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "57P03"
}

// isAuthError reports SQLSTATE class 28 (invalid authorization) and 3D000 (no database).
func isAuthError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (strings.HasPrefix(pgErr.Code, "28") || pgErr.Code == "3D000")
}
