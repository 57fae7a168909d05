package pg

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Restores by a backup tool into the data directory: ramd prepares the directory, the tool
// fills it, and ramd takes the configuration back (the tools write their own recovery
// settings, and a copy carries its source's ramd.conf).

// PrepareRestore makes sure the data directory exists, is empty, belongs to the OS user
// with mode 0700, and can be reached. It reports whether it created the directory (for
// AbortRestore).
func (i *Instance) PrepareRestore() (created bool, err error) {
	if i.Running() {
		return false, fmt.Errorf("prepare restore: %w", ErrRunning)
	}
	created, err = i.prepareDataDir()
	if err != nil {
		return false, fmt.Errorf("prepare restore: %w", err)
	}
	return created, nil
}

// AbortRestore removes what a failed restore left (the directory itself when
// PrepareRestore created it).
func (i *Instance) AbortRestore(created bool) error {
	if err := i.clearDataDir(created); err != nil {
		return fmt.Errorf("remove a partial restore: %w", err)
	}
	return nil
}

// recoveryKeys are the settings a backup tool may write into postgresql.auto.conf for its
// recovery; ramd sets its own (restore_command, archive_command, primary_conninfo) in
// ramd.conf, and postgresql.auto.conf would override them for good.
var recoveryKeys = []string{"restore_command", "archive_command", "archive_mode", "primary_conninfo", "primary_slot_name",
	"recovery_target", "recovery_target_action", "recovery_target_inclusive", "recovery_target_lsn",
	"recovery_target_name", "recovery_target_time", "recovery_target_xid", "recovery_target_timeline",
	"recovery_end_command", "archive_cleanup_command"}

// FinishRestore prepares a restored copy for ramd: the source's ramd.conf is removed (Start
// refuses to run until WriteConfig wrote this node's own), and, unless keepRecovery, the
// tool's recovery settings are taken out of postgresql.auto.conf. A point-in-time restore
// keeps them for its recovery (keepRecovery) and calls ClearRecoverySettings once it is over.
// It returns the settings it removed.
func (i *Instance) FinishRestore(keepRecovery bool) ([]string, error) {
	if err := os.Remove(filepath.Join(i.cfg.DataDir, ramdConf)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("finish restore: remove the copied %s: %w", ramdConf, err)
	}
	if keepRecovery {
		return nil, nil
	}
	return i.ClearRecoverySettings()
}

// ClearRecoverySettings removes the recovery settings a backup tool wrote into
// postgresql.auto.conf (see recoveryKeys), keeping every other line. The server reads the
// file at its next reload or start. It returns the names it removed.
func (i *Instance) ClearRecoverySettings() ([]string, error) {
	path := filepath.Join(i.cfg.DataDir, "postgresql.auto.conf")
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read postgresql.auto.conf: %w", err)
	}
	kept, removed := withoutSettings(old, recoveryKeys)
	if len(removed) == 0 {
		return nil, nil
	}
	if err := i.writeFileAtomic(path, kept, 0o600); err != nil {
		return nil, fmt.Errorf("rewrite postgresql.auto.conf: %w", err)
	}
	return removed, nil
}

// withoutSettings drops the lines of a configuration file that set one of names.
func withoutSettings(b []byte, names []string) (kept []byte, removed []string) {
	drop := map[string]bool{}
	for _, n := range names {
		drop[n] = true
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name, _, ok := strings.Cut(strings.TrimSpace(line), "=")
		name = strings.ToLower(strings.TrimSpace(name))
		if ok && drop[name] {
			removed = append(removed, name)
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), removed
}

// asideSuffix names the copy of the data directory an in-place restore keeps until the
// restored server promoted: beside the data directory, never inside it.
const asideSuffix = ".pre-restore"

// AsideDir is where MoveAside puts the data directory.
func (i *Instance) AsideDir() string {
	return filepath.Join(filepath.Dir(i.cfg.DataDir), filepath.Base(i.cfg.DataDir)+asideSuffix)
}

// ErrAsideExists is returned by MoveAside when a previous in-place restore left its copy of
// the data directory: ramd never removes it without the operator.
var ErrAsideExists = errors.New("pg: a copy of the data directory from a previous restore exists")

// MoveAside renames the stopped server's data directory to AsideDir (an in-place restore
// fills an empty directory and can give the old one back when it fails). It keeps the
// content of ramd.conf, the settings in force, for RestoreConfig.
func (i *Instance) MoveAside() (conf []byte, err error) {
	if i.Running() {
		return nil, fmt.Errorf("move the data directory aside: %w", ErrRunning)
	}
	aside := i.AsideDir()
	if _, err := os.Lstat(aside); err == nil {
		return nil, fmt.Errorf("move the data directory aside: %w: %s", ErrAsideExists, aside)
	}
	conf, err = os.ReadFile(filepath.Join(i.cfg.DataDir, ramdConf))
	if err != nil {
		return nil, fmt.Errorf("read the settings in force: %w", err)
	}
	if err := os.Rename(i.cfg.DataDir, aside); err != nil {
		return nil, fmt.Errorf("move the data directory aside: %w", err)
	}
	return conf, nil
}

// PutBack removes what a failed restore left in the data directory and renames AsideDir
// back into its place.
func (i *Instance) PutBack() error {
	if i.Running() {
		return fmt.Errorf("put the data directory back: %w", ErrRunning)
	}
	if err := os.RemoveAll(i.cfg.DataDir); err != nil {
		return fmt.Errorf("remove the partial restore: %w", err)
	}
	if err := os.Rename(i.AsideDir(), i.cfg.DataDir); err != nil {
		return fmt.Errorf("put the data directory back: %w", err)
	}
	return nil
}

// DropAside removes AsideDir once the restored server runs on its new timeline.
func (i *Instance) DropAside() error {
	if err := os.RemoveAll(i.AsideDir()); err != nil {
		return fmt.Errorf("remove the data directory kept aside: %w", err)
	}
	return nil
}

// RestoreConfig writes conf (from MoveAside) as the restored copy's ramd.conf: the copy
// starts with the settings that were in force, not those of the backup's time.
func (i *Instance) RestoreConfig(conf []byte) error {
	if err := i.writeFileAtomic(filepath.Join(i.cfg.DataDir, ramdConf), conf, 0o600); err != nil {
		return fmt.Errorf("write the settings in force into the restored copy: %w", err)
	}
	return nil
}
