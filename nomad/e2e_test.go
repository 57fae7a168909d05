//go:build e2e

package nomad

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The end-to-end test runs ramd.nomad.hcl (raw_exec, three members) under a real Nomad
// v1.6.2 dev agent beside a real Consul dev agent, everything on 127.0.0.1:
//
//	make test-nomad   (or: RAMD_NOMAD_BIN=... RAMD_CONSUL_BIN=... go test -tags e2e -run E2E .)
//
// Ports are taken above the kernel's ephemeral range, where the project's other tests (which
// stay below it) and outgoing connections never go; Nomad's dynamic ports come from there too.

const (
	members = 3
	jobID   = "ramd"
	scope   = "pg-e2e"
	// agentReady bounds the start of each agent; both need a few seconds.
	agentReady = 60 * time.Second
	// clusterReady bounds the first deployment: three initdb/clone and the readiness gate.
	clusterReady = 4 * time.Minute
	// stepTimeout bounds a failover, a rejoin and each member of the rolling update.
	stepTimeout = 3 * time.Minute
	// stopGrace is how long a process may take to exit after SIGTERM before SIGKILL.
	stopGrace = 60 * time.Second
	apiUser   = "admin"
	apiPass   = "e2e-api-secret"
	pgPass    = "e2e-superuser-secret"
)

var httpc = &http.Client{Timeout: 3 * time.Second}

// e2e holds the agents and paths of one run.
type e2e struct {
	t         *testing.T
	root      string // temp dir: configs, logs, host volumes
	nomad     string // binary
	nomadAddr string // http://127.0.0.1:port
	consulAPI string // 127.0.0.1:port
	ramd      string
	psql      string
	vars      []string // -var arguments for the ramd job
}

func TestE2ENomadJob(t *testing.T) {
	e := setup(t)
	start := time.Now()

	// nomad job validate, then the secrets, then nomad job run.
	e.nomadCmd(2*time.Minute, append(append([]string{"job", "validate"}, e.vars...), "ramd.nomad.hcl")...)
	e.nomadCmd(time.Minute, "var", "put", "nomad/jobs/"+jobID,
		"superuser_password="+pgPass, "replication_password=e2e-replication-secret",
		"api_username="+apiUser, "api_password="+apiPass)
	e.nomadCmd(2*time.Minute, append(append([]string{"job", "run", "-detach"}, e.vars...), "ramd.nomad.hcl")...)
	view := e.waitCluster(clusterReady, "")
	e.waitDeployment(clusterReady)
	t.Logf("cluster formed under Nomad in %s: primary %s", time.Since(start).Round(time.Second), view.primary().Name)
	old := view.primary()
	if err := e.psqlExec(old, "CREATE TABLE e2e (v text); INSERT INTO e2e VALUES ('before failover')"); err != nil {
		t.Fatal(err)
	}

	// nomad alloc stop of the primary's allocation: a replica takes over, Nomad starts the
	// member again on its volume, and it rejoins as a replica.
	stopAt := time.Now()
	e.nomadCmd(time.Minute, "alloc", "stop", "-detach", old.AllocID)
	var next memberView
	e.poll(stepTimeout, "a new primary", func() error {
		v, err := e.view()
		if err != nil {
			return err
		}
		if next = v.primary(); next.Name == "" || next.Name == old.Name {
			return fmt.Errorf("primary is %q", next.Name)
		}
		return nil
	})
	t.Logf("nomad alloc stop %s (primary %s): %s is the primary %s later", old.AllocID[:8], old.Name, next.Name, time.Since(stopAt).Round(time.Millisecond))
	back := e.waitCluster(stepTimeout, old.Name)
	rejoined := back.byName(old.Name)
	if rejoined.AllocID == old.AllocID || rejoined.Role != "replica" {
		t.Fatalf("%s did not come back as a replica in a new allocation: %+v", old.Name, rejoined)
	}
	e.waitDeploymentIdle(stepTimeout)
	t.Logf("%s rejoined as a replica in allocation %s, %s after the stop", old.Name, rejoined.AllocID[:8], time.Since(stopAt).Round(100*time.Millisecond))
	if err := e.waitRow(rejoined, "before failover"); err != nil {
		t.Fatal(err)
	}

	// A rolling update: Nomad replaces members in index order, so the primary goes to the
	// highest index first (docs/DEPLOYMENT.md); then a changed job replaces one member at a
	// time, each only after the one before is ready, the primary last.
	last := fmt.Sprintf("%s-%d", scope, members-1)
	e.switchover(back, last)
	before := e.waitCluster(stepTimeout, "")
	if before.primary().Name != last {
		t.Fatalf("primary is %s after the switchover, want %s", before.primary().Name, last)
	}
	rollAt := time.Now()
	changed := append(append([]string{"job", "run", "-detach"}, e.vars...), "-var", "handover_wait=6s", "ramd.nomad.hcl")
	e.nomadCmd(2*time.Minute, changed...)
	order := e.watchRolling(before, members*stepTimeout)
	t.Logf("rolling update replaced %v in %s", order, time.Since(rollAt).Round(time.Second))
	after := e.waitCluster(stepTimeout, "")
	if err := e.waitRow(after.primary(), "before failover"); err != nil {
		t.Fatal(err)
	}
	t.Logf("after the rolling update: primary %s; whole run %s", after.primary().Name, time.Since(start).Round(time.Second))
}

