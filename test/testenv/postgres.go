package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// pgBinPattern is the Debian/Ubuntu layout of versioned PostgreSQL server binaries.
const pgBinPattern = "/usr/lib/postgresql/*/bin"

// pgBins are the programs the tests need from one directory.
var pgBins = []string{"postgres", "initdb", "pg_basebackup", "pg_rewind", "pg_controldata"}

// PGBinDir returns the directory holding the PostgreSQL server binaries (postgres, initdb,
// pg_basebackup, pg_rewind, pg_controldata): $RAMD_PG_BIN_DIR, else the directory of
// initdb on PATH (or of its symlink target, as PATH often holds only a few links), else the
// highest /usr/lib/postgresql/<N>/bin. When none holds them all the test is skipped (or
// fails under RAMD_TEST_REQUIRE_REAL=1).
func PGBinDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("RAMD_PG_BIN_DIR"); dir != "" {
		if !hasPGBins(dir) {
			t.Fatalf("RAMD_PG_BIN_DIR=%s lacks one of %v", dir, pgBins)
		}
		return dir
	}
	var candidates []string
	if p, err := exec.LookPath("initdb"); err == nil {
		if abs, err := filepath.Abs(p); err == nil {
			candidates = append(candidates, filepath.Dir(abs))
			if real, err := filepath.EvalSymlinks(abs); err == nil {
				candidates = append(candidates, filepath.Dir(real))
			}
		}
	}
	best, bestV := "", -1
	matches, _ := filepath.Glob(pgBinPattern)
	for _, m := range matches {
		v, err := strconv.Atoi(filepath.Base(filepath.Dir(m)))
		if err == nil && v > bestV && hasPGBins(m) {
			best, bestV = m, v
		}
	}
	if best != "" {
		candidates = append(candidates, best)
	}
	for _, c := range candidates {
		if hasPGBins(c) {
			return c
		}
	}
	Missing(t, "PostgreSQL server binaries %v not found (RAMD_PG_BIN_DIR unset, not next to initdb on PATH, not in %s)", pgBins, pgBinPattern)
	return ""
}

func hasPGBins(dir string) bool {
	for _, b := range pgBins {
		st, err := os.Stat(filepath.Join(dir, b))
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// DataDir returns a fresh absolute path for a PostgreSQL data directory named name that
// does not exist yet (initdb and pg_basebackup create it). Its parent is a new short
// directory under os.TempDir() with mode 0711, so the unprivileged OS user PostgreSQL runs
// as (when tests run as root) can reach it, and short enough for unix socket paths. The
// parent is removed in t.Cleanup, after the cleanups registered later (such as stopping
// the server) have run.
func DataDir(t testing.TB, name string) string {
	t.Helper()
	if name == "" || strings.ContainsAny(name, `/\`) {
		t.Fatalf("DataDir: invalid name %q", name)
	}
	base, err := os.MkdirTemp("", "ramd-pg-")
	if err != nil {
		t.Fatalf("DataDir: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(base); err != nil {
			t.Errorf("DataDir: remove %s: %v", base, err)
		}
	})
	if err := os.Chmod(base, 0o711); err != nil {
		t.Fatalf("DataDir: %v", err)
	}
	abs, err := filepath.Abs(base)
	if err != nil {
		t.Fatalf("DataDir: %v", err)
	}
	return filepath.Join(abs, name)
}
