package harness

import (
	"fmt"
	"os"
	"testing"

	"github.com/ramd-project/ramd/test/testenv"
)

// Main is the TestMain of a package that runs clusters: it builds ramd once, starts one
// Consul agent shared by the package's tests (each test uses its own key prefix), runs the
// tests and stops everything. setup receives the binary and the agent (nil when Consul is
// missing; tests then skip or, under RAMD_TEST_REQUIRE_REAL=1, fail).
func Main(m *testing.M, setup func(bin string, consul *testenv.Consul)) int {
	dir, err := os.MkdirTemp("", "ramd-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := BuildRamd(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, stop, err := testenv.StartConsulMain(testenv.ConsulOptions{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer stop()
	setup(bin, c)
	return m.Run()
}
