package daemon

import "testing"

// TestWasPrimary: the pg_control states of a primary's data directory, crash recovery
// included, against a standby's.
func TestWasPrimary(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]bool{
		"in production":         true,
		"shut down":             true,
		"shutting down":         true,
		"in crash recovery":     true,
		"in archive recovery":   false,
		"shut down in recovery": false,
		"starting up":           false,
		"":                      false,
	} {
		if got := wasPrimary(state); got != want {
			t.Errorf("wasPrimary(%q) = %v, want %v", state, got, want)
		}
	}
}
