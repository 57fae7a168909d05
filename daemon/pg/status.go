package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Status is what the HA loop observes of the local server.
type Status struct {
	Running   bool
	PID       int
	StartTime time.Time // pg_postmaster_start_time()
	// ServerVersion is server_version_num, e.g. 150004.
	ServerVersion int
	InRecovery    bool
	// Timeline is the timeline the server is on. On a primary it is the timeline of
	// pg_walfile_name(pg_current_wal_lsn()), i.e. the timeline WAL is inserted on (the
	// checkpoint's timeline in pg_control_checkpoint() stays stale after a promotion until
	// the next checkpoint). On a standby it is pg_stat_wal_receiver.received_tli while a
	// WAL receiver runs, else the greater of pg_control_recovery().min_recovery_end_timeline
	// and the last restartpoint's timeline.
	Timeline int
	// SystemID is the cluster's system identifier (pg_control_system()).
	SystemID uint64
	// WriteLSN is pg_current_wal_lsn() on a primary, 0 on a standby.
	WriteLSN LSN
	// ReceiveLSN and ReplayLSN are pg_last_wal_receive_lsn() and pg_last_wal_replay_lsn()
	// on a standby, 0 on a primary.
	ReceiveLSN, ReplayLSN LSN
	// SyncStandbyNames is synchronous_standby_names as the server uses it now.
	SyncStandbyNames string
	// ReplayPaused is pg_is_wal_replay_paused() on a standby.
	ReplayPaused bool
	// ReplayTimestamp is pg_last_xact_replay_timestamp() on a standby (zero when none).
	ReplayTimestamp time.Time
	// ReceiverStatus is pg_stat_wal_receiver.status ("streaming", "startup", ...), "" when
	// no WAL receiver runs.
	ReceiverStatus string
	// ReceiverHost and ReceiverPort are the sender the WAL receiver is connected to.
	ReceiverHost string
	ReceiverPort int
	// Replication holds the pg_stat_replication rows (standbys streaming from this server),
	// ordered by application_name.
	Replication []Replication
	// Slots are the server's physical replication slots, by name (a leader keeps them for
	// its members without listing them again).
	Slots []Slot
	// PendingRestart is true when a changed setting waits for a restart (after a reload).
	PendingRestart bool
	// PendingRestartReasons maps each such setting to {current value, value in the files}.
	PendingRestartReasons map[string][2]string
	// Connections, XactCommit and XactRollback are pg_stat_database's numbackends,
	// xact_commit and xact_rollback summed over the databases (the counters are cumulative).
	Connections  int
	XactCommit   int64
	XactRollback int64
	// Archiver is pg_stat_archiver.
	Archiver Archiver
}

// Archiver is pg_stat_archiver: what the archiver process archived and failed.
type Archiver struct {
	ArchivedCount    int64
	LastArchivedWAL  string
	LastArchivedTime time.Time
	FailedCount      int64
	LastFailedWAL    string
	LastFailedTime   time.Time
}

// Replication is one row of pg_stat_replication.
type Replication struct {
	ApplicationName string
	ClientAddr      string // "" for a unix-socket client
	State           string
	SyncState       string
	Usename         string
	SyncPriority    int
	SentLSN         LSN
	WriteLSN        LSN
	FlushLSN        LSN
	ReplayLSN       LSN
	// ReplayLag is pg_stat_replication.replay_lag: how long the standby took to replay the
	// last WAL it confirmed, as this server measured it; nil when PostgreSQL shows NULL (no
	// measurement yet, or caught up and idle for a while).
	ReplayLag *time.Duration
}

// Status observes the server over one short-lived TCP connection as the superuser
// (connect timeout 2s, every query bounded by ctx). When no postmaster runs it returns
// Status{Running: false} and no error. When one runs but cannot be queried it returns the
// Status with Running and PID set and the error (wrapping ErrNotReady while the server
// starts up, shuts down, or is a standby that has not reached consistency).
func (i *Instance) Status(ctx context.Context) (Status, error) {
	s := Status{PID: i.PID()}
	if s.PID == 0 {
		return s, nil
	}
	s.Running = true
	for attempt := 0; ; attempt++ {
		s = Status{PID: s.PID, Running: true}
		conn, err := i.connect(ctx)
		if err != nil {
			return s, fmt.Errorf("status: %w", err)
		}
		err = queryStatus(ctx, conn, &s)
		closed := conn.Conn().IsClosed()
		conn.Release()
		if err == nil {
			return s, nil
		}
		// A pooled connection closed under the read (the server restarted since it was last
		// used; pooled connections are not pinged between cycles): every other one is dead
		// too, so the pool starts again and the read is made once more, new.
		if !closed || attempt > 0 || ctx.Err() != nil {
			return s, fmt.Errorf("status: %w", err)
		}
		i.logger.DebugContext(ctx, "status: pooled connection closed; reading again over a new one", "err", err)
		i.resetPool()
	}
}

