package daemon

// This file: a standby following the leader (rewind, start as a replica, follow).

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/pg"
)

// rewind takes the data directory back to where it forked from leader's timeline with
// pg_rewind: an old primary (stopped), or a standby holding WAL past the leader's fork
// point, which is stopped first.
func (n *Node) rewind(ctx context.Context, leader string) error {
	if wait := n.pgMem.rewindRetryAt - fence.Now(); wait > 0 {
		return fmt.Errorf("pg_rewind from %s: trying again in %s", leader, wait.Round(100*time.Millisecond))
	}
	conn, err := n.memberConn(leader, false)
	if err != nil {
		return err
	}
	// A leader that just took the lock may still be promoting: pg_rewind against a source
	// on the old timeline finds nothing to do, and the standby then starts with WAL past
	// the fork the promotion makes (found by the stall-postmaster-long fault scenario: the
	// old primary hands over within moments and rewound before the new one was promoted,
	// then waited for the divergence check). Wait for the promotion; a source that cannot
	// be asked is left to pg_rewind's own errors.
	pctx, pcancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	recovering, perr := pg.RemoteInRecovery(pctx, conn)
	pcancel()
	if perr == nil && recovering {
		return fmt.Errorf("pg_rewind from %s: it is not a primary yet (promotion under way): will try again", leader)
	}
	if n.pg.Running() {
		sctx, cancel := context.WithTimeout(ctx, stopTimeout)
		err := n.pg.Stop(sctx, pg.StopFast)
		cancel()
		if err != nil {
			return fmt.Errorf("stop the standby before pg_rewind: %w", err)
		}
	}
	n.drainBeforeRewind(ctx)
	n.setState("rewinding")
	rctx, cancel := context.WithTimeout(ctx, rewindTimeout)
	defer cancel()
	if err := n.pg.Rewind(rctx, conn); err != nil {
		if errors.Is(err, pg.ErrRewindSourceNotReady) {
			return fmt.Errorf("pg_rewind from %s: will try again: %w", leader, err)
		}
		// A source that does not answer (the new primary still starting, a network blip)
		// says nothing about this data directory: try again next cycle. Only a rewind that
		// failed against a live source counts as failed for good.
		pctx, pcancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		_, perr := pg.RemoteSetting(pctx, conn, "server_version_num")
		pcancel()
		if perr != nil || sourceUnreachable(err) {
			return fmt.Errorf("pg_rewind from %s, which did not answer: will try again: %w", leader, err)
		}
		if d, ok := rewindAgain(err, n.pgMem.rewindRetries); ok {
			n.pgMem.rewindRetries++
			n.pgMem.rewindRetryAt = fence.Now() + d
			return fmt.Errorf("pg_rewind from %s failed before it changed the data directory (%d of %d): trying again in %s: %w",
				leader, n.pgMem.rewindRetries, maxRewindRetries, d, err)
		}
		n.pgMem.rewindFailedFor = leader
		return fmt.Errorf("pg_rewind from %s: %w", leader, err)
	}
	n.pgMem.rewindRetries, n.pgMem.rewindRetryAt = 0, 0
	n.logger.Info("pg_rewind done", "from", leader)
	return nil
}

// maxRewindRetries bounds the pg_rewind runs in a row that may fail before changing the
// data directory and still be tried again; rewindBackoff spaces them (1 × it, 2 × it, ...,
// 30 s in all): a link that drops the connection for a while, a source restarting.
const (
	maxRewindRetries = 5
	rewindBackoff    = 2 * time.Second
)

// rewindAgain decides after a failed pg_rewind against a live source whether to run it again
// (after the returned wait) or give up (rewindFailedFor: stay stopped, or clone again when
// RAMD_RECLONE_ON_REWIND_FAILURE allows): again while the failure left the data directory
// as it was (pg.RewindChangedTarget) and fewer than maxRewindRetries came before it: a
// connection that breaks while pg_rewind reads the source's file lists must not leave the
// node stopped for good when a second run would work.
func rewindAgain(err error, retries int) (time.Duration, bool) {
	if pg.RewindChangedTarget(err) || retries >= maxRewindRetries {
		return 0, false
	}
	return time.Duration(retries+1) * rewindBackoff, true
}

func (n *Node) standbySettings(leader string) (pg.Settings, error) {
	if leader == "" {
		return pg.Settings{Standby: true, Parameters: n.serverParameters()}, nil
	}
	conn, err := n.memberConn(leader, true)
	if err != nil {
		return pg.Settings{}, err
	}
	return pg.Settings{
		Standby:         true,
		PrimaryConnInfo: pg.PrimaryConnInfo(conn, n.cfg.Name),
		PrimarySlotName: pg.SlotName(n.cfg.Name),
		Parameters:      n.serverParameters(),
	}, nil
}

func (n *Node) startReplica(ctx context.Context, leader string) error {
	s, err := n.standbySettings(leader)
	if err != nil {
		return err
	}
	n.ensureOwnSlot(ctx, leader, s.PrimarySlotName)
	if _, err := n.pg.WriteConfig(s); err != nil {
		return fmt.Errorf("write standby config: %w", err)
	}
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := n.startPG(sctx, nil); err != nil {
		return err
	}
	n.pgMem.following = leader
	return nil
}

// ensureOwnSlot makes sure the leader has this standby's replication slot before it starts:
// the leader creates slots only for members whose records it reads, and the start of a
// standby waits until it is consistent, which may need streaming, before this node publishes
// its record again (found by the fault suite: an old primary whose session expired during a
// long Consul cut rejoined after pg_rewind and waited for a slot that never came). A failure
// is only logged: the leader still creates the slot once the record is back.
func (n *Node) ensureOwnSlot(ctx context.Context, leader, slot string) {
	if leader == "" || slot == "" {
		return
	}
	conn, err := n.memberConn(leader, false)
	if err == nil {
		cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		var created bool
		created, err = pg.EnsureRemoteSlot(cctx, conn, slot)
		cancel()
		if created {
			n.logger.Info("created this standby's replication slot on the leader", "leader", leader, "slot", slot)
		}
	}
	if err != nil {
		n.logger.Warn("ensure this standby's replication slot on the leader", "leader", leader, "slot", slot, "err", err)
	}
}

func (n *Node) follow(ctx context.Context, leader string) error {
	s, err := n.standbySettings(leader)
	if err != nil {
		return err
	}
	restart, err := n.pg.WriteConfig(s)
	if err != nil {
		return fmt.Errorf("write standby config: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if restart {
		if err := n.pg.Stop(cctx, pg.StopFast); err != nil {
			return fmt.Errorf("restart to follow %s: %w", leader, err)
		}
		if err := n.startPG(cctx, nil); err != nil {
			return err
		}
	} else if err := n.pg.Reload(cctx); err != nil {
		return fmt.Errorf("reload to follow %s: %w", leader, err)
	}
	n.pgMem.following = leader
	n.logger.Info("following", "leader", leader)
	return nil
}

// sourceUnreachable reports whether a pg_rewind failed to connect to its source (the words of
// PostgreSQL 13 and of 14 on) rather than on the data directory.
func sourceUnreachable(err error) bool {
	var ce *pg.CommandError
	if !errors.As(err, &ce) {
		return false
	}
	out := ce.Output
	return strings.Contains(out, "could not connect to server") ||
		(strings.Contains(out, "connection to server") && strings.Contains(out, "failed"))
}
