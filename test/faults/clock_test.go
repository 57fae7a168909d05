package faults

import (
	"testing"
	"time"

	"github.com/ramd-project/ramd/test/harness"
	"github.com/ramd-project/ramd/test/testenv"
)

// clockStepSize is how far clockStep moves the wall clock each way: beyond every timing of
// ramd and Consul, and beyond PostgreSQL's wal_sender_timeout and wal_receiver_timeout
// (60 s), which PostgreSQL measures on the wall clock.
const (
	clockStepSize = 90 * time.Second
	clockStepHold = 8 * time.Second
)

// clockStep steps the wall clock forward by clockStepSize, then from the true time back by
// as much, then puts it right, holding each for clockStepHold. ramd's deadlines (the lock's
// freshness, the fencing deadline, the guard) run on the monotonic clock: no failover, no
// fencing, no write lost. The wall clock cannot be stepped for one namespace alone, so the
// whole machine's is (testenv.StepClock, opt-in with RAMD_FAULTS_CLOCK_STEP=1; skipped
// otherwise, and never part of make test, where other packages run at the same time).
func clockStep(t *testing.T, _ *topology, _ *harness.Node, hold func(time.Duration)) faultMarks {
	t.Helper()
	m := faultMarks{start: time.Now()}
	testenv.StepClock(t, clockStepSize)
	t.Logf("wall clock stepped forward by %s", clockStepSize)
	hold(clockStepHold)
	testenv.StepClock(t, -clockStepSize)
	t.Logf("wall clock stepped back by %s from the true time", clockStepSize)
	hold(clockStepHold)
	if err := testenv.RestoreClock(); err != nil {
		t.Fatal(err)
	}
	m.heal = time.Now()
	return m
}
