package testenv

import (
	"bytes"
	cryptorand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestNetConsul builds a network of three servers and one client host, checks that the
// client reaches the servers' leader, that a cut host cannot reach anyone, and that every
// namespace and interface is gone after the cleanups.
func TestNetConsul(t *testing.T) {
	var prefix string
	t.Run("net", func(t *testing.T) {
		n := NewNet(t)
		prefix = n.Prefix
		s := []*Host{n.AddHost("s1"), n.AddHost("s2"), n.AddHost("s3")}
		h := n.AddHost("h1")
		cn := StartConsulNet(t, s, []*Host{h})
		leader, err := cn.Leader()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("consul leader %s", leader.NodeName)
		client := cn.Clients["h1"]
		dial := func(addr string) error {
			c, err := net.DialTimeout("tcp", addr, 300*time.Millisecond)
			if err == nil {
				_ = c.Close()
			}
			return err
		}
		if err := dial(client.HTTPAddr); err != nil {
			t.Fatalf("client agent unreachable from the test process: %v", err)
		}
		n.IsolateFromClient(h)
		if err := dial(client.HTTPAddr); err == nil {
			t.Fatal("an isolated host still answers the client")
		}
		n.Heal()
		Eventually(t, 10*time.Second, 100*time.Millisecond, func() error { return dial(client.HTTPAddr) })

		leader.Kill(t)
		Eventually(t, 30*time.Second, 200*time.Millisecond, func() error {
			l, err := cn.Leader()
			if err != nil {
				return err
			}
			if l == leader {
				return errors.New("old leader still named")
			}
			return nil
		})
		leader.Start(t)
	})
	if prefix == "" {
		return
	}
	// Namespaces are destroyed asynchronously, and their veth ends with them.
	err := Poll(5*time.Second, 50*time.Millisecond, func() error {
		var left []string
		if b, err := os.ReadDir("/run/netns"); err == nil {
			for _, e := range b {
				if strings.HasPrefix(e.Name(), prefix) {
					left = append(left, "namespace "+e.Name())
				}
			}
		}
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, prefix) {
				left = append(left, "interface "+i.Name)
			}
		}
		if len(left) > 0 {
			return fmt.Errorf("left behind: %v", left)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// TestNetLoss checks that Loss drops about the share of packets asked for, both ways, and
// that Heal removes it: a UDP echo server in a host's namespace answers the test process.
func TestNetLoss(t *testing.T) {
	if err := NetAvailable(); err != nil {
		Missing(t, "%v", err)
	}
	n := NewNet(t)
	h := n.AddHost("h1")
	const port = 7
	echo := h.Command("python3", "-c", fmt.Sprintf(`import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("%s", %d))
while True:
    b, a = s.recvfrom(64)
    s.sendto(b, a)
`, h.Addr, port))
	if err := echo.Start(); err != nil {
		Missing(t, "python3 for the echo server: %v", err)
	}
	t.Cleanup(func() { _ = echo.Process.Kill(); _ = echo.Wait() })
	conn, err := net.Dial("udp", net.JoinHostPort(h.Addr, fmt.Sprint(port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	answered := func(count int) int {
		ok := 0
		buf := make([]byte, 64)
		for i := range count {
			msg := fmt.Sprintf("probe %d", i)
			if _, err := conn.Write([]byte(msg)); err != nil {
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			for {
				m, err := conn.Read(buf)
				if err != nil {
					break
				}
				if string(buf[:m]) == msg {
					ok++
					break
				}
			}
		}
		return ok
	}
	Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if answered(5) < 5 {
			return errors.New("echo server not answering yet")
		}
		return nil
	})
	if err := n.Loss(h, 20); err != nil {
		if errors.Is(err, ErrNoNftables) {
			Missing(t, "%v", err)
		}
		t.Fatal(err)
	}
	// 20 % each way: about 64 % of the probes come back (binomial, 400 probes: sd 2.4 %).
	const probes = 400
	if got := answered(probes); got < probes*45/100 || got > probes*82/100 {
		t.Errorf("with 20 %% loss each way, %d of %d probes answered; want about 64 %%", got, probes)
	} else {
		t.Logf("with 20 %% loss each way, %d of %d probes answered", got, probes)
	}
	n.Heal()
	if got := answered(100); got < 95 {
		t.Errorf("after Heal, %d of 100 probes answered", got)
	}
}

// TestNetDelay checks that Delay adds its delay to each direction of a host's link (a
// round trip about twice the base), that a bulk TCP transfer through the delayed link
// arrives whole both ways (offloaded TSO frames cross the relay), and that Heal removes
// it and gives the host its bridge port back.
func TestNetDelay(t *testing.T) {
	if err := NetAvailable(); err != nil {
		Missing(t, "%v", err)
	}
	n := NewNet(t)
	h := n.AddHost("h1")
	const udpPort, tcpPort = 7, 9
	// A UDP echo and a TCP echo (everything a connection sends comes back on it).
	echo := h.Command("python3", "-c", fmt.Sprintf(`import socket, threading
def tcp():
    l = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("%[1]s", %[3]d))
    l.listen(4)
    while True:
        c, _ = l.accept()
        def serve(c):
            while True:
                b = c.recv(1 << 16)
                if not b:
                    break
                c.sendall(b)
            c.close()
        threading.Thread(target=serve, args=(c,), daemon=True).start()
threading.Thread(target=tcp, daemon=True).start()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("%[1]s", %[2]d))
while True:
    b, a = s.recvfrom(64)
    s.sendto(b, a)
`, h.Addr, udpPort, tcpPort))
	if err := echo.Start(); err != nil {
		Missing(t, "python3 for the echo server: %v", err)
	}
	t.Cleanup(func() { _ = echo.Process.Kill(); _ = echo.Wait() })
	conn, err := net.Dial("udp", net.JoinHostPort(h.Addr, fmt.Sprint(udpPort)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// rtts sends count probes one after the other and returns the round trips of those
	// answered within a second.
	rtts := func(count int) []time.Duration {
		var out []time.Duration
		buf := make([]byte, 64)
		for i := range count {
			msg := fmt.Sprintf("probe %d", i)
			start := time.Now()
			if _, err := conn.Write([]byte(msg)); err != nil {
				continue
			}
			_ = conn.SetReadDeadline(time.Now().Add(time.Second))
			for {
				m, err := conn.Read(buf)
				if err != nil {
					break
				}
				if string(buf[:m]) == msg {
					out = append(out, time.Since(start))
					break
				}
			}
		}
		return out
	}
	Eventually(t, 10*time.Second, 100*time.Millisecond, func() error {
		if len(rtts(5)) < 5 {
			return errors.New("echo server not answering yet")
		}
		return nil
	})
	before := summarize(rtts(20))
	const base, jitter = 200 * time.Millisecond, 50 * time.Millisecond
	if err := n.Delay(h, base, jitter); err != nil {
		t.Fatal(err)
	}
	during := summarize(rtts(30))
	t.Logf("UDP round trips of 64-byte probes: before %s; with %s ± %s each way %s", before, base, jitter, during)
	if during.n < 25 || during.median < 300*time.Millisecond || during.median > 600*time.Millisecond {
		t.Errorf("with %s ± %s each way: %s, want a median within [300ms, 600ms] and at least 25 of 30 answered", base, jitter, during)
	}
	// Loss on the same host applies to the relay's TAP: 20 % each way, about 64 % back.
	if err := n.Loss(h, 20); err != nil {
		if !errors.Is(err, ErrNoNftables) {
			t.Fatal(err)
		}
		t.Logf("loss with delay not checked: %v", err)
	} else {
		const probes = 400
		got := burst(t, conn, probes, 3*time.Second)
		if got < probes*45/100 || got > probes*82/100 {
			t.Errorf("with the delay and 20 %% loss each way, %d of %d probes answered; want about 64 %%", got, probes)
		} else {
			t.Logf("with the delay and 20 %% loss each way, %d of %d probes answered", got, probes)
		}
		n.Heal()
		if err := n.Delay(h, base, jitter); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := tcpEcho(t, net.JoinHostPort(h.Addr, fmt.Sprint(tcpPort)), 4<<20); err != nil {
		t.Errorf("4 MiB each way through the delayed link: %v", err)
	} else {
		t.Logf("4 MiB each way through the delayed link (TCP echo) in %s", time.Since(start).Round(time.Millisecond))
	}
	n.Heal()
	if out, err := exec.Command("ip", "-n", n.Prefix+"br", "-o", "link").CombinedOutput(); err != nil {
		t.Errorf("list the bridge's links: %v: %s", err, out)
	} else if links := string(out); strings.Contains(links, h.NS+"t") || !strings.Contains(links, h.NS+"b@") {
		t.Errorf("after Heal the relay's TAP %st is still there or the host's port is gone:\n%s", h.NS, links)
	} else if !regexp.MustCompile(regexp.QuoteMeta(h.NS+"b@") + `.* master br0 `).MatchString(links) {
		t.Errorf("after Heal the host's port %sb is not on br0:\n%s", h.NS, links)
	}
	after := summarize(rtts(20))
	t.Logf("UDP round trips after Heal: %s", after)
	if after.n < 19 || after.median >= 50*time.Millisecond {
		t.Errorf("after Heal: %s, want a median below 50ms and at least 19 of 20 answered", after)
	}
	start = time.Now()
	if err := tcpEcho(t, net.JoinHostPort(h.Addr, fmt.Sprint(tcpPort)), 4<<20); err != nil {
		t.Errorf("4 MiB each way after Heal: %v", err)
	} else {
		t.Logf("4 MiB each way after Heal in %s", time.Since(start).Round(time.Millisecond))
	}
}

// burst sends count distinct probes at once, 1 ms apart, and counts the distinct answers
// that arrive within wait after the last.
func burst(t *testing.T, conn net.Conn, count int, wait time.Duration) int {
	t.Helper()
	prefix := fmt.Sprintf("burst %d ", time.Now().UnixNano())
	for i := range count {
		_, _ = fmt.Fprintf(conn, "%s%d", prefix, i)
		time.Sleep(time.Millisecond)
	}
	seen := map[string]bool{}
	buf := make([]byte, 64)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	for len(seen) < count {
		m, err := conn.Read(buf)
		if err != nil {
			break
		}
		if msg := string(buf[:m]); strings.HasPrefix(msg, prefix) {
			seen[msg] = true
		}
	}
	return len(seen)
}

// rttSummary is the count, median and extremes of some round trips.
type rttSummary struct {
	n                int
	min, median, max time.Duration
}

func (s rttSummary) String() string {
	return fmt.Sprintf("%d answered, min %s, median %s, max %s", s.n, s.min.Round(time.Microsecond), s.median.Round(time.Microsecond), s.max.Round(time.Microsecond))
}

func summarize(d []time.Duration) rttSummary {
	if len(d) == 0 {
		return rttSummary{}
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return rttSummary{n: len(s), min: s[0], median: s[len(s)/2], max: s[len(s)-1]}
}

// tcpEcho sends size random bytes to a TCP echo server at addr and checks that the same
// bytes come back, within a minute.
func tcpEcho(t *testing.T, addr string, size int) error {
	t.Helper()
	data := make([]byte, size)
	if _, err := cryptorand.Read(data); err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	werr := make(chan error, 1)
	go func() {
		_, err := c.Write(data)
		if err == nil {
			err = c.(*net.TCPConn).CloseWrite()
		}
		werr <- err
	}()
	got, rerr := io.ReadAll(c)
	if err := <-werr; err != nil {
		return fmt.Errorf("send: %w", err)
	}
	if rerr != nil {
		return fmt.Errorf("receive (%d of %d bytes back): %w", len(got), size, rerr)
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("%d bytes back, differing from the %d sent", len(got), size)
	}
	return nil
}
