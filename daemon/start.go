package daemon

// This file: starting PostgreSQL, and a leader's start in place.

import (
	"context"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/daemon/fence"
)

// startPG starts PostgreSQL and counts failures for the bounded-restart rule. onSpawn, when
// not nil, is called with the postmaster's pid as soon as it exists (armOnSpawn).
func (n *Node) startPG(ctx context.Context, onSpawn func(pid int)) error {
	n.setState("starting")
	n.pgMem.lastStart = time.Now()
	if err := n.pg.StartWatched(ctx, onSpawn); err != nil {
		n.pgMem.startFailures++
		n.setState("start failed")
		return fmt.Errorf("start postgres (failure %d): %w", n.pgMem.startFailures, err)
	}
	return nil
}

// armOnSpawn arms the fence guard on a postmaster the leader starts, from the moment it
// exists, with the deadline of the lock's last confirmation. Heartbeats while it starts move
// that deadline (beating); when none gets through, the guard fences the new server at the
// old deadline like any other, instead of leaving it writable past it: a leader behind a
// slow link restarted in place once took a write 0.4 s after its successor's promotion,
// its guard still watching the pid of the server it had fenced before.
func (n *Node) armOnSpawn(pid int) {
	d := time.Duration(n.fenceAt.Load())
	if n.guard == nil || d == 0 {
		return
	}
	if err := n.guard.Arm(pid, d); err != nil {
		n.logger.Error("arm fence guard on the starting postmaster", "pid", pid, "err", err)
	}
}

func (n *Node) startPrimary(ctx context.Context, o *observation) error {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if o.in.HoldsLock() {
		// A restart in place: the server stopped while this node kept the lock (ha.RestartWindow).
		n.pgMem.restarts = append(n.pgMem.restarts, fence.Now())
	}
	if o.in.PG.WasPrimary {
		if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		// Crash recovery can take longer than the fencing window: heartbeat meanwhile.
		n.setState("starting")
		n.pgMem.lastStart = time.Now()
		if err := n.beating(ctx, o.in.PG.LSN, func() error { return n.pg.StartWatched(sctx, n.armOnSpawn) }); err != nil {
			n.pgMem.startFailures++
			n.setState("start failed")
			return fmt.Errorf("start postgres (failure %d): %w", n.pgMem.startFailures, err)
		}
	} else {
		// The data directory is a standby's: start it as one, then promote, so the new
		// history gets its own timeline.
		s := n.primarySettings()
		s.Standby = true
		if _, err := n.pg.WriteConfig(s); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(sctx, n.armOnSpawn); err != nil {
			return err
		}
		if err := n.beating(ctx, o.in.PG.LSN, func() error { return n.pg.Promote(sctx) }); err != nil {
			// A start that cannot become writable is a failed start (a full disk: the
			// postmaster comes up, the promotion's first WAL write PANICs it): counted, so
			// the leader hands over after RAMD_PG_MAX_START_FAILURES instead of looping.
			n.pgMem.startFailures++
			n.setState("start failed")
			return fmt.Errorf("promote (start failure %d): %w", n.pgMem.startFailures, err)
		}
	}
	// A heartbeat first, then the guard armed from it; without one (Consul away) the guard is
	// armed from the last confirmation, and fences now if that is too old.
	optime := o.in.PG.LSN
	if st, err := n.pg.Status(sctx); err == nil {
		optime = uint64(st.WriteLSN)
	}
	if !n.beatNow(ctx, optime) {
		n.confirmed(n.lock.ConfirmedAt)
	}
	n.logger.Info("postgres restarted in place as primary")
	return nil
}
