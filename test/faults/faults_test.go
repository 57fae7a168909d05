package faults

import (
	"testing"
)

// TestFaults runs each scenario once on an asynchronous cluster (make test).
func TestFaults(t *testing.T) {
	results := runAll(t, false, 1, false)
	t.Logf("results:\n%s", table(results))
}
