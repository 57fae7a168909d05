package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/daemon/syncstandby"
)

// syncMemory is what a leader remembers of the synchronous standbys it manages. Loop
// goroutine only.
type syncMemory struct {
	// names is synchronous_standby_names this node enforces as primary, commit the
	// synchronous_commit it set.
	names  string
	commit string
	// changeLSN is the WAL position when the setting in force took effect.
	changeLSN uint64
	// pending is a setting written but not yet seen in effect, since pendingSince.
	pending      *syncstandby.Config
	pendingSince time.Time
	// relaxed is the last SyncDegraded reason, to log its changes; enforced is set once this
	// leader enforced synchronous standbys since sync mode went on.
	relaxed  string
	enforced bool
	// progress is when each standby last confirmed WAL (see standbyStalled).
	progress map[string]standbyProgress
}

// syncObservation is what the loop read about synchronous replication.
type syncObservation struct {
	key    *consul.Sync // nil when absent
	keyIdx uint64
	pg     syncstandby.Config // what the running primary enforces
	pgRead bool
}

// published converts the sync key.
func (s syncObservation) published() syncstandby.Published {
	if s.key == nil {
		return syncstandby.Published{}
	}
	p := syncstandby.Published{Exists: true, Leader: s.key.Leader, Quorum: s.key.Quorum}
	for _, n := range strings.Split(s.key.SyncStandby, ",") {
		if n = strings.TrimSpace(n); n != "" {
			p.Names = append(p.Names, n)
		}
	}
	return p
}

// syncGate is the failover gate for ha: only in synchronous mode and only from a key written
// by the leader that is gone.
func (n *Node) syncGate(o *observation) ha.SyncGate {
	if o.dyn.SyncMode() == "off" || o.sync.key == nil {
		return ha.SyncGate{}
	}
	p := o.sync.published()
	if p.Leader != n.lead.LastLeader && p.Leader != "" && n.lead.LastLeader != "" {
		// The key describes another leader's standbys: nothing can be promoted safely from it.
		return ha.SyncGate{Enabled: true}
	}
	// A member that saw no leader since it started (the whole cluster restarted) trusts the
	// key: every new leader rewrites it, naming itself, before it promotes.
	return ha.SyncGate{Enabled: true, Members: p.Names, Quorum: p.Quorum, Leader: p.Leader}
}

// observeSyncPG takes synchronous_standby_names from a running primary's status, read this
// cycle.
func (n *Node) observeSyncPG(o *observation) {
	if !o.pg.Running || o.pg.InRecovery {
		return
	}
	v := o.pg.SyncStandbyNames
	c, err := syncstandby.Parse(v)
	if err != nil {
		n.logger.Warn("unreadable synchronous_standby_names; will replace it", "value", v, "err", err)
		c = syncstandby.Config{Method: syncstandby.MethodFirst, Num: 1, Names: []string{"unparsable"}}
	}
	o.sync.pg, o.sync.pgRead = c, true
}

// syncManaged reports whether the leader has synchronous standbys to manage or clear.
func (o *observation) syncManaged() bool {
	return o.dyn.SyncMode() != "off" || !o.sync.pg.Empty() || o.sync.key != nil
}

