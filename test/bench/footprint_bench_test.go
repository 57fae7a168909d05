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
		// RAMD_BENCH_GOGC, RAMD_BENCH_GOMEMLIMIT and RAMD_BENCH_GOMAXPROCS try the Go runtime's
		// knobs on the nodes.
		cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{Env: map[string]string{
			"GOGC": os.Getenv("RAMD_BENCH_GOGC"), "GOMEMLIMIT": os.Getenv("RAMD_BENCH_GOMEMLIMIT"),
			"GOMAXPROCS": os.Getenv("RAMD_BENCH_GOMAXPROCS")}})
		cl.StartAll()
		cl.WaitPrimary(120 * time.Second)
		cl.WaitReplicas(120 * time.Second)
		// Let start-up work (catalog, first cycles) finish, and ramd release the pages it
		// touched only while starting (30 s after its start).
		time.Sleep(35 * time.Second)
		type node struct {
			ramd, guard         int
			ramdCPU0, guardCPU0 uint64
			ramdMem             []proc.Memory
			guardMem            []proc.Memory
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
			nd.ramdCPU0, nd.guardCPU0 = cpu(nd.ramd), cpu(nd.guard)
			nodes = append(nodes, nd)
		}
		start := time.Now()
		for time.Since(start) < idleWindow {
			for _, nd := range nodes {
				r, _ := proc.ReadMemory(nd.ramd)
				g, _ := proc.ReadMemory(nd.guard)
				nd.ramdMem, nd.guardMem = append(nd.ramdMem, r), append(nd.guardMem, g)
			}
			time.Sleep(time.Second)
		}
		took := time.Since(start)
		var ramdRSS, guardRSS, anon, cpuShare float64
		mib := func(b int64) float64 { return float64(b) / (1 << 20) }
		for i, nd := range nodes {
			r, g := peak(nd.ramdMem), peak(nd.guardMem)
			pct := func(ticks uint64) float64 { return float64(ticks) / clockTicks / took.Seconds() * 100 }
			ramdCPU, guardCPU := cpu(nd.ramd)-nd.ramdCPU0, cpu(nd.guard)-nd.guardCPU0
			share := pct(ramdCPU + guardCPU)
			b.Logf("node n%d: ramd %.1f MiB (anonymous %.1f, file-backed %.1f), guard %.1f MiB (anonymous %.1f) (peak RSS), CPU %.2f %% of a core (ramd %.2f, guard %.2f) over %s",
				i+1, mib(r.RSS), mib(r.Anon), mib(r.File), mib(g.RSS), mib(g.Anon), share, pct(ramdCPU), pct(guardCPU), took.Round(time.Second))
			ramdRSS = max(ramdRSS, mib(r.RSS))
			guardRSS = max(guardRSS, mib(g.RSS))
			anon = max(anon, mib(r.Anon+g.Anon))
			cpuShare = max(cpuShare, share)
		}
		b.ReportMetric(ramdRSS, "ramd_rss_MiB")
		b.ReportMetric(guardRSS, "guard_rss_MiB")
		b.ReportMetric(ramdRSS+guardRSS, "node_rss_MiB")
		b.ReportMetric(anon, "node_anon_MiB")
		b.ReportMetric(cpuShare, "node_cpu_pct")
	}
}

// peak is the sample with the largest RSS, with its parts.
func peak(samples []proc.Memory) proc.Memory {
	var p proc.Memory
	for _, m := range samples {
		if m.RSS > p.RSS {
			p = m
		}
	}
	return p
}
