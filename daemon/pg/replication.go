package pg

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Slot is a physical replication slot.
type Slot struct {
	Name       string
	Active     bool
	RestartLSN LSN // 0 when the slot has not reserved WAL
}

// Promote turns the local standby into a primary: pg_promote(wait => true, wait_seconds
// from ctx's deadline, 60 without one), then polls until pg_is_in_recovery() is false,
// bounded by ctx. Promoting a server that is already a primary is a no-op. It returns
// ErrPromoteFailed when the server is still in recovery when ctx ends.
func (i *Instance) Promote(ctx context.Context) error {
	conn, err := i.connect(ctx)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	defer conn.Release()
	inRecovery, err := isInRecovery(ctx, conn)
	if err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	if !inRecovery {
		i.logger.DebugContext(ctx, "promote: server is already a primary")
		return nil
	}
	wait := 60
	if dl, ok := ctx.Deadline(); ok {
		wait = min(max(int(time.Until(dl)/time.Second), 1), 3600)
	}
	i.logger.InfoContext(ctx, "promoting", "data_dir", i.cfg.DataDir)
	var promoted bool
	if err := conn.QueryRow(ctx, "SELECT pg_promote(true, $1)", wait).Scan(&promoted); err != nil {
		return fmt.Errorf("promote: pg_promote: %w", err)
	}
	ticker := time.NewTicker(pollEvery / 2)
	defer ticker.Stop()
	for range maxPolls {
		inRecovery, err := isInRecovery(ctx, conn)
		if err != nil {
			return fmt.Errorf("promote: %w", err)
		}
		if !inRecovery {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("promote: %w: %w", ErrPromoteFailed, ctx.Err())
		case <-ticker.C:
		}
	}
	return fmt.Errorf("promote: %w: still in recovery after %d polls", ErrPromoteFailed, maxPolls)
}

func isInRecovery(ctx context.Context, conn querier) (bool, error) {
	var r bool
	if err := conn.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&r); err != nil {
		return false, fmt.Errorf("query pg_is_in_recovery: %w", err)
	}
	return r, nil
}

