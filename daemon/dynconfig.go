package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ramd-project/ramd/consul"
	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/ha"
)

// DefaultMaximumLagOnFailover is Patroni's default: 1 MiB.
const DefaultMaximumLagOnFailover = dynconf.DefaultMaximumLagOnFailover

// FieldError is a refused value of one field (see dynconf).
type FieldError = dynconf.FieldError

// ErrInvalid is wrapped by every refused setting.
var ErrInvalid = dynconf.ErrInvalid

// ConfigSource says where the configuration the loop acts on came from.
type ConfigSource string

// Sources of the configuration in force.
const (
	// SourceCluster: the config key, valid.
	SourceCluster ConfigSource = "cluster"
	// SourceLastValid: the config key is missing or refused; the last valid configuration
	// this member applied (kept in memory and on disk) stays in force until the leader
	// writes it back.
	SourceLastValid ConfigSource = "last-valid"
	// SourceEnvironment: no configuration was ever read (before bootstrap): the timings come
	// from this member's RAMD_* variables.
	SourceEnvironment ConfigSource = "environment"
)

// configState is what the loop knows of the dynamic configuration. Loop goroutine only.
type configState struct {
	// applied is the last valid configuration document this member acted on, as stored in
	// Consul (nil when none); cfg is its parsed form.
	applied []byte
	cfg     dynconf.Config
	// index is the config key's modify index of applied (0: from the local copy).
	index uint64
	// judged is set when applied was judged completely (its parameters against the
	// catalog too): the same document read again is not judged again.
	judged bool
	// saved is the document last written to the local copy.
	saved []byte
	// refusal is why the config key is not in force ("" when it is).
	refusal string
	source  ConfigSource
	// envDiffers is set once this member's RAMD_* timings were found to differ from the
	// cluster's (it follows the cluster's and said so).
	envDiffers bool
}

// configCopyPath is where a member keeps its last applied configuration: beside the data
// directory (like the server log), so pg_basebackup and pg_rewind never copy it.
func configCopyPath(dataDir string) string {
	return filepath.Clean(dataDir) + ".dynamic.json"
}

// loadConfigCopy reads the local copy; a missing or unreadable one is no copy.
func loadConfigCopy(path string) ([]byte, dynconf.Config, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, dynconf.Config{}, false
	}
	c, err := dynconf.Parse(b)
	if err != nil {
		return nil, dynconf.Config{}, false
	}
	return b, c, true
}

// saveConfigCopy writes the copy atomically (temporary file, fsync, rename).
func saveConfigCopy(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("save configuration copy: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("save configuration copy: %w", err)
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return fmt.Errorf("save configuration copy: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save configuration copy: %w", err)
	}
	return nil
}

// bootstrapDocument is the dynamic configuration written at bootstrap, as Patroni does: the
// timings and synchronous settings of the bootstrapping member's environment and the
// defaults in force, so every member runs with the same values from the start.
// synchronous_mode is written as Patroni writes it: false, true or "quorum".
func bootstrapDocument(c Config) []byte {
	t := c.Timings()
	doc := map[string]any{
		"ttl":                     t.TTL.Seconds(),
		"loop_wait":               t.LoopWait.Seconds(),
		"retry_timeout":           t.RetryTimeout.Seconds(),
		"fence_margin":            t.FenceMargin.Seconds(),
		"failsafe_mode":           true,
		"maximum_lag_on_failover": DefaultMaximumLagOnFailover,
		"synchronous_mode":        false,
	}
	if c.PGUnresponsiveTimeout != nil {
		// Only when set: left out, its default follows ttl and loop_wait (DefaultUnresponsive).
		doc["postgres_unresponsive_timeout"] = t.PGUnresponsiveTimeout.Seconds()
	}
	switch mode, _ := dynconf.ParseSyncMode(c.SynchronousMode); mode {
	case "on":
		doc["synchronous_mode"] = true
		doc["synchronous_node_count"] = c.SynchronousNodeCount
	case "quorum":
		doc["synchronous_mode"] = "quorum"
		doc["synchronous_node_count"] = c.SynchronousNodeCount
	}
	b, _ := json.Marshal(doc)
	return b
}

// configInForce decides which configuration the loop acts on this cycle, from the config key
// as read (raw nil when absent). It never fails: a refused or missing key leaves the last
// valid configuration in force.
func (n *Node) configInForce(ctx context.Context, raw []byte, present bool, index uint64) dynconf.Config {
	cs := &n.conf
	if present && cs.judged && cs.source == SourceCluster && bytes.Equal(raw, cs.applied) {
		cs.index = index
		return cs.cfg // the document in force, unchanged since it was judged
	}
	if present {
		c, err := dynconf.Parse(raw)
		judged := true
		if err == nil {
			// Parameters written straight into Consul (patronictl edit-config --pg) are judged
			// like the API's, once the catalog is there: a refused value is never applied.
			judged, err = n.loopParameterCheck(ctx, c)
		}
		if err == nil {
			if cs.refusal != "" {
				n.logger.Info("configuration valid again", "source", SourceCluster)
			}
			cs.applied, cs.cfg, cs.refusal, cs.source, cs.index, cs.judged = raw, c, "", SourceCluster, index, judged
			n.saveCopy()
			return c
		}
		if cs.refusal != err.Error() {
			n.logger.Error("refusing the configuration in Consul; the last valid one stays in force", "err", err)
		}
		cs.refusal = err.Error()
		if cs.applied == nil {
			if !n.loadCopy() {
				// Nothing valid was ever seen: act on the sound part of the document.
				cs.cfg, cs.source = c, SourceCluster
				return c
			}
		}
		cs.source = SourceLastValid
		return cs.cfg
	}
	// No config key: before bootstrap, or Consul lost its data.
	if cs.applied == nil && !n.loadCopy() {
		cs.source = SourceEnvironment
		return dynconf.Config{}
	}
	if cs.source != SourceLastValid {
		n.logger.Error("the configuration is missing from Consul; the last valid one stays in force until the leader writes it back")
	}
	cs.source, cs.refusal = SourceLastValid, "missing from Consul"
	return cs.cfg
}

