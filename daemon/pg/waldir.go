package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// ErrWALDirNotEmpty is returned by Initdb and Basebackup when RAMD_PG_WAL_DIR holds files
// that are not WAL of a removed data directory.
var ErrWALDirNotEmpty = errors.New("pg: WAL directory is not empty")

// walLeftoverRe matches what a data directory's pg_wal holds: segments (and their partial
// and backup-history files), timeline history files, archive_status and PostgreSQL 17's
// summaries directory.
var walLeftoverRe = regexp.MustCompile(`^([0-9A-F]{24}(\.partial|\.[0-9A-F]{8}\.backup)?|[0-9A-F]{8}\.history|archive_status|summaries)$`)

// IsWALLeftover reports whether a file of the WAL directory is the WAL of a data directory
// (which ramd may clear when that data directory is made anew).
func IsWALLeftover(name string) bool { return walLeftoverRe.MatchString(name) }

// walDirArgs prepares RAMD_PG_WAL_DIR for a new data directory and returns the --waldir
// argument of initdb and pg_basebackup (none without a WAL directory). The directory is
// created when absent (0700, the OS user's); the WAL of a data directory that was removed
// (a failed clone, a member made anew) is cleared; anything else there is refused rather
// than deleted. It reports whether it created the directory.
func (i *Instance) walDirArgs(ctx context.Context) (args []string, created bool, err error) {
	dir := i.cfg.WALDir
	if dir == "" {
		return nil, false, nil
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, false, fmt.Errorf("create parent of WAL directory: %w", err)
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			return nil, false, fmt.Errorf("create WAL directory: %w", err)
		}
		created = true
	case err != nil:
		return nil, false, fmt.Errorf("read WAL directory: %w", err)
	}
	for _, e := range entries {
		if !IsWALLeftover(e.Name()) {
			return nil, false, fmt.Errorf("%w: %s holds %s", ErrWALDirNotEmpty, dir, e.Name())
		}
	}
	if len(entries) > 0 {
		i.logger.WarnContext(ctx, "clearing the WAL of a removed data directory", "wal_dir", dir, "entries", len(entries))
		if err := i.clearWALDir(false); err != nil {
			return nil, false, fmt.Errorf("clear WAL directory: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, created, fmt.Errorf("chmod WAL directory: %w", err)
	}
	if err := i.chown(dir); err != nil {
		return nil, created, err
	}
	if err := i.ensureTraversable(dir); err != nil {
		return nil, created, err
	}
	return []string{"--waldir=" + dir}, created, nil
}

// clearWALDir removes what a failed initdb or pg_basebackup left in the WAL directory: the
// directory itself when it was created for it, else its contents (it may be a mount point).
func (i *Instance) clearWALDir(created bool) error {
	dir := i.cfg.WALDir
	if dir == "" {
		return nil
	}
	if created {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, e.Name())))
	}
	return errors.Join(errs...)
}
