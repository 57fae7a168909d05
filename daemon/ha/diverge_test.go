package ha

import "testing"

func TestDiverged(t *testing.T) {
	t.Parallel()
	// The leader is on timeline 4: 1 ended at 1000, 2 at 2000, 3 at 3000.
	history := []Fork{{Timeline: 1, LSN: 1000}, {Timeline: 2, LSN: 2000}, {Timeline: 3, LSN: 3000}}
	tests := []struct {
		name     string
		tl       int
		lsn      uint64
		leaderTL int
		history  []Fork
		want     bool
	}{
		{"same timeline", 4, 5000, 4, history, false},
		{"ahead of the leader's timeline: not this rule's business", 5, 5000, 4, history, false},
		{"parent timeline, before the fork", 3, 2500, 4, history, false},
		{"parent timeline, exactly at the fork", 3, 3000, 4, history, false},
		{"parent timeline, past the fork", 3, 3001, 4, history, true},
		{"grandparent timeline, past its fork", 1, 1500, 4, history, true},
		{"grandparent timeline, before its fork", 1, 900, 4, history, false},
		{"a timeline the leader's history skips", 2, 1500, 4, []Fork{{Timeline: 1, LSN: 1000}, {Timeline: 3, LSN: 3000}}, true},
		{"unknown position", 3, 0, 4, history, false},
		{"unknown local timeline", 0, 5000, 4, history, false},
		{"leader's timeline not read", 3, 5000, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, why := Diverged(tt.tl, tt.lsn, tt.leaderTL, tt.history)
			if got != tt.want {
				t.Errorf("Diverged(%d, %d, %d) = %v (%s), want %v", tt.tl, tt.lsn, tt.leaderTL, got, why, tt.want)
			}
			if got && why == "" {
				t.Error("divergence without a reason")
			}
		})
	}
}
