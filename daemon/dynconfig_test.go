package daemon

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/sethvargo/go-envconfig"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/ha"
	"github.com/ramd-project/ramd/daemon/pg"
	"github.com/ramd-project/ramd/test/testenv"
)

// The dynamic configuration refuses every parameter the config writer would drop, so a value
// is never accepted by the API and then ignored.
func TestOwnedParametersCoverProtected(t *testing.T) {
	t.Parallel()
	for _, p := range pg.ProtectedParameters() {
		if _, ok := dynconf.OwnedParameters[p]; !ok {
			t.Errorf("%s is protected by the config writer but accepted by the dynamic configuration", p)
		}
	}
}

// The bootstrap document is valid and carries the bootstrapping member's timings.
func TestBootstrapDocument(t *testing.T) {
	t.Parallel()
	want := ha.Timings{TTL: 5 * time.Second, LoopWait: 1500 * time.Millisecond, RetryTimeout: time.Second, FenceMargin: 750 * time.Millisecond,
		PGUnresponsiveTimeout: 12 * time.Second}
	cfg := Config{TTL: want.TTL, LoopWait: want.LoopWait, RetryTimeout: want.RetryTimeout, FenceMargin: want.FenceMargin,
		PGUnresponsiveTimeout: &want.PGUnresponsiveTimeout, SynchronousMode: "off", SynchronousNodeCount: 1}
	c, err := dynconf.Parse(bootstrapDocument(cfg))
	if err != nil {
		t.Fatalf("bootstrap document refused: %v", err)
	}
	if got := c.Timings(); got != want {
		t.Errorf("timings %+v, want %+v", got, want)
	}
	if !c.Failsafe() || c.SyncMode() != "off" || c.MaximumLag() != DefaultMaximumLagOnFailover {
		t.Errorf("defaults not in force: %+v", c)
	}
	// The synchronous settings of the environment, as Patroni writes the mode.
	for _, tt := range []struct {
		mode  string
		count int
		want  string
		raw   string
	}{
		{"on", 2, "on", `"synchronous_mode":true,"synchronous_node_count":2`},
		{"quorum", 2, "quorum", `"synchronous_mode":"quorum","synchronous_node_count":2`},
		{"OFF", 3, "off", `"synchronous_mode":false,`},
	} {
		cfg.SynchronousMode, cfg.SynchronousNodeCount = tt.mode, tt.count
		doc := bootstrapDocument(cfg)
		c, err := dynconf.Parse(doc)
		if err != nil || c.SyncMode() != tt.want || (tt.want != "off" && c.SyncCount() != tt.count) || !strings.Contains(string(doc), tt.raw) {
			t.Errorf("RAMD_SYNCHRONOUS_MODE=%s COUNT=%d: %s, mode %s count %d, %v", tt.mode, tt.count, doc, c.SyncMode(), c.SyncCount(), err)
		}
	}
}

// The env defaults of the timings equal the built-in defaults a configuration without them
// takes, so a cluster does not change timings when the configuration first appears.
func TestTimingDefaultsAgree(t *testing.T) {
	t.Parallel()
	var c Config
	if err := envconfig.ProcessWith(t.Context(), &envconfig.Config{Target: &c, Lookuper: envconfig.MapLookuper(nil)}); err != nil {
		t.Fatal(err)
	}
	if got, env := (dynconf.Config{}).Timings(), c.Timings(); got != env {
		t.Errorf("built-in defaults %+v differ from the RAMD_* defaults %+v", got, env)
	}
	// Long timings without postgres_unresponsive_timeout: its default grows with them and
	// stays valid, from the configuration and from the environment alike.
	long := map[string]string{"RAMD_TTL": "30s", "RAMD_LOOP_WAIT": "10s", "RAMD_RETRY_TIMEOUT": "10s"}
	var lc Config
	if err := envconfig.ProcessWith(t.Context(), &envconfig.Config{Target: &lc, Lookuper: envconfig.MapLookuper(long)}); err != nil {
		t.Fatal(err)
	}
	dc := dynconf.Config{TTL: 30 * time.Second, LoopWait: 10 * time.Second, RetryTimeout: 10 * time.Second}
	if got, env := dc.Timings(), lc.Timings(); got != env || got.PGUnresponsiveTimeout != 80*time.Second || got.Validate() != nil {
		t.Errorf("long timings: configuration %+v, environment %+v, want postgres_unresponsive_timeout 80s and valid (%v)", got, env, got.Validate())
	}
}

// configInForce keeps the last valid configuration in force when the key is refused or
// missing, on disk too, so a restarted member finds it.
func TestConfigInForce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir() + "/data"
	newNode := func() *Node {
		inst, err := pg.New(pg.Config{DataDir: dir, BinDir: testenv.PGBinDir(t)}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		return New(Config{Name: "n1", Scope: "s", TTL: 6 * time.Second, LoopWait: time.Second, RetryTimeout: time.Second, FenceMargin: time.Second},
			Deps{PG: inst, Consul: &consul.Client{}})
	}
	n := newNode()
	if c := n.configInForce(t.Context(), nil, false, 0); n.conf.source != SourceEnvironment || c.SyncMode() != "off" {
		t.Fatalf("no key, no copy: source %s", n.conf.source)
	}
	valid := []byte(`{"ttl":4,"synchronous_mode":"on"}`)
	if c := n.configInForce(t.Context(), valid, true, 7); n.conf.source != SourceCluster || c.SyncMode() != "on" || c.Timings().TTL != 4*time.Second {
		t.Fatalf("valid key: source %s, %+v", n.conf.source, c)
	}
	if c := n.configInForce(t.Context(), []byte(`{"ttl":"banana"}`), true, 8); n.conf.source != SourceLastValid || c.SyncMode() != "on" || n.conf.refusal == "" {
		t.Fatalf("refused key: source %s refusal %q sync %s", n.conf.source, n.conf.refusal, c.SyncMode())
	}
	if c := n.configInForce(t.Context(), nil, false, 0); n.conf.source != SourceLastValid || c.SyncMode() != "on" {
		t.Fatalf("missing key: source %s sync %s", n.conf.source, c.SyncMode())
	}
	// A restarted member (nothing in memory) finds the copy beside the data directory.
	m := newNode()
	if c := m.configInForce(t.Context(), nil, false, 0); m.conf.source != SourceLastValid || c.SyncMode() != "on" || string(m.conf.applied) != string(valid) {
		t.Fatalf("restarted member without the key: source %s applied %s", m.conf.source, m.conf.applied)
	}
	// The timings follow the cluster, not RAMD_TTL=6s, and say the environment differs.
	m.applyTimings(m.conf.cfg.Timings(), m.conf.source)
	if m.timings().TTL != 4*time.Second || !m.conf.envDiffers {
		t.Fatalf("timings %+v envDiffers %v", m.timings(), m.conf.envDiffers)
	}
}
