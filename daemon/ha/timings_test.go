package ha

import (
	"testing"
	"time"
)

func TestLeaderSteps(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	s := time.Second
	def := Timings{TTL: 3 * s, LoopWait: s, RetryTimeout: s, FenceMargin: s}
	long := Timings{TTL: 30 * s, LoopWait: 10 * s, RetryTimeout: 10 * s, FenceMargin: 5 * s}
	tight := Timings{TTL: 1100 * ms, LoopWait: 100 * ms, RetryTimeout: 100 * ms, FenceMargin: 900 * ms}
	// The leader's last confirmation began at 10 s: its deadline is 10 s + FenceAfter.
	const confirmed = 10 * time.Second
	tests := []struct {
		name     string
		t        Timings
		now      time.Duration
		failsafe bool
		want     Steps
	}{
		{"defaults, on time: the heartbeat leaves the failsafe round a third of the second", def, 11 * s, true,
			Steps{PG: 11500 * ms, Consul: 12*s - 333333333, Failsafe: 12*s - 66666666}},
		{"defaults, failsafe off: the heartbeat may use the time up to the guard", def, 11 * s, false,
			Steps{PG: 11500 * ms, Consul: 12*s - 66666666, Failsafe: 12*s - 66666666}},
		{"defaults, late start: the read gets only what the Consul step has", def, 11600 * ms, true,
			Steps{PG: 12*s - 333333333, Consul: 12*s - 333333333, Failsafe: 12*s - 66666666}},
		{"defaults, past the Consul step: the failsafe round still has its share", def, 11800 * ms, true,
			Steps{PG: 12*s - 333333333, Consul: 12*s - 333333333, Failsafe: 12*s - 66666666}},
		{"at the deadline: the lock is lost, nothing is bounded", def, 12 * s, true, Steps{}},
		{"past the deadline: nothing is bounded", def, 15 * s, false, Steps{}},
		{"long ttl: the failsafe round is capped", long, 20 * s, true,
			Steps{PG: 27500 * ms, Consul: 35*s - 500*ms, Failsafe: 35*s - 100*ms}},
		{"tight: a third of 100 ms", tight, 10100 * ms, true,
			Steps{PG: 10200*ms - 33333333, Consul: 10200*ms - 33333333, Failsafe: 10200*ms - 6666666}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.t.Validate(); err != nil {
				t.Fatalf("invalid timings: %v", err)
			}
			deadline := Lock{Held: true, ConfirmedAt: confirmed}.Deadline(tt.t, 0)
			got := tt.t.LeaderSteps(tt.now, deadline, tt.failsafe)
			if got != tt.want {
				t.Fatalf("LeaderSteps(%s, %s, %v) = %+v, want %+v", tt.now, deadline, tt.failsafe, got, tt.want)
			}
			if tt.now >= deadline {
				return
			}
			// What matters: each step ends before the next, and every confirmation is complete
			// before the fence guard's deadline.
			if got.PG > got.Consul || got.Consul > got.Failsafe || got.Failsafe >= deadline {
				t.Errorf("steps out of order: read %s, consul %s, failsafe %s, deadline %s", got.PG, got.Consul, got.Failsafe, deadline)
			}
			// A Consul that hangs to the end of its step still leaves the failsafe round its
			// budget (less the time to re-arm the guard).
			if tt.failsafe && got.Failsafe-got.Consul < tt.t.FailsafeBudget()*4/5 {
				t.Errorf("failsafe round gets %s after the Consul step, want >= %s", got.Failsafe-got.Consul, tt.t.FailsafeBudget()*4/5)
			}
		})
	}
}

func TestFailsafeBudgetWithValidTimings(t *testing.T) {
	t.Parallel()
	const ms = time.Millisecond
	tests := []struct {
		name string
		t    Timings
		ok   bool
		want time.Duration
	}{
		{"defaults", Timings{TTL: 3000 * ms, LoopWait: 1000 * ms, RetryTimeout: 1000 * ms, FenceMargin: 1000 * ms}, true, 333333333},
		{"shorter ttl", Timings{TTL: 2000 * ms, LoopWait: 500 * ms, RetryTimeout: 500 * ms, FenceMargin: 1000 * ms}, true, 166666666},
		{"least slack allowed", Timings{TTL: 1100 * ms, LoopWait: 100 * ms, RetryTimeout: 100 * ms, FenceMargin: 900 * ms}, true, 33333333},
		{"slack below the least", Timings{TTL: 1050 * ms, LoopWait: 20 * ms, RetryTimeout: 20 * ms, FenceMargin: 1000 * ms}, false, 10 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.t.Validate(); (err == nil) != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if got := tt.t.FailsafeBudget(); got != tt.want {
				t.Errorf("FailsafeBudget() = %s, want %s", got, tt.want)
			}
		})
	}
}
