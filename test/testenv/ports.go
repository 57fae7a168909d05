package testenv

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Test servers get ports below the kernel's ephemeral range, so an outgoing connection can
// never take the port of a server that stops and starts again (a postmaster restarted after
// a crash), and each port is reserved across the test processes of one run with a lock file
// holding the owner's pid (go test runs packages in parallel processes).
const portBase = 20000

func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= portBase+1000 {
		return 32768
	}
	return n
}

var portDir = filepath.Join(os.TempDir(), "ramd-test-ports")

// reservePort finds a port free for TCP and UDP on 127.0.0.1, reserved for this process.
func reservePort() (int, error) {
	if err := os.MkdirAll(portDir, 0o755); err != nil {
		return 0, fmt.Errorf("port reservations: %w", err)
	}
	span := ephemeralLow() - portBase
	start := rand.IntN(span)
	for i := range 2000 {
		p := portBase + (start+i)%span
		if !claim(p) {
			continue
		}
		if bindable(p) {
			return p, nil
		}
	}
	return 0, errors.New("no free port found in 2000 tries")
}

// claim takes the reservation of port p, reclaiming it from a dead process.
func claim(p int) bool {
	path := filepath.Join(portDir, strconv.Itoa(p))
	for range 2 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			_, _ = f.WriteString(strconv.Itoa(os.Getpid()))
			_ = f.Close()
			return true
		}
		b, rerr := os.ReadFile(path)
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if rerr != nil || perr != nil || pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			return false
		}
		_ = os.Remove(path) // the owner is gone
	}
	return false
}

func bindable(p int) bool {
	l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	lu, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		_ = l.Close()
		return false
	}
	_ = lu.Close()
	_ = l.Close()
	return true
}
