package harness

import (
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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// Options shape a cluster.
type Options struct {
	// Env is added to every node's environment (e.g. RAMD_TTL).
	Env map[string]string
	// NodeEnv is added per node name.
	NodeEnv map[string]map[string]string
	// NodeHost runs nodes inside test network namespaces (testenv.NewNet), by node name:
	// ramd starts through the host's ip netns exec prefix, its API and PostgreSQL listen
	// on the host's address (PostgreSQL also on the namespace's loopback), and the tests
	// reach both at that address. Nodes not listed run on 127.0.0.1 as before.
	NodeHost map[string]*testenv.Host
	// NodeAddr runs nodes on a loopback address of their own (127.0.0.2, ...), by node
	// name, without a namespace: their API and PostgreSQL listen there (PostgreSQL also on
	// 127.0.0.1) and members reach each other there.
	NodeAddr map[string]string
}

// Cluster is a set of ramd nodes sharing one scope in one Consul agent.
type Cluster struct {
	t          testing.TB
	Bin        string
	Scope      string
	ConsulAddr string
	Dir        string
	Nodes      []*Node
	opts       Options
}

// Node is one ramd process and its PostgreSQL.
type Node struct {
	c    *Cluster
	Name string
	// Host is the address the node's API and PostgreSQL are reached at: 127.0.0.1, or its
	// test network host's address (Options.NodeHost).
	Host    string
	PGPort  int
	APIPort int
	DataDir string
	LogPath string

	mu        sync.Mutex // guards cmd, done and lastState
	cmd       *exec.Cmd
	done      chan struct{}
	lastState *os.ProcessState
}

// New prepares (does not start) a cluster of n nodes named n1..nN.
func New(t testing.TB, bin, consulAddr string, n int, opts Options) *Cluster {
	t.Helper()
	scope := testenv.KeyPrefix(t)
	c := &Cluster{t: t, Bin: bin, Scope: scope, ConsulAddr: consulAddr, opts: opts}
	base := testenv.DataDir(t, "cluster")
	c.Dir = filepath.Dir(base)
	for i := 1; i <= n; i++ {
		name := "n" + strconv.Itoa(i)
		c.Nodes = append(c.Nodes, &Node{
			c:       c,
			Name:    name,
			Host:    "127.0.0.1",
			PGPort:  testenv.FreePort(t),
			APIPort: testenv.FreePort(t),
			DataDir: testenv.DataDir(t, name),
			LogPath: filepath.Join(c.Dir, name+".log"),
		})
	}
	for _, n := range c.Nodes {
		if a := opts.NodeAddr[n.Name]; a != "" {
			n.Host = a
		}
		if h := opts.NodeHost[n.Name]; h != nil {
			n.Host = h.Addr
		}
	}
	t.Cleanup(c.cleanup)
	return c
}

// Node returns the node named name.
func (c *Cluster) Node(name string) *Node {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n
		}
	}
	c.t.Fatalf("no node %s", name)
	return nil
}

// StartAll starts every node.
func (c *Cluster) StartAll() {
	for _, n := range c.Nodes {
		n.Start()
	}
}

// Env is the environment of node n.
func (n *Node) Env() []string {
	env := map[string]string{
		"RAMD_NAME":             n.Name,
		"RAMD_SCOPE":            n.c.Scope,
		"RAMD_DATA_DIR":         n.DataDir,
		"RAMD_PG_PORT":          strconv.Itoa(n.PGPort),
		"RAMD_API_LISTEN":       net.JoinHostPort(n.Host, strconv.Itoa(n.APIPort)),
		"CONSUL_HTTP_ADDR":      n.c.ConsulAddr,
		"RAMD_LOG_LEVEL":        "info",
		"RAMD_HANDOVER_WAIT":    "5s",
		"RAMD_PG_SOCKET_DIR":    "",
		"RAMD_PG_LOG_FILE":      n.DataDir + ".log",
		"RAMD_PG_BIN_DIR":       os.Getenv("RAMD_PG_BIN_DIR"),
		"RAMD_MEMBER_SLOTS_TTL": "30m",
	}
	if n.Host != "127.0.0.1" {
		env["RAMD_PG_LISTEN"] = n.Host + ",127.0.0.1"
	}
	if n.c.opts.NodeAddr[n.Name] != "" {
		// A loopback address is not advertised unless named.
		env["RAMD_PG_CONNECT_ADDRESS"] = n.Host
	}
	for k, v := range n.c.opts.Env {
		env[k] = v
	}
	for k, v := range n.c.opts.NodeEnv[n.Name] {
		env[k] = v
	}
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

// Start launches the node's ramd process (its log appended to LogPath).
func (n *Node) Start() {
	n.c.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		n.c.t.Fatalf("%s already running", n.Name)
	}
	f, err := os.OpenFile(n.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		n.c.t.Fatalf("open log: %v", err)
	}
	cmd := exec.Command(n.c.Bin)
	if h := n.c.opts.NodeHost[n.Name]; h != nil {
		cmd = h.Command(n.c.Bin) // ip netns exec replaces itself: the pid is ramd's
	}
	cmd.Env = n.Env()
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		n.c.t.Fatalf("start %s: %v", n.Name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = f.Close(); close(done) }()
	n.cmd, n.done = cmd, done
}

