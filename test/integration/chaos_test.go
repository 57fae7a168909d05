//go:build chaos

package integration

import "testing"

// The chaos runs (make chaos): 20 SIGKILL failovers per synchronous mode, every acknowledged
// row checked after each one.

func TestChaosSyncFirst1of2(t *testing.T) { syncFailovers(t, syncRounds(20), 3, "on", 1, 1, "FIRST 1") }

func TestChaosSyncAny1of2(t *testing.T) { syncFailovers(t, syncRounds(20), 3, "quorum", 1, 2, "ANY 1") }

func TestChaosSyncAny2of3(t *testing.T) { syncFailovers(t, syncRounds(20), 4, "quorum", 2, 3, "ANY 2") }
