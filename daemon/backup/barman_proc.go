package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Barman's lock files (barman/lockfile.py) are held with flock(LOCK_EX) by the running
// process, which writes its pid into them; a stale file keeps an old pid but no lock.

// lockHolder reports whether the lock file at path is held, and the pid written in it.
// A missing file is not held.
func lockHolder(path string) (bool, int, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("open lock %s: %w", path, err)
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if err == nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return false, 0, nil
	}
	if !errors.Is(err, syscall.EWOULDBLOCK) {
		return false, 0, fmt.Errorf("probe lock %s: %w", path, err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return true, 0, fmt.Errorf("read lock %s: %w", path, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return true, pid, nil
}

// isHeld reports whether the lock file at path is held (errors count as not held).
func isHeld(path string) bool {
	held, _, _ := lockHolder(path)
	return held
}

// isOurProcess reports whether pid is a live process on this host whose command line holds
// every one of words (the barman subcommand and this node's configuration file), so that
// a pid read from a lock file on a shared barman_home is never signalled by mistake.
func isOurProcess(pid int, words ...string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil || processGone(pid) {
		return false
	}
	args := strings.Split(string(bytes.TrimRight(b, "\x00")), "\x00")
	for _, w := range words {
		found := false
		for _, a := range args {
			if a == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// processGone reports whether pid no longer runs (absent, or a zombie waiting for its
// parent).
func processGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] == 'Z'
	}
	return false
}

// groupGone reports whether no live process is left in process group pgid.
func groupGone(pgid int) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		// Fields after the name: state ppid pgrp ...
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid && !processGone(pid) {
			return false
		}
	}
	return true
}

// stopGroup stops the process group led by pid (Barman starts receive-wal with setsid, so
// it leads a group holding its pg_receivewal): SIGINT, as barman receive-wal --stop sends
// (pg_receivewal flushes what it received and exits), then SIGKILL after wait.
func stopGroup(ctx context.Context, pid int, wait time.Duration) error {
	pgid, err := syscall.Getpgid(pid)
	if err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return nil
		}
		return fmt.Errorf("getpgid: %w", err)
	}
	target := -pgid
	if pgid != pid {
		target, pgid = pid, 0 // not a group leader: signal the process alone
	}
	gone := func() bool {
		if pgid != 0 {
			return processGone(pid) && groupGone(pgid)
		}
		return processGone(pid)
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGKILL} {
		if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("signal %v: %w", sig, err)
		}
		deadline := time.Now().Add(wait)
		for !gone() {
			if time.Now().After(deadline) {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
		if gone() {
			return nil
		}
	}
	return fmt.Errorf("process %d still runs after SIGKILL", pid)
}
