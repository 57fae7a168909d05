package daemon

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/pg"
)

// Local operations are a restart, a reinitialization or a reload of this node's PostgreSQL,
// asked for through the API. The HA loop carries them out at the end of a cycle, so
// PostgreSQL keeps a single owner: the operation only stops the server (and, to reinitialize,
// removes the data directory); the next cycle's plan starts it again the way it starts a
// crashed server (as primary under the lock it still holds, or as a replica of the leader,
// cloning first when the directory is empty). While it runs, a leader keeps heartbeating, and
// its API says it holds the lock, so the replicas do not race.

// Errors of local operations, for the API to map to status codes.
var (
	// ErrBusy: another local operation is queued or running (Patroni: "... already in progress").
	ErrBusy = errors.New("daemon: another operation is in progress")
	// ErrConditions: the restart filters (role, postgres_version, restart_pending) do not match.
	ErrConditions = errors.New("daemon: restart conditions are not satisfied")
	// ErrRestartScheduled: a scheduled restart exists already.
	ErrRestartScheduled = errors.New("daemon: another restart is already scheduled")
	// ErrNoScheduledRestart: DELETE found no scheduled restart.
	ErrNoScheduledRestart = errors.New("daemon: no restarts are scheduled")
	// ErrPausedSchedule: restarts are not scheduled while the cluster is paused.
	ErrPausedSchedule = errors.New("daemon: can't schedule restart in the paused state")
	// ErrIsLeader: the leader is never reinitialized.
	ErrIsLeader = errors.New("daemon: I am the leader, can not reinitialize")
	// ErrNoLeaderToClone: without a leader there is nothing to reinitialize from.
	ErrNoLeaderToClone = errors.New("daemon: cluster has no leader, can not reinitialize")
	// ErrNotReady: the loop has not published its first status yet.
	ErrNotReady = errors.New("daemon: node status not available yet")
	// ErrStillRunning: the operation did not end within the caller's wait; its job goes on.
	ErrStillRunning = errors.New("daemon: postgres is still starting")
	// ErrConsulDown: operations wait for Consul; without it a stopped leader could not be
	// started again under its lock.
	ErrConsulDown = errors.New("daemon: consul is unreachable")
	// ErrShuttingDown: ramd is stopping and takes no more operations.
	ErrShuttingDown = errors.New("daemon: ramd is shutting down")
)

// Operation kinds.
const (
	OpRestart      = "restart"
	OpReinitialize = "reinitialize"
)

// RestartRequest is Patroni's restart request: filters that must all match, an optional
// schedule, and a timeout for PostgreSQL to come back.
type RestartRequest struct {
	// Role restricts the restart to a node in this role: "primary" (Patroni's "master" too),
	// "replica" or "standby_leader". Empty: any role.
	Role string `json:"role,omitempty"`
	// PostgresVersion restricts the restart to a server older than this version
	// (server_version_num, e.g. 150004 for "15.4"); 0: any version.
	PostgresVersion int `json:"postgres_version,omitempty"`
	// RestartPending restricts the restart to a server with settings waiting for a restart.
	RestartPending bool `json:"restart_pending,omitempty"`
	// Timeout bounds how long the restart may take before it is reported failed; 0 means
	// the start timeout.
	Timeout time.Duration `json:"timeout,omitempty"`
	// Schedule, when set, runs the restart at that time instead of now.
	Schedule time.Time `json:"schedule,omitzero"`
}

// ScheduledRestart is a restart waiting for its time, as published in the member record and
// /patroni. PostmasterStart is the server's start time when it was scheduled: a restart that
// happened meanwhile cancels it (as in Patroni).
type ScheduledRestart struct {
	RestartRequest
	PostmasterStart time.Time `json:"postmaster_start_time,omitzero"`
	JobID           string    `json:"job_id,omitempty"`
}

// localOps is the state of the local operations (restart, reload, reinitialize, a scheduled
// restart, an operator's stop): API handlers queue them, the loop carries them out.
type localOps struct {
	// mu guards every field below but reloadRequested.
	mu sync.Mutex
	// op is the operation queued or running; scheduled a restart waiting for its time.
	op        *localOp
	scheduled *ScheduledRestart
	// replaced are operations a forced one replaced, for the loop to close their jobs.
	replaced []*localOp
	// operatorStopped is set while PostgreSQL is down because an operation stopped it: the
	// plans start it again, also in pause, even after the operation gave up.
	operatorStopped bool
	// restartOverdue is set when a leader's restart requested with a timeout did not bring
	// PostgreSQL back in time; the plan then hands over.
	restartOverdue bool
	// closing is set once ramd shuts down: no more operations are taken.
	closing         bool
	reloadRequested atomic.Bool
}

