package bench

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// The health-check load: loadConns closed-loop workers on keep-alive connections, each
// sending GET back to back; healthWarmup of requests first (not counted), then
// healthWindow measured.
const healthWarmup = time.Second

var healthWindow = time.Duration(envInt("RAMD_BENCH_HEALTH_SECONDS", 10)) * time.Second

// maxRequestsPerConn bounds each worker's loop whatever the clock does: 100 times what a
// connection manages in a window at 20,000 requests/s over loadConns connections.
const maxRequestsPerConn = 1 << 22

// healthResult is one measured window against one URL: every answered request's latency
// (whatever its status), the answers by status code, and transport errors (no answer).
type healthResult struct {
	loadResult
	status map[int]int
}

// unexpected is how many answers had a status other than want.
func (r healthResult) unexpected(want int) int {
	n := 0
	for code, v := range r.status {
		if code != want {
			n += v
		}
	}
	return n
}

// hammer runs the health-check load against url, served by process pid (whose CPU time it
// measures over the window).
func hammer(url string, pid int) healthResult {
	tr := &http.Transport{MaxConnsPerHost: loadConns, MaxIdleConnsPerHost: loadConns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	type worker struct {
		lat    []time.Duration
		status map[int]int
		errors int
	}
	workers := make([]worker, loadConns)
	measureFrom := time.Now().Add(healthWarmup)
	deadline := measureFrom.Add(healthWindow)
	var cpu0 time.Duration
	cpuOnce := sync.OnceFunc(func() { cpu0 = processCPU(pid) })
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		w.lat, w.status = make([]time.Duration, 0, 1<<15), map[int]int{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range maxRequestsPerConn {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				measured := !t0.Before(measureFrom)
				if measured {
					cpuOnce()
				}
				resp, err := client.Get(url)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					_ = resp.Body.Close()
				}
				if !measured {
					continue
				}
				if err != nil {
					w.errors++
					continue
				}
				w.lat = append(w.lat, time.Since(t0))
				w.status[resp.StatusCode]++
			}
		}()
	}
	wg.Wait()
	r := healthResult{status: map[int]int{}}
	r.took = time.Since(measureFrom)
	r.cpu = processCPU(pid) - cpu0
	for _, w := range workers {
		r.latency = append(r.latency, w.lat...)
		r.errors += w.errors
		for code, v := range w.status {
			r.status[code] += v
		}
	}
	r.requests = len(r.latency)
	slices.Sort(r.latency)
	return r
}

// measureHealth loads url and reports requests/s, p50 and p99 in milliseconds, transport
// errors and answers other than 200 as name_*. An answer other than 200 fails the
// benchmark: every URL measured here is one the node must accept.
func measureHealth(b *testing.B, name, url string, pid int) {
	b.Helper()
	r := hammer(url, pid)
	ms := func(d time.Duration) float64 { return d.Seconds() * 1e3 }
	bad := r.unexpected(http.StatusOK)
	b.ReportMetric(r.rate(), name+"_req/s")
	b.ReportMetric(ms(r.quantile(.5)), name+"_p50_ms")
	b.ReportMetric(ms(r.quantile(.99)), name+"_p99_ms")
	b.ReportMetric(float64(r.errors), name+"_errors")
	b.ReportMetric(float64(bad), name+"_non200")
	b.Logf("%s: %d requests in %v over %d connections: %.0f req/s, p50 %.2f ms, p99 %.2f ms, max %.2f ms, "+
		"%d transport errors, status %v, server CPU %.1f µs/request",
		name, r.requests, r.took.Round(time.Millisecond), loadConns, r.rate(), ms(r.quantile(.5)), ms(r.quantile(.99)),
		ms(r.quantile(1)), r.errors, r.status, r.cpuPerRequest())
	if r.requests == 0 {
		b.Errorf("%s: no request answered", name)
	}
	if bad > 0 {
		b.Errorf("%s: %d answers other than 200 (%v)", name, bad, r.status)
	}
}

// BenchmarkHealthLoad: GET /primary on the leader and GET /replica on a streaming replica
// of a live three-node cluster, each under the health-check load (32 keep-alive
// connections, like wrk -c32), one after the other. The load generator runs in this
// process, on the same CPUs as the nodes.
func BenchmarkHealthLoad(b *testing.B) {
	c := testenv.SharedConsul(b, shared)
	testenv.PGBinDir(b)
	cl := harness.New(b, ramdBin, c.HTTPAddr, 3, harness.Options{})
	cl.StartAll()
	p := cl.WaitPrimary(120 * time.Second)
	cl.WaitReplicas(120 * time.Second)
	r := cl.Nodes[0]
	if r == p {
		r = cl.Nodes[1]
	}
	measureHealth(b, "primary", p.APIURL()+"/primary", p.PID())
	measureHealth(b, "replica", r.APIURL()+"/replica", r.PID())
}

// BenchmarkPatroniHealthLoad: the same load on Patroni's REST API (Debian's patroni
// package) in the same conditions: two Patroni nodes (a leader and a streaming replica)
// on the same Consul agent and the same PostgreSQL binaries.
func BenchmarkPatroniHealthLoad(b *testing.B) {
	bin := testenv.Binary(b, "patroni", "patroni python3-consul")
	c := testenv.SharedConsul(b, shared)
	pgBin := testenv.PGBinDir(b)
	scope := testenv.KeyPrefix(b)
	leader := startPatroni(b, bin, c.HTTPAddr, pgBin, scope, "p1")
	leader.waitHealth(b, "/primary", 180*time.Second)
	replica := startPatroni(b, bin, c.HTTPAddr, pgBin, scope, "p2")
	replica.waitHealth(b, "/replica", 180*time.Second)
	measureHealth(b, "primary", leader.url+"/primary", leader.cmd.Process.Pid)
	measureHealth(b, "replica", replica.url+"/replica", replica.cmd.Process.Pid)
}

