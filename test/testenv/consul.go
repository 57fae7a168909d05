package testenv

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// ConsulVersion is the only Consul release ramd tests run against: v1.14.11 is the last
// openly licensed (MPL-2.0) release, built by scripts/build-consul.sh.
const ConsulVersion = "1.14.11"

const (
	// consulReadyTimeout bounds how long an agent may take to elect itself and register its
	// node; a single dev or bootstrap server needs 1-5 s, a slow CI machine more.
	consulReadyTimeout = 30 * time.Second
	// consulTermGrace is how long a SIGTERMed agent may take to exit before it is SIGKILLed;
	// a clean shutdown takes well under a second.
	consulTermGrace = 10 * time.Second
	// consulKillGrace bounds the wait for a SIGKILLed process to be reaped.
	consulKillGrace = 5 * time.Second
	// consulStartAttempts bounds retries with fresh ports when a port chosen free was taken
	// by someone else before the agent bound it.
	consulStartAttempts = 3
	// consulLogTail is how many log lines are shown when something fails.
	consulLogTail = 60
)

// ConsulOptions shape a test agent. The zero value is a -dev agent.
type ConsulOptions struct {
	// Server runs a persistent single server (-server -bootstrap-expect=1) with a data dir
	// instead of -dev, so Stop then Start keeps the KV store and sessions.
	Server bool
	// ACLDefaultDeny enables ACLs with default policy deny; Consul.Token is then the
	// initial management token.
	ACLDefaultDeny bool
	// TLS adds an HTTPS listener (Consul.HTTPSAddr) serving TLS.CertFile, which must name
	// 127.0.0.1; with TLS.VerifyIncoming it refuses clients without a certificate signed by
	// TLS.CAFile. The plain HTTP listener stays, for the test's own management calls.
	TLS *ConsulTLS
	// Host runs the agent inside a test network's namespace (see NewNet), bound to the
	// host's address with Consul's default ports, as on a real machine; the HTTP API also
	// listens on the namespace's 127.0.0.1:8500, where the host's ramd finds it. Join lists
	// the addresses it joins, and BootstrapExpect, when above zero, makes it one server of
	// a cluster of that many; otherwise it is a client agent. See StartConsulNet.
	Host            *Host
	Join            []string
	BootstrapExpect int
}

// ConsulTLS are the PEM files of a test agent's HTTPS listener.
type ConsulTLS struct {
	CAFile, CertFile, KeyFile string
	VerifyIncoming            bool
}

// Consul is a real Consul agent started for tests, listening on 127.0.0.1 only.
type Consul struct {
	// HTTPAddr is the HTTP API address, "127.0.0.1:port".
	HTTPAddr string
	// HTTPSAddr is the HTTPS API address with ConsulOptions.TLS, "" otherwise.
	HTTPSAddr string
	// DNSAddr is the DNS interface address, "127.0.0.1:port".
	DNSAddr string
	// NodeName is the agent's unique node name.
	NodeName string
	// Datacenter is the agent's datacenter.
	Datacenter string
	// Token is the initial management token when ACLDefaultDeny, "" otherwise.
	Token string
	// LogPath is the file the agent's stdout and stderr go to.
	LogPath string

	opts       ConsulOptions
	bin        string
	dir        string // temp dir holding config, log and data dir
	configPath string

	mu   sync.Mutex // guards cmd and done
	cmd  *exec.Cmd  // nil when stopped
	done chan struct{}
}

var (
	binMu     sync.Mutex // guards binCache
	binCache  = map[string]string{}
	nodeCount atomic.Int32
)

// ConsulBinary returns the path of a Consul v1.14.11 agent binary: $RAMD_CONSUL_BIN, else
// the cache built by scripts/build-consul.sh ($RAMD_CACHE_DIR or
// ${XDG_CACHE_HOME:-$HOME/.cache}/ramd, then consul-1.14.11/consul), else consul on PATH.
// When none is found it calls Missing (skip, or fail under RAMD_TEST_REQUIRE_REAL=1).
func ConsulBinary(t testing.TB) string {
	t.Helper()
	bin, err := findConsul()
	if err != nil {
		Missing(t, "%v", err)
	}
	return bin
}

