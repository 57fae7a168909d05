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