// statusQuerier is what queryStatus needs of a connection: a pooled local one or one of
// its own.
type statusQuerier interface {
	SendBatch(ctx context.Context, b *pgx.Batch) pgx.BatchResults
}

// queryStatus reads everything Status reports in one round trip: the queries go as one
// batch (pipelined), so a cycle's status read costs the server and ramd one exchange
// instead of eight. Each query works on a primary and on a standby alike: the functions
// that fail during recovery are only called outside it, and the recovery functions
// answer NULL on a primary.
func queryStatus(ctx context.Context, conn statusQuerier, s *Status) error {
	var sysID int64
	b := &pgx.Batch{}
	b.Queue(`SELECT current_setting('server_version_num')::int,
		pg_is_in_recovery(), pg_postmaster_start_time(),
		(SELECT system_identifier FROM pg_control_system()),
		current_setting('synchronous_standby_names'),
		d.connections, d.xact_commit, d.xact_rollback
		FROM (SELECT coalesce(sum(numbackends), 0)::int AS connections,
			coalesce(sum(xact_commit), 0)::bigint AS xact_commit,
			coalesce(sum(xact_rollback), 0)::bigint AS xact_rollback
			FROM pg_stat_database) AS d`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&s.ServerVersion, &s.InRecovery, &s.StartTime, &sysID, &s.SyncStandbyNames, &s.Connections, &s.XactCommit, &s.XactRollback); err != nil {
			return fmt.Errorf("query server: %w", err)
		}
		return nil
	})

	var arch Archiver
	var archTime, failTime *time.Time
	b.Queue(`SELECT archived_count, coalesce(last_archived_wal, ''), last_archived_time,
		failed_count, coalesce(last_failed_wal, ''), last_failed_time FROM pg_stat_archiver`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&arch.ArchivedCount, &arch.LastArchivedWAL, &archTime, &arch.FailedCount, &arch.LastFailedWAL, &failTime); err != nil {
			return fmt.Errorf("query pg_stat_archiver: %w", err)
		}
		return nil
	})

	// On a primary: the write position and its WAL file (whose name starts with the
	// timeline). On a standby: what was received and replayed, and the timelines of the
	// control file.
	var lsn, walfile, recv, replay *string
	var ts *time.Time
	var minTLI, ckptTLI int
	b.Queue(`SELECT CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END,
			CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_walfile_name(pg_current_wal_lsn()) END,
			pg_last_wal_receive_lsn()::text,
			pg_last_wal_replay_lsn()::text,
			CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END,
			pg_last_xact_replay_timestamp(),
			coalesce((SELECT min_recovery_end_timeline FROM pg_control_recovery()), 0),
			coalesce((SELECT timeline_id FROM pg_control_checkpoint()), 0)`).QueryRow(func(row pgx.Row) error {
		if err := row.Scan(&lsn, &walfile, &recv, &replay, &s.ReplayPaused, &ts, &minTLI, &ckptTLI); err != nil {
			return fmt.Errorf("query wal position: %w", err)
		}
		return nil
	})

	var rcvStatus, rcvHost *string
	var rcvPort, rcvTLI *int
	b.Queue(`SELECT status, sender_host, sender_port, received_tli
		FROM pg_stat_wal_receiver`).QueryRow(func(row pgx.Row) error {
		err := row.Scan(&rcvStatus, &rcvHost, &rcvPort, &rcvTLI)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("query wal receiver: %w", err)
		}
		return nil
	})

	b.Queue(`SELECT coalesce(application_name, ''),
		coalesce(client_addr::text, ''), coalesce(state, ''), coalesce(sync_state, ''),
		coalesce(usename::text, ''), coalesce(sync_priority, 0),
		sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
		extract(epoch FROM replay_lag)::float8
		FROM pg_stat_replication ORDER BY application_name, pid`).Query(func(rows pgx.Rows) error {
		var err error
		if s.Replication, err = pgx.CollectRows(rows, scanReplication); err != nil {
			return fmt.Errorf("query pg_stat_replication: %w", err)
		}
		return nil
	})

	b.Queue(slotsQuery).Query(func(rows pgx.Rows) error {
		var err error
		if s.Slots, err = collectSlots(rows); err != nil {
			return fmt.Errorf("query pg_replication_slots: %w", err)
		}
		return nil
	})

	// The pending value is the last entry for the name in the configuration files.
	type pending struct{ name, current, next string }
	var ps []pending
	b.Queue(`SELECT s.name, current_setting(s.name), coalesce(f.setting, '')
		FROM pg_settings s
		LEFT JOIN (SELECT DISTINCT ON (name) name, setting FROM pg_file_settings
		           ORDER BY name, seqno DESC) f
		       ON f.name = s.name
		WHERE s.pending_restart ORDER BY s.name`).Query(func(rows pgx.Rows) error {
		var err error
		ps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (pending, error) {
			var p pending
			err := row.Scan(&p.name, &p.current, &p.next)
			return p, err
		})
		if err != nil {
			return fmt.Errorf("query pending restart: %w", err)
		}
		return nil
	})

	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	s.SystemID = uint64(sysID) // bigint on the server; the identifier is unsigned
	if archTime != nil {
		arch.LastArchivedTime = *archTime
	}
	if failTime != nil {
		arch.LastFailedTime = *failTime
	}
	s.Archiver = arch

	if err := s.setPositions(walPositions{lsn: lsn, walfile: walfile, recv: recv, replay: replay, replayTime: ts,
		minTLI: minTLI, ckptTLI: ckptTLI, rcvStatus: rcvStatus, rcvHost: rcvHost, rcvPort: rcvPort, rcvTLI: rcvTLI}); err != nil {
		return err
	}

	if len(ps) > 0 {
		s.PendingRestart = true
		s.PendingRestartReasons = make(map[string][2]string, len(ps))
		for _, p := range ps {
			s.PendingRestartReasons[p.name] = [2]string{p.current, p.next}
		}
	}
	return nil
}

