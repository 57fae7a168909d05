package params

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// NodeFacts reads what Review and Tune need from this machine: memory (the smaller of
// MemTotal and the cgroup v2 or v1 memory limit), the stack rlimit PostgreSQL inherits, and
// the CPUs (runtime.NumCPU bounded by the cgroup v2 cpu.max quota). Unknown facts stay zero.
func NodeFacts() (Facts, int) {
	var f Facts
	f.MemoryBytes = memTotal()
	if lim := cgroupMemoryLimit(); lim > 0 && (f.MemoryBytes == 0 || lim < f.MemoryBytes) {
		f.MemoryBytes = lim
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_STACK, &rl); err == nil && rl.Cur != math.MaxUint64 && rl.Cur < math.MaxInt64 {
		f.StackLimitBytes = int64(rl.Cur)
	}
	return f, cpus()
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err == nil {
				return kb * 1024
			}
		}
	}
	return 0
}

// cgroupMemoryLimit reads memory.max (v2) or memory.limit_in_bytes (v1) of this process's
// cgroup as mounted at /sys/fs/cgroup; 0 when there is no limit.
func cgroupMemoryLimit() int64 {
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err == nil && n > 0 && n < 1<<60 { // v1 reports "no limit" as a huge number
			return n
		}
	}
	return 0
}

// cpus is runtime.NumCPU bounded by the cgroup v2 quota (cpu.max "quota period").
func cpus() int {
	n := runtime.NumCPU()
	b, err := os.ReadFile("/sys/fs/cgroup/cpu.max")
	if err != nil {
		return n
	}
	fields := strings.Fields(string(b))
	if len(fields) != 2 {
		return n
	}
	quota, err1 := strconv.ParseFloat(fields[0], 64)
	period, err2 := strconv.ParseFloat(fields[1], 64)
	if err1 != nil || err2 != nil || period <= 0 {
		return n // "max": no quota
	}
	return max(1, min(n, int(math.Ceil(quota/period))))
}
