package pg_test

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/ramd-project/ramd/daemon/pg"
)

// walSegments counts the WAL segment files in dir.
func walSegments(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	seg := regexp.MustCompile(`^[0-9A-F]{24}$`)
	n := 0
	for _, e := range entries {
		if seg.MatchString(e.Name()) {
			n++
		}
	}
	return n
}

// checkWALLink fails unless the data directory's pg_wal is a link to walDir holding WAL.
func checkWALLink(t *testing.T, inst *pg.Instance) {
	t.Helper()
	cfg := inst.Config()
	link := filepath.Join(cfg.DataDir, "pg_wal")
	target, err := os.Readlink(link)
	if err != nil {
		t.Fatalf("%s is not a link: %v", link, err)
	}
	if filepath.Clean(target) != filepath.Clean(cfg.WALDir) {
		t.Errorf("%s links to %s, want %s", link, target, cfg.WALDir)
	}
	if n := walSegments(t, cfg.WALDir); n == 0 {
		t.Errorf("no WAL segment in %s", cfg.WALDir)
	}
}

// TestWALDir: with RAMD_PG_WAL_DIR, initdb and pg_basebackup put pg_wal there (a link in the
// data directory), the server writes its WAL there, a clone into a WAL directory holding a
// removed clone's WAL clears it first, and a WAL directory with other files is refused.
func TestWALDir(t *testing.T) {
	t.Parallel()
	logger := testLogger(t)
	withWAL := func(name string) func(*pg.Config) {
		return func(c *pg.Config) {
			c.WALDir = filepath.Join(filepath.Dir(c.DataDir), name+"-wal", "pg_wal")
			c.SuperuserPassword, c.ReplicationPassword = "su", "rep"
		}
	}
	a := newInstance(t, "a", logger.With("node", "a"), withWAL("a"))
	startPrimary(t, &a, logger)
	checkWALLink(t, a)
	if err := a.EnsureRoles(opCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(opCtx(t), "CREATE TABLE t (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(opCtx(t), "INSERT INTO t SELECT generate_series(1, 1000)"); err != nil {
		t.Fatal(err)
	}
	if err := a.Exec(opCtx(t), "SELECT pg_switch_wal()"); err != nil {
		t.Fatal(err)
	}

	// A clone whose WAL directory holds the WAL of a removed data directory (what a member
	// made anew finds on its WAL volume).
	b := newInstance(t, "b", logger.With("node", "b"), withWAL("b"))
	bWAL := b.Config().WALDir
	if err := os.MkdirAll(filepath.Join(bWAL, "archive_status"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bWAL, "000000010000000000000007"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Basebackup(opCtx(t), a.ReplicationConn(), ""); err != nil {
		t.Fatalf("Basebackup with a WAL directory: %v", err)
	}
	checkWALLink(t, b)
	if _, err := os.Stat(filepath.Join(bWAL, "000000010000000000000007")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the removed clone's segment is still in %s: %v", bWAL, err)
	}
	start(t, &b, logger, pg.Settings{Standby: true, PrimaryConnInfo: pg.PrimaryConnInfo(a.ReplicationConn(), "b")})
	waitStreaming(t, b, 1)
	waitCount(t, b, 1000)

	// Anything but WAL in the WAL directory: refused, nothing deleted.
	c := newInstance(t, "c", logger.With("node", "c"), withWAL("c"))
	cWAL := c.Config().WALDir
	if err := os.MkdirAll(cWAL, 0o700); err != nil {
		t.Fatal(err)
	}
	keep := filepath.Join(cWAL, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Initdb(opCtx(t)); !errors.Is(err, pg.ErrWALDirNotEmpty) {
		t.Errorf("Initdb with a foreign file in the WAL directory = %v; want ErrWALDirNotEmpty", err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the foreign file was touched: %v", err)
	}
}