// ParsePostgresVersion turns "15", "15.4", "9.6.3" or "150004" into server_version_num.
func ParsePostgresVersion(s string) (int, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.Atoi(s); err == nil && n >= 90000 {
		return n, nil
	}
	parts := strings.Split(s, ".")
	nums := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || len(parts) > 3 {
			return 0, fmt.Errorf("%q is not a PostgreSQL version like 15.4", s)
		}
		nums[i] = n
	}
	switch {
	case nums[0] >= 10 && len(nums) <= 2:
		v := nums[0] * 10000
		if len(nums) == 2 {
			v += nums[1]
		}
		return v, nil
	case nums[0] == 9 && len(nums) >= 2:
		v := 90000 + nums[1]*100
		if len(nums) == 3 {
			v += nums[2]
		}
		return v, nil
	}
	return 0, fmt.Errorf("%q is not a PostgreSQL version like 15.4", s)
}

// restartMismatch says why st does not match the filters of r ("" when it does).
func restartMismatch(r RestartRequest, st *Status) string {
	switch role := r.Role; {
	case role == "master":
		role = string(RolePrimary)
		fallthrough
	case role != "":
		if string(st.Role) != role {
			return "host role mismatch"
		}
	}
	if r.PostgresVersion > 0 && r.PostgresVersion <= st.ServerVersion {
		return "postgres version mismatch"
	}
	if r.RestartPending && !st.PendingRestart {
		return "pending restart flag is not set"
	}
	return ""
}

// localOp is one queued or running local operation.
type localOp struct {
	kind       string
	restart    RestartRequest
	fromLeader bool
	jobID      string
	// done receives the outcome once (buffered).
	done chan error
	// stopping is set while PostgreSQL shuts down in the background (stopDone reports the
	// end); stopped once it is down, and the next plans start it.
	stopping bool
	stopDone chan error
	stopped  bool
	deadline time.Time
}

// Restart restarts PostgreSQL now and waits until it runs again, ctx ends (ErrStillRunning;
// the restart goes on) or it failed. It returns the job id that tracks it.
func (n *Node) Restart(ctx context.Context, r RestartRequest) (string, error) {
	st := n.Status()
	if st == nil {
		return "", ErrNotReady
	}
	if !st.DCSReachable {
		return "", ErrConsulDown
	}
	if why := restartMismatch(r, st); why != "" {
		return "", fmt.Errorf("%w: %s", ErrConditions, why)
	}
	op := &localOp{kind: OpRestart, restart: r, done: make(chan error, 1)}
	if err := n.enqueue(ctx, op, false); err != nil {
		return "", err
	}
	select {
	case err := <-op.done:
		return op.jobID, err
	case <-ctx.Done():
		return op.jobID, ErrStillRunning
	}
}

// enqueue records the operation's job and makes op the current local operation. With
// force, a queued or running one is replaced (and told so); otherwise ErrBusy, and nothing
// is recorded.
func (n *Node) enqueue(ctx context.Context, op *localOp, force bool) error {
	n.ops.mu.Lock()
	cur, closing := n.ops.op, n.ops.closing
	n.ops.mu.Unlock()
	if closing {
		return ErrShuttingDown
	}
	if cur != nil && !force {
		return fmt.Errorf("%w: %s already in progress", ErrBusy, cur.kind)
	}
	op.jobID = n.jobs.record(ctx, op.kind, n.cfg.Name)
	if err := n.queue(op, force); err != nil {
		n.jobs.phase(ctx, op.jobID, "refused", consul.JobFailed, err.Error())
		return err
	}
	n.Wake()
	return nil
}

// queue makes op the current local operation. With force, a queued or running one is
// replaced (and told so); otherwise ErrBusy.
func (n *Node) queue(op *localOp, force bool) error {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	if n.ops.closing {
		return ErrShuttingDown
	}
	if cur := n.ops.op; cur != nil {
		if !force || cur.stopping {
			// A server in the middle of its shutdown is left to finish it.
			return fmt.Errorf("%w: %s already in progress", ErrBusy, cur.kind)
		}
		n.ops.replaced = append(n.ops.replaced, cur)
	}
	n.ops.op = op
	return nil
}