// findConsul resolves the binary and checks its version; the error says how to get one.
func findConsul() (string, error) {
	var tried []string
	if p := os.Getenv("RAMD_CONSUL_BIN"); p != "" {
		if err := checkConsulVersion(p); err != nil {
			return "", fmt.Errorf("RAMD_CONSUL_BIN: %w; run `make consul` (scripts/build-consul.sh) or fix RAMD_CONSUL_BIN", err)
		}
		return p, nil
	}
	if p := cachedConsulPath(); p != "" {
		if _, err := os.Stat(p); err == nil {
			if err := checkConsulVersion(p); err == nil {
				return p, nil
			} else {
				tried = append(tried, err.Error())
			}
		} else {
			tried = append(tried, p+": not built")
		}
	}
	if p, err := exec.LookPath("consul"); err == nil {
		if err := checkConsulVersion(p); err == nil {
			return p, nil
		} else {
			tried = append(tried, err.Error())
		}
	} else {
		tried = append(tried, "consul: not on PATH")
	}
	return "", fmt.Errorf("consul v%s not found (%s); run `make consul` (scripts/build-consul.sh) or set RAMD_CONSUL_BIN",
		ConsulVersion, strings.Join(tried, "; "))
}

// cachedConsulPath is where scripts/build-consul.sh puts the binary.
func cachedConsulPath() string {
	root := os.Getenv("RAMD_CACHE_DIR")
	if root == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return ""
			}
			cache = filepath.Join(home, ".cache")
		}
		root = filepath.Join(cache, "ramd")
	}
	return filepath.Join(root, "consul-"+ConsulVersion, "consul")
}

