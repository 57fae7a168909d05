package daemon

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/pg"
)

func TestParsePostgresVersion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"15", 150000, true},
		{"15.4", 150004, true},
		{"13.16", 130016, true},
		{"9.6.3", 90603, true},
		{"9.6", 90600, true},
		{"150004", 150004, true},
		{" 16.1 ", 160001, true},
		{"fifteen", 0, false},
		{"15.4.1", 0, false},
		{"", 0, false},
		{"-1", 0, false},
		{"9", 0, false},
	}
	for _, tt := range tests {
		got, err := ParsePostgresVersion(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParsePostgresVersion(%q) = %d, %v; want %d, ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestRestartMismatch(t *testing.T) {
	t.Parallel()
	primary := &Status{Role: RolePrimary, ServerVersion: 150004, PendingRestart: true}
	replica := &Status{Role: RoleReplica, ServerVersion: 150004}
	tests := []struct {
		name string
		r    RestartRequest
		st   *Status
		want string
	}{
		{"no filters", RestartRequest{}, replica, ""},
		{"role matches", RestartRequest{Role: "primary"}, primary, ""},
		{"master is primary", RestartRequest{Role: "master"}, primary, ""},
		{"role differs", RestartRequest{Role: "replica"}, primary, "host role mismatch"},
		{"newer version wanted", RestartRequest{PostgresVersion: 150005}, primary, ""},
		{"same version", RestartRequest{PostgresVersion: 150004}, primary, "postgres version mismatch"},
		{"older version", RestartRequest{PostgresVersion: 130000}, primary, "postgres version mismatch"},
		{"pending wanted and set", RestartRequest{RestartPending: true}, primary, ""},
		{"pending wanted, not set", RestartRequest{RestartPending: true}, replica, "pending restart flag is not set"},
	}
	for _, tt := range tests {
		if got := restartMismatch(tt.r, tt.st); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestPrimaryFirst(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pending map[string]PendingChange
		want    bool
	}{
		{"nothing pending", nil, false},
		{"max_connections raised", map[string]PendingChange{"max_connections": {OldValue: "100", NewValue: "200"}}, false},
		{"max_connections lowered", map[string]PendingChange{"max_connections": {OldValue: "200", NewValue: "100"}}, true},
		{"max_locks_per_transaction lowered", map[string]PendingChange{"max_locks_per_transaction": {OldValue: "128", NewValue: "64"}}, true},
		{"shared_buffers lowered", map[string]PendingChange{"shared_buffers": {OldValue: "32768", NewValue: "16384"}}, false},
		{"one raised, one lowered", map[string]PendingChange{"max_connections": {OldValue: "100", NewValue: "200"}, "max_wal_senders": {OldValue: "10", NewValue: "8"}}, true},
		{"unreadable values", map[string]PendingChange{"max_connections": {OldValue: "many", NewValue: "100"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, why := primaryFirst(tt.pending); got != tt.want || (got && why == "") {
				t.Errorf("primaryFirst = %v %q, want %v", got, why, tt.want)
			}
		})
	}
}

// TestWasPrimary: the pg_control states of a primary's data directory, crash recovery
// included, against a standby's.
func TestWasPrimary(t *testing.T) {
	t.Parallel()
	for state, want := range map[string]bool{
		"in production":         true,
		"shut down":             true,
		"shutting down":         true,
		"in crash recovery":     true,
		"in archive recovery":   false,
		"shut down in recovery": false,
		"starting up":           false,
		"":                      false,
	} {
		if got := wasPrimary(state); got != want {
			t.Errorf("wasPrimary(%q) = %v, want %v", state, got, want)
		}
	}
}

// TestRewindAgain: a pg_rewind that failed before its copy runs again, a bounded number of
// times with a growing wait; one that may have changed the data directory never does.
func TestRewindAgain(t *testing.T) {
	t.Parallel()
	early := "pg_rewind: servers diverged at WAL location 0/5000060 on timeline 2\n" +
		"pg_rewind: rewinding from last common checkpoint at 0/4000060 on timeline 2\n" +
		"pg_rewind: reading source file list\n" +
		"pg_rewind: error: could not fetch file list: server closed the connection unexpectedly"
	copying := "pg_rewind: reading WAL in target\n" +
		"pg_rewind: need to copy 52 MB (total source directory size is 70 MB)\n" +
		"pg_rewind: error: could not fetch remote file \"base/5/16384\": server closed the connection unexpectedly"
	progress := "    0/53248 kB (0%) copied\n" +
		"pg_rewind: error: could not fetch remote file \"base/5/16384\": server closed the connection unexpectedly"
	cut := "...\n" + "pg_rewind: error: could not fetch file list: server closed the connection unexpectedly"
	rewindErr := func(out string) error {
		return fmt.Errorf("rewind: %w: %w", pg.ErrRewindFailed, &pg.CommandError{Cmd: "pg_rewind", ExitCode: 1, Output: out})
	}
	tests := []struct {
		name    string
		err     error
		retries int
		wait    time.Duration
		again   bool
	}{
		{"failed reading the file lists", rewindErr(early), 0, rewindBackoff, true},
		{"the wait grows", rewindErr(early), 2, 3 * rewindBackoff, true},
		{"the last retry", rewindErr(early), maxRewindRetries - 1, maxRewindRetries * rewindBackoff, true},
		{"retries used up", rewindErr(early), maxRewindRetries, 0, false},
		{"failed after the copy began", rewindErr(copying), 0, 0, false},
		{"failed while copying", rewindErr(progress), 0, 0, false},
		{"output cut: may have copied", rewindErr(cut), 0, 0, false},
		{"not pg_rewind's own failure", errors.New("plain"), 0, 0, false},
		{"another program", &pg.CommandError{Cmd: "pg_ctl", ExitCode: 1, Output: "stopped"}, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			wait, again := rewindAgain(tt.err, tt.retries)
			if wait != tt.wait || again != tt.again {
				t.Errorf("rewindAgain = %s, %v; want %s, %v", wait, again, tt.wait, tt.again)
			}
		})
	}
}

func TestSourceUnreachable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		out  string
		want bool
	}{
		{`pg_rewind: error: connection to server at "127.0.0.1", port 30527 failed: Connection refused`, true},
		{`pg_rewind: fatal: could not connect to server: Connection refused`, true},
		{`pg_rewind: error: could not find common ancestor of the source and target cluster's timelines`, false},
		{`pg_rewind: error: target server must be shut down cleanly`, false},
	}
	for _, tt := range tests {
		err := fmt.Errorf("rewind: %w", &pg.CommandError{Cmd: "pg_rewind", ExitCode: 1, Output: tt.out})
		if got := sourceUnreachable(err); got != tt.want {
			t.Errorf("%q: %v, want %v", tt.out, got, tt.want)
		}
	}
	if sourceUnreachable(errors.New("plain")) {
		t.Error("a plain error is not a connection failure")
	}
}