// patroniNode is one running Patroni process and the PostgreSQL it manages.
type patroniNode struct {
	name, url, dir, logPath string
	cmd                     *exec.Cmd
	done                    chan struct{}
}

// startPatroni writes a configuration for node name of scope and starts Patroni on it, as
// the unprivileged postgres user when this process runs as root (PostgreSQL refuses root).
// Everything the node writes lives in one directory it owns; the node and its PostgreSQL
// are stopped in b.Cleanup.
func startPatroni(b *testing.B, bin, consulAddr, pgBin, scope, name string) *patroniNode {
	b.Helper()
	apiPort, pgPort := testenv.FreePort(b), testenv.FreePort(b)
	n := &patroniNode{name: name, url: "http://127.0.0.1:" + strconv.Itoa(apiPort), dir: testenv.DataDir(b, name)}
	n.logPath = filepath.Join(filepath.Dir(n.dir), name+".log")
	if err := os.Mkdir(n.dir, 0o700); err != nil {
		b.Fatal(err)
	}
	cfg := filepath.Join(n.dir, "patroni.yml")
	yml := fmt.Sprintf(`scope: %[1]s
namespace: /service/
name: %[2]s
log:
  level: INFO
consul:
  host: %[3]s
restapi:
  listen: 127.0.0.1:%[4]d
  connect_address: 127.0.0.1:%[4]d
bootstrap:
  dcs:
    ttl: 30
    loop_wait: 10
    retry_timeout: 10
  initdb:
  - encoding: UTF8
postgresql:
  listen: 127.0.0.1:%[5]d
  connect_address: 127.0.0.1:%[5]d
  data_dir: %[6]s/data
  bin_dir: %[7]s
  pgpass: %[6]s/pgpass
  use_unix_socket: true
  authentication:
    superuser: {username: postgres, password: bench}
    replication: {username: replicator, password: bench}
  parameters:
    unix_socket_directories: %[6]s
  pg_hba:
  - local all all trust
  - host all all 127.0.0.1/32 trust
  - host replication all 127.0.0.1/32 trust
`, scope, name, consulAddr, apiPort, pgPort, n.dir, pgBin)
	if err := os.WriteFile(cfg, []byte(yml), 0o600); err != nil {
		b.Fatal(err)
	}
	attr := &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			testenv.Missing(b, "no postgres OS user to run Patroni as (running as root): %v", err)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 != nil || err2 != nil || uid == 0 {
			b.Fatalf("postgres OS user has uid %s gid %s", u.Uid, u.Gid)
		}
		for _, p := range []string{n.dir, cfg} {
			if err := os.Chown(p, uid, gid); err != nil {
				b.Fatal(err)
			}
		}
		attr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		b.Fatal(err)
	}
	n.cmd = exec.Command(bin, cfg)
	n.cmd.Dir = n.dir
	n.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + n.dir, "LANG=C.UTF-8", "LC_ALL=C.UTF-8"}
	n.cmd.Stdout, n.cmd.Stderr = f, f
	n.cmd.SysProcAttr = attr
	if err := n.cmd.Start(); err != nil {
		_ = f.Close()
		b.Fatalf("start patroni %s: %v", name, err)
	}
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); _ = f.Close(); close(n.done) }()
	b.Cleanup(func() { n.stop(b) })
	return n
}

// waitHealth waits (bounded) until GET path on the node's REST API answers 200.
func (n *patroniNode) waitHealth(b *testing.B, path string, timeout time.Duration) {
	b.Helper()
	hc := &http.Client{Timeout: 2 * time.Second}
	if err := testenv.Poll(timeout, 500*time.Millisecond, func() error {
		select {
		case <-n.done:
			return fmt.Errorf("patroni %s exited: %v", n.name, n.cmd.ProcessState)
		default:
		}
		resp, err := hc.Get(n.url + path)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("patroni %s: GET %s = %d", n.name, path, resp.StatusCode)
		}
		return nil
	}); err != nil {
		log, _ := os.ReadFile(n.logPath)
		b.Fatalf("%v\n---- patroni %s log (tail) ----\n%s", err, n.name, lastLines(string(log), 40))
	}
}

// stop sends Patroni SIGTERM (it stops its PostgreSQL and releases the leader key), then
// SIGKILL after a bound, and kills a PostgreSQL it left behind.
func (n *patroniNode) stop(b *testing.B) {
	b.Helper()
	pid := n.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(60 * time.Second):
		b.Logf("patroni %s did not exit within 60s of SIGTERM; killing it", n.name)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
		}
	}
	pidFile, err := os.ReadFile(filepath.Join(n.dir, "data", "postmaster.pid"))
	if err != nil {
		return
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil || pm <= 0 {
		return
	}
	// Only the postmaster of this node's data directory (the pid may have been reused).
	if cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pm) + "/cmdline"); err == nil &&
		strings.Contains(string(cmdline), n.dir) {
		b.Logf("patroni %s left PostgreSQL (pid %d) running; killing it", n.name, pm)
		fence.KillPostmaster(pm)
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], "\n")
}
