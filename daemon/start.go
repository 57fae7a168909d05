package daemon

// This file: starting PostgreSQL, and a leader's start in place.

import (
	"context"
	"fmt"
	"time"
)

// startPG starts PostgreSQL and counts failures for the bounded-restart rule.
func (n *Node) startPG(ctx context.Context) error {
	n.setState("starting")
	n.pgMem.lastStart = time.Now()
	if err := n.pg.Start(ctx); err != nil {
		n.pgMem.startFailures++
		n.setState("start failed")
		return fmt.Errorf("start postgres (failure %d): %w", n.pgMem.startFailures, err)
	}
	return nil
}

func (n *Node) startPrimary(ctx context.Context, o *observation) error {
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if o.in.PG.WasPrimary {
		if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(sctx); err != nil {
			return err
		}
	} else {
		// The data directory is a standby's: start it as one, then promote, so the new
		// history gets its own timeline.
		s := n.primarySettings()
		s.Standby = true
		if _, err := n.pg.WriteConfig(s); err != nil {
			return fmt.Errorf("write config: %w", err)
		}
		if err := n.startPG(sctx); err != nil {
			return err
		}
		if err := n.pg.Promote(sctx); err != nil {
			return fmt.Errorf("promote: %w", err)
		}
	}
	n.confirmed(n.lock.ConfirmedAt)
	if st, err := n.pg.Status(sctx); err == nil {
		n.beatNow(ctx, uint64(st.WriteLSN))
	}
	n.logger.Info("postgres restarted in place as primary")
	return nil
}
