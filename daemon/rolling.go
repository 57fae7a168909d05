package daemon

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ramd-project/ramd/consul"
)

// Bounds of a rolling restart.
const (
	// rollingTimeout bounds a whole rolling restart.
	rollingTimeout = time.Hour
	// memberRestartTimeout bounds one member's POST /restart (its API waits up to a minute).
	memberRestartTimeout = 70 * time.Second
	// rejoinWait bounds the wait for a member to run again as a replica (after a switchover
	// the old leader rewinds and restarts).
	rejoinWait = 3 * time.Minute
	// switchoverJobWait bounds the wait for the switchover of a rolling restart.
	switchoverJobWait = 2 * time.Minute
)

// ErrRollingInProgress means this node already coordinates a rolling restart.
var ErrRollingInProgress = errors.New("daemon: a rolling restart is already in progress")

// RollingRestartRequest restarts the whole cluster: replicas one by one, then a switchover
// to a restarted replica, then the old primary.
type RollingRestartRequest struct {
	// RestartPending restarts only members with settings waiting for a restart.
	RestartPending bool `json:"restart_pending,omitempty"`
	// InPlace restarts the primary where it is (a short write outage) instead of switching
	// over first.
	InPlace bool `json:"in_place,omitempty"`
}

// RollingRestart starts a rolling restart coordinated by this node and returns its job id
// at once; GET /api/v1/jobs/{id} follows its phases.
func (n *Node) RollingRestart(ctx context.Context, r RollingRestartRequest) (string, error) {
	st := n.Status()
	switch {
	case st == nil:
		return "", ErrNotReady
	case st.Leader == "":
		return "", ErrNoLeader
	case st.Paused:
		return "", ErrPaused
	}
	if !n.rolling.CompareAndSwap(false, true) {
		return "", ErrRollingInProgress
	}
	id, err := n.jobs.create(ctx, consul.Job{Kind: "rolling-restart", From: st.Leader})
	if err != nil {
		n.rolling.Store(false)
		return "", err
	}
	// The coordinator outlives the request; it ends with the node (the job then fails with
	// the reason instead of staying "running").
	n.tasks.run(func(tctx context.Context) {
		defer n.rolling.Store(false)
		rctx, cancel := context.WithTimeout(tctx, rollingTimeout)
		defer cancel()
		if err := n.rollingRestart(rctx, id, r, st.Leader); err != nil {
			n.logger.Error("rolling restart failed", "job", id, "err", err)
			n.jobs.phase(context.WithoutCancel(rctx), id, "failed", consul.JobFailed, err.Error())
			return
		}
		n.jobs.phase(rctx, id, "done", consul.JobSucceeded, "")
	})
	return id, nil
}

func (n *Node) rollingRestart(ctx context.Context, id string, r RollingRestartRequest, leader string) error {
	st := n.Status()
	members := slices.Clone(st.Members) // the snapshot is shared with the API
	slices.SortFunc(members, func(a, b MemberStatus) int { return strings.Compare(a.Name, b.Name) })
	if first, why := primaryFirst(st.PendingRestartReasons); first {
		return n.rollingPrimaryFirst(ctx, id, r, leader, members, why)
	}
	n.jobs.phase(ctx, id, "restarting replicas", consul.JobRunning, "")
	for _, m := range members {
		if m.Name == leader {
			continue
		}
		if err := n.restartMember(ctx, id, m.Name, m.APIURL, r.RestartPending); err != nil {
			return err
		}
		// The next one only once this one runs again, so the cluster never misses two.
		if err := n.waitRunningReplica(ctx, m.Name); err != nil {
			return err
		}
	}
	if st := n.Status(); st == nil || st.Leader != leader {
		return fmt.Errorf("the leader changed during the rolling restart (was %s); nothing more restarted", leader)
	}
	lm, ok := n.memberStatus(leader)
	if !ok {
		return fmt.Errorf("leader %s is no longer listed", leader)
	}
	pending := lm.PendingRestart
	if st := n.Status(); leader == n.cfg.Name && st != nil {
		pending = pending || st.PendingRestart // this node's own view is the freshest
	}
	if r.RestartPending && !pending {
		n.jobs.phase(ctx, id, "skipped "+leader+": pending restart flag is not set", "", "")
		return nil
	}
	if !r.InPlace && len(members) > 1 {
		n.jobs.phase(ctx, id, "switchover from "+leader, "", "")
		if err := n.switchoverAndWait(ctx, leader); err != nil {
			return err
		}
		if err := n.waitRunningReplica(ctx, leader); err != nil {
			return err
		}
	}
	return n.restartMember(ctx, id, leader, lm.APIURL, r.RestartPending)
}

// restartMember asks one member's API for a restart and records the outcome as a phase. A
// member whose filters do not match is skipped, any other refusal fails the rolling restart.
func (n *Node) restartMember(ctx context.Context, id, name, apiURL string, pending bool) error {
	body := []byte(`{}`)
	if pending {
		body = []byte(`{"restart_pending": true}`)
	}
	code, text, err := n.postMember(ctx, apiURL, "/restart", body)
	switch {
	case err != nil:
		return fmt.Errorf("restart %s: %w", name, err)
	case code == http.StatusOK:
		n.jobs.phase(ctx, id, "restarted "+name, "", "")
		return nil
	case code == http.StatusServiceUnavailable && strings.Contains(text, "conditions are not satisfied"):
		n.jobs.phase(ctx, id, "skipped "+name+": "+text, "", "")
		return nil
	}
	return fmt.Errorf("restart %s: %d %s", name, code, text)
}

