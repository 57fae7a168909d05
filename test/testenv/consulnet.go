package testenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Consul's default ports: inside a namespace every agent has the whole port space.
const (
	consulHTTPPort = 8500
	consulDNSPort  = 8600
)

// writeNetConfig writes the config of an agent inside a test network's namespace.
func (c *Consul) writeNetConfig() error {
	h := c.opts.Host
	c.HTTPAddr = net.JoinHostPort(h.Addr, fmt.Sprint(consulHTTPPort))
	c.DNSAddr = net.JoinHostPort(h.Addr, fmt.Sprint(consulDNSPort))
	cfg := map[string]any{
		"node_name":            c.NodeName,
		"datacenter":           c.Datacenter,
		"bind_addr":            h.Addr,
		"advertise_addr":       h.Addr,
		"client_addr":          "127.0.0.1 " + h.Addr,
		"data_dir":             filepath.Join(c.dir, "data"),
		"disable_update_check": true,
		"log_level":            "info",
		"retry_join":           c.opts.Join,
		"retry_interval":       "1s",
		"leave_on_terminate":   false,
		// raft_multiplier 1 is the production recommendation: a leader lost is replaced
		// within a few seconds.
		"performance": map[string]any{"raft_multiplier": 1},
		"ports":       map[string]any{"https": -1, "grpc": -1, "grpc_tls": -1},
	}
	if c.opts.BootstrapExpect > 0 {
		cfg["server"] = true
		cfg["bootstrap_expect"] = c.opts.BootstrapExpect
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode consul config: %w", err)
	}
	if err := os.WriteFile(c.configPath, b, 0o600); err != nil {
		return fmt.Errorf("write consul config: %w", err)
	}
	return nil
}

// ConsulNet is a datacenter inside a test network: servers in namespaces of their own and
// a client agent on each host.
type ConsulNet struct {
	Servers []*Consul
	// Clients maps a host's name to its client agent.
	Clients map[string]*Consul
}

// StartConsulNet starts one server on each of servers (a datacenter of len(servers)
// servers that elect a leader among themselves) and one client agent on each of clients,
// joined to the servers, and waits until every agent is ready. Each is stopped by pid in
// t.Cleanup.
func StartConsulNet(t testing.TB, servers, clients []*Host) *ConsulNet {
	t.Helper()
	bin := ConsulBinary(t)
	var join []string
	for _, s := range servers {
		join = append(join, s.Addr)
	}
	cn := &ConsulNet{Clients: map[string]*Consul{}}
	start := func(h *Host, expect int) *Consul {
		c, err := newConsul(bin, t.TempDir(), ConsulOptions{Host: h, Join: join, BootstrapExpect: expect})
		if err != nil {
			t.Fatalf("consul on %s: %v", h.Name, err)
		}
		c.NodeName = h.NS
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("consul %s log tail:\n%s", c.NodeName, c.logTail())
			}
			if err := c.stop(); err != nil {
				t.Errorf("stop consul %s: %v", c.NodeName, err)
			}
		})
		if err := c.writeConfig(); err != nil {
			t.Fatalf("consul on %s: %v", h.Name, err)
		}
		if _, err := c.launch(); err != nil {
			t.Fatalf("consul on %s: %v", h.Name, err)
		}
		return c
	}
	for _, h := range servers {
		cn.Servers = append(cn.Servers, start(h, len(servers)))
	}
	for _, h := range clients {
		cn.Clients[h.Name] = start(h, 0)
	}
	for _, c := range append(append([]*Consul(nil), cn.Servers...), cn.clientList()...) {
		c.mu.Lock()
		done := c.done
		c.mu.Unlock()
		if err := c.waitReady(done); err != nil {
			t.Fatalf("consul %s: %v\nlog tail:\n%s", c.NodeName, err, c.logTail())
		}
	}
	return cn
}

func (cn *ConsulNet) clientList() []*Consul {
	var out []*Consul
	for _, c := range cn.Clients {
		out = append(out, c)
	}
	return out
}

// Leader returns the server that is the raft leader, asking each running server in turn.
func (cn *ConsulNet) Leader() (*Consul, error) {
	hc := &http.Client{Timeout: time.Second}
	var errs []error
	for _, s := range cn.Servers {
		if s.PID() == 0 {
			continue
		}
		var leader string
		if err := s.getJSON(hc, "http://"+s.HTTPAddr+"/v1/status/leader", &leader); err != nil {
			errs = append(errs, err)
			continue
		}
		host, _, _ := strings.Cut(leader, ":")
		for _, l := range cn.Servers {
			if l.opts.Host.Addr == host && host != "" {
				return l, nil
			}
		}
		errs = append(errs, fmt.Errorf("%s names leader %q", s.NodeName, leader))
	}
	return nil, fmt.Errorf("no consul leader: %w", errors.Join(errs...))
}

// Kill SIGKILLs the agent (a crashed server) and reaps it; Start brings it back on the
// same address and data dir.
func (c *Consul) Kill(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
	case <-time.After(consulKillGrace):
		t.Fatalf("consul pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// Host returns the namespace the agent runs in (nil for a loopback agent).
func (c *Consul) Host() *Host { return c.opts.Host }
