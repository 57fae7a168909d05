package daemon

// This file: backup-family jobs (backup, expire, check). Any member's API queues one in
// Consul (the job record plus its id in the queue key); the leader runs the queue one job at
// a time, so a second request waits for the first instead of failing on the tool's lock.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

const (
	// busyRetry is how long a job waits before it tries a busy repository again.
	busyRetry = 10 * time.Second
	// progressEvery bounds how often a job's progress is written to Consul.
	progressEvery = 5 * time.Second
	// queueWriteTries bounds the CAS attempts on the queue key.
	queueWriteTries = 8
	// catalogEvery is how often the leader reads the repository for the backup metrics.
	catalogEvery = 5 * time.Minute
)

// errNoBackupTool is returned by backup operations while the configuration names no tool.
var errNoBackupTool = &dynconf.FieldError{Field: "backup.tool", Reason: `no backup tool is configured: set one with PATCH /config {"backup": {"tool": ...}}`}

// BackupRequest asks for a backup of the given type (full when empty).
type BackupRequest struct {
	Type string
	// Schedule names the schedule that asked ("" for an operator).
	Schedule string
}

// jobRunner is the backup job this node runs, if any.
type jobRunner struct {
	mu     sync.Mutex // guards id, cancel and stopped
	id     string
	cancel context.CancelFunc
	// stopped is set when the job was cancelled before its task installed cancel.
	stopped bool
}

// current is the job running here ("" none).
func (r *jobRunner) current() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id
}

func (r *jobRunner) busy() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.id != ""
}

// start marks job id as running here (before its task starts).
func (r *jobRunner) start(id string) {
	r.mu.Lock()
	r.id, r.cancel, r.stopped = id, nil, false
	r.mu.Unlock()
}

// running installs the task's cancel; it cancels at once when the job was stopped already.
func (r *jobRunner) running(cancel context.CancelFunc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel = cancel
	if r.stopped {
		cancel()
	}
}

func (r *jobRunner) done() {
	r.mu.Lock()
	r.id, r.cancel, r.stopped = "", nil, false
	r.mu.Unlock()
}

// stopUnlessLeader cancels the running job: only the leader runs jobs.
func (r *jobRunner) stopUnlessLeader(logger interface{ Warn(string, ...any) }) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.id == "" || r.stopped {
		return
	}
	logger.Warn("no longer the leader: cancelling the backup job", "job", r.id)
	r.stopped = true
	if r.cancel != nil {
		r.cancel()
	}
}

// StartBackup queues a backup job and returns its id.
func (n *Node) StartBackup(ctx context.Context, r BackupRequest) (string, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return "", err
	}
	if r.Type == "" {
		r.Type = dynconf.BackupFull
	}
	if !slices.Contains(dynconf.BackupTypes(cfg.Tool), r.Type) {
		return "", &dynconf.FieldError{Field: "type", Value: r.Type, Reason: fmt.Sprintf("%s takes %v backups", cfg.Tool, dynconf.BackupTypes(cfg.Tool))}
	}
	return n.queueBackupJob(ctx, consul.Job{Kind: consul.JobBackupKind, Backup: &consul.JobBackup{Tool: cfg.Tool, Type: r.Type, Schedule: r.Schedule}})
}

// StartBackupExpire queues a job that applies the retention.
func (n *Node) StartBackupExpire(ctx context.Context) (string, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return "", err
	}
	return n.queueBackupJob(ctx, consul.Job{Kind: consul.JobExpireKind, Backup: &consul.JobBackup{Tool: cfg.Tool}})
}

// StartBackupCheck queues a job that checks the repository and archiving from the primary.
func (n *Node) StartBackupCheck(ctx context.Context) (string, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return "", err
	}
	return n.queueBackupJob(ctx, consul.Job{Kind: consul.JobCheckKind, Backup: &consul.JobBackup{Tool: cfg.Tool}})
}

