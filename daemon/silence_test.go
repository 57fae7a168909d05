package daemon

import (
	"testing"
	"time"
)

func TestAnswerCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		state       byte
		silent      bool
		sinceLast   time.Duration
		wantCheck   bool
		wantStopped bool
	}{
		{"sleeping, checked recently: no fork", 'S', false, time.Second, false, false},
		{"running, checked recently: no fork", 'R', false, answerCheckEvery - time.Nanosecond, false, false},
		{"sleeping, last check exactly the period ago", 'S', false, answerCheckEvery, true, false},
		{"sleeping but silent already: is it answering again?", 'S', true, 0, true, false},
		{"stopped by SIGSTOP: silent without a check", 'T', false, 0, false, true},
		{"traced: silent without a check", 't', true, time.Hour, false, true},
		{"uninterruptible sleep: checked every cycle", 'D', false, 0, true, false},
		{"state unknown (no /proc): checked every cycle", 0, false, 0, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			check, stopped := answerCheck(tt.state, tt.silent, tt.sinceLast)
			if check != tt.wantCheck || stopped != tt.wantStopped {
				t.Errorf("answerCheck(%q, %v, %s) = %v, %v; want %v, %v", tt.state, tt.silent, tt.sinceLast, check, stopped, tt.wantCheck, tt.wantStopped)
			}
		})
	}
}
