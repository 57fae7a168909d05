package ha

import (
	"fmt"
	"time"
)

// MinFenceMargin is the smallest FenceMargin accepted: the fence guard needs a few
// milliseconds to stop PostgreSQL and two hosts' monotonic clocks may run at slightly
// different rates; half a second covers both with room to spare.
const MinFenceMargin = 500 * time.Millisecond

// Validate checks how the timings relate. The fencing inequality:
//
//	leader stops writes at   S + TTL - FenceMargin   (S = start of its last good heartbeat)
//	a replica may race at    R + TTL                 (R = when it saw that heartbeat, R >= S)
//
// so the old leader is fenced at least FenceMargin before any replica can take the lock.
// For this to hold without flapping, a leader must get at least one full cycle of Consul
// calls before its deadline: LoopWait + RetryTimeout <= TTL - FenceMargin.
func (t Timings) Validate() error {
	if t.LoopWait <= 0 {
		return fmt.Errorf("loop_wait must be positive, got %s", t.LoopWait)
	}
	if t.RetryTimeout <= 0 {
		return fmt.Errorf("retry_timeout must be positive, got %s", t.RetryTimeout)
	}
	if t.FenceMargin < MinFenceMargin {
		return fmt.Errorf("fence margin %s is below the minimum %s", t.FenceMargin, MinFenceMargin)
	}
	if t.FenceMargin >= t.TTL {
		return fmt.Errorf("fence margin %s must be below ttl %s", t.FenceMargin, t.TTL)
	}
	if t.LoopWait+t.RetryTimeout > t.FenceAfter() {
		return fmt.Errorf("loop_wait (%s) + retry_timeout (%s) must not exceed ttl (%s) - fence margin (%s) = %s: a leader must get a full cycle of Consul calls before it fences itself",
			t.LoopWait, t.RetryTimeout, t.TTL, t.FenceMargin, t.FenceAfter())
	}
	return nil
}

// FenceWindow is how long after the start of a confirmation the leader may take writes:
// TTL - FenceMargin, but never more than announced - FenceMargin, where announced is the TTL
// the replicas were last told in the status key (0: none told yet). A leader whose TTL grew
// keeps the old window until a heartbeat has announced the new one, so no replica that
// still counts by the old TTL can race while it writes.
func (t Timings) FenceWindow(announced time.Duration) time.Duration {
	w := t.FenceAfter()
	if announced > 0 {
		w = min(w, announced-t.FenceMargin)
	}
	return max(w, 0)
}

// RaceAfter is how long after the last proof of the leader's life a replica waits before it
// may race: its own TTL, or the TTL the leader announced in that heartbeat when it is longer.
// With FenceWindow this keeps the fencing inequality when members run different timings
// (a change spreading): the leader stops writes at S + announced - FenceMargin and a replica
// races no earlier than R + max(TTL, announced) with R >= S.
func (t Timings) RaceAfter(announced time.Duration) time.Duration { return max(t.TTL, announced) }

// MinPGBudget is the least time a cycle gives PostgreSQL to answer its status queries.
const MinPGBudget = 100 * time.Millisecond

// PGBudget bounds a cycle's status read of the local PostgreSQL. A leader's cycle starts
// LoopWait after its last heartbeat and must write the next one before its fencing deadline,
// FenceAfter after that heartbeat; the slack between the two (at least RetryTimeout, by
// Validate) is shared by the status read and the Consul calls. The read gets half of it
// (at most RetryTimeout, at least MinPGBudget): a server too busy to answer in time (a
// checkpoint under a backup's reads) leaves its role unknown for one cycle, and the leader
// keeps its lock with a heartbeat instead of running into its own fence.
func (t Timings) PGBudget() time.Duration {
	slack := t.FenceAfter() - t.LoopWait
	return min(max(slack/2, MinPGBudget), max(t.RetryTimeout, MinPGBudget))
}
