package daemon

// This file: the in-place restore of a running cluster, a job of the backup queue. The
// request names the cluster to confirm it; the leader runs the job in phases that every
// member follows through the restore state of the queue key (consul.RestoreState):
//
//  1. hold: the state is written; from then on no member races for the lock or starts
//     PostgreSQL by itself (ha.Input.Restoring), so nothing fails over in the middle;
//  2. the replicas stop their servers and acknowledge;
//  3. the leader stops its server, moves its data directory aside, restores the backup
//     with the cluster's own tool and repository, and starts it: it recovers to the
//     target and promotes on a new timeline (the system identifier is the backup's, which
//     is the cluster's, so archiving goes on into the same stanza or server);
//  4. the replicas remove their data directories (their history forked from the new
//     timeline's) and acknowledge;
//  5. the state is removed: the replicas clone from the leader as new members do, and the
//     job waits until each streams on the new timeline.
//
// A failure before the restored server promoted gives the old data directory back and
// starts the cluster as it was.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

const (
	// restoreAckWait bounds how long the leader waits for every member to acknowledge a
	// phase (stop, remove its data): a member's loop acts within a cycle or two.
	restoreAckWait = 2 * time.Minute
	// restorePoll is how often the leader reads the acknowledgements and the members.
	restorePoll = 500 * time.Millisecond
	// restoreStreamWait bounds the wait for the replicas to stream again after the restore
	// (a clone of the restored primary each).
	restoreStreamWait = 30 * time.Minute
)

// RestoreRequest asks for an in-place restore of the running cluster.
type RestoreRequest struct {
	// BackupID is the tool's backup label or id ("" the latest that reaches the target).
	BackupID string
	// Target is the recovery target (type "" recovers to the end of the archive).
	Target dynconf.RecoveryTarget
	// Confirm must be the cluster's name (scope).
	Confirm string
}

// checkRestoreRequest validates a restore request against the cluster's name and the
// repository's catalog; now is the time a target in the future is measured against.
func checkRestoreRequest(r RestoreRequest, scope string, cat backup.Catalog, now time.Time) *dynconf.FieldError {
	if fe := checkRestoreInput(r, scope, now); fe != nil {
		return fe
	}
	return checkRestoreCatalog(r, cat)
}

// checkRestoreInput validates what needs no repository: the confirmation and the target.
func checkRestoreInput(r RestoreRequest, scope string, now time.Time) *dynconf.FieldError {
	switch {
	case r.Confirm == "":
		return &dynconf.FieldError{Field: "confirm", Value: r.Confirm,
			Reason: fmt.Sprintf("is required: the cluster's name (%s), to confirm that every member's data is replaced", scope)}
	case r.Confirm != scope:
		return &dynconf.FieldError{Field: "confirm", Value: r.Confirm, Reason: fmt.Sprintf("is not this cluster's name (%s)", scope)}
	}
	return dynconf.CheckTarget(r.Target, "target", now)
}

// checkRestoreCatalog validates the backup and a time target against the repository: the
// backup must exist and be finished, the target after the first recoverability point (or
// after the end of the backup asked for).
func checkRestoreCatalog(r RestoreRequest, cat backup.Catalog) *dynconf.FieldError {
	var first, chosen *backup.Info
	for i := range cat.Backups {
		b := &cat.Backups[i]
		if b.Status != backup.StatusDone || b.Stop.IsZero() {
			continue
		}
		if first == nil || b.Stop.Before(first.Stop) {
			first = b
		}
		if r.BackupID != "" && b.ID == r.BackupID {
			chosen = b
		}
	}
	switch {
	case first == nil:
		return &dynconf.FieldError{Field: "backup_id", Value: r.BackupID, Reason: "the repository holds no finished backup to restore"}
	case r.BackupID != "" && chosen == nil:
		return &dynconf.FieldError{Field: "backup_id", Value: r.BackupID, Reason: "no finished backup with this id in the repository"}
	}
	if r.Target.Type != dynconf.TargetTime {
		return nil
	}
	at, _ := time.Parse(time.RFC3339Nano, r.Target.Value) // checked by CheckTarget
	from := first
	if chosen != nil {
		from = chosen
	}
	if at.Before(from.Stop) {
		what := "the first recoverability point"
		if chosen != nil {
			what = "the end of backup " + chosen.ID
		}
		return &dynconf.FieldError{Field: "target.value", Value: r.Target.Value,
			Reason: fmt.Sprintf("is before %s (%s): no backup can be recovered to it", what, from.Stop.UTC().Format(time.RFC3339))}
	}
	return nil
}