func (n *Node) loadCopy() bool {
	b, c, ok := loadConfigCopy(configCopyPath(n.pg.Config().DataDir))
	if !ok {
		return false
	}
	n.conf.applied, n.conf.cfg, n.conf.saved = b, c, b
	n.logger.Info("loaded the last applied configuration from the local copy")
	return true
}

func (n *Node) saveCopy() {
	cs := &n.conf
	if string(cs.applied) == string(cs.saved) {
		return
	}
	if err := saveConfigCopy(configCopyPath(n.pg.Config().DataDir), cs.applied); err != nil {
		n.logger.Warn("keep a local copy of the configuration", "err", err)
		return
	}
	cs.saved = cs.applied
}

// applyTimings makes t the timings in force (validated already), saying so when they differ
// from this member's environment.
func (n *Node) applyTimings(t ha.Timings, source ConfigSource) {
	if source == SourceEnvironment {
		t = n.cfg.Timings()
	}
	if old := n.timings(); old != t {
		n.logger.Info("timings in force", "ttl", t.TTL, "loop_wait", t.LoopWait, "retry_timeout", t.RetryTimeout,
			"fence_margin", t.FenceMargin, "postgres_unresponsive_timeout", t.PGUnresponsiveTimeout, "source", source)
	}
	env := n.cfg.Timings()
	differs := t != env
	if differs && !n.conf.envDiffers {
		n.logger.Warn("this member's RAMD_TTL, RAMD_LOOP_WAIT, RAMD_RETRY_TIMEOUT, RAMD_FENCE_MARGIN or RAMD_POSTGRES_UNRESPONSIVE_TIMEOUT differ from the cluster's configuration; following the cluster's",
			"env_ttl", env.TTL, "env_loop_wait", env.LoopWait, "env_retry_timeout", env.RetryTimeout, "env_fence_margin", env.FenceMargin,
			"env_postgres_unresponsive_timeout", env.PGUnresponsiveTimeout,
			"ttl", t.TTL, "loop_wait", t.LoopWait, "retry_timeout", t.RetryTimeout, "fence_margin", t.FenceMargin,
			"postgres_unresponsive_timeout", t.PGUnresponsiveTimeout)
	}
	n.conf.envDiffers = differs
	n.tim.Store(&t)
}

// timings are the HA timings in force; safe from any goroutine.
func (n *Node) timings() ha.Timings {
	if t := n.tim.Load(); t != nil {
		return *t
	}
	return n.cfg.Timings()
}

// restoreConfig makes the leader write the configuration back when the config key is missing
// (Consul lost its data, or it was deleted behind ramd's back) or refused (written straight
// into Consul with values ramd refuses): the last valid configuration it applied, or, when it
// never saw one, the bootstrap defaults. The write is a CAS against the key as read.
func (n *Node) restoreConfig(ctx context.Context, o *observation) {
	if !n.lock.Held || !o.in.ConsulOK || !o.in.Initialized {
		return
	}
	var doc []byte
	switch {
	case n.conf.source == SourceLastValid && n.conf.applied != nil:
		doc = n.conf.applied
	case n.conf.source == SourceEnvironment:
		doc = bootstrapDocument(n.cfg)
	default:
		return
	}
	cctx, cancel := context.WithTimeout(ctx, n.timings().RetryTimeout)
	defer cancel()
	if err := n.store.CAS(cctx, consul.KeyConfig, doc, o.configIdx); err != nil {
		n.logger.Warn("write the configuration back", "err", err)
		return
	}
	n.logger.Error("wrote the configuration back into Consul", "was", n.conf.refusal, "source", n.conf.source)
	n.Wake()
}

// fenceDeadline is when this node, as leader, must stop taking writes without a new
// confirmation (ha.Lock.Deadline).
func (n *Node) fenceDeadline() time.Duration {
	return n.lock.Deadline(n.timings(), n.lead.AnnouncedTTL)
}

// slotsTTL is how long a departed member's slot is kept: member_slots_ttl, else
// RAMD_MEMBER_SLOTS_TTL.
func (n *Node) slotsTTL(o *observation) time.Duration {
	if o.dyn.MemberSlotsTTL != nil {
		return *o.dyn.MemberSlotsTTL
	}
	return n.cfg.MemberSlotsTTL
}
