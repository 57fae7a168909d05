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

// Errors of switchover requests, for the API to map to status codes.
var (
	ErrSwitchoverPending = errors.New("daemon: a switchover is already pending")
	ErrNotLeader         = errors.New("daemon: the named leader does not hold the lock")
	ErrBadCandidate      = errors.New("daemon: candidate is not a member that can take over")
	ErrNoLeader          = errors.New("daemon: the cluster has no leader")
	ErrPaused            = errors.New("daemon: paused: a named candidate is required")
)

// candidateWait bounds how long a stopped primary waits for the candidate to receive its
// shutdown checkpoint before it gives up and starts again as primary.
const candidateWait = 10 * time.Second

// SwitchoverRequest asks for a planned switchover (From set) or a manual failover (From
// empty, To required).
type SwitchoverRequest struct {
	From        string
	To          string
	ScheduledAt time.Time
	// AllowDataLoss lets a failover promote a candidate that may lack commits.
	AllowDataLoss bool
}

// RequestSwitchover validates a request against what Consul says now, records a job and the
// failover key (create-only: one request at a time), wakes the loop and returns the job id.
func (n *Node) RequestSwitchover(ctx context.Context, r SwitchoverRequest) (string, error) {
	leader, err := n.store.Get(ctx, consul.KeyLeader, true)
	switch {
	case errors.Is(err, consul.ErrNotFound):
		if r.From != "" {
			return "", ErrNoLeader
		}
	case err != nil:
		return "", fmt.Errorf("read leader: %w", err)
	case leader.Session == "":
		if r.From != "" {
			return "", ErrNoLeader
		}
	case r.From != "" && string(leader.Value) != r.From:
		return "", fmt.Errorf("%w: %s holds it", ErrNotLeader, string(leader.Value))
	case r.From == "":
		// A failover request while a leader lives is a switchover from it (as Patroni does).
		r.From = string(leader.Value)
	}
	if r.From == "" && r.To == "" {
		return "", fmt.Errorf("%w: a failover needs a candidate", ErrBadCandidate)
	}
	if r.To != "" {
		if r.To == r.From {
			return "", fmt.Errorf("%w: candidate is the current leader", ErrBadCandidate)
		}
		var m consul.Member
		if _, err := n.store.GetJSON(ctx, consul.MemberKey(r.To), true, &m); err != nil {
			return "", fmt.Errorf("%w: %s: %w", ErrBadCandidate, r.To, err)
		}
	}
	kind := "switchover"
	if r.From == "" {
		kind = "failover"
	}
	job := consul.Job{Kind: kind, From: r.From, To: r.To} // the nodes that carry it out continue its trace
	if !r.ScheduledAt.IsZero() {
		job.ScheduledAt = r.ScheduledAt.UTC().Format(time.RFC3339)
	}
	id, err := n.jobs.create(ctx, job)
	if err != nil {
		return "", err
	}
	f := consul.Failover{Leader: r.From, Member: r.To, JobID: id, ScheduledAt: job.ScheduledAt}
	fb, _ := json.Marshal(f)
	if err := n.store.CAS(ctx, consul.KeyFailover, fb, 0); err != nil {
		_ = n.store.Delete(ctx, consul.JobKey(id))
		if errors.Is(err, consul.ErrConflict) {
			return "", ErrSwitchoverPending
		}
		return "", fmt.Errorf("record switchover: %w", err)
	}
	n.Wake()
	return id, nil
}

