package daemon

// This file: the backup tool's server on this member (pgBackRest's TLS server, while
// backup.pgbackrest.tls_server is enabled). Every member runs it, whatever its role, so
// that the leader can back up any standby on another host. One goroutine, owned by the
// node's tasks and waited for at shutdown, runs the program as the OS user, restarts it
// with backoff when it dies, and stops it by pid (its process group, SIGKILL: the server
// keeps no state) when the configuration no longer wants it or the node stops.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

const (
	// serverBackoffMin and serverBackoffMax bound the wait before a server that died is
	// started again: quick after a single crash, at most half a minute while it keeps
	// failing (a port taken, a certificate that does not load), so the log is not flooded.
	serverBackoffMin = 500 * time.Millisecond
	serverBackoffMax = 30 * time.Second
	// serverStableAfter is how long a server must have run for its next death to start the
	// backoff again from serverBackoffMin.
	serverStableAfter = time.Minute
	// serverPidFile is the file beside the tool's state where the running server's pid is
	// written (removed when it stops).
	serverPidFile = "server.pid"
)

// toolServer is the state of this member's tool server.
type toolServer struct {
	mu sync.Mutex // guards want, wantSig, pidFile and restarts
	// want is the program the configuration asks for (nil: none), wantSig its identity.
	want    *pg.Program
	wantSig string
	// pidFile is where the pid of the running server is written.
	pidFile string
	// restarts counts the server's deaths.
	restarts int

	// wake carries "want changed" to the supervisor (buffer 1, never blocks).
	wake chan struct{}
	// started is set once the supervisor runs. Loop goroutine only.
	started bool
}

// programSig identifies a program, to notice a changed one.
func programSig(p pg.Program) string {
	return fmt.Sprintf("%q %q %q", p.Path, p.Args, p.Env)
}

// resolveTLSServer fills the TLS server's files the configuration leaves empty with this
// member's PostgreSQL TLS files (pure).
func resolveTLSServer(b dynconf.Backup, pc pg.Config) dynconf.Backup {
	t := &b.PgBackRest.TLSServer
	if !t.Enabled {
		return b
	}
	if t.CertFile == "" && t.KeyFile == "" {
		t.CertFile, t.KeyFile = pc.TLSCertFile, pc.TLSKeyFile
	}
	if t.CAFile == "" {
		t.CAFile = pc.TLSCAFile
	}
	if t.ClientCertFile == "" && t.ClientKeyFile == "" {
		t.ClientCertFile, t.ClientKeyFile = pc.TLSReplicationCertFile, pc.TLSReplicationKeyFile
	}
	return b
}

// setToolServer records the server the configured tool wants on this member and wakes the
// supervisor, starting it the first time. Loop goroutine.
func (n *Node) setToolServer(tool backup.Tool, m backup.Member) {
	s := &n.bk.srv
	var want *pg.Program
	if srv, ok := tool.(backup.Server); ok {
		p, ok, err := srv.ServerProgram(m)
		switch {
		case err != nil:
			n.logger.Error("the backup tool's server cannot run on this member", "tool", tool.Name(), "err", err)
		case ok:
			want = &p
		}
	}
	sig := ""
	if want != nil {
		sig = programSig(*want)
	}
	s.mu.Lock()
	changed := sig != s.wantSig
	s.want, s.wantSig = want, sig
	s.pidFile = filepath.Join(m.StateDir, serverPidFile)
	s.mu.Unlock()
	if !changed {
		return
	}
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	if !s.started && want != nil {
		s.started = true
		wake := s.wake
		n.tasks.run(func(ctx context.Context) { n.superviseToolServer(ctx, wake) })
	}
}

// wanted is the program wanted now and its identity.
func (s *toolServer) wanted() (*pg.Program, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.want, s.wantSig
}

// running records the server's pid (0: stopped) in the pid file.
func (s *toolServer) running(pid int) {
	s.mu.Lock()
	path := s.pidFile
	s.mu.Unlock()
	if path == "" {
		return
	}
	if pid == 0 {
		_ = os.Remove(path)
		return
	}
	_ = os.WriteFile(path, []byte(strconv.Itoa(pid)+"\n"), 0o644)
}

// superviseToolServer runs the wanted server until ctx ends: started when wanted, stopped
// when no longer wanted or changed, restarted with backoff when it dies.
func (n *Node) superviseToolServer(ctx context.Context, wake <-chan struct{}) {
	s := &n.bk.srv
	backoff := serverBackoffMin
	for ctx.Err() == nil {
		p, sig := s.wanted()
		if p == nil {
			select {
			case <-ctx.Done():
				return
			case <-wake:
				continue
			}
		}
		start := time.Now()
		n.logger.Info("starting the backup tool's server", "args", p.Args)
		changed, err := n.runToolServer(ctx, *p, sig, wake)
		switch {
		case ctx.Err() != nil:
			return
		case changed:
			backoff = serverBackoffMin
			continue
		}
		if time.Since(start) > serverStableAfter {
			backoff = serverBackoffMin
		}
		s.mu.Lock()
		s.restarts++
		restarts := s.restarts
		s.mu.Unlock()
		wait := backoff/2 + rand.N(backoff/2+1)
		n.logger.Warn("the backup tool's server exited: restarting", "err", err, "restarts", restarts, "after", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
			backoff = serverBackoffMin
		case <-t.C:
			backoff = min(backoff*2, serverBackoffMax)
		}
		t.Stop()
	}
}

// runToolServer runs p until it exits (its error), ctx ends, or the wanted program is no
// longer sig (changed); in the last two cases it kills the server's process group by
// pid and waits for it (bounded by pg.RunProgram's wait delay).
func (n *Node) runToolServer(ctx context.Context, p pg.Program, sig string, wake <-chan struct{}) (changed bool, err error) {
	s := &n.bk.srv
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	p.Started = s.running
	done := make(chan error, 1)
	go func() {
		_, err := n.pg.RunProgram(rctx, p)
		done <- err
	}()
	for {
		select {
		case rerr := <-done:
			s.running(0)
			if rerr == nil {
				rerr = errors.New("exited with status 0")
			}
			return false, rerr
		case <-wake:
			if _, now := s.wanted(); now == sig {
				continue
			}
			cancel()
			s.running(0)
			n.logger.Info("stopped the backup tool's server: the configuration changed", "exit", <-done)
			return true, nil
		case <-ctx.Done():
			cancel()
			s.running(0)
			n.logger.Info("stopped the backup tool's server", "exit", <-done)
			return false, ctx.Err()
		}
	}
}