// errRestoreBusy refuses a restore while another backup job is queued or running.
func errRestoreBusy(q consul.BackupQueue) *dynconf.FieldError {
	if q.Restore != nil {
		return &dynconf.FieldError{Field: "queue", Value: q.Restore.Job, Reason: "an in-place restore is in progress"}
	}
	if len(q.Jobs) > 0 {
		return &dynconf.FieldError{Field: "queue", Value: q.Jobs[0], Reason: "another backup job is queued or running: wait for it to end"}
	}
	return nil
}

// StartRestore validates an in-place restore request and queues its job. Nothing changes
// when it is refused.
func (n *Node) StartRestore(ctx context.Context, r RestoreRequest) (string, error) {
	if fe := checkRestoreInput(r, n.cfg.Scope, time.Now()); fe != nil {
		return "", fe
	}
	tool, m, cfg, err := n.currentTool()
	if err != nil {
		return "", err
	}
	if st := n.Status(); st != nil && st.Paused {
		return "", &dynconf.FieldError{Field: "pause", Value: true,
			Reason: "the cluster is paused: resume it first (the restore holds automatic failover itself)"}
	}
	qctx, qcancel := context.WithTimeout(ctx, 4*n.timings().RetryTimeout)
	var q consul.BackupQueue
	_, err = n.store.GetJSON(qctx, consul.KeyBackupQueue, true, &q)
	qcancel()
	if err != nil && !errors.Is(err, consul.ErrNotFound) {
		return "", fmt.Errorf("read the backup queue: %w", err)
	}
	if fe := errRestoreBusy(q); fe != nil {
		return "", fe
	}
	lctx, lcancel := context.WithTimeout(ctx, cfg.TimeoutValue())
	cat, err := tool.List(lctx, m)
	lcancel()
	if err != nil {
		return "", fmt.Errorf("read the repository: %w", err)
	}
	if fe := checkRestoreCatalog(r, cat); fe != nil {
		return "", fe
	}
	cctx, cancel := context.WithTimeout(ctx, 4*n.timings().RetryTimeout)
	defer cancel()
	jb := &consul.JobBackup{Tool: cfg.Tool, Label: r.BackupID, Type: "in-place restore"}
	if r.Target.Type != "" && r.Target.Type != dynconf.TargetEnd {
		jb.Target = &consul.JobTarget{Type: r.Target.Type, Value: r.Target.Value, Exclusive: r.Target.Exclusive}
	}
	id, err := n.jobs.create(cctx, consul.Job{Kind: consul.JobRestoreKind, Backup: jb})
	if err != nil {
		return "", err
	}
	var busy *dynconf.FieldError
	err = n.editQueue(cctx, func(q *consul.BackupQueue) {
		if busy = errRestoreBusy(*q); busy == nil {
			q.Jobs = append(q.Jobs, id)
		}
	})
	switch {
	case err != nil:
		n.jobs.phase(cctx, id, "not queued", consul.JobFailed, err.Error())
		return "", fmt.Errorf("queue job %s: %w", id, err)
	case busy != nil:
		n.jobs.phase(cctx, id, "refused", consul.JobFailed, busy.Error())
		return "", busy
	}
	n.logger.Warn("in-place restore queued: every member's data will be replaced", "job", id, "backup", r.BackupID,
		"target", r.Target.Type, "value", r.Target.Value)
	return id, nil
}

