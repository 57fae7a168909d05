package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// patroniDefaultServer is the health-check timing of Patroni's documented HAProxy
// configuration (haproxy.cfg in Patroni's repository).
const patroniDefaultServer = "inter 3s fall 3 rise 2 on-marked-down shutdown-sessions"

// recommendedDefaultServer reads the default-server line of deploy/haproxy.cfg, the
// configuration ramd recommends (docs/HAPROXY.md).
func recommendedDefaultServer(b *testing.B) string {
	b.Helper()
	raw, err := os.ReadFile("../../deploy/haproxy.cfg")
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*default-server (.+)$`).FindSubmatch(raw)
	if m == nil {
		b.Fatal("deploy/haproxy.cfg has no default-server line")
	}
	return strings.TrimSpace(string(m[1]))
}

// startHAProxy runs a real HAProxy whose write frontend checks OPTIONS /primary on every
// member with defaultServer's timing, and returns the frontend's port.
func startHAProxy(b *testing.B, c *harness.Cluster, name, defaultServer string) int {
	b.Helper()
	bin := testenv.Binary(b, "haproxy", "haproxy")
	port := testenv.FreePort(b)
	var servers strings.Builder
	for _, n := range c.Nodes {
		fmt.Fprintf(&servers, "  server %s 127.0.0.1:%d check port %d\n", n.Name, n.PGPort, n.APIPort)
	}
	cfg := fmt.Sprintf(`global
  maxconn 200
defaults
  mode tcp
  timeout connect 2s
  timeout client 30m
  timeout server 30m
  default-server %s
listen primary
  bind 127.0.0.1:%d
  option httpchk OPTIONS /primary
  http-check expect status 200
%s`, defaultServer, port, servers.String())
	path := filepath.Join(b.TempDir(), name+".cfg")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(bin, "-f", path, "-db")
	log, err := os.Create(path + ".log")
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start haproxy: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = log.Close()
	})
	return port
}

// proxyWriter inserts a row through one HAProxy frontend every harness.Tick, on one
// connection it opens again after any error, as a pooled client does, and records when each
// insert was acknowledged.
type proxyWriter struct {
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex // guards acks
	acks   []time.Time
}

func startProxyWriter(b *testing.B, port int) *proxyWriter {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &proxyWriter{cancel: cancel, done: make(chan struct{})}
	pw, _, err := pg.LoopbackPasswords()
	if err != nil {
		b.Fatalf("the cluster's loopback passwords: %v", err)
	}
	dsn := strings.Replace(harness.SuperuserDSN(port, pw), "connect_timeout=2", "connect_timeout=1", 1)
	go func() {
		defer close(w.done)
		var conn *pgx.Conn
		tick := time.NewTicker(harness.Tick)
		defer tick.Stop()
		for {
			if conn == nil {
				cctx, ccancel := context.WithTimeout(ctx, time.Second)
				conn, _ = pgx.Connect(cctx, dsn)
				ccancel()
			}
			if conn != nil {
				ectx, ecancel := context.WithTimeout(ctx, time.Second)
				_, err := conn.Exec(ectx, "INSERT INTO ramd_proxy_writes DEFAULT VALUES")
				ecancel()
				if err != nil {
					_ = conn.Close(context.Background())
					conn = nil
				} else {
					w.mu.Lock()
					w.acks = append(w.acks, time.Now())
					w.mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
				if conn != nil {
					_ = conn.Close(context.Background())
				}
				return
			case <-tick.C:
			}
		}
	}()
	b.Cleanup(w.stop)
	return w
}

func (w *proxyWriter) stop() {
	w.cancel()
	<-w.done
}

// ackedAfter reports whether a write was acknowledged after t.
func (w *proxyWriter) ackedAfter(t time.Time) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks) > 0 && w.acks[len(w.acks)-1].After(t)
}

// longestGap is the longest time between two consecutive acknowledged writes from the last
// one before t0 on (writes otherwise come every harness.Tick: this is the outage).
func (w *proxyWriter) longestGap(t0 time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	var longest time.Duration
	var prev time.Time
	for _, a := range w.acks {
		if !prev.IsZero() && !a.Before(t0) {
			longest = max(longest, a.Sub(prev))
		}
		prev = a
	}
	return longest
}

// waitWriting waits (bounded) until every writer acknowledged a write in the last 200 ms:
// each event starts from a steady state, whatever the previous one left behind.
func waitWriting(b *testing.B, writers []*proxyWriter) {
	b.Helper()
	testenv.Eventually(b, 60*time.Second, 50*time.Millisecond, func() error {
		for i, w := range writers {
			if !w.ackedAfter(time.Now().Add(-200 * time.Millisecond)) {
				return fmt.Errorf("writer %d does not write through HAProxy", i)
			}
		}
		return nil
	})
}

// waitOutage waits (bounded) until w acknowledged a write after recovered, the moment the
// direct client wrote on the new primary (no client can write sooner), and returns the
// longest gap in its writes since the event at t0.
func waitOutage(b *testing.B, w *proxyWriter, t0, recovered time.Time) time.Duration {
	b.Helper()
	testenv.Eventually(b, 60*time.Second, 20*time.Millisecond, func() error {
		if !w.ackedAfter(recovered) {
			return fmt.Errorf("no write through HAProxy on the new primary yet")
		}
		return nil
	})
	return w.longestGap(t0)
}

// BenchmarkHAProxyOutage: the outage a client sees through HAProxy, with ramd's recommended
// checks (deploy/haproxy.cfg: inter 1s fastinter 250ms downinter 250ms fall 2 rise 1), with
// checks every second only (inter 1s fall 2 rise 1) and with Patroni's documented ones
// (inter 3s fall 3 rise 2), next to the write gap of a client that finds the primary
// itself, for a node loss (SIGKILL of the primary's ramd and postmaster) and a switchover.
// All four clients write during the same events.
func BenchmarkHAProxyOutage(b *testing.B) {
	c, direct := cluster(b)
	p := c.WaitPrimary(60 * time.Second)
	if err := p.Exec(context.Background(), "CREATE TABLE IF NOT EXISTS ramd_proxy_writes (at timestamptz DEFAULT now())"); err != nil {
		b.Fatal(err)
	}
	profiles := []struct{ name, defaultServer string }{
		{"recommended", recommendedDefaultServer(b)},
		{"patroni_docs", patroniDefaultServer},
		{"inter_1s", "inter 1s fall 2 rise 1 on-marked-down shutdown-sessions"},
	}
	writers := make([]*proxyWriter, len(profiles))
	for i, pr := range profiles {
		writers[i] = startProxyWriter(b, startHAProxy(b, c, pr.name, pr.defaultServer))
	}
	waitWriting(b, writers) // every frontend routes to the primary before the first event

	type result struct {
		direct samples
		via    [3]samples
	}
	var kill, switchover result
	for range rounds {
		// Node loss.
		p := c.WaitPrimary(60 * time.Second)
		waitWriting(b, writers)
		time.Sleep(time.Duration(time.Now().UnixNano()%1000) * time.Millisecond)
		t0 := time.Now()
		p.Kill()
		a := firstAck(b, direct, t0, p.Name)
		last, _ := direct.LastAckBefore(t0)
		kill.direct.add(a.At.Sub(last.At))
		for i, w := range writers {
			kill.via[i].add(waitOutage(b, w, t0, a.At))
		}
		p.Start()
		settle(b, c, direct)
		waitWriting(b, writers)

		// Switchover.
		p = c.WaitPrimary(60 * time.Second)
		var target *harness.Node
		for _, n := range c.Nodes {
			if n != p {
				target = n
				break
			}
		}
		t0 = time.Now()
		if code, body := post(p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name)); code != 200 {
			b.Fatalf("switchover: %d %s", code, body)
		}
		a = firstAck(b, direct, t0, p.Name)
		last, _ = direct.LastAckBefore(a.At)
		switchover.direct.add(a.At.Sub(last.At))
		for i, w := range writers {
			switchover.via[i].add(waitOutage(b, w, t0, a.At))
		}
		settle(b, c, direct)
		waitWriting(b, writers)
	}
	kill.direct.report(b, "kill_direct_outage")
	switchover.direct.report(b, "switchover_direct_outage")
	for i, pr := range profiles {
		kill.via[i].report(b, "kill_haproxy_"+pr.name+"_outage")
		switchover.via[i].report(b, "switchover_haproxy_"+pr.name+"_outage")
	}
	checkSafe(b, direct)
}
