package ha

import "time"

// Leadership is what a node remembers of the leader from one cycle to the next: the proof of
// its life (when it was last seen), who it was, and the TTL it announced. The loop keeps one
// value, replaces it with Saw after each successful Consul read and with ConfirmedBy after a
// direct confirmation, and reads the rules below; nothing else recomputes them.
type Leadership struct {
	// LastLeader is the last leader name seen ("" when never).
	LastLeader string
	// KeyPresent and KeySession are the leader key as last read; StatusIndex is the status
	// key's modify index then (0 when absent).
	KeyPresent  bool
	KeySession  string
	StatusIndex uint64
	// SeenAt is the monotonic time of the last proof that the leader was alive.
	SeenAt time.Duration
	// AnnouncedTTL is the TTL of the last heartbeat seen (0 when none announced one).
	AnnouncedTTL time.Duration
}

// Sighting is what one cycle read of the leader in Consul.
type Sighting struct {
	Leader LeaderKey
	// StatusIndex is the status key's modify index (0 when the key is absent).
	StatusIndex uint64
	// AnnouncedTTL is the TTL written in the status key (0 when none).
	AnnouncedTTL time.Duration
}

// Saw returns the memory after a successful read at now. Proof that a leader was alive no
// earlier than the start of the write: a new heartbeat (the status key changed; it is written
// only while the lock is held) or a new holder acquiring the leader key. A deletion proves
// nothing (an expired or destroyed session deletes the key too), so neither a vanished status
// key nor a vanished leader key refreshes SeenAt. A node that never saw a leader counts from
// its first read, so it waits a full TTL before racing.
func (l Leadership) Saw(s Sighting, now time.Duration) Leadership {
	newHolder := s.Leader.Present && (!l.KeyPresent || s.Leader.Session != l.KeySession)
	heartbeat := s.StatusIndex != 0 && s.StatusIndex != l.StatusIndex
	if heartbeat || newHolder || l.SeenAt == 0 {
		l.SeenAt = now
	}
	l.StatusIndex, l.KeyPresent, l.KeySession = s.StatusIndex, s.Leader.Present, s.Leader.Session
	if s.Leader.Present && s.Leader.Name != "" {
		l.LastLeader = s.Leader.Name
	}
	if s.AnnouncedTTL > 0 {
		l.AnnouncedTTL = s.AnnouncedTTL
	}
	return l
}

// ConfirmedBy returns the memory after the leader named name confirmed itself directly at at
// (failsafe): it counts as a heartbeat seen then, but only from the leader this node knows.
func (l Leadership) ConfirmedBy(name string, at time.Duration) Leadership {
	if name != "" && name == l.LastLeader && at > l.SeenAt {
		l.SeenAt = at
	}
	return l
}

// RaceAt is the monotonic time from which this node may race for the lock if no new proof of
// the leader's life arrives: SeenAt + RaceAfter (the longer of its TTL and the announced one).
func (l Leadership) RaceAt(t Timings) time.Duration { return l.SeenAt + t.RaceAfter(l.AnnouncedTTL) }

// Stale reports whether no proof of the leader's life came for the race interval.
func (l Leadership) Stale(now time.Duration, t Timings) bool { return now >= l.RaceAt(t) }

// Lock is a leader's memory of its own lock: whether it holds it and when its last
// confirmation (heartbeat, acquisition or failsafe round) started.
type Lock struct {
	Held        bool
	ConfirmedAt time.Duration
}

// Deadline is when the leader must stop taking writes without a new confirmation:
// ConfirmedAt + FenceWindow(announced). The fence guard is armed with it.
func (k Lock) Deadline(t Timings, announced time.Duration) time.Duration {
	return k.ConfirmedAt + t.FenceWindow(announced)
}

// WorkUntil is when a leader's Consul calls after its confirmation (publishing its record,
// routing) must end, as seen at now: when its next heartbeat is due, ConfirmedAt + LoopWait,
// so a Consul that hangs after the confirmation does not delay the next one. 0 (no bound)
// for a lock not held, never confirmed, or past its deadline (nothing left to protect, and a
// bound already expired would keep the record from ever being written).
func (k Lock) WorkUntil(now time.Duration, t Timings, announced time.Duration) time.Duration {
	if !k.Valid(now, t, announced) {
		return 0
	}
	return k.ConfirmedAt + t.LoopWait
}

// Valid reports whether the leader may still act as leader at now: it holds the lock, has
// confirmed it, and its fencing deadline has not passed.
func (k Lock) Valid(now time.Duration, t Timings, announced time.Duration) bool {
	return k.Held && k.ConfirmedAt > 0 && now < k.Deadline(t, announced)
}

// Wake are the facts the next wake-up depends on.
type Wake struct {
	// End is the monotonic time the cycle ended.
	End     time.Duration
	Timings Timings
	Self    string
	// HoldsKey is true when the leader key names this node with its session.
	HoldsKey bool
	Lock     Lock
	// Failsafe is true while the leader lives on member confirmations; FailsafeInterval is
	// then the longest wait.
	Failsafe         bool
	FailsafeInterval time.Duration
	// Unconfirmed is true when the cycle's failsafe round failed while the lock is held: the
	// next round waits FailsafeInterval instead of coming at once.
	Unconfirmed bool
	Leadership  Leadership
}

// OverdueWake is the shortest wait of a leader whose heartbeat is overdue: a cycle that
// could not confirm and had nothing to try (its server fenced, Consul away) otherwise ran
// again after 1 ms, about a hundred cycles (each a Consul read and a pg_controldata) until
// its fencing deadline (found by the primary-latency fault scenario).
const OverdueWake = 50 * time.Millisecond

// NextWake is how long after w.End the next cycle starts: LoopWait, but
//   - a leader living on member confirmations, or whose failsafe round just failed, asks
//     again within FailsafeInterval (not at once: a round that failed at the end of its
//     step would fail again at once, in a loop, until the deadline);
//   - a leader heartbeats at a fixed rate from the start of its last confirmation, however
//     long its cycle took (at least OverdueWake from now), while its lock is valid;
//   - a replica wakes exactly when it may race (1 ms past RaceAt), if that comes first.
func NextWake(w Wake) time.Duration {
	next := w.Timings.LoopWait
	// A lock past its fencing deadline is lost whatever the flag says (the guard fired while
	// Consul was away): no fixed rate, no retries, or the loop would spin.
	valid := w.Lock.Valid(w.End, w.Timings, w.Leadership.AnnouncedTTL)
	if (w.Failsafe || w.Unconfirmed) && valid {
		return min(next, w.FailsafeInterval)
	}
	if valid {
		return max(OverdueWake, w.Lock.ConfirmedAt+w.Timings.LoopWait-w.End)
	}
	l := w.Leadership
	if w.HoldsKey || l.LastLeader == "" || l.LastLeader == w.Self {
		return next
	}
	if until := l.RaceAt(w.Timings) - w.End; until > 0 && until < next {
		next = until + time.Millisecond
	}
	return next
}
