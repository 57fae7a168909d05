package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// The stalled-PostgreSQL scenarios. The test cluster runs with
// postgres_unresponsive_timeout = stallLimit (topology.go); a pause below it must change
// nothing, one above it must end in one clean failover.
const (
	// stallLimit is the cluster's postgres_unresponsive_timeout in this suite: shorter than
	// the default 30 s, so the long scenario stays short, and well above ttl + loop_wait.
	stallLimit = 10 * time.Second
	// stallShort is the short pause: well below the limit, also with jitter (+50 %).
	stallShort = 4 * time.Second
	// stallCheckpointer is how long the checkpointer stays stopped while a CHECKPOINT waits.
	stallCheckpointer = 5 * time.Second
	// stallKillTimeout bounds the wait for the old primary's processes to be killed: the
	// limit, the cycle that sees it, and the kill's own wait.
	stallKillTimeout = stallLimit + 30*time.Second
)

// stallPostmasterShort stops the primary's postmaster (SIGSTOP, the postmaster only: its
// backends, ramd's pooled connection and the writer's among them, keep running) for less
// than the limit and lets it go on: no failover, no demotion (the same postmaster runs
// and is primary afterwards).
func stallPostmasterShort(t *testing.T, _ *topology, p *harness.Node, hold func(time.Duration)) faultMarks {
	t.Helper()
	pid := p.PostmasterPID()
	if pid == 0 {
		t.Fatalf("%s: no postmaster", p.Name)
	}
	m := faultMarks{start: time.Now()}
	stopProcess(t, pid)
	hold(stallShort)
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %d: %v", pid, err)
	}
	m.heal = time.Now()
	t.Logf("postmaster %d of %s stopped %s..%s (%s; limit %s)", pid, p.Name, stamp(m.start), stamp(m.heal),
		m.heal.Sub(m.start).Round(time.Millisecond), stallLimit)
	hold(holdAfterSwitch)
	samePrimary(t, p, pid)
	return m
}

// stallPostmasterLong stops the primary's postmaster and leaves it stopped: its own ramd
// must kill it and every child (SIGKILL reaches a stopped process) and only then hand the
// lock over; a replica takes over and the old node rejoins as a replica (runScenario waits
// for every replica to stream again).
func stallPostmasterLong(t *testing.T, tp *topology, p *harness.Node, hold func(time.Duration)) faultMarks {
	t.Helper()
	pid := p.PostmasterPID()
	if pid == 0 {
		t.Fatalf("%s: no postmaster", p.Name)
	}
	children := childrenOf(pid)
	m := faultMarks{start: time.Now()}
	stopProcess(t, pid)
	var killed, elected time.Time
	var newPrimary string
	testenv.Eventually(t, stallKillTimeout, 20*time.Millisecond, func() error {
		if killed.IsZero() {
			if left := liveOf(append([]int{pid}, children...)); len(left) > 0 {
				return fmt.Errorf("processes of the stopped postmaster %d still alive: %v", pid, left)
			}
			killed = time.Now()
		}
		for _, n := range tp.cluster.Nodes {
			if n != p && n.Health("/primary") == http.StatusOK {
				elected, newPrimary = time.Now(), n.Name
				return nil
			}
		}
		return errors.New("no new primary yet")
	})
	m.heal = killed
	t.Logf("postmaster %d of %s stopped at %s; it and its %d children killed after %s; new primary %s after %s (limit %s)",
		pid, p.Name, stamp(m.start), len(children), killed.Sub(m.start).Round(time.Millisecond),
		newPrimary, elected.Sub(m.start).Round(time.Millisecond), stallLimit)
	if !p.Running() {
		t.Errorf("ramd of %s exited", p.Name)
	}
	hold(holdAfterSwitch)
	return m
}

// stallCheckpointerProcess stops only the primary's checkpointer for a few seconds while
// the writer goes on and a CHECKPOINT is requested (it waits for the checkpointer: a
// checkpoint that takes seconds). No failover, no demotion.
func stallCheckpointerProcess(t *testing.T, _ *topology, p *harness.Node, hold func(time.Duration)) faultMarks {
	t.Helper()
	pid := p.PostmasterPID()
	cp, err := p.QueryInt(t.Context(), "SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'")
	if err != nil || pid == 0 {
		t.Fatalf("%s: checkpointer pid: %v (postmaster %d)", p.Name, err, pid)
	}
	m := faultMarks{start: time.Now()}
	stopProcess(t, int(cp))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), stallCheckpointer+time.Minute)
		defer cancel()
		conn, err := p.Conn(ctx)
		if err != nil {
			done <- err
			return
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(ctx, "CHECKPOINT")
		done <- err
	}()
	hold(stallCheckpointer)
	select {
	case err := <-done:
		t.Errorf("CHECKPOINT ended while the checkpointer was stopped: %v", err)
	default:
	}
	if err := syscall.Kill(int(cp), syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT %d: %v", cp, err)
	}
	m.heal = time.Now()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("CHECKPOINT: %v", err)
		}
		t.Logf("checkpointer %d of %s stopped %s..%s; the CHECKPOINT requested meanwhile took %s", cp, p.Name,
			stamp(m.start), stamp(m.heal), time.Since(m.start).Round(time.Millisecond))
	case <-time.After(time.Minute):
		t.Errorf("CHECKPOINT still running a minute after the checkpointer went on")
	}
	hold(holdAfterSwitch)
	samePrimary(t, p, pid)
	return m
}

// stopProcess sends SIGSTOP to pid and makes sure it goes on again when the test ends early.
func stopProcess(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP %d: %v", pid, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
}

// samePrimary checks that p is still the primary with the same postmaster: no demotion, no
// restart.
func samePrimary(t *testing.T, p *harness.Node, pid int) {
	t.Helper()
	err := testenv.Poll(10*time.Second, 100*time.Millisecond, func() error {
		if p.Health("/primary") != http.StatusOK {
			return fmt.Errorf("%s is not primary", p.Name)
		}
		return nil
	})
	if err != nil {
		t.Errorf("after the pause: %v", err)
	}
	if now := p.PostmasterPID(); now != pid {
		t.Errorf("%s: postmaster %d after the pause, want %d (restarted or demoted)", p.Name, now, pid)
	}
}

// childrenOf lists the processes whose parent is pid (Linux /proc).
func childrenOf(pid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		c, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid(c) == pid {
			out = append(out, c)
		}
	}
	return out
}

// ppid is pid's parent from /proc/<pid>/stat (0 when unknown).
func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	v, _ := strconv.Atoi(f[1])
	return v
}

// liveOf returns the pids that still run (a zombie does not).
func liveOf(pids []int) []int {
	var out []int
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) && s[i+2] != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}
