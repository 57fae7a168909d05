// Package integration runs real ramd clusters (real Consul agent, real PostgreSQL) and causes
// real faults: SIGKILL, SIGSTOP, SIGTERM, a stopped Consul.
package integration

import (
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
	os.Exit(harness.Main(m, func(bin string, c *testenv.Consul) { ramdBin, shared = bin, c }))
}

// needReal skips (or fails under RAMD_TEST_REQUIRE_REAL=1) when Consul or PostgreSQL is
// missing, and returns the shared agent's address.
func needReal(t *testing.T) string {
	t.Helper()
	c := testenv.SharedConsul(t, shared)
	testenv.PGBinDir(t)
	return c.HTTPAddr
}
