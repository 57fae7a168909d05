package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RequireReal reports whether the environment demands real binaries (CI sets
// RAMD_TEST_REQUIRE_REAL=1): a missing binary then fails the test instead of skipping it.
func RequireReal() bool {
	v := os.Getenv("RAMD_TEST_REQUIRE_REAL")
	return v == "1" || strings.EqualFold(v, "true")
}

// Missing skips the test because a real binary is missing, or fails it when RequireReal.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if RequireReal() {
		t.Fatalf("RAMD_TEST_REQUIRE_REAL=1 and %s", msg)
	}
	t.Skipf("skipping: %s (set RAMD_TEST_REQUIRE_REAL=1 to fail instead)", msg)
}

var portCounter atomic.Int32

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Ports are drawn from
// a per-process rotating window so that parallel tests rarely race for the same one.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 20000 + int(portCounter.Add(1)+int32(os.Getpid()%400)*50)%30000
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		lu, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			_ = l.Close()
			continue
		}
		_ = lu.Close()
		_ = l.Close()
		return p
	}
	t.Fatal("no free port found in 200 tries")
	return 0
}

var nonKey = regexp.MustCompile(`[^a-z0-9-]+`)

// KeyPrefix returns a Consul namespace unique to the test, derived from its name, so tests
// can share one agent.
func KeyPrefix(t testing.TB) string {
	t.Helper()
	name := nonKey.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return fmt.Sprintf("t%d-%s", time.Now().UnixNano()%1_000_000, strings.Trim(name, "-"))
}

// Eventually calls f every interval until it returns nil or timeout passes, then fails the
// test with f's last error. It is the only way tests wait for state.
func Eventually(t testing.TB, timeout, every time.Duration, f func() error) {
	t.Helper()
	if err := Poll(timeout, every, f); err != nil {
		t.Fatalf("condition not met within %s: %v", timeout, err)
	}
}

// Poll calls f every interval until it returns nil or timeout passes; it returns f's last
// error (wrapped) on timeout. Bounded in time and count.
func Poll(timeout, every time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	var last error
	for i := 0; ; i++ {
		if last = f(); last == nil {
			return nil
		}
		if time.Now().After(deadline) || i > 1_000_000 {
			break
		}
		time.Sleep(every)
	}
	if last == nil {
		last = errors.New("timed out")
	}
	return fmt.Errorf("after %s: %w", timeout, last)
}