// PID is the ramd process id (0 when not running).
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Running reports whether ramd runs.
func (n *Node) Running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// PostmasterPID reads postmaster.pid (0 when absent or dead).
func (n *Node) PostmasterPID() int {
	b, err := os.ReadFile(filepath.Join(n.DataDir, "postmaster.pid"))
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil || pid <= 0 || !alive(pid) {
		return 0
	}
	return pid
}

// alive reports whether pid is a live process: a zombie (killed, not yet reaped by a frozen
// parent) runs nothing and does not count.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}

// Signal sends sig to the ramd process only (nothing when it already exited).
func (n *Node) Signal(sig syscall.Signal) {
	n.c.t.Helper()
	if !n.Running() {
		return
	}
	if err := syscall.Kill(n.PID(), sig); err != nil && n.Running() {
		n.c.t.Fatalf("signal %s: %v", n.Name, err)
	}
}

// Kill SIGKILLs ramd and its postmaster (node loss) and waits for ramd to be gone.
func (n *Node) Kill() {
	n.c.t.Helper()
	pm := n.PostmasterPID()
	if pid := n.PID(); pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	if pm > 0 {
		fence.KillPostmaster(pm) // the whole node dies: postmaster and every backend
	}
	n.wait(10 * time.Second)
}

// Stop sends SIGTERM and waits (bounded) for ramd to exit.
func (n *Node) Stop() error {
	n.c.t.Helper()
	if n.PID() == 0 {
		return nil
	}
	n.Signal(syscall.SIGTERM)
	if !n.wait(60 * time.Second) {
		return fmt.Errorf("%s did not exit within 60s of SIGTERM", n.Name)
	}
	return nil
}

// ExitCode returns ramd's exit code after it stopped (-1 when unknown).
func (n *Node) ExitCode() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.lastState == nil {
		return -1
	}
	return n.lastState.ExitCode()
}

func (n *Node) wait(d time.Duration) bool {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	n.mu.Unlock()
	if cmd == nil {
		return true
	}
	select {
	case <-done:
		n.mu.Lock()
		n.cmd = nil
		n.lastState = cmd.ProcessState
		n.mu.Unlock()
		return true
	case <-time.After(d):
		return false
	}
}

func (c *Cluster) cleanup() {
	var wg sync.WaitGroup
	for _, n := range c.Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n.PID() > 0 {
				_ = syscall.Kill(n.PID(), syscall.SIGCONT)
				_ = syscall.Kill(n.PID(), syscall.SIGTERM)
				if !n.wait(20 * time.Second) {
					n.Kill()
				}
			}
			if pm := n.PostmasterPID(); pm > 0 {
				fence.KillPostmaster(pm)
			}
		}()
	}
	wg.Wait()
	if c.t.Failed() {
		for _, n := range c.Nodes {
			b, _ := os.ReadFile(n.LogPath)
			c.t.Logf("---- %s log (tail) ----\n%s", n.Name, tail(string(b), 6000))
		}
	}
	c.keepLogs()
}

