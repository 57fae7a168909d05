package bench

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// steadyWindow is how long the steady cluster's Consul requests are counted.
var steadyWindow = time.Duration(envInt("RAMD_BENCH_STEADY_SECONDS", 60)) * time.Second

var (
	logTime   = regexp.MustCompile(`^time=(\S+)`)
	consulReq = regexp.MustCompile(`msg="consul request" op=(\S+)`)
)

// writeOp reports whether a logged Consul request op changes state in Consul (a write to
// the KV store, the catalog through the agent, a session, a query or a config entry).
func writeOp(op string) bool {
	switch {
	case strings.HasPrefix(op, "kv."):
		return op != "kv.get" && op != "kv.list" && op != "kv.watch" && !strings.HasSuffix(op, ".retry")
	case strings.HasPrefix(op, "session."):
		return op != "session.info"
	case op == "agent.service_register", op == "agent.service_deregister", op == "agent.check_update":
		return true
	case strings.HasPrefix(op, "query."), strings.HasPrefix(op, "config_entry."):
		return op != "query.list" && op != "config_entry.get"
	}
	return false
}

// promotedAt returns the time of the last "promoted" line of n's log after since.
func promotedAt(n *harness.Node, since time.Time) (time.Time, bool) {
	f, err := os.Open(n.LogPath)
	if err != nil {
		return time.Time{}, false
	}
	defer f.Close()
	var at time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.Contains(line, "msg=promoted") {
			continue
		}
		if m := logTime.FindStringSubmatch(line); m != nil {
			if t, err := time.Parse(time.RFC3339Nano, m[1]); err == nil && t.After(since) {
				at = t
			}
		}
	}
	return at, !at.IsZero()
}

// countWrites counts the Consul write requests, by op, that n logged (at debug level)
// between byte offset from and the end of its log.
func countWrites(b *testing.B, n *harness.Node, from int64) map[string]int {
	b.Helper()
	data, err := os.ReadFile(n.LogPath)
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(string(data[min(from, int64(len(data))):]), "\n") {
		if m := consulReq.FindStringSubmatch(line); m != nil && writeOp(m[1]) {
			out[m[1]]++
		}
	}
	return out
}

// dnsPrimaryPorts answers the ports primary.<scope>.service.consul names (nil on error).
func dnsPrimaryPorts(scope string) []int {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn("primary."+scope+".service.consul"), dns.TypeSRV)
	r, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, shared.DNSAddr)
	if err != nil {
		return nil
	}
	var out []int
	for _, rr := range r.Answer {
		if s, ok := rr.(*dns.SRV); ok {
			out = append(out, int(s.Port))
		}
	}
	return out
}

func logEnd(n *harness.Node) int64 {
	fi, err := os.Stat(n.LogPath)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// BenchmarkRoutingDNS: SIGKILL of the primary → time from the new primary's promotion (its
// "promoted" log line) until Consul DNS names it alone as primary.<scope>; then, on the
// settled cluster without clients, the Consul write requests per node per minute.
func BenchmarkRoutingDNS(b *testing.B) {
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{Env: map[string]string{"RAMD_LOG_LEVEL": "debug"}})
	cl.StartAll()
	cl.WaitPrimary(120 * time.Second)
	cl.WaitReplicas(120 * time.Second)

	var toDNS samples
	doubles := 0 // answers naming two primaries: must stay 0
	for range rounds {
		p := cl.WaitPrimary(60 * time.Second)
		time.Sleep(time.Duration(time.Now().UnixNano()%1000) * time.Millisecond)
		t0 := time.Now()
		p.Kill()
		var np *harness.Node
		var dnsAt time.Time
		testenv.Eventually(b, 60*time.Second, 5*time.Millisecond, func() error {
			ports := dnsPrimaryPorts(cl.Scope)
			if len(ports) > 1 {
				doubles++
			}
			for _, n := range cl.Nodes {
				if n != p && len(ports) == 1 && ports[0] == n.PGPort {
					np, dnsAt = n, time.Now()
					return nil
				}
			}
			return fmt.Errorf("dns does not name a new primary alone yet")
		})
		var promoted time.Time
		testenv.Eventually(b, 10*time.Second, 50*time.Millisecond, func() error {
			var ok bool
			if promoted, ok = promotedAt(np, t0); !ok {
				return fmt.Errorf("%s logged no promotion since the kill", np.Name)
			}
			return nil
		})
		toDNS.add(dnsAt.Sub(promoted))
		p.Start()
		cl.WaitPrimary(60 * time.Second)
		cl.WaitReplicas(120 * time.Second)
	}
	toDNS.report(b, "promoted_to_dns")
	if doubles > 0 {
		b.Errorf("primary.<scope> named two nodes in %d answers", doubles)
	}

	// Steady state: no clients, every node running. A checkpoint now (the promotions' own
	// are spread over minutes) and the standby snapshot the background writer logs within
	// 15 s after it are the last WAL the idle cluster writes; then count what each node
	// writes.
	if err := cl.WaitPrimary(10*time.Second).Exec(context.Background(), "CHECKPOINT"); err != nil {
		b.Fatal(err)
	}
	time.Sleep(20 * time.Second)
	from := map[*harness.Node]int64{}
	for _, n := range cl.Nodes {
		from[n] = logEnd(n)
	}
	p := cl.WaitPrimary(10 * time.Second)
	time.Sleep(steadyWindow)
	perMin := func(v int) float64 { return float64(v) / steadyWindow.Minutes() }
	var leader, replica float64
	for _, n := range cl.Nodes {
		w := countWrites(b, n, from[n])
		total, ops := 0, make([]string, 0, len(w))
		for op, v := range w {
			total += v
			ops = append(ops, fmt.Sprintf("%s=%.0f", op, perMin(v)))
		}
		sort.Strings(ops)
		role := "replica"
		if n == p {
			role, leader = "leader", perMin(total)
		} else {
			replica = max(replica, perMin(total))
		}
		b.Logf("%s (%s): %.0f Consul writes per minute: %s", n.Name, role, perMin(total), strings.Join(ops, " "))
	}
	b.ReportMetric(leader, "leader_writes_per_min")
	b.ReportMetric(replica, "replica_writes_per_min")
}
