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
	p := ha.Decide(o.in)
	ctx = tc.decided(ctx, &o, p)
	if s := p.String(); s != n.lastPlan {
		n.logger.InfoContext(ctx, "plan", "plan", s)
		n.lastPlan = s
	}
	err := n.act(ctx, &o, p)
	switch {
	case errors.Is(err, errNotPublished):
		n.logger.InfoContext(ctx, "waiting for a member to publish its record", "plan", p.String(), "err", err)
	case err != nil:
		n.logger.ErrorContext(ctx, "action failed", "plan", p.String(), "err", err)
	}
	n.restoreConfig(ctx, &o)
	n.publish(ctx, &o, p)
	n.runLocalOps(ctx, &o)
	tc.end(err, o.in.ConsulOK)
	return n.nextWake(&o)
}

// nextWake is LoopWait, or sooner when the leader's heartbeat goes stale before that: a
// replica then checks at the exact moment it may race.
func (n *Node) nextWake(o *observation) time.Duration {
	next := n.timings().LoopWait
	n.leading.Store(n.lockHeld)
	if n.failsafeActive {
		// Confirmations through the members must come well within the fencing deadline.
		return min(next, failsafeInterval)
	}
	if n.lockHeld {
		// Fixed rate from the start of the last heartbeat, not LoopWait after a slow cycle:
		// heartbeats must stay LoopWait apart however long the leader's cycle takes.
		return max(time.Millisecond, n.lockConfirmedAt+n.timings().LoopWait-fence.Now())
	}
	if o.in.HoldsLock() || n.lastLeader == "" || n.lastLeader == n.cfg.Name {
		return next
	}
	if until := n.leaderSeenAt + n.timings().RaceAfter(n.announcedTTL) - fence.Now(); until > 0 && until < next {
		next = until + time.Millisecond
	}
	return next
}