// restoreInForce reports whether the restore state of the queue holds this cycle: while its
// leader holds the leader key, or on the node whose job runs it (which may have lost the key
// for a moment). A state whose leader is gone (ramd killed during the restore) holds nobody:
// the members race as after any leader loss, and the next leader ends the job as failed and
// removes the state.
func (n *Node) restoreInForce(o *observation) bool {
	s := o.backupQueue.Restore
	if s == nil {
		return false
	}
	return o.in.Leader.Present && o.in.Leader.Name == s.Leader || n.bk.runner.current() == s.Job
}

// otherMembers are the members the restore waits for: every published member but this one.
func otherMembers(o *observation, self string) []string {
	var out []string
	for name := range o.members {
		if name != self {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// editRestore changes the restore state of job id by CAS; it fails when another job's
// state is there.
func (n *Node) editRestore(ctx context.Context, id string, edit func(*consul.RestoreState)) error {
	var other string
	err := n.editQueue(ctx, func(q *consul.BackupQueue) {
		if q.Restore == nil || q.Restore.Job != id {
			other = "none"
			if q.Restore != nil {
				other = q.Restore.Job
			}
			return
		}
		edit(q.Restore)
	})
	if err == nil && other != "" {
		return fmt.Errorf("the restore state belongs to job %s, not %s", other, id)
	}
	return err
}

// clearRestore removes the restore state of job id (the cluster's loops act again).
func (n *Node) clearRestore(ctx context.Context, id string) error {
	return n.editQueue(ctx, func(q *consul.BackupQueue) {
		if q.Restore != nil && q.Restore.Job == id {
			q.Restore = nil
		}
	})
}

// waitAcks waits until every member of the restore state is in the list acked returns.
func (n *Node) waitAcks(ctx context.Context, what string, acked func(*consul.RestoreState) []string) error {
	wctx, cancel := context.WithTimeout(ctx, restoreAckWait)
	defer cancel()
	t := time.NewTicker(restorePoll)
	defer t.Stop()
	last := errors.New("no answer yet")
	for {
		var q consul.BackupQueue
		_, err := n.store.GetJSON(wctx, consul.KeyBackupQueue, true, &q)
		switch {
		case err == nil && q.Restore != nil:
			missing := slices.DeleteFunc(slices.Clone(q.Restore.Members), func(m string) bool { return slices.Contains(acked(q.Restore), m) })
			if len(missing) == 0 {
				return nil
			}
			last = fmt.Errorf("waiting for %v", missing)
		case err == nil:
			return errors.New("the restore state is gone")
		case wctx.Err() == nil:
			last = err
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("members did not %s within %s: %w", what, restoreAckWait, last)
		case <-t.C:
		}
	}
}

// restoreRun is one in-place restore on the leader.
type restoreRun struct {
	n       *Node
	id      string
	tool    backup.Tool
	m       backup.Member
	members []string
	req     backup.RestoreRequest
	// conf is ramd.conf of the data directory moved aside.
	conf []byte
}

// edit changes the job's restore state, with a bound of its own.
func (r *restoreRun) edit(ctx context.Context, f func(*consul.RestoreState)) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*r.n.timings().RetryTimeout)
	defer cancel()
	return r.n.editRestore(cctx, r.id, f)
}

// phase records a phase of the job, also after the job was cancelled (its rollback).
func (r *restoreRun) phase(ctx context.Context, p string) {
	r.n.jobs.phase(context.WithoutCancel(ctx), r.id, p, "", "")
	r.n.tracePhase(ctx, p)
}

// runRestore runs the in-place restore job id with the leader's tool. Task goroutine.
func (n *Node) runRestore(ctx context.Context, id string, j consul.Job, tool backup.Tool, m backup.Member, members []string) error {
	r := &restoreRun{n: n, id: id, tool: tool, m: m, members: members,
		req: backup.RestoreRequest{Member: m, BackupID: j.Backup.Label}}
	if t := j.Backup.Target; t != nil {
		r.req.Target = backup.Target{Type: t.Type, Value: t.Value, Exclusive: t.Exclusive}
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*n.timings().RetryTimeout)
	defer cancel()
	other := ""
	if err := n.editQueue(bctx, func(q *consul.BackupQueue) {
		switch {
		case q.Restore == nil:
			q.Restore = &consul.RestoreState{Job: id, Leader: n.cfg.Name, Phase: consul.RestoreStopping, Members: members}
		case q.Restore.Job != id:
			other = q.Restore.Job
		}
	}); err != nil {
		return fmt.Errorf("hold the cluster for the restore: %w", err)
	}
	if other != "" {
		return fmt.Errorf("hold the cluster for the restore: the restore of job %s is in progress", other)
	}
	r.phase(ctx, fmt.Sprintf("holding the cluster: no failover until the restore ends; stopping the replicas %v", members))
	promoted, err := r.restoreLeader(ctx)
	if !promoted {
		// Nothing of the cluster changed for good: the loops start every server again.
		cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), 4*n.timings().RetryTimeout)
		defer ccancel()
		if cerr := n.clearRestore(cctx, id); cerr != nil {
			return errors.Join(err, fmt.Errorf("release the cluster after the failed restore: %w", cerr))
		}
		r.phase(ctx, "cluster released: every member starts again on its data")
		return err
	}
	checkErr := err
	if err := r.recloneReplicas(ctx); err != nil {
		return errors.Join(checkErr, err)
	}
	return checkErr
}

