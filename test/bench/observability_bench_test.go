package bench

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// loadConns is how many keep-alive connections the load generator holds, as wrk -c32.
const loadConns = 32

// Load phases: loadRounds rounds, each running every mode for loadPhase in turn. Short
// phases, many rounds and per-round ratios keep the comparison fair on a machine whose load
// drifts: each round compares modes measured seconds apart.
var (
	loadRounds = envInt("RAMD_BENCH_LOAD_ROUNDS", 15)
	loadPhase  = time.Duration(envInt("RAMD_BENCH_LOAD_MS", 2000)) * time.Millisecond
)

// loadResult is one load phase against one URL.
type loadResult struct {
	requests int
	errors   int
	took     time.Duration
	latency  []time.Duration // sorted
	cpu      time.Duration   // CPU time the served process used during the phase
}

// cpuPerRequest is the served process's CPU time per request, in microseconds: unlike
// throughput, it hardly depends on what else the machine runs.
func (r loadResult) cpuPerRequest() float64 {
	return float64(r.cpu.Microseconds()) / float64(max(r.requests, 1))
}

// clockTick is the unit of utime and stime in /proc/<pid>/stat (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// processCPU is the user and system CPU time process pid used so far, all threads.
func processCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // fields from 3 (state) on
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64) // field 14
	stime, _ := strconv.ParseInt(fields[12], 10, 64) // field 15
	return time.Duration(utime+stime) * clockTick
}

func (r loadResult) rate() float64 { return float64(r.requests) / r.took.Seconds() }

func (r loadResult) quantile(q float64) time.Duration {
	if len(r.latency) == 0 {
		return 0
	}
	return r.latency[min(int(q*float64(len(r.latency))), len(r.latency)-1)]
}

// load sends GET url over loadConns connections for d and measures every request and the
// CPU time of process pid (the node serving url). With traceparent set, every request
// carries it (a caller that traces its requests).
func load(url, traceparent string, pid int, d time.Duration) loadResult {
	tr := &http.Transport{MaxConnsPerHost: loadConns, MaxIdleConnsPerHost: loadConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	var (
		mu  sync.Mutex
		all loadResult
		wg  sync.WaitGroup
	)
	cpu0 := processCPU(pid)
	start := time.Now()
	deadline := start.Add(d)
	for range loadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1<<16)
			errs := 0
			req, err := http.NewRequest(http.MethodGet, url, nil)
			if err != nil {
				panic(err) // programmer error: a fixed loopback URL
			}
			if traceparent != "" {
				req.Header.Set("traceparent", traceparent)
			}
			for time.Now().Before(deadline) {
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusOK {
					errs++
					continue
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			all.latency = append(all.latency, lat...)
			all.errors += errs
			mu.Unlock()
		}()
	}
	wg.Wait()
	all.took = time.Since(start)
	all.cpu = processCPU(pid) - cpu0
	all.requests = len(all.latency)
	slices.Sort(all.latency)
	return all
}