// ScheduleRestart records a restart to run at r.Schedule and returns its job id.
func (n *Node) ScheduleRestart(ctx context.Context, r RestartRequest) (string, error) {
	st := n.Status()
	if st == nil {
		return "", ErrNotReady
	}
	if st.Paused {
		return "", ErrPausedSchedule
	}
	n.ops.mu.Lock()
	busy, closing := n.ops.scheduled != nil, n.ops.closing
	n.ops.mu.Unlock()
	switch {
	case closing:
		return "", ErrShuttingDown
	case busy:
		return "", ErrRestartScheduled
	}
	id, err := n.jobs.create(ctx, consul.Job{Kind: OpRestart, From: n.cfg.Name, ScheduledAt: r.Schedule.UTC().Format(time.RFC3339)})
	if err != nil {
		return "", err
	}
	n.ops.mu.Lock()
	if n.ops.scheduled != nil {
		n.ops.mu.Unlock()
		n.jobs.phase(ctx, id, "refused", consul.JobFailed, ErrRestartScheduled.Error())
		return "", ErrRestartScheduled
	}
	n.ops.scheduled = &ScheduledRestart{RestartRequest: r, PostmasterStart: st.PostmasterStart, JobID: id}
	n.ops.mu.Unlock()
	n.Wake()
	return id, nil
}

// CancelScheduledRestart removes the scheduled restart (ErrNoScheduledRestart when none).
func (n *Node) CancelScheduledRestart(ctx context.Context) error {
	n.ops.mu.Lock()
	s := n.ops.scheduled
	n.ops.scheduled = nil
	n.ops.mu.Unlock()
	if s == nil {
		return ErrNoScheduledRestart
	}
	n.jobs.phase(ctx, s.JobID, "cancelled", consul.JobFailed, "cancelled by request")
	n.Wake()
	return nil
}

// ScheduledRestart returns the scheduled restart, nil when none.
func (n *Node) ScheduledRestart() *ScheduledRestart {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	if n.ops.scheduled == nil {
		return nil
	}
	s := *n.ops.scheduled
	return &s
}

// Reinitialize removes this replica's data directory and clones it again from the leader
// (fromLeader) or from a replica tagged clonefrom. It returns once the operation is queued,
// with the job id that tracks it. force replaces an operation in progress.
func (n *Node) Reinitialize(ctx context.Context, force, fromLeader bool) (string, error) {
	st := n.Status()
	if st == nil {
		return "", ErrNotReady
	}
	if st.HasLock || st.Leader == n.cfg.Name {
		return "", ErrIsLeader
	}
	if !st.DCSReachable {
		return "", ErrConsulDown
	}
	if st.Leader == "" {
		return "", ErrNoLeaderToClone
	}
	op := &localOp{kind: OpReinitialize, fromLeader: fromLeader, done: make(chan error, 1)}
	if err := n.enqueue(ctx, op, force); err != nil {
		return "", err
	}
	return op.jobID, nil
}

// Reload asks the loop to make PostgreSQL re-read its configuration (SIGHUP) at the end of
// the current cycle.
func (n *Node) Reload() {
	n.ops.reloadRequested.Store(true)
	n.Wake()
}

// operatorStart reports whether this node stopped PostgreSQL for a requested operation and
// its plans must start it again, also in pause; and whether a leader's restart requested
// with a timeout is overdue.
func (n *Node) operatorStart() (start, overdue bool) {
	n.ops.mu.Lock()
	defer n.ops.mu.Unlock()
	return n.ops.op != nil && n.ops.op.stopped || n.ops.operatorStopped, n.ops.restartOverdue
}

