package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/ha"
)

// Timings of a leader that lives on member confirmations while Consul is away: its cycle
// (Consul budget + confirmation round + interval) stays far below FenceAfter (>= 1s by
// validation: loop_wait + retry_timeout <= ttl - margin).
const (
	failsafeConsulBudget = 200 * time.Millisecond
	failsafeInterval     = 300 * time.Millisecond
)

// cycle runs observe, decide, act and publish once, and returns when the next cycle is due.
// Every cycle is measured; one that acts is traced (telemetry.go).
func (n *Node) cycle(ctx context.Context) time.Duration {
	tc := n.beginCycle()
	o := n.observe(ctx)
	tc.observed()
	if ctx.Err() != nil {
		// ramd is stopping: what this cycle saw is the cancellation, not the cluster. The
		// shutdown stops cleanly (a primary hands over, a synchronous standby leaves the set).
		return n.timings().LoopWait
	}
	p := ha.Decide(o.in)
	ctx = tc.decided(ctx, &o, p)
	if s := p.String(); s != n.lastPlan {
		n.logger.InfoContext(ctx, "plan", "plan", s)
		n.lastPlan = s
	}
	n.followBackupConfig(ctx, &o)
	err := n.act(ctx, &o, p)
	switch {
	case errors.Is(err, errNotPublished):
		n.logger.InfoContext(ctx, "waiting for a member to publish its record", "plan", p.String(), "err", err)
	case err != nil:
		n.logger.ErrorContext(ctx, "action failed", "plan", p.String(), "err", err)
	}
	n.restoreConfig(ctx, &o)
	n.tendBackups(ctx, &o)
	n.applyParameters(ctx, &o)
	n.publish(ctx, &o, p)
	n.runLocalOps(ctx, &o)
	n.rotatePasswords(ctx, &o)
	n.repairInitialize(ctx, &o)
	tc.end(err, o.in.ConsulOK)
	return n.nextWake(&o)
}

// nextWake is when the next cycle is due (ha.NextWake): LoopWait, a leader's fixed heartbeat
// rate, or a replica's race time when that comes first.
func (n *Node) nextWake(o *observation) time.Duration {
	n.leading.Store(n.lock.Held)
	return ha.NextWake(ha.Wake{End: fence.Now(), Timings: n.timings(), Self: n.cfg.Name, HoldsKey: o.in.HoldsLock(),
		Lock: n.lock, Failsafe: n.failsafeActive, FailsafeInterval: failsafeInterval, Leadership: n.lead})
}
