package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// The Barman adapter runs Barman (3.4 or newer) on the node that runs the job, as the
// PostgreSQL OS user, with a private configuration file ramd writes into Member.StateDir:
// backup_method postgres (pg_basebackup), WAL archived by the streaming archiver
// (pg_receivewal through a replication slot) from the current primary, no SSH anywhere.
// docs/BACKUPS.md, section "Barman", explains every choice.

const (
	barmanConfFile = "barman.conf"
	barmanPassFile = "barman.pgpass"
	barmanLogFile  = "barman.log"
	// barmanJobFile is written by ramd into a backup's directory with the job ID: Barman 3.4
	// accepts backup --name but never saves it (backup_info.save() runs before the name is
	// set), so the name cannot be read back from that version.
	barmanJobFile = "ramd-job"
	// barmanInfoFile is Barman's record of a backup in its directory (key=value lines).
	barmanInfoFile = "backup.info"
	// barmanNamePrefix prefixes the job ID in backup --name (read back by Barman >= 3.5).
	barmanNamePrefix = "ramd-"
	// barmanReceiverName is streaming_archiver_name, the application_name of pg_receivewal.
	barmanReceiverName = "barman_receive_wal"

	// barmanQuickTimeout bounds a command that reads the catalog or asks PostgreSQL a few
	// questions (list, show, check, cron): each is a Python start plus a few queries,
	// well under a second here; a hung one must not hold the daemon's loop.
	barmanQuickTimeout = 2 * time.Minute
	// barmanStreamWait bounds the wait for the streaming archiver to connect after cron
	// started it (about a second here: cron forks receive-wal, which checks the server,
	// creates the slot if needed and starts pg_receivewal).
	barmanStreamWait = 30 * time.Second
	// barmanSwitchTimeout (seconds) is switch-wal --archive-timeout: how long Init waits for
	// the switched segment to reach the archive. The streaming archiver receives it in
	// milliseconds; the margin covers a loaded host.
	barmanSwitchTimeout = 30
	// barmanStopWait bounds the wait for a stopped receive-wal (SIGINT: pg_receivewal
	// flushes and exits) before SIGKILL.
	barmanStopWait = 10 * time.Second
)

// barmanIgnoredChecks are the checks of `barman check` that do not say whether archiving
// and the repository work: minimum_redundancy_requirements fails until the first backup
// exists (minimum_redundancy is 1), failed_backups stays failed until the failed backup is
// deleted (Expire does). Barman's own backup command ignores both too.
var barmanIgnoredChecks = []string{"minimum_redundancy_requirements", "failed_backups"}

// barmanTimeLayout is how a target time is handed to barman recover (PostgreSQL's input
// form, microseconds, numeric zone).
const barmanTimeLayout = "2006-01-02 15:04:05.999999-07:00"

var (
	// barmanStartRe finds the backup ID in the first line `barman backup` prints:
	// "Starting backup using postgres method for server S in <home>/S/base/<ID>".
	barmanStartRe = regexp.MustCompile(`^Starting backup using \S+ method for server \S+ in .*/(\d{8}T\d{6})\s*$`)
	// barmanCopyRe is the second line naming the ID: "Starting backup copy via pg_basebackup for <ID>".
	barmanCopyRe = regexp.MustCompile(`^Starting backup copy via \S+ for (\d{8}T\d{6})\s*$`)
)

type barmanTool struct {
	cfg dynconf.Backup
	run Runner
	// bin is the barman executable (resolved on PATH once; "barman" when not found, so
	// the error comes from the first run).
	bin string

	mu sync.Mutex // guards user
	// user is the OS user the programs run as (barman_user), read once with `id -un`.
	user string
}

func newBarman(b dynconf.Backup, r Runner) *barmanTool {
	bin := "barman"
	if p, err := exec.LookPath(bin); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			bin = abs
		}
	}
	return &barmanTool{cfg: b, run: r, bin: bin}
}

// Name implements Tool.
func (t *barmanTool) Name() string { return dynconf.ToolBarman }

func (t *barmanTool) server(m Member) string { return t.cfg.Barman.ServerOr(m.Scope) }
func (t *barmanTool) home() string           { return t.cfg.Barman.HomeValue() }

func (t *barmanTool) confPath(m Member) string { return filepath.Join(m.StateDir, barmanConfFile) }

// serverDir is Barman's directory of the server (catalog, WAL, base backups).
func (t *barmanTool) serverDir(m Member) string { return filepath.Join(t.home(), t.server(m)) }

// lockPath is one of Barman's lock files (barman_lock_directory is barman_home).
func (t *barmanTool) lockPath(m Member, task string) string {
	return filepath.Join(t.home(), "."+t.server(m)+"-"+task+".lock")
}

// ArchiveCommand implements Tool: Barman archives through its streaming archiver only
// (see docs/BACKUPS.md), so PostgreSQL runs no archive_command for it.
func (t *barmanTool) ArchiveCommand(Member) string { return "" }

// RestoreCommand implements Tool: barman get-wal with ramd's configuration, run by
// PostgreSQL as the OS user (barman_user) on m's node. No .partial segments: a standby
// that replayed a partial segment would diverge when it streams the rest.
func (t *barmanTool) RestoreCommand(m Member) string { return t.restoreCommand(m, false) }

func (t *barmanTool) restoreCommand(m Member, partial bool) string {
	p := ""
	if partial {
		p = " -P"
	}
	return fmt.Sprintf(`%s -c %s -q get-wal%s %s %%f > "%%p"`,
		shellQuote(t.bin), shellQuote(t.confPath(m)), p, shellQuote(t.server(m)))
}

// Configure implements Tool. m is the current primary: conninfo and streaming_conninfo
// point at it. When they change (a failover or switchover), the streaming archiver this
// node runs is stopped so that the next Maintain (barman cron) starts it against the new
// primary; pg_receivewal then follows the timeline switch from its own position, without
// receive-wal --reset. Member.StateDir and BinDir are this node's own.
func (t *barmanTool) Configure(ctx context.Context, m Member) error {
	_, err := t.configure(ctx, m)
	return err
}