// setup starts Consul and Nomad, builds ramd and prepares the host volumes.
func setup(t *testing.T) *e2e {
	nomad := nomadBinary(t)
	if nomad == "" {
		t.Fatal("no Nomad v" + NomadVersion + " binary: run make nomad (scripts/build-nomad.sh) or set RAMD_NOMAD_BIN")
	}
	consul := consulBinary(t)
	if os.Geteuid() != 0 {
		t.Skip("the Nomad client and ramd's PostgreSQL account need root")
	}
	psql, err := exec.LookPath("psql")
	if err != nil {
		t.Fatal("psql not found (make deps installs PostgreSQL)")
	}
	root, err := os.MkdirTemp("", "ramd-nomad-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	// PostgreSQL runs as postgres and must reach its data below root.
	if err := os.Chmod(root, 0o711); err != nil {
		t.Fatal(err)
	}
	e := &e2e{t: t, root: root, nomad: nomad, ramd: ramdBinary(t), psql: psql}
	t.Cleanup(func() {
		e.killLeftovers()
		e.unmountAll()
		if t.Failed() {
			t.Logf("logs kept in %s", root)
			return
		}
		if err := os.RemoveAll(root); err != nil {
			t.Logf("remove %s: %v", root, err)
		}
	})
	// 8 agent ports, then 60 for Nomad's dynamic ports (two per member and replacements).
	ports := freePorts(t, 68)
	e.consulAPI = fmt.Sprintf("127.0.0.1:%d", ports[0])
	e.start(consul, "consul", "agent", "-dev", "-node", "nomad-e2e", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(ports[0]), "-dns-port", strconv.Itoa(ports[1]),
		"-server-port", strconv.Itoa(ports[2]), "-serf-lan-port", strconv.Itoa(ports[3]),
		"-serf-wan-port", strconv.Itoa(ports[4]), "-grpc-port", "-1", "-grpc-tls-port", "-1")
	e.waitHTTP("http://"+e.consulAPI+"/v1/status/leader", func(b []byte) bool { return len(b) > 4 })

	vol := filepath.Join(root, "vol")
	var volumes strings.Builder
	for i := range members {
		dir := filepath.Join(vol, strconv.Itoa(i))
		if err := os.MkdirAll(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&volumes, "  host_volume %q {\n    path = %q\n  }\n", fmt.Sprintf("ramd-data[%d]", i), dir)
	}
	dynLow, dynHigh := ports[8], ports[len(ports)-1]
	cfg := fmt.Sprintf(`data_dir = %q
bind_addr = "127.0.0.1"
disable_update_check = true
ports {
  http = %d
  rpc  = %d
  serf = %d
}
client {
  network_interface = "lo"
  cpu_total_compute = 4000
  min_dynamic_port  = %d
  max_dynamic_port  = %d
  max_kill_timeout  = "60s"
%s}
plugin "raw_exec" {
  config {
    enabled = true
  }
}
consul {
  address = %q
}
`, filepath.Join(root, "nomad-data"), ports[5], ports[6], ports[7], dynLow, dynHigh, volumes.String(), e.consulAPI)
	cfgPath := filepath.Join(root, "nomad.hcl")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.nomadAddr = fmt.Sprintf("http://127.0.0.1:%d", ports[5])
	e.start(nomad, "nomad", "agent", "-dev", "-config", cfgPath)
	e.waitHTTP(e.nomadAddr+"/v1/nodes", func(b []byte) bool { return bytes.Contains(b, []byte(`"Status":"ready"`)) })
	t.Cleanup(e.stopJob) // runs before the agents stop (cleanups run last in, first out)

	e.vars = []string{
		"-var-file", "testdata/ramd.loopback.vars.hcl",
		"-var", "scope=" + scope,
		"-var", "ramd_command=" + e.ramd,
		"-var", "raw_exec_data_root=" + vol,
		"-var", "consul_http_addr=" + e.consulAPI,
	}
	return e
}

// consulBinary is $RAMD_CONSUL_BIN or the agent scripts/build-consul.sh caches.
func consulBinary(t *testing.T) string {
	if p := os.Getenv("RAMD_CONSUL_BIN"); p != "" {
		return p
	}
	cache, err := os.UserCacheDir()
	if err == nil {
		p := filepath.Join(cache, "ramd", "consul-1.14.11", "consul")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatal("no Consul agent: run make consul or set RAMD_CONSUL_BIN")
	return ""
}

// aboveEphemeral is the first port above the kernel's ephemeral range.
func aboveEphemeral() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		if hi, err := strconv.Atoi(f[1]); err == nil && hi < 65000 {
			return hi + 1
		}
	}
	return 61000
}

