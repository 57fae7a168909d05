package daemon

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/params"
	"github.com/ramd-project/ramd/daemon/pg"
)

// ErrParameterRefused is wrapped (with the dynconf.Errors naming each field) when a
// parameter value is refused: PostgreSQL would refuse it, or a rule of ramd's (memory,
// replication, versions) says it cannot work. The API answers 422.
var ErrParameterRefused = errors.New("daemon: parameter refused")

// ErrCatalogUnavailable means the parameter catalog of the local server could not be built.
var ErrCatalogUnavailable = errors.New("daemon: parameter catalog unavailable")

// paramCatalog is the local server's parameter catalog, loaded once in the background (from
// the cache beside the data directory, or from the server: a minute at most the first time).
type paramCatalog struct {
	once sync.Once
	done chan struct{} // closed when cat or err is set
	cat  *params.Catalog
	err  error
}

// catalogCacheDir is where built catalogs are kept: the user's cache directory, shared by
// every member on the host and per server binary directory (a catalog belongs to the binary),
// else beside the data directory like the server log.
func catalogCacheDir(cfg pg.Config) string {
	if base, err := os.UserCacheDir(); err == nil && cfg.BinDir != "" {
		return filepath.Join(base, "ramd", "params", strings.NewReplacer("/", "_", ".", "_").Replace(filepath.Clean(cfg.BinDir)))
	}
	return filepath.Clean(cfg.DataDir) + ".params"
}

// catalogWait bounds how long a configuration write waits for a catalog still being built
// (the first build on a host reads the server and probes its enums: tens of seconds).
const catalogWait = 20 * time.Second

// startCatalog loads the catalog in the background (once).
func (n *Node) startCatalog() {
	n.paramCat.once.Do(func() {
		n.paramCat.done = make(chan struct{})
		n.tasks.run(func(ctx context.Context) {
			defer close(n.paramCat.done)
			n.paramCat.cat, n.paramCat.err = n.loadCatalog(ctx)
			if n.paramCat.err != nil {
				n.logger.Warn("parameter catalog", "err", n.paramCat.err)
			}
		})
	})
}

func (n *Node) loadCatalog(ctx context.Context) (*params.Catalog, error) {
	cfg := n.pg.Config()
	oracle, err := pg.NewOracle(cfg, n.logger)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalogUnavailable, err)
	}
	defer oracle.Close()
	var read params.SettingsReader = pg.ScratchReader{Config: cfg, Logger: n.logger}
	if n.pg.Running() {
		read = n.pg
	}
	dir := catalogCacheDir(cfg)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		dir = ""
	}
	c, err := params.LoadCatalog(ctx, oracle, read, dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCatalogUnavailable, err)
	}
	return c, nil
}

// Catalog returns the parameter catalog of the local server, waiting (bounded by ctx) while
// it loads.
func (n *Node) Catalog(ctx context.Context) (*params.Catalog, error) {
	n.startCatalog()
	select {
	case <-n.paramCat.done:
		return n.paramCat.cat, n.paramCat.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: still loading: %w", ErrCatalogUnavailable, ctx.Err())
	}
}

// ReviewParameters judges a whole set of parameters as the cluster would run them: each value
// as the installed server would (its own messages), and ramd's rules across parameters and
// this node's memory. Names that do not exist in another member's major version are refused
// naming that version.
func (n *Node) ReviewParameters(ctx context.Context, proposed map[string]string) (params.Report, error) {
	c, err := n.Catalog(ctx)
	if err != nil {
		return params.Report{}, err
	}
	facts, _ := params.NodeFacts()
	majors := map[int]bool{}
	if st := n.Status(); st != nil {
		facts.Members = len(st.Members)
		for _, m := range st.Members {
			if m.ServerVersion > 0 {
				majors[m.ServerVersion/10000] = true
			}
		}
	}
	r := params.Review(c, proposed, facts)
	for _, name := range slices.Sorted(maps.Keys(proposed)) {
		for major := range majors {
			if major == c.Major() {
				continue
			}
			if exists, known := params.InVersion(name, major); known && !exists {
				r.Refusals = append(r.Refusals, params.Issue{Field: name, Value: proposed[name],
					Message: fmt.Sprintf("parameter %q does not exist in PostgreSQL %d, which a member runs", name, major), Rule: params.RuleNotInVersion})
			}
		}
	}
	return r, nil
}

// checkParameters refuses a configuration whose postgresql.parameters the server or ramd's
// rules refuse, and returns the warnings of an accepted one.
func (n *Node) checkParameters(ctx context.Context, c dynconf.Config) ([]string, error) {
	if len(c.Parameters) == 0 {
		return nil, nil
	}
	wctx, cancel := context.WithTimeout(ctx, catalogWait)
	defer cancel()
	r, err := n.ReviewParameters(wctx, c.Parameters)
	if err != nil {
		return nil, err
	}
	if !r.OK() {
		errs := make(dynconf.Errors, 0, len(r.Refusals))
		for _, i := range r.Refusals {
			errs = append(errs, &dynconf.FieldError{Field: "postgresql.parameters." + i.Field, Value: i.Value, Reason: i.Message})
		}
		return nil, fmt.Errorf("%w: %w", ErrParameterRefused, errs)
	}
	var warnings []string
	for _, w := range r.Warnings {
		warnings = append(warnings, "postgresql.parameters."+w.Field+"="+w.Value+": "+w.Message)
	}
	return warnings, nil
}

// warningsKey carries a request's warning collector (CollectWarnings).
type warningsKey struct{}

// CollectWarnings returns a context whose configuration writes record their warnings (legal
// but risky values that were accepted), and a function that returns them.
func CollectWarnings(ctx context.Context) (context.Context, func() []string) {
	w := &[]string{}
	return context.WithValue(ctx, warningsKey{}, w), func() []string { return *w }
}

