package ha

import (
	"testing"
	"time"
)

func TestSilence(t *testing.T) {
	t.Parallel()
	const s = time.Second
	running := Silence{PID: 7, Since: 100 * s, Silent: true}
	tests := []struct {
		name     string
		prev     Silence
		pid      int
		answered bool
		now      time.Duration
		want     Silence
		wantFor  time.Duration
	}{
		{"answering stays answering", Silence{}, 7, true, 100 * s, Silence{}, 0},
		{"first silent cycle starts the count at the cycle's reading", Silence{}, 7, false, 100 * s, running, 0},
		{"still silent: the count goes on", running, 7, false, 110 * s, running, 10 * s},
		{"an answer ends the silence", running, 7, true, 110 * s, Silence{}, 0},
		{"a stopped server is not silent", running, 0, false, 110 * s, Silence{}, 0},
		{"a new postmaster starts a new count", running, 8, false, 110 * s, Silence{PID: 8, Since: 110 * s, Silent: true}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.prev.Next(tt.pid, tt.answered, tt.now)
			if got != tt.want {
				t.Fatalf("Next(%d, %v, %s) = %+v, want %+v", tt.pid, tt.answered, tt.now, got, tt.want)
			}
			if f := got.For(tt.now); f != tt.wantFor {
				t.Errorf("For(%s) = %s, want %s", tt.now, f, tt.wantFor)
			}
		})
	}
}

func TestUnresponsive(t *testing.T) {
	t.Parallel()
	const s = time.Second
	tests := []struct {
		name      string
		limit     time.Duration
		silentFor time.Duration
		want      bool
	}{
		{"answering", 30 * s, 0, false},
		{"below the limit", 30 * s, 29 * s, false},
		{"exactly at the limit", 30 * s, 30 * s, false},
		{"just past the limit", 30 * s, 30*s + time.Nanosecond, true},
		{"off", 0, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tm := timings
			tm.PGUnresponsiveTimeout = tt.limit
			if got := tm.Unresponsive(tt.silentFor); got != tt.want {
				t.Errorf("Unresponsive(%s) with limit %s = %v, want %v", tt.silentFor, tt.limit, got, tt.want)
			}
		})
	}
}
