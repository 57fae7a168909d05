package daemon

import (
	"testing"
	"time"
)

func TestXactRates(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name                 string
		prev, next           xactReading
		wantCommit, wantRoll float64
	}{
		{"first reading", xactReading{}, xactReading{at: t0, commit: 100}, 0, 0},
		{"two seconds", xactReading{at: t0, commit: 100, rollback: 4}, xactReading{at: t0.Add(2 * time.Second), commit: 300, rollback: 6}, 100, 1},
		{"no time passed", xactReading{at: t0, commit: 1}, xactReading{at: t0, commit: 5}, 0, 0},
		{"statistics reset", xactReading{at: t0, commit: 500}, xactReading{at: t0.Add(time.Second), commit: 3}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, r := tt.prev.rates(tt.next)
			if c != tt.wantCommit || r != tt.wantRoll {
				t.Errorf("rates = %v, %v; want %v, %v", c, r, tt.wantCommit, tt.wantRoll)
			}
		})
	}
}