// restoreLeader stops the replicas and this server, restores and waits for the promotion.
// promoted reports whether the restored server runs on its new timeline; when it is false,
// the data directory is the one from before the job. An error with promoted true is one of
// the checks after the promotion (archiving).
func (r *restoreRun) restoreLeader(ctx context.Context) (promoted bool, err error) {
	n := r.n
	if err := n.waitAcks(ctx, "stop their postgres", func(s *consul.RestoreState) []string { return s.Stopped }); err != nil {
		return false, err
	}
	r.phase(ctx, "replicas stopped; stopping the primary "+n.cfg.Name)
	if err := r.edit(ctx, func(s *consul.RestoreState) { s.Phase = consul.RestoreRestoring }); err != nil {
		return false, err
	}
	pctx, pcancel := context.WithTimeout(ctx, n.timings().LoopWait)
	if err := n.pg.Checkpoint(pctx); err != nil {
		n.logger.Warn("checkpoint before the restore", "err", err)
	}
	pcancel()
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
	err = n.pg.Stop(sctx, pg.StopFast)
	scancel()
	_ = n.guard.Disarm()
	if err != nil {
		return false, fmt.Errorf("stop the primary for the restore: %w", err)
	}
	r.conf, err = n.pg.MoveAside()
	if err != nil {
		return false, err
	}
	r.phase(ctx, fmt.Sprintf("restoring backup %s on %s (previous data kept in %s until the promotion)",
		cmp.Or(r.req.BackupID, "(the latest that reaches the target)"), n.cfg.Name, n.pg.AsideDir()))
	start := time.Now()
	tl, err := r.restoreAndPromote(ctx)
	if err != nil {
		if perr := r.putBack(ctx); perr != nil {
			return false, errors.Join(err, perr)
		}
		r.phase(ctx, "restore failed: the previous data directory is back in place")
		return false, err
	}
	r.phase(ctx, fmt.Sprintf("promoted at the target on timeline %d after %s", tl, time.Since(start).Round(time.Millisecond)))
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 4*n.timings().RetryTimeout)
	_ = n.updateJob(uctx, r.id, func(j *consul.Job) { j.Backup.Timeline = tl })
	ucancel()
	if err := n.pg.DropAside(); err != nil {
		n.logger.Warn("remove the data directory kept aside", "err", err)
	}
	if err := r.edit(ctx, func(s *consul.RestoreState) { s.Phase, s.Timeline = consul.RestoreReclone, tl }); err != nil {
		return true, err
	}
	r.phase(ctx, "replicas removing their data to clone the restored primary")
	// The restored copy has the cluster's system identifier: it archives into the same
	// stanza or server, its new timeline's history file first. The tool's check forces a
	// WAL switch and waits for the segment in the archive.
	kctx, kcancel := context.WithTimeout(ctx, 5*time.Minute)
	err = nil
	if rs, ok := r.tool.(backup.Resumer); ok {
		// Barman's streaming archiver: its position is on the old timeline past the fork.
		if err = rs.ResumeAfterRestore(kctx, r.m); err == nil {
			r.phase(ctx, fmt.Sprintf("%s's WAL receiver restarted on timeline %d", r.tool.Name(), tl))
		}
	}
	if err == nil {
		err = r.tool.Check(kctx, r.m)
	}
	kcancel()
	n.bk.stats.setCheck(err)
	if err != nil {
		r.phase(ctx, "archiving check on the new timeline failed: "+err.Error())
		return true, fmt.Errorf("check archiving on timeline %d: %w", tl, err)
	}
	r.phase(ctx, fmt.Sprintf("archiving checked on timeline %d", tl))
	return true, nil
}

