package daemon

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ramd-project/ramd/daemon/pg"
)

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
