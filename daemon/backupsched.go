package daemon

// This file: backup schedules (fired by the leader, once per tick cluster-wide: the tick is
// recorded by CAS in Consul before the job is queued) and the backup figures the API and the
// metrics show.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
)

// scheduleState is what the leader's loop remembers of the schedules.
type scheduleState struct {
	// firing is set while a tick is being recorded and queued (loop and one task).
	firing sync.Mutex
}

// fireSchedules queues a backup for each schedule whose tick passed since it last fired.
// The tick is recorded first by CAS on the schedules key, so only one leader fires it even
// across a leader change, and a missed tick (cluster down) fires once. Leader's loop only.
func (n *Node) fireSchedules(_ context.Context, o *observation) {
	_, _, cfg, err := n.currentTool()
	if err != nil || len(cfg.Schedules) == 0 || !n.bk.sched.firing.TryLock() {
		return
	}
	now := time.Now().UTC()
	fired := o.backupSchedules.Fired
	var due []string
	ticks := map[string]time.Time{}
	for typ, s := range cfg.Schedules {
		last, seen := fired[typ]
		if !seen {
			// A new schedule starts now: it does not fire for ticks before it existed.
			ticks[typ] = now
			continue
		}
		if s.Suspend {
			continue
		}
		tick, fire, err := backup.Due(s.Cron, last, now)
		if err != nil || !fire {
			continue
		}
		ticks[typ] = tick
		due = append(due, typ)
	}
	if len(ticks) == 0 {
		n.bk.sched.firing.Unlock()
		return
	}
	idx := o.backupSchedulesIdx
	n.tasks.run(func(ctx context.Context) {
		defer n.bk.sched.firing.Unlock()
		cctx, cancel := context.WithTimeout(ctx, 4*n.timings().RetryTimeout)
		defer cancel()
		next := consul.BackupSchedules{Fired: maps.Clone(fired)}
		if next.Fired == nil {
			next.Fired = map[string]time.Time{}
		}
		maps.Copy(next.Fired, ticks)
		raw, _ := json.Marshal(next)
		if err := n.store.CAS(cctx, consul.KeyBackupSchedules, raw, idx); err != nil {
			if !errors.Is(err, consul.ErrConflict) {
				n.logger.Warn("record backup schedule ticks", "err", err)
			}
			return // another leader recorded them, or the next cycle tries again
		}
		slices.Sort(due)
		for _, typ := range due {
			id, err := n.StartBackup(cctx, BackupRequest{Type: typ, Schedule: typ + " @ " + ticks[typ].Format(time.RFC3339)})
			if err != nil {
				n.logger.Error("scheduled backup", "type", typ, "tick", ticks[typ], "err", err)
				continue
			}
			n.logger.Info("scheduled backup queued", "type", typ, "tick", ticks[typ], "job", id)
		}
	})
}

// ScheduleView is a backup schedule with its state, for the API.
type ScheduleView struct {
	Type      string    `json:"type"`
	Cron      string    `json:"cron"`
	Suspended bool      `json:"suspended"`
	LastTick  time.Time `json:"last_tick,omitzero"`
	NextTick  time.Time `json:"next_tick,omitzero"`
}

// BackupSchedules lists the configured schedules with their last and next ticks.
func (n *Node) BackupSchedules(ctx context.Context) ([]ScheduleView, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return nil, err
	}
	var st consul.BackupSchedules
	if _, err := n.store.GetJSON(ctx, consul.KeyBackupSchedules, false, &st); err != nil && !errors.Is(err, consul.ErrNotFound) {
		return nil, err
	}
	return scheduleViews(cfg.Schedules, st), nil
}

func scheduleViews(schedules map[string]dynconf.Schedule, st consul.BackupSchedules) []ScheduleView {
	out := []ScheduleView{}
	for _, typ := range slices.Sorted(maps.Keys(schedules)) {
		s := schedules[typ]
		v := ScheduleView{Type: typ, Cron: s.Cron, Suspended: s.Suspend, LastTick: st.Fired[typ]}
		if !s.Suspend {
			from := v.LastTick
			if from.IsZero() {
				from = time.Now()
			}
			v.NextTick, _ = backup.NextTick(s.Cron, from)
		}
		out = append(out, v)
	}
	return out
}

// backupStats are the backup figures of this node (the leader runs the jobs), for the
// metrics and the API.
type backupStats struct {
	mu          sync.Mutex // guards the fields below
	lastSuccess map[string]time.Time
	lastFailure map[string]time.Time
	lastTook    time.Duration
	lastSize    int64
	firstPoint  time.Time
	catalogAt   time.Time
	checkErr    string
	checkAt     time.Time
	maintained  time.Time
	maintaining bool
}

// BackupFigures is a snapshot of backupStats.
type BackupFigures struct {
	Tool string
	// LastSuccess and LastFailure are by backup type; a success clears the type's failure.
	LastSuccess map[string]time.Time
	LastFailure map[string]time.Time
	// LastDuration and LastSize are those of the last successful backup.
	LastDuration time.Duration
	LastSize     int64
	// FirstRecoverability is the end of the oldest backup in the repository.
	FirstRecoverability time.Time
	// CheckError is the last repository check's failure ("" when it passed).
	CheckError string
	CheckAt    time.Time
}

