package daemon

// This file: the node's backup tool and WAL archiving (archive settings, the tool's per-node
// configuration, requeueing streamed WAL before a promotion, draining a former primary's
// archive queue before pg_rewind).

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

const (
	// noArchiveCommand keeps archive_mode on while no tool is configured, so configuring one
	// later needs a reload, not a restart of every member.
	noArchiveCommand = "/bin/true"
	// configureTimeout bounds the writing of a tool's per-node configuration.
	configureTimeout = 10 * time.Second
	// drainTimeout bounds the archiving of a former primary's queue before pg_rewind.
	drainTimeout = 2 * time.Minute
)

// backups is the node's backup part: the tool the configuration names, bound to this
// member, and the archive facts the loop keeps for failovers. The loop goroutine writes it;
// the API reads it under mu.
type backups struct {
	mu     sync.Mutex // guards the fields below
	cfg    *dynconf.Backup
	sig    string
	tool   backup.Tool
	member backup.Member
	// err is the last failure to configure the tool on this node.
	err error

	// initialized is the signature the leader prepared the repository for (stanza-create)
	// in its current term; initRunning is set while that runs.
	initialized string
	initRunning bool

	// archived is the last segment the local primary archived (published in heartbeats);
	// leaderArchived the last one the leader published. Loop goroutine only.
	archived       string
	leaderArchived string
	// maintainer is set while this node runs the tool's maintenance (the leader). Loop only.
	maintainer bool
	// slotsCheckedAt is when a standby last looked for a tool slot left from its time as
	// primary. Loop only.
	slotsCheckedAt time.Time

	runner jobRunner
	sched  scheduleState
	stats  backupStats
	srv    toolServer
}

// backupSignature identifies a backup configuration, to notice changes.
func backupSignature(b *dynconf.Backup) string {
	if b == nil {
		return ""
	}
	raw, _ := json.Marshal(b)
	return string(raw)
}

// backupMember is this node as the tools see it.
func (n *Node) backupMember() backup.Member {
	pc := n.pg.Config()
	host := pc.ConnectAddr
	if host == "" {
		host = "127.0.0.1"
	}
	sock := pc.SocketDir
	if sock == pg.SocketDirNone {
		sock = ""
	}
	major := 0
	if st, err := n.pg.DataDirState(); err == nil {
		major = st.MajorVersion
	}
	return backup.Member{
		Scope: n.cfg.Scope, Name: n.cfg.Name, DataDir: pc.DataDir, BinDir: pc.BinDir, Major: major,
		Host: host, Port: pc.Port, SocketDir: sock,
		Superuser: pc.Superuser, SuperuserPassword: pc.SuperuserPassword,
		ReplicationUser: pc.ReplicationUser, ReplicationPassword: pc.ReplicationPassword,
		StateDir: backupStateDir(pc.DataDir),
	}
}

// backupStateDir is where a node keeps its tools' files: beside the data directory (never
// inside: a backup or a clone would carry it to other nodes).
func backupStateDir(dataDir string) string {
	return filepath.Join(filepath.Dir(dataDir), filepath.Base(dataDir)+".backup")
}

// followBackupConfig follows the configuration's backup object before the cycle acts: a
// change rebuilds the tool and writes its per-node configuration, so the archive command
// PostgreSQL (or a drain before pg_rewind) runs next works. Loop goroutine.
func (n *Node) followBackupConfig(ctx context.Context, o *observation) {
	b := &n.bk
	if !o.pg.InRecovery && o.pg.Running {
		b.archived = o.pg.Archiver.LastArchivedWAL
	}
	cfg := o.dyn.Backup
	sig := backupSignature(cfg)
	b.mu.Lock()
	same := sig == b.sig && (b.err == nil || cfg == nil)
	b.mu.Unlock()
	if !same {
		n.configureBackups(ctx, cfg, sig)
	}
}

// tendBackups runs the leader's backup duties after the cycle acted: the repository, the
// job queue, the schedules and the tool's maintenance. A member that is not the leader
// cancels a job it still runs. Loop goroutine.
func (n *Node) tendBackups(ctx context.Context, o *observation) {
	b := &n.bk
	if o.in.Restoring {
		// An in-place restore owns PostgreSQL: the leader's job goes on while its server is
		// down or recovering; the other members follow its phases.
		if !n.lock.Held {
			b.runner.stopUnlessLeader(n.logger)
			n.followRestore(ctx, o)
		}
		return
	}
	if n.lock.Held && o.pg.Running && !o.pg.InRecovery {
		n.initRepository(ctx)
		n.dispatchBackupJobs(ctx, o)
		n.fireSchedules(ctx, o)
		n.maintainTool(ctx)
		b.maintainer = true
		return
	}
	if !n.lock.Held {
		b.mu.Lock()
		b.initialized = ""
		b.mu.Unlock()
		// Only a lost lock stops a job: a leader whose server did not answer one status
		// read (a busy machine, a clone reading from it) keeps its job, which fails by
		// itself if the server is really gone.
		b.runner.stopUnlessLeader(n.logger)
	}
	if b.maintainer {
		b.maintainer = false
		n.stopToolProcesses()
	}
	if o.pg.Running && o.pg.InRecovery && time.Since(b.slotsCheckedAt) > slotCheckEvery {
		b.slotsCheckedAt = time.Now()
		n.dropToolSlots(ctx)
	}
}