// runLocalOps runs at the end of a cycle: a pending reload, the start of a due scheduled
// restart, the stop of a queued operation, or the end of one whose server runs again.
func (n *Node) runLocalOps(ctx context.Context, o *observation) {
	if n.lock.Held && o.in.ConsulOK && !n.failsafeActive {
		n.jobs.startPrune(ctx)
	}
	n.ops.mu.Lock()
	replaced := n.ops.replaced
	n.ops.replaced = nil
	if running := o.in.PG.Running; running || !n.lock.Held {
		// Started again (pause keeps it as it is from now on), or no longer the leader. The
		// observation is fresh: publish re-reads the server after a cycle that acted.
		n.ops.operatorStopped, n.ops.restartOverdue = n.ops.operatorStopped && !running, false
	}
	n.ops.mu.Unlock()
	for _, r := range replaced {
		n.endOp(ctx, r, fmt.Errorf("cancelled by a forced %s", OpReinitialize))
	}
	if n.ops.reloadRequested.Swap(false) && n.pg.Running() {
		cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		if err := n.pg.Reload(cctx); err != nil {
			n.logger.Warn("reload requested through the API failed", "err", err)
		} else {
			n.logger.Info("postgres reloaded on request")
		}
		cancel()
	}
	if !o.in.ConsulOK {
		return // queued operations and schedules wait for Consul
	}
	n.ops.mu.Lock()
	op := n.ops.op
	var skipped *ScheduledRestart
	var why string
	if op == nil {
		op, skipped, why = n.dueScheduledRestart(o)
		n.ops.op = op
	}
	n.ops.mu.Unlock()
	if skipped != nil {
		n.logger.Info("scheduled restart cancelled", "reason", why)
		n.jobs.phase(ctx, skipped.JobID, "skipped", consul.JobFailed, why)
	}
	switch {
	case op == nil:
		return
	case op.stopped:
		n.checkOpDone(ctx, op)
		return
	case op.stopping:
		n.checkStopped(ctx, op)
		return
	}
	var err error
	switch op.kind {
	case OpRestart:
		err = n.stopForRestart(ctx, o, op)
	case OpReinitialize:
		err = n.stopForReinit(ctx, o, op)
		if err == nil {
			n.markStopped(op)
		}
	}
	if err != nil {
		n.endOp(ctx, op, err)
	}
}

// markStopped records that PostgreSQL is down for op: from now on the plans start it again,
// and the operation must end by its deadline.
func (n *Node) markStopped(op *localOp) {
	timeout := op.restart.Timeout
	if timeout <= 0 {
		timeout = startTimeout
	}
	if op.kind == OpReinitialize {
		timeout = cloneTimeout
	}
	n.ops.mu.Lock()
	op.stopping, op.stopped, n.ops.operatorStopped = false, true, true
	op.deadline = time.Now().Add(timeout)
	n.ops.mu.Unlock()
	n.Wake() // the next cycle starts it at once
}

// checkStopped looks whether the background shutdown of op ended.
func (n *Node) checkStopped(ctx context.Context, op *localOp) {
	select {
	case err := <-op.stopDone:
		if err != nil {
			n.endOp(ctx, op, fmt.Errorf("stop for restart: %w", err))
			return
		}
		_ = n.guard.Disarm()
		n.setState("stopped")
		n.jobs.phase(ctx, op.jobID, "starting", "", "")
		n.markStopped(op)
	default:
	}
}

// dueScheduledRestart turns a scheduled restart that is due into the current operation, or
// drops it (returned with the reason) when the server restarted meanwhile, the cluster is
// paused or the filters no longer match. Called with opMu held.
func (n *Node) dueScheduledRestart(o *observation) (*localOp, *ScheduledRestart, string) {
	s := n.ops.scheduled
	if s == nil || time.Now().Before(s.Schedule) {
		return nil, nil, ""
	}
	n.ops.scheduled = nil
	st := n.Status()
	why := ""
	switch {
	case st == nil:
		why = "no status"
	case !s.PostmasterStart.IsZero() && !st.PostmasterStart.IsZero() && !st.PostmasterStart.Equal(s.PostmasterStart):
		why = "postgres restart has already happened at " + st.PostmasterStart.Format(time.RFC3339)
	case o.dyn.Pause:
		why = "the cluster is paused"
	default:
		why = restartMismatch(s.RestartRequest, st)
	}
	if why != "" {
		return nil, s, why
	}
	n.logger.Info("scheduled restart is due", "schedule", s.Schedule)
	return &localOp{kind: OpRestart, restart: s.RestartRequest, jobID: s.JobID, done: make(chan error, 1)}, nil, ""
}

