// Package proc reads Linux's /proc for the few facts ramd needs about processes (state,
// parent, start time) and kills a PostgreSQL postmaster with every process it forked. It is
// the one place that parses /proc/<pid>/stat; the fence guard and daemon/pg both use it.
package proc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrMalformed is returned for a stat line that cannot be parsed.
var ErrMalformed = errors.New("proc: malformed stat")

// Stat is what ramd reads of /proc/<pid>/stat.
type Stat struct {
	PID   int
	Comm  string
	State byte
	PPID  int
	// StartTime is field 22, the start time in clock ticks since boot, as written: with the
	// pid it names one process, so a recycled pid is never taken for the old one.
	StartTime string
	// UTime and STime are fields 14 and 15: CPU time in user and kernel mode, in clock ticks.
	UTime, STime uint64
}

// ParseStat parses one stat line: "pid (comm) state ppid ... starttime ...". The command name
// may hold spaces and parentheses, so the fields are counted from the last ')'.
func ParseStat(b []byte) (Stat, error) {
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 1 || closing < open {
		return Stat{}, ErrMalformed
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return Stat{}, ErrMalformed
	}
	f := strings.Fields(s[closing+1:])
	if len(f) < 20 || len(f[0]) != 1 || !isLetter(f[0][0]) {
		return Stat{}, ErrMalformed
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return Stat{}, ErrMalformed
	}
	utime, _ := strconv.ParseUint(f[11], 10, 64)
	stime, _ := strconv.ParseUint(f[12], 10, 64)
	return Stat{PID: pid, Comm: s[open+1 : closing], State: f[0][0], PPID: ppid, StartTime: f[19], UTime: utime, STime: stime}, nil
}

// ReadStat reads and parses /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("proc: read process %d: %w", pid, err)
	}
	st, err := ParseStat(b)
	if err != nil {
		return Stat{}, fmt.Errorf("proc: process %d: %w", pid, err)
	}
	return st, nil
}

// Mounted reports whether /proc is there to read.
func Mounted() bool {
	_, err := os.Stat("/proc/self/stat")
	return err == nil
}

// PIDs lists the process ids in /proc (nil where it cannot be read).
func PIDs() []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Children lists the processes whose parent is ppid (nil where /proc cannot be read).
func Children(ppid int) []int {
	var out []int
	for _, pid := range PIDs() {
		if st, err := ReadStat(pid); err == nil && st.PPID == ppid {
			out = append(out, pid)
		}
	}
	return out
}

// Cwd is the working directory of pid.
func Cwd(pid int) (string, error) {
	return os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
}

// KillPostmaster kills a postmaster and every process it forked with SIGKILL. PostgreSQL's
// children each call setsid(), so killing the postmaster's process group would leave the
// backends running until they notice, and a backend in the middle of a statement could still
// commit. The postmaster is frozen first so it cannot fork while its children are listed and
// killed (twice, for one it forked just before it stopped); a child that leads its own
// process group is killed with its group, so helpers such as an archive_command shell die too.
func KillPostmaster(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for range 2 {
		for _, c := range Children(pid) {
			if pgid, err := syscall.Getpgid(c); err == nil && pgid == c {
				_ = syscall.Kill(-c, syscall.SIGKILL)
			} else {
				_ = syscall.Kill(c, syscall.SIGKILL)
			}
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Memory is a process's resident memory in bytes, from /proc/<pid>/status: the whole
// resident set and its two parts, anonymous pages (heap, stacks: the process's own) and
// file-backed pages (the mapped binary: shared with every process mapping the same file and
// kept in the page cache anyway).
type Memory struct {
	RSS, Anon, File int64
}

// ReadMemory reads pid's Memory.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return Memory{}, fmt.Errorf("proc: read status of %d: %w", pid, err)
	}
	m, err := ParseMemory(b)
	if err != nil {
		return Memory{}, fmt.Errorf("proc: process %d: %w", pid, err)
	}
	return m, nil
}

// ParseMemory reads VmRSS, RssAnon and RssFile (in kB) from the text of a status file. A
// status without VmRSS (a kernel thread or a zombie) or with a malformed value is an error
// wrapping ErrMalformed; RssAnon and RssFile are optional (kernels before 4.5 lack them).
func ParseMemory(b []byte) (Memory, error) {
	var m Memory
	seen := false
	for line := range strings.SplitSeq(string(b), "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		var dst *int64
		switch key {
		case "VmRSS":
			dst, seen = &m.RSS, true
		case "RssAnon":
			dst = &m.Anon
		case "RssFile":
			dst = &m.File
		default:
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return Memory{}, fmt.Errorf("%s %q: %w", key, v, ErrMalformed)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return Memory{}, fmt.Errorf("%s %q: %w", key, v, ErrMalformed)
		}
		*dst = kb << 10
	}
	if !seen {
		return Memory{}, fmt.Errorf("no VmRSS (a kernel thread or a zombie): %w", ErrMalformed)
	}
	return m, nil
}

// isLetter reports whether c is an ASCII letter: every process state is one (R, S, D, Z, T, t, ...).
func isLetter(c byte) bool { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') }