// syncStandbys takes one step toward the wanted synchronous standbys.
func (n *Node) syncStandbys(ctx context.Context, o *observation) error {
	if !o.sync.pgRead {
		return errors.New("synchronous_standby_names unknown this cycle")
	}
	// A new setting counts only once the walsenders applied it (pg_stat_replication shows
	// it); the change point is the WAL position read after that, so every commit
	// acknowledged under the old setting lies before it.
	if n.syncMem.pending != nil {
		// A listed standby that never streams again must not wedge the leader: after a while
		// it is enough that no standby outside the new setting is synchronous any more.
		lenient := time.Since(n.syncMem.pendingSince) > syncApplyWait
		if !o.sync.pg.Equal(*n.syncMem.pending) || !effective(*n.syncMem.pending, o.pg.Replication, lenient) {
			// Commits may still be acknowledged under the previous setting: decide nothing
			// new until this one is in effect (the walsenders apply it within a cycle).
			return nil
		} else {
			cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
			st, err := n.pg.Status(cctx)
			cancel()
			if err != nil || st.InRecovery {
				return fmt.Errorf("read position after synchronous_standby_names took effect: %w", err)
			}
			n.syncMem.changeLSN, n.syncMem.pending = uint64(st.WriteLSN), nil
			n.logger.Info("synchronous_standby_names in effect", "value", o.sync.pg.String(), "lsn", pg.LSN(n.syncMem.changeLSN))
		}
	}
	in := syncstandby.Input{
		Mode:      syncstandby.Mode(o.dyn.SyncMode()),
		Count:     o.dyn.SyncCount(),
		Strict:    o.dyn.SynchronousModeStrict,
		Leader:    n.cfg.Name,
		PG:        o.sync.pg,
		Published: o.sync.published(),
		ChangeLSN: n.syncMem.changeLSN,
	}
	if in.ChangeLSN == 0 {
		// Unknown (ramd restarted): treat the setting as just changed.
		c := o.sync.pg
		n.syncMem.pending, n.syncMem.changeLSN, n.syncMem.pendingSince = &c, ^uint64(0), time.Now()
		in.ChangeLSN = n.syncMem.changeLSN
	}
	progress := make(map[string]standbyProgress, len(o.pg.Replication))
	now := time.Now()
	for _, r := range o.pg.Replication {
		m := o.members[r.ApplicationName]
		prev, seen := n.syncMem.progress[r.ApplicationName]
		p, stalled := standbyStalled(prev, seen, r, now, n.timings().TTL)
		progress[r.ApplicationName] = p
		// A stalled standby (silently cut off: still "streaming" for wal_sender_timeout) is
		// not made or kept synchronous: commits must not wait for it.
		s := syncstandby.Standby{Name: r.ApplicationName, Streaming: r.State == "streaming", SyncState: r.SyncState, Flush: uint64(r.FlushLSN), Lagging: stalled}
		if b, ok := m.Tags["nosync"].(bool); ok {
			s.NoSync = b
		}
		if p, ok := m.Tags["sync_priority"].(float64); ok {
			s.Priority = int(p)
		}
		if _, member := o.members[r.ApplicationName]; !member {
			continue // not a member of this cluster (e.g. pg_basebackup)
		}
		in.Standbys = append(in.Standbys, s)
	}
	n.syncMem.progress = progress
	if in.Mode == syncstandby.ModeOff && in.PG.Empty() {
		if o.sync.key != nil {
			cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
			defer cancel()
			if err := n.store.DeleteCAS(cctx, consul.KeySync, o.sync.keyIdx); err != nil {
				return fmt.Errorf("clear sync key: %w", err)
			}
			n.logger.Info("synchronous mode off: sync key cleared")
		}
		return nil
	}
	if in.Mode != syncstandby.ModeOff && n.syncMem.commit != o.dyn.SyncCommit() && n.syncMem.names == o.sync.pg.String() {
		// Only the commit level changed: apply it without touching the standbys.
		return n.setSyncNames(ctx, o, o.sync.pg, "synchronous_commit "+o.dyn.SyncCommit())
	}
	step := syncstandby.Next(in)
	if step.Publish != nil || step.SetPG != nil {
		var seen []string
		for _, s := range in.Standbys {
			seen = append(seen, fmt.Sprintf("%s(streaming=%v sync_state=%s flush=%s nosync=%v stalled=%v)", s.Name, s.Streaming, s.SyncState, pg.LSN(s.Flush), s.NoSync, s.Lagging))
		}
		n.logger.Info("synchronous standbys step", "reason", step.Reason, "standbys", strings.Join(seen, " "), "enforced", o.sync.pg.String())
	}
	switch {
	case step.Publish != nil:
		return n.publishSync(ctx, o, *step.Publish, step.Reason)
	case step.SetPG != nil:
		return n.setSyncNames(ctx, o, *step.SetPG, step.Reason)
	}
	return nil
}

func (n *Node) publishSync(ctx context.Context, o *observation, p syncstandby.Published, why string) error {
	rec := consul.Sync{Leader: p.Leader, SyncStandby: strings.Join(p.Names, ","), Quorum: p.Quorum}
	b, _ := json.Marshal(rec)
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.store.CAS(cctx, consul.KeySync, b, o.sync.keyIdx); err != nil {
		return fmt.Errorf("write sync key: %w", err)
	}
	n.logger.Info("sync key", "sync_standby", rec.SyncStandby, "quorum", rec.Quorum, "reason", why)
	return nil
}

