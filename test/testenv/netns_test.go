package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
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
