package fence

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// KillPostmaster kills a postmaster and every process it forked. PostgreSQL's children each
// call setsid(), so killing the postmaster's process group would leave the backends running
// until they notice, and a backend in the middle of a statement could still commit. The
// postmaster is frozen first so it cannot fork while its children are being killed.
func KillPostmaster(pid int) {
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	for range 2 {
		for _, child := range Children(pid) {
			_ = syscall.Kill(child, syscall.SIGKILL)
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}

// Children lists the processes whose parent is pid (from /proc).
func Children(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) {
			out = append(out, p)
		}
	}
	return out
}
