package faults

import (
	"testing"
)

// TestFaults runs each scenario once on an asynchronous cluster (make test): the isolated
// old primary's acknowledged writes after the cut are lost and counted.
func TestFaults(t *testing.T) {
	results := runAll(t, false, 1, false)
	t.Logf("results (asynchronous):\n%s", table(results))
}

// TestFaultsSync isolates the synchronous standby, then the primary, of a synchronous
// cluster once, slows a replica's and the primary's link, and stalls its primary's
// PostgreSQL: no acknowledged write may be lost, and commits must not wait for a standby
// that is cut off.
func TestFaultsSync(t *testing.T) {
	results := runAll(t, true, 1, false, "isolate-sync-standby", "isolate-primary",
		"replica-latency", "primary-latency",
		"stall-postmaster-short", "stall-checkpointer", "stall-postmaster-long")
	t.Logf("results (synchronous):\n%s", table(results))
}
