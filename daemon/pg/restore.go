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