// Checkpoint runs CHECKPOINT (a restartpoint on a standby).
func (i *Instance) Checkpoint(ctx context.Context) error {
	if err := i.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// WaitReplayed waits, on a standby and bounded by ctx, until the replay LSN reaches the
// receive LSN as of the call, and returns the replayed LSN. When nothing was received by
// streaming it returns the current replay LSN. It fails with ErrNotInRecovery on a
// primary and with ErrReplayPaused when replay is paused short of the target.
func (i *Instance) WaitReplayed(ctx context.Context) (LSN, error) {
	conn, err := i.connect(ctx)
	if err != nil {
		return 0, fmt.Errorf("wait replayed: %w", err)
	}
	defer conn.Release()
	var target LSN
	ticker := time.NewTicker(pollEvery / 2)
	defer ticker.Stop()
	for n := range maxPolls {
		var inRecovery, paused bool
		var recv, replay *string
		err := conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), pg_last_wal_receive_lsn()::text,
			pg_last_wal_replay_lsn()::text,
			CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END`).
			Scan(&inRecovery, &recv, &replay, &paused)
		if err != nil {
			return 0, fmt.Errorf("wait replayed: %w", err)
		}
		if !inRecovery {
			return 0, fmt.Errorf("wait replayed: %w", ErrNotInRecovery)
		}
		replayed, err := parseNullLSN(replay)
		if err != nil {
			return 0, err
		}
		if n == 0 {
			if target, err = parseNullLSN(recv); err != nil {
				return 0, err
			}
		}
		if replayed >= target {
			return replayed, nil
		}
		if paused {
			return replayed, fmt.Errorf("wait replayed: %w at %s (target %s)", ErrReplayPaused, replayed, target)
		}
		select {
		case <-ctx.Done():
			return replayed, fmt.Errorf("wait replayed: replayed %s of %s: %w", replayed, target, ctx.Err())
		case <-ticker.C:
		}
	}
	return 0, fmt.Errorf("wait replayed: target %s not reached after %d polls", target, maxPolls)
}

// EnsureRoles creates or updates the replication role (LOGIN REPLICATION) and sets the
// superuser's and the replication role's passwords to the configured ones, on a primary,
// idempotently. The passwords travel as SCRAM-SHA-256 verifiers (the server never sees
// them in clear) in statements the server does not log.
func (i *Instance) EnsureRoles(ctx context.Context) error {
	conn, err := i.connect(ctx)
	if err != nil {
		return fmt.Errorf("ensure roles: %w", err)
	}
	defer conn.Release()
	if err := i.setRoles(ctx, conn, i.passwords()); err != nil {
		return fmt.Errorf("ensure roles: %w", err)
	}
	return nil
}

// setRoles creates the replication role when missing and gives both roles pw, in one
// transaction on a primary.
func (i *Instance) setRoles(ctx context.Context, conn querier, pw Passwords) error {
	if r, err := isInRecovery(ctx, conn); err != nil {
		return err
	} else if r {
		return ErrInRecovery
	}
	rep := pgx.Identifier{i.cfg.ReplicationUser}.Sanitize()
	su := pgx.Identifier{i.cfg.Superuser}.Sanitize()
	repSecret, err := roleSecret(pw.Replication)
	if err != nil {
		return err
	}
	suSecret, err := roleSecret(pw.Superuser)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		for _, q := range []string{
			"SET LOCAL log_statement = 'none'",
			"SET LOCAL log_min_duration_statement = -1",
			"SET LOCAL log_min_error_statement = 'panic'",
		} {
			if _, err := tx.Exec(ctx, q); err != nil {
				return err
			}
		}
		var exists bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
			i.cfg.ReplicationUser).Scan(&exists); err != nil {
			return err
		}
		verb := "CREATE"
		if exists {
			verb = "ALTER"
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf("%s ROLE %s WITH LOGIN REPLICATION PASSWORD %s", verb, rep, quoteLiteral(repSecret))); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf("ALTER ROLE %s WITH PASSWORD %s", su, quoteLiteral(suSecret)))
		return err
	})
	if err != nil {
		return fmt.Errorf("set the passwords of %s and %s: %w", i.cfg.ReplicationUser, i.cfg.Superuser, err)
	}
	return nil
}

// quoteLiteral quotes s as an SQL string literal, as an E-string when s holds backslashes.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}

// EnsureSlots creates the missing physical replication slots in names (reserving WAL
// immediately) on a primary, and returns every physical slot as Slots would, read on the
// same connection (the leader's cycle needs both: one round of queries, not two). Existing
// slots are left alone.
func (i *Instance) EnsureSlots(ctx context.Context, names []string) ([]Slot, error) {
	for _, n := range names {
		if err := validSlotName(n); err != nil {
			return nil, fmt.Errorf("ensure slots: %w", err)
		}
	}
	conn, err := i.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("ensure slots: %w", err)
	}
	defer conn.Release()
	if r, err := isInRecovery(ctx, conn); err != nil {
		return nil, fmt.Errorf("ensure slots: %w", err)
	} else if r {
		return nil, fmt.Errorf("ensure slots: %w", ErrInRecovery)
	}
	existing, err := querySlots(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("ensure slots: %w", err)
	}
	have := map[string]bool{}
	for _, s := range existing {
		have[s.Name] = true
	}
	created := false
	for _, n := range names {
		if have[n] {
			continue
		}
		_, err := conn.Exec(ctx, "SELECT pg_create_physical_replication_slot($1, true)", n)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42710" { // duplicate_object: created meanwhile
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("create replication slot %s: %w", n, err)
		}
		have[n] = true
		created = true
		i.logger.InfoContext(ctx, "created replication slot", "slot", n)
	}
	if !created {
		return existing, nil
	}
	if existing, err = querySlots(ctx, conn); err != nil {
		return nil, fmt.Errorf("ensure slots: %w", err)
	}
	return existing, nil
}

// DropSlot drops the replication slot name; a missing slot is not an error, an active one
// is ErrSlotActive.
func (i *Instance) DropSlot(ctx context.Context, name string) error {
	if err := validSlotName(name); err != nil {
		return fmt.Errorf("drop slot: %w", err)
	}
	conn, err := i.connect(ctx)
	if err != nil {
		return fmt.Errorf("drop slot: %w", err)
	}
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name)
		FROM pg_replication_slots WHERE slot_name = $1`, name)
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "42704": // undefined_object: dropped meanwhile
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "55006": // object_in_use
		return fmt.Errorf("drop slot %s: %w: %w", name, ErrSlotActive, err)
	default:
		return fmt.Errorf("drop slot %s: %w", name, err)
	}
}

// Slots lists the physical replication slots, ordered by name.
func (i *Instance) Slots(ctx context.Context) ([]Slot, error) {
	conn, err := i.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	defer conn.Release()
	s, err := querySlots(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("slots: %w", err)
	}
	return s, nil
}

// HasSlots reports whether every slot named in names is among slots.
func HasSlots(slots []Slot, names []string) bool {
	for _, n := range names {
		if !slices.ContainsFunc(slots, func(s Slot) bool { return s.Name == n }) {
			return false
		}
	}
	return true
}

// slotsQuery lists the physical replication slots (collectSlots reads its rows).
const slotsQuery = `SELECT slot_name::text, active, restart_lsn::text
		FROM pg_replication_slots WHERE slot_type = 'physical' ORDER BY slot_name`

func querySlots(ctx context.Context, conn querier) ([]Slot, error) {
	rows, err := conn.Query(ctx, slotsQuery)
	if err != nil {
		return nil, fmt.Errorf("query pg_replication_slots: %w", err)
	}
	return collectSlots(rows)
}

func collectSlots(rows pgx.Rows) ([]Slot, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Slot, error) {
		var s Slot
		var lsn *string
		if err := row.Scan(&s.Name, &s.Active, &lsn); err != nil {
			return s, err
		}
		var err error
		s.RestartLSN, err = parseNullLSN(lsn)
		return s, err
	})
}