// configureBackups builds the tool of cfg and writes its configuration for this node.
func (n *Node) configureBackups(ctx context.Context, cfg *dynconf.Backup, sig string) {
	b := &n.bk
	var tool backup.Tool
	var err error
	m := n.backupMember()
	if cfg != nil {
		tool, err = backup.New(resolveTLSServer(*cfg, n.pg.Config()), n.pg)
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, configureTimeout)
			err = tool.Configure(cctx, m)
			cancel()
		}
	}
	b.mu.Lock()
	b.cfg, b.sig, b.tool, b.member, b.err = cfg, sig, tool, m, err
	b.initialized = ""
	b.mu.Unlock()
	if err == nil {
		n.setToolServer(tool, m)
	} else {
		n.setToolServer(nil, m)
	}
	switch {
	case err != nil:
		n.logger.Error("configure backup tool", "tool", cfg.Tool, "err", err)
	case cfg != nil:
		n.logger.Info("backup tool configured", "tool", cfg.Tool, "archive_command", tool.ArchiveCommand(m))
	default:
		n.logger.Info("no backup tool configured")
	}
}

// currentTool returns the tool in force and this member ("nil" when none is configured or
// it failed to configure).
func (n *Node) currentTool() (backup.Tool, backup.Member, *dynconf.Backup, error) {
	b := &n.bk
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg == nil {
		return nil, b.member, nil, errNoBackupTool
	}
	if b.err != nil {
		return nil, b.member, b.cfg, fmt.Errorf("the backup tool %s is not configured on %s: %w", b.cfg.Tool, n.cfg.Name, b.err)
	}
	return b.tool, b.member, b.cfg, nil
}

// archiveParameters are the archive settings ramd writes for this node: archive_mode always
// on (so a tool configured later needs no restart), the tool's archive and restore commands,
// and archive_timeout while a tool is configured.
func (n *Node) archiveParameters() map[string]string {
	p := map[string]string{"archive_mode": "on", "archive_command": noArchiveCommand}
	tool, m, cfg, err := n.currentTool()
	if err != nil || tool == nil {
		return p
	}
	if cfg.Archiving() {
		if c := tool.ArchiveCommand(m); c != "" {
			p["archive_command"] = c
		}
	}
	// Barman's get-wal starts a Python process per file: as every member's restore_command it
	// would slow the history-file lookups of a promotion by seconds. Its members stream
	// through their slots; Barman's own restores set restore_command for their recovery.
	if c := tool.RestoreCommand(m); c != "" && cfg.Tool != dynconf.ToolBarman {
		p["restore_command"] = c
	}
	p["archive_timeout"] = strconv.Itoa(int(cfg.ArchiveTimeoutValue() / time.Second))
	return p
}

// archiveCommand is the archive_command in force on this node.
func (n *Node) archiveCommand() string { return n.archiveParameters()["archive_command"] }

// requeueBeforePromote gives the archive what the old primary streamed to this standby
// but never archived: PostgreSQL marked those segments archived here, and the promotion's
// checkpoint would recycle them. Called right before the promotion.
func (n *Node) requeueBeforePromote() {
	segs, err := n.pg.RequeueStreamedWAL(n.bk.leaderArchived)
	switch {
	case err != nil:
		n.logger.Error("requeue streamed WAL for archiving", "err", err)
	case len(segs) > 0:
		n.logger.Info("requeued streamed WAL the old primary had not archived", "count", len(segs),
			"first", segs[0], "last", segs[len(segs)-1], "after", n.bk.leaderArchived)
	}
}

