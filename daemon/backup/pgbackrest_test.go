package backup_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/backup"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

var labelRe = regexp.MustCompile(`^[0-9]{8}-[0-9]{6}F(_[0-9]{8}-[0-9]{6}[DI])?$`)

// pgbrConfig is a local repository keeping two full backups; lz4 and bundling (fewer,
// larger repository files: a second less per backup here) keep the tests fast.
func pgbrConfig(repo string) dynconf.Backup {
	return dynconf.Backup{
		Tool:      dynconf.ToolPgBackRest,
		Retention: dynconf.Retention{FullCount: 2},
		PgBackRest: dynconf.PgBackRest{RepoPath: repo,
			Options: map[string]string{"compress-type": "lz4", "repo1-bundle": "y"}},
	}
}

// newPgbrPrimary initializes and starts a primary that archives into cfg's repository and
// creates the stanza.
func newPgbrPrimary(t *testing.T, name string, cfg dynconf.Backup) (*pg.Instance, backup.Tool, backup.Member) {
	t.Helper()
	logger := testLogger(t)
	inst := newInstance(t, name, logger)
	if err := inst.Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	tool, err := backup.New(cfg, inst)
	if err != nil {
		t.Fatalf("backup.New: %v", err)
	}
	state := stateDir(t, name+"-state")
	// The archive command names only the configuration file, not the port: it is known
	// before the server has its final port.
	start(t, &inst, logger, archiving(tool.ArchiveCommand(member(t, inst, state))))
	m := member(t, inst, state)
	if err := tool.Init(opCtx(t), m); err != nil {
		t.Fatalf("Init: %v", err)
	}
	return inst, tool, m
}

func mustBackup(t *testing.T, tool backup.Tool, req backup.BackupRequest, progress func(backup.Progress)) backup.Info {
	t.Helper()
	began := time.Now()
	in, err := tool.Backup(opCtx(t), req, progress)
	if err != nil {
		t.Fatalf("Backup %s (job %s): %v", req.Type, req.JobID, err)
	}
	t.Logf("%s backup %s took %s", req.Type, in.ID, time.Since(began).Round(time.Millisecond))
	checkInfo(t, in, req)
	return in
}

// checkInfo checks what every backup read from the tool must carry.
func checkInfo(t *testing.T, in backup.Info, req backup.BackupRequest) {
	t.Helper()
	start, err1 := pg.ParseLSN(in.StartLSN)
	stop, err2 := pg.ParseLSN(in.StopLSN)
	switch {
	case in.Type != req.Type:
		t.Errorf("backup %s: type %q, want %q", in.ID, in.Type, req.Type)
	case in.JobID != req.JobID:
		t.Errorf("backup %s: job %q, want %q", in.ID, in.JobID, req.JobID)
	case in.Status != backup.StatusDone:
		t.Errorf("backup %s: status %q", in.ID, in.Status)
	case err1 != nil || err2 != nil || start == 0 || stop < start:
		t.Errorf("backup %s: LSN range %q..%q (%v, %v)", in.ID, in.StartLSN, in.StopLSN, err1, err2)
	case len(in.WALStart) != 24 || len(in.WALStop) != 24 || in.WALStop < in.WALStart:
		t.Errorf("backup %s: WAL range %q..%q", in.ID, in.WALStart, in.WALStop)
	case in.Timeline != 1:
		t.Errorf("backup %s: timeline %d", in.ID, in.Timeline)
	case in.Size <= 0 || in.RepoSize <= 0:
		t.Errorf("backup %s: size %d, repository size %d", in.ID, in.Size, in.RepoSize)
	case in.Start.IsZero() || in.Stop.Before(in.Start) || time.Since(in.Start) > time.Hour:
		t.Errorf("backup %s: start %v stop %v", in.ID, in.Start, in.Stop)
	}
}

