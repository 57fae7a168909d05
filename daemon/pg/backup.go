package pg

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ControlData is the part of pg_controldata's output the HA loop uses.
type ControlData struct {
	SystemID uint64
	// State is "Database cluster state": "in production", "shut down",
	// "shut down in recovery", "in archive recovery", "in crash recovery", ...
	State string
	// Timeline is "Latest checkpoint's TimeLineID".
	Timeline int
	// CheckpointLSN is "Latest checkpoint location".
	CheckpointLSN LSN
	// MinRecoveryEndLSN is "Minimum recovery ending location".
	MinRecoveryEndLSN LSN
	// DataChecksums is "Data page checksum version" != 0.
	DataChecksums bool
	// WALLogHints is "wal_log_hints setting" == on.
	WALLogHints bool
}

// ControlData runs pg_controldata on the data directory (as the OS user, LC_ALL=C) and
// parses its output. It works whether or not the server runs.
func (i *Instance) ControlData(ctx context.Context) (ControlData, error) {
	out, err := i.run(ctx, "pg_controldata", []string{"-D", i.cfg.DataDir})
	if err != nil {
		return ControlData{}, fmt.Errorf("pg_controldata: %w", err)
	}
	cd, err := parseControlData(out)
	if err != nil {
		return cd, fmt.Errorf("pg_controldata: %w", err)
	}
	return cd, nil
}

func parseControlData(out string) (ControlData, error) {
	var cd ControlData
	fields := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			fields[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	var errs []error
	get := func(k string) string {
		v, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("field %q missing", k))
		}
		return v
	}
	var err error
	if cd.SystemID, err = strconv.ParseUint(get("Database system identifier"), 10, 64); err != nil {
		errs = append(errs, fmt.Errorf("parse system identifier: %w", err))
	}
	cd.State = get("Database cluster state")
	if cd.Timeline, err = strconv.Atoi(get("Latest checkpoint's TimeLineID")); err != nil {
		errs = append(errs, fmt.Errorf("parse timeline: %w", err))
	}
	if cd.CheckpointLSN, err = ParseLSN(get("Latest checkpoint location")); err != nil {
		errs = append(errs, err)
	}
	if cd.MinRecoveryEndLSN, err = ParseLSN(get("Minimum recovery ending location")); err != nil {
		errs = append(errs, err)
	}
	cd.DataChecksums = get("Data page checksum version") != "0"
	cd.WALLogHints = get("wal_log_hints setting") == "on"
	return cd, errors.Join(errs...)
}

// toolEnv returns the environment that gives src's password to a libpq tool.
func toolEnv(src ConnParams) []string {
	env := []string{"PGCONNECT_TIMEOUT=5", "PGAPPNAME=ramd"}
	if src.Password != "" {
		env = append(env, "PGPASSWORD="+src.Password)
	}
	return env
}

// withoutPassword returns src's DSN without the password (that goes in PGPASSWORD).
func withoutPassword(src ConnParams) string {
	src.Password = ""
	return src.DSN() + " " + keepalives
}

// keepalives are the TCP keepalives of a connection to another server that may last (a
// standby's stream, a tool's copy): a peer that vanishes (its host cut off, its reset lost)
// is noticed within about 11 s instead of the kernel's two hours.
const keepalives = "keepalives=1 keepalives_idle=5 keepalives_interval=2 keepalives_count=3"

// rewindChangeMarks are what pg_rewind --progress prints from the moment it starts to change
// the target data directory on: the plan ("need to copy"), the copy's progress, and the
// steps after it.
var rewindChangeMarks = []string{"need to copy", " copied", "creating backup label", "syncing target data directory", "Done!"}

// RewindChangedTarget reports whether a failed Rewind may have changed the data directory:
// false only when pg_rewind's output shows it stopped before its copy began (the source
// went away while the file lists were read, say), so running it again is safe. Any other
// failure, or one whose output was cut, may have left the directory half rewound; the
// PostgreSQL documentation then asks for a new clone.
func RewindChangedTarget(err error) bool {
	if errors.Is(err, ErrRewindSourceNotReady) {
		return false // pg_rewind did not run
	}
	var ce *CommandError
	if !errors.As(err, &ce) || ce.Cmd != "pg_rewind" || strings.HasPrefix(ce.Output, "...") {
		return true
	}
	for _, m := range rewindChangeMarks {
		if strings.Contains(ce.Output, m) {
			return true
		}
	}
	return false
}