// configure writes the configuration and reports whether it changed.
func (t *barmanTool) configure(ctx context.Context, m Member) (bool, error) {
	return t.configureFor(ctx, m, nil)
}

// configureFor writes the configuration file of m.StateDir: the archiver's when primary is
// nil (m is the primary), else a configuration for backups from the standby m only (see
// render). It reports whether the file changed.
func (t *barmanTool) configureFor(ctx context.Context, m Member, primary *Member) (bool, error) {
	if err := t.checkMember(m, true); err != nil {
		return false, err
	}
	if primary != nil {
		if err := t.checkMember(*primary, true); err != nil {
			return false, err
		}
	}
	if err := t.run.OwnedDir(m.StateDir, 0o700); err != nil {
		return false, fmt.Errorf("barman: state directory: %w", err)
	}
	if err := t.run.OwnedDir(t.home(), 0o750); err != nil {
		return false, fmt.Errorf("barman: barman_home: %w", err)
	}
	user, err := t.osUser(ctx)
	if err != nil {
		return false, err
	}
	path := t.confPath(m)
	conf := t.render(m, user, primary)
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("barman: read %s: %w", path, err)
	}
	pass := pgpass(m)
	if primary != nil {
		pass = append(pass, pgpass(*primary)...)
	}
	passPath := filepath.Join(m.StateDir, barmanPassFile)
	if len(pass) > 0 {
		if cur, err := os.ReadFile(passPath); err != nil || !bytes.Equal(cur, pass) {
			if err := t.run.WriteOwnedFile(passPath, pass, 0o600); err != nil {
				return false, fmt.Errorf("barman: write password file: %w", err)
			}
		}
	}
	if bytes.Equal(old, conf) {
		return false, nil
	}
	if err := t.run.WriteOwnedFile(path, conf, 0o600); err != nil {
		return false, fmt.Errorf("barman: write %s: %w", path, err)
	}
	if primary == nil && old != nil && !bytes.Equal(confLines(old, "conninfo", "streaming_conninfo"), confLines(conf, "conninfo", "streaming_conninfo")) {
		// The running pg_receivewal keeps its connection to the old primary (or to
		// whatever answers at the old address): restart it with the new conninfo.
		if _, err := t.stopReceiver(ctx, m); err != nil {
			return true, err
		}
	}
	return true, nil
}

// ensureConfig writes a configuration for m only when there is none yet: List, Restore and
// Stop work on any node and must not repoint the archiver at a member that is not the
// primary.
func (t *barmanTool) ensureConfig(ctx context.Context, m Member) error {
	if err := t.checkMember(m, false); err != nil {
		return err
	}
	if _, err := os.Stat(t.confPath(m)); err == nil {
		return nil
	}
	_, err := t.configure(ctx, m)
	return err
}

func (t *barmanTool) checkMember(m Member, primary bool) error {
	switch {
	case m.StateDir == "" || !filepath.IsAbs(m.StateDir):
		return fmt.Errorf("barman: member %q: the state directory must be an absolute path", m.Name)
	case m.Scope == "" && t.cfg.Barman.Server == "":
		return fmt.Errorf("barman: member %q: no scope and no server name", m.Name)
	case primary && (m.Host == "" || m.Port == 0):
		return fmt.Errorf("barman: member %q: host and port of the primary are required", m.Name)
	case primary && m.BinDir == "":
		return fmt.Errorf("barman: member %q: the PostgreSQL bin directory is required (pg_basebackup, pg_receivewal)", m.Name)
	}
	for _, s := range []string{m.StateDir, m.BinDir, m.Host, m.Superuser, m.ReplicationUser, t.home()} {
		if strings.ContainsAny(s, "\n\r%") {
			return fmt.Errorf("barman: member %q: a path, host or user contains a newline or %%: %q", m.Name, s)
		}
	}
	return nil
}

