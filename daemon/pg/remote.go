package pg

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
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

// RemoteInRecovery reports whether the server p still runs recovery (a standby, or a
// promotion not finished yet).
func RemoteInRecovery(ctx context.Context, p ConnParams) (bool, error) {
	conn, err := connectTo(ctx, p)
	if err != nil {
		return false, err
	}
	defer closeConn(ctx, conn)
	var rec bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
		return false, fmt.Errorf("recovery state of %s: %w", p, err)
	}
	return rec, nil
}

// EnsureRemoteSlot creates the physical replication slot name on the primary p when it is
// missing, reserving WAL at once, and reports whether it created it. A standby about to
// start from p uses it for its own slot: p creates slots only for the members whose records
// it reads, and a member whose record vanished (its session expired while it was cut off)
// would otherwise wait for a slot that appears only once it runs and publishes again.
func EnsureRemoteSlot(ctx context.Context, p ConnParams, name string) (bool, error) {
	if err := validSlotName(name); err != nil {
		return false, fmt.Errorf("ensure slot on %s: %w", p, err)
	}
	conn, err := connectTo(ctx, p)
	if err != nil {
		return false, err
	}
	defer closeConn(ctx, conn)
	var created bool
	const q = `SELECT count(*) > 0 FROM (SELECT pg_create_physical_replication_slot($1, true)
		WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)) AS c`
	if err := conn.QueryRow(ctx, q, name).Scan(&created); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: created meanwhile
			return false, nil
		}
		return false, fmt.Errorf("ensure slot %s on %s: %w", name, p, err)
	}
	return created, nil
}
