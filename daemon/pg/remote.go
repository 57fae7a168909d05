package pg

import (
	"context"
	"fmt"
)

// ReceivedLSN asks another member's standby how far it has received WAL: the maximum of
// pg_last_wal_receive_lsn (flushed), the walreceiver's written_lsn (what remote_write
// acknowledges) and pg_last_wal_replay_lsn. A stopping primary uses it to know its
// switchover candidate has everything; a failover candidate compares positions with it.
func ReceivedLSN(ctx context.Context, p ConnParams) (LSN, error) {
	conn, err := connectTo(ctx, p)
	if err != nil {
		return 0, err
	}
	defer closeConn(ctx, conn)
	var rcv, rep, wr *string
	const q = `SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text,
		(SELECT written_lsn::text FROM pg_stat_wal_receiver)`
	if err := conn.QueryRow(ctx, q).Scan(&rcv, &rep, &wr); err != nil {
		return 0, fmt.Errorf("received position of %s: %w", p, err)
	}
	a, err := parseNullLSN(rcv)
	if err != nil {
		return 0, err
	}
	b, err := parseNullLSN(rep)
	if err != nil {
		return 0, err
	}
	c, err := parseNullLSN(wr)
	if err != nil {
		return 0, err
	}
	return max(a, b, c), nil
}