// postMember sends a POST with the API credentials to another member and returns the status
// code and body.
func (n *Node) postMember(ctx context.Context, apiURL, path string, body []byte) (int, string, error) {
	cctx, cancel := context.WithTimeout(ctx, memberRestartTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodPost, strings.TrimRight(apiURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("request to %s: %w", apiURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	pc := n.peers.get()
	pc.authorize(req)
	client := &http.Client{Transport: pc.http.Transport, Timeout: memberRestartTimeout}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", fmt.Errorf("POST %s%s: %w", apiURL, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, strings.TrimSpace(string(b)), nil
}

// switchoverAndWait switches over from leader to the best replica and waits for the job.
func (n *Node) switchoverAndWait(ctx context.Context, leader string) error {
	id, err := n.RequestSwitchover(ctx, SwitchoverRequest{From: leader})
	if err != nil {
		return fmt.Errorf("switchover: %w", err)
	}
	deadline := time.Now().Add(switchoverJobWait)
	for time.Now().Before(deadline) {
		jctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
		j, err := n.Job(jctx, id)
		cancel()
		if err == nil && j.State == consul.JobSucceeded {
			return nil
		}
		if err == nil && j.State == consul.JobFailed {
			return fmt.Errorf("switchover %s failed: %s", id, j.Error)
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	// Withdraw the request, so no switchover happens after the job reported failure.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), n.timings().RetryTimeout)
	defer cancel()
	if err := n.CancelSwitchover(cctx); err != nil && !errors.Is(err, ErrNoSwitchover) {
		n.logger.Warn("withdraw the rolling restart's switchover", "err", err)
	}
	return fmt.Errorf("switchover %s did not finish within %s", id, switchoverJobWait)
}

// waitRunningReplica waits until this node's view shows name running as a replica.
func (n *Node) waitRunningReplica(ctx context.Context, name string) error {
	deadline := time.Now().Add(rejoinWait)
	for time.Now().Before(deadline) {
		if m, ok := n.memberStatus(name); ok && m.Role != "leader" && m.State == "running" {
			return nil
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not run again as a replica within %s", name, rejoinWait)
}

// memberStatus is name as this node saw it in its last cycle.
func (n *Node) memberStatus(name string) (MemberStatus, bool) {
	if st := n.Status(); st != nil {
		for _, m := range st.Members {
			if m.Name == name {
				return m, true
			}
		}
	}
	return MemberStatus{}, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// hotStandbyParams must never be lower on a replica than on its primary: a replica that
// replays the primary's higher value stops replaying (PostgreSQL's hot standby rule).
var hotStandbyParams = []string{"max_connections", "max_worker_processes", "max_wal_senders",
	"max_prepared_transactions", "max_locks_per_transaction"}

// primaryFirst reports whether the pending changes lower a hot-standby parameter, and which.
// Then the primary restarts first, and each replica only once it replayed past the primary's
// restart (its pg_controldata carries the new, lower value by then); raising them restarts the
// replicas first, as the default order does. Pure.
func primaryFirst(pending map[string]PendingChange) (bool, string) {
	for _, name := range hotStandbyParams {
		c, ok := pending[name]
		if !ok {
			continue
		}
		old, err1 := strconv.ParseInt(strings.TrimSpace(c.OldValue), 10, 64)
		next, err2 := strconv.ParseInt(strings.TrimSpace(c.NewValue), 10, 64)
		if err1 == nil && err2 == nil && next < old {
			return true, fmt.Sprintf("%s lowered from %d to %d", name, old, next)
		}
	}
	return false, ""
}

// rollingPrimaryFirst restarts the primary in place first, then each replica once it replayed
// past the primary's position after that restart.
func (n *Node) rollingPrimaryFirst(ctx context.Context, id string, r RollingRestartRequest, leader string, members []MemberStatus, why string) error {
	n.jobs.phase(ctx, id, "restarting the primary first: "+why, consul.JobRunning, "")
	lm, ok := n.memberStatus(leader)
	if !ok {
		return fmt.Errorf("leader %s is no longer listed", leader)
	}
	if err := n.restartMember(ctx, id, leader, lm.APIURL, r.RestartPending); err != nil {
		return err
	}
	after, err := n.leaderPositionAfterRestart(ctx, leader)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m.Name == leader {
			continue
		}
		if err := n.waitReplayed(ctx, m.Name, after); err != nil {
			return err
		}
		if err := n.restartMember(ctx, id, m.Name, m.APIURL, r.RestartPending); err != nil {
			return err
		}
		if err := n.waitRunningReplica(ctx, m.Name); err != nil {
			return err
		}
	}
	return nil
}

// leaderPositionAfterRestart waits until the leader runs again and returns its position.
func (n *Node) leaderPositionAfterRestart(ctx context.Context, leader string) (uint64, error) {
	deadline := time.Now().Add(rejoinWait)
	for time.Now().Before(deadline) {
		if st := n.Status(); st != nil && st.Leader == leader {
			if m, ok := n.memberStatus(leader); ok && m.State == "running" && m.LSN > 0 {
				return m.LSN, nil
			}
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("%s did not run again as the leader within %s", leader, rejoinWait)
}

// waitReplayed waits until member name replayed up to lsn.
func (n *Node) waitReplayed(ctx context.Context, name string, lsn uint64) error {
	deadline := time.Now().Add(rejoinWait)
	for time.Now().Before(deadline) {
		if m, ok := n.memberStatus(name); ok && m.ReplayLSN >= lsn {
			return nil
		}
		if err := sleepCtx(ctx, 250*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("%s did not replay past the primary's restart within %s", name, rejoinWait)
}