// checkConsulVersion runs "<bin> version" (bounded) and checks it reports ConsulVersion.
// Results are cached per path for the life of the test binary.
func checkConsulVersion(bin string) error {
	binMu.Lock()
	defer binMu.Unlock()
	if msg, ok := binCache[bin]; ok {
		if msg == "" {
			return nil
		}
		return errors.New(msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	var res error
	switch {
	case err != nil:
		res = fmt.Errorf("%s version: %w", bin, err)
	case !strings.Contains(string(out), "Consul v"+ConsulVersion+"\n"):
		first, _, _ := strings.Cut(string(out), "\n")
		res = fmt.Errorf("%s is %q, want Consul v%s", bin, first, ConsulVersion)
	}
	if res == nil {
		binCache[bin] = ""
	} else {
		binCache[bin] = res.Error()
	}
	return res
}

// StartConsul starts an agent for one test and registers a t.Cleanup that stops it by pid.
// Every port is chosen free on 127.0.0.1. It fails the test when the agent does not become
// ready within 30 s, showing the tail of its log.
func StartConsul(t testing.TB, opts ConsulOptions) *Consul {
	t.Helper()
	bin := ConsulBinary(t)
	dir := t.TempDir() // removed after the agent is stopped: cleanups run last-in first-out
	c, err := newConsul(bin, dir, opts)
	if err != nil {
		t.Fatalf("start consul: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("consul %s log tail:\n%s", c.NodeName, c.logTail())
		}
		if err := c.stop(); err != nil {
			t.Errorf("stop consul %s: %v", c.NodeName, err)
		}
	})
	if err := c.startWithRetry(); err != nil {
		t.Fatalf("start consul: %v", err) // the cleanup shows the log tail
	}
	return c
}

// StartConsulMain starts one agent for a whole test package, from TestMain; tests share it
// and isolate themselves with KeyPrefix. The returned func stops the agent and removes its
// files. When the binary is missing and RAMD_TEST_REQUIRE_REAL is not set, it returns a nil
// *Consul and a nil error, and tests skip through SharedConsul.
func StartConsulMain(opts ConsulOptions) (*Consul, func(), error) {
	noop := func() {}
	bin, err := findConsul()
	if err != nil {
		if RequireReal() {
			return nil, noop, fmt.Errorf("RAMD_TEST_REQUIRE_REAL=1 and %w", err)
		}
		missingReason.Store(err.Error())
		return nil, noop, nil
	}
	dir, err := os.MkdirTemp("", "ramd-consul-")
	if err != nil {
		return nil, noop, fmt.Errorf("make consul temp dir: %w", err)
	}
	c, err := newConsul(bin, dir, opts)
	if err == nil {
		err = c.startWithRetry()
	}
	cleanup := func() {
		if c != nil {
			if err := c.stop(); err != nil {
				fmt.Fprintf(os.Stderr, "stop consul %s: %v\n", c.NodeName, err)
			}
		}
		_ = os.RemoveAll(dir)
	}
	if err != nil {
		tail := ""
		if c != nil {
			tail = c.logTail()
		}
		cleanup()
		return nil, noop, fmt.Errorf("start consul: %w\nlog tail:\n%s", err, tail)
	}
	return c, cleanup, nil
}

var missingReason atomic.Value // string: why StartConsulMain returned no agent

// SharedConsul returns c, the agent from StartConsulMain, or calls Missing (skip, or fail
// under RAMD_TEST_REQUIRE_REAL=1) when c is nil.
func SharedConsul(t testing.TB, c *Consul) *Consul {
	t.Helper()
	if c == nil {
		reason, _ := missingReason.Load().(string)
		if reason == "" {
			reason = "no shared consul agent was started (run `make consul`)"
		}
		Missing(t, "%s", reason)
	}
	return c
}

// PID returns the agent's process id, or 0 when it is stopped.
func (c *Consul) PID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Stop stops the agent (SIGCONT, SIGTERM, then SIGKILL after 10 s) and waits for it to
// exit. Ports, config and data dir are kept for Start.
func (c *Consul) Stop(t testing.TB) {
	t.Helper()
	if err := c.stop(); err != nil {
		t.Fatalf("stop consul %s: %v", c.NodeName, err)
	}
}

// Start starts a stopped agent again on the same ports and data dir (in Server mode the KV
// store survives) and waits until it is ready.
func (c *Consul) Start(t testing.TB) {
	t.Helper()
	if c.PID() != 0 {
		t.Fatalf("start consul %s: already running", c.NodeName)
	}
	if err := c.start(); err != nil {
		t.Fatalf("restart consul %s: %v\nlog tail:\n%s", c.NodeName, err, c.logTail())
	}
}

// Signal sends sig to the agent, for fault tests (syscall.SIGSTOP, syscall.SIGCONT). A stop
// takes effect asynchronously, so after SIGSTOP it waits (bounded, where /proc exists) until
// every thread of the agent is stopped: from then on it answers nothing.
func (c *Consul) Signal(sig os.Signal) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil || c.cmd.Process == nil {
		return errors.New("consul agent is not running")
	}
	pid := c.cmd.Process.Pid
	if err := c.cmd.Process.Signal(sig); err != nil {
		return fmt.Errorf("signal consul pid %d: %w", pid, err)
	}
	if sig == syscall.SIGSTOP {
		if err := Poll(consulStopTimeout, 5*time.Millisecond, func() error { return allThreadsStopped(pid) }); err != nil {
			return fmt.Errorf("stop consul pid %d: %w", pid, err)
		}
	}
	return nil
}

// consulStopTimeout bounds the wait for a SIGSTOP to stop every thread; the kernel does it
// in microseconds to milliseconds.
const consulStopTimeout = 2 * time.Second

// allThreadsStopped reads /proc/<pid>/task/*/stat and returns an error while a thread is
// not in state T (stopped). Without /proc it returns nil: there is nothing to wait on.
func allThreadsStopped(pid int) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat("/proc/self"); err != nil {
			return nil // no procfs on this system
		}
		return fmt.Errorf("pid %d is gone", pid)
	}
	if err != nil {
		return fmt.Errorf("list threads of pid %d: %w", pid, err)
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", pid, task.Name()))
		if err != nil {
			continue // the thread exited
		}
		// The state follows the command name, which is in parentheses and may hold spaces.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			return fmt.Errorf("parse /proc/%d/task/%s/stat", pid, task.Name())
		}
		if state := b[i+2]; state != 'T' {
			return fmt.Errorf("thread %s of pid %d in state %c, not stopped", task.Name(), pid, state)
		}
	}
	return nil
}

