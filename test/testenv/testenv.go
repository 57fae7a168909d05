package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
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

// FreePort returns a TCP and UDP port on 127.0.0.1, below the ephemeral range and reserved
// for this test process (see reservePort).
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := reservePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
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

// Binary finds an executable on PATH, or skips the test (fails under RAMD_TEST_REQUIRE_REAL=1)
// naming the Debian package that provides it.
func Binary(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "%s not found (Debian package %s; make deps installs it)", name, pkg)
	}
	return p
}
