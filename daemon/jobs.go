package daemon

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ramd-project/ramd/consul"
)

// Job retention: the leader removes finished jobs older than jobMaxAge, and the oldest
// finished ones beyond jobKeep, every jobPruneEvery. Jobs still pending or running stay.
const (
	jobMaxAge     = 7 * 24 * time.Hour
	jobKeep       = 200
	jobPruneEvery = 10 * time.Minute
	// jobStaleAge removes jobs that never ended (their node went away mid-way).
	jobStaleAge = 30 * 24 * time.Hour
)

// listedJob is a job with its Consul index, for pruning by CAS.
type listedJob struct {
	consul.Job
	index uint64
}

// jobBook records the cluster's jobs in Consul (ramd/jobs/<id>): create, phase, read, list,
// prune. Switchovers, failovers, rolling restarts and local operations all go through it.
// Its methods are safe from any goroutine except where noted.
type jobBook struct {
	store  *consul.Store
	node   string
	logger *slog.Logger
	// timeout is the Consul budget in force (the cluster's retry_timeout).
	timeout func() time.Duration
	// onPhase is told every phase recorded, for the trace (may be nil).
	onPhase func(ctx context.Context, phase string)

	prunedAt time.Time   // loop goroutine only
	pruning  atomic.Bool // a pruning runs
	// background is the pruning goroutine; wait waits for it.
	background sync.WaitGroup
}

// get reads a job.
func (b *jobBook) get(ctx context.Context, id string) (consul.Job, error) {
	var j consul.Job
	_, err := b.store.GetJSON(ctx, consul.JobKey(id), true, &j)
	return j, err
}

// list returns the jobs, newest first.
func (b *jobBook) list(ctx context.Context) ([]consul.Job, error) {
	listed, err := b.listed(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]consul.Job, 0, len(listed))
	for _, j := range listed {
		out = append(out, j.Job)
	}
	return out, nil
}

func (b *jobBook) listed(ctx context.Context) ([]listedJob, error) {
	pairs, err := b.store.List(ctx, consul.KeyJobs)
	if err != nil {
		return nil, err
	}
	out := make([]listedJob, 0, len(pairs))
	for _, p := range pairs {
		if j, ok := consul.DecodeJob(p); ok {
			out = append(out, listedJob{Job: j, index: p.ModifyIndex})
		}
	}
	slices.SortFunc(out, func(a, b listedJob) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// create stores j as a new pending job and returns its id.
func (b *jobBook) create(ctx context.Context, j consul.Job) (string, error) {
	j.ID = newJobID()
	now := time.Now().UTC()
	j.State, j.CreatedAt = consul.JobPending, now
	j.Phases = []consul.JobPhase{{Name: "requested", At: now, Node: b.node}}
	j.TraceParent = traceParent(ctx)
	raw, err := json.Marshal(j)
	if err != nil {
		return "", fmt.Errorf("encode job: %w", err)
	}
	if err := b.store.Put(ctx, consul.JobKey(j.ID), raw); err != nil {
		return "", fmt.Errorf("record job: %w", err)
	}
	return j.ID, nil
}

// record records a job for a local operation on node; "" when Consul refused (the job
// record is for following, the operation does not depend on it).
func (b *jobBook) record(ctx context.Context, kind, node string) string {
	id, err := b.create(ctx, consul.Job{Kind: kind, From: node})
	if err != nil {
		b.logger.Warn("record job", "kind", kind, "err", err)
		return ""
	}
	return id
}

// phase appends a phase to the job (best effort: a job record is for following, the work
// itself never waits on it).
func (b *jobBook) phase(ctx context.Context, id, phase, state, errText string) {
	if id == "" {
		return
	}
	if b.onPhase != nil {
		b.onPhase(ctx, phase)
	}
	cctx, cancel := context.WithTimeout(ctx, b.timeout())
	defer cancel()
	for range 3 {
		var j consul.Job
		idx, err := b.store.GetJSON(cctx, consul.JobKey(id), true, &j)
		if err != nil {
			return
		}
		now := time.Now().UTC()
		j.Phases = append(j.Phases, consul.JobPhase{Name: phase, At: now, Node: b.node})
		if state != "" {
			j.State = state
		}
		if errText != "" {
			j.Error = errText
		}
		if state == consul.JobSucceeded || state == consul.JobFailed {
			j.FinishedAt = &now
		}
		raw, _ := json.Marshal(j)
		if err := b.store.CAS(cctx, consul.JobKey(id), raw, idx); err == nil {
			return
		}
	}
}

func newJobID() string {
	raw := make([]byte, 8)
	_, _ = rand.Read(raw)
	return hex.EncodeToString(raw)
}

// expiredJobs picks the finished jobs to remove from jobs (newest first): older than maxAge,
// or beyond the keep newest finished ones.
func expiredJobs(jobs []listedJob, now time.Time, keep int, maxAge time.Duration) []listedJob {
	var out []listedJob
	finished := 0
	for _, j := range jobs {
		if j.State != consul.JobSucceeded && j.State != consul.JobFailed {
			if now.Sub(j.CreatedAt) > jobStaleAge {
				out = append(out, j)
			}
			continue
		}
		finished++
		if finished > keep || now.Sub(j.CreatedAt) > maxAge {
			out = append(out, j)
		}
	}
	return out
}

// startPrune removes expired jobs in the background every jobPruneEvery (the leader's cycle
// must not wait on it: its heartbeats keep their rate). Loop goroutine only.
func (b *jobBook) startPrune(ctx context.Context) {
	if time.Since(b.prunedAt) < jobPruneEvery || !b.pruning.CompareAndSwap(false, true) {
		return
	}
	b.prunedAt = time.Now()
	b.background.Add(1)
	go func() {
		defer b.background.Done()
		defer b.pruning.Store(false)
		b.prune(ctx)
	}()
}

// prune removes expired jobs, within a few Consul timeouts.
func (b *jobBook) prune(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*b.timeout())
	defer cancel()
	jobs, err := b.listed(cctx)
	if err != nil {
		b.logger.Debug("list jobs", "err", err)
		return
	}
	removed := 0
	for _, j := range expiredJobs(jobs, time.Now(), jobKeep, jobMaxAge) {
		if err := b.store.DeleteCAS(cctx, consul.JobKey(j.ID), j.index); err == nil {
			removed++
		}
	}
	if removed > 0 {
		b.logger.Info("removed old jobs", "count", removed)
	}
}

// wait waits for the background pruning to end.
func (b *jobBook) wait() { b.background.Wait() }

// Jobs lists the tracked jobs, newest first.
func (n *Node) Jobs(ctx context.Context) ([]consul.Job, error) { return n.jobs.list(ctx) }

// Job reads a tracked job.
func (n *Node) Job(ctx context.Context, id string) (consul.Job, error) { return n.jobs.get(ctx, id) }

// recordJob records j as a new job, running on this node; "" when Consul refused (the
// record is for following, the work does not depend on it).
func (b *jobBook) recordJob(ctx context.Context, j consul.Job) string {
	j.Node = b.node
	id, err := b.create(ctx, j)
	if err != nil {
		b.logger.Warn("record job", "kind", j.Kind, "err", err)
		return ""
	}
	b.phase(ctx, id, "running on "+b.node, consul.JobRunning, "")
	return id
}
