package pg

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon/params"
)

// This file gives daemon/params what it needs from PostgreSQL to build a parameter catalog
// and to ask the installed binary for its verdict on a value: pg_settings of a running
// server (Instance.ReadSettings), of a throwaway server (ScratchSettings), and
// `postgres -C` in a scratch directory (Oracle).

// settingsQuery reads every row of pg_settings as text.
const settingsQuery = `SELECT name, coalesce(setting, ''), coalesce(unit, ''), coalesce(category, ''),
	coalesce(short_desc, ''), context, vartype, coalesce(min_val, ''), coalesce(max_val, ''),
	coalesce(enumvals, '{}'::text[]), coalesce(boot_val, ''), coalesce(reset_val, '')
	FROM pg_settings ORDER BY name`

// ReadSettings returns server_version_num and every row of pg_settings of the running
// server (implements params.SettingsReader).
func (i *Instance) ReadSettings(ctx context.Context) (int, []params.Row, error) {
	conn, err := i.connect(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("read pg_settings: %w", err)
	}
	defer conn.Release()
	var ver int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&ver); err != nil {
		return 0, nil, fmt.Errorf("read server_version_num: %w", err)
	}
	rows, err := conn.Query(ctx, settingsQuery)
	if err != nil {
		return 0, nil, fmt.Errorf("read pg_settings: %w", err)
	}
	defer rows.Close()
	var out []params.Row
	for rows.Next() {
		var r params.Row
		if err := rows.Scan(&r.Name, &r.Setting, &r.Unit, &r.Category, &r.ShortDesc, &r.Context, &r.VarType,
			&r.MinVal, &r.MaxVal, &r.EnumVals, &r.BootVal, &r.ResetVal); err != nil {
			return 0, nil, fmt.Errorf("read pg_settings: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return 0, nil, fmt.Errorf("read pg_settings: %w", err)
	}
	return ver, out, nil
}

// ScratchReader reads pg_settings of a throwaway server: initdb into a temporary
// directory, start on a free loopback port, read, stop, remove (implements
// params.SettingsReader). It takes a few seconds; callers cache the catalog.
type ScratchReader struct {
	// Config supplies BinDir (which version) and OSUser; its DataDir, ports and
	// passwords are ignored.
	Config Config
	Logger *slog.Logger
}

// scratchAttempts bounds the restarts on a new port when another process took the free
// port between choosing it and the postmaster's bind.
const scratchAttempts = 3

// ReadSettings implements params.SettingsReader.
func (s ScratchReader) ReadSettings(ctx context.Context) (int, []params.Row, error) {
	base, err := scratchBase("ramd-catalog-")
	if err != nil {
		return 0, nil, err
	}
	defer os.RemoveAll(base)
	var last error
	for range scratchAttempts {
		port, err := freeLoopbackPort()
		if err != nil {
			return 0, nil, err
		}
		cfg := Config{BinDir: s.Config.BinDir, OSUser: s.Config.OSUser, DataDir: filepath.Join(base, "data"),
			ListenAddr: "127.0.0.1", Port: port, SocketDir: SocketDirNone}
		inst, err := New(cfg, s.Logger)
		if err != nil {
			return 0, nil, fmt.Errorf("scratch server: %w", err)
		}
		if st, _ := inst.DataDirState(); !st.Initialized {
			if err := inst.Initdb(ctx); err != nil {
				return 0, nil, fmt.Errorf("scratch server: %w", err)
			}
		}
		ver, rows, err := readScratch(ctx, inst)
		if err == nil {
			return ver, rows, nil
		}
		last = err
		if !errors.Is(err, ErrStartFailed) || !strings.Contains(err.Error(), "already in use") {
			break
		}
	}
	return 0, nil, last
}

// readScratch starts inst, reads pg_settings and stops it again (immediate: nothing in it
// is worth a checkpoint).
func readScratch(ctx context.Context, inst *Instance) (int, []params.Row, error) {
	if _, err := inst.WriteConfig(Settings{}); err != nil {
		return 0, nil, fmt.Errorf("scratch server: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 20*time.Second)
		defer cancel()
		if err := inst.Stop(sctx, StopImmediate); err != nil {
			inst.logger.WarnContext(ctx, "could not stop scratch server", "err", err)
		}
	}()
	if err := inst.Start(ctx); err != nil {
		return 0, nil, fmt.Errorf("scratch server: %w", err)
	}
	return inst.ReadSettings(ctx)
}

// freeLoopbackPort asks the kernel for a free TCP port on 127.0.0.1.
func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// scratchBase creates a temporary directory the OS user can traverse (mode 0711).
func scratchBase(pattern string) (string, error) {
	base, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("create scratch directory: %w", err)
	}
	if err := os.Chmod(base, 0o711); err != nil {
		_ = os.RemoveAll(base)
		return "", fmt.Errorf("create scratch directory: %w", err)
	}
	return base, nil
}

// Oracle asks an installed postgres binary for its own verdict on parameter values,
// without a server: `postgres -D <scratch> -C <name> -c <name>=<value>` in a scratch
// directory that holds only empty postgresql.conf and postgresql.auto.conf. The binary
// parses the value exactly as at server start (exit 0) or refuses it with its message
// (exit 1). It runs as the OS user when ramd runs as root (postgres refuses root), through
// the Instance's one command helper. It implements params.Binary. Safe for concurrent use.
type Oracle struct {
	inst *Instance
	base string
}

// NewOracle prepares the scratch directory for the binaries in cfg.BinDir (or the default
// BinDir) run as cfg.OSUser. Close removes it.
func NewOracle(cfg Config, logger *slog.Logger) (*Oracle, error) {
	base, err := scratchBase("ramd-oracle-")
	if err != nil {
		return nil, err
	}
	o, err := newOracle(base, cfg, logger)
	if err != nil {
		_ = os.RemoveAll(base)
		return nil, err
	}
	return o, nil
}

func newOracle(base string, cfg Config, logger *slog.Logger) (*Oracle, error) {
	inst, err := New(Config{BinDir: cfg.BinDir, OSUser: cfg.OSUser, DataDir: filepath.Join(base, "conf"),
		SocketDir: SocketDirNone}, logger)
	if err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	if _, err := inst.prepareDataDir(); err != nil {
		return nil, fmt.Errorf("oracle: %w", err)
	}
	for _, name := range []string{"postgresql.conf", "postgresql.auto.conf"} {
		path := filepath.Join(inst.cfg.DataDir, name)
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			return nil, fmt.Errorf("oracle: %w", err)
		}
		if err := inst.chown(path); err != nil {
			return nil, fmt.Errorf("oracle: %w", err)
		}
	}
	return &Oracle{inst: inst, base: base}, nil
}

