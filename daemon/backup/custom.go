package backup

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// Custom tool: the user's own commands, run under the contract of docs/BACKUPS.md
// ("Custom tools"). Each command line runs with /bin/sh -c as the OS user, bounded by
// backup.custom.timeout; it gets the request as RAMD_* environment variables and as one
// JSON document on standard input, and answers with JSON lines on standard output
// (progress lines and one result line). Exit 0 is success, 75 (EX_TEMPFAIL) busy, 4 not
// found, anything else a failure reported with the tail of standard error.

const (
	customShell = "/bin/sh"
	// Exit codes of the contract.
	customExitNotFound = 4
	customExitBusy     = 75 // EX_TEMPFAIL in sysexits.h
	// customLineMax bounds one line of standard output (a list result is one line);
	// customOutputMax bounds all of it (the rest is read and dropped).
	customLineMax   = 4 << 20
	customOutputMax = 64 << 20
	// customTextMax bounds the text of one progress line and of an error message.
	customTextMax = 1024
	// customMaxBackups bounds the backups of one list result.
	customMaxBackups = 100_000
)

// Operations, in RAMD_BACKUP_OPERATION and the request's "operation".
const (
	customOpBackup  = "backup"
	customOpRestore = "restore"
	customOpList    = "list"
	customOpExpire  = "expire"
)

type customTool struct {
	cfg dynconf.Backup
	run Runner
}

func newCustom(b dynconf.Backup, r Runner) *customTool { return &customTool{cfg: b, run: r} }

func (t *customTool) Name() string { return dynconf.ToolCustom }

// Configure does nothing: the commands carry their own configuration.
func (t *customTool) Configure(ctx context.Context, _ Member) error { return ctx.Err() }

// ArchiveCommand is backup.custom.archive_command as the user wrote it.
func (t *customTool) ArchiveCommand(Member) string { return t.cfg.Custom.ArchiveCommand }

// RestoreCommand is backup.custom.restore_command as the user wrote it.
func (t *customTool) RestoreCommand(Member) string { return t.cfg.Custom.RestoreCommand }

// Init does nothing: the contract has no initialisation step.
func (t *customTool) Init(ctx context.Context, _ Member) error { return ctx.Err() }

// Maintain does nothing.
func (t *customTool) Maintain(context.Context, Member) error { return nil }

// customRequest is the JSON document on the command's standard input; the same values are
// in the environment (customEnv).
type customRequest struct {
	Operation  string          `json:"operation"`
	Scope      string          `json:"scope"`
	Member     string          `json:"member"`
	PGData     string          `json:"pgdata"`
	PGHost     string          `json:"pghost"`
	PGPort     int             `json:"pgport"`
	PGUser     string          `json:"pguser"`
	PGBinDir   string          `json:"pgbindir"`
	PGMajor    int             `json:"pg_major"`
	StateDir   string          `json:"state_dir"`
	Retention  customRetention `json:"retention"`
	BackupType string          `json:"backup_type,omitempty"`
	JobID      string          `json:"job_id,omitempty"`
	Primary    *customServer   `json:"primary,omitempty"`
	BackupID   string          `json:"backup_id,omitempty"`
	Target     *Target         `json:"target,omitempty"`
	Standby    bool            `json:"standby,omitempty"`
	Delta      bool            `json:"delta,omitempty"`
}

type customRetention struct {
	FullCount int `json:"full_count,omitempty"`
	FullDays  int `json:"full_days,omitempty"`
	DiffCount int `json:"diff_count,omitempty"`
}

// customServer is the primary of a backup taken from a standby.
type customServer struct {
	PGData string `json:"pgdata"`
	PGHost string `json:"pghost"`
	PGPort int    `json:"pgport"`
}

// memberHost is how a command reaches m: its TCP host, else its socket directory.
func memberHost(m Member) string {
	if m.Host != "" {
		return m.Host
	}
	return m.SocketDir
}

func (t *customTool) request(op string, m Member) customRequest {
	r := t.cfg.RetentionValue()
	return customRequest{
		Operation: op, Scope: m.Scope, Member: m.Name, PGData: m.DataDir,
		PGHost: memberHost(m), PGPort: m.Port, PGUser: m.Superuser, PGBinDir: m.BinDir,
		PGMajor: m.Major, StateDir: m.StateDir,
		Retention: customRetention{FullCount: r.FullCount, FullDays: r.FullDays, DiffCount: r.DiffCount},
	}
}

