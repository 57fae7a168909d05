package params

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// SettingsReader reads the catalog rows of a server: its server_version_num and every row
// of pg_settings. daemon/pg implements it for a running server and for a throwaway one.
type SettingsReader interface {
	ReadSettings(ctx context.Context) (versionNum int, rows []Row, err error)
}

// Binary is an installed postgres binary, asked through `postgres -C` in a scratch
// directory (no server needed). daemon/pg implements it.
type Binary interface {
	// VersionNum returns the binary's server_version_num.
	VersionNum(ctx context.Context) (int, error)
	// Probe runs `postgres -C name -c name=value`: ok reports whether the server accepts
	// the value; out is the value it then shows, or its error message when it refuses.
	Probe(ctx context.Context, name, value string) (ok bool, out string, err error)
	// ProbeAll runs postgres with one -c per "name=value" assignment, in order: ok
	// reports whether it accepts all of them; out is the first refusal's message.
	ProbeAll(ctx context.Context, assignments []string) (ok bool, out string, err error)
}

// aliasCandidates are spellings some enums accept without listing them in pg_settings
// (boolean words, and old names kept for compatibility such as wal_level "hot_standby").
var aliasCandidates = []string{"on", "off", "true", "false", "yes", "no", "1", "0", "debug", "archive", "hot_standby"}

// probeParallel caps concurrent postgres -C calls while a catalog is built: each is a
// short process start, and the node's CPUs belong to the running server.
const probeParallel = 2

// DiscoverEnumAliases asks bin which unlisted spellings each settable enum of c accepts
// and records them in the catalog (Param.EnumAliases). c must not be in use yet.
func DiscoverEnumAliases(ctx context.Context, c *Catalog, bin Binary) error {
	type probe struct {
		k    int
		cand string
	}
	var probes []probe
	for k := range c.Params {
		p := &c.Params[k]
		if p.Type != TypeEnum || p.Context == ContextInternal {
			continue
		}
		for _, cand := range aliasCandidates {
			if _, listed := p.enumValue(cand); !listed {
				probes = append(probes, probe{k, cand})
			}
		}
	}
	shown := make([]string, len(probes))
	accepted := make([]bool, len(probes))
	errs := make([]error, len(probes))
	sem := make(chan struct{}, probeParallel)
	var wg sync.WaitGroup
	for n, pr := range probes {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			name := c.Params[pr.k].Name
			ok, out, err := bin.Probe(ctx, name, pr.cand)
			if err != nil {
				errs[n] = fmt.Errorf("probe %s=%s: %w", name, pr.cand, err)
			}
			accepted[n], shown[n] = ok, out
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for n, pr := range probes {
		if !accepted[n] {
			continue
		}
		p := &c.Params[pr.k]
		if p.EnumAliases == nil {
			p.EnumAliases = map[string]string{}
		}
		p.EnumAliases[pr.cand] = shown[n]
	}
	return nil
}

// DiscoverBoolLimits asks bin whether it accepts both on and off for every settable
// boolean of c and records the refusals (Param.Refused): some booleans are fixed by how the
// server was built (bonjour without Bonjour support, ssl without SSL). Values are checked
// in batches, each followed by the boot value, and a failing batch is split.
func DiscoverBoolLimits(ctx context.Context, c *Catalog, bin Binary) error {
	type probe struct {
		k   int
		val string
	}
	var all []probe
	for k, p := range c.Params {
		if p.Type == TypeBool && p.Context != ContextInternal {
			all = append(all, probe{k, "on"}, probe{k, "off"})
		}
	}
	var split func(ps []probe) error
	split = func(ps []probe) error {
		if len(ps) == 0 {
			return nil
		}
		p := &c.Params[ps[0].k]
		if len(ps) == 1 {
			ok, msg, err := bin.Probe(ctx, p.Name, ps[0].val)
			if err != nil {
				return fmt.Errorf("probe %s=%s: %w", p.Name, ps[0].val, err)
			}
			if !ok {
				if p.Refused == nil {
					p.Refused = map[string]string{}
				}
				p.Refused[ps[0].val] = msg
			}
			return nil
		}
		args := make([]string, 0, 2*len(ps))
		for _, q := range ps {
			n := c.Params[q.k].Name
			args = append(args, n+"="+q.val, n+"="+c.Params[q.k].BootVal)
		}
		ok, _, err := bin.ProbeAll(ctx, args)
		if err != nil || ok {
			return err
		}
		return errors.Join(split(ps[:len(ps)/2]), split(ps[len(ps)/2:]))
	}
	return split(all)
}

// cacheFile is the file name of a cached catalog: one per exact server_version_num.
func cacheFile(dir string, versionNum int) string {
	return filepath.Join(dir, "pg-catalog-"+strconv.Itoa(versionNum)+".json")
}

// cacheFormat versions the cache files; bump it when Param changes meaning.
const cacheFormat = 2

type cached struct {
	Format  int      `json:"format"`
	Catalog *Catalog `json:"catalog"`
}

// LoadCatalog returns the catalog of bin's version: from cacheDir when a catalog of that
// exact server_version_num is stored there, else built from read (a running server of the
// same version, or a throwaway one) and bin (enum aliases), and stored in cacheDir. An
// empty cacheDir disables the cache. read is called only on a cache miss.
func LoadCatalog(ctx context.Context, bin Binary, read SettingsReader, cacheDir string) (*Catalog, error) {
	ver, err := bin.VersionNum(ctx)
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	if cacheDir != "" {
		c, err := readCache(cacheFile(cacheDir, ver))
		if err == nil {
			return c, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			// A damaged or outdated cache file is rebuilt, not fatal.
			_ = os.Remove(cacheFile(cacheDir, ver))
		}
	}
	rver, rows, err := read.ReadSettings(ctx)
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	if rver != ver {
		return nil, fmt.Errorf("%w: server reports %d, binary %d", ErrCatalog, rver, ver)
	}
	c, err := CatalogFromRows(ver, rows)
	if err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	if err := DiscoverEnumAliases(ctx, c, bin); err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	if err := DiscoverBoolLimits(ctx, c, bin); err != nil {
		return nil, fmt.Errorf("load catalog: %w", err)
	}
	if cacheDir != "" {
		if err := writeCache(cacheDir, c); err != nil {
			return nil, fmt.Errorf("load catalog: %w", err)
		}
	}
	return c, nil
}

func readCache(path string) (*Catalog, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f cached
	if err := json.Unmarshal(b, &f); err != nil || f.Format != cacheFormat || f.Catalog == nil {
		return nil, fmt.Errorf("%w: cache file %s", ErrCatalog, path)
	}
	return NewCatalog(f.Catalog.VersionNum, f.Catalog.Params)
}

// writeCache stores c atomically (temporary file, then rename).
func writeCache(dir string, c *Catalog) error {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("create catalog cache: %w", err)
	}
	b, err := json.Marshal(cached{Format: cacheFormat, Catalog: &Catalog{VersionNum: c.VersionNum, Params: slices.Clone(c.Params)}})
	if err != nil {
		return fmt.Errorf("encode catalog: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".pg-catalog-*")
	if err != nil {
		return fmt.Errorf("write catalog cache: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write catalog cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), cacheFile(dir, c.VersionNum)); err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("write catalog cache: %w", err)
	}
	return nil
}