// drainBeforeRewind archives what this former primary still had waiting: pg_rewind would
// discard those segments. A failure is logged; the rewind goes on (the node must rejoin).
func (n *Node) drainBeforeRewind(ctx context.Context) {
	cmd := n.archiveCommand()
	if cmd == noArchiveCommand {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	count, err := n.pg.DrainArchiveQueue(dctx, cmd)
	if err != nil {
		n.logger.Error("archive the former primary's waiting WAL before pg_rewind", "archived", count, "err", err)
		return
	}
	if count > 0 {
		n.logger.Info("archived the former primary's waiting WAL before pg_rewind", "count", count)
	}
}

// initRepository prepares the repository once per configuration and leader term (pgBackRest
// stanza-create, Barman's slot), then checks that archiving works, in the background.
func (n *Node) initRepository(_ context.Context) {
	b := &n.bk
	tool, m, _, err := n.currentTool()
	if err != nil || tool == nil {
		return
	}
	b.mu.Lock()
	if b.initialized == b.sig || b.initRunning {
		b.mu.Unlock()
		return
	}
	sig := b.sig
	b.initRunning = true
	b.mu.Unlock()
	n.tasks.run(func(ctx context.Context) {
		defer func() { n.bk.mu.Lock(); n.bk.initRunning = false; n.bk.mu.Unlock() }()
		ictx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		if err := tool.Init(ictx, m); err != nil {
			n.logger.Error("prepare the backup repository", "tool", tool.Name(), "err", err)
			n.bk.stats.setCheck(err)
			return
		}
		err := tool.Check(ictx, m)
		n.bk.stats.setCheck(err)
		if err != nil {
			n.logger.Error("backup repository check", "tool", tool.Name(), "err", err)
		} else {
			n.logger.Info("backup repository ready and archiving checked", "tool", tool.Name())
		}
		n.bk.mu.Lock()
		if n.bk.sig == sig {
			n.bk.initialized = sig
		}
		n.bk.mu.Unlock()
	})
}

// maintainTool runs the tool's periodic maintenance (Barman's cron) about once a minute.
func (n *Node) maintainTool(_ context.Context) {
	b := &n.bk
	tool, m, _, err := n.currentTool()
	if err != nil || tool == nil || time.Since(b.stats.maintainedAt()) < time.Minute || !b.stats.startMaintain() {
		return
	}
	n.tasks.run(func(ctx context.Context) {
		defer b.stats.endMaintain()
		mctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := tool.Maintain(mctx, m); err != nil {
			n.logger.Warn("backup tool maintenance", "tool", tool.Name(), "err", err)
		}
		b.stats.refreshCatalog(mctx, tool, m, false)
	})
}

// BackupStatus is the backup tool and WAL archiving on this node, for the API and metrics.
type BackupStatus struct {
	// Tool is the configured tool ("" none); ConfigError why it is not usable here.
	Tool        string
	ConfigError string
	// Archiver is pg_stat_archiver of the running server; ReadyWAL the files waiting.
	Archiver pg.Archiver
	ReadyWAL int
	// Job is the backup job this node runs ("" none).
	Job string
	// Figures are the backup results this node knows (the leader's are the cluster's).
	Figures BackupFigures
}

// backupStatus is what tendBackups and the jobs left for the Status snapshot.
func (n *Node) backupStatus(o *observation) BackupStatus {
	b := &n.bk
	var s BackupStatus
	b.mu.Lock()
	if b.cfg != nil {
		s.Tool = b.cfg.Tool
		if b.err != nil {
			s.ConfigError = b.err.Error()
		}
	}
	b.mu.Unlock()
	b.runner.mu.Lock()
	s.Job = b.runner.id
	b.runner.mu.Unlock()
	if o.pg.Running {
		s.Archiver = o.pg.Archiver
		if !o.pg.InRecovery {
			if ready, err := n.pg.ReadyWAL(); err == nil {
				s.ReadyWAL = len(ready)
			}
		}
	}
	s.Figures = b.stats.snapshot()
	s.Figures.Tool = s.Tool
	return s
}

// toolSlots are the replication slots the backup tool streams through (Barman's), kept on
// the leader like the members' slots.
func (n *Node) toolSlots() []string {
	b := &n.bk
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cfg == nil || b.cfg.Tool != dynconf.ToolBarman {
		return nil
	}
	return []string{b.cfg.Barman.SlotValue()}
}

// slotCheckEvery is how often a standby looks for the tool's slot (left when it was primary).
const slotCheckEvery = 30 * time.Second

// dropToolSlots drops the tool's slot on a standby: a former primary keeps it after a
// switchover, and a slot nobody streams from holds back the standby's WAL for good.
func (n *Node) dropToolSlots(ctx context.Context) {
	want := n.toolSlots()
	if len(want) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	slots, err := n.pg.Slots(cctx)
	if err != nil {
		return
	}
	for _, s := range slots {
		if !slices.Contains(want, s.Name) || s.Active {
			continue
		}
		if err := n.pg.DropSlot(cctx, s.Name); err != nil {
			n.logger.Warn("drop the backup tool's slot on a standby", "slot", s.Name, "err", err)
			continue
		}
		n.logger.Info("dropped the backup tool's slot: this member is a standby now", "slot", s.Name)
	}
}

// stopToolProcesses stops what the tool keeps running on this node (Barman's streaming
// archiver) once the node no longer is the leader: another node's archiver takes over.
func (n *Node) stopToolProcesses() {
	tool, m, _, err := n.currentTool()
	s, ok := tool.(backup.Stopper)
	if err != nil || !ok {
		return
	}
	n.tasks.run(func(ctx context.Context) {
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := s.Stop(sctx, m); err != nil {
			n.logger.Warn("stop the backup tool's processes", "tool", tool.Name(), "err", err)
			return
		}
		n.logger.Info("stopped the backup tool's processes: no longer the leader", "tool", tool.Name())
	})
}