// newConsul prepares the agent's directory and identity; ports are chosen by writeConfig.
func newConsul(bin, dir string, opts ConsulOptions) (*Consul, error) {
	suffix, err := randomHex(4)
	if err != nil {
		return nil, err
	}
	c := &Consul{
		NodeName:   fmt.Sprintf("ramd-test-%d-%d-%s", os.Getpid(), nodeCount.Add(1), suffix),
		Datacenter: "dc1",
		LogPath:    filepath.Join(dir, "consul.log"),
		opts:       opts,
		bin:        bin,
		dir:        dir,
		configPath: filepath.Join(dir, "consul.json"),
	}
	if opts.ACLDefaultDeny {
		if c.Token, err = randomUUID(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// startWithRetry writes a config with fresh ports and starts the agent, retrying (bounded)
// when a port was taken between choosing and binding it.
func (c *Consul) startWithRetry() error {
	var err error
	for range consulStartAttempts {
		if err = c.writeConfig(); err != nil {
			return err
		}
		if err = c.start(); err == nil {
			return nil
		}
		if !strings.Contains(c.logTail(), "address already in use") {
			return err
		}
	}
	return err
}

// writeConfig chooses free ports and writes the agent's JSON config file.
func (c *Consul) writeConfig() error {
	if c.opts.Host != nil {
		return c.writeNetConfig()
	}
	ports := make([]int, 6)
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return err
		}
		ports[i] = p
	}
	c.HTTPAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	c.DNSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	cfg := map[string]any{
		"node_name":            c.NodeName,
		"datacenter":           c.Datacenter,
		"bind_addr":            "127.0.0.1",
		"client_addr":          "127.0.0.1",
		"advertise_addr":       "127.0.0.1",
		"advertise_addr_wan":   "127.0.0.1",
		"disable_update_check": true,
		"log_level":            "debug",
		"performance":          map[string]any{"raft_multiplier": 1},
		"ports": map[string]any{
			"http": ports[0], "dns": ports[1], "serf_lan": ports[2], "serf_wan": ports[3],
			"server": ports[4], "https": -1, "grpc": -1, "grpc_tls": -1,
		},
	}
	if t := c.opts.TLS; t != nil {
		c.HTTPSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[5]))
		cfg["ports"].(map[string]any)["https"] = ports[5]
		cfg["tls"] = map[string]any{
			"defaults": map[string]any{"ca_file": t.CAFile, "cert_file": t.CertFile, "key_file": t.KeyFile, "tls_min_version": "TLSv1_2"},
			"https":    map[string]any{"verify_incoming": t.VerifyIncoming},
		}
	}
	if c.opts.Server {
		cfg["server"] = true
		cfg["bootstrap_expect"] = 1
		cfg["data_dir"] = filepath.Join(c.dir, "data")
		cfg["leave_on_terminate"] = false
	}
	if c.opts.ACLDefaultDeny {
		cfg["primary_datacenter"] = c.Datacenter
		cfg["acl"] = map[string]any{
			"enabled":                  true,
			"default_policy":           "deny",
			"enable_token_persistence": false,
			"tokens":                   map[string]any{"initial_management": c.Token, "agent": c.Token},
		}
	}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encode consul config: %w", err)
	}
	if err := os.WriteFile(c.configPath, b, 0o600); err != nil {
		return fmt.Errorf("write consul config: %w", err)
	}
	return nil
}

// start runs the agent with the current config and waits until it is ready.
func (c *Consul) start() error {
	done, err := c.launch()
	if err != nil {
		return err
	}
	if err := c.waitReady(done); err != nil {
		_ = c.stop()
		return err
	}
	return nil
}

