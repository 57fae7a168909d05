package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// A test network is built only from things the test creates and removes itself:
//
//   - a namespace "<prefix>br" holding a bridge br0, so bridged traffic never meets the
//     host's own firewall or bridge settings;
//   - one namespace "<prefix><host>" per host, with lo up and eth0 (one end of a veth pair,
//     the other end enslaved to br0) holding 10.213.S.<n>/24;
//   - one veth end "<prefix>c" in the namespace of the test process holding 10.213.S.1/24,
//     the client: the writer and probers reach every host from there, and no fault cuts it
//     unless a scenario says so.
//
// S, the third octet, is reserved per test process with a lock file holding its pid, like
// the ports; the prefix is "ramd" and 4 random hex digits, so names from concurrent test
// processes never collide (interface names stay within the kernel's 15 characters). The
// host's real interfaces and routes are not touched; the only route added in the test
// process's namespace is the one of its own /24.
const (
	netFirstOctets = "10.213"
	// netCmdTimeout bounds one ip or tc command; they take milliseconds.
	netCmdTimeout = 10 * time.Second
	// blackholeMAC is the link address a cut path sends to: frames to it are flooded by the
	// bridge and dropped by every receiver, which is a silent loss, as on a real partition.
	blackholeMAC = "02:00:5e:00:00:01"
)

var netDir = filepath.Join(os.TempDir(), "ramd-test-nets")

// Net is a test network of hosts in network namespaces joined by one bridge.
type Net struct {
	// Prefix starts the name of every namespace and interface of this network.
	Prefix string
	// Subnet is the network's /24, "10.213.S.0/24".
	Subnet string
	// ClientAddr is the address of the test process on the network.
	ClientAddr string

	t      testing.TB
	octet  int
	bridge string // the bridge's namespace

	mu     sync.Mutex // guards hosts, cuts, lossy, shaped and delays
	hosts  []*Host
	cuts   map[[2]string]bool    // from host name → to address, cut by a blackhole neighbour
	lossy  map[string]bool       // Loss tables in the bridge's namespace
	shaped map[string]bool       // bridge ports Netem shapes (the host's side is each eth0)
	delays map[string]*delayLink // Delay's relays by host namespace
}

// Host is one namespace on a Net.
type Host struct {
	// Name is the short name the test gave it ("h1", "s2").
	Name string
	// NS is the namespace's name, for ip netns exec.
	NS string
	// Addr is the host's IPv4 address on the network.
	Addr string

	net *Net
}

// NetAvailable reports why network namespaces cannot be used here, or nil: they need root,
// the ip command and a kernel that lets this process create namespaces, veth pairs and
// bridges. It probes once per process (test networks built at once share the answer; their
// probes would collide on one name).
func NetAvailable() error { return netProbe() }

var netProbe = sync.OnceValue(probeNet)

func probeNet() error {
	if os.Geteuid() != 0 {
		return errors.New("network namespaces need root")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("the ip command (iproute2) is missing: %w", err)
	}
	probe := fmt.Sprintf("ramdp%d", os.Getpid()%100000)
	if err := ipCmd(context.Background(), "netns", "add", probe); err != nil {
		return fmt.Errorf("cannot create a network namespace: %w", err)
	}
	defer func() { _ = ipCmd(context.Background(), "netns", "del", probe) }()
	if err := ipCmd(context.Background(), "-n", probe, "link", "add", "v0", "type", "veth", "peer", "name", "v1"); err != nil {
		return fmt.Errorf("cannot create a veth pair: %w", err)
	}
	if err := ipCmd(context.Background(), "-n", probe, "link", "add", "b0", "type", "bridge"); err != nil {
		return fmt.Errorf("cannot create a bridge: %w", err)
	}
	return nil
}