// render is the private configuration file. Passwords never appear in it (passfile).
//
// With primary nil, m is the primary: the configuration of the streaming archiver and of
// every command but a backup from a standby. Else m is a standby and the file serves only
// `barman backup` from it (Barman 3.4, postgres method): conninfo and streaming_conninfo
// (pg_basebackup) reach the standby, primary_conninfo the primary, where Barman switches
// WAL so that the backup's last segment reaches the archive. The streaming archiver is not
// run with this file: its slot and pg_receivewal stay on the primary. Barman's backup
// command checks the server first, and with slot_name set it looks for the slot on the
// standby (where it does not exist: "replication slot 'barman' doesn't exist"); without
// slot_name, a streaming-only archiver is refused ("Streaming-only archiver requires
// 'streaming_conninfo' and 'slot_name'"). So this file has no slot and archiver = on too:
// the file archiver only adds checks of archive_mode and archive_command on the standby,
// which ramd keeps on ('/bin/true') on every member. The catalog, locks and WAL directories
// are the same (same barman_home and server name), so the backup lock still allows one
// backup at a time and `barman backup --wait` files the WAL pg_receivewal received.
func (t *barmanTool) render(m Member, user string, primary *Member) []byte {
	su := m.Superuser
	if su == "" {
		su = pg.DefaultSuperuser
	}
	rep := m.ReplicationUser
	if rep == "" {
		rep = su
	}
	passFile := ""
	if len(pgpass(m)) > 0 || primary != nil && len(pgpass(*primary)) > 0 {
		passFile = filepath.Join(m.StateDir, barmanPassFile)
	}
	conninfoOf := func(at Member, user string, extra ...string) string {
		kv := []string{"host=" + connQuote(at.Host), "port=" + strconv.Itoa(at.Port), "user=" + connQuote(user)}
		kv = append(kv, extra...)
		if passFile != "" {
			kv = append(kv, "passfile="+connQuote(passFile))
		}
		return strings.Join(append(kv, "connect_timeout=5"), " ")
	}
	conninfo := func(user string, extra ...string) string { return conninfoOf(m, user, extra...) }
	var b bytes.Buffer
	b.WriteString("; Written by ramd; every change is overwritten (see docs/BACKUPS.md, Barman).\n")
	if primary != nil {
		fmt.Fprintf(&b, "; Only for backups from the standby %s; the archiver runs with the primary's file.\n", m.Name)
	}
	fmt.Fprintf(&b, "[barman]\nbarman_user = %s\nbarman_home = %s\nlog_file = %s\nlog_level = INFO\n",
		user, t.home(), filepath.Join(m.StateDir, barmanLogFile))
	fmt.Fprintf(&b, "\n[%s]\ndescription = ramd cluster %s\n", t.server(m), m.Scope)
	fmt.Fprintf(&b, "conninfo = %s\n", conninfo(su, "dbname=postgres", "application_name=barman"))
	fmt.Fprintf(&b, "streaming_conninfo = %s\n", conninfo(rep))
	b.WriteString("backup_method = postgres\n")
	if primary != nil {
		psu := primary.Superuser
		if psu == "" {
			psu = pg.DefaultSuperuser
		}
		fmt.Fprintf(&b, "primary_conninfo = %s\n", conninfoOf(*primary, psu, "dbname=postgres", "application_name=barman"))
		b.WriteString("streaming_archiver = on\narchiver = on\n")
		fmt.Fprintf(&b, "streaming_archiver_name = %s\n", barmanReceiverName)
	} else {
		b.WriteString("streaming_archiver = on\narchiver = off\n")
		fmt.Fprintf(&b, "streaming_archiver_name = %s\n", barmanReceiverName)
		fmt.Fprintf(&b, "slot_name = %s\ncreate_slot = auto\n", t.cfg.Barman.SlotValue())
	}
	fmt.Fprintf(&b, "path_prefix = %s\n", m.BinDir)
	b.WriteString("immediate_checkpoint = true\n")
	fmt.Fprintf(&b, "retention_policy = %s\nretention_policy_mode = auto\nwal_retention_policy = main\n", barmanRetention(t.cfg.RetentionValue()))
	b.WriteString("minimum_redundancy = 1\n")
	return b.Bytes()
}

// barmanRetention is Barman's retention_policy for r.
func barmanRetention(r dynconf.Retention) string {
	if r.FullDays > 0 {
		return fmt.Sprintf("RECOVERY WINDOW OF %d DAYS", r.FullDays)
	}
	return fmt.Sprintf("REDUNDANCY %d", r.FullCount)
}