// launch starts the agent's process without waiting for it to be ready; the returned
// channel closes when it exits.
func (c *Consul) launch() (chan struct{}, error) {
	args := []string{"agent", "-config-file=" + c.configPath}
	if !c.opts.Server && c.opts.Host == nil {
		args = append(args, "-dev")
	}
	logf, err := os.OpenFile(c.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open consul log: %w", err)
	}
	fmt.Fprintf(logf, "==> ramd testenv: %s %s\n", c.bin, strings.Join(args, " "))
	cmd := exec.Command(c.bin, args...)
	if c.opts.Host != nil {
		cmd = c.opts.Host.Command(c.bin, args...)
	}
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.Dir = c.dir
	cmd.SysProcAttr = dieWithParent()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return nil, fmt.Errorf("exec consul: %w", err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	c.mu.Lock()
	c.cmd, c.done = cmd, done
	c.mu.Unlock()
	return done, nil
}

// waitReady polls the HTTP API (plain net/http, bounded) until the agent has a raft leader,
// answers /v1/agent/self and has its own node in the catalog (needed to create sessions).
func (c *Consul) waitReady(done <-chan struct{}) error {
	hc := &http.Client{Timeout: time.Second}
	base := "http://" + c.HTTPAddr
	deadline := time.Now().Add(consulReadyTimeout)
	var last error
	for i := 0; i < 10_000 && time.Now().Before(deadline); i++ {
		select {
		case <-done:
			return fmt.Errorf("consul %s exited during start-up (last check: %w)", c.NodeName, last)
		default:
		}
		if last = c.readyOnce(hc, base); last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("consul %s not ready within %s: %w", c.NodeName, consulReadyTimeout, last)
}

func (c *Consul) readyOnce(hc *http.Client, base string) error {
	var leader string
	if err := c.getJSON(hc, base+"/v1/status/leader", &leader); err != nil {
		return err
	}
	if leader == "" {
		return errors.New("no raft leader yet")
	}
	if err := c.getJSON(hc, base+"/v1/agent/self", &map[string]any{}); err != nil {
		return err
	}
	var node struct{ Node *struct{ Node string } }
	if err := c.getJSON(hc, base+"/v1/catalog/node/"+c.NodeName, &node); err != nil {
		return err
	}
	if node.Node == nil {
		return errors.New("node not yet in catalog")
	}
	return nil
}

func (c *Consul) getJSON(hc *http.Client, url string, v any) error {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if c.Token != "" {
		req.Header.Set("X-Consul-Token", c.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("get %s: status %d: %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("decode %s: %w", url, err)
	}
	return nil
}

// stop ends the running agent by pid: SIGCONT (in case a test froze it), SIGTERM, then
// SIGKILL after consulTermGrace; it waits for the process to be reaped. Stopping a stopped
// agent is a no-op.
func (c *Consul) stop() error {
	c.mu.Lock()
	cmd, done := c.cmd, c.done
	c.cmd, c.done = nil, nil
	c.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(consulTermGrace):
	}
	_ = cmd.Process.Kill()
	select {
	case <-done:
		return nil
	case <-time.After(consulKillGrace):
		return fmt.Errorf("consul pid %d did not exit after SIGKILL", cmd.Process.Pid)
	}
}

// dieWithParent asks the kernel to SIGKILL the agent when the test binary dies without
// running its cleanups (a -timeout panic, a crash), so no agent outlives its tests. The field
// exists on Linux only; reflection keeps this file portable, elsewhere it is a no-op.
func dieWithParent() *syscall.SysProcAttr {
	attr := &syscall.SysProcAttr{}
	if f := reflect.ValueOf(attr).Elem().FieldByName("Pdeathsig"); f.IsValid() && f.CanSet() &&
		f.Type() == reflect.TypeFor[syscall.Signal]() {
		f.Set(reflect.ValueOf(syscall.SIGKILL))
	}
	return attr
}

// logTail returns the last lines of the agent's log.
func (c *Consul) logTail() string {
	f, err := os.Open(c.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer func() { _ = f.Close() }()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > consulLogTail {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// freePort is FreePort without a testing.TB, for StartConsulMain.
func freePort() (int, error) { return reservePort() }

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

func randomUUID() (string, error) {
	h, err := randomHex(16)
	if err != nil {
		return "", err
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}
