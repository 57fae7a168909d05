package params_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/ramd-project/ramd/daemon/params"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// The catalog of the installed server and its oracle are built once per test binary: an
// initdb, a short-lived server and the enum alias probes take a few seconds.
var real struct {
	once    sync.Once
	cat     *params.Catalog
	oracle  *pg.Oracle
	err     error
	elapsed time.Duration
	cache   string // cache directory the catalog was stored in
}

// buildTimeout bounds the catalog build (initdb, start, read, stop, alias probes).
const buildTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	code := m.Run()
	if real.oracle != nil {
		_ = real.oracle.Close()
	}
	if real.cache != "" {
		_ = os.RemoveAll(real.cache)
	}
	os.Exit(code)
}

// realCatalog returns the catalog of the installed PostgreSQL (testenv.PGBinDir) and an
// oracle on the same binary; it skips (or fails under RAMD_TEST_REQUIRE_REAL=1) without
// binaries.
func realCatalog(t *testing.T) (*params.Catalog, *pg.Oracle) {
	t.Helper()
	bin := testenv.PGBinDir(t)
	real.once.Do(func() {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
		defer cancel()
		cfg := pg.Config{BinDir: bin}
		logger := slog.New(slog.DiscardHandler)
		o, err := pg.NewOracle(cfg, logger)
		if err != nil {
			real.err = err
			return
		}
		real.oracle = o
		cacheDir, err := os.MkdirTemp("", "ramd-params-cache-")
		if err != nil {
			real.err = err
			return
		}
		real.cache = cacheDir
		real.cat, real.err = params.LoadCatalog(ctx, o, pg.ScratchReader{Config: cfg, Logger: logger}, cacheDir)
		real.elapsed = time.Since(start)
	})
	if real.err != nil {
		t.Fatalf("build catalog of %s: %v", bin, real.err)
	}
	return real.cat, real.oracle
}

// noServer is a SettingsReader with no server behind it: reading must not be needed.
type noServer struct{}

func (noServer) ReadSettings(context.Context) (int, []params.Row, error) {
	return 0, nil, errors.New("no server: the catalog should have come from the cache")
}

// TestCatalogFromInstalledServer: the catalog has the installed version's parameters with
// their units, ranges and enum values, and a second load comes from the cache.
func TestCatalogFromInstalledServer(t *testing.T) {
	t.Parallel()
	cat, oracle := realCatalog(t)
	t.Logf("catalog of %d: %d parameters, built in %s", cat.VersionNum, len(cat.Params), real.elapsed)
	ver, err := oracle.VersionNum(t.Context())
	if err != nil || ver != cat.VersionNum || cat.Major() < 13 {
		t.Fatalf("VersionNum = %d, %v; catalog %d", ver, err, cat.VersionNum)
	}
	wm, ok := cat.Lookup("work_mem")
	if !ok || wm.Unit != "kB" || wm.Type != params.TypeInteger || wm.Min != 64 || wm.Max != 2147483647 || wm.Context != params.ContextUser {
		t.Errorf("work_mem = %+v", wm)
	}
	sb, _ := cat.Lookup("shared_buffers")
	if sb.Unit != "8kB" || !sb.RestartNeeded() {
		t.Errorf("shared_buffers = %+v", sb)
	}
	wl, _ := cat.Lookup("wal_level")
	if !slices.Equal(wl.EnumVals, []string{"minimal", "replica", "logical"}) || wl.EnumAliases["hot_standby"] != "replica" {
		t.Errorf("wal_level = %+v", wl)
	}
	again, err := params.LoadCatalog(t.Context(), oracle, noServer{}, real.cache)
	if err != nil {
		t.Fatalf("LoadCatalog from cache: %v", err)
	}
	if d := cmp.Diff(cat, again, cmpopts.IgnoreUnexported(params.Catalog{}, params.Param{})); d != "" {
		t.Errorf("cached catalog differs (-built +cached):\n%s", d)
	}
}
