package pg

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TimelineSwitch is one line of a timeline history file: timeline Parent ended at LSN, where
// its child began.
type TimelineSwitch struct {
	Parent int
	LSN    LSN
}

// ErrBadHistory is returned for a timeline history file that cannot be parsed.
var ErrBadHistory = errors.New("malformed timeline history")

// ParseTimelineHistory parses a timeline history file (pg_wal/XXXXXXXX.history): one line per
// ancestor timeline, "<parent tli> <switch lsn> <reason>", separated by tabs or spaces;
// blank lines and lines starting with '#' are comments, as PostgreSQL reads them. Parents
// must be ascending.
func ParseTimelineHistory(text string) ([]TimelineSwitch, error) {
	var out []TimelineSwitch
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: line %d: %q", ErrBadHistory, i+1, line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil || tli == 0 {
			return nil, fmt.Errorf("%w: line %d: timeline %q", ErrBadHistory, i+1, f[0])
		}
		lsn, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %w", ErrBadHistory, i+1, err)
		}
		if n := len(out); n > 0 && int(tli) <= out[n-1].Parent {
			return nil, fmt.Errorf("%w: line %d: timeline %d after %d", ErrBadHistory, i+1, tli, out[n-1].Parent)
		}
		out = append(out, TimelineSwitch{Parent: int(tli), LSN: lsn})
	}
	return out, nil
}

// historyFile is the name of timeline tli's history file in pg_wal.
func historyFile(tli int) string { return fmt.Sprintf("pg_wal/%08X.history", tli) }

// PrimaryTimeline reads a primary's current timeline and that timeline's history (nil on
// timeline 1, which has none): what a standby compares its own position with to know
// whether it can still follow. The connection must be a superuser's (pg_read_file).
func PrimaryTimeline(ctx context.Context, p ConnParams) (int, []TimelineSwitch, error) {
	conn, err := connectTo(ctx, p)
	if err != nil {
		return 0, nil, err
	}
	defer closeConn(ctx, conn)
	var walfile string
	if err := conn.QueryRow(ctx, `SELECT pg_walfile_name(pg_current_wal_lsn())`).Scan(&walfile); err != nil {
		return 0, nil, fmt.Errorf("timeline of %s: %w", p, err)
	}
	if len(walfile) < 8 {
		return 0, nil, fmt.Errorf("timeline of %s: unexpected wal file name %q", p, walfile)
	}
	tli, err := strconv.ParseUint(walfile[:8], 16, 32)
	if err != nil {
		return 0, nil, fmt.Errorf("timeline of %s: wal file %q: %w", p, walfile, err)
	}
	if tli <= 1 {
		return int(tli), nil, nil
	}
	var text string
	if err := conn.QueryRow(ctx, `SELECT pg_read_file($1)`, historyFile(int(tli))).Scan(&text); err != nil {
		return 0, nil, fmt.Errorf("timeline history of %s: %w", p, err)
	}
	h, err := ParseTimelineHistory(text)
	if err != nil {
		return 0, nil, fmt.Errorf("timeline history of %s: %w", p, err)
	}
	return int(tli), h, nil
}