// Close removes the scratch directory.
func (o *Oracle) Close() error { return os.RemoveAll(o.base) }

// BinDir returns the directory of the binary the oracle asks.
func (o *Oracle) BinDir() string { return o.inst.cfg.BinDir }

// VersionNum returns the binary's server_version_num (implements params.Binary).
func (o *Oracle) VersionNum(ctx context.Context) (int, error) {
	ok, out, err := o.show(ctx, "server_version_num", nil)
	if err != nil {
		return 0, err
	}
	n, cerr := strconv.Atoi(out)
	if !ok || cerr != nil {
		return 0, fmt.Errorf("postgres -C server_version_num: %q", out)
	}
	return n, nil
}

// Probe reports whether the binary accepts name=value, with the value it shows (-C name)
// or its error message (implements params.Binary).
func (o *Oracle) Probe(ctx context.Context, name, value string) (bool, string, error) {
	return o.show(ctx, name, []string{name + "=" + value})
}

// ProbeAll reports whether the binary accepts every assignment ("name=value") given in
// one command line, in order; out is the first refusal's message. Each -c is parsed and
// checked as it comes, so one call vouches for all of them when it succeeds.
func (o *Oracle) ProbeAll(ctx context.Context, assignments []string) (bool, string, error) {
	return o.show(ctx, "server_version_num", assignments)
}

// show runs postgres -C name with a -c per assignment. Exit 0: (true, the shown value);
// exit 1: (false, the FATAL message and HINT); anything else is an error.
func (o *Oracle) show(ctx context.Context, name string, assignments []string) (bool, string, error) {
	args := []string{"-D", o.inst.cfg.DataDir, "-C", name}
	for _, a := range assignments {
		args = append(args, "-c", a)
	}
	out, err := o.inst.run(ctx, "postgres", args)
	if err == nil {
		return true, strings.TrimSpace(out), nil
	}
	var ce *CommandError
	if errors.As(err, &ce) && ce.ExitCode == 1 && ctx.Err() == nil {
		return false, serverMessage(out), nil
	}
	return false, "", err
}

// serverMessage extracts "message (HINT: hint)" from postgres's stderr lines such as
// "2026-01-01 00:00:00.000 GMT [123] FATAL:  invalid value ...".
func serverMessage(out string) string {
	var msg, hint string
	for _, line := range strings.Split(out, "\n") {
		for _, tag := range []string{"FATAL:  ", "ERROR:  ", "HINT:  "} {
			if _, after, ok := strings.Cut(line, tag); ok {
				if tag == "HINT:  " {
					hint = after
				} else if msg == "" {
					msg = after
				}
			}
		}
	}
	switch {
	case msg == "":
		return strings.TrimSpace(out)
	case hint != "":
		return msg + " (HINT: " + hint + ")"
	}
	return msg
}

// FileSettingErrors lists the settings of the configuration files the server could not
// apply on its last reload (pg_file_settings.error), as "name=setting (file:line): error".
func (i *Instance) FileSettingErrors(ctx context.Context) ([]string, error) {
	conn, err := i.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("read pg_file_settings: %w", err)
	}
	defer conn.Release()
	// A postmaster setting changed in the file also reads "setting could not be applied"
	// until the restart; pg_settings.pending_restart tells those apart.
	rows, err := conn.Query(ctx, `SELECT coalesce(f.name, ''), coalesce(f.setting, ''), coalesce(f.sourcefile, ''), coalesce(f.sourceline, 0), f.error
		FROM pg_file_settings f LEFT JOIN pg_settings s ON s.name = f.name
		WHERE f.error IS NOT NULL AND NOT coalesce(s.pending_restart, false) ORDER BY f.seqno`)
	if err != nil {
		return nil, fmt.Errorf("read pg_file_settings: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name, setting, file, msg string
		var line int
		if err := rows.Scan(&name, &setting, &file, &line, &msg); err != nil {
			return nil, fmt.Errorf("read pg_file_settings: %w", err)
		}
		out = append(out, fmt.Sprintf("%s=%s (%s:%d): %s", name, setting, file, line, msg))
	}
	return out, rows.Err()
}
