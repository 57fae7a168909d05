// Package bench measures failover, crash recovery, switchover and handover on real clusters.
// Numbers are reported with b.ReportMetric (min, median, max over the rounds); nothing here
// asserts a time.
package bench

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

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ramd-bench-")
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
