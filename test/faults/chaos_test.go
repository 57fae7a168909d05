//go:build chaos

package faults

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"

	"github.com/ramd-project/ramd/test/testenv"
)

// TestChaosFaults repeats every scenario RAMD_CHAOS_RUNS times (default 20) with random
// phases, on asynchronous and on synchronous clusters, and prints a table per mode. The runs
// of a mode are shared among RAMD_CHAOS_CLUSTERS clusters of it (default 2), and all of them
// run at once, each in its own network namespaces: 20 runs of every scenario then take about
// a quarter of the time, and each cluster runs beside three others' load.
func TestChaosFaults(t *testing.T) {
	n := chaosRuns(t)
	clusters := chaosClusters(t)
	// A clock step moves the whole machine's clock: with it, one cluster at a time.
	stepClock := os.Getenv(testenv.ClockStepOptIn) == "1"
	if clusters > 1 && stepClock {
		t.Fatalf("%s=1 steps the whole machine's clock: run it with RAMD_CHAOS_CLUSTERS=1", testenv.ClockStepOptIn)
	}
	modes := []struct {
		name string
		sync bool
	}{{"async", false}, {"sync", true}}
	var mu sync.Mutex
	results := map[string][]result{}
	t.Run("clusters", func(t *testing.T) {
		for _, mode := range modes {
			for c := range clusters {
				// Cluster c of the mode runs every scenario runs times: its share of n.
				runs := n / clusters
				if c < n%clusters {
					runs++
				}
				if runs == 0 {
					continue
				}
				t.Run(fmt.Sprintf("%s-%d", mode.name, c+1), func(t *testing.T) {
					if !stepClock {
						t.Parallel()
					}
					r := runAll(t, mode.sync, runs, true)
					mu.Lock()
					defer mu.Unlock()
					results[mode.name] = append(results[mode.name], r...)
				})
			}
		}
	})
	for _, mode := range modes {
		fmt.Printf("fault scenarios, %s cluster, %d runs each on %d clusters:\n%s\n", mode.name, n, clusters, table(results[mode.name]))
	}
}

// chaosClusters is RAMD_CHAOS_CLUSTERS, the clusters per mode that share the runs (1 to 4,
// default 2).
func chaosClusters(t *testing.T) int { return envCount(t, "RAMD_CHAOS_CLUSTERS", 2, 4) }

// chaosRuns is RAMD_CHAOS_RUNS, the repetitions per scenario of make chaos (default 20).
func chaosRuns(t *testing.T) int { return envCount(t, "RAMD_CHAOS_RUNS", 20, 10000) }

// envCount reads the count in variable name: def when unset, else 1 to most.
func envCount(t *testing.T, name string, def, most int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		t.Fatalf("%s=%q: want a whole number from 1 to %d", name, v, most)
	}
	return n
}