// NewNet creates an empty test network and registers its removal in t.Cleanup (every
// namespace and interface it created, whether the test passed or not). Where namespaces
// are impossible the test is skipped, or fails under RAMD_TEST_REQUIRE_REAL=1.
func NewNet(t testing.TB) *Net {
	t.Helper()
	if err := NetAvailable(); err != nil {
		Missing(t, "%v", err)
	}
	sweepNets()
	suffix, err := randomHex(2)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "ramd" + suffix
	octet, err := reserveOctet(prefix)
	if err != nil {
		t.Fatalf("reserve a test subnet: %v", err)
	}
	n := &Net{
		Prefix:     prefix,
		Subnet:     fmt.Sprintf("%s.%d.0/24", netFirstOctets, octet),
		ClientAddr: fmt.Sprintf("%s.%d.1", netFirstOctets, octet),
		t:          t,
		octet:      octet,
		bridge:     prefix + "br",
		cuts:       map[[2]string]bool{},
		lossy:      map[string]bool{},
		shaped:     map[string]bool{},
		delays:     map[string]*delayLink{},
	}
	t.Cleanup(func() {
		// The relays first: their goroutines end with their file descriptors, which must
		// be closed before the devices go away with the namespaces.
		if err := n.stopDelays(); err != nil {
			t.Errorf("remove delays of test network %s: %v", prefix, err)
		}
		if err := removeNet(prefix); err != nil {
			t.Errorf("remove test network %s: %v", prefix, err)
		}
		_ = os.Remove(filepath.Join(netDir, strconv.Itoa(octet)))
	})
	ctx := context.Background()
	steps := [][]string{
		{"netns", "add", n.bridge},
		{"-n", n.bridge, "link", "set", "lo", "up"},
		{"-n", n.bridge, "link", "add", "br0", "type", "bridge"},
		{"-n", n.bridge, "link", "set", "br0", "up"},
		{"link", "add", prefix + "c", "type", "veth", "peer", "name", prefix + "cb"},
		{"link", "set", prefix + "cb", "netns", n.bridge},
		{"-n", n.bridge, "link", "set", prefix + "cb", "master", "br0"},
		{"-n", n.bridge, "link", "set", prefix + "cb", "up"},
		{"addr", "add", n.ClientAddr + "/24", "dev", prefix + "c"},
		{"link", "set", prefix + "c", "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			t.Fatalf("create test network: %v", err)
		}
	}
	return n
}

// AddHost creates a namespace named after name on the network, with the next free
// address (10.213.S.10 onwards).
func (n *Net) AddHost(name string) *Host {
	n.t.Helper()
	n.mu.Lock()
	idx := len(n.hosts)
	n.mu.Unlock()
	h := &Host{
		Name: name,
		NS:   n.Prefix + name,
		Addr: fmt.Sprintf("%s.%d.%d", netFirstOctets, n.octet, 10+idx),
		net:  n,
	}
	if len(h.NS) > 15 || strings.ContainsAny(name, "/ ") {
		n.t.Fatalf("AddHost: name %q too long or invalid", name)
	}
	ctx := context.Background()
	a, b := h.NS+"a", h.NS+"b"
	steps := [][]string{
		{"netns", "add", h.NS},
		{"-n", h.NS, "link", "set", "lo", "up"},
		{"link", "add", a, "type", "veth", "peer", "name", b},
		{"link", "set", a, "netns", h.NS},
		{"-n", h.NS, "link", "set", a, "name", "eth0"},
		{"-n", h.NS, "addr", "add", h.Addr + "/24", "dev", "eth0"},
		{"-n", h.NS, "link", "set", "eth0", "up"},
		{"link", "set", b, "netns", n.bridge},
		{"-n", n.bridge, "link", "set", b, "master", "br0"},
		{"-n", n.bridge, "link", "set", b, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			n.t.Fatalf("add host %s: %v", name, err)
		}
	}
	n.mu.Lock()
	n.hosts = append(n.hosts, h)
	n.mu.Unlock()
	return h
}

// Hosts returns the hosts in the order they were added.
func (n *Net) Hosts() []*Host {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]*Host(nil), n.hosts...)
}

// Command returns a command that runs bin inside the host's namespace. ip netns exec
// replaces itself with bin, so the started process's pid is bin's: stop it by that pid.
func (h *Host) Command(bin string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", h.NS, bin}, args...)...)
}

// Prefix returns the command prefix that runs a program inside the host's namespace.
func (h *Host) Prefix() []string { return []string{"ip", "netns", "exec", h.NS} }

// CutOneWay makes every packet from host from to address to vanish silently (from keeps
// receiving what to sends). The path is cut with a permanent neighbour entry pointing to a
// link address nobody has: no firewall is needed, and the loss is silent, as on a real
// partition, not a fast "unreachable" error.
func (n *Net) CutOneWay(from *Host, to string) {
	n.t.Helper()
	if err := ipCmd(context.Background(), "-n", from.NS, "neigh", "replace", to, "lladdr", blackholeMAC, "dev", "eth0", "nud", "permanent"); err != nil {
		n.t.Fatalf("cut %s -> %s: %v", from.Name, to, err)
	}
	n.mu.Lock()
	n.cuts[[2]string{from.NS, to}] = true
	n.mu.Unlock()
}