// TestPgBackRestBackups: stanza lifecycle, full, differential and incremental backups read
// back from info JSON, a second backup while one runs meets the lock (ErrBusy), and a
// retention of 2 full backups leaves 2 after 3 more, with their WAL.
func TestPgBackRestBackups(t *testing.T) {
	requirePgBackRest(t)
	t.Parallel()
	inst, tool, m := newPgbrPrimary(t, "p", pgbrConfig(testenv.DataDir(t, "repo")))
	ctx := opCtx(t)

	if err := tool.Init(ctx, m); err != nil {
		t.Fatalf("Init again (same system id): %v", err)
	}
	cat, err := tool.List(ctx, m)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	sysID := mustQuery(t, inst, "SELECT system_identifier::text FROM pg_control_system()")
	if len(cat.Backups) != 0 || cat.SystemID == 0 || cat.SystemID > 1<<63 {
		t.Fatalf("List of a new stanza = %+v", cat)
	}
	if got := strings.TrimSpace(sysID); got != strconv.FormatUint(cat.SystemID, 10) {
		t.Errorf("catalog system id %d, server %s", cat.SystemID, got)
	}

	execSQL(t, inst, "CREATE TABLE t (i int); INSERT INTO t SELECT generate_series(1, 100)")
	var prog progressLog
	full := mustBackup(t, tool, backup.BackupRequest{Type: "full", JobID: "job-full-1", Member: m}, prog.add)
	if !labelRe.MatchString(full.ID) || !strings.HasSuffix(full.ID, "F") || full.Prior != "" {
		t.Errorf("full backup label %q prior %q", full.ID, full.Prior)
	}
	checkProgress(t, prog.all())

	execSQL(t, inst, "INSERT INTO t SELECT generate_series(101, 200)")
	diff := mustBackup(t, tool, backup.BackupRequest{Type: "diff", JobID: "job-diff-1", Member: m}, nil)
	if !strings.HasPrefix(diff.ID, full.ID+"_") || !strings.HasSuffix(diff.ID, "D") || diff.Prior != full.ID {
		t.Errorf("diff backup label %q prior %q (full %s)", diff.ID, diff.Prior, full.ID)
	}
	incr := mustBackup(t, tool, backup.BackupRequest{Type: "incr", JobID: "job-incr-1", Member: m}, nil)
	if !strings.HasPrefix(incr.ID, full.ID+"_") || !strings.HasSuffix(incr.ID, "I") || incr.Prior != diff.ID {
		t.Errorf("incr backup label %q prior %q (diff %s)", incr.ID, incr.Prior, diff.ID)
	}
	if incr.RepoSize >= full.RepoSize {
		t.Errorf("incr stores %d bytes, full %d", incr.RepoSize, full.RepoSize)
	}

	// A second backup while one holds the stanza's lock: pgBackRest 2.45 does not wait, it
	// exits 50 at once.
	type result struct {
		in  backup.Info
		err error
	}
	copying := make(chan struct{})
	var once sync.Once
	done := make(chan result, 1)
	go func() {
		in, err := tool.Backup(ctx, backup.BackupRequest{Type: "full", JobID: "job-full-2", Member: m}, func(p backup.Progress) {
			if strings.HasPrefix(p.Message, "backup start archive") {
				once.Do(func() { close(copying) })
			}
		})
		done <- result{in, err}
	}()
	select {
	case <-copying:
	case r := <-done:
		t.Fatalf("first backup ended before it was seen copying: %+v, %v", r.in, r.err)
	case <-time.After(waitFor):
		t.Fatal("first backup not copying within the wait")
	}
	_, err = tool.Backup(ctx, backup.BackupRequest{Type: "full", JobID: "job-busy", Member: m}, nil)
	var ce *pg.CommandError
	if !errors.Is(err, backup.ErrBusy) || !errors.As(err, &ce) || ce.ExitCode != 50 {
		t.Fatalf("second concurrent Backup: %v; want ErrBusy with exit code 50", err)
	}
	t.Logf("concurrent backup refused: %v", err)
	var full2 backup.Info
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("first concurrent Backup: %v", r.err)
		}
		full2 = r.in
	case <-time.After(opTimeout):
		t.Fatal("first concurrent Backup did not end")
	}
	full3 := mustBackup(t, tool, backup.BackupRequest{Type: "full", JobID: "job-full-3", Member: m}, nil)

	// Retention 2 full: the first full went, with its diff and incr and the WAL before the
	// oldest full kept.
	cat, err = tool.List(ctx, m)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var ids []string
	for _, b := range cat.Backups {
		ids = append(ids, b.ID)
	}
	if want := []string{full2.ID, full3.ID}; !slices.Equal(ids, want) {
		t.Fatalf("after 3 fulls with retention 2: backups %v, want %v", ids, want)
	}
	if cat.Backups[0].JobID != "job-full-2" || cat.Backups[1].JobID != "job-full-3" {
		t.Errorf("annotations %q, %q", cat.Backups[0].JobID, cat.Backups[1].JobID)
	}
	if cat.WALMin != full2.WALStart || cat.WALMax < full3.WALStop {
		t.Errorf("archive %s..%s, want %s..>=%s", cat.WALMin, cat.WALMax, full2.WALStart, full3.WALStop)
	}
	if err := tool.Expire(ctx, m); err != nil {
		t.Errorf("Expire: %v", err)
	}
	began := time.Now()
	if err := tool.Check(ctx, m); err != nil {
		t.Errorf("Check: %v", err)
	}
	t.Logf("check took %s", time.Since(began).Round(time.Millisecond))
}

