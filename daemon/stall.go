package daemon

import (
	"time"

	"github.com/ramd-project/ramd/daemon/pg"
)

// standbyProgress is when, on the primary's monotonic clock, a standby was last seen
// confirming WAL: its flush position moved, or it had flushed everything sent to it.
type standbyProgress struct {
	flush pg.LSN
	at    time.Time
}

// standbyStalled reports whether a streaming standby has confirmed nothing for longer than
// limit while WAL it was sent waits for it, and returns the progress to remember.
//
// A standby cut off by a silent partition stays "streaming" in pg_stat_replication until
// wal_sender_timeout (60 s by default), and its member key lives until its Consul session
// expires (10-20 s); meanwhile a synchronous primary's commits wait for it. A healthy
// standby confirms every flush at once, so sent > flush with no movement for a TTL means
// it is not answering. The clock is this node's monotonic one, never the standby's
// reply_time, so clock skew between hosts cannot make a standby look stalled.
func standbyStalled(prev standbyProgress, seen bool, r pg.Replication, now time.Time, limit time.Duration) (standbyProgress, bool) {
	if !seen || r.FlushLSN != prev.flush || r.FlushLSN >= r.SentLSN {
		return standbyProgress{flush: r.FlushLSN, at: now}, false
	}
	return prev, now.Sub(prev.at) > limit
}
