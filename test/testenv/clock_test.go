package testenv

import (
	"testing"
	"time"
)

// TestStepClock steps the machine's wall clock an hour each way and back (opt-in: see
// StepClock): after each step the wall clock is that far from the true time, and after
// RestoreClock within a few milliseconds of it, the true time being measured on the
// monotonic clock.
func TestStepClock(t *testing.T) {
	wall0, mono0, err := readClocks()
	if err != nil {
		t.Fatal(err)
	}
	offset := func() time.Duration {
		t.Helper()
		wall, mono, err := readClocks()
		if err != nil {
			t.Fatal(err)
		}
		return wall.Sub(wall0) - time.Duration(mono-mono0)
	}
	near := func(got, want time.Duration) bool {
		return got > want-50*time.Millisecond && got < want+50*time.Millisecond
	}
	for _, step := range []time.Duration{time.Hour, -time.Hour} {
		StepClock(t, step)
		if got := offset(); !near(got, step) {
			t.Fatalf("after a step of %s the wall clock is %s from the true time", step, got)
		}
	}
	if err := RestoreClock(); err != nil {
		t.Fatal(err)
	}
	if got := offset(); !near(got, 0) {
		t.Fatalf("after RestoreClock the wall clock is %s from the true time", got)
	}
	if err := RestoreClock(); err != nil { // nothing on record: nothing to do
		t.Fatalf("RestoreClock with nothing on record: %v", err)
	}
}