// checkProgress: started, pgBackRest's own lines, a rising percentage, finished.
func checkProgress(t *testing.T, ps []backup.Progress) {
	t.Helper()
	if len(ps) < 4 {
		t.Fatalf("progress %+v", ps)
	}
	if ps[0].Message != "full backup started" || ps[0].Percent != 0 {
		t.Errorf("first progress %+v", ps[0])
	}
	if last := ps[len(ps)-1]; !strings.HasSuffix(last.Message, "finished") || last.Percent != 100 {
		t.Errorf("last progress %+v", last)
	}
	pct, sawLabel := -1, false
	for _, p := range ps[1 : len(ps)-1] {
		if p.Percent >= 0 {
			if p.Percent <= pct {
				t.Errorf("percentage went from %d to %d", pct, p.Percent)
			}
			pct = p.Percent
		}
		sawLabel = sawLabel || strings.HasPrefix(p.Message, "new backup label = ")
		if strings.Contains(p.Message, "--") {
			t.Errorf("progress carries an option list: %q", p.Message)
		}
	}
	if pct < 90 || !sawLabel {
		t.Errorf("highest percentage %d, label line seen %v: %+v", pct, sawLabel, ps)
	}
}

// TestPgBackRestRestore: point-in-time recovery into a new data directory has exactly the
// rows committed before the target; an unknown set or a target before every backup is
// ErrNotFound; a standby restore streams from the primary; a backup from that standby; a
// backup cut short by its context releases the lock; a cluster of another system
// identifier is refused the stanza (ErrArchiveMismatch).
func TestPgBackRestRestore(t *testing.T) {
	requirePgBackRest(t)
	t.Parallel()
	logger := testLogger(t)
	inst, tool, m := newPgbrPrimary(t, "p", pgbrConfig(testenv.DataDir(t, "repo")))
	ctx := opCtx(t)

	execSQL(t, inst, "CREATE TABLE t (i int)")
	full := mustBackup(t, tool, backup.BackupRequest{Type: "full", JobID: "job-r1", Member: m}, nil)
	afterSecond(full.Stop)
	execSQL(t, inst, "INSERT INTO t SELECT generate_series(1, 1000)")
	target := mustQuery(t, inst, `SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`)
	execSQL(t, inst, "INSERT INTO t SELECT generate_series(1001, 1500)")
	// check switches WAL and waits until the segment is archived: the commit after the
	// target is in the archive.
	if err := tool.Check(ctx, m); err != nil {
		t.Fatalf("Check: %v", err)
	}

	pitr := newInstance(t, "pitr", logger)
	pm := member(t, pitr, stateDir(t, "pitr state"))
	err := tool.Restore(ctx, backup.RestoreRequest{Member: pm, BackupID: "20990101-000000F"}, nil)
	if !errors.Is(err, backup.ErrNotFound) {
		t.Errorf("Restore of an unknown set: %v; want ErrNotFound", err)
	}
	err = tool.Restore(ctx, backup.RestoreRequest{Member: pm, Target: backup.Target{Type: backup.TargetTime, Value: "2001-01-01T00:00:00Z"}}, nil)
	if !errors.Is(err, backup.ErrNotFound) {
		t.Errorf("Restore to a time before every backup: %v; want ErrNotFound", err)
	}

	var prog progressLog
	began := time.Now()
	if err := tool.Restore(ctx, backup.RestoreRequest{Member: pm, Target: backup.Target{Type: backup.TargetTime, Value: target}}, prog.add); err != nil {
		t.Fatalf("Restore to %s: %v", target, err)
	}
	t.Logf("restore took %s", time.Since(began).Round(time.Millisecond))
	for _, p := range prog.all() {
		if strings.HasPrefix(p.Message, "WARN") {
			t.Errorf("restore warned: %s", p.Message)
		}
	}
	auto := readFile(t, filepath.Join(pm.DataDir, "postgresql.auto.conf"))
	t.Logf("postgresql.auto.conf after restore:\n%s", auto)
	for _, want := range []string{
		// The state directory's name holds a space: the command quotes it, and the quotes
		// are doubled in the file (pgBackRest 2.45 would write them as they are).
		"restore_command = '" + strings.ReplaceAll(tool.RestoreCommand(pm), "'", "''") + "'",
		"recovery_target_time = '",
		"recovery_target_action = 'promote'",
	} {
		if !strings.Contains(auto, want) {
			t.Errorf("postgresql.auto.conf lacks %q", want)
		}
	}
	if _, err := os.Stat(filepath.Join(pm.DataDir, "recovery.signal")); err != nil {
		t.Errorf("recovery.signal: %v", err)
	}
	start(t, &pitr, logger, pg.Settings{Parameters: map[string]string{"archive_mode": "off"}})
	if n := waitPromotedCount(t, pitr); n != "1000" {
		t.Errorf("restored to %s: %s rows, want 1000", target, n)
	}

	// A standby from the backup and the archive, streaming from the primary.
	sb := newInstance(t, "standby", logger)
	sm := member(t, sb, stateDir(t, "standby-state"))
	if err := tool.Restore(ctx, backup.RestoreRequest{Member: sm, Standby: true}, nil); err != nil {
		t.Fatalf("Restore standby: %v", err)
	}
	if _, err := os.Stat(filepath.Join(sm.DataDir, "standby.signal")); err != nil {
		t.Errorf("standby.signal: %v", err)
	}
	s := archiving(tool.ArchiveCommand(sm))
	s.Standby, s.PrimaryConnInfo = true, pg.PrimaryConnInfo(inst.LocalConn(), "standby")
	start(t, &sb, logger, s)
	execSQL(t, inst, "INSERT INTO t VALUES (1501)")
	testenv.Eventually(t, waitFor, pollEvery, func() error {
		st, err := sb.Status(t.Context())
		if err != nil {
			return err
		}
		if !st.InRecovery || st.ReceiverStatus != "streaming" {
			return errors.New("standby not streaming: receiver " + st.ReceiverStatus)
		}
		n, err := queryString(t.Context(), sb, "SELECT count(*)::text FROM t")
		if err != nil || n != "1501" {
			return errors.New("standby rows " + n)
		}
		return nil
	})

	// Backup from the standby, the primary as pg2 (both on this machine).
	sm = member(t, sb, sm.StateDir)
	prog = progressLog{}
	fromStandby := mustBackup(t, tool, backup.BackupRequest{Type: "full", JobID: "job-standby", Member: sm, Primary: &m}, prog.add)
	sawStandby := false
	for _, p := range prog.all() {
		sawStandby = sawStandby || strings.Contains(p.Message, "standby")
	}
	if !sawStandby {
		t.Errorf("backup %s: no progress line mentions the standby: %+v", fromStandby.ID, prog.all())
	}

	// A backup cut short by its context: pgBackRest's process group is killed and its lock
	// released (expire takes the same lock).
	short, cancel := context.WithTimeout(ctx, 700*time.Millisecond)
	cutAt := time.Now()
	_, err = tool.Backup(short, backup.BackupRequest{Type: "full", JobID: "job-cut", Member: m}, nil)
	cancel()
	cutTook := time.Since(cutAt)
	if !errors.Is(err, context.DeadlineExceeded) || cutTook > 10*time.Second {
		t.Errorf("Backup with a short context: %v after %s; want the deadline", err, cutTook)
	}
	testenv.Eventually(t, waitFor, pollEvery, func() error { return tool.Expire(ctx, m) })
	t.Logf("backup cut after %s (%v); expire got the lock %s later", cutTook.Round(time.Millisecond), err, (time.Since(cutAt) - cutTook).Round(time.Millisecond))

	// Another cluster (another system identifier) on the same stanza: the repository is
	// not its own (exit 28 from stanza-create, 51 from backup). It has no unix socket, so
	// these also show that pgBackRest reaches it over TCP (PGHOST).
	other := newInstanceWith(t, "other", logger, func(c *pg.Config) { c.SocketDir = pg.SocketDirNone })
	if err := other.Initdb(opCtx(t)); err != nil {
		t.Fatalf("Initdb: %v", err)
	}
	start(t, &other, logger, pg.Settings{})
	om := member(t, other, stateDir(t, "other-state"))
	if om.SocketDir != "" {
		t.Fatalf("member without a socket has SocketDir %q", om.SocketDir)
	}
	err = tool.Init(ctx, om)
	if !errors.Is(err, backup.ErrArchiveMismatch) {
		t.Errorf("Init of another system on the stanza: %v; want ErrArchiveMismatch", err)
	}
	_, err = tool.Backup(ctx, backup.BackupRequest{Type: "full", JobID: "job-other", Member: om}, nil)
	if !errors.Is(err, backup.ErrArchiveMismatch) {
		t.Errorf("Backup of another system on the stanza: %v; want ErrArchiveMismatch", err)
	}
	t.Logf("backup of another system: %v", err)
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestPgBackRestConfigure: the generated file (content, owner, mode), that an unchanged
// configuration is not rewritten, and the archive command's quoting as PostgreSQL and the
// shell read it, for paths with a space, a quote and a '%'.
func TestPgBackRestConfigure(t *testing.T) {
	t.Parallel()
	inst := newInstance(t, "p", testLogger(t))
	base := testenv.DataDir(t, "x")
	days := dynconf.Backup{
		Tool:      dynconf.ToolPgBackRest,
		Retention: dynconf.Retention{FullDays: 7, DiffCount: 3},
		PgBackRest: dynconf.PgBackRest{RepoPath: filepath.Join(base, "repo"), Stanza: "main",
			Options: map[string]string{"compress-type": "lz4", "log-level-file": "detail"}},
	}
	tool, err := backup.New(days, inst)
	if err != nil {
		t.Fatal(err)
	}
	m := backup.Member{Scope: scope, Name: "n1", DataDir: filepath.Join(base, "da'ta 1"), Port: 5433,
		Host: "127.0.0.1", SocketDir: "/run/x", Superuser: "postgres", StateDir: filepath.Join(base, "st ate%p")}
	ctx := opCtx(t)
	if err := tool.Configure(ctx, m); err != nil {
		t.Fatalf("Configure: %v", err)
	}
	path := filepath.Join(m.StateDir, "pgbackrest", "pgbackrest.conf")
	st1, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st1.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st1.Mode())
	}
	if os.Geteuid() == 0 {
		if uid := st1.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("configuration owned by root")
		}
		rst, err := os.Stat(days.PgBackRest.RepoPath)
		if err != nil || rst.Sys().(*syscall.Stat_t).Uid == 0 {
			t.Errorf("repository directory %v (err %v): want created, owned by the OS user", rst, err)
		}
	}
	conf := readFile(t, path)
	for _, want := range []string{
		"[global]\n", "repo1-path=" + days.PgBackRest.RepoPath + "\n", "repo1-retention-full-type=time\n",
		"repo1-retention-full=7\n", "repo1-retention-diff=3\n", "compress-type=lz4\n", "log-level-file=detail\n",
		"log-level-console=warn\n", "lock-path=" + filepath.Join(m.StateDir, "pgbackrest", "lock") + "\n",
		"\n[main]\n", "pg1-path=" + m.DataDir + "\n", "pg1-port=5433\n", "pg1-socket-path=/run/x\n", "pg1-user=postgres\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("configuration lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "archive-push-queue-max") || strings.Count(conf, "log-level-file") != 1 {
		t.Errorf("configuration:\n%s", conf)
	}

	if err := tool.Configure(ctx, m); err != nil {
		t.Fatal(err)
	}
	if st2, err := os.Stat(path); err != nil || !os.SameFile(st1, st2) {
		t.Errorf("unchanged configuration rewritten (err %v)", err)
	}
	if err := os.WriteFile(path, []byte("[global]\nrepo1-path=/elsewhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tool.Configure(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); got != conf {
		t.Errorf("a file edited by hand is not written again:\n%s", got)
	}
	m.Port = 5434
	if err := tool.Configure(ctx, m); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(readFile(t, path), "pg1-port=5434\n") {
		t.Errorf("port change not written")
	}

	// PostgreSQL replaces %p and %% and hands the result to /bin/sh.
	for cmd, want := range map[string][]string{
		tool.ArchiveCommand(m): {"--config=" + path, "--stanza=main", "archive-push", "pg_wal/000000010000000000000001"},
		tool.RestoreCommand(m): {"--config=" + path, "--stanza=main", "archive-get", "000000010000000000000001", "pg_wal/RECOVERYXLOG"},
	} {
		expanded := pgExpand(cmd, "pg_wal/000000010000000000000001", "000000010000000000000001")
		if strings.Contains(cmd, "archive-get") {
			expanded = pgExpand(cmd, "pg_wal/RECOVERYXLOG", "000000010000000000000001")
		}
		out, err := exec.Command("/bin/sh", "-c", `set -- `+expanded+`; shift; printf '%s\n' "$@"`).Output()
		if err != nil {
			t.Fatalf("sh %q: %v", expanded, err)
		}
		if got := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n"); !slices.Equal(got, want) {
			t.Errorf("command %q reads as %q, want %q", cmd, got, want)
		}
	}
}

// pgExpand replaces %p, %f and %% the way PostgreSQL does in archive_command and
// restore_command.
func pgExpand(cmd, p, f string) string {
	var b strings.Builder
	for i := 0; i < len(cmd); i++ {
		if cmd[i] != '%' || i+1 == len(cmd) {
			b.WriteByte(cmd[i])
			continue
		}
		i++
		switch cmd[i] {
		case 'p':
			b.WriteString(p)
		case 'f':
			b.WriteString(f)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte('%')
			b.WriteByte(cmd[i])
		}
	}
	return b.String()
}