// freePorts returns n consecutive ports on 127.0.0.1 above the ephemeral range, each of
// which accepts a TCP listener now.
func freePorts(t *testing.T, n int) []int {
	low := aboveEphemeral() + 100
	span := 65535 - n - low
	if span <= 0 {
		t.Fatalf("no room for %d ports above the ephemeral range", n)
	}
	first := int(time.Now().UnixNano() % int64(span))
	for try := range 200 {
		base := low + (first+try*n)%span
		var ls []net.Listener
		for p := base; p < base+n; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				break
			}
			ls = append(ls, l)
		}
		for _, l := range ls {
			_ = l.Close()
		}
		if len(ls) == n {
			out := make([]int, n)
			for i := range out {
				out[i] = base + i
			}
			return out
		}
	}
	t.Fatal("no free ports found in 200 tries")
	return nil
}

// start runs an agent in its own process group, logging to <root>/<name>.log, and stops it
// by pid when the test ends.
func (e *e2e) start(bin, name string, args ...string) {
	log, err := os.Create(filepath.Join(e.root, name+".log"))
	if err != nil {
		e.t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = log.Close(); close(done) }()
	e.t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(stopGrace):
			e.t.Logf("%s (pid %d) ignored SIGTERM for %s; SIGKILL", name, cmd.Process.Pid, stopGrace)
			_ = cmd.Process.Kill()
			<-done
		}
		if e.t.Failed() {
			b, _ := os.ReadFile(filepath.Join(e.root, name+".log"))
			e.t.Logf("---- %s log (tail) ----\n%s", name, tail(string(b), 4000))
		}
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// poll calls f every 250ms until it returns nil or timeout passes (bounded in time and
// count), then fails the test with f's last error.
func (e *e2e) poll(timeout time.Duration, what string, f func() error) {
	e.t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for i := 0; i < int(timeout/(250*time.Millisecond))+1; i++ {
		if err = f(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	e.t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

func (e *e2e) waitHTTP(url string, ok func([]byte) bool) {
	e.t.Helper()
	e.poll(agentReady, "GET "+url, func() error {
		b, err := get(url)
		if err != nil {
			return err
		}
		if !ok(b) {
			return fmt.Errorf("not ready: %.200s", b)
		}
		return nil
	})
}

func get(url string) ([]byte, error) {
	resp, err := httpc.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return b, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, err
}

// nomadCmd runs the nomad CLI against the test agent from this directory, bounded by timeout.
func (e *e2e) nomadCmd(timeout time.Duration, args ...string) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.nomad, args...)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+e.nomadAddr)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("nomad %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stopJob stops and purges the job and waits (bounded) until its tasks have exited.
func (e *e2e) stopJob() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.nomad, "job", "stop", "-purge", jobID)
	cmd.Env = append(os.Environ(), "NOMAD_ADDR="+e.nomadAddr)
	if out, err := cmd.CombinedOutput(); err != nil {
		e.t.Logf("nomad job stop: %v\n%s", err, out)
	}
	for i := 0; i < 240 && len(e.ourPIDs()) > 0; i++ {
		time.Sleep(250 * time.Millisecond)
	}
}