// pgpass is the password file for the superuser and the replication user ("" when
// neither has a password).
func pgpass(m Member) []byte {
	esc := strings.NewReplacer(`\`, `\\`, ":", `\:`).Replace
	var b bytes.Buffer
	add := func(user, pw string) {
		if user != "" && pw != "" {
			fmt.Fprintf(&b, "%s:%d:*:%s:%s\n", esc(m.Host), m.Port, esc(user), esc(pw))
		}
	}
	su := m.Superuser
	if su == "" {
		su = pg.DefaultSuperuser
	}
	add(su, m.SuperuserPassword)
	add(m.ReplicationUser, m.ReplicationPassword)
	return b.Bytes()
}

// confLines returns the lines of conf that set the given keys (to compare two versions).
func confLines(conf []byte, keys ...string) []byte {
	var out bytes.Buffer
	for line := range strings.SplitSeq(string(conf), "\n") {
		k, _, ok := strings.Cut(line, "=")
		if ok && slices.Contains(keys, strings.TrimSpace(k)) {
			out.WriteString(line + "\n")
		}
	}
	return out.Bytes()
}

func (t *barmanTool) osUser(ctx context.Context) (string, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.user != "" {
		return t.user, nil
	}
	var out bytes.Buffer
	if _, err := t.run.RunProgram(ctx, pg.Program{Path: "id", Args: []string{"-un"}, Stdout: &out}); err != nil {
		return "", fmt.Errorf("barman: read the OS user: %w", err)
	}
	u := strings.TrimSpace(out.String())
	if u == "" || strings.ContainsAny(u, " \n") {
		return "", fmt.Errorf("barman: read the OS user: unexpected %q", u)
	}
	t.user = u
	return u, nil
}

// cmd runs barman with ramd's configuration. stdout receives standard output (nil: kept
// with standard error in the returned text). quick bounds the run by barmanQuickTimeout.
func (t *barmanTool) cmd(ctx context.Context, m Member, quick bool, stdout io.Writer, args ...string) (string, error) {
	return t.cmdWith(ctx, t.confPath(m), quick, stdout, args...)
}

// cmdWith is cmd with the configuration file conf.
func (t *barmanTool) cmdWith(ctx context.Context, conf string, quick bool, stdout io.Writer, args ...string) (string, error) {
	if quick {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, barmanQuickTimeout)
		defer cancel()
	}
	out, err := t.run.RunProgram(ctx, pg.Program{
		Path:   t.bin,
		Args:   append([]string{"-c", conf}, args...),
		Stdout: stdout,
	})
	if err != nil {
		return out, fmt.Errorf("barman %s: %w", strings.Join(args, " "), err)
	}
	return out, nil
}

// jsonCmd runs `barman -f json ARGS` and decodes the server's object into v. Barman prints
// {"_ERROR": [...]} (exit 1) for unknown servers or backups; that becomes a
// *barmanError. Other failures keep the JSON Barman printed when it decodes.
func (t *barmanTool) jsonCmd(ctx context.Context, m Member, v any, args ...string) error {
	return t.jsonCmdWith(ctx, m, t.confPath(m), v, args...)
}

// jsonCmdWith is jsonCmd with the configuration file conf.
func (t *barmanTool) jsonCmdWith(ctx context.Context, m Member, conf string, v any, args ...string) error {
	var out bytes.Buffer
	_, runErr := t.cmdWith(ctx, conf, true, &out, append([]string{"-f", "json"}, args...)...)
	perr := decodeBarman(out.Bytes(), t.server(m), v)
	switch {
	case perr == nil:
		return runErr
	case runErr != nil:
		var be *barmanError
		if errors.As(perr, &be) {
			return fmt.Errorf("%w: %w", runErr, perr)
		}
		return runErr
	}
	return fmt.Errorf("barman %s: %w", strings.Join(args, " "), perr)
}

// barmanError carries the messages of Barman's {"_ERROR": [...]} answer.
type barmanError struct{ Messages []string }

func (e *barmanError) Error() string { return "barman: " + strings.Join(e.Messages, "; ") }

// decodeBarman decodes Barman's JSON answer {"SERVER": value} (or {"_ERROR": [...]}) and
// stores value into v.
func decodeBarman(data []byte, server string, v any) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(data), &top); err != nil {
		return fmt.Errorf("decode barman json: %w", err)
	}
	if raw, ok := top["_ERROR"]; ok {
		var msgs []string
		_ = json.Unmarshal(raw, &msgs)
		return &barmanError{Messages: msgs}
	}
	raw, ok := top[server]
	if !ok {
		return fmt.Errorf("decode barman json: no entry for server %q", server)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("decode barman json for %s: %w", server, err)
	}
	return nil
}

// Init implements Tool: starts the streaming archiver (barman cron; receive-wal creates the
// slot on the primary m, create_slot = auto), waits until pg_receivewal streams, then
// switches WAL and waits until the segment is archived, so that `check` passes. An
// explicit receive-wal --create-slot would log an ERROR on the server at every Init once
// the slot exists.
func (t *barmanTool) Init(ctx context.Context, m Member) error {
	if _, err := t.configure(ctx, m); err != nil {
		return err
	}
	if err := t.ensureStreaming(ctx, m, false); err != nil {
		return err
	}
	if _, err := t.cmd(ctx, m, true, nil, "switch-wal", "--force", "--archive",
		"--archive-timeout", strconv.Itoa(barmanSwitchTimeout), t.server(m)); err != nil {
		return fmt.Errorf("barman: switch wal and wait for it in the archive: %w", err)
	}
	return nil
}

// Maintain implements Tool: barman cron (the streaming archiver, WAL filing from the
// streaming directory into the catalog, backup checks, retention). m is the primary.
func (t *barmanTool) Maintain(ctx context.Context, m Member) error {
	if _, err := t.configure(ctx, m); err != nil {
		return err
	}
	if _, err := t.cmd(ctx, m, true, nil, "-q", "cron"); err != nil {
		return fmt.Errorf("barman: maintenance: %w", err)
	}
	return nil
}

// ensureStreaming starts the streaming archiver when it does not run (barman cron) and
// waits until pg_receivewal streams from the primary. When running is enough (backup
// only checks that receive-wal runs), a held receive-wal lock ends the wait at once.
func (t *barmanTool) ensureStreaming(ctx context.Context, m Member, runningEnough bool) error {
	ctx, cancel := context.WithTimeout(ctx, barmanStreamWait)
	defer cancel()
	var last error
	for attempt := 0; ; attempt++ {
		held, _, err := lockHolder(t.lockPath(m, "receive-wal"))
		if err != nil {
			return fmt.Errorf("barman: streaming archiver: %w", err)
		}
		if held && runningEnough {
			return nil
		}
		if !held || attempt%8 == 7 {
			// Not running (or not streaming for a while): cron starts receive-wal.
			if _, err := t.cmd(ctx, m, true, nil, "-q", "cron"); err != nil && ctx.Err() == nil {
				last = err
			}
		}
		err = t.streaming(ctx, m)
		if err == nil {
			return nil
		}
		if ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("barman: the streaming archiver does not stream after %s: %w (barman log: %s)",
				barmanStreamWait, last, t.logTail(m, 5))
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// streaming reports nil when the primary lists the streaming archiver as streaming.
func (t *barmanTool) streaming(ctx context.Context, m Member) error {
	var st barmanReplicationStatus
	if err := t.jsonCmd(ctx, m, &st, "replication-status", t.server(m)); err != nil {
		return err
	}
	for _, c := range st.Clients {
		if c.ApplicationName == barmanReceiverName && c.State == "streaming" {
			return nil
		}
	}
	return errors.New("pg_receivewal is not streaming")
}

// logTail returns the last n lines of the node's Barman log (for error messages).
func (t *barmanTool) logTail(m Member, n int) string {
	b, err := os.ReadFile(filepath.Join(m.StateDir, barmanLogFile))
	if err != nil {
		return "unreadable: " + err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(len(lines)-n, 0):], " | ")
}

// Backup implements Tool: barman backup --wait, then show-backup. With req.Primary set,
// req.Member is a standby: the backup runs with a configuration of its own that points
// conninfo and streaming_conninfo (pg_basebackup) at the standby and primary_conninfo at
// the primary (see render); the streaming archiver stays on the primary.
func (t *barmanTool) Backup(ctx context.Context, req BackupRequest, progress func(Progress)) (Info, error) {
	m := req.Member
	if req.Primary != nil {
		m = *req.Primary
	}
	if req.Type != "" && req.Type != dynconf.BackupFull {
		return Info{}, fmt.Errorf("barman: only full backups, not %q", req.Type)
	}
	if _, err := t.configure(ctx, m); err != nil {
		return Info{}, err
	}
	conf := t.confPath(m)
	if req.Primary != nil {
		if _, err := t.configureFor(ctx, req.Member, req.Primary); err != nil {
			return Info{}, fmt.Errorf("barman: configuration for a backup from standby %s: %w", req.Member.Name, err)
		}
		conf = t.confPath(req.Member)
	}
	if held, _, _ := lockHolder(t.lockPath(m, "backup")); held {
		return Info{}, fmt.Errorf("barman: backup of %s: %w", t.server(m), ErrBusy)
	}
	// barman backup refuses to start unless receive-wal runs.
	if err := t.ensureStreaming(ctx, m, true); err != nil {
		return Info{}, err
	}
	args := []string{"backup", "--wait"}
	if req.JobID != "" {
		args = append(args, "--name", barmanNamePrefix+req.JobID)
	}
	args = append(args, t.server(m))
	var id string
	lines := &lineWriter{f: func(line string) {
		if mm := barmanStartRe.FindStringSubmatch(line); mm != nil && id == "" {
			id = mm[1]
		} else if mm := barmanCopyRe.FindStringSubmatch(line); mm != nil && id == "" {
			id = mm[1]
		}
		if progress != nil && line != "" {
			progress(Progress{Message: line, Percent: -1})
		}
	}}
	out, runErr := t.cmdWith(ctx, conf, false, lines, args...)
	lines.Flush()
	if runErr != nil && (strings.Contains(out, "Another backup process is running") || isHeld(t.lockPath(m, "backup"))) {
		return Info{}, fmt.Errorf("barman: backup of %s: %w: %w", t.server(m), ErrBusy, runErr)
	}
	if id == "" {
		if runErr != nil {
			// Barman refused to start ("Impossible to start the backup. Check the log"):
			// name the failed checks (of the standby's configuration for a standby).
			if cerr := t.checkWith(ctx, m, conf); cerr != nil {
				runErr = errors.Join(runErr, cerr)
			}
			return Info{}, fmt.Errorf("barman: backup of %s: %w", t.server(m), runErr)
		}
		return Info{}, fmt.Errorf("barman: backup of %s: no backup ID in barman's output", t.server(m))
	}
	if req.JobID != "" {
		// Record the job with the backup (see barmanJobFile); the directory goes with
		// barman delete.
		if err := t.run.WriteOwnedFile(filepath.Join(t.serverDir(m), "base", id, barmanJobFile), []byte(req.JobID+"\n"), 0o644); err != nil && runErr == nil {
			runErr = fmt.Errorf("barman: record job %s with backup %s: %w", req.JobID, id, err)
		}
	}
	bi, err := t.show(ctx, m, id)
	if err != nil {
		return Info{ID: id, JobID: req.JobID, Type: dynconf.BackupFull, Status: StatusFailed}, errors.Join(runErr, err)
	}
	info := bi.Info
	if runErr != nil {
		return info, fmt.Errorf("barman: backup %s of %s: %w", id, t.server(m), runErr)
	}
	if info.Status != StatusDone {
		return info, fmt.Errorf("barman: backup %s of %s ended with status %s", id, t.server(m), info.Status)
	}
	return info, nil
}

// show reads one backup.
func (t *barmanTool) show(ctx context.Context, m Member, id string) (barmanInfo, error) {
	var sb barmanShowBackup
	if err := t.jsonCmd(ctx, m, &sb, "show-backup", t.server(m), id); err != nil {
		var be *barmanError
		if errors.As(err, &be) {
			return barmanInfo{}, fmt.Errorf("barman: backup %s: %w: %w", id, ErrNotFound, err)
		}
		return barmanInfo{}, err
	}
	info := sb.info()
	if info.JobID == "" {
		info.JobID = t.jobOf(m, id)
	}
	return info, nil
}

// jobOf reads the job ID ramd recorded with backup id ("" none).
func (t *barmanTool) jobOf(m Member, id string) string {
	b, err := os.ReadFile(filepath.Join(t.serverDir(m), "base", id, barmanJobFile))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// List implements Tool with a single Barman process: list-backups gives the IDs, statuses,
// end times, sizes with WAL, retention statuses (and names); each complete backup's own
// record, base/<ID>/backup.info under barman_home, the start time, LSNs, WAL range,
// timeline and size that show-backup prints from the same file; identity.json the system
// identifier and xlog.db the newest WAL. (One show-backup per backup, a Python start each,
// took over 5 s for a few backups on a loaded machine.)
func (t *barmanTool) List(ctx context.Context, m Member) (Catalog, error) {
	if err := t.ensureConfig(ctx, m); err != nil {
		return Catalog{}, err
	}
	var entries []barmanListEntry
	if err := t.jsonCmd(ctx, m, &entries, "list-backups", t.server(m)); err != nil {
		return Catalog{}, fmt.Errorf("barman: list backups: %w", err)
	}
	cat := Catalog{Backups: make([]Info, 0, len(entries))}
	slices.SortFunc(entries, func(a, b barmanListEntry) int { return strings.Compare(a.BackupID, b.BackupID) })
	for _, e := range entries {
		info := e.info().Info
		if e.complete() {
			data, err := os.ReadFile(filepath.Join(t.serverDir(m), "base", e.BackupID, barmanInfoFile))
			switch {
			case errors.Is(err, fs.ErrNotExist):
				continue // deleted since list-backups read it
			case err != nil:
				return Catalog{}, fmt.Errorf("barman: backup %s: %w", e.BackupID, err)
			}
			if info, err = parseBarmanBackupInfo(data).merge(info); err != nil {
				return Catalog{}, fmt.Errorf("barman: backup %s: %s: %w", e.BackupID, barmanInfoFile, err)
			}
		}
		if info.JobID == "" {
			info.JobID = t.jobOf(m, e.BackupID)
		}
		cat.Backups = append(cat.Backups, info)
	}
	t.completeCatalog(m, &cat)
	return cat, nil
}

// completeCatalog sets the archive's range and the system identifier of a listed catalog.
// Barman drops the WAL older than the oldest backup: the archive starts there.
func (t *barmanTool) completeCatalog(m Member, cat *Catalog) {
	for _, b := range cat.Backups {
		if b.WALStart != "" {
			cat.WALMin = b.WALStart
			break
		}
	}
	cat.WALMax = t.walMax(m)
	cat.SystemID = t.systemID(m)
}

// walMax is the newest complete WAL segment in the archive, from Barman's WAL catalog
// (wals/xlog.db: one "name<TAB>size<TAB>time<TAB>compression" line per file). show-backup's
// last_available is the newest segment of the backup's own timeline only.
func (t *barmanTool) walMax(m Member) string {
	b, err := os.ReadFile(filepath.Join(t.serverDir(m), "wals", "xlog.db"))
	if err != nil {
		return ""
	}
	best := ""
	for line := range strings.SplitSeq(string(b), "\n") {
		name, _, _ := strings.Cut(line, "\t")
		if len(name) == 24 && strings.Trim(name, "0123456789ABCDEF") == "" && name > best {
			best = name
		}
	}
	return best
}

// systemID reads the system identifier Barman stored for the server (0 unknown).
func (t *barmanTool) systemID(m Member) uint64 {
	b, err := os.ReadFile(filepath.Join(t.serverDir(m), "identity.json"))
	if err != nil {
		return 0
	}
	var id struct {
		SystemID json.Number `json:"systemid"`
	}
	if json.Unmarshal(b, &id) != nil {
		return 0
	}
	n, _ := strconv.ParseUint(id.SystemID.String(), 10, 64)
	return n
}

// Expire implements Tool: Barman computes the retention status (retention_policy, with
// minimum_redundancy 1), ramd deletes what it marks OBSOLETE, and failed backups older
// than the newest good one. barman cron applies the same policy every minute on the node
// that runs Maintain; Expire does not need the streaming archiver, so any node can run it.
func (t *barmanTool) Expire(ctx context.Context, m Member) error {
	if err := t.ensureConfig(ctx, m); err != nil {
		return err
	}
	var entries []barmanListEntry
	if err := t.jsonCmd(ctx, m, &entries, "list-backups", t.server(m)); err != nil {
		return fmt.Errorf("barman: list backups: %w", err)
	}
	for _, id := range expirable(entries) {
		if _, err := t.cmd(ctx, m, true, nil, "delete", t.server(m), id); err != nil {
			return fmt.Errorf("barman: delete backup %s: %w", id, err)
		}
	}
	return nil
}

// expirable returns the backups to delete: OBSOLETE ones, and FAILED ones older than the
// newest DONE backup.
func expirable(entries []barmanListEntry) []string {
	newestDone := ""
	for _, e := range entries {
		if e.Status == "DONE" && e.BackupID > newestDone {
			newestDone = e.BackupID
		}
	}
	var ids []string
	for _, e := range entries {
		switch {
		case e.Status == "DONE" && e.Retention == "OBSOLETE":
			ids = append(ids, e.BackupID)
		case e.Status == "FAILED" && newestDone != "" && e.BackupID < newestDone:
			ids = append(ids, e.BackupID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Check implements Tool: barman check; every failed check but barmanIgnoredChecks is
// reported with its hint.
func (t *barmanTool) Check(ctx context.Context, m Member) error {
	if _, err := t.configure(ctx, m); err != nil {
		return err
	}
	return t.checkWith(ctx, m, t.confPath(m))
}

// checkWith runs barman check with the configuration file conf.
func (t *barmanTool) checkWith(ctx context.Context, m Member, conf string) error {
	var checks map[string]barmanCheck
	err := t.jsonCmdWith(ctx, m, conf, &checks, "check", t.server(m))
	if checks == nil {
		return fmt.Errorf("barman: check: %w", err)
	}
	if failed := failedChecks(checks); failed != "" {
		return fmt.Errorf("barman: check of %s failed: %s", t.server(m), failed)
	}
	return nil
}

// failedChecks lists the failed checks ("name (hint), ...") that count.
func failedChecks(checks map[string]barmanCheck) string {
	var names []string
	for name, c := range checks {
		if c.Status != "OK" && !slices.Contains(barmanIgnoredChecks, name) {
			s := name
			if c.Hint != "" {
				s += " (" + c.Hint + ")"
			}
			names = append(names, s)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

// Restore implements Tool: barman recover into req.Member.DataDir (see recoverArgs). For a
// recovery to the end of the archive the restore_command Barman writes with --get-wal
// (sudo -u USER barman get-wal, without ramd's configuration file) is replaced by ramd's.
func (t *barmanTool) Restore(ctx context.Context, req RestoreRequest, progress func(Progress)) error {
	m := req.Member
	if !filepath.IsAbs(m.DataDir) {
		return fmt.Errorf("barman: restore: the data directory must be an absolute path, not %q", m.DataDir)
	}
	if err := t.ensureConfig(ctx, m); err != nil {
		return err
	}
	var entries []barmanListEntry
	if err := t.jsonCmd(ctx, m, &entries, "list-backups", t.server(m)); err != nil {
		return fmt.Errorf("barman: list backups: %w", err)
	}
	var chosen []Info
	for _, e := range entries {
		if e.Status == "DONE" {
			chosen = append(chosen, e.info().Info)
		}
	}
	target := req.Target
	if req.Standby {
		target = Target{}
	}
	id := req.BackupID
	if id == "" {
		// Selection by time and LSN needs each backup's end; list-backups gives the time.
		if target.Type == TargetLSN {
			for n := range chosen {
				d, err := t.show(ctx, m, chosen[n].ID)
				if err != nil {
					return err
				}
				chosen[n] = d.Info
			}
		}
		var err error
		if id, err = pickBackup(chosen, target); err != nil {
			return fmt.Errorf("barman: restore: %w", err)
		}
	} else if !slices.ContainsFunc(chosen, func(i Info) bool { return i.ID == id }) {
		return fmt.Errorf("barman: restore: backup %q is not a complete backup of %s: %w", id, t.server(m), ErrNotFound)
	}
	args, err := recoverArgs(target, req.Standby)
	if err != nil {
		return fmt.Errorf("barman: restore: %w", err)
	}
	if err := t.prepareDest(m.DataDir, req.Delta); err != nil {
		return err
	}
	args = append(append([]string{"recover"}, args...), t.server(m), id, m.DataDir)
	lines := &lineWriter{f: func(line string) {
		if progress != nil && line != "" {
			progress(Progress{Message: line, Percent: -1})
		}
	}}
	_, runErr := t.cmd(ctx, m, false, lines, args...)
	lines.Flush()
	if runErr != nil {
		return fmt.Errorf("barman: recover backup %s into %s: %w", id, m.DataDir, runErr)
	}
	if slices.Contains(args, "--get-wal") {
		return t.fixRestoreCommand(m, true)
	}
	if req.Standby {
		if err := moveIntoPgWAL(m.DataDir); err != nil {
			return fmt.Errorf("barman: restore standby into %s: %w", m.DataDir, err)
		}
	}
	return nil
}

// moveIntoPgWAL moves the WAL Barman copied into barman_wal/ (a recovery across
// timelines) into pg_wal/, where a standby reads it without a restore_command, and removes
// barman_wal/. Files keep their owner (Barman wrote them as the OS user).
func moveIntoPgWAL(dataDir string) error {
	src := filepath.Join(dataDir, "barman_wal")
	ents, err := os.ReadDir(src)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	dst := filepath.Join(dataDir, "pg_wal")
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("move %s into pg_wal: %w", e.Name(), err)
		}
	}
	return os.RemoveAll(src)
}

// prepareDest makes sure the data directory exists, owned by the OS user and mode 0700,
// and is empty unless delta (Barman copies with rsync, which reuses what is there).
func (t *barmanTool) prepareDest(dir string, delta bool) error {
	ents, err := os.ReadDir(dir)
	switch {
	case err == nil && len(ents) > 0 && !delta:
		return fmt.Errorf("barman: restore into %s: %w", dir, pg.ErrDataDirNotEmpty)
	case err != nil && !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("barman: restore into %s: %w", dir, err)
	}
	if err := t.run.OwnedDir(dir, 0o700); err != nil {
		return fmt.Errorf("barman: restore into %s: %w", dir, err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("barman: restore into %s: %w", dir, err)
	}
	return nil
}

// fixRestoreCommand replaces the restore_command barman recover --get-wal appended to
// postgresql.auto.conf ("sudo -u USER barman get-wal [-P] SERVER %f > %p", which reads
// the system configuration, not ramd's) by ramd's. partial serves .partial segments (the
// newest WAL the streaming archiver received) to a recovery that ends, as Barman does
// with -P.
func (t *barmanTool) fixRestoreCommand(m Member, partial bool) error {
	path := filepath.Join(m.DataDir, "postgresql.auto.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("barman: restore: read %s: %w", path, err)
	}
	out, n := replaceSetting(string(b), "restore_command", confQuote(t.restoreCommand(m, partial)))
	if n == 0 {
		return fmt.Errorf("barman: restore: barman recover wrote no restore_command into %s", path)
	}
	if err := t.run.WriteOwnedFile(path, []byte(out), 0o600); err != nil {
		return fmt.Errorf("barman: restore: write %s: %w", path, err)
	}
	return nil
}

// replaceSetting replaces the value of every active "name = value" line of a PostgreSQL
// configuration text and reports how many it replaced.
func replaceSetting(conf, name, value string) (string, int) {
	lines := strings.Split(conf, "\n")
	n := 0
	for i, line := range lines {
		k, _, ok := strings.Cut(line, "=")
		if ok && strings.TrimSpace(k) == name {
			lines[i] = name + " = " + value
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}

// pickBackup chooses the newest complete backup (infos in any order) that can reach
// target: for a time, one that ended at or before it; for an LSN, one whose end LSN is at
// or before it; otherwise the newest.
func pickBackup(infos []Info, target Target) (string, error) {
	var at time.Time
	var lsn pg.LSN
	switch target.Type {
	case TargetTime:
		var err error
		if at, err = time.Parse(time.RFC3339Nano, target.Value); err != nil {
			return "", fmt.Errorf("target time %q is not RFC 3339: %w", target.Value, err)
		}
	case TargetLSN:
		var err error
		if lsn, err = pg.ParseLSN(target.Value); err != nil {
			return "", fmt.Errorf("target lsn: %w", err)
		}
	}
	best := Info{}
	for _, b := range infos {
		if b.Status != StatusDone || b.ID <= best.ID {
			continue
		}
		switch target.Type {
		case TargetTime:
			if b.Stop.IsZero() || b.Stop.After(at) {
				continue
			}
		case TargetLSN:
			end, err := pg.ParseLSN(b.StopLSN)
			if err != nil || end > lsn {
				continue
			}
		}
		best = b
	}
	if best.ID == "" {
		if target.Type == TargetTime || target.Type == TargetLSN {
			return "", fmt.Errorf("no complete backup ends before the %s target %s: %w", target.Type, target.Value, ErrNotFound)
		}
		return "", fmt.Errorf("no complete backup: %w", ErrNotFound)
	}
	return best.ID, nil
}

// recoverArgs are barman recover's options for target (or a standby copy). A recovery
// to the end of the archive fetches WAL with get-wal (--get-wal, then ramd's command),
// which serves .partial segments too and lets PostgreSQL see every timeline history file
// of the archive. The others let Barman copy the WAL they need at once (one Python start
// per segment would make a long recovery slow): a target recovery into barman_wal/
// (restore_command 'cp barman_wal/%f %p'), a standby clone straight into pg_wal/ with
// every archived segment from the backup on, so the standby replays them without any
// restore_command (the daemon sets none for Barman) and then streams the rest. Every
// recovery asks for the latest timeline (--target-tli latest); when that is not the
// backup's, Barman treats a standby clone as a point-in-time recovery and copies into
// barman_wal/, which Restore then moves into pg_wal/.
func recoverArgs(target Target, standby bool) ([]string, error) {
	if standby {
		return []string{"--standby-mode", "--target-tli", "latest"}, nil
	}
	var args []string
	switch target.Type {
	case "", TargetEnd:
		// No target: recovery replays the whole archive through restore_command, then
		// promotes on a new timeline.
		return []string{"--get-wal"}, nil
	case TargetImmediate:
		args = append(args, "--target-immediate")
	case TargetTime:
		at, err := time.Parse(time.RFC3339Nano, target.Value)
		if err != nil {
			return nil, fmt.Errorf("target time %q is not RFC 3339: %w", target.Value, err)
		}
		// Barman 3.4 writes the value as given into recovery_target_time, and PostgreSQL
		// rejects RFC 3339's "T" and "Z" there: give it PostgreSQL's own form.
		args = append(args, "--target-time", at.UTC().Format(barmanTimeLayout))
	case TargetXID:
		if _, err := strconv.ParseUint(target.Value, 10, 64); err != nil {
			return nil, fmt.Errorf("target xid %q is not a transaction ID", target.Value)
		}
		args = append(args, "--target-xid", target.Value)
	case TargetLSN:
		if _, err := pg.ParseLSN(target.Value); err != nil {
			return nil, fmt.Errorf("target lsn: %w", err)
		}
		args = append(args, "--target-lsn", target.Value)
	case TargetName:
		if target.Value == "" || strings.ContainsAny(target.Value, "'\n\r") {
			return nil, fmt.Errorf("target name %q: empty or with a quote or newline", target.Value)
		}
		args = append(args, "--target-name", target.Value)
	default:
		return nil, fmt.Errorf("unknown target type %q", target.Type)
	}
	if target.Exclusive && target.Type != TargetImmediate && target.Type != TargetName {
		args = append(args, "--exclusive")
	}
	// Without --target-tli Barman 3.4 copies only the WAL of the backup's timeline: a target
	// after a failover would never be reached. latest is PostgreSQL's default too.
	return append(args, "--target-tli", "latest", "--target-action", "promote"), nil
}

// Stop implements Stopper: it stops the streaming archiver (barman receive-wal and its
// pg_receivewal) when this node runs it. The daemon calls it when this node stops running
// backups; tests call it at cleanup.
func (t *barmanTool) Stop(ctx context.Context, m Member) error {
	if err := t.checkMember(m, false); err != nil {
		return err
	}
	_, err := t.stopReceiver(ctx, m)
	return err
}

// stopReceiver stops the receive-wal process that holds Barman's receive-wal lock when it
// runs on this node with this node's configuration (barman_home may be shared by several
// hosts: a pid read from the lock file is checked against /proc before it is signalled).
// It reports whether a process was stopped.
func (t *barmanTool) stopReceiver(ctx context.Context, m Member) (bool, error) {
	held, pid, err := lockHolder(t.lockPath(m, "receive-wal"))
	if err != nil || !held || pid <= 0 {
		return false, err
	}
	if !isOurProcess(pid, "receive-wal", t.confPath(m)) {
		return false, nil
	}
	if err := stopGroup(ctx, pid, barmanStopWait); err != nil {
		return false, fmt.Errorf("barman: stop receive-wal (pid %d): %w", pid, err)
	}
	return true, nil
}

// The streaming archiver outlives every call: Barman is a Stopper.
var _ Stopper = (*barmanTool)(nil)

// barmanResetTries bounds the attempts of receive-wal --reset while a receive-wal started
// by a concurrent barman cron (the daemon's maintenance) still holds its lock or the slot.
const barmanResetTries = 5

// ResumeAfterRestore implements Resumer: it stops this node's receive-wal (one started by
// the maintenance's cron would resume from the old position), runs `receive-wal --reset`, which
// removes the old timeline's .partial status file from the streaming directory and starts
// the position again at the restored primary's current segment on its new timeline (or at
// its slot's restart point), then Init: the slot, the streaming archiver and a switched
// segment in the archive. The old timeline's segments after the fork stay in the archive;
// its last, partial segment (WAL after the restore target that was never archived whole)
// is dropped with the status file.
func (t *barmanTool) ResumeAfterRestore(ctx context.Context, m Member) error {
	if _, err := t.configure(ctx, m); err != nil {
		return err
	}
	for attempt := 1; ; attempt++ {
		if _, err := t.stopReceiver(ctx, m); err != nil {
			return err
		}
		out, err := t.cmd(ctx, m, true, nil, "receive-wal", "--reset", t.server(m))
		// A receive-wal started meanwhile by a barman cron (the daemon's maintenance) holds
		// the lock ("Process is still running", exit 0) or the slot ("replication slot
		// 'barman' is already in use", exit 1): stop it and try again.
		busy := strings.Contains(out, "Process is still running") || strings.Contains(out, "is already in use")
		if err != nil && !busy {
			return fmt.Errorf("barman: reset the streaming archiver's position: %w", err)
		}
		if !busy {
			break
		}
		if attempt == barmanResetTries {
			return fmt.Errorf("barman: reset the streaming archiver's position: receive-wal still runs after %d attempts", attempt)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("barman: reset the streaming archiver's position: %w", ctx.Err())
		case <-time.After(time.Second):
		}
	}
	return t.Init(ctx, m)
}

var _ Resumer = (*barmanTool)(nil)

// lineWriter calls f for each complete line written to it (and the rest at Flush).
type lineWriter struct {
	mu  sync.Mutex // guards buf
	buf []byte
	f   func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimRight(string(w.buf[:i]), "\r")
		w.buf = w.buf[i+1:]
		w.f(line)
	}
	return len(p), nil
}

// Flush passes on a last line without a newline.
func (w *lineWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		sc := bufio.NewScanner(bytes.NewReader(w.buf))
		for sc.Scan() {
			w.f(sc.Text())
		}
		w.buf = nil
	}
}

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+=:,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// confQuote quotes a value for a PostgreSQL configuration file.
func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// connQuote quotes a libpq connection string value when needed.
func connQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, ` '\`) {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}
