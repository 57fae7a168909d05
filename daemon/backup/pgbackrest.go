package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// pgBackRest adapter. ramd writes one configuration file per node under Member.StateDir
// (pgbackrest/pgbackrest.conf: the repository, retention, log, lock and spool paths, the
// user's options, and the stanza's pg1 = this node's data directory) and runs every command
// with --config and --stanza, as the OS user. The commands given to PostgreSQL name that
// file too, so archive-push and archive-get work on this node only (a copy of the data
// directory elsewhere needs its own file and commands).

const (
	pgbrSubdir = "pgbackrest"
	pgbrConf   = "pgbackrest.conf"
	// pgbrShortTimeout bounds the commands that are not jobs (info, stanza-create, check):
	// check waits archive-timeout (60 s by default) for the WAL switch it forces.
	pgbrShortTimeout = 10 * time.Minute
	// pgbrInfoMax bounds the JSON of `info` kept in memory (about 1 KiB per backup).
	pgbrInfoMax = 64 << 20
	// pgbrLineMax and pgbrLogMax bound one console line and the console output read while
	// a backup or restore runs (at detail level pgBackRest prints one line per file).
	pgbrLineMax = 16 << 10
	pgbrLogMax  = 1 << 30
)

// pgBackRest exit codes ramd maps (pgBackRest's build/error.yaml, measured with 2.45).
const (
	// pgbrExitBackupMismatch: stanza-create on a repository whose stanza belongs to
	// another system identifier.
	pgbrExitBackupMismatch = 28
	// pgbrExitArchiveMismatch and pgbrExitArchiveDuplicate: archive-push of WAL from
	// another system, or of a segment the archive holds with another checksum.
	pgbrExitArchiveMismatch  = 44
	pgbrExitArchiveDuplicate = 45
	// pgbrExitLockAcquire: another backup, expire or stanza command holds the lock.
	pgbrExitLockAcquire = 50
	// pgbrExitDBMismatch: backup or check of a server whose system identifier is not
	// the stanza's.
	pgbrExitDBMismatch = 51
	// pgbrExitBackupSetInvalid: restore --set of a label the repository does not hold, or
	// a time target older than every backup.
	pgbrExitBackupSetInvalid = 75
)

var stanzaRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`) // and at most 63 bytes

type pgbackrestTool struct {
	cfg dynconf.Backup
	run Runner
	// exe is the pgbackrest program: its absolute path when found on PATH, so that the
	// archive and restore commands do not depend on PostgreSQL's PATH.
	exe string

	mu      sync.Mutex        // guards written and serialises Configure
	written map[string]string // configuration file -> the content this tool wrote there (and created its directories for)
}

func newPgBackRest(b dynconf.Backup, r Runner) *pgbackrestTool {
	exe := "pgbackrest"
	if p, err := exec.LookPath(exe); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			exe = abs
		}
	}
	return &pgbackrestTool{cfg: b, run: r, exe: exe, written: map[string]string{}}
}

func (t *pgbackrestTool) Name() string { return dynconf.ToolPgBackRest }

func (t *pgbackrestTool) stanza(m Member) string { return t.cfg.PgBackRest.StanzaOr(m.Scope) }

func pgbrStateDir(m Member) string { return filepath.Join(m.StateDir, pgbrSubdir) }

// pgbrConfigPath is the generated configuration file of m.
func pgbrConfigPath(m Member) string { return filepath.Join(pgbrStateDir(m), pgbrConf) }

func (t *pgbackrestTool) checkMember(m Member) error {
	switch {
	case !filepath.IsAbs(m.StateDir):
		return fmt.Errorf("pgbackrest: member %s: state directory %q is not an absolute path", m.Name, m.StateDir)
	case !filepath.IsAbs(m.DataDir):
		return fmt.Errorf("pgbackrest: member %s: data directory %q is not an absolute path", m.Name, m.DataDir)
	case m.Port <= 0 || m.Port > 65535:
		return fmt.Errorf("pgbackrest: member %s: port %d out of range", m.Name, m.Port)
	case m.SocketDir == "" && m.Host == "":
		return fmt.Errorf("pgbackrest: member %s: neither a unix socket directory nor a host to reach PostgreSQL", m.Name)
	case len(t.stanza(m)) > 63 || !stanzaRe.MatchString(t.stanza(m)):
		return fmt.Errorf("pgbackrest: stanza %q: must be letters, digits, '.', '-' or '_'", t.stanza(m))
	}
	for _, p := range []string{m.StateDir, m.DataDir, m.SocketDir, m.Superuser} {
		if strings.ContainsAny(p, "\n\r\x00") {
			return fmt.Errorf("pgbackrest: member %s: line break in %q", m.Name, p)
		}
	}
	return nil
}

// renderConfig is the configuration file of m. [global] holds the repository, the
// retention, the paths under StateDir and the user's options (which may override the log
// levels); the stanza section points pg1 at m. Console logging is at warn because
// PostgreSQL runs archive-push and archive-get, whose console output goes to the server
// log; ramd raises it on the command line of the commands it runs itself, and keeps their
// output in the job. File logging is at warn too: pgBackRest never rotates its log files,
// and at info archive-push alone adds lines for every WAL segment.
func (t *pgbackrestTool) renderConfig(m Member) string {
	ret := t.cfg.RetentionValue()
	dir := pgbrStateDir(m)
	global := map[string]string{
		"repo1-path":        t.cfg.PgBackRest.RepoPath,
		"log-path":          filepath.Join(dir, "log"),
		"lock-path":         filepath.Join(dir, "lock"),
		"spool-path":        filepath.Join(dir, "spool"),
		"log-level-console": "warn",
		"log-level-file":    "warn",
	}
	if ret.FullDays > 0 {
		global["repo1-retention-full-type"] = "time"
		global["repo1-retention-full"] = strconv.Itoa(ret.FullDays)
	} else {
		global["repo1-retention-full-type"] = "count"
		global["repo1-retention-full"] = strconv.Itoa(ret.FullCount)
	}
	if ret.DiffCount > 0 {
		global["repo1-retention-diff"] = strconv.Itoa(ret.DiffCount)
	}
	for k, v := range t.cfg.PgBackRest.Options {
		global[k] = v
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by ramd for member %s; ramd rewrites this file, edit the backup configuration instead.\n", m.Name)
	b.WriteString("[global]\n")
	keys := make([]string, 0, len(global))
	for k := range global {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, global[k])
	}
	fmt.Fprintf(&b, "\n[%s]\n", t.stanza(m))
	fmt.Fprintf(&b, "pg1-path=%s\n", m.DataDir)
	fmt.Fprintf(&b, "pg1-port=%d\n", m.Port)
	if m.SocketDir != "" {
		fmt.Fprintf(&b, "pg1-socket-path=%s\n", m.SocketDir)
	}
	if m.Superuser != "" {
		fmt.Fprintf(&b, "pg1-user=%s\n", m.Superuser)
	}
	return b.String()
}

// localRepo reports whether repo1-path is a directory of this machine (posix or cifs).
func (t *pgbackrestTool) localRepo() bool {
	typ := t.cfg.PgBackRest.Options["repo1-type"]
	return typ == "" || typ == "posix" || typ == "cifs"
}

// Configure writes m's configuration file (owned by the OS user, mode 0600) and creates
// the state directories and, when missing, a local repository directory. It rewrites
// nothing when the file already holds the same content.
func (t *pgbackrestTool) Configure(ctx context.Context, m Member) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := t.checkMember(m); err != nil {
		return err
	}
	path := pgbrConfigPath(m)
	data := t.renderConfig(m)
	t.mu.Lock()
	defer t.mu.Unlock()
	old, readErr := os.ReadFile(path)
	if readErr == nil && t.written[path] == data && string(old) == data {
		// Written by this tool and unchanged since: nothing to create or rewrite.
		return nil
	}
	dir := pgbrStateDir(m)
	for _, d := range []string{m.StateDir, dir, filepath.Join(dir, "log"), filepath.Join(dir, "lock"), filepath.Join(dir, "spool")} {
		if err := t.run.OwnedDir(d, 0o700); err != nil {
			return fmt.Errorf("pgbackrest configure: %w", err)
		}
	}
	if repo := t.cfg.PgBackRest.RepoPath; t.localRepo() {
		if _, err := os.Stat(repo); errors.Is(err, fs.ErrNotExist) {
			if err := t.run.OwnedDir(repo, 0o750); err != nil {
				return fmt.Errorf("pgbackrest configure: repository: %w", err)
			}
		}
	}
	if readErr != nil || string(old) != data {
		if err := t.run.WriteOwnedFile(path, []byte(data), 0o600); err != nil {
			return fmt.Errorf("pgbackrest configure: %w", err)
		}
	}
	t.written[path] = data
	return nil
}

// ArchiveCommand is archive_command on m.
func (t *pgbackrestTool) ArchiveCommand(m Member) string {
	return t.walCommand(m, `archive-push "%p"`)
}

// RestoreCommand is restore_command on m.
func (t *pgbackrestTool) RestoreCommand(m Member) string {
	return t.walCommand(m, `archive-get %f "%p"`)
}

func (t *pgbackrestTool) walCommand(m Member, tail string) string {
	return archiveWord(t.exe) + " --config=" + archiveWord(pgbrConfigPath(m)) +
		" --stanza=" + archiveWord(t.stanza(m)) + " " + tail
}

// pgbrEnv is the environment of a command for m (and the primary of a backup from a standby):
// the superuser's password, and PGHOST for a server without a unix socket (pgBackRest
// reaches a local server only through pgN-socket-path, else libpq's defaults).
func pgbrEnv(m Member, primary *Member) []string {
	var env []string
	if m.SuperuserPassword != "" {
		env = append(env, "PGPASSWORD="+m.SuperuserPassword)
	}
	switch {
	case m.SocketDir == "":
		env = append(env, "PGHOST="+m.Host)
	case primary != nil && primary.SocketDir == "":
		env = append(env, "PGHOST="+primary.Host)
	}
	return env
}

// exec runs `pgbackrest --config --stanza [opts] command` for m. stdout receives the
// console output (nil: it is returned with standard error). Exit codes become ErrBusy,
// ErrArchiveMismatch and ErrNotFound; every failure wraps the *pg.CommandError.
func (t *pgbackrestTool) exec(ctx context.Context, m Member, primary *Member, stdout io.Writer, command string, opts ...string) (string, error) {
	args := []string{"--config=" + pgbrConfigPath(m), "--stanza=" + t.stanza(m)}
	args = append(args, opts...)
	args = append(args, command)
	out, err := t.run.RunProgram(ctx, pg.Program{Path: t.exe, Args: args, Env: pgbrEnv(m, primary), Stdout: stdout})
	if err != nil {
		return out, pgbrError(command, err)
	}
	return out, nil
}

// pgbrError adds the sentinel that matches pgBackRest's exit code, and what the code means.
func pgbrError(command string, err error) error {
	var ce *pg.CommandError
	if errors.As(err, &ce) {
		var sentinel error
		var why string
		switch ce.ExitCode {
		case pgbrExitLockAcquire:
			sentinel, why = ErrBusy, "the stanza's lock is held"
		case pgbrExitBackupMismatch:
			sentinel, why = ErrArchiveMismatch, "the stanza belongs to another system identifier"
		case pgbrExitArchiveMismatch:
			sentinel, why = ErrArchiveMismatch, "the archive belongs to another system identifier"
		case pgbrExitArchiveDuplicate:
			sentinel, why = ErrArchiveMismatch, "the archive holds this segment with other content"
		case pgbrExitDBMismatch:
			sentinel, why = ErrArchiveMismatch, "the server's system identifier is not the stanza's"
		case pgbrExitBackupSetInvalid:
			sentinel, why = ErrNotFound, "no backup set matches"
		}
		if sentinel != nil {
			return fmt.Errorf("pgbackrest %s: %s: %w: %w", command, why, sentinel, err)
		}
	}
	return fmt.Errorf("pgbackrest %s: %w", command, err)
}

// short runs a command that is not a job, configuring m first.
func (t *pgbackrestTool) short(ctx context.Context, m Member, command string, opts ...string) error {
	if err := t.Configure(ctx, m); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, pgbrShortTimeout)
	defer cancel()
	_, err := t.exec(ctx, m, nil, nil, command, append([]string{"--log-level-console=info"}, opts...)...)
	return err
}

// Init creates the stanza (stanza-create): a no-op for a stanza of the same system
// identifier, ErrArchiveMismatch for a stanza of another one.
func (t *pgbackrestTool) Init(ctx context.Context, m Member) error {
	return t.short(ctx, m, "stanza-create")
}

// Check runs `check` on m: connects, forces a WAL switch and waits until the segment is
// in the archive.
func (t *pgbackrestTool) Check(ctx context.Context, m Member) error {
	return t.short(ctx, m, "check")
}

// Expire applies the retention (pgBackRest also expires after each backup).
func (t *pgbackrestTool) Expire(ctx context.Context, m Member) error {
	if err := t.Configure(ctx, m); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.TimeoutValue())
	defer cancel()
	_, err := t.exec(ctx, m, nil, nil, "expire", "--log-level-console=info")
	return err
}

// Maintain is a no-op: pgBackRest needs no periodic work.
func (t *pgbackrestTool) Maintain(context.Context, Member) error { return nil }

// List reads `info --output=json` of the stanza. A stanza not created yet, or without
// backups, is an empty catalog.
func (t *pgbackrestTool) List(ctx context.Context, m Member) (Catalog, error) {
	if err := t.Configure(ctx, m); err != nil {
		return Catalog{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, pgbrShortTimeout)
	defer cancel()
	out := &pgbrCapBuffer{max: pgbrInfoMax}
	// Console logging off: warnings would otherwise be printed into the JSON.
	if _, err := t.exec(ctx, m, nil, out, "info", "--output=json", "--log-level-console=off"); err != nil {
		return Catalog{}, err
	}
	if out.over {
		return Catalog{}, fmt.Errorf("pgbackrest info: output exceeds %d bytes", pgbrInfoMax)
	}
	return parsePgbrInfo(out.Bytes(), t.stanza(m))
}

// Backup takes a backup of type req.Type (full when empty) from req.Member, annotated
// with ramd-job=<JobID>; from a standby when req.Primary is set (--backup-standby): with
// both data directories on this machine the standby is pg1 and the primary pg2; with
// req.StandbyRemote the primary (this node) is pg1 and the standby a remote pg2 reached
// through its TLS server (pgbrStandbyOptions). It returns the backup
// as `info` reports it. progress (may be nil) is called on the goroutine that reads the
// tool's output: started, pgBackRest's INFO and WARN lines, the percentage of files
// copied, finished.
func (t *pgbackrestTool) Backup(ctx context.Context, req BackupRequest, progress func(Progress)) (Info, error) {
	m := req.Member
	typ := req.Type
	if typ == "" {
		typ = dynconf.BackupFull
	}
	if typ != dynconf.BackupFull && typ != dynconf.BackupDiff && typ != dynconf.BackupIncr {
		return Info{}, fmt.Errorf("pgbackrest backup: unknown type %q (full, diff or incr)", typ)
	}
	if strings.ContainsAny(req.JobID, "\n\r\x00") {
		return Info{}, fmt.Errorf("pgbackrest backup: line break in job id %q", req.JobID)
	}
	if err := t.Configure(ctx, m); err != nil {
		return Info{}, err
	}
	opts := []string{"--type=" + typ, "--log-level-console=detail"}
	if t.cfg.PgBackRest.StartFastValue() {
		opts = append(opts, "--start-fast")
	}
	if req.JobID != "" {
		opts = append(opts, "--annotation=ramd-job="+req.JobID)
	}
	// run is the member whose configuration the command runs with (its pg1 is local):
	// the standby when both data directories are here, else this node, the primary.
	run, envPrimary := m, req.Primary
	if p := req.Primary; p != nil {
		if err := t.checkMember(*p); err != nil {
			return Info{}, fmt.Errorf("pgbackrest backup from standby: primary: %w", err)
		}
		tc := t.cfg.PgBackRest.TLSServer
		if req.StandbyRemote {
			if !tc.Enabled {
				return Info{}, errors.New("pgbackrest backup from a standby on another host: backup.pgbackrest.tls_server is not enabled")
			}
			if err := pgbrTLSFiles(tc); err != nil {
				return Info{}, fmt.Errorf("pgbackrest backup from standby %s: %w", m.Name, err)
			}
			if m.Host == "" || strings.ContainsAny(m.Host, " \n\r\x00") {
				return Info{}, fmt.Errorf("pgbackrest backup from standby %s: no host to reach it at", m.Name)
			}
			run, envPrimary = *p, nil
			if err := t.Configure(ctx, run); err != nil {
				return Info{}, err
			}
		}
		opts = append(opts, pgbrStandbyOptions(m, *p, req.StandbyRemote, tc)...)
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.TimeoutValue())
	defer cancel()
	pr := &pgbrProgress{fn: progress, pct: -1}
	pr.report(Progress{Message: typ + " backup started", Percent: 0})
	lines := newLineSplitter(pgbrLineMax, pgbrLogMax, pr.line)
	_, err := t.exec(ctx, run, envPrimary, lines, "backup", opts...)
	_ = lines.Close()
	if err != nil {
		return Info{}, fmt.Errorf("%s backup of stanza %s: %w", typ, t.stanza(m), err)
	}
	cat, err := t.List(ctx, run)
	if err != nil {
		return Info{}, fmt.Errorf("%s backup of stanza %s: read the backup: %w", typ, t.stanza(m), err)
	}
	info, ok := findBackup(cat, pr.label, req.JobID)
	if !ok {
		return Info{}, fmt.Errorf("%s backup of stanza %s: pgbackrest reported label %q but info lists no such backup (job %q)", typ, t.stanza(m), pr.label, req.JobID)
	}
	pr.report(Progress{Message: typ + " backup " + info.ID + " finished", Percent: 100})
	return info, nil
}

// findBackup finds the backup labelled label, else the newest annotated with job.
func findBackup(cat Catalog, label, job string) (Info, bool) {
	for i := len(cat.Backups) - 1; i >= 0; i-- {
		b := cat.Backups[i]
		if label != "" && b.ID == label || label == "" && job != "" && b.JobID == job {
			return b, true
		}
	}
	return Info{}, false
}

// Restore restores into req.Member.DataDir (created owned by the OS user when missing;
// it must be empty unless req.Delta). The configuration file of req.Member is rewritten
// first with pg1 = that directory, so req.Member.StateDir must belong to that data
// directory (not to another server running on this machine). pgBackRest writes
// recovery.signal (standby.signal for a standby) and, in postgresql.auto.conf,
// restore_command (RestoreCommand of req.Member), recovery_target_* and
// recovery_target_action = 'promote'.
func (t *pgbackrestTool) Restore(ctx context.Context, req RestoreRequest, progress func(Progress)) error {
	m := req.Member
	opts, err := pgbrRestoreOptions(req)
	if err != nil {
		return err
	}
	if err := t.Configure(ctx, m); err != nil {
		return err
	}
	if _, err := os.Stat(m.DataDir); errors.Is(err, fs.ErrNotExist) {
		if err := t.run.OwnedDir(m.DataDir, 0o700); err != nil {
			return fmt.Errorf("pgbackrest restore: %w", err)
		}
	}
	// pgBackRest writes recovery options into postgresql.auto.conf between single quotes
	// without escaping them (2.45): a command holding a quote (a quoted path) or a
	// backslash goes in as a placeholder that ramd replaces afterwards.
	restoreCmd := t.RestoreCommand(m)
	quoted := strings.ContainsAny(restoreCmd, `'\`)
	if quoted {
		opts = append(opts, "--recovery-option=restore_command="+pgbrRestorePlaceholder)
	} else {
		opts = append(opts, "--recovery-option=restore_command="+restoreCmd)
	}
	opts = append(opts, "--log-level-console=detail")
	ctx, cancel := context.WithTimeout(ctx, t.cfg.TimeoutValue())
	defer cancel()
	pr := &pgbrProgress{fn: progress, pct: -1}
	pr.report(Progress{Message: "restore started", Percent: 0})
	lines := newLineSplitter(pgbrLineMax, pgbrLogMax, pr.line)
	_, err = t.exec(ctx, m, nil, lines, "restore", opts...)
	_ = lines.Close()
	if err != nil {
		return fmt.Errorf("restore into %s: %w", m.DataDir, err)
	}
	if quoted {
		if err := t.writeRestoreCommand(m.DataDir, restoreCmd); err != nil {
			return fmt.Errorf("restore into %s: %w", m.DataDir, err)
		}
	}
	pr.report(Progress{Message: "restore finished", Percent: 100})
	return nil
}

