//go:build chaos

package faults

import (
	"fmt"
	"os"
	"strconv"
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

// chaosRuns is RAMD_CHAOS_RUNS, the repetitions per scenario of make chaos (default 20).
func chaosRuns(t *testing.T) int {
	t.Helper()
	v := os.Getenv("RAMD_CHAOS_RUNS")
	if v == "" {
		return 20
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("RAMD_CHAOS_RUNS=%q: want a positive integer", v)
	}
	return n
}
