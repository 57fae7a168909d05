// Package backup drives the backup tools ramd supports (pgBackRest, Barman and a user's own
// commands) for one node: the tool's per-node configuration, the archive and restore
// commands PostgreSQL runs, backups, the backup list parsed from the tool's JSON,
// retention, checks and restores. It knows nothing of Consul or of the HA loop: the daemon
// decides which node runs what and records jobs; a Tool only runs the tool and reads its
// answers.
package backup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// Runner runs programs as the PostgreSQL OS user and creates files it owns. *pg.Instance
// implements it.
type Runner interface {
	RunProgram(ctx context.Context, p pg.Program) (string, error)
	OwnedDir(dir string, perm os.FileMode) error
	WriteOwnedFile(path string, data []byte, perm os.FileMode) error
}

// Member is the node a tool works for: where its PostgreSQL lives and how to reach it.
type Member struct {
	// Scope is the cluster name (the default stanza and Barman server name).
	Scope string
	// Name is the member name.
	Name    string
	DataDir string
	BinDir  string
	// Major is PostgreSQL's major version (13, 14, ...).
	Major int
	// Host and Port reach the server over TCP; SocketDir is its unix socket directory ("" none).
	Host      string
	Port      int
	SocketDir string
	// Superuser and its password (empty: none needed on this path).
	Superuser, SuperuserPassword string
	// ReplicationUser and its password, for streaming (Barman's streaming archiver).
	ReplicationUser, ReplicationPassword string
	// StateDir is a directory of this node's own that ramd keeps for the tool (generated
	// configuration, logs, locks, spool); it is created owned by the OS user.
	StateDir string
}

// Target is a recovery target. Type "" or "end" recovers to the end of the archive.
type Target struct {
	// Type is end, immediate, time, xid, lsn or name.
	Type string `json:"type,omitempty"`
	// Value is the time (RFC 3339), xid, LSN or restore point name.
	Value string `json:"value,omitempty"`
	// Exclusive stops just before the target instead of just after it.
	Exclusive bool `json:"exclusive,omitempty"`
}

// Target types.
const (
	TargetEnd       = dynconf.TargetEnd
	TargetImmediate = dynconf.TargetImmediate
	TargetTime      = dynconf.TargetTime
	TargetXID       = dynconf.TargetXID
	TargetLSN       = dynconf.TargetLSN
	TargetName      = dynconf.TargetName
)

// BackupRequest asks for one backup.
type BackupRequest struct {
	// Type is full, diff or incr.
	Type string
	// JobID is ramd's job; tools record it with the backup (pgBackRest annotation
	// ramd-job, Barman backup name) so a backup can be matched to its job.
	JobID string
	// Member is the node the backup is taken from.
	Member Member
	// Primary is the primary when Member is a standby (backup from a standby), else nil.
	Primary *Member
	// StandbyRemote says that the standby Member is on another host: pgBackRest, run on
	// the primary's host, reaches it through the pgBackRest TLS server ramd runs there
	// (Member.Host, backup.pgbackrest.tls_server); Member.DataDir, SocketDir and StateDir
	// are then paths on that host. Without it both data directories are on this machine.
	StandbyRemote bool
}

// RestoreRequest restores a backup into Member.DataDir.
type RestoreRequest struct {
	Member Member
	// BackupID is the tool's backup label or id; "" takes the latest that reaches Target.
	BackupID string
	Target   Target
	// Standby restores a copy that starts as a standby (clone of a replica); the daemon
	// writes primary_conninfo itself. Target is ignored.
	Standby bool
	// Delta lets the tool reuse files already in the data directory.
	Delta bool
}

// Info is one backup as the tool reports it.
type Info struct {
	// ID is the tool's label (pgBackRest) or backup id (Barman).
	ID   string `json:"id"`
	Type string `json:"type"`
	// Status is done, failed or running.
	Status string    `json:"status"`
	Start  time.Time `json:"start"`
	Stop   time.Time `json:"stop,omitzero"`
	// StartLSN, StopLSN and the WAL range the backup needs.
	StartLSN string `json:"start_lsn,omitempty"`
	StopLSN  string `json:"stop_lsn,omitempty"`
	WALStart string `json:"wal_start,omitempty"`
	WALStop  string `json:"wal_stop,omitempty"`
	Timeline int    `json:"timeline,omitempty"`
	// Size is the database size backed up; RepoSize what the repository stores for it.
	Size     int64 `json:"size_bytes,omitempty"`
	RepoSize int64 `json:"repo_size_bytes,omitempty"`
	// Prior is the backup an incremental or differential one builds on.
	Prior string `json:"prior,omitempty"`
	// JobID is ramd's job that took it (from the annotation or name), "" for others.
	JobID string `json:"job_id,omitempty"`
	// Retention is the tool's retention status where it has one (Barman: VALID, OBSOLETE, ...).
	Retention string `json:"retention,omitempty"`
}

// Backup statuses.
const (
	StatusDone    = "done"
	StatusFailed  = "failed"
	StatusRunning = "running"
)

