package integration

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// TestSlowConsulForTheLeader puts a proxy that delays every request between each node and
// the Consul agent, and slows only the leader's. Within a cycle's Consul step (250 ms per
// call, failsafe mode on) the leader keeps the lock and its PostgreSQL: no failover, no
// demotion, no fencing. Past it (1.5 s per call) the heartbeat cannot complete in time, and
// the members' confirmations keep the leader. Far past it
// with failsafe mode off (4 s per call) it fails over cleanly: the old primary stops taking
// writes before the new one starts.
func TestSlowConsulForTheLeader(t *testing.T) {
	t.Parallel()
	addr := needReal(t)
	proxies := map[string]*testenv.SlowProxy{}
	nodeEnv := map[string]map[string]string{}
	for i := 1; i <= 3; i++ {
		name := fmt.Sprintf("n%d", i)
		proxies[name] = testenv.NewSlowProxy(t, addr)
		nodeEnv[name] = map[string]string{"CONSUL_HTTP_ADDR": proxies[name].Addr}
	}
	c := harness.New(t, ramdBin, addr, 3, harness.Options{NodeEnv: nodeEnv})
	if len(c.Nodes) != 3 || proxies[c.Nodes[0].Name] == nil {
		t.Fatalf("the harness named the nodes %v; the proxies are for n1..n3", c.Nodes)
	}
	c.StartAll()
	p := c.WaitPrimary(120 * time.Second)
	c.WaitReplicas(120 * time.Second)
	w := c.StartWriter(t)
	w.WaitAcked(t, 50, 60*time.Second)

	// noFailover holds a delay on the leader's Consul calls for hold and checks that the
	// leader kept the lock and its PostgreSQL: no other node took a write, the same
	// postmaster, no fencing.
	noFailover := func(delay, hold time.Duration, what string) (failsafe int) {
		t.Helper()
		pid := p.PostmasterPID()
		at := time.Now()
		proxies[p.Name].SetDelay(delay)
		samples := 0
		for time.Since(at) < hold {
			if d, err := p.Patroni(); err == nil {
				samples++
				if d.FailsafeActive {
					failsafe++
				}
			}
			time.Sleep(500 * time.Millisecond)
		}
		proxies[p.Name].SetDelay(0)
		if a, ok := w.FirstAckAfter(at, p.Name); ok {
			t.Errorf("%s: %s took a write at %s: a failover", what, a.Node, a.At.Format("15:04:05.000"))
		}
		if got := p.PostmasterPID(); got != pid {
			t.Errorf("%s: %s's postmaster changed from %d to %d: demoted or fenced", what, p.Name, pid, got)
		}
		if cur, err := c.Primary(); err != nil || cur != p {
			t.Errorf("%s: primary %v (%v), want %s", what, cur, err, p.Name)
		}
		for _, l := range c.LogEvents("fencing deadline passed", "lost the leader lock") {
			if strings.HasPrefix(l, p.Name+":") {
				t.Errorf("%s: %s fenced itself: %s", what, p.Name, l)
			}
		}
		t.Logf("%s: %s per Consul call of the leader %s for %s: no failover, same postmaster; living on failsafe in %d of %d samples; longest write gap so far %s",
			what, delay, p.Name, hold, failsafe, samples, w.LongestGap().Round(time.Millisecond))
		return failsafe
	}
	// A cycle's Consul calls (its reads and the heartbeat) take 250 ms longer each: some
	// cycles miss their Consul step, the members confirm.
	noFailover(250*time.Millisecond, 10*time.Second, "failsafe on, slow")
	// No heartbeat can complete before its step ends: the leader lives on confirmations.
	if noFailover(1500*time.Millisecond, 10*time.Second, "failsafe on, too slow for the heartbeat") == 0 {
		t.Errorf("the leader never reported failsafe mode with 1.5 s per Consul call: the delay did not reach it")
	}
	// Without failsafe mode nothing but the heartbeat keeps the leader: how much delay its
	// cycle absorbs then depends on the machine's load (250 ms per call fitted on a quiet
	// machine and fenced the leader once under the whole suite's load), so no phase asserts it.
	if code, body := patch(t, c.Other(p).APIURL()+"/config", `{"failsafe_mode": false}`, ""); code != http.StatusOK {
		t.Fatalf("PATCH /config failsafe_mode: %d %s", code, body)
	}
	time.Sleep(3 * time.Second) // every member has read the configuration

	// Far above the limits with failsafe mode off (with it on, the members' confirmations
	// keep the leader, as above): a clean failover.
	cut := time.Now()
	proxies[p.Name].SetDelay(4 * time.Second)
	var next *harness.Node
	testenv.Eventually(t, 90*time.Second, 200*time.Millisecond, func() error {
		n, err := c.Primary()
		if err != nil {
			return err
		}
		if n == p {
			return fmt.Errorf("%s is still the primary", p.Name)
		}
		next = n
		return nil
	})
	w.WaitAcked(t, 20, 60*time.Second)
	var oldLast harness.Ack
	first, ok := w.FirstAckAfter(cut, p.Name)
	if !ok {
		t.Fatalf("no write acknowledged by another node after the slow-down")
	}
	if a, ok := w.LastAckBefore(first.At); ok && a.Node == p.Name {
		oldLast = a
	}
	t.Logf("4 s per Consul call on %s, failsafe off: %s took over; old primary's last ack +%s, new primary's first +%s",
		p.Name, next.Name, oldLast.At.Sub(cut).Round(time.Millisecond), first.At.Sub(cut).Round(time.Millisecond))

	proxies[p.Name].SetDelay(0)
	c.WaitReplicas(180 * time.Second)
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		t.Errorf("two writable nodes: %v", v)
	}
}