// Cut cuts both directions between two hosts.
func (n *Net) Cut(a, b *Host) {
	n.t.Helper()
	n.CutOneWay(a, b.Addr)
	n.CutOneWay(b, a.Addr)
}

// Isolate cuts host h from every other host of the network in both directions; the client
// (the test process) still reaches it, so a test can see whether it keeps accepting writes.
func (n *Net) Isolate(h *Host) {
	n.t.Helper()
	for _, o := range n.Hosts() {
		if o != h {
			n.Cut(h, o)
		}
	}
}

// IsolateFromClient also cuts the client from h (the client then sees h as gone).
func (n *Net) IsolateFromClient(h *Host) {
	n.t.Helper()
	if err := ipCmd(context.Background(), "neigh", "replace", h.Addr, "lladdr", blackholeMAC, "dev", n.Prefix+"c", "nud", "permanent"); err != nil {
		n.t.Fatalf("cut client -> %s: %v", h.Name, err)
	}
	n.CutOneWay(h, n.ClientAddr)
	n.mu.Lock()
	n.cuts[[2]string{"", h.Addr}] = true
	n.mu.Unlock()
}

// Heal removes every cut, loss, delay and traffic shaping of the network.
func (n *Net) Heal() {
	n.t.Helper()
	if err := n.HealErr(); err != nil {
		n.t.Fatalf("heal: %v", err)
	}
}

// HealErr is Heal returning its error instead of failing the network's test, for cleanups
// of subtests.
func (n *Net) HealErr() error {
	n.mu.Lock()
	cuts, lossy, shaped := n.cuts, n.lossy, n.shaped
	n.cuts, n.lossy, n.shaped = map[[2]string]bool{}, map[string]bool{}, map[string]bool{}
	n.mu.Unlock()
	ctx := context.Background()
	errs := []error{n.stopDelays()}
	for c := range cuts {
		if c[0] == "" {
			errs = append(errs, ipCmd(ctx, "neigh", "del", c[1], "dev", n.Prefix+"c"))
			continue
		}
		errs = append(errs, ipCmd(ctx, "-n", c[0], "neigh", "del", c[1], "dev", "eth0"))
	}
	for _, h := range n.Hosts() {
		_ = tcCmd(ctx, "-n", h.NS, "qdisc", "del", "dev", "eth0", "root") // none is fine
	}
	for port := range shaped {
		errs = append(errs, tcCmd(ctx, "-n", n.bridge, "qdisc", "del", "dev", port, "root"))
	}
	for table := range lossy {
		errs = append(errs, runNetCmd(ctx, "ip", "netns", "exec", n.bridge, "nft", "delete", "table", "bridge", table))
	}
	return errors.Join(errs...)
}

// ErrNoNftables reports a host without the nft command or a kernel without nftables.
var ErrNoNftables = errors.New("testenv: nftables is not usable here (the nft command or the kernel's nf_tables)")

// Loss drops percent % of the packets host h sends and of those it receives, each packet
// drawn at random (nftables' meta random in the bridge's forward path, so the loss is
// silent for both ends, as on a bad link): without the kernel's netem. It applies with or
// without Delay on the same host (the rule names the host's own bridge port and the TAP that
// takes its place under Delay). Heal removes it. It returns an error wrapping ErrNoNftables
// where nftables cannot be used, so a test can skip.
func (n *Net) Loss(h *Host, percent float64) error {
	if percent <= 0 || percent >= 100 {
		return fmt.Errorf("loss on %s: %v %% is not between 0 and 100", h.Name, percent)
	}
	if _, err := exec.LookPath("nft"); err != nil {
		return fmt.Errorf("loss on %s: %w: %w", h.Name, ErrNoNftables, err)
	}
	threshold := int(percent / 100 * 65536)
	// The host's end on the bridge, or the TAP in its place while Delay relays it.
	ports := fmt.Sprintf("{ %q, %q }", h.NS+"b", h.NS+"t")
	script := fmt.Sprintf(`table bridge %[1]s {
	chain through {
		type filter hook forward priority 0;
		iifname %[2]s meta random & 65535 < %[3]d drop
		oifname %[2]s meta random & 65535 < %[3]d drop
	}
}
`, lossTable(h), ports, threshold)
	ctx, cancel := context.WithTimeout(context.Background(), netCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.bridge, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(script)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("loss on %s: %w: %w: %s", h.Name, ErrNoNftables, err, strings.TrimSpace(string(out)))
	}
	n.mu.Lock()
	n.lossy[lossTable(h)] = true
	n.mu.Unlock()
	return nil
}