// keepLogs copies every node's log into RAMD_TEST_LOG_DIR, when set, as
// <scope>-<node>.log: the test's own directory goes with it.
func (c *Cluster) keepLogs() {
	dir := os.Getenv("RAMD_TEST_LOG_DIR")
	if dir == "" {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Logf("keep logs: %v", err)
		return
	}
	for _, n := range c.Nodes {
		b, err := os.ReadFile(n.LogPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, c.Scope+"-"+n.Name+".log"), b, 0o644)
		}
		if err != nil {
			c.t.Logf("keep %s's log: %v", n.Name, err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// APIURL is the node's API base URL.
func (n *Node) APIURL() string { return "http://" + net.JoinHostPort(n.Host, strconv.Itoa(n.APIPort)) }

var httpClient = &http.Client{Timeout: 2 * time.Second}

// Health returns the status code of GET path on the node's API (0 when unreachable).
func (n *Node) Health(path string) int {
	resp, err := httpClient.Get(n.APIURL() + path)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// PatroniDoc is the part of GET /patroni the tests read.
type PatroniDoc struct {
	State    string `json:"state"`
	Role     string `json:"role"`
	Timeline int    `json:"timeline"`
	SystemID string `json:"database_system_identifier"`
	// PendingRestart is Patroni's pending_restart: a changed setting waits for a restart.
	PendingRestart bool `json:"pending_restart"`
	// FailsafeActive: the leader lives on its members' confirmations (Consul away).
	FailsafeActive bool `json:"failsafe_mode_is_active"`
	Ramd           struct {
		HasLock      bool   `json:"has_lock"`
		Leader       string `json:"leader"`
		Role         string `json:"role"`
		DCSReachable bool   `json:"dcs_reachable"`
	} `json:"ramd"`
}

// Patroni fetches the node's status document.
func (n *Node) Patroni() (PatroniDoc, error) {
	var d PatroniDoc
	resp, err := httpClient.Get(n.APIURL() + "/patroni")
	if err != nil {
		return d, err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		return d, err
	}
	return d, nil
}

// Conn opens a connection to the node's PostgreSQL as the superuser, with its password.
func (n *Node) Conn(ctx context.Context) (*pgx.Conn, error) {
	pw, err := n.SuperuserPassword()
	if err != nil {
		return nil, err
	}
	dsn := SuperuserDSNAt(n.Host, n.PGPort, pw)
	for _, kv := range n.Env() {
		if ca, ok := strings.CutPrefix(kv, "RAMD_PG_TLS_CAFILE="); ok {
			// PostgreSQL takes TLS connections only: verify the chain (loopback is not
			// necessarily in the certificate).
			dsn = strings.Replace(dsn, "sslmode=disable", "sslmode=verify-ca sslrootcert='"+ca+"'", 1)
		}
	}
	return pgx.Connect(ctx, dsn)
}

// SuperuserPassword is the password ramd gives the node's superuser: the configured one
// (RAMD_PG_SUPERUSER_PASSWORD or its _FILE variant), else the generated password of
// loopback-only clusters.
func (n *Node) SuperuserPassword() (string, error) {
	env := map[string]string{}
	for _, kv := range n.Env() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	if pw := env["RAMD_PG_SUPERUSER_PASSWORD"]; pw != "" {
		return pw, nil
	}
	if f := env["RAMD_PG_SUPERUSER_PASSWORD_FILE"]; f != "" {
		return pg.ReadSecretFile("RAMD_PG_SUPERUSER_PASSWORD_FILE", f)
	}
	su, _, err := pg.LoopbackPasswords()
	return su, err
}

// SuperuserDSN is the libpq connection string of the superuser postgres on a loopback
// port (the password quoted as libpq wants it).
func SuperuserDSN(port int, password string) string {
	return SuperuserDSNAt("127.0.0.1", port, password)
}

// SuperuserDSNAt is SuperuserDSN for a server at host.
func SuperuserDSNAt(host string, port int, password string) string {
	return fmt.Sprintf("host=%s port=%d user=postgres password='%s' dbname=postgres connect_timeout=2 sslmode=disable", host,
		port, strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(password))
}

// Exec runs one statement on the node.
func (n *Node) Exec(ctx context.Context, sql string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	return err
}

// QueryInt runs a query returning one integer.
func (n *Node) QueryInt(ctx context.Context, sql string, args ...any) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var v int64
	err = conn.QueryRow(ctx, sql, args...).Scan(&v)
	return v, err
}

// QueryString runs a query that returns one text value.
func (n *Node) QueryString(ctx context.Context, sql string, args ...any) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := n.Conn(ctx)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var v string
	err = conn.QueryRow(ctx, sql, args...).Scan(&v)
	return v, err
}

// Other returns the last node of the cluster that is not n (in a two-node cluster, the
// other one).
func (c *Cluster) Other(n *Node) *Node {
	var o *Node
	for _, m := range c.Nodes {
		if m != n {
			o = m
		}
	}
	return o
}

// Primary returns the node answering 200 on /primary, or an error when none or several do.
func (c *Cluster) Primary() (*Node, error) {
	var found []*Node
	for _, n := range c.Nodes {
		if n.PID() > 0 && n.Health("/primary") == http.StatusOK {
			found = append(found, n)
		}
	}
	switch len(found) {
	case 0:
		return nil, errors.New("no node answers 200 on /primary")
	case 1:
		return found[0], nil
	}
	return nil, fmt.Errorf("%d nodes answer 200 on /primary", len(found))
}

// WaitPrimary waits until exactly one node is primary and accepts a write.
func (c *Cluster) WaitPrimary(timeout time.Duration) *Node {
	c.t.Helper()
	return c.WaitPrimaryFor(c.t, timeout)
}

// WaitPrimaryFor is WaitPrimary reporting to t instead of the cluster's test: a scenario's
// subtest must not fail the parent test that owns a shared cluster.
func (c *Cluster) WaitPrimaryFor(t testing.TB, timeout time.Duration) *Node {
	t.Helper()
	var p *Node
	c.eventually(t, timeout, 100*time.Millisecond, func() error {
		n, err := c.Primary()
		if err != nil {
			return err
		}
		if err := n.Exec(context.Background(), "SELECT txid_current()"); err != nil {
			return &nodeError{n, err}
		}
		p = n
		return nil
	})
	return p
}

// nodeError is a wait's failure on one node: when the wait gives up, the end of that node's
// log goes into the failure message, which a truncated test log still shows.
type nodeError struct {
	node *Node
	err  error
}

func (e *nodeError) Error() string { return e.node.Name + ": " + e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// eventually is testenv.Eventually, adding the log tail of the node a nodeError names.
func (c *Cluster) eventually(t testing.TB, timeout, every time.Duration, f func() error) {
	t.Helper()
	err := testenv.Poll(timeout, every, f)
	if err == nil {
		return
	}
	if ne, ok := errors.AsType[*nodeError](err); ok {
		t.Fatalf("condition not met within %s: %v\n---- %s log (last lines) ----\n%s", timeout, err, ne.node.Name, ne.node.logTail(25))
	}
	t.Fatalf("condition not met within %s: %v", timeout, err)
}

// logTail is the last n lines of the node's log.
func (n *Node) logTail(lines int) string {
	b, _ := os.ReadFile(n.LogPath)
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// WaitReplicas waits until every running node but the primary streams from it.
func (c *Cluster) WaitReplicas(timeout time.Duration) {
	c.t.Helper()
	c.WaitReplicasFor(c.t, timeout)
}

// WaitReplicasFor is WaitReplicas reporting to t (see WaitPrimaryFor).
func (c *Cluster) WaitReplicasFor(t testing.TB, timeout time.Duration) {
	t.Helper()
	c.eventually(t, timeout, 200*time.Millisecond, func() error {
		p, err := c.Primary()
		if err != nil {
			return err
		}
		want := 0
		for _, n := range c.Nodes {
			if n != p && n.PID() > 0 {
				want++
				if code := n.Health("/replica"); code != http.StatusOK {
					return &nodeError{n, fmt.Errorf("/replica = %d", code)}
				}
			}
		}
		got, err := p.QueryInt(context.Background(), "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		if int(got) < want {
			return fmt.Errorf("%d of %d replicas streaming from %s", got, want, p.Name)
		}
		return nil
	})
}

// LogEvents returns the lines of every node's log that contain one of the words, for
// verbose test output.
func (c *Cluster) LogEvents(words ...string) []string {
	var out []string
	for _, n := range c.Nodes {
		b, _ := os.ReadFile(n.LogPath)
		for _, line := range strings.Split(string(b), "\n") {
			for _, w := range words {
				if w != "" && strings.Contains(line, w) {
					out = append(out, n.Name+": "+line)
					break
				}
			}
		}
	}
	return out
}