// customEnv is the request as environment variables. Every variable is set (empty when it
// does not apply), so scripts may use `set -u`. PGHOST, PGPORT, PGUSER and PGDATABASE
// point libpq programs at the member; PGPASSWORD is set only when a password is.
func customEnv(r customRequest, password string) []string {
	tf := func(b bool) string { return strconv.FormatBool(b) }
	var tg Target
	if r.Target != nil {
		tg = *r.Target
	}
	var p customServer
	if r.Primary != nil {
		p = *r.Primary
	}
	port := func(n int) string {
		if n == 0 {
			return ""
		}
		return strconv.Itoa(n)
	}
	env := []string{
		"RAMD_BACKUP_OPERATION=" + r.Operation,
		"RAMD_SCOPE=" + r.Scope,
		"RAMD_MEMBER=" + r.Member,
		"RAMD_PGDATA=" + r.PGData,
		"RAMD_PGHOST=" + r.PGHost,
		"RAMD_PGPORT=" + port(r.PGPort),
		"RAMD_PGUSER=" + r.PGUser,
		"RAMD_PGBINDIR=" + r.PGBinDir,
		"RAMD_PG_MAJOR=" + port(r.PGMajor),
		"RAMD_STATE_DIR=" + r.StateDir,
		"RAMD_RETENTION_FULL_COUNT=" + port(r.Retention.FullCount),
		"RAMD_RETENTION_FULL_DAYS=" + port(r.Retention.FullDays),
		"RAMD_RETENTION_DIFF_COUNT=" + port(r.Retention.DiffCount),
		"RAMD_BACKUP_TYPE=" + r.BackupType,
		"RAMD_JOB_ID=" + r.JobID,
		"RAMD_PRIMARY_PGDATA=" + p.PGData,
		"RAMD_PRIMARY_PGHOST=" + p.PGHost,
		"RAMD_PRIMARY_PGPORT=" + port(p.PGPort),
		"RAMD_BACKUP_ID=" + r.BackupID,
		"RAMD_TARGET_TYPE=" + tg.Type,
		"RAMD_TARGET_VALUE=" + tg.Value,
		"RAMD_TARGET_EXCLUSIVE=" + tf(tg.Exclusive),
		"RAMD_RESTORE_STANDBY=" + tf(r.Standby),
		"RAMD_RESTORE_DELTA=" + tf(r.Delta),
		"PGHOST=" + r.PGHost,
		"PGPORT=" + port(r.PGPort),
		"PGUSER=" + r.PGUser,
		"PGDATABASE=postgres",
	}
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

// call runs the command of operation op with req and returns what it printed.
func (t *customTool) call(ctx context.Context, command string, req customRequest, password string, progress func(Progress)) (*customOutput, error) {
	op := req.Operation
	if command == "" {
		return nil, fmt.Errorf("custom %s: no command configured (backup.custom.%s)", op, op)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("custom %s: encode request: %w", op, err)
	}
	timeout := t.cfg.Custom.TimeoutValue()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	out := &customOutput{progress: progress}
	lines := newLineSplitter(customLineMax, customOutputMax, out.line)
	_, err = t.run.RunProgram(ctx, pg.Program{
		Path:   customShell,
		Args:   []string{"-c", command},
		Env:    customEnv(req, password),
		Stdin:  bytes.NewReader(append(body, '\n')),
		Stdout: lines,
	})
	_ = lines.Close()
	if err == nil {
		return out, nil
	}
	what := "custom " + op
	if out.errMsg != "" {
		what += ": " + out.errMsg
	}
	var ce *pg.CommandError
	switch {
	case ctx.Err() != nil:
		return out, fmt.Errorf("%s: stopped after the timeout of %s or cancelled: %w", what, timeout, err)
	case errors.As(err, &ce) && ce.ExitCode == customExitBusy:
		return out, fmt.Errorf("%s: %w: %w", what, ErrBusy, err)
	case errors.As(err, &ce) && ce.ExitCode == customExitNotFound:
		return out, fmt.Errorf("%s: %w: %w", what, ErrNotFound, err)
	}
	return out, fmt.Errorf("%s: %w", what, err)
}

// Backup runs backup.custom.backup and returns the backup of its result line
// {"backup": {...}}. A missing id is an error; a missing type, status or job id is taken
// from the request; status "failed" is returned with an error.
func (t *customTool) Backup(ctx context.Context, req BackupRequest, progress func(Progress)) (Info, error) {
	r := t.request(customOpBackup, req.Member)
	r.BackupType = req.Type
	if r.BackupType == "" {
		r.BackupType = dynconf.BackupFull
	}
	r.JobID = req.JobID
	if p := req.Primary; p != nil {
		r.Primary = &customServer{PGData: p.DataDir, PGHost: memberHost(*p), PGPort: p.Port}
	}
	out, err := t.call(ctx, t.cfg.Custom.Backup, r, req.Member.SuperuserPassword, progress)
	if err != nil {
		return Info{}, err
	}
	if out.resultErr != nil {
		return Info{}, fmt.Errorf("custom backup: %w", out.resultErr)
	}
	if out.backup == nil {
		return Info{}, errors.New(`custom backup: exit 0 without a result line {"backup": {...}} on standard output`)
	}
	in := *out.backup
	if in.Type == "" {
		in.Type = r.BackupType
	}
	if in.JobID == "" {
		in.JobID = req.JobID
	}
	if err := checkCustomInfo(&in); err != nil {
		return Info{}, fmt.Errorf("custom backup: result: %w", err)
	}
	if in.Status == StatusFailed {
		return in, fmt.Errorf("custom backup: the command reported backup %s as failed", in.ID)
	}
	return in, nil
}

// checkCustomInfo checks one backup of a result line and fills the default status.
func checkCustomInfo(in *Info) error {
	if in.ID == "" {
		return errors.New(`a backup without "id"`)
	}
	switch in.Status {
	case "":
		in.Status = StatusDone
	case StatusDone, StatusFailed, StatusRunning:
	default:
		return fmt.Errorf("backup %s: status %q (done, failed or running)", in.ID, in.Status)
	}
	return nil
}

// List runs backup.custom.list and returns its result line {"backups": [...]}, oldest
// first.
func (t *customTool) List(ctx context.Context, m Member) (Catalog, error) {
	out, err := t.call(ctx, t.cfg.Custom.List, t.request(customOpList, m), m.SuperuserPassword, nil)
	if err != nil {
		return Catalog{}, err
	}
	if out.resultErr != nil {
		return Catalog{}, fmt.Errorf("custom list: %w", out.resultErr)
	}
	if out.list == nil {
		return Catalog{}, errors.New(`custom list: exit 0 without a result line {"backups": [...]} on standard output`)
	}
	cat := Catalog{Backups: out.list.Backups, WALMin: out.list.WALMin, WALMax: out.list.WALMax, SystemID: uint64(out.list.SystemID)}
	for i := range cat.Backups {
		if err := checkCustomInfo(&cat.Backups[i]); err != nil {
			return Catalog{}, fmt.Errorf("custom list: backups[%d]: %w", i, err)
		}
	}
	sort.SliceStable(cat.Backups, func(i, j int) bool { return cat.Backups[i].Start.Before(cat.Backups[j].Start) })
	return cat, nil
}

// Expire runs backup.custom.expire (nothing when it is not set).
func (t *customTool) Expire(ctx context.Context, m Member) error {
	if t.cfg.Custom.Expire == "" {
		return nil
	}
	_, err := t.call(ctx, t.cfg.Custom.Expire, t.request(customOpExpire, m), m.SuperuserPassword, nil)
	return err
}

// Check runs the list command: the repository answers. (Archiving is checked by the
// daemon from pg_stat_archiver.)
func (t *customTool) Check(ctx context.Context, m Member) error {
	_, err := t.List(ctx, m)
	return err
}

// Restore runs backup.custom.restore into req.Member.DataDir, created owned by the OS
// user when missing.
func (t *customTool) Restore(ctx context.Context, req RestoreRequest, progress func(Progress)) error {
	m := req.Member
	r := t.request(customOpRestore, m)
	r.BackupID = req.BackupID
	tg := req.Target
	switch tg.Type {
	case "":
		tg.Type = TargetEnd
	case TargetTime:
		tg.Value = recoveryTargetTime(tg.Value)
	}
	r.Target, r.Standby, r.Delta = &tg, req.Standby, req.Delta
	if t.cfg.Custom.Restore == "" {
		return errors.New("custom restore: no command configured (backup.custom.restore)")
	}
	if _, err := os.Stat(m.DataDir); errors.Is(err, fs.ErrNotExist) && m.DataDir != "" {
		if err := t.run.OwnedDir(m.DataDir, 0o700); err != nil {
			return fmt.Errorf("custom restore: %w", err)
		}
	}
	_, err := t.call(ctx, t.cfg.Custom.Restore, r, m.SuperuserPassword, progress)
	return err
}
