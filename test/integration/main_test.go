// Package integration runs real ramd clusters (real Consul agent, real PostgreSQL) and causes
// real faults: SIGKILL, SIGSTOP, SIGTERM, a stopped Consul.
package integration

import (
	"fmt"
	"os"
	"testing"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

var (
	ramdBin string
	shared  *testenv.Consul
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ramd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if ramdBin, err = harness.BuildRamd(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, stop, err := testenv.StartConsulMain(testenv.ConsulOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	shared = c
	return m.Run()
}

// needReal skips (or fails under RAMD_TEST_REQUIRE_REAL=1) when Consul or PostgreSQL is
// missing, and returns the shared agent's address.
func needReal(t *testing.T) string {
	t.Helper()
	c := testenv.SharedConsul(t, shared)
	testenv.PGBinDir(t)
	return c.HTTPAddr
}
