package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/daemon/ha"
)

// Bounds of the long actions. Each says why it has its value.
const (
	// cloneTimeout bounds pg_basebackup: large databases take long; the loop is blocked
	// meanwhile, which is fine for a node that has nothing else to do.
	cloneTimeout = 6 * time.Hour
	// rewindTimeout bounds pg_rewind, which copies only changed blocks.
	rewindTimeout = 30 * time.Minute
	// startTimeout bounds a PostgreSQL start including crash recovery.
	startTimeout = 5 * time.Minute
	// replayTimeout bounds the wait for received WAL to be replayed before a promotion.
	replayTimeout = 10 * time.Second
	// promoteTimeout bounds pg_promote.
	promoteTimeout = 30 * time.Second
	// fenceStopTimeout bounds an immediate stop when fencing.
	fenceStopTimeout = 5 * time.Second
	// stopTimeout bounds a clean stop before it escalates to immediate.
	stopTimeout = 30 * time.Second
)

// act runs the plan in order and stops at the first failure.
// Each action runs in its own span (telemetry.go) and is counted.
func (n *Node) act(ctx context.Context, o *observation, p ha.Plan, do func(context.Context, *observation, ha.Action) error) error {
	t := n.telemetry()
	for _, a := range p.Actions {
		at := n.startAction(ctx, t, o, p, a)
		err := do(at.ctx, o, a) //nolint:contextcheck // at.ctx is ctx with the action's span
		at.end(err)
		if err != nil {
			return fmt.Errorf("%s: %w", a.Kind, err)
		}
	}
	return nil
}

func (n *Node) do(ctx context.Context, o *observation, a ha.Action) error {
	switch a.Kind {
	case ha.ActBootstrap:
		return n.bootstrap(ctx)
	case ha.ActClaimInitialize:
		return n.claimInitialize(ctx, o)
	case ha.ActClone:
		return n.clone(ctx, a.Target)
	case ha.ActReclone:
		if err := n.removeDataDir(); err != nil {
			return err
		}
		n.pgMem.rewindFailedFor = ""
		return n.clone(ctx, a.Target)
	case ha.ActRewind:
		return n.rewind(ctx, a.Target)
	case ha.ActStartReplica:
		return n.startReplica(ctx, a.Target)
	case ha.ActFollow:
		return n.follow(ctx, a.Target)
	case ha.ActHeartbeat:
		return n.heartbeat(ctx, o)
	case ha.ActFailsafe:
		return n.failsafe(ctx, o)
	case ha.ActStartPrimary:
		return n.startPrimary(ctx, o)
	case ha.ActAcquire:
		return n.acquire(ctx, o, a.Session)
	case ha.ActPromote:
		return n.promote(ctx, o)
	case ha.ActSwitchover:
		return n.switchover(ctx, o, a.Target)
	case ha.ActRejectSwitchover:
		return n.rejectSwitchover(ctx, o)
	case ha.ActFence:
		return n.fence(ctx, "lost the leader lock")
	case ha.ActRelease:
		return n.release(ctx, o, "handing over")
	case ha.ActFenceUnresponsive:
		return n.fenceUnresponsive(ctx, o)
	case ha.ActSyncStandbys:
		return n.syncStandbys(ctx, o)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

// errNotPublished: a member (typically a leader that just bootstrapped) has not published
// its record yet; the next cycle tries again. Not worth an error in the log.
var errNotPublished = errors.New("member record not published yet")