// stopForRestart starts a fast stop of PostgreSQL in the background, after a checkpoint
// bounded by a quarter of the fencing deadline (it only makes the shutdown checkpoint
// short). The loop goes on meanwhile: a leader keeps heartbeating, and the fence guard stays
// armed, while the server shuts down; checkStopped sees the end.
func (n *Node) stopForRestart(ctx context.Context, o *observation, op *localOp) error {
	n.jobs.phase(ctx, op.jobID, "stopping", consul.JobRunning, "")
	if !n.pg.Running() {
		n.markStopped(op)
		return nil
	}
	n.logger.Info("restarting postgres on request", "job", op.jobID)
	if !o.in.HoldsLock() {
		// A synchronous standby first asks to be removed, so commits do not wait for it.
		if err := n.leaveSync(ctx); err != nil {
			n.logger.Warn("restarting while still a synchronous standby", "err", err)
		}
	} else {
		cctx, cancel := context.WithTimeout(ctx, min(n.timings().LoopWait, n.timings().FenceAfter()/4))
		if err := n.pg.Checkpoint(cctx); err != nil {
			n.logger.Warn("checkpoint before restart", "err", err)
		}
		cancel()
	}
	n.setState("stopping")
	op.stopDone = make(chan error, 1)
	n.ops.mu.Lock()
	op.stopping = true
	n.ops.mu.Unlock()
	n.tasks.run(func(context.Context) {
		// pg.Stop is bounded: stopTimeout, then immediate, then SIGKILL. It is not cut short
		// when the node shuts down: shutdown waits for it, then stops PostgreSQL itself.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		defer cancel()
		op.stopDone <- n.pg.Stop(cctx, pg.StopFast)
		n.Wake()
	})
	return nil
}

// stopForReinit stops a replica immediately and removes its data directory; the next plans
// clone it again. It checks again, with this cycle's observation, that this node is not the
// leader and that a live leader exists.
func (n *Node) stopForReinit(ctx context.Context, o *observation, op *localOp) error {
	switch {
	case o.in.HoldsLock() || o.in.Leader.Name == n.cfg.Name:
		return ErrIsLeader
	case !o.in.Leader.Present || !o.in.LeaderLive():
		// Without a live leader this copy may hold commits nobody else has.
		return ErrNoLeaderToClone
	case o.in.PG.Running && !o.in.PG.InRecovery:
		return fmt.Errorf("postgres runs as a primary here: refusing to remove its data")
	}
	n.jobs.phase(ctx, op.jobID, "stopping", consul.JobRunning, "")
	if err := n.leaveSync(ctx); err != nil {
		return fmt.Errorf("refusing to remove a synchronous standby's data: %w", err)
	}
	n.setState("stopping")
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := n.pg.Stop(sctx, pg.StopImmediate); err != nil {
		return fmt.Errorf("stop for reinitialize: %w", err)
	}
	_ = n.guard.Disarm()
	if err := n.removeDataDir(); err != nil {
		return err
	}
	n.pgMem.cloneFromLeader = op.fromLeader
	n.pgMem.following = ""
	n.jobs.phase(ctx, op.jobID, "cloning", "", "")
	return nil
}

// checkOpDone ends an operation whose server runs again, or that ran out of time.
func (n *Node) checkOpDone(ctx context.Context, op *localOp) {
	if n.pg.Running() {
		n.endOp(ctx, op, nil)
		return
	}
	if time.Now().After(op.deadline) {
		if op.kind == OpRestart && op.restart.Timeout > 0 && n.lock.Held {
			n.ops.mu.Lock()
			n.ops.restartOverdue = true
			n.ops.mu.Unlock()
			n.Wake()
		}
		n.endOp(ctx, op, fmt.Errorf("%s failed: postgres did not run again by %s", op.kind, op.deadline.Format(time.RFC3339)))
	}
}

// endOp finishes the current operation with err and closes its job.
func (n *Node) endOp(ctx context.Context, op *localOp, err error) {
	n.ops.mu.Lock()
	if n.ops.op == op {
		n.ops.op = nil
	}
	n.ops.mu.Unlock()
	n.pgMem.cloneFromLeader = false
	if err != nil {
		n.logger.Error("operation failed", "operation", op.kind, "job", op.jobID, "err", err)
		n.jobs.phase(ctx, op.jobID, "failed", consul.JobFailed, err.Error())
	} else {
		n.logger.Info("operation done", "operation", op.kind, "job", op.jobID)
		n.jobs.phase(ctx, op.jobID, "done", consul.JobSucceeded, "")
	}
	select {
	case op.done <- err:
	default:
	}
}

// closeLocalOps refuses further operations and closes the jobs of the queued one and of the
// scheduled restart: ramd is shutting down.
func (n *Node) closeLocalOps(ctx context.Context) {
	n.ops.mu.Lock()
	n.ops.closing = true
	op, scheduled, replaced := n.ops.op, n.ops.scheduled, n.ops.replaced
	n.ops.scheduled, n.ops.replaced = nil, nil
	n.ops.mu.Unlock()
	for _, r := range append(replaced, op) {
		if r != nil {
			n.endOp(ctx, r, ErrShuttingDown)
		}
	}
	if scheduled != nil {
		n.jobs.phase(ctx, scheduled.JobID, "cancelled", consul.JobFailed, ErrShuttingDown.Error())
	}
}
