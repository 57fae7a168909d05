package ha

import "time"

// Silence tracks since when a running PostgreSQL has not answered: the postmaster process
// exists, but it is stopped (SIGSTOP), accepts no new connection, or the status read gets no
// reply (a server hung on its storage). It is measured on the node's monotonic
// clock, from the cycle's one reading at the first silent cycle. A value; the loop keeps it
// between cycles.
type Silence struct {
	// PID is the postmaster that was silent; a new postmaster starts a new count.
	PID int
	// Since is the cycle time at which it was first seen silent; meaningful when Silent.
	Since  time.Duration
	Silent bool
}

// Next is the silence after a cycle at now that saw postmaster pid (0: none runs) and
// whether it answered.
func (s Silence) Next(pid int, answered bool, now time.Duration) Silence {
	if pid == 0 || answered {
		return Silence{}
	}
	if !s.Silent || s.PID != pid {
		return Silence{PID: pid, Since: now, Silent: true}
	}
	return s
}

// For is how long the server has been silent as of now (0 when it answers).
func (s Silence) For(now time.Duration) time.Duration {
	if !s.Silent || now < s.Since {
		return 0
	}
	return now - s.Since
}

// Unresponsive reports whether a server silent for silentFor has passed the limit: longer
// than PGUnresponsiveTimeout, which 0 disables. Exactly at the limit is still within it.
func (t Timings) Unresponsive(silentFor time.Duration) bool {
	return t.PGUnresponsiveTimeout > 0 && silentFor > t.PGUnresponsiveTimeout
}