// setSyncNames makes PostgreSQL enforce c (managed config + reload) and remembers the
// position at the change: a standby added now is published only once it flushed past it.
func (n *Node) setSyncNames(ctx context.Context, o *observation, c syncstandby.Config, why string) error {
	n.syncMem.names = c.String()
	n.syncMem.commit = o.dyn.SyncCommit()
	if _, err := n.pg.WriteConfig(n.primarySettings()); err != nil {
		return fmt.Errorf("write synchronous_standby_names: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.pg.Reload(cctx); err != nil {
		return fmt.Errorf("reload for synchronous_standby_names: %w", err)
	}
	n.syncMem.pending, n.syncMem.changeLSN, n.syncMem.pendingSince = &c, ^uint64(0), time.Now()
	n.logger.Info("synchronous_standby_names", "value", c.String(), "reason", why)
	return nil
}

// effective reports whether the walsenders apply c: every listed standby that is connected
// shows the state c gives it, and no other one is synchronous. A listed standby that is not
// connected cannot acknowledge anything, so it does not hold the check back.
func effective(c syncstandby.Config, rows []pg.Replication, lenient bool) bool {
	want := "sync"
	if c.Method == syncstandby.MethodAny {
		want = "quorum"
	}
	for _, r := range rows {
		listed := contains(c.Names, r.ApplicationName)
		switch {
		case c.Empty() && (r.SyncState == "sync" || r.SyncState == "quorum"):
			return false
		case !c.Empty() && listed && r.SyncState != want && !lenient:
			return false
		case !listed && (r.SyncState == "sync" || r.SyncState == "quorum"):
			return false
		}
	}
	return true
}

// primarySettings is the managed configuration of this node as a primary.
func (n *Node) primarySettings() pg.Settings {
	s := pg.Settings{Parameters: n.serverParameters()}
	s.Parameters["synchronous_standby_names"] = n.syncMem.names
	if n.syncMem.commit != "" {
		s.Parameters["synchronous_commit"] = n.syncMem.commit
	}
	return s
}

// beforePromote prepares synchronous mode for a new leader: the sync key names no standby
// (nobody may be promoted from the old leader's set any more) and, in strict mode, writes wait
// for a synchronous standby from the first commit on.
func (n *Node) beforePromote(ctx context.Context, o *observation) error {
	if o.dyn.SyncMode() == "off" {
		n.syncMem.names, n.syncMem.commit = "", ""
		return nil
	}
	empty := syncstandby.Published{Leader: n.cfg.Name}
	if err := n.publishSync(ctx, o, empty, "new leader: no synchronous standby yet"); err != nil {
		return err
	}
	n.syncMem.names, n.syncMem.commit, n.syncMem.changeLSN, n.syncMem.pending = "", o.dyn.SyncCommit(), 0, nil
	if o.dyn.SynchronousModeStrict {
		n.syncMem.names = syncstandby.Config{Method: syncstandby.MethodFirst, Num: 1,
			Names: []string{syncstandby.PlaceholderPrefix + "0"}}.String()
	}
	s, err := n.standbySettings(n.pgMem.following)
	if err != nil {
		s = pg.Settings{Standby: true}
	}
	s.Parameters = n.primarySettings().Parameters
	if _, err := n.pg.WriteConfig(s); err != nil {
		return fmt.Errorf("write synchronous settings before promotion: %w", err)
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.pg.Reload(cctx); err != nil {
		return fmt.Errorf("reload before promotion: %w", err)
	}
	return nil
}

// syncRole tells whether this replica is published as sync or quorum standby.
func (n *Node) syncRole(o *observation) (sync, quorum bool) {
	mode := o.dyn.SyncMode()
	if mode == "off" || o.sync.key == nil {
		return false, false
	}
	for _, name := range o.sync.published().Names {
		if name == n.cfg.Name {
			return mode == "on", mode == "quorum"
		}
	}
	return false, false
}

// leaveSync runs when a synchronous standby stops cleanly: it asks to be removed (the nosync
// tag in its member record) and waits, bounded, until the leader no longer counts on it, so
// its stop neither blocks commits nor shrinks the set that protects them unannounced.
func (n *Node) leaveSync(ctx context.Context) error {
	st := n.Status()
	// Read the sync key now: the last snapshot may predate this node's promotion to it.
	if st == nil || n.session == "" || !n.listedAsSync(ctx) {
		return nil
	}
	next := *st
	tags := map[string]any{}
	for k, v := range st.Tags {
		tags[k] = v
	}
	tags["nosync"] = true
	next.Tags = tags
	b, _ := json.Marshal(n.memberRecord(&next))
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	err := n.store.Acquire(cctx, consul.MemberKey(n.cfg.Name), b, n.session)
	cancel()
	if err != nil {
		n.logger.Warn("could not ask to leave the synchronous standbys", "err", err)
		return fmt.Errorf("ask to leave the synchronous standbys: %w", err)
	}
	n.logger.Info("stopping: asked the leader to remove this node from the synchronous standbys")
	deadline := time.Now().Add(syncLeaveWait)
	for i := 0; time.Now().Before(deadline) && i < 1000; i++ {
		if !n.listedAsSync(ctx) {
			n.logger.Info("removed from the synchronous standbys")
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	n.logger.Warn("the leader did not remove this node from the synchronous standbys in time")
	return fmt.Errorf("still a synchronous standby after %s", syncLeaveWait)
}

// syncApplyWait is how long a new synchronous_standby_names may take to show in
// pg_stat_replication before a listed standby that does not stream is ignored.
const syncApplyWait = 10 * time.Second

// syncLeaveWait bounds how long a stopping synchronous standby waits to be removed: a few
// leader cycles (narrow the sync key, then synchronous_standby_names).
const syncLeaveWait = 10 * time.Second

// listedAsSync reports whether the sync key or the leader's synchronous_standby_names still
// name this node.
func (n *Node) listedAsSync(ctx context.Context) bool {
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	var k consul.Sync
	if _, err := n.store.GetJSON(cctx, consul.KeySync, true, &k); err == nil {
		for _, name := range strings.Split(k.SyncStandby, ",") {
			if strings.TrimSpace(name) == n.cfg.Name {
				return true
			}
		}
	}
	if n.lead.LastLeader == "" || n.lead.LastLeader == n.cfg.Name {
		return false
	}
	conn, err := n.memberConn(n.lead.LastLeader, false)
	if err != nil {
		return false
	}
	v, err := pg.RemoteSetting(cctx, conn, "synchronous_standby_names")
	if err != nil {
		return false
	}
	c, err := syncstandby.Parse(v)
	return err == nil && contains(c.Names, n.cfg.Name)
}

func contains(list []string, x string) bool {
	for _, y := range list {
		if y == x {
			return true
		}
	}
	return false
}

// syncDegraded says why a leader in synchronous mode acknowledges commits without any
// synchronous standby ("" when it does not). A relaxation (the setting was in force and went
// empty) is logged at error level when it starts and when it ends: synchronous replication is
// never relaxed silently. Right after synchronous mode is switched on, the setting is not in
// force yet for a cycle or two; that is reported too, at info level.
func (n *Node) syncDegraded(o *observation, st *Status) string {
	mode := o.dyn.SyncMode()
	leading := mode != "off" && st.HasLock && st.Role == RolePrimary && o.sync.pgRead
	if !leading {
		n.syncMem.enforced = false
	}
	why := ""
	switch {
	case !leading:
	case !o.sync.pg.Empty():
		n.syncMem.enforced = true
	case !n.syncMem.enforced:
		why = "synchronous_mode is " + mode + " but synchronous_standby_names is not set yet: commits are acknowledged without a synchronous standby until it is"
	default:
		why = "synchronous_mode is " + mode + " but synchronous_standby_names is empty: commits are acknowledged without a synchronous standby"
		if !o.dyn.SynchronousModeStrict {
			why += " (no eligible standby; synchronous_mode_strict is off)"
		}
	}
	if why != n.syncMem.relaxed {
		switch {
		case why != "" && n.syncMem.enforced:
			n.logger.Error("synchronous replication relaxed", "reason", why)
		case why != "":
			n.logger.Info("synchronous replication not in force yet", "reason", why)
		case n.syncMem.relaxed != "":
			n.logger.Info("synchronous replication in force")
		}
		n.syncMem.relaxed = why
	}
	return why
}
