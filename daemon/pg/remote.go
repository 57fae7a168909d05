package pg

import (
	"context"
	"fmt"
)

// ReceivedLSN asks another member's standby how far it has received WAL
// (max of pg_last_wal_receive_lsn and pg_last_wal_replay_lsn). A stopping primary uses it
// to know that its switchover candidate has everything before it releases the lock.
func ReceivedLSN(ctx context.Context, p ConnParams) (LSN, error) {
	conn, err := connectTo(ctx, p)
	if err != nil {
		return 0, err
	}
	defer closeConn(conn)
	var rcv, rep *string
	if err := conn.QueryRow(ctx, "SELECT pg_last_wal_receive_lsn()::text, pg_last_wal_replay_lsn()::text").Scan(&rcv, &rep); err != nil {
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
	return max(a, b), nil
}
