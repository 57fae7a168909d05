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
	if t.PGUnresponsiveTimeout < 0 {
		return fmt.Errorf("postgres_unresponsive_timeout must not be negative, got %s", t.PGUnresponsiveTimeout)
	}
	if t.PGUnresponsiveTimeout > 0 && t.PGUnresponsiveTimeout <= t.TTL+t.LoopWait {
		return fmt.Errorf("postgres_unresponsive_timeout (%s) must be 0 (off) or above ttl (%s) + loop_wait (%s) = %s: a server silent for one cycle only is no reason to hand over",
			t.PGUnresponsiveTimeout, t.TTL, t.LoopWait, t.TTL+t.LoopWait)
	}
	if slack := t.leaderSlack(); slack < MinLeaderSlack {
		return fmt.Errorf("ttl (%s) - fence margin (%s) - loop_wait (%s) = %s is below %s: a leader's cycle shares it between its status read, its Consul calls and the failsafe round",
			t.TTL, t.FenceMargin, t.LoopWait, slack, MinLeaderSlack)
	}
	return nil
}

// MinLeaderSlack is the least time a leader's cycle may have between its wake-up and its
// fencing deadline (TTL - FenceMargin - LoopWait): the status read, the Consul calls and the
// failsafe round share it (LeaderSteps).
const MinLeaderSlack = 100 * time.Millisecond

// leaderSlack is the time between a leader's wake-up (LoopWait after its last confirmation
// began) and its fencing deadline (FenceAfter after it).
func (t Timings) leaderSlack() time.Duration { return t.FenceAfter() - t.LoopWait }

// maxFailsafeBudget caps the failsafe round: a member on the same network answers in
// milliseconds, and a longer round only takes time from the heartbeat.
const maxFailsafeBudget = 500 * time.Millisecond

// FailsafeBudget is the part of a leader cycle's slack kept for the failsafe round, the last
// step before the fencing deadline: a third of the slack, at most maxFailsafeBudget (333 ms
// at the defaults). The Consul calls before it (reads and heartbeat) must end that long
// before the deadline, so a Consul that hangs instead of failing (an agent cut from its
// servers waits on its RPC) still leaves the members time to confirm the leader.
func (t Timings) FailsafeBudget() time.Duration { return min(t.leaderSlack()/3, maxFailsafeBudget) }

// armSlack is how long before the fencing deadline a confirmation must be complete, so
// the fence guard learns the new deadline before the old one passes (a pipe write, and the
// guard scheduled on a loaded machine): a fifth of the failsafe budget.
func (t Timings) armSlack() time.Duration { return t.FailsafeBudget() / 5 }

// Steps are the deadlines of one leader cycle's steps, monotonic times derived from one clock
// reading at the cycle's start and the fencing deadline then in force. A zero Steps bounds
// nothing (a node that does not hold the lock has no fencing deadline).
type Steps struct {
	// PG: the status read of the local PostgreSQL ends by then.
	PG time.Duration
	// Consul: every call before the confirmation (the cycle's reads, the heartbeat) ends by
	// then; so does the rest of the observation (positions, synchronous settings).
	Consul time.Duration
	// Failsafe: the failsafe round's requests end by then; the confirmation it brings
	// counts from the round's start.
	Failsafe time.Duration
}

// LeaderSteps bounds the steps of a leader cycle that starts at now with its fencing deadline
// at deadline (Lock.Deadline). With failsafe mode on, the heartbeat gives the failsafe round
// FailsafeBudget before the deadline; without it, the heartbeat may use the time up to the
// deadline. Every confirmation completes armSlack before the deadline. The status read gets
// PGBudget but never more than the Consul steps. A cycle that starts late (a previous
// cycle's work ran long) gets what is left: a step whose deadline has passed fails at once,
// and the next step still gets its share. A cycle that starts at or past the deadline has
// nothing left to protect (the lock is lost; the guard has fired or fires now) and is not
// bounded: bounds already expired would fail every call of every cycle, and the node could
// never read Consul or its stopped server again.
func (t Timings) LeaderSteps(now, deadline time.Duration, failsafe bool) Steps {
	if now >= deadline {
		return Steps{}
	}
	s := Steps{Failsafe: deadline - t.armSlack(), Consul: deadline - t.armSlack()}
	if failsafe {
		s.Consul = deadline - t.FailsafeBudget()
	}
	s.PG = min(now+t.PGBudget(), s.Consul)
	return s
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
