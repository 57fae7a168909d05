package bench

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// rounds is how many times each scenario runs.
var rounds = envInt("RAMD_BENCH_ROUNDS", 5)

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

type samples struct{ d []time.Duration }

func (s *samples) add(d time.Duration) { s.d = append(s.d, d) }

func (s *samples) report(b *testing.B, name string) {
	b.Helper()
	if len(s.d) == 0 {
		b.Fatalf("%s: no samples", name)
	}
	sort.Slice(s.d, func(i, j int) bool { return s.d[i] < s.d[j] })
	med := s.d[len(s.d)/2]
	if len(s.d)%2 == 0 {
		med = (s.d[len(s.d)/2-1] + s.d[len(s.d)/2]) / 2
	}
	b.ReportMetric(s.d[0].Seconds(), name+"_min_s")
	b.ReportMetric(med.Seconds(), name+"_median_s")
	b.ReportMetric(s.d[len(s.d)-1].Seconds(), name+"_max_s")
	b.Logf("%s over %d rounds: min %s median %s max %s (all: %v)", name, len(s.d),
		s.d[0].Round(time.Millisecond), med.Round(time.Millisecond), s.d[len(s.d)-1].Round(time.Millisecond), s.d)
}

func cluster(b *testing.B) (*harness.Cluster, *harness.Writer) {
	b.Helper()
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{})
	cl.StartAll()
	cl.WaitPrimary(120 * time.Second)
	cl.WaitReplicas(120 * time.Second)
	w := cl.StartWriter(b)
	w.WaitAcked(b, 10, 30*time.Second)
	return cl, w
}

// dnsPrimaryPort answers the port that primary.<scope>.service.consul names (0 when none or
// several).
func dnsPrimaryPort(scope string) int {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("primary."+scope+".service.consul"), dns.TypeSRV)
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, shared.DNSAddr)
	if err != nil || len(r.Answer) != 1 {
		return 0
	}
	if s, ok := r.Answer[0].(*dns.SRV); ok {
		return int(s.Port)
	}
	return 0
}

func waitDNS(b *testing.B, scope string, port int, since time.Time) time.Duration {
	b.Helper()
	var at time.Time
	testenv.Eventually(b, 60*time.Second, 10*time.Millisecond, func() error {
		if got := dnsPrimaryPort(scope); got != port {
			return fmt.Errorf("dns names port %d, want %d", got, port)
		}
		at = time.Now()
		return nil
	})
	return at.Sub(since)
}

func firstAck(b *testing.B, w *harness.Writer, since time.Time, exclude string) harness.Ack {
	b.Helper()
	var a harness.Ack
	testenv.Eventually(b, 60*time.Second, 10*time.Millisecond, func() error {
		var ok bool
		if a, ok = w.FirstAckAfter(since, exclude); !ok {
			return fmt.Errorf("no write acknowledged since the fault")
		}
		return nil
	})
	return a
}

func settle(b *testing.B, c *harness.Cluster, w *harness.Writer) {
	b.Helper()
	c.WaitPrimary(60 * time.Second)
	c.WaitReplicas(120 * time.Second)
	w.WaitAcked(b, 10, 30*time.Second)
}

// BenchmarkNodeLoss: SIGKILL of the primary's ramd and postmaster → first acknowledged write
// on the new primary, and → Consul DNS names only the new primary.
func BenchmarkNodeLoss(b *testing.B) {
	c, w := cluster(b)
	var write, name samples
	for range rounds {
		p := c.WaitPrimary(60 * time.Second)
		// A random phase against the heartbeat.
		time.Sleep(time.Duration(time.Now().UnixNano()%1000) * time.Millisecond)
		t0 := time.Now()
		p.Kill()
		a := firstAck(b, w, t0, p.Name)
		write.add(a.At.Sub(t0))
		np := c.Node(a.Node)
		name.add(waitDNS(b, c.Scope, np.PGPort, t0))
		p.Start()
		settle(b, c, w)
	}
	write.report(b, "kill_to_write")
	name.report(b, "kill_to_dns")
	checkSafe(b, w)
}

// BenchmarkPostgresCrash: SIGKILL of the primary's postmaster under a live ramd → writes
// acknowledged again.
func BenchmarkPostgresCrash(b *testing.B) {
	c, w := cluster(b)
	var s samples
	for range rounds {
		p := c.WaitPrimary(60 * time.Second)
		time.Sleep(time.Duration(time.Now().UnixNano()%1000) * time.Millisecond)
		pm := p.PostmasterPID()
		t0 := time.Now()
		fence.KillPostmaster(pm)
		a := firstAck(b, w, t0, "")
		s.add(a.At.Sub(t0))
		settle(b, c, w)
	}
	s.report(b, "crash_to_write")
	checkSafe(b, w)
}

// dnsProbe asks primary.<scope> every 20 ms until stop is closed and records, in the answers
// after start, the longest run during which the name named no node (empty) and how many
// answers named more than one (double).
type dnsProbe struct {
	done   chan struct{}
	empty  time.Duration
	double int
}

