package fence

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"github.com/ramd-project/ramd/daemon/proc"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// SubcommandName is the argument that makes the ramd binary run as a guard.
const SubcommandName = "fence-guard"

// armed is the guard's current duty.
type armed struct {
	pid       int
	startTime string // /proc/<pid>/stat field 22, to refuse a reused pid
	deadline  time.Duration
}

// RunGuard is the guard process's main loop. It reads commands from r, one per line:
//
//	arm <postmaster pid> <deadline ns CLOCK_MONOTONIC>
//	disarm
//
// When armed and the deadline passes, it kills the postmaster's process group. At EOF (ramd
// exited or died) it exits at once if disarmed, or after firing if armed.
func RunGuard(ctx context.Context, r io.Reader, logger *slog.Logger) error {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	var cur *armed
	eof := false
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var timer <-chan time.Time
		if cur != nil {
			t.Reset(max(0, cur.deadline-Now()))
			timer = t.C
		} else if eof {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case line, ok := <-lines:
			if !ok {
				lines, eof = nil, true
				if cur != nil {
					logger.Warn("ramd went away while armed; will fence at the deadline", "pid", cur.pid)
				}
				continue
			}
			next, err := parse(line)
			if err != nil {
				logger.Error("bad guard command", "line", line, "err", err)
				continue
			}
			cur = next
		case <-timer:
			if Now() < cur.deadline {
				continue
			}
			fire(cur, logger)
			cur = nil
			if eof {
				return nil
			}
		}
	}
}

func parse(line string) (*armed, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "disarm":
		return nil, nil
	case len(f) == 3 && f[0] == "arm":
		pid, err := strconv.Atoi(f[1])
		if err != nil || pid <= 1 {
			return nil, fmt.Errorf("fence: bad pid %q", f[1])
		}
		ns, err := strconv.ParseInt(f[2], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("fence: bad deadline %q", f[2])
		}
		st, err := procStartTime(pid)
		if err != nil {
			return nil, err
		}
		return &armed{pid: pid, startTime: st, deadline: time.Duration(ns)}, nil
	}
	return nil, errors.New("fence: unknown command")
}

// fire kills the postmaster and all its children, after checking the pid still names the
// same process.
func fire(a *armed, logger *slog.Logger) {
	st, err := procStartTime(a.pid)
	if err != nil || st != a.startTime {
		logger.Info("fencing deadline passed; postmaster already gone", "pid", a.pid)
		return
	}
	late := Now() - a.deadline
	KillPostmaster(a.pid)
	logger.Warn("fencing deadline passed without a leader heartbeat: killed postgres", "pid", a.pid, "late", late)
}

// procStartTime returns the start time of pid (proc.Stat.StartTime).
func procStartTime(pid int) (string, error) {
	st, err := proc.ReadStat(pid)
	if err != nil {
		return "", fmt.Errorf("fence: %w", err)
	}
	return st.StartTime, nil
}