// lossTable is the nftables table Loss adds for h in the bridge's namespace.
func lossTable(h *Host) string { return "loss_" + h.Name }

// ErrNoNetem reports a kernel without the netem queueing discipline.
var ErrNoNetem = errors.New("testenv: the kernel has no netem queueing discipline (sch_netem)")

// Netem shapes host h's link with tc netem in both directions, e.g. "delay 200ms 50ms loss
// 5%": what h sends (its eth0) and what it receives (its port's egress in the bridge's
// namespace) each get the spec, as Delay does. Heal removes it. It returns ErrNoNetem where
// the kernel lacks netem, so a test can fall back to Delay and Loss.
func (n *Net) Netem(h *Host, spec string) error {
	port := h.NS + "b"
	for _, dev := range [][2]string{{h.NS, "eth0"}, {n.bridge, port}} {
		args := append([]string{"-n", dev[0], "qdisc", "replace", "dev", dev[1], "root", "netem"}, strings.Fields(spec)...)
		err := tcCmd(context.Background(), args...)
		if err != nil && strings.Contains(err.Error(), "qdisc kind is unknown") {
			return fmt.Errorf("netem %s on %s: %w", spec, h.Name, ErrNoNetem)
		}
		if err != nil {
			return fmt.Errorf("netem %s on %s: %w", spec, h.Name, err)
		}
		if dev[0] == n.bridge {
			n.mu.Lock()
			n.shaped[port] = true
			n.mu.Unlock()
		}
	}
	return nil
}

// ipCmd runs one ip command, bounded, returning its output in the error.
func ipCmd(ctx context.Context, args ...string) error { return runNetCmd(ctx, "ip", args...) }

func tcCmd(ctx context.Context, args ...string) error { return runNetCmd(ctx, "tc", args...) }

func runNetCmd(ctx context.Context, bin string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, netCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", bin, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// reserveOctet claims a third octet for this process: a lock file holding "pid prefix", so
// a later run can remove what a crashed one left (sweepNets).
func reserveOctet(prefix string) (int, error) {
	if err := os.MkdirAll(netDir, 0o755); err != nil {
		return 0, fmt.Errorf("net reservations: %w", err)
	}
	used := usedOctets()
	start := int(time.Now().UnixNano() % 250)
	for i := range 250 {
		o := 2 + (start+i)%250
		if used[o] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(netDir, strconv.Itoa(o)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			continue
		}
		_, _ = fmt.Fprintf(f, "%d %s", os.Getpid(), prefix)
		_ = f.Close()
		return o, nil
	}
	return 0, errors.New("no free 10.213.x.0/24 subnet")
}

// usedOctets lists the 10.213.x networks already on an interface of this namespace.
func usedOctets() map[int]bool {
	used := map[int]bool{}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return used
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ip := ipn.IP.To4()
		if fmt.Sprintf("%d.%d", ip[0], ip[1]) == netFirstOctets {
			used[int(ip[2])] = true
		}
	}
	return used
}

// sweepNets removes the networks of test processes that died without their cleanups.
func sweepNets() {
	entries, err := os.ReadDir(netDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		path := filepath.Join(netDir, e.Name())
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		f := strings.Fields(string(b))
		if len(f) != 2 || !strings.HasPrefix(f[1], "ramd") {
			continue
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		if removeNet(f[1]) == nil {
			_ = os.Remove(path)
		}
	}
}

// removeNet deletes every namespace and root-namespace link whose name starts with prefix
// (a host namespace's veth ends and the bridge go with their namespaces).
// goneDevice reports an ip error for a device that no longer exists (iproute2 says it in
// two ways, depending on when the device went).
func goneDevice(err error) bool {
	return strings.Contains(err.Error(), "Cannot find device") || strings.Contains(err.Error(), "No such device")
}

func removeNet(prefix string) error {
	ctx := context.Background()
	var errs []error
	if names, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range names {
			if strings.HasPrefix(e.Name(), prefix) {
				if err := ipCmd(ctx, "netns", "del", e.Name()); err != nil {
					errs = append(errs, err)
				}
			}
		}
	}
	ifs, err := net.Interfaces()
	if err == nil {
		for _, i := range ifs {
			if strings.HasPrefix(i.Name, prefix) {
				// The kernel removes a veth end with its peer's namespace, asynchronously:
				// one listed a moment ago may be gone already.
				if err := ipCmd(ctx, "link", "del", i.Name); err != nil && !goneDevice(err) {
					errs = append(errs, err)
				}
			}
		}
	}
	return errors.Join(errs...)
}