// ourPIDs lists this run's task processes: the ramd binary the test built (ramd and its
// fence guard), and every process whose command line names this run's temp dir (the
// postmasters, Nomad's task executors), but not the agents themselves.
func (e *e2e) ourPIDs() []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if exe, err := os.Readlink("/proc/" + d.Name() + "/exe"); err == nil && exe == e.ramd {
			out = append(out, pid)
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && bytes.Contains(cmdline, []byte(e.root)) && !bytes.Contains(cmdline, []byte("agent\x00-dev")) {
			out = append(out, pid)
		}
	}
	return out
}

// killLeftovers kills, by pid, any process of this run still alive after the job stopped
// (a postmaster left behind if the agent died first).
func (e *e2e) killLeftovers() {
	for _, pid := range e.ourPIDs() {
		e.t.Logf("killing leftover pid %d", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// unmountAll unmounts what Nomad mounted below the temp dir (the tasks' secrets tmpfs) if
// its agent did not.
func (e *e2e) unmountAll() {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return
	}
	defer f.Close()
	var points []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], e.root+"/") {
			points = append(points, fields[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		if err := syscall.Unmount(p, syscall.MNT_DETACH); err != nil {
			e.t.Logf("unmount %s: %v", p, err)
		}
	}
}

// alloc is the part of Nomad's allocation the test reads.
type alloc struct {
	ID               string
	Name             string
	ClientStatus     string
	DesiredStatus    string
	CreateTime       int64
	DeploymentStatus *struct {
		Healthy   *bool
		Timestamp time.Time
	}
	AllocatedResources *struct {
		Shared struct {
			Ports []struct {
				Label  string
				Value  int
				HostIP string
			}
		}
	}
}

var indexRe = regexp.MustCompile(`\[(\d+)\]$`)

func (a alloc) index() int {
	m := indexRe.FindStringSubmatch(a.Name)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func (e *e2e) allocs() ([]alloc, error) {
	b, err := get(e.nomadAddr + "/v1/job/" + jobID + "/allocations")
	if err != nil {
		return nil, err
	}
	var out []alloc
	return out, json.Unmarshal(b, &out)
}

func (e *e2e) allocation(id string) (alloc, error) {
	var a alloc
	b, err := get(e.nomadAddr + "/v1/allocation/" + id)
	if err != nil {
		return a, err
	}
	return a, json.Unmarshal(b, &a)
}

// memberView is one member as Nomad and ramd show it.
type memberView struct {
	Name    string // ramd's member name, <scope>-<index>
	Index   int
	AllocID string
	API     string // http://ip:port
	PGPort  int
	Role    string // "primary", "replica" or "" (neither ready)
}

type clusterView []memberView

func (c clusterView) primary() memberView {
	for _, m := range c {
		if m.Role == "primary" {
			return m
		}
	}
	return memberView{}
}

func (c clusterView) byName(name string) memberView {
	for _, m := range c {
		if m.Name == name {
			return m
		}
	}
	return memberView{}
}

// view reads the running allocations and asks each member's API for its role.
func (e *e2e) view() (clusterView, error) {
	list, err := e.allocs()
	if err != nil {
		return nil, err
	}
	var out clusterView
	for _, s := range list {
		if s.ClientStatus != "running" || s.DesiredStatus != "run" {
			continue
		}
		a, err := e.allocation(s.ID)
		if err != nil {
			return nil, err
		}
		m := memberView{Name: fmt.Sprintf("%s-%d", scope, a.index()), Index: a.index(), AllocID: a.ID}
		if a.AllocatedResources != nil {
			for _, p := range a.AllocatedResources.Shared.Ports {
				switch p.Label {
				case "api":
					m.API = fmt.Sprintf("http://%s:%d", p.HostIP, p.Value)
				case "pg":
					m.PGPort = p.Value
				}
			}
		}
		switch {
		case m.API == "":
		case status(m.API+"/primary") == http.StatusOK:
			m.Role = "primary"
		case status(m.API+"/replica") == http.StatusOK:
			m.Role = "replica"
		}
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

func status(url string) int {
	resp, err := httpc.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitCluster waits for one member per index, one primary (not notPrimary) and every other
// member a streaming replica.
func (e *e2e) waitCluster(timeout time.Duration, notPrimary string) clusterView {
	e.t.Helper()
	var v clusterView
	e.poll(timeout, "a primary and streaming replicas", func() error {
		var err error
		if v, err = e.view(); err != nil {
			return err
		}
		return v.healthy(notPrimary)
	})
	return v
}

func (c clusterView) healthy(notPrimary string) error {
	primaries, replicas := 0, 0
	for _, m := range c {
		switch m.Role {
		case "primary":
			if m.Name == notPrimary {
				return fmt.Errorf("%s is still the primary", m.Name)
			}
			primaries++
		case "replica":
			replicas++
		}
	}
	if len(c) != members || primaries != 1 || replicas != members-1 {
		return fmt.Errorf("%d running members, %d primary, %d replicas: %+v", len(c), primaries, replicas, c)
	}
	return nil
}

// deployment is the part of Nomad's deployment the test reads.
type deployment struct {
	ID     string
	Status string
}

func (e *e2e) latestDeployment() (deployment, error) {
	var d deployment
	b, err := get(e.nomadAddr + "/v1/job/" + jobID + "/deployment")
	if err != nil {
		return d, err
	}
	return d, json.Unmarshal(b, &d)
}

// waitDeployment waits for the job's latest deployment to succeed (every member passed the
// readiness gate).
func (e *e2e) waitDeployment(timeout time.Duration) {
	e.t.Helper()
	e.poll(timeout, "deployment successful", func() error {
		d, err := e.latestDeployment()
		if err != nil {
			return err
		}
		if d.Status == "failed" || d.Status == "cancelled" {
			e.t.Fatalf("deployment %s %s", d.ID, d.Status)
		}
		if d.Status != "successful" {
			return fmt.Errorf("deployment %s is %s", d.ID, d.Status)
		}
		return nil
	})
}

// waitDeploymentIdle waits until no deployment runs (a replaced allocation is not one).
func (e *e2e) waitDeploymentIdle(timeout time.Duration) {
	e.t.Helper()
	e.poll(timeout, "no running deployment", func() error {
		d, err := e.latestDeployment()
		if err != nil {
			return err
		}
		if d.Status == "running" {
			return errors.New("a deployment runs")
		}
		return nil
	})
}

// psqlExec runs SQL on a member as the superuser.
func (e *e2e) psqlExec(m memberView, sql string) error {
	_, err := e.psqlQuery(m, sql)
	return err
}

func (e *e2e) psqlQuery(m memberView, sql string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, e.psql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql,
		fmt.Sprintf("host=127.0.0.1 port=%d user=postgres dbname=postgres connect_timeout=3", m.PGPort))
	cmd.Env = append(os.Environ(), "PGPASSWORD="+pgPass)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("psql on %s: %w: %s", m.Name, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// waitRow waits until member m has the row v in table e2e.
func (e *e2e) waitRow(m memberView, v string) error {
	var last error
	for i := 0; i < 120; i++ {
		out, err := e.psqlQuery(m, "SELECT v FROM e2e")
		if err == nil && strings.Contains(out, v) {
			return nil
		}
		last = fmt.Errorf("%s has %q (%v)", m.Name, out, err)
		time.Sleep(250 * time.Millisecond)
	}
	return last
}

// switchover asks the primary to hand over to candidate and waits until it has.
func (e *e2e) switchover(v clusterView, candidate string) {
	e.t.Helper()
	p := v.primary()
	if p.Name == candidate {
		return
	}
	body := fmt.Sprintf(`{"leader":%q,"candidate":%q}`, p.Name, candidate)
	req, err := http.NewRequest(http.MethodPost, p.API+"/switchover", strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.SetBasicAuth(apiUser, apiPass)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("switchover: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("switchover to %s: %s %s", candidate, resp.Status, b)
	}
	e.poll(stepTimeout, "switchover to "+candidate, func() error {
		w, err := e.view()
		if err != nil {
			return err
		}
		if w.primary().Name != candidate {
			return fmt.Errorf("primary is %q", w.primary().Name)
		}
		return nil
	})
}

// watchRolling follows a rolling update from the cluster before it, sampling every 250ms.
// It checks that Nomad replaces one member at a time, each only after the one replaced
// before passed the readiness gate, in index order, and that the primary (the highest
// index) keeps its role until its own turn. It returns the indexes in replacement order.
func (e *e2e) watchRolling(before clusterView, timeout time.Duration) []int {
	e.t.Helper()
	oldAlloc := map[int]string{}
	for _, m := range before {
		oldAlloc[m.Index] = m.AllocID
	}
	primaryIdx := before.primary().Index
	replacedAt := map[int]time.Time{} // index -> when the new allocation was seen
	var order []int
	deadline := time.Now().Add(timeout)
	for i := 0; ; i++ {
		if time.Now().After(deadline) || i > int(timeout/(250*time.Millisecond)) {
			e.t.Fatalf("rolling update not done within %s; replaced %v", timeout, order)
		}
		list, err := e.allocs()
		if err != nil {
			time.Sleep(250 * time.Millisecond)
			continue
		}
		healthyNew := map[int]time.Time{}
		pending := 0
		for _, a := range list {
			idx := a.index()
			if a.ID == oldAlloc[idx] || a.DesiredStatus != "run" {
				continue
			}
			if isOld(a, before) {
				continue
			}
			if _, seen := replacedAt[idx]; !seen {
				replacedAt[idx] = time.Now()
				order = append(order, idx)
				e.t.Logf("rolling update: member %d replaced by allocation %s", idx, a.ID[:8])
			}
			if a.DeploymentStatus != nil && a.DeploymentStatus.Healthy != nil && *a.DeploymentStatus.Healthy {
				healthyNew[idx] = a.DeploymentStatus.Timestamp
			} else {
				pending++
			}
		}
		if pending > 1 {
			e.t.Fatalf("rolling update: %d new members not yet ready at once", pending)
		}
		if _, primaryReplaced := replacedAt[primaryIdx]; !primaryReplaced {
			if v, err := e.view(); err == nil {
				if p := v.primary(); p.Name != "" && p.Index != primaryIdx {
					e.t.Fatalf("rolling update: the primary moved to %s before its own turn", p.Name)
				}
			}
		}
		if len(healthyNew) == members {
			if d, err := e.latestDeployment(); err == nil && d.Status == "successful" {
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	for i := range order {
		if order[i] != i {
			e.t.Fatalf("rolling update order %v, want index order", order)
		}
	}
	if order[len(order)-1] != primaryIdx {
		e.t.Fatalf("rolling update order %v: the primary (member %d) was not last", order, primaryIdx)
	}
	return order
}

func isOld(a alloc, before clusterView) bool {
	for _, m := range before {
		if m.AllocID == a.ID {
			return true
		}
	}
	return false
}