// Catalog is what a repository holds: its backups (oldest first) and the WAL it has.
type Catalog struct {
	Backups []Info `json:"backups"`
	// WALMin and WALMax are the oldest and newest WAL segment in the archive ("" unknown).
	WALMin string `json:"wal_min,omitempty"`
	WALMax string `json:"wal_max,omitempty"`
	// SystemID is the PostgreSQL system identifier the repository belongs to (0 unknown).
	SystemID uint64 `json:"system_id,omitempty"`
}

// Progress is a line of progress from a running tool, for the job's record.
type Progress struct {
	Message string
	// Percent is 0 to 100, or -1 when the tool does not say.
	Percent int
}

// Tool is one backup tool bound to its configuration.
type Tool interface {
	// Name is pgbackrest, barman or custom.
	Name() string
	// Configure writes the tool's configuration for m (idempotent, cheap when nothing
	// changed) so that the archive and restore commands work on this node.
	Configure(ctx context.Context, m Member) error
	// ArchiveCommand and RestoreCommand are PostgreSQL's archive_command and
	// restore_command on m ("" when the tool has none: Barman streams WAL itself).
	ArchiveCommand(m Member) string
	RestoreCommand(m Member) string
	// Init prepares the repository for the cluster from its primary (pgBackRest
	// stanza-create, Barman's slot and streaming archiver); idempotent.
	Init(ctx context.Context, m Member) error
	// Backup takes a backup and returns it as the tool recorded it. progress may be nil.
	Backup(ctx context.Context, req BackupRequest, progress func(Progress)) (Info, error)
	// List reads the repository.
	List(ctx context.Context, m Member) (Catalog, error)
	// Expire applies the retention.
	Expire(ctx context.Context, m Member) error
	// Check verifies that archiving and the repository work from m (a primary).
	Check(ctx context.Context, m Member) error
	// Restore restores into req.Member.DataDir, which must not hold a running server.
	// Recovery settings the tool writes (restore_command, recovery_target_*) stay in
	// postgresql.auto.conf for that recovery; the daemon resets them once it is over.
	Restore(ctx context.Context, req RestoreRequest, progress func(Progress)) error
	// Maintain is called about once a minute on the node that runs backups (Barman's
	// cron: streaming archiver, WAL filing, retention); a no-op for tools without it.
	Maintain(ctx context.Context, m Member) error
}

// ErrBusy is wrapped when the tool's own lock is held by another run (pgBackRest exit 50):
// the job should wait and retry, not fail.
var ErrBusy = errors.New("backup: the repository is busy with another run")

// ErrNotFound is wrapped when the backup or recovery target asked for is not in the repository.
var ErrNotFound = errors.New("backup: no such backup or target in the repository")

// ErrArchiveMismatch is wrapped when the archive holds a different WAL file of the same
// name (pgBackRest exit 45, or a system identifier that is not the cluster's): a split-brain
// alarm, never retried silently.
var ErrArchiveMismatch = errors.New("backup: the archive holds different WAL of the same name")

// New returns the tool b configures, using r to run it.
func New(b dynconf.Backup, r Runner) (Tool, error) {
	switch b.Tool {
	case dynconf.ToolPgBackRest:
		return newPgBackRest(b, r), nil
	case dynconf.ToolBarman:
		return newBarman(b, r), nil
	case dynconf.ToolCustom:
		return newCustom(b, r), nil
	}
	return nil, fmt.Errorf("backup: unknown tool %q", b.Tool)
}

// Stopper is implemented by tools that keep processes running on a node between calls
// (Barman's streaming archiver, started by Maintain). The daemon calls Stop on a node that
// no longer runs the tool's maintenance because another node took that role, so that a
// single node archives; Stop only stops processes of this node. A plain shutdown of ramd
// need not call it: the archiver keeps streaming until the next ramd takes over.
type Stopper interface {
	Stop(ctx context.Context, m Member) error
}

// Server is implemented by tools that keep a server running on every member while they
// are configured (pgBackRest's TLS server, which lets the leader back up a standby on
// another host). The daemon runs the program ServerProgram returns, as the OS user,
// restarts it when it dies and stops it when the configuration no longer wants it.
type Server interface {
	// ServerProgram is the server of member m; ok is false when the configuration wants
	// none. An error says why a wanted server cannot run (no certificate, say).
	ServerProgram(m Member) (p pg.Program, ok bool, err error)
}

// Resumer is implemented by tools whose WAL receiver keeps a position of its own (Barman's
// streaming archiver). After an in-place restore the cluster's new timeline forks from the
// old one at the target, in the receiver's past, and the restored server has no slot for
// it: without help the receiver does not stream again (measured with Barman 3.4: the job's
// check failed with "receive_wal_running", "slot 'barman' not active"). The daemon calls
// ResumeAfterRestore on the restored primary m, after its promotion and before the tool's
// check, so that archiving starts again from the new timeline.
type Resumer interface {
	ResumeAfterRestore(ctx context.Context, m Member) error
}
