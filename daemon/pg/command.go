package pg

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

const (
	// outputKeep bounds the command output kept in memory (the tail is kept).
	outputKeep = 64 << 10
	// tailLines is how many output lines a CommandError carries.
	tailLines = 20
	// waitDelay bounds how long Wait waits for pipes after the process was killed.
	waitDelay = 3 * time.Second
)

// command builds the *exec.Cmd for a short-lived program name in BinDir, bound to ctx:
// when ctx is done the whole process group is killed by pid.
func (i *Instance) command(ctx context.Context, name string, args []string, extraEnv []string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(i.cfg.BinDir, name), args...)
	cmd.Cancel = func() error {
		// Kill the process group led by the child (Setpgid makes pgid == pid).
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	i.setup(cmd, extraEnv)
	return cmd
}

// setup prepares every PostgreSQL program ramd starts, including the postmaster: its own
// process group (Setpgid, so the group can be killed by pid), the OS user's credentials
// when ramd runs as root, a clean environment (see env) and a working directory the OS
// user can enter.
func (i *Instance) setup(cmd *exec.Cmd, extraEnv []string) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: i.cred}
	cmd.Env = i.env(extraEnv)
	cmd.Dir = i.workDir()
}

// workDir is a directory the OS user can enter (the child starts there).
func (i *Instance) workDir() string {
	if i.cred != nil && i.home != "" {
		if st, err := os.Stat(i.home); err == nil && st.IsDir() {
			return i.home
		}
	}
	return "/"
}

// env returns the environment for PostgreSQL programs: ramd's own environment without
// PG* variables (which would redirect the tools) and locale variables, with LC_ALL=C so
// output can be parsed, the OS user's HOME/USER when running as root, and extra.
func (i *Instance) env(extra []string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(k, "PG"), k == "LANG", k == "LANGUAGE", strings.HasPrefix(k, "LC_"):
			continue
		case i.cred != nil && (k == "HOME" || k == "USER" || k == "LOGNAME"):
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "LC_ALL=C", "LANG=C")
	if i.cred != nil {
		env = append(env, "HOME="+i.home, "USER="+i.cfg.OSUser, "LOGNAME="+i.cfg.OSUser)
	}
	return append(env, extra...)
}

// run is the one helper for short-lived external commands: it runs program name from
// BinDir with args (as the OS user when root), captures stdout+stderr, logs them at debug,
// and returns the output. On failure it returns a *CommandError with the exit code and the
// output tail. When ctx is done the whole process group is killed by pid. extraEnv carries
// secrets such as PGPASSWORD, never argv.
func (i *Instance) run(ctx context.Context, name string, args []string, extraEnv ...string) (string, error) {
	cmd := i.command(ctx, name, args, extraEnv)
	buf := &tailBuffer{}
	cmd.Stdout = buf
	cmd.Stderr = buf
	start := time.Now()
	err := cmd.Run()
	out := buf.String()
	code := 0
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	i.logger.DebugContext(ctx, "command finished", "cmd", name, "args", args,
		"exit_code", code, "duration", time.Since(start), "output", out)
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if code == 0 {
		code = -1
	}
	return out, &CommandError{Cmd: name, ExitCode: code, Output: tail(out, tailLines), Err: err}
}

// tailBuffer keeps the last outputKeep bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex // guards b
	b   []byte
	cut bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > outputKeep {
		t.b = append(t.b[:0:0], t.b[len(t.b)-outputKeep:]...)
		t.cut = true
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cut {
		return "...\n" + string(t.b)
	}
	return string(t.b)
}

// tail returns the last n lines of s, after a line "..." when it left earlier ones out.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// Program describes an external program that is not one of PostgreSQL's own (a backup
// tool, a user's hook): Path is a program name looked up on PATH or an absolute path.
type Program struct {
	Path  string
	Args  []string
	Env   []string
	Stdin io.Reader
	// Dir is the working directory ("" a directory the OS user can enter).
	Dir string
	// Stdout receives standard output as it is written (nil: discarded); standard error is
	// kept and returned in the *CommandError's output tail.
	Stdout io.Writer
	// Started, when set, is called with the child's pid once it runs (a supervisor of a
	// long-running program records it).
	Started func(pid int)
}

// RunProgram runs p like PostgreSQL's programs (as the OS user when ramd runs as root, own
// process group killed by pid when ctx is done, clean environment) and returns the tail of
// its standard error (and standard output when Stdout is nil). A failure is a
// *CommandError with the exit code.
func (i *Instance) RunProgram(ctx context.Context, p Program) (string, error) {
	path := p.Path
	if !filepath.IsAbs(path) {
		lp, err := exec.LookPath(path)
		if err != nil {
			return "", &CommandError{Cmd: p.Path, ExitCode: -1, Err: fmt.Errorf("not found on PATH: %w", err)}
		}
		path = lp
	}
	cmd := exec.CommandContext(ctx, path, p.Args...)
	cmd.Cancel = func() error {
		err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if errors.Is(err, syscall.ESRCH) {
			return os.ErrProcessDone
		}
		return err
	}
	cmd.WaitDelay = waitDelay
	i.setup(cmd, p.Env)
	if p.Dir != "" {
		cmd.Dir = p.Dir
	}
	buf := &tailBuffer{}
	cmd.Stderr = buf
	cmd.Stdout = buf
	if p.Stdout != nil {
		cmd.Stdout = p.Stdout
	}
	cmd.Stdin = p.Stdin
	start := time.Now()
	err := cmd.Start()
	if err == nil {
		if p.Started != nil {
			p.Started(cmd.Process.Pid)
		}
		err = cmd.Wait()
	}
	out := buf.String()
	code := 0
	if cmd.ProcessState != nil {
		code = cmd.ProcessState.ExitCode()
	}
	i.logger.DebugContext(ctx, "program finished", "cmd", p.Path, "args", p.Args,
		"exit_code", code, "duration", time.Since(start))
	if err == nil {
		return out, nil
	}
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	if code == 0 {
		code = -1
	}
	return out, &CommandError{Cmd: filepath.Base(p.Path), ExitCode: code, Output: tail(out, tailLines), Err: err}
}

// OwnedDir creates dir (and missing parents) with mode perm, owned by the OS user when ramd
// runs as root, so PostgreSQL and the tools it runs can write there.
func (i *Instance) OwnedDir(dir string, perm os.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if err := i.chown(dir); err != nil {
		return err
	}
	return i.ensureTraversable(dir)
}

// WriteOwnedFile writes a file atomically, owned by the OS user.
func (i *Instance) WriteOwnedFile(path string, data []byte, perm os.FileMode) error {
	return i.writeFileAtomic(path, data, perm)
}
