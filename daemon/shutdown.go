package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/fence"
	"github.com/ramd-project/ramd/daemon/pg"
)

// shutdown stops the node cleanly. A primary stops PostgreSQL, announces it, releases the
// lock and waits (bounded) until a successor holds it, keeping the API up meanwhile so the
// replicas can confirm; then the registration, the member key and the session go.
func (n *Node) shutdown(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, stopTimeout+n.cfg.HandoverWait+10*time.Second)
	defer cancel()
	n.logger.Info("stopping")
	n.closeLocalOps(ctx)
	n.tasks.stop()
	n.jobs.wait()
	var errs []error
	if n.lock.Held {
		if err := n.release(ctx, nil, "shutting down"); err != nil {
			errs = append(errs, err)
		}
		n.waitSuccessor(ctx)
	} else if n.pg.Running() {
		_ = n.leaveSync(ctx) // logged; the stop goes on
		n.setState("stopping")
		n.publishStopping(ctx)
		sctx, scancel := context.WithTimeout(ctx, stopTimeout)
		if err := n.pg.Stop(sctx, pg.StopFast); err != nil {
			errs = append(errs, fmt.Errorf("stop postgres: %w", err))
		}
		scancel()
	}
	_ = n.guard.Disarm()
	cctx, ccancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer ccancel()
	if n.registry != nil {
		if err := n.registry.Deregister(cctx, n.cfg.Scope, n.cfg.Name); err != nil {
			errs = append(errs, err)
		}
	}
	if n.session != "" {
		if err := n.store.Release(cctx, consul.MemberKey(n.cfg.Name), n.session); err == nil {
			_ = n.store.Delete(cctx, consul.MemberKey(n.cfg.Name))
		}
		if err := n.consul.DestroySession(cctx, n.session); err != nil {
			errs = append(errs, fmt.Errorf("destroy session: %w", err))
		}
		n.session = ""
	}
	n.setState("stopped")
	n.logger.Info("stopped")
	return errors.Join(errs...)
}

// waitSuccessor waits until another member holds the leader key, at most HandoverWait, and
// only while another member could take over: a running replica. When every replica is
// stopping too (the whole cluster is being stopped), it returns as soon as none is left
// running instead of waiting out HandoverWait.
func (n *Node) waitSuccessor(ctx context.Context) {
	// Read the members now: the loop's view can predate replicas that just started, and
	// leaving without waiting deletes the record that tells them this node stopped.
	if n.successors(ctx) <= 0 {
		return
	}
	deadline := fence.Now() + n.cfg.HandoverWait
	for i := 0; fence.Now() < deadline && i < 10000; i++ {
		cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		p, err := n.store.Get(cctx, consul.KeyLeader, false)
		cancel()
		if err == nil && p.Session != "" && string(p.Value) != n.cfg.Name {
			n.logger.Info("handed over", "leader", string(p.Value))
			return
		}
		if i > 0 && n.successors(ctx) == 0 {
			n.logger.Info("no successor: every replica is stopping")
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
	n.logger.Warn("no successor took the lock within the handover wait")
}

// successors counts the other members that could take the lock: running replicas, as their
// records in Consul say. A stopping replica announces "stopping" (publishStopping) and
// removes its record once stopped. When the members cannot be read it answers -1: before
// the wait that means no wait (as when Consul is away), during it, go on waiting.
func (n *Node) successors(ctx context.Context) int {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	pairs, err := n.store.List(cctx, consul.KeyMembers)
	cancel()
	if err != nil {
		n.logger.Warn("read members before handing over", "err", err)
		return -1
	}
	others := 0
	for name, m := range consul.DecodeSnapshot(pairs).Members {
		if name != n.cfg.Name && m.State == "running" && m.Role == string(RoleReplica) {
			others++
		}
	}
	return others
}

// publishStopping announces in this replica's member record that it is stopping (and tagged
// nosync, so no leader makes it a synchronous standby now): a leader stopping at the same
// time does not wait for it to take over.
func (n *Node) publishStopping(ctx context.Context) {
	st := n.Status()
	if st == nil || n.session == "" {
		return
	}
	next := *st
	next.State, next.ReplicationState = "stopping", ""
	tags := map[string]any{}
	for k, v := range st.Tags {
		tags[k] = v
	}
	tags["nosync"] = true
	next.Tags = tags
	b, err := json.Marshal(n.memberRecord(&next))
	if err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.store.Acquire(cctx, consul.MemberKey(n.cfg.Name), b, n.session); err != nil {
		n.logger.Warn("publish stopping member", "err", err)
	}
}