// walPositions are the raw WAL position columns of queryStatus's batch.
type walPositions struct {
	lsn, walfile, recv, replay *string
	replayTime                 *time.Time
	minTLI, ckptTLI            int
	rcvStatus, rcvHost         *string
	rcvPort, rcvTLI            *int
}

// setPositions fills s's positions and timeline from p: on a primary its write position and
// the timeline of its WAL file, on a standby what it received and replayed and the timeline
// its WAL receiver or control file names.
func (s *Status) setPositions(p walPositions) error {
	if !s.InRecovery {
		if p.lsn == nil || p.walfile == nil {
			return errors.New("query wal position: no write position on a primary")
		}
		var err error
		if s.WriteLSN, err = ParseLSN(*p.lsn); err != nil {
			return err
		}
		if len(*p.walfile) < 8 {
			return fmt.Errorf("unexpected wal file name %q", *p.walfile)
		}
		tli, err := strconv.ParseUint((*p.walfile)[:8], 16, 32)
		if err != nil {
			return fmt.Errorf("parse timeline of wal file %q: %w", *p.walfile, err)
		}
		s.Timeline = int(tli)
	} else {
		var err error
		if s.ReceiveLSN, err = parseNullLSN(p.recv); err != nil {
			return err
		}
		if s.ReplayLSN, err = parseNullLSN(p.replay); err != nil {
			return err
		}
		if p.replayTime != nil {
			s.ReplayTimestamp = *p.replayTime
		}
		s.Timeline = max(p.minTLI, p.ckptTLI)
		if p.rcvStatus != nil || p.rcvHost != nil || p.rcvPort != nil || p.rcvTLI != nil {
			s.ReceiverStatus = deref(p.rcvStatus)
			s.ReceiverHost = deref(p.rcvHost)
			if p.rcvPort != nil {
				s.ReceiverPort = *p.rcvPort
			}
			if p.rcvTLI != nil && *p.rcvTLI > 0 {
				s.Timeline = *p.rcvTLI
			}
		}
	}
	return nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// scanReplication reads one row of the pg_stat_replication query of queryStatus.
func scanReplication(row pgx.CollectableRow) (Replication, error) {
	var r Replication
	var sent, write, flush, replay *string
	var replayLag *float64
	if err := row.Scan(&r.ApplicationName, &r.ClientAddr, &r.State, &r.SyncState,
		&r.Usename, &r.SyncPriority, &sent, &write, &flush, &replay, &replayLag); err != nil {
		return r, err
	}
	if replayLag != nil {
		d := time.Duration(*replayLag * float64(time.Second))
		r.ReplayLag = &d
	}
	var errs [4]error
	r.SentLSN, errs[0] = parseNullLSN(sent)
	r.WriteLSN, errs[1] = parseNullLSN(write)
	r.FlushLSN, errs[2] = parseNullLSN(flush)
	r.ReplayLSN, errs[3] = parseNullLSN(replay)
	for _, e := range errs {
		if e != nil {
			return r, e
		}
	}
	return r, nil
}
