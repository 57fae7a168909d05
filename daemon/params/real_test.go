package params_test

import (
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

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
}

// buildTimeout bounds the catalog build (initdb, start, read, stop, alias probes).
const buildTimeout = 2 * time.Minute

func TestMain(m *testing.M) {
	code := m.Run()
	if real.oracle != nil {
		_ = real.oracle.Close()
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
		defer os.RemoveAll(cacheDir)
		real.cat, real.err = params.LoadCatalog(ctx, o, pg.ScratchReader{Config: cfg, Logger: logger}, cacheDir)
		real.elapsed = time.Since(start)
	})
	if real.err != nil {
		t.Fatalf("build catalog of %s: %v", bin, real.err)
	}
	return real.cat, real.oracle
}

func TestCatalogFromInstalledServer(t *testing.T) {
	t.Parallel()
	cat, _ := realCatalog(t)
	t.Logf("catalog of %d: %d parameters, built in %s", cat.VersionNum, len(cat.Params), real.elapsed)
	for _, p := range cat.Params {
		if len(p.EnumAliases) > 0 {
			t.Logf("%s aliases %v", p.Name, p.EnumAliases)
		}
	}
}
