package bench

import (
	"os"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/proc"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// idleWindow is how long BenchmarkIdleFootprint measures an idle cluster.
var idleWindow = time.Duration(envInt("RAMD_BENCH_IDLE_SECONDS", 60)) * time.Second

// clockTicks is the kernel's USER_HZ, the unit of /proc/<pid>/stat's CPU times (100 on Linux).
const clockTicks = 100

// BenchmarkIdleFootprint measures each node of an idle three-node cluster from outside: the
// resident memory of ramd and of its fence guard (sampled every second) and the CPU both use
// over the window, as a share of one core.
func BenchmarkIdleFootprint(b *testing.B) {
	for range b.N {
		c := testenv.SharedConsul(b, shared)
		testenv.PGBinDir(b)
		// RAMD_BENCH_GOGC and RAMD_BENCH_GOMEMLIMIT try the Go runtime's knobs on the nodes.
		cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{Env: map[string]string{
			"GOGC": os.Getenv("RAMD_BENCH_GOGC"), "GOMEMLIMIT": os.Getenv("RAMD_BENCH_GOMEMLIMIT")}})
		cl.StartAll()
		cl.WaitPrimary(120 * time.Second)
		cl.WaitReplicas(120 * time.Second)
		time.Sleep(10 * time.Second) // let start-up work (catalog, first cycles) finish
		type node struct {
			ramd, guard int
			cpu0        uint64
			rss         []int64
		}
		cpu := func(pid int) uint64 {
			st, err := proc.ReadStat(pid)
			if err != nil {
				return 0
			}
			return st.UTime + st.STime
		}
		var nodes []*node
		for _, n := range cl.Nodes {
			nd := &node{ramd: n.PID()}
			for _, child := range proc.Children(nd.ramd) {
				if st, err := proc.ReadStat(child); err == nil && (st.Comm == "ramd-fence" || st.Comm == "ramd") {
					nd.guard = child
				}
			}
			nd.cpu0 = cpu(nd.ramd) + cpu(nd.guard)
			nodes = append(nodes, nd)
		}
		start := time.Now()
		for time.Since(start) < idleWindow {
			for _, nd := range nodes {
				r, _ := proc.RSS(nd.ramd)
				g, _ := proc.RSS(nd.guard)
				nd.rss = append(nd.rss, r, g)
			}
			time.Sleep(time.Second)
		}
		took := time.Since(start)
		var ramdRSS, guardRSS, cpuShare float64
		for i, nd := range nodes {
			var r, g int64
			for k := 0; k+1 < len(nd.rss); k += 2 {
				r, g = max(r, nd.rss[k]), max(g, nd.rss[k+1])
			}
			share := float64(cpu(nd.ramd)+cpu(nd.guard)-nd.cpu0) / clockTicks / took.Seconds() * 100
			b.Logf("node n%d: ramd %.1f MiB, guard %.1f MiB (peak RSS), CPU %.2f %% of a core over %s", i+1,
				float64(r)/(1<<20), float64(g)/(1<<20), share, took.Round(time.Second))
			ramdRSS = max(ramdRSS, float64(r)/(1<<20))
			guardRSS = max(guardRSS, float64(g)/(1<<20))
			cpuShare = max(cpuShare, share)
		}
		b.ReportMetric(ramdRSS, "ramd_rss_MiB")
		b.ReportMetric(guardRSS, "guard_rss_MiB")
		b.ReportMetric(ramdRSS+guardRSS, "node_rss_MiB")
		b.ReportMetric(cpuShare, "node_cpu_pct")
	}
}
