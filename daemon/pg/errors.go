package pg

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors of package pg. Callers test them with errors.Is.
var (
	// ErrInvalidConfig wraps every field-level message returned by Config.Validate.
	ErrInvalidConfig = errors.New("pg: invalid config")
	// ErrBinariesNotFound is returned by New when no PostgreSQL server binaries can be found.
	ErrBinariesNotFound = errors.New("pg: postgresql binaries not found")
	// ErrOSUser is returned by New when ramd runs as root and the OS user cannot be resolved
	// or is root itself.
	ErrOSUser = errors.New("pg: unusable os user")
	// ErrUnsupportedVersion is returned for PostgreSQL major versions older than 13.
	ErrUnsupportedVersion = errors.New("pg: unsupported postgresql version")
	// ErrInvalidLSN is returned by ParseLSN for text that is not an LSN.
	ErrInvalidLSN = errors.New("pg: invalid lsn")
	// ErrInvalidSlotName is returned for a replication slot name outside [a-z0-9_]{1,63}.
	ErrInvalidSlotName = errors.New("pg: invalid replication slot name")
	// ErrInvalidParameter is returned by WriteConfig for a parameter name that is not a GUC name.
	ErrInvalidParameter = errors.New("pg: invalid parameter name")
	// ErrDataDirNotEmpty is returned by Initdb and Basebackup when the data directory holds files.
	ErrDataDirNotEmpty = errors.New("pg: data directory is not empty")
	// ErrNotInitialized is returned when the data directory holds no cluster (no PG_VERSION).
	ErrNotInitialized = errors.New("pg: data directory is not initialized")
	// ErrNotConfigured is returned by Start when ramd.conf is missing: call WriteConfig first.
	ErrNotConfigured = errors.New("pg: ramd.conf missing")
	// ErrRunning is returned by operations that need a stopped server (Basebackup, Rewind).
	ErrRunning = errors.New("pg: server is running")
	// ErrNotRunning is returned by operations that need a running server.
	ErrNotRunning = errors.New("pg: server is not running")
	// ErrNotReady is returned when the server runs but does not accept connections yet
	// (SQLSTATE 57P03: starting up, shutting down, or a standby before consistency).
	ErrNotReady = errors.New("pg: server not accepting connections")
	// ErrStartFailed is returned by Start when the postmaster exits before accepting
	// connections; the error text carries the tail of the log file.
	ErrStartFailed = errors.New("pg: postmaster exited during start")
	// ErrOrphans is returned by Start when processes of a dead postmaster still run on the
	// data directory (they keep the old shared memory attached).
	ErrOrphans = errors.New("pg: processes of a dead postmaster still running")
	// ErrInRecovery is returned by primary-only operations on a server in recovery.
	ErrInRecovery = errors.New("pg: server is in recovery")
	// ErrNotInRecovery is returned by standby-only operations on a primary.
	ErrNotInRecovery = errors.New("pg: server is not in recovery")
	// ErrReplayPaused is returned by WaitReplayed when WAL replay is paused.
	ErrReplayPaused = errors.New("pg: wal replay is paused")
	// ErrPromoteFailed is returned by Promote when the server is still in recovery afterwards.
	ErrPromoteFailed = errors.New("pg: promote did not complete")
	// ErrSlotActive is returned by DropSlot for a slot that a walsender is using.
	ErrSlotActive = errors.New("pg: replication slot is active")
	// ErrRewindFailed is returned by Rewind; it wraps the *CommandError with the exit code
	// and the output tail.
	ErrRewindFailed = errors.New("pg: pg_rewind failed")
	// ErrRewindSourceNotReady is returned by Rewind, before pg_rewind runs, when the
	// source's checkpoint failed: its pg_control may still name its timeline before the
	// promotion, and pg_rewind trusts it. Nothing was changed; try again.
	ErrRewindSourceNotReady = errors.New("pg: the pg_rewind source did not checkpoint")
	// ErrBasebackupFailed is returned by Basebackup; it wraps the *CommandError.
	ErrBasebackupFailed = errors.New("pg: pg_basebackup failed")
)

// CommandError is returned by every external command that fails: it names the program and
// carries its exit code (-1 when it did not exit normally) and the tail of its combined
// output.
type CommandError struct {
	Cmd      string // program base name, e.g. "pg_rewind"
	ExitCode int
	Output   string // last lines of stdout+stderr
	Err      error  // from os/exec, or the context error when cancelled
}

// Error implements error.
func (e *CommandError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %s: exit code %d: %v", e.Cmd, e.ExitCode, e.Err)
	if out := strings.TrimSpace(e.Output); out != "" {
		b.WriteString(": ")
		b.WriteString(out)
	}
	return b.String()
}

// Unwrap returns the underlying error, so errors.Is(err, context.DeadlineExceeded) works.
func (e *CommandError) Unwrap() error { return e.Err }