// restoreAndPromote restores into the empty data directory, starts the copy and waits for
// the end of its recovery. It returns the new timeline.
func (r *restoreRun) restoreAndPromote(ctx context.Context) (int, error) {
	n := r.n
	if _, err := n.pg.PrepareRestore(); err != nil {
		return 0, err
	}
	var lastWrite time.Time
	progress := func(p backup.Progress) {
		if time.Since(lastWrite) < progressEvery {
			return
		}
		lastWrite = time.Now()
		pctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		defer cancel()
		_ = n.updateJob(pctx, r.id, func(j *consul.Job) { j.Backup.Progress = p.Message })
	}
	if err := r.tool.Restore(ctx, r.req, progress); err != nil {
		return 0, fmt.Errorf("restore with %s: %w", r.tool.Name(), err)
	}
	if _, err := n.pg.FinishRestore(true); err != nil {
		return 0, err
	}
	if err := n.pg.RestoreConfig(r.conf); err != nil {
		return 0, err
	}
	r.phase(ctx, "starting the restored copy: recovering to the target")
	sctx, cancel := context.WithTimeout(ctx, startTimeout)
	err := n.pg.Start(sctx)
	cancel()
	if err != nil {
		return 0, fmt.Errorf("start the restored copy: %w", err)
	}
	t := time.NewTicker(promoteWait)
	defer t.Stop()
	for {
		st, err := n.pg.Status(ctx)
		if err == nil && st.Running && !st.InRecovery {
			if _, err := n.pg.ClearRecoverySettings(); err != nil {
				return st.Timeline, err
			}
			rctx, rcancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
			defer rcancel()
			if err := n.pg.Reload(rctx); err != nil {
				return st.Timeline, fmt.Errorf("reload after the recovery: %w", err)
			}
			return st.Timeline, nil
		}
		if !n.pg.Running() {
			return 0, errors.New("the restored copy stopped during its recovery (target not reached?); see the PostgreSQL log")
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("wait for the end of the recovery: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// putBack stops a restored copy that did not promote and gives the old data directory back.
func (r *restoreRun) putBack(ctx context.Context) error {
	n := r.n
	if n.pg.Running() {
		// Also when the job was cancelled: the copy must stop before the old data returns.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
		err := n.pg.Stop(sctx, pg.StopImmediate)
		cancel()
		if err != nil {
			return fmt.Errorf("stop the failed restore (the previous data is in %s): %w", n.pg.AsideDir(), err)
		}
	}
	if err := n.pg.PutBack(); err != nil {
		return fmt.Errorf("%w (the previous data is in %s)", err, n.pg.AsideDir())
	}
	n.logger.Warn("restore failed: the previous data directory is back in place")
	return nil
}

// recloneReplicas has the replicas remove their data, releases the cluster and waits until
// each streams from the restored primary on its new timeline.
func (r *restoreRun) recloneReplicas(ctx context.Context) error {
	n := r.n
	ackErr := n.waitAcks(ctx, "remove their data", func(s *consul.RestoreState) []string { return s.Recloned })
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 4*n.timings().RetryTimeout)
	defer cancel()
	var tl int
	if err := n.editRestore(cctx, r.id, func(s *consul.RestoreState) { tl = s.Timeline }); err != nil {
		return err
	}
	if err := n.clearRestore(cctx, r.id); err != nil {
		return fmt.Errorf("resume the cluster: %w", err)
	}
	r.phase(ctx, "resumed: automatic failover on again; replicas cloning from "+n.cfg.Name)
	if ackErr != nil {
		return fmt.Errorf("reinitialize the members that did not answer by hand: %w", ackErr)
	}
	wctx, wcancel := context.WithTimeout(ctx, restoreStreamWait)
	defer wcancel()
	t := time.NewTicker(restorePoll)
	defer t.Stop()
	waiting := slices.Clone(r.members)
	for len(waiting) > 0 {
		for _, name := range slices.Clone(waiting) {
			var mr consul.Member
			if _, err := n.store.GetJSON(wctx, consul.KeyMembers+name, false, &mr); err != nil {
				continue
			}
			if mr.State == "running" && mr.Role != "primary" && mr.Role != "master" && mr.Timeline == tl && mr.ReplicationState == "streaming" {
				waiting = slices.DeleteFunc(waiting, func(s string) bool { return s == name })
				r.phase(ctx, fmt.Sprintf("%s streaming on timeline %d", name, tl))
			}
		}
		if len(waiting) == 0 {
			break
		}
		select {
		case <-wctx.Done():
			return fmt.Errorf("members %v do not stream on timeline %d after %s", waiting, tl, restoreStreamWait)
		case <-t.C:
		}
	}
	return nil
}

// followRestore is a member's part in an in-place restore another member leads: stop the
// server when asked, later remove the data directory so the next plans clone the restored
// primary; each step acknowledged in the restore state. Loop goroutine.
func (n *Node) followRestore(ctx context.Context, o *observation) {
	s := o.backupQueue.Restore
	if s == nil || s.Leader == n.cfg.Name || !slices.Contains(s.Members, n.cfg.Name) {
		return
	}
	me := n.cfg.Name
	var ack func(*consul.RestoreState)
	switch s.Phase {
	case consul.RestoreStopping, consul.RestoreRestoring:
		if slices.Contains(s.Stopped, me) && !n.pg.Running() {
			return
		}
		if err := n.stopForRestore(ctx, s.Job); err != nil {
			n.logger.Error("stop postgres for the in-place restore", "job", s.Job, "err", err)
			return
		}
		ack = func(s *consul.RestoreState) {
			if !slices.Contains(s.Stopped, me) {
				s.Stopped = append(s.Stopped, me)
			}
		}
	case consul.RestoreReclone:
		if slices.Contains(s.Recloned, me) {
			return
		}
		if err := n.stopForRestore(ctx, s.Job); err != nil {
			n.logger.Error("stop postgres for the in-place restore", "job", s.Job, "err", err)
			return
		}
		if !o.in.PG.DataEmpty {
			if err := n.removeDataDir(); err != nil {
				n.logger.Error("remove the data directory for the in-place restore", "job", s.Job, "err", err)
				return
			}
		}
		// The clone must come from the restored primary: a backup would bring the old
		// timeline back, another replica is being removed too.
		n.pgMem.cloneFromLeader = true
		n.pgMem.following = ""
		n.jobs.phase(ctx, s.Job, "data removed on "+me+": it clones from the restored primary", "", "")
		ack = func(s *consul.RestoreState) {
			if !slices.Contains(s.Recloned, me) {
				s.Recloned = append(s.Recloned, me)
			}
		}
	default:
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 4*n.timings().RetryTimeout)
	defer cancel()
	if err := n.editRestore(cctx, s.Job, ack); err != nil {
		n.logger.Warn("acknowledge an in-place restore phase", "job", s.Job, "phase", s.Phase, "err", err)
	}
}

// stopForRestore stops this replica's server (fast) for the restore job.
func (n *Node) stopForRestore(ctx context.Context, job string) error {
	if !n.pg.Running() {
		return nil
	}
	n.logger.Warn("stopping postgres for the in-place restore", "job", job)
	n.setState("stopped for a restore")
	sctx, cancel := context.WithTimeout(ctx, stopTimeout)
	defer cancel()
	if err := n.pg.Stop(sctx, pg.StopFast); err != nil {
		return err
	}
	n.jobs.phase(ctx, job, "postgres stopped on "+n.cfg.Name, "", "")
	return nil
}
