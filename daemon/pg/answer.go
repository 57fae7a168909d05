package pg

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
	"time"

	"github.com/ramd-project/ramd/daemon/proc"
)

// sslRequestCode is the protocol's SSLRequest: a client asks whether the server speaks TLS
// and the server answers one byte, 'S' or 'N', before any authentication.
const sslRequestCode = 80877103

// Answers reports whether the postmaster accepts a new connection and a backend answers on
// it, bounded by ctx. It is the test of a server that stopped answering: a postmaster
// stopped by SIGSTOP or hung on its storage accepts nothing, while the backends it forked
// earlier (ramd's own pooled connection among them) may still answer queries. The check
// sends an SSLRequest and waits for its one-byte answer, so it needs no password and costs
// the server one short-lived backend; it goes through the unix socket when there is one
// (the answer is then always 'N'), else over TCP, where an 'S' is followed by a TLS
// handshake so that the backend sees a clean end and logs nothing. A socket file that cannot
// be reached at once (removed by a temporary-file cleaner, say) is no silence: the check
// then goes over TCP, the way ramd's own connections go. A server that refuses connections
// (starting up, too many clients) has answered.
func (i *Instance) Answers(ctx context.Context) error {
	tcp := net.JoinHostPort(localHost(i.cfg.ListenAddr), strconv.Itoa(i.cfg.Port))
	var d net.Dialer
	var conn net.Conn
	err := errors.New("no unix socket")
	addr := tcp
	if i.cfg.SocketDir != SocketDirNone {
		addr = socketPath(i.cfg.SocketDir, i.cfg.Port)
		conn, err = d.DialContext(ctx, "unix", addr)
	}
	if err != nil && ctx.Err() == nil {
		addr = tcp
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("connect to %s: %w", addr, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], sslRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		return fmt.Errorf("send to %s: %w", addr, err)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		return fmt.Errorf("no answer from %s: %w", addr, err)
	}
	if b[0] == 'S' {
		// Liveness only: nothing is sent over this connection, so its certificate is not
		// checked.
		tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}) //nolint:gosec // no data is exchanged, only the handshake
		err := tc.HandshakeContext(ctx)
		_ = tc.Close()
		if err != nil && ctx.Err() != nil {
			return fmt.Errorf("no TLS handshake from %s: %w", addr, err)
		}
	}
	return nil
}

// killWait bounds how long Kill waits for the killed processes to be gone. SIGKILL takes
// effect as soon as the kernel schedules a process (a process in uninterruptible sleep when
// its I/O completes, before it returns to user space).
const killWait = 5 * time.Second

// ErrSurvivors is returned by Kill when processes of the killed server are still there at
// the end of its wait.
var ErrSurvivors = errors.New("pg: processes of the killed server still run")

// Kill kills the postmaster and every process it forked with SIGKILL, which reaches a
// stopped (SIGSTOP) process too, and waits, bounded by killWait and ctx, until the
// postmaster has exited and no process of the server runs on the data directory any more
// (Linux /proc). It does not wait for the operation lock: a server that stopped answering may
// hold it in a call that never returns, and killing it is what ends that call. A server that
// is not running is no error.
func (i *Instance) Kill(ctx context.Context) error {
	pid := i.PID()
	if pid == 0 {
		return nil
	}
	i.logger.WarnContext(ctx, "killing the postmaster and its children", "pid", pid)
	proc.KillPostmaster(pid)
	ctx, cancel := context.WithTimeout(ctx, killWait)
	defer cancel()
	if err := i.waitExit(ctx, pid); err != nil {
		return fmt.Errorf("%w: postmaster %d: %w", ErrSurvivors, pid, err)
	}
	i.afterExit()
	ticker := time.NewTicker(pollEvery / 2)
	defer ticker.Stop()
	for range maxPolls {
		// The children lead process groups of their own and are found by their working
		// directory; one that outlived the first SIGKILL (forked meanwhile) gets another.
		left := i.dataDirPIDs()
		if len(left) == 0 {
			return nil
		}
		for _, p := range left {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: pids %v: %w", ErrSurvivors, left, ctx.Err())
		case <-ticker.C:
		}
	}
	return fmt.Errorf("%w: after %d polls", ErrSurvivors, maxPolls)
}
