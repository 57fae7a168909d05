package fence

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/proc"
)

// victim starts a real process as a process-group leader, standing in for a postmaster, with
// a child in its group standing in for a backend.
type victimProc struct {
	pid      int
	children []int
	done     chan struct{}
}

func victim(t *testing.T) victimProc {
	t.Helper()
	// Like a postmaster: the child leaves the parent's process group (setsid), so only a kill
	// of each child reaches it.
	leader := exec.Command("sh", "-c", "setsid sleep 60 & wait")
	leader.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := leader.Start(); err != nil {
		t.Fatalf("start victim: %v", err)
	}
	p := victimProc{pid: leader.Process.Pid, done: make(chan struct{})}
	for i := 0; i < 100 && len(p.children) == 0; i++ {
		time.Sleep(10 * time.Millisecond)
		p.children = proc.Children(p.pid)
	}
	if len(p.children) == 0 {
		t.Fatal("victim has no child")
	}
	t.Cleanup(func() {
		for _, c := range p.children {
			_ = syscall.Kill(c, syscall.SIGKILL)
		}
	})
	go func() { _ = leader.Wait(); close(p.done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		<-p.done
	})
	return p
}

// alive reports whether pid runs (a zombie does not count).
func alive(pid int) bool {
	st, err := procStartTime(pid)
	if err != nil || st == "" {
		return false
	}
	b, _ := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

func runGuard(t *testing.T) (*io.PipeWriter, chan error) {
	t.Helper()
	r, w := io.Pipe()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() { done <- RunGuard(ctx, r, slog.New(slog.DiscardHandler)) }()
	return w, done
}

func waitExit(t *testing.T, p victimProc, within time.Duration) bool {
	t.Helper()
	select {
	case <-p.done:
		return true
	case <-time.After(within):
		return false
	}
}

func TestGuardFiresAtDeadline(t *testing.T) {
	t.Parallel()
	v := victim(t)
	w, _ := runGuard(t)
	armAt := Now()
	if _, err := io.WriteString(w, "arm "+itoa(v.pid)+" "+itoa64(int64(armAt+300*time.Millisecond))+"\n"); err != nil {
		t.Fatal(err)
	}
	if !waitExit(t, v, 5*time.Second) {
		t.Fatal("victim not killed within 5s of a 300ms deadline")
	}
	if elapsed := Now() - armAt; elapsed < 300*time.Millisecond {
		t.Fatalf("fired early: %s after arming", elapsed)
	}
	// The backend stand-in (its own session) must be gone too.
	for i := 0; len(v.children) > 0 && alive(v.children[0]); i++ {
		if i > 100 {
			t.Fatal("the victim's child survived the fence")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestGuardDisarmAndExtend(t *testing.T) {
	t.Parallel()
	v := victim(t)
	w, _ := runGuard(t)
	pid := itoa(v.pid)
	_, _ = io.WriteString(w, "arm "+pid+" "+itoa64(int64(Now()+200*time.Millisecond))+"\n")
	_, _ = io.WriteString(w, "disarm\n")
	// A later deadline replaces an earlier one.
	_, _ = io.WriteString(w, "arm "+pid+" "+itoa64(int64(Now()+100*time.Millisecond))+"\n")
	_, _ = io.WriteString(w, "arm "+pid+" "+itoa64(int64(Now()+time.Hour))+"\n")
	if waitExit(t, v, 800*time.Millisecond) {
		t.Fatal("victim killed although the deadline was disarmed and then extended")
	}
	if !alive(v.pid) {
		t.Fatal("victim gone")
	}
}

func TestGuardFiresAfterRamdDies(t *testing.T) {
	t.Parallel()
	v := victim(t)
	w, done := runGuard(t)
	_, _ = io.WriteString(w, "arm "+itoa(v.pid)+" "+itoa64(int64(Now()+200*time.Millisecond))+"\n")
	_ = w.Close() // ramd went away
	if !waitExit(t, v, 5*time.Second) {
		t.Fatal("victim not killed after ramd went away while armed")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("guard did not exit after firing at EOF")
	}
}

func TestGuardExitsAtEOFWhenDisarmed(t *testing.T) {
	t.Parallel()
	v := victim(t)
	w, done := runGuard(t)
	_ = w.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("guard did not exit at EOF")
	}
	if !alive(v.pid) {
		t.Fatal("victim killed by a disarmed guard")
	}
}

func TestParseRejectsBadCommands(t *testing.T) {
	t.Parallel()
	for _, line := range []string{"", "arm", "arm x 1", "arm 1 1", "arm 123 nope", "explode", "arm 999999999 1"} {
		if _, err := parse(line); err == nil {
			t.Errorf("parse(%q) accepted", line)
		}
	}
}
