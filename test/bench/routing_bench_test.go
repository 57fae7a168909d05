package bench

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

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
	for range rounds {
		p := cl.WaitPrimary(60 * time.Second)
		time.Sleep(time.Duration(time.Now().UnixNano()%1000) * time.Millisecond)
		t0 := time.Now()
		p.Kill()
		var np *harness.Node
		var dnsAt time.Time
		testenv.Eventually(b, 60*time.Second, 5*time.Millisecond, func() error {
			for _, n := range cl.Nodes {
				if n != p && dnsPrimaryPort(cl.Scope) == n.PGPort {
					np, dnsAt = n, time.Now()
					return nil
				}
			}
			return fmt.Errorf("dns does not name a new primary yet")
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

	// Steady state: no clients, every node running; count what each node writes.
	time.Sleep(5 * time.Second)
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
