package pg

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// WAL archiving around role changes. PostgreSQL marks every segment a standby streamed as
// archived (.done) when archive_mode is on, so a segment the old primary never archived is
// lost at failover unless the candidate queues it again before it promotes: the
// end-of-recovery checkpoint recycles it right after the promotion. A former primary, for
// its part, may hold segments still waiting (.ready) that pg_rewind would throw away.

var (
	walSegmentRe = regexp.MustCompile(`^[0-9A-F]{24}$`)
	walHistoryRe = regexp.MustCompile(`^[0-9A-F]{8}\.history$`)
)

// IsWALSegment reports whether name is a complete WAL segment's file name.
func IsWALSegment(name string) bool { return walSegmentRe.MatchString(name) }

func (i *Instance) archiveStatusDir() string {
	return filepath.Join(i.cfg.DataDir, "pg_wal", "archive_status")
}

// RequeueStreamedWAL turns the segments this standby holds as archived (.done) back into
// archive work (.ready), so that the archiver pushes them once the server is promoted. Only
// complete segments still in pg_wal and named after `after` are requeued ("" requeues every
// one): after is the last segment the old primary reported as archived, so the archive
// receives what it lacks and little twice. It must run before the promotion. It returns the
// requeued segments, sorted.
func (i *Instance) RequeueStreamedWAL(after string) ([]string, error) {
	dir := i.archiveStatusDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("requeue streamed wal: %w", err)
	}
	var names []string
	for _, e := range entries {
		seg, ok := strings.CutSuffix(e.Name(), ".done")
		if !ok || !requeue(seg, after) {
			continue
		}
		if _, err := os.Stat(filepath.Join(i.cfg.DataDir, "pg_wal", seg)); err != nil {
			continue // recycled already, or never complete here
		}
		if err := os.Rename(filepath.Join(dir, e.Name()), filepath.Join(dir, seg+".ready")); err != nil {
			return names, fmt.Errorf("requeue %s: %w", seg, err)
		}
		names = append(names, seg)
	}
	slices.Sort(names)
	return names, nil
}

// requeue is the rule of RequeueStreamedWAL: a complete segment named after `after`.
// Segment names order by timeline, then position, so a segment of the old primary's timeline
// past its last archived one sorts after it.
func requeue(seg, after string) bool {
	if len(after) > 24 && IsWALSegment(after[:24]) {
		// A backup history file (<segment>.<offset>.backup) or a .partial segment: the
		// segment it names is the last one known archived, or precedes it.
		after = after[:24]
	}
	return IsWALSegment(seg) && (after == "" || !IsWALSegment(after) || seg > after)
}

// ReadyWAL lists the files waiting for the archiver (.ready), history files first, then
// segments in order: the order PostgreSQL's archiver uses.
func (i *Instance) ReadyWAL() ([]string, error) {
	entries, err := os.ReadDir(i.archiveStatusDir())
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read archive status: %w", err)
	}
	var out []string
	for _, e := range entries {
		if name, ok := strings.CutSuffix(e.Name(), ".ready"); ok && (IsWALSegment(name) || walHistoryRe.MatchString(name) || strings.HasSuffix(name, ".backup") || strings.HasSuffix(name, ".partial")) {
			out = append(out, name)
		}
	}
	slices.SortFunc(out, func(a, b string) int {
		ha, hb := strings.HasSuffix(a, ".history"), strings.HasSuffix(b, ".history")
		switch {
		case ha && !hb:
			return -1
		case hb && !ha:
			return 1
		}
		return strings.Compare(a, b)
	})
	return out, nil
}

// DrainArchiveQueue archives the files waiting in the archive queue of a stopped server with
// command (an archive_command), in the archiver's order, and marks each done: what a former
// primary must do before pg_rewind discards its WAL. It stops at the first failure, which it
// returns with the number archived so far. ctx bounds the whole drain.
func (i *Instance) DrainArchiveQueue(ctx context.Context, command string) (int, error) {
	if i.Running() {
		return 0, errors.New("drain archive queue: the server is running (its archiver does this)")
	}
	files, err := i.ReadyWAL()
	if err != nil {
		return 0, err
	}
	done := 0
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return done, fmt.Errorf("drain archive queue: %w", err)
		}
		line := ExpandArchiveCommand(command, filepath.Join("pg_wal", f), f)
		if _, err := i.RunProgram(ctx, Program{Path: "/bin/sh", Args: []string{"-c", line}, Dir: i.cfg.DataDir}); err != nil {
			return done, fmt.Errorf("archive %s: %w", f, err)
		}
		dir := i.archiveStatusDir()
		if err := os.Rename(filepath.Join(dir, f+".ready"), filepath.Join(dir, f+".done")); err != nil {
			return done, fmt.Errorf("mark %s archived: %w", f, err)
		}
		done++
	}
	return done, nil
}

// ExpandArchiveCommand replaces %p, %f and %% in an archive_command as PostgreSQL does;
// any other %x is kept as it is.
func ExpandArchiveCommand(command, path, file string) string {
	var b strings.Builder
	for k := 0; k < len(command); k++ {
		c := command[k]
		if c != '%' || k+1 == len(command) {
			b.WriteByte(c)
			continue
		}
		switch command[k+1] {
		case 'p':
			b.WriteString(path)
		case 'f':
			b.WriteString(file)
		case '%':
			b.WriteByte('%')
		default:
			b.WriteByte(c)
			continue
		}
		k++
	}
	return b.String()
}