func probeDNS(scope string, stop <-chan struct{}) *dnsProbe {
	p := &dnsProbe{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var emptySince time.Time
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 30000; i++ { // bounded: 10 minutes of probes
			ports, at := dnsPrimaryPorts(scope), time.Now()
			switch {
			case len(ports) == 0 && emptySince.IsZero():
				emptySince = at
			case len(ports) > 0 && !emptySince.IsZero():
				p.empty = max(p.empty, at.Sub(emptySince))
				emptySince = time.Time{}
			}
			if len(ports) > 1 {
				p.double++
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// BenchmarkSwitchover: planned switchover → the write gap (last write on the old primary to
// first write on the new one), the time until DNS names the new primary, and the longest
// time primary.<scope> named no node (probed every 20 ms; it must never name two).
func BenchmarkSwitchover(b *testing.B) {
	c, w := cluster(b)
	var gap, name, empty samples
	doubles := 0
	for i := range rounds {
		p := c.WaitPrimary(60 * time.Second)
		var target *harness.Node
		for _, n := range c.Nodes {
			if n != p {
				target = n
				break
			}
		}
		stop := make(chan struct{})
		probe := probeDNS(c.Scope, stop)
		t0 := time.Now()
		code, body := post(p.APIURL()+"/switchover", fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, target.Name))
		if code != 200 {
			close(stop)
			b.Fatalf("switchover: %d %s", code, body)
		}
		a := firstAck(b, w, t0, p.Name)
		last, _ := w.LastAckBefore(a.At)
		gap.add(a.At.Sub(last.At))
		name.add(waitDNS(b, c.Scope, target.PGPort, t0))
		time.Sleep(100 * time.Millisecond) // a few more answers after the switch
		close(stop)
		<-probe.done
		empty.add(probe.empty)
		doubles += probe.double
		b.Logf("switchover %d: write gap %s, primary.%s named no node for %s", i+1,
			a.At.Sub(last.At).Round(time.Millisecond), c.Scope, probe.empty.Round(time.Millisecond))
		settle(b, c, w)
	}
	gap.report(b, "switchover_write_gap")
	name.report(b, "switchover_to_dns")
	empty.report(b, "switchover_dns_empty")
	if doubles > 0 {
		b.Errorf("primary.<scope> named two nodes in %d answers", doubles)
	}
	checkSafe(b, w)
}

// BenchmarkGracefulStop: SIGTERM of the primary's ramd → the write gap until the successor
// acknowledges.
func BenchmarkGracefulStop(b *testing.B) {
	c, w := cluster(b)
	var gap samples
	for range rounds {
		p := c.WaitPrimary(60 * time.Second)
		t0 := time.Now()
		p.Signal(syscall.SIGTERM)
		a := firstAck(b, w, t0, p.Name)
		last, _ := w.LastAckBefore(a.At)
		gap.add(a.At.Sub(last.At))
		if err := p.Stop(); err != nil {
			b.Fatal(err)
		}
		p.Start()
		settle(b, c, w)
	}
	gap.report(b, "graceful_stop_write_gap")
	checkSafe(b, w)
}

func checkSafe(b *testing.B, w *harness.Writer) {
	b.Helper()
	w.Stop()
	if v := w.Violations(); len(v) > 0 {
		b.Errorf("split brain observed: %v", v)
	}
}

// BenchmarkClusterStop: SIGTERM to every node at once → the time until the last ramd exited.
// The primary must not wait out RAMD_HANDOVER_WAIT (5 s in the harness) for a successor
// that is stopping too.
func BenchmarkClusterStop(b *testing.B) { clusterStop(b, "cluster_stop", nil) }

// BenchmarkClusterStopSync is BenchmarkClusterStop in synchronous mode (bootstrapped with
// RAMD_SYNCHRONOUS_MODE=on): the synchronous standby must not wait to be removed by a
// leader that is stopping too.
func BenchmarkClusterStopSync(b *testing.B) {
	clusterStop(b, "cluster_stop_sync", map[string]string{"RAMD_SYNCHRONOUS_MODE": "on"})
}

// clusterStop measures rounds whole-cluster stops, each of a freshly bootstrapped cluster
// with env, so that every round stops the same steady cluster.
func clusterStop(b *testing.B, name string, env map[string]string) {
	b.Helper()
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	var stop samples
	for range rounds {
		cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{Env: env})
		cl.StartAll()
		cl.WaitPrimary(120 * time.Second)
		cl.WaitReplicas(120 * time.Second)
		t0 := time.Now()
		for _, n := range cl.Nodes {
			n.Signal(syscall.SIGTERM)
		}
		for _, n := range cl.Nodes {
			if err := n.Stop(); err != nil {
				b.Fatal(err)
			}
		}
		stop.add(time.Since(t0))
	}
	stop.report(b, name)
}
