package daemon

import (
	"context"
	"encoding/json"
	"slices"
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

// Jobs lists the tracked jobs, newest first.
func (n *Node) Jobs(ctx context.Context) ([]consul.Job, error) {
	listed, err := n.listJobs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]consul.Job, 0, len(listed))
	for _, j := range listed {
		out = append(out, j.Job)
	}
	return out, nil
}

func (n *Node) listJobs(ctx context.Context) ([]listedJob, error) {
	pairs, err := n.store.List(ctx, consul.KeyJobs)
	if err != nil {
		return nil, err
	}
	out := make([]listedJob, 0, len(pairs))
	for _, p := range pairs {
		var j consul.Job
		if json.Unmarshal(p.Value, &j) != nil || j.ID == "" {
			continue
		}
		out = append(out, listedJob{Job: j, index: p.ModifyIndex})
	}
	slices.SortFunc(out, func(a, b listedJob) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
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

// startPruneJobs removes expired jobs in the background every jobPruneEvery (the leader's
// cycle must not wait on it: its heartbeats keep their rate).
func (n *Node) startPruneJobs(ctx context.Context) {
	if time.Since(n.jobsPrunedAt) < jobPruneEvery || !n.pruning.CompareAndSwap(false, true) {
		return
	}
	n.jobsPrunedAt = time.Now()
	go func() {
		defer n.pruning.Store(false)
		n.pruneJobs(context.WithoutCancel(ctx))
	}()
}

// pruneJobs removes expired jobs, within a few Consul timeouts.
func (n *Node) pruneJobs(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, 5*n.timings().RetryTimeout)
	defer cancel()
	jobs, err := n.listJobs(cctx)
	if err != nil {
		n.logger.Debug("list jobs", "err", err)
		return
	}
	removed := 0
	for _, j := range expiredJobs(jobs, time.Now(), jobKeep, jobMaxAge) {
		if err := n.store.DeleteCAS(cctx, consul.JobKey(j.ID), j.index); err == nil {
			removed++
		}
	}
	if removed > 0 {
		n.logger.Info("removed old jobs", "count", removed)
	}
}