// switchover hands the lock to target: checkpoint, fail the routing check, stop cleanly, wait
// until target received the shutdown checkpoint, then release. If target never catches up,
// PostgreSQL starts again as primary (the lock was never released) and the job fails.
func (n *Node) switchover(ctx context.Context, o *observation, target string) error {
	jobID := o.failover.JobID
	n.jobs.phase(ctx, jobID, "checkpoint", consul.JobRunning, "")
	cctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := n.pg.Checkpoint(cctx); err != nil {
		n.logger.Warn("checkpoint before switchover", "err", err)
	}
	if n.registry != nil {
		_ = n.registry.MarkCritical(cctx, "switchover to "+target)
	}
	n.jobs.phase(ctx, jobID, "stopping", "", "")
	n.setState("stopping")
	if err := n.pg.Stop(cctx, pg.StopFast); err != nil {
		return fmt.Errorf("stop for switchover: %w", err)
	}
	_ = n.guard.Disarm()
	cd, err := n.pg.ControlData(cctx)
	if err != nil {
		return fmt.Errorf("read final position: %w", err)
	}
	n.jobs.phase(ctx, jobID, "waiting for candidate", "", "")
	if err := n.waitReceived(ctx, target, uint64(cd.CheckpointLSN)); err != nil {
		n.logger.Error("candidate did not catch up; staying primary", "candidate", target, "err", err)
		n.finishSwitchover(ctx, o, false, fmt.Sprintf("candidate %s did not receive everything: %v", target, err))
		sctx, scancel := context.WithTimeout(ctx, startTimeout)
		defer scancel()
		if serr := n.startPG(sctx, n.armOnSpawn); serr != nil {
			return serr
		}
		n.confirmed(n.lock.ConfirmedAt)
		return err
	}
	n.jobs.phase(ctx, jobID, "releasing", "", "")
	n.lock.ConfirmedAt, n.lock.Held = 0, false
	n.publishStopped(ctx, o)
	if err := n.dropLeaderKey(ctx); err != nil {
		return err
	}
	n.logger.Info("switchover: lock released", "candidate", target, "lsn", cd.CheckpointLSN)
	return nil
}

// waitReceived asks the candidate's PostgreSQL directly (fresh, not its API's last
// snapshot) until it received past lsn, the stopped primary's shutdown checkpoint.
func (n *Node) waitReceived(ctx context.Context, target string, lsn uint64) error {
	conn, err := n.memberConn(target, false)
	if err != nil {
		return err
	}
	deadline := fence.Now() + candidateWait
	var last error
	for i := 0; fence.Now() < deadline && i < 5000; i++ {
		qctx, cancel := context.WithTimeout(ctx, time.Second)
		got, err := pg.ReceivedLSN(qctx, conn)
		cancel()
		if err == nil && uint64(got) > lsn {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if last != nil {
		return fmt.Errorf("not past %s within %s: %w", pg.LSN(lsn), candidateWait, last)
	}
	return fmt.Errorf("not past %s within %s", pg.LSN(lsn), candidateWait)
}

// finishSwitchover clears the failover key and closes the job.
func (n *Node) finishSwitchover(ctx context.Context, o *observation, ok bool, why string) {
	if o.failover == nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.store.DeleteCAS(cctx, consul.KeyFailover, o.failIdx); err != nil {
		n.logger.Warn("clear failover key", "err", err)
	}
	if ok {
		n.jobs.phase(ctx, o.failover.JobID, "promoted", consul.JobSucceeded, "")
	} else {
		n.jobs.phase(ctx, o.failover.JobID, "failed", consul.JobFailed, why)
	}
}

func (n *Node) rejectSwitchover(ctx context.Context, o *observation) error {
	n.logger.Warn("switchover refused", "reason", n.lastPlan)
	n.finishSwitchover(ctx, o, false, n.lastPlan)
	return nil
}

// ErrNoSwitchover is returned when no switchover is pending.
var ErrNoSwitchover = errors.New("daemon: no switchover is pending")

// CancelSwitchover removes a pending (scheduled or not yet started) switchover by CAS and
// marks its job failed. consul.ErrConflict when it changed meanwhile.
func (n *Node) CancelSwitchover(ctx context.Context) error {
	var f consul.Failover
	idx, err := n.store.GetJSON(ctx, consul.KeyFailover, true, &f)
	if errors.Is(err, consul.ErrNotFound) {
		return ErrNoSwitchover
	}
	if err != nil {
		return fmt.Errorf("read switchover: %w", err)
	}
	if err := n.store.DeleteCAS(ctx, consul.KeyFailover, idx); err != nil {
		return fmt.Errorf("cancel switchover: %w", err)
	}
	n.jobs.phase(ctx, f.JobID, "cancelled", consul.JobFailed, "cancelled by request")
	return nil
}
