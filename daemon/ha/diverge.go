package ha

import "fmt"

// Fork is one line of a timeline history: timeline Timeline ended at LSN, where its child
// began.
type Fork struct {
	Timeline int
	LSN      uint64
}

// Diverged reports whether a standby on timeline tl with WAL up to lsn (the furthest of what
// it received and replayed) can no longer follow a leader on timeline leaderTL whose history
// is history, and why. It cannot when the leader's history never passed through tl (another
// branch), or when the standby has WAL on tl past the point where the leader's history left
// tl: that WAL is not the leader's, and PostgreSQL refuses to switch timelines behind its
// recovery point ("forked off current database system timeline before current recovery
// point"), retrying for ever. pg_rewind takes the standby back to the fork. Unknown values
// (0) never count as divergence.
func Diverged(tl int, lsn uint64, leaderTL int, history []Fork) (bool, string) {
	if tl == 0 || lsn == 0 || leaderTL == 0 || tl >= leaderTL {
		return false, ""
	}
	for _, f := range history {
		if f.Timeline != tl {
			continue
		}
		if lsn > f.LSN {
			return true, fmt.Sprintf("WAL on timeline %d up to %s, past the leader's fork at %s", tl, lsnString(lsn), lsnString(f.LSN))
		}
		return false, ""
	}
	return true, fmt.Sprintf("timeline %d is not in the history of the leader's timeline %d", tl, leaderTL)
}

// lsnString formats an LSN as PostgreSQL does.
func lsnString(l uint64) string { return fmt.Sprintf("%X/%X", uint32(l>>32), uint32(l)) }