// Basebackup clones src into the empty or absent data directory:
//
//	pg_basebackup -D <DataDir> -X stream --checkpoint=fast -d <dsn> [-S slot] [--waldir]
//
// as the OS user, with the password in PGPASSWORD rather than argv. The slot, when given,
// must already exist on the source. On failure the partial data directory is removed and
// the error wraps ErrBasebackupFailed and the *CommandError. The ramd.conf copied from
// the source (its port, addresses and primary_conninfo) is removed, so Start refuses to
// run the clone until WriteConfig wrote this node's own settings.
func (i *Instance) Basebackup(ctx context.Context, src ConnParams, slot string) error {
	if slot != "" {
		if err := validSlotName(slot); err != nil {
			return fmt.Errorf("basebackup: %w", err)
		}
	}
	if i.Running() {
		return fmt.Errorf("basebackup: %w", ErrRunning)
	}
	created, err := i.prepareDataDir()
	if err != nil {
		return fmt.Errorf("basebackup: %w", err)
	}
	walArgs, walCreated, err := i.walDirArgs(ctx)
	if err != nil {
		return fmt.Errorf("basebackup: %w", err)
	}
	args := []string{
		"-D", i.cfg.DataDir,
		"-X", "stream",
		"--checkpoint=fast",
		"--no-password",
		"-d", withoutPassword(src),
	}
	args = append(args, walArgs...)
	if slot != "" {
		args = append(args, "-S", slot)
	}
	i.logger.InfoContext(ctx, "cloning data directory", "source", src.String(), "slot", slot, "data_dir", i.cfg.DataDir)
	if _, err := i.run(ctx, "pg_basebackup", args, toolEnv(src)...); err != nil {
		if rmErr := i.clearDataDir(created); rmErr != nil {
			i.logger.WarnContext(ctx, "could not remove partial data directory", "data_dir", i.cfg.DataDir, "err", rmErr)
		}
		if rmErr := i.clearWALDir(walCreated); rmErr != nil {
			i.logger.WarnContext(ctx, "could not remove partial WAL directory", "wal_dir", i.cfg.WALDir, "err", rmErr)
		}
		return fmt.Errorf("basebackup from %s: %w: %w", src, ErrBasebackupFailed, err)
	}
	if err := os.Remove(filepath.Join(i.cfg.DataDir, ramdConf)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("basebackup: remove copied %s: %w", ramdConf, err)
	}
	return nil
}

func checkpointSource(ctx context.Context, src ConnParams) error {
	conn, err := connectTo(ctx, src)
	if err != nil {
		return err
	}
	defer closeConn(ctx, conn)
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// Rewind synchronises the stopped data directory with src after a timeline divergence:
//
//	pg_rewind --target-pgdata=<DataDir> --source-server=<dsn>
//
// as the OS user, with the password in PGPASSWORD. src must be a superuser (or a role
// granted pg_rewind's functions) on the new primary. Rewind first runs CHECKPOINT on src so
// that a just-promoted source reports its new timeline. PostgreSQL 13+ runs crash recovery
// on the target itself when it was not shut down cleanly. pg_rewind copies the source's
// configuration files; this node's ramd.conf is restored afterwards, so the caller only
// has to WriteConfig the standby settings before Start. On failure the error wraps
// ErrRewindFailed and the *CommandError (exit code and output tail).
func (i *Instance) Rewind(ctx context.Context, src ConnParams) error {
	if i.Running() {
		return fmt.Errorf("rewind: %w", ErrRunning)
	}
	confPath := filepath.Join(i.cfg.DataDir, ramdConf)
	saved, err := os.ReadFile(confPath)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("rewind: save %s: %w", ramdConf, err)
	}
	// A freshly promoted source finishes its end-of-recovery checkpoint asynchronously;
	// until a checkpoint completes its pg_control still names the old timeline, and
	// pg_rewind, which reads it, reports "no rewind required" or writes that timeline as the
	// target's minimum recovery point's, which no standby of the new timeline can reach
	// ("requested timeline 3 does not contain minimum recovery point ... on timeline 1",
	// at every start: found by the primary-latency fault scenario, whose slow link made the
	// checkpoint time out while pg_rewind then went through). So no checkpoint, no rewind.
	if err := checkpointSource(ctx, src); err != nil {
		return fmt.Errorf("rewind from %s: %w: %w", src, ErrRewindSourceNotReady, err)
	}
	// --progress makes pg_rewind say when it starts to change the target ("need to copy"),
	// which tells a failure that left the data directory as it was (RewindChangedTarget).
	args := []string{
		"--target-pgdata=" + i.cfg.DataDir,
		"--source-server=" + withoutPassword(src),
		"--progress",
	}
	i.logger.InfoContext(ctx, "rewinding data directory", "source", src.String(), "data_dir", i.cfg.DataDir)
	_, runErr := i.run(ctx, "pg_rewind", args, toolEnv(src)...)
	if saved != nil {
		if err := i.writeFileAtomic(confPath, saved, 0o600); err != nil {
			return errors.Join(fmt.Errorf("rewind: restore %s: %w", ramdConf, err), runErr)
		}
	}
	if runErr != nil {
		return fmt.Errorf("rewind from %s: %w: %w", src, ErrRewindFailed, runErr)
	}
	return nil
}