// queueBackupJob records j and appends it to the cluster's backup queue.
func (n *Node) queueBackupJob(ctx context.Context, j consul.Job) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 4*n.timings().RetryTimeout)
	defer cancel()
	id, err := n.jobs.create(cctx, j)
	if err != nil {
		return "", err
	}
	if err := n.editQueue(cctx, func(q *consul.BackupQueue) { q.Jobs = append(q.Jobs, id) }); err != nil {
		n.jobs.phase(cctx, id, "not queued", consul.JobFailed, err.Error())
		return "", fmt.Errorf("queue job %s: %w", id, err)
	}
	n.logger.Info("backup job queued", "job", id, "kind", j.Kind)
	return id, nil
}

// editQueue changes the queue key by CAS.
func (n *Node) editQueue(ctx context.Context, edit func(*consul.BackupQueue)) error {
	var last error
	for range queueWriteTries {
		var q consul.BackupQueue
		idx, err := n.store.GetJSON(ctx, consul.KeyBackupQueue, true, &q)
		switch {
		case errors.Is(err, consul.ErrNotFound):
			idx = 0
		case err != nil:
			return err
		}
		edit(&q)
		raw, _ := json.Marshal(q)
		if last = n.store.CAS(ctx, consul.KeyBackupQueue, raw, idx); last == nil {
			return nil
		}
		if !errors.Is(last, consul.ErrConflict) {
			return last
		}
	}
	return last
}

// updateJob changes a job by CAS (a few attempts).
func (n *Node) updateJob(ctx context.Context, id string, edit func(*consul.Job)) error {
	var last error
	for range queueWriteTries {
		var j consul.Job
		idx, err := n.store.GetJSON(ctx, consul.JobKey(id), true, &j)
		if err != nil {
			return err
		}
		edit(&j)
		raw, _ := json.Marshal(j)
		if last = n.store.CAS(ctx, consul.JobKey(id), raw, idx); last == nil {
			return nil
		}
		if !errors.Is(last, consul.ErrConflict) {
			return last
		}
	}
	return last
}

// dispatchBackupJobs starts the first queued job when none runs. Leader's loop only.
func (n *Node) dispatchBackupJobs(_ context.Context, o *observation) {
	if len(o.backupQueue.Jobs) == 0 || n.bk.runner.busy() {
		return
	}
	id := o.backupQueue.Jobs[0]
	view := jobView{others: otherMembers(o, n.cfg.Name), members: maps.Clone(o.members), lsn: o.in.PG.LSN, maxLag: o.dyn.MaximumLag(),
		replayed: replayedBy(o.pg.Replication)}
	n.bk.runner.start(id)
	n.tasks.run(func(ctx context.Context) {
		defer n.bk.runner.done()
		jctx, cancel := context.WithCancel(ctx)
		defer cancel()
		n.bk.runner.running(cancel)
		n.runBackupJob(jctx, id, view)
	})
}

// jobView is what the loop saw of the cluster when it dispatched a job.
type jobView struct {
	// others are the other members' names (an in-place restore waits for them).
	others []string
	// members are the member records and lsn the primary's position, maxLag the configured
	// maximum_lag_on_failover (the choice of a standby to back up).
	members map[string]consul.Member
	lsn     uint64
	maxLag  uint64
	// replayed is each streaming standby's replay position as the primary saw it this
	// cycle (pg_stat_replication): fresher than the member records, which an idle standby
	// republishes only every 30 s.
	replayed map[string]uint64
}