func (s *backupStats) snapshot() BackupFigures {
	s.mu.Lock()
	defer s.mu.Unlock()
	return BackupFigures{LastSuccess: maps.Clone(s.lastSuccess), LastFailure: maps.Clone(s.lastFailure),
		LastDuration: s.lastTook, LastSize: s.lastSize, FirstRecoverability: s.firstPoint, CheckError: s.checkErr, CheckAt: s.checkAt}
}

func (s *backupStats) recordBackup(_, typ string, info backup.Info, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSuccess == nil {
		s.lastSuccess, s.lastFailure = map[string]time.Time{}, map[string]time.Time{}
	}
	if err != nil {
		s.lastFailure[typ] = time.Now()
		return
	}
	end := info.Stop
	if end.IsZero() {
		end = time.Now()
	}
	s.lastSuccess[typ] = end
	delete(s.lastFailure, typ)
	if !info.Start.IsZero() && !info.Stop.IsZero() {
		s.lastTook = info.Stop.Sub(info.Start)
	}
	s.lastSize = info.Size
}

func (s *backupStats) setCheck(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checkErr, s.checkAt = "", time.Now()
	if err != nil {
		s.checkErr = err.Error()
	}
}

func (s *backupStats) maintainedAt() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maintained
}

func (s *backupStats) startMaintain() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.maintaining {
		return false
	}
	s.maintaining, s.maintained = true, time.Now()
	return true
}

func (s *backupStats) endMaintain() {
	s.mu.Lock()
	s.maintaining = false
	s.mu.Unlock()
}

// refreshCatalog reads the repository (at most every catalogEvery unless forced) and takes
// from it the last good backup of each type and the first recoverability point, so the
// figures survive a leader change.
func (s *backupStats) refreshCatalog(ctx context.Context, tool backup.Tool, m backup.Member, force bool) {
	s.mu.Lock()
	stale := force || time.Since(s.catalogAt) >= catalogEvery
	if stale {
		s.catalogAt = time.Now()
	}
	s.mu.Unlock()
	if !stale {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	c, err := tool.List(cctx, m)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lastSuccess == nil {
		s.lastSuccess, s.lastFailure = map[string]time.Time{}, map[string]time.Time{}
	}
	s.firstPoint = time.Time{}
	for _, b := range c.Backups {
		if b.Status != backup.StatusDone || b.Stop.IsZero() {
			continue
		}
		if s.firstPoint.IsZero() || b.Stop.Before(s.firstPoint) {
			s.firstPoint = b.Stop
		}
		if b.Stop.After(s.lastSuccess[b.Type]) {
			s.lastSuccess[b.Type] = b.Stop
		}
	}
}

// ScheduleChange sets, suspends, resumes or removes the schedule of one backup type.
type ScheduleChange struct {
	Type    string
	Cron    string
	Suspend *bool
	Remove  bool
}

// ChangeSchedule writes a schedule change into the configuration (validated like every
// change) and returns the schedules in force.
func (n *Node) ChangeSchedule(ctx context.Context, ch ScheduleChange) ([]ScheduleView, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return nil, err
	}
	if !slices.Contains(dynconf.BackupTypes(cfg.Tool), ch.Type) {
		return nil, &dynconf.FieldError{Field: "type", Value: ch.Type, Reason: fmt.Sprintf("%s takes %v backups", cfg.Tool, dynconf.BackupTypes(cfg.Tool))}
	}
	var entry any
	if !ch.Remove {
		cur, ok := cfg.Schedules[ch.Type]
		if ch.Cron != "" {
			cur.Cron = ch.Cron
		} else if !ok {
			return nil, &dynconf.FieldError{Field: "cron", Reason: "required: the " + ch.Type + " backups have no schedule yet"}
		}
		if ch.Suspend != nil {
			cur.Suspend = *ch.Suspend
		}
		entry = map[string]any{"cron": cur.Cron, "suspend": cur.Suspend}
	}
	patch := map[string]any{"backup": map[string]any{"schedules": map[string]any{ch.Type: entry}}}
	if _, err := n.PatchConfig(ctx, patch, nil); err != nil {
		return nil, err
	}
	// The loop takes the new configuration at its next cycle; answer with what was written.
	var st consul.BackupSchedules
	if _, err := n.store.GetJSON(ctx, consul.KeyBackupSchedules, false, &st); err != nil && !errors.Is(err, consul.ErrNotFound) {
		return nil, err
	}
	c, _, err := n.DynamicConfig(ctx)
	if err != nil {
		return nil, err
	}
	parsed, err := dynconf.Validate(c)
	if err != nil || parsed.Backup == nil {
		return nil, fmt.Errorf("read back the configuration: %w", err)
	}
	return scheduleViews(parsed.Backup.Schedules, st), nil
}

// RunScheduleNow queues the backup of a scheduled type at once ("run now").
func (n *Node) RunScheduleNow(ctx context.Context, typ string) (string, error) {
	_, _, cfg, err := n.currentTool()
	if err != nil {
		return "", err
	}
	if _, ok := cfg.Schedules[typ]; !ok {
		return "", &dynconf.FieldError{Field: "type", Value: typ, Reason: "no schedule for " + typ + " backups"}
	}
	return n.StartBackup(ctx, BackupRequest{Type: typ, Schedule: typ + " (run now)"})
}
