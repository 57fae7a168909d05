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
	o, ok := n.runCycle(ctx, cycleSteps{observe: n.observe, decide: ha.Decide, prepare: n.followBackupConfig, do: n.do, tend: n.tend})
	if !ok {
		return n.timings().LoopWait
	}
	return n.nextWake(&o)
}

// cycleSteps are the parts of a cycle around its skeleton (runCycle): the loop passes its
// own methods; the telemetry tests pass stand-ins for the world and run the same skeleton.
type cycleSteps struct {
	observe func(context.Context) observation
	decide  func(ha.Input) ha.Plan
	// prepare runs after the decision and before the actions; tend after them.
	prepare func(context.Context, *observation)
	do      func(context.Context, *observation, ha.Action) error
	tend    func(context.Context, *observation, ha.Plan)
}

// runCycle is one cycle's skeleton: observe, decide, act, tend, each step measured and, when
// the cycle acts, traced. ok is false when ramd is stopping: what the cycle saw is the
// cancellation, not the cluster, so nothing was decided (the shutdown stops cleanly: a
// primary hands over, a synchronous standby leaves the set).
func (n *Node) runCycle(ctx context.Context, s cycleSteps) (o observation, ok bool) {
	tc := n.beginCycle()
	o = s.observe(ctx)
	tc.observed()
	if ctx.Err() != nil {
		return o, false
	}
	p := s.decide(o.in)
	ctx = tc.decided(ctx, &o, p)
	if str := p.String(); str != n.lastPlan {
		n.logger.InfoContext(ctx, "plan", "plan", str)
		n.lastPlan = str
	}
	s.prepare(ctx, &o)
	err := n.act(ctx, &o, p, s.do)
	switch {
	case errors.Is(err, errNotPublished):
		n.logger.InfoContext(ctx, "waiting for a member to publish its record", "plan", p.String(), "err", err)
	case err != nil:
		n.logger.ErrorContext(ctx, "action failed", "plan", p.String(), "err", err)
	}
	s.tend(ctx, &o, p)
	tc.end(err, o.in.ConsulOK)
	return o, true
}

// tend is the work of every cycle after its actions: configuration, backups, parameters,
// publication, local operations, password rotation, the initialize key's repair, a
// history entry whose first write failed and one that was never written.
func (n *Node) tend(ctx context.Context, o *observation, p ha.Plan) {
	n.restoreConfig(ctx, o)
	n.tendBackups(ctx, o)
	n.applyParameters(ctx, o)
	n.publish(ctx, o, p)
	n.releaseTakeover(o)
	n.runLocalOps(ctx, o)
	n.rotatePasswords(ctx, o)
	n.repairInitialize(ctx, o)
	n.retryHistory(ctx, o)
	n.recordTimeline(ctx, o)
}

// nextWake is when the next cycle is due (ha.NextWake): LoopWait, a leader's fixed heartbeat
// rate, or a replica's race time when that comes first.
func (n *Node) nextWake(o *observation) time.Duration {
	n.leading.Store(n.lock.Held)
	return ha.NextWake(ha.Wake{End: fence.Now(), Timings: n.timings(), Self: n.cfg.Name, HoldsKey: o.in.HoldsLock(),
		Lock: n.lock, Failsafe: n.failsafeActive, FailsafeInterval: failsafeInterval, Unconfirmed: n.failsafeFailed, Leadership: n.lead})
}