// runBackupJob takes the job, runs it and removes it from the queue.
func (n *Node) runBackupJob(ctx context.Context, id string, view jobView) {
	budget := n.timings().RetryTimeout * 4
	cctx, cancel := context.WithTimeout(ctx, budget)
	var j consul.Job
	_, err := n.store.GetJSON(cctx, consul.JobKey(id), true, &j)
	cancel()
	dequeue := func() {
		qctx, qcancel := context.WithTimeout(context.WithoutCancel(ctx), budget)
		defer qcancel()
		if err := n.editQueue(qctx, func(q *consul.BackupQueue) {
			q.Jobs = slices.DeleteFunc(q.Jobs, func(s string) bool { return s == id })
			if q.Restore != nil && q.Restore.Job == id {
				// An in-place restore interrupted by a restart of ramd: the cluster is
				// released (a data directory kept aside stays for the operator).
				q.Restore = nil
			}
		}); err != nil {
			n.logger.Error("remove job from the backup queue", "job", id, "err", err)
		}
	}
	switch {
	case errors.Is(err, consul.ErrNotFound):
		dequeue()
		return
	case err != nil:
		n.logger.Warn("read queued backup job", "job", id, "err", err)
		return
	case j.State == consul.JobSucceeded || j.State == consul.JobFailed:
		dequeue()
		return
	case j.State == consul.JobRunning:
		why := fmt.Sprintf("%s stopped running the job (it lost the leadership or stopped)", j.Node)
		if j.Node == n.cfg.Name {
			why = fmt.Sprintf("ramd on %s restarted while the job ran", j.Node)
		}
		n.finishBackupJob(ctx, id, errors.New(why))
		dequeue()
		return
	}
	tool, m, cfg, err := n.currentTool()
	if err != nil {
		n.finishBackupJob(ctx, id, err)
		dequeue()
		return
	}
	now := time.Now().UTC()
	uctx, ucancel := context.WithTimeout(ctx, budget)
	err = n.updateJob(uctx, id, func(j *consul.Job) {
		j.State, j.Node = consul.JobRunning, n.cfg.Name
		j.Phases = append(j.Phases, consul.JobPhase{Name: "running on " + n.cfg.Name, At: now, Node: n.cfg.Name})
		if j.Backup == nil {
			j.Backup = &consul.JobBackup{Tool: cfg.Tool}
		}
		j.Backup.StartedAt = &now
	})
	ucancel()
	if err != nil {
		n.logger.Warn("take backup job", "job", id, "err", err)
		return
	}
	n.tracePhase(ctx, "running")
	if j.Kind == consul.JobRestoreKind {
		// The tool's timeout bounds the restore itself; the waits for the members have
		// their own bounds.
		err = n.runRestore(ctx, id, j, tool, m, view.others)
		n.finishBackupJob(ctx, id, err)
		dequeue()
		return
	}
	jctx, jcancel := context.WithTimeout(ctx, cfg.TimeoutValue())
	defer jcancel()
	var info backup.Info
	switch j.Kind {
	case consul.JobBackupKind:
		info, err = n.takeBackup(jctx, id, tool, m, cfg, j.Backup.Type, view)
	case consul.JobExpireKind:
		err = tool.Expire(jctx, m)
	case consul.JobCheckKind:
		err = tool.Check(jctx, m)
		n.bk.stats.setCheck(err)
	default:
		err = fmt.Errorf("unknown backup job kind %q", j.Kind)
	}
	if err == nil && j.Kind == consul.JobBackupKind {
		// Retention runs after every backup (pgBackRest expires by itself; Barman in cron).
		if xerr := tool.Expire(jctx, m); xerr != nil {
			n.logger.Warn("apply retention after the backup", "job", id, "err", xerr)
		} else {
			n.jobs.phase(ctx, id, "retention applied", "", "")
		}
		n.bk.stats.refreshCatalog(ctx, tool, m, true)
	}
	if j.Kind == consul.JobBackupKind {
		n.bk.stats.recordBackup(cfg.Tool, j.Backup.Type, info, err)
	}
	n.finishBackupJob(ctx, id, err)
	dequeue()
}