func addWarnings(ctx context.Context, ws []string) {
	if p, ok := ctx.Value(warningsKey{}).(*[]string); ok {
		*p = append(*p, ws...)
	}
}

// userParameters are the cluster's postgresql.parameters in force (a copy).
func (n *Node) userParameters() map[string]string {
	return maps.Clone(n.conf.cfg.Parameters)
}

// serverParameters are the parameters written for PostgreSQL beside the managed ones: the
// cluster's parameters and the archive settings of the backup tool.
func (n *Node) serverParameters() map[string]string {
	p := n.userParameters()
	if p == nil {
		p = map[string]string{}
	}
	maps.Copy(p, n.archiveParameters())
	return p
}

// applyParameters writes the cluster's parameters into the managed configuration and reloads
// PostgreSQL when they changed since last written; what needs a restart then shows as
// pending_restart. A value the server skips on reload is logged and reported.
func (n *Node) applyParameters(ctx context.Context, o *observation) {
	want := paramSignature(n.serverParameters())
	if want == n.paramsApplied || !o.pg.Running || o.in.PG.Unknown {
		return
	}
	var s pg.Settings
	switch {
	case !o.pg.InRecovery:
		s = n.primarySettings()
	case n.pgMem.following != "":
		var err error
		if s, err = n.standbySettings(n.pgMem.following); err != nil {
			return
		}
	default:
		return // a standby that follows nobody keeps its file until it does
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if _, err := n.pg.WriteConfig(s); err != nil {
		n.logger.Error("write parameters", "err", err)
		return
	}
	if err := n.pg.Reload(cctx); err != nil {
		n.logger.Error("reload after a parameter change", "err", err)
		return
	}
	n.paramsApplied = want
	n.logger.Info("parameters applied", "parameters", want)
	bad, err := n.pg.FileSettingErrors(cctx)
	if err == nil {
		n.paramErrors = bad
	}
	if len(bad) > 0 {
		n.logger.Error("postgres skipped parameters on reload", "errors", strings.Join(bad, "; "))
	}
}

// paramSignature is a stable text of a parameter set, to notice changes.
func paramSignature(p map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(p)) {
		b.WriteString(k + "=" + p[k] + ";")
	}
	return b.String()
}

// loopParameterCheck judges the parameters of a configuration read from Consul with the
// catalog when it is loaded (never waiting for it: the loop does not block). judged is false
// when the catalog was not there yet, so the document is judged again later.
func (n *Node) loopParameterCheck(ctx context.Context, c dynconf.Config) (judged bool, err error) {
	if len(c.Parameters) == 0 {
		return true, nil
	}
	select {
	case <-n.catalogDone():
	default:
		return false, nil
	}
	if n.paramCat.cat == nil {
		return false, nil
	}
	_, err = n.checkParameters(ctx, c)
	return true, err
}

// catalogDone is closed once the catalog load ended (nil channel before it started).
func (n *Node) catalogDone() <-chan struct{} { return n.paramCat.done }

// TuneRequest describes the workload to tune for; zero fields take the node's own facts
// (memory and CPUs with cgroup limits), SSD storage and the web workload.
type TuneRequest struct {
	Workload       string
	MemoryBytes    int64
	CPUs           int
	Storage        string
	MaxConnections int
}

// Tuning is the advice for one request: the inputs used, each suggestion with the value in
// force now, and the verdict of the validator on the suggested set.
type Tuning struct {
	Input       params.TuneInput
	Suggestions []TunedParameter
	Review      params.Report
}

// TunedParameter is one suggestion beside the value in force.
type TunedParameter struct {
	params.Suggestion
	// Current is the cluster's configured value, else the server's default ("" when unknown).
	Current string
}

// TuneParameters suggests parameters for the node and workload (pgtune's formulas), checks
// them with the same validator as a configuration change, and shows what each changes.
func (n *Node) TuneParameters(ctx context.Context, r TuneRequest) (Tuning, error) {
	c, err := n.Catalog(ctx)
	if err != nil {
		return Tuning{}, err
	}
	facts, cpus := params.NodeFacts()
	in := params.TuneInput{MemoryBytes: r.MemoryBytes, CPUs: r.CPUs, Storage: params.Storage(r.Storage),
		Major: c.Major(), Workload: params.Workload(r.Workload), MaxConnections: r.MaxConnections}
	if in.MemoryBytes == 0 {
		in.MemoryBytes = facts.MemoryBytes
	}
	if in.CPUs == 0 {
		in.CPUs = cpus
	}
	if in.Storage == "" {
		in.Storage = params.StorageSSD
	}
	if in.Workload == "" {
		in.Workload = params.WorkloadWeb
	}
	sugg, err := params.Tune(in)
	if err != nil {
		return Tuning{}, &dynconf.FieldError{Field: "workload", Value: r.Workload, Reason: err.Error()}
	}
	current := n.userParameters()
	proposed := maps.Clone(current)
	if proposed == nil {
		proposed = map[string]string{}
	}
	out := Tuning{Input: in}
	for _, s := range sugg {
		cur, ok := current[s.Name]
		if !ok {
			if p, found := c.Lookup(s.Name); found {
				cur = p.ResetVal
				if p.Unit != "" && cur != "" {
					cur += " " + p.Unit
				}
			}
		}
		proposed[s.Name] = s.Value
		out.Suggestions = append(out.Suggestions, TunedParameter{Suggestion: s, Current: cur})
	}
	if out.Review, err = n.ReviewParameters(ctx, proposed); err != nil {
		return Tuning{}, err
	}
	return out, nil
}