// pgbrRestorePlaceholder stands for a restore_command pgBackRest cannot write itself.
const pgbrRestorePlaceholder = "ramd-restore-command"

// writeRestoreCommand replaces the placeholder restore_command pgBackRest wrote into
// postgresql.auto.conf with cmd, quoted for the configuration file.
func (t *pgbackrestTool) writeRestoreCommand(dataDir, cmd string) error {
	path := filepath.Join(dataDir, "postgresql.auto.conf")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read recovery settings: %w", err)
	}
	placeholder := "restore_command = '" + pgbrRestorePlaceholder + "'"
	if !bytes.Contains(data, []byte(placeholder)) {
		return fmt.Errorf("%s: pgbackrest wrote no restore_command", path)
	}
	quoted := "restore_command = '" + strings.NewReplacer(`\`, `\\`, `'`, `''`).Replace(cmd) + "'"
	data = bytes.ReplaceAll(data, []byte(placeholder), []byte(quoted))
	if err := t.run.WriteOwnedFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write recovery settings: %w", err)
	}
	return nil
}

// pgbrRestoreOptions maps a restore request onto pgBackRest's options.
func pgbrRestoreOptions(req RestoreRequest) ([]string, error) {
	var opts []string
	if req.Delta {
		opts = append(opts, "--delta")
	}
	if req.BackupID != "" {
		if !pgbrLabelRe.MatchString(req.BackupID) {
			return nil, fmt.Errorf("pgbackrest restore: %q is not a pgBackRest backup label: %w", req.BackupID, ErrNotFound)
		}
		opts = append(opts, "--set="+req.BackupID)
	}
	if req.Standby {
		return append(opts, "--type=standby"), nil
	}
	tg := req.Target
	if strings.ContainsAny(tg.Value, "\n\r\x00") {
		return nil, fmt.Errorf("pgbackrest restore: line break in target %q", tg.Value)
	}
	switch tg.Type {
	case "", TargetEnd:
		return append(opts, "--type=default"), nil
	case TargetImmediate:
		return append(opts, "--type=immediate", "--target-action=promote"), nil
	case TargetTime, TargetXID, TargetLSN, TargetName:
	default:
		return nil, fmt.Errorf("pgbackrest restore: unknown target type %q", tg.Type)
	}
	if tg.Value == "" {
		return nil, fmt.Errorf("pgbackrest restore: target %s without a value", tg.Type)
	}
	value := tg.Value
	if tg.Type == TargetTime {
		value = recoveryTargetTime(value)
	}
	opts = append(opts, "--type="+tg.Type, "--target="+value, "--target-action=promote")
	if tg.Exclusive && tg.Type != TargetName {
		opts = append(opts, "--target-exclusive")
	}
	return opts, nil
}