// takeBackup runs the backup, waiting while the repository is busy, and records the
// tool's record of it in the job.
func (n *Node) takeBackup(ctx context.Context, id string, tool backup.Tool, m backup.Member, cfg *dynconf.Backup, typ string, view jobView) (backup.Info, error) {
	req := backup.BackupRequest{Type: typ, JobID: id, Member: m}
	maxLag := view.maxLag
	if maxLag == 0 {
		maxLag = defaultBackupLag
	}
	// pgBackRest backs up a standby through its TLS server, or one whose directory is on
	// this machine; Barman one it connects to; a custom tool gets the primary in its
	// request and decides.
	access := standbyAccessOf(cfg)
	src, err := chooseBackupSource(cfg.RunOnValue(), access, view.lsn, maxLag, n.backupCandidates(access, view.members, view.replayed))
	served := n.cfg.Name
	reason := src.Reason
	if err != nil {
		served, reason = "", err.Error()
	}
	if src.Standby != "" {
		served = src.Standby
		sm := standbyMember(m, src.Standby, view.members[src.Standby])
		if access == standbyTLS {
			sm = remoteStandbyMember(m, src.Standby, view.members[src.Standby])
			req.StandbyRemote = true
			reason += " (through its pgBackRest TLS server at " + net.JoinHostPort(sm.Host, strconv.Itoa(cfg.PgBackRest.TLSServer.PortValue())) + ")"
		}
		req.Member, req.Primary = sm, &m
	}
	rctx, rcancel := context.WithTimeout(ctx, n.timings().RetryTimeout*4)
	_ = n.updateJob(rctx, id, func(j *consul.Job) { j.Backup.Member, j.Backup.MemberReason = served, reason })
	rcancel()
	if err != nil {
		return backup.Info{}, err
	}
	n.jobs.phase(ctx, id, "taking the backup from "+served+": "+reason, "", "")
	var lastWrite time.Time
	progress := func(p backup.Progress) {
		if time.Since(lastWrite) < progressEvery {
			return
		}
		lastWrite = time.Now()
		pctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		defer cancel()
		_ = n.updateJob(pctx, id, func(j *consul.Job) { j.Backup.Progress = p.Message })
	}
	for attempt := 1; ; attempt++ {
		info, err := tool.Backup(ctx, req, progress)
		if !errors.Is(err, backup.ErrBusy) {
			if err == nil {
				n.recordBackupInfo(ctx, id, info)
			}
			return info, err
		}
		n.jobs.phase(ctx, id, fmt.Sprintf("repository busy (attempt %d): waiting", attempt), "", "")
		_ = n.updateJob(ctx, id, func(j *consul.Job) { j.Backup.Attempts = attempt })
		select {
		case <-ctx.Done():
			return info, fmt.Errorf("waiting for the busy repository: %w", ctx.Err())
		case <-time.After(busyRetry):
		}
	}
}

func (n *Node) recordBackupInfo(ctx context.Context, id string, info backup.Info) {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout*4)
	defer cancel()
	_ = n.updateJob(cctx, id, func(j *consul.Job) {
		b := j.Backup
		b.Label, b.StartLSN, b.StopLSN, b.WALStart, b.WALStop = info.ID, info.StartLSN, info.StopLSN, info.WALStart, info.WALStop
		b.Size, b.RepoSize = info.Size, info.RepoSize
		if !info.Stop.IsZero() {
			t := info.Stop.UTC()
			b.StoppedAt = &t
		}
		b.Progress = ""
	})
}

// finishBackupJob ends a job as succeeded or failed with the error and the tool's output tail.
func (n *Node) finishBackupJob(ctx context.Context, id string, err error) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.timings().RetryTimeout*4)
	defer cancel()
	now := time.Now().UTC()
	state, phase := consul.JobSucceeded, "succeeded"
	if err != nil {
		state, phase = consul.JobFailed, "failed"
		if ctx.Err() != nil && errors.Is(err, context.Canceled) {
			err = fmt.Errorf("%s lost the leadership or stopped while the job ran: %w", n.cfg.Name, err)
		}
	}
	werr := n.updateJob(cctx, id, func(j *consul.Job) {
		j.State, j.FinishedAt = state, &now
		j.Phases = append(j.Phases, consul.JobPhase{Name: phase, At: now, Node: n.cfg.Name})
		if err != nil {
			j.Error = err.Error()
			var ce *pg.CommandError
			if errors.As(err, &ce) && j.Backup != nil {
				j.Backup.Output = ce.Output
			}
		}
		if j.Backup != nil && j.Backup.StoppedAt == nil {
			j.Backup.StoppedAt = &now
		}
	})
	if werr != nil {
		n.logger.Error("record the end of a backup job", "job", id, "err", werr)
	}
	if err != nil {
		n.logger.Error("backup job failed", "job", id, "err", err)
	} else {
		n.logger.Info("backup job succeeded", "job", id)
	}
}

// BackupCatalog reads the repository from this node.
func (n *Node) BackupCatalog(ctx context.Context) (backup.Catalog, string, error) {
	tool, m, cfg, err := n.currentTool()
	if err != nil {
		return backup.Catalog{}, "", err
	}
	c, err := tool.List(ctx, m)
	return c, cfg.Tool, err
}
