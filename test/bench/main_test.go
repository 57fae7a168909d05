// Package bench measures failover, crash recovery, switchover and handover on real clusters.
// Numbers are reported with b.ReportMetric (min, median, max over the rounds); nothing here
// asserts a time.
package bench

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
