//go:build chaos

package faults

import (
	"fmt"
	"testing"
)

// TestChaosFaults repeats every scenario RAMD_CHAOS_RUNS times (default 20) with random
// phases, on an asynchronous and on a synchronous cluster, and prints the table.
func TestChaosFaults(t *testing.T) {
	n := chaosRuns(t)
	for _, mode := range []struct {
		name string
		sync bool
	}{{"async", false}, {"sync", true}} {
		t.Run(mode.name, func(t *testing.T) {
			results := runAll(t, mode.sync, n, true)
			fmt.Printf("fault scenarios, %s cluster, %d runs each:\n%s\n", mode.name, n, table(results))
		})
	}
}