// recoveryTargetTime writes an RFC 3339 time the way PostgreSQL's recovery_target_time and
// pgBackRest's backup set selection both read it: "2006-01-02 15:04:05.999999+00", in UTC.
// (PostgreSQL 15 refuses a "Z" suffix when it reads the setting at start: time zone
// abbreviations are not loaded yet.) Other text is passed on as it is.
func recoveryTargetTime(v string) string {
	ts, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return v
	}
	return ts.UTC().Format("2006-01-02 15:04:05.999999-07")
}

// pgbrLabelRe matches pgBackRest backup labels: 20261204-095734F, with _20261204-095744D
// or _…I for differential and incremental backups.
var pgbrLabelRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$`)

var (
	// pgbrLogLine is one line of pgBackRest's console log: time, process, level, message.
	pgbrLogLine = regexp.MustCompile(`^[0-9-]+ [0-9:.]+ P[0-9]+ +([A-Z]+): (.*)$`)
	// pgbrFileLine is a detail line of a file done, with the share of the total done:
	// "backup file /x (8KB, 12.34%) checksum …", "match file from prior backup /x (8KB,
	// 13%) …", "restore file /x (8KB, 14%) …".
	pgbrFileLine = regexp.MustCompile(` file .*\([^()]*, ([0-9]+)(?:\.[0-9]+)?%\)`)
	pgbrNewLabel = regexp.MustCompile(`^new backup label = (\S+)`)
)

// pgbrProgress turns pgBackRest's console output into Progress: INFO, WARN and ERROR lines
// as messages, and detail lines of copied files as a percentage (one report per percent).
type pgbrProgress struct {
	fn    func(Progress)
	pct   int
	label string // from "new backup label = …"
}

func (p *pgbrProgress) report(pr Progress) {
	if p.fn != nil {
		p.fn(pr)
	}
}

func (p *pgbrProgress) line(s string, _ bool) {
	m := pgbrLogLine.FindStringSubmatch(s)
	if m == nil {
		return
	}
	level, msg := m[1], m[2]
	switch level {
	case "DETAIL":
		f := pgbrFileLine.FindStringSubmatch(msg)
		if f == nil {
			return
		}
		if n, err := strconv.Atoi(f[1]); err == nil && n > p.pct && n <= 100 {
			p.pct = n
			p.report(Progress{Message: "copying files", Percent: n})
		}
		return
	case "INFO", "WARN", "ERROR":
	default:
		return
	}
	if l := pgbrNewLabel.FindStringSubmatch(msg); l != nil {
		p.label = l[1]
	}
	if i := strings.Index(msg, " command begin "); i >= 0 {
		// The option list that follows names every path; the version is enough.
		msg, _, _ = strings.Cut(msg, ":")
	}
	if level != "INFO" {
		msg = level + ": " + msg
	}
	p.report(Progress{Message: msg, Percent: -1})
}

// pgbrCapBuffer keeps up to max bytes and records whether more were written.
type pgbrCapBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *pgbrCapBuffer) Write(p []byte) (int, error) {
	if room := c.max - c.Len(); len(p) > room {
		c.over = true
		c.Buffer.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.Buffer.Write(p)
}