// loopTotals reads the sum and count of a node's ramd_loop_duration_seconds.
func loopTotals(n *harness.Node) (float64, uint64) {
	resp, err := http.Get(n.APIURL() + "/metrics")
	if err != nil {
		return 0, 0
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil || fams["ramd_loop_duration_seconds"] == nil {
		return 0, 0
	}
	h := fams["ramd_loop_duration_seconds"].GetMetric()[0].GetHistogram()
	return h.GetSampleSum(), h.GetSampleCount()
}

// BenchmarkTracingOverheadAPI measures GET /primary under load (32 connections, like
// wrk -c32) on two live single-node clusters in the same run: "off" has no OTEL_* variable
// (no exporter, no otelgin); "on" exports over OTLP/HTTP to a local receiver that discards
// what it gets. Health checks are not traced unless the caller sends a traceparent, so
// "on" measures what a load balancer's checks cost with tracing configured, and
// "on_traced" sends a sampled traceparent with every request: one exported span per
// request, the cost of tracing itself. "control" is a second node without OTEL_*: its
// difference from "off" is the noise floor of the run. Phases rotate (RAMD_BENCH_LOAD_ROUNDS rounds of
// RAMD_BENCH_LOAD_MS each) so that drift in the machine's load hits every mode. The main
// figure is ramd's CPU time per request (from /proc), which the load of other processes
// hardly moves; throughput and latency are reported beside it.
func BenchmarkTracingOverheadAPI(b *testing.B) {
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	var exported, batches atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		exported.Add(n)
		batches.Add(1)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)

	off := harness.New(b, ramdBin, c.HTTPAddr, 1, harness.Options{})
	control := harness.New(b, ramdBin, c.HTTPAddr, 1, harness.Options{})
	on := harness.New(b, ramdBin, c.HTTPAddr, 1, harness.Options{Env: map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
	}})
	off.StartAll()
	control.StartAll()
	on.StartAll()
	offNode, onNode := off.WaitPrimary(120*time.Second), on.WaitPrimary(120*time.Second)
	controlNode := control.WaitPrimary(120 * time.Second)

	// The HA loop of both idle primaries over the same window, before any load.
	sumOff0, nOff0 := loopTotals(offNode)
	sumOn0, nOn0 := loopTotals(onNode)
	time.Sleep(15 * time.Second) // a measuring window, not a wait for state
	sumOff1, nOff1 := loopTotals(offNode)
	sumOn1, nOn1 := loopTotals(onNode)
	loopOff := time.Duration((sumOff1 - sumOff0) / float64(max(nOff1-nOff0, 1)) * float64(time.Second))
	loopOn := time.Duration((sumOn1 - sumOn0) / float64(max(nOn1-nOn0, 1)) * float64(time.Second))
	b.ReportMetric(float64(loopOff.Microseconds()), "loop_us_off")
	b.ReportMetric(float64(loopOn.Microseconds()), "loop_us_on")
	b.Logf("idle HA loop, mean cycle over 15 s: off %v (%d cycles), on %v (%d cycles)",
		loopOff, nOff1-nOff0, loopOn, nOn1-nOn0)

	const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	modes := []struct {
		name        string
		node        *harness.Node
		traceparent string
	}{{"off", offNode, ""}, {"control", controlNode, ""}, {"on", onNode, ""}, {"on_traced", onNode, traceparent}}
	for _, m := range modes { // warm up connections and caches
		load(m.node.APIURL()+"/primary", m.traceparent, m.node.PID(), loadPhase)
	}
	results := map[string][]loadResult{}
	for i := range loadRounds {
		for k := range modes {
			m := modes[(i+k)%len(modes)]
			r := load(m.node.APIURL()+"/primary", m.traceparent, m.node.PID(), loadPhase)
			if r.errors > 0 {
				b.Logf("%s round %d: %d errors", m.name, i, r.errors)
			}
			results[m.name] = append(results[m.name], r)
		}
	}

	median := func(v []float64) float64 {
		slices.Sort(v)
		if len(v)%2 == 0 {
			return (v[len(v)/2-1] + v[len(v)/2]) / 2
		}
		return v[len(v)/2]
	}
	over := func(name string, f func(loadResult) float64) []float64 {
		var v []float64
		for _, r := range results[name] {
			v = append(v, f(r))
		}
		return v
	}
	rate := func(r loadResult) float64 { return r.rate() }
	cpu := func(r loadResult) float64 { return r.cpuPerRequest() }
	p50 := func(r loadResult) float64 { return r.quantile(.5).Seconds() * 1e6 }
	p99 := func(r loadResult) float64 { return r.quantile(.99).Seconds() * 1e6 }
	for _, m := range modes {
		b.ReportMetric(median(over(m.name, cpu)), "cpu_us/req_"+m.name)
		b.ReportMetric(median(over(m.name, rate)), "req/s_"+m.name)
		b.ReportMetric(median(over(m.name, p50)), "p50_us_"+m.name)
		b.ReportMetric(median(over(m.name, p99)), "p99_us_"+m.name)
		b.Logf("%-9s: median ramd CPU %.1f µs/request, %.0f req/s, p50 %.0f µs, p99 %.0f µs (req/s per round: %.0f)", m.name,
			median(over(m.name, cpu)), median(over(m.name, rate)), median(over(m.name, p50)), median(over(m.name, p99)), over(m.name, rate))
	}
	for _, name := range []string{"control", "on", "on_traced"} {
		var cpuRatio, rateRatio, lat []float64
		for i := range results[name] {
			on, off := results[name][i], results["off"][i]
			cpuRatio = append(cpuRatio, 100*(cpu(on)/cpu(off)-1))
			rateRatio = append(rateRatio, 100*(rate(on)/rate(off)-1))
			lat = append(lat, 100*(p50(on)/p50(off)-1))
		}
		b.ReportMetric(median(cpuRatio), "cpu_overhead_%_"+name)
		b.ReportMetric(median(rateRatio), "throughput_change_%_"+name)
		b.Logf("%s vs off, median of %d paired rounds: ramd CPU per request %+.1f %%, throughput %+.1f %%, p50 latency %+.1f %%",
			name, len(cpuRatio), median(cpuRatio), median(rateRatio), median(lat))
	}
	b.Logf("%d OTLP requests, %d bytes exported", batches.Load(), exported.Load())
}
