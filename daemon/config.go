package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/ha"
)

// Config is the node's static configuration (environment variables).
type Config struct {
	Scope     string `env:"RAMD_SCOPE, default=ramd"`
	Namespace string `env:"RAMD_NAMESPACE, default=service"`
	// Name is the member name; the host name when unset.
	Name string `env:"RAMD_NAME"`
	// APIURL is how other members and clients reach this node's API; derived from the API
	// listen address when unset.
	APIURL string `env:"RAMD_API_URL"`

	TTL          time.Duration `env:"RAMD_TTL, default=3s"`
	LoopWait     time.Duration `env:"RAMD_LOOP_WAIT, default=1s"`
	RetryTimeout time.Duration `env:"RAMD_RETRY_TIMEOUT, default=1s"`
	FenceMargin  time.Duration `env:"RAMD_FENCE_MARGIN, default=1s"`
	// PGUnresponsiveTimeout seeds postgres_unresponsive_timeout at bootstrap (0: off; nil:
	// dynconf.DefaultUnresponsive).
	PGUnresponsiveTimeout *time.Duration `env:"RAMD_POSTGRES_UNRESPONSIVE_TIMEOUT, noinit"`
	LockDelay             time.Duration  `env:"RAMD_LOCK_DELAY, default=1ms"`
	SessionTTL            time.Duration  `env:"RAMD_SESSION_TTL, default=10s"`

	// Tags are Patroni's member tags: nofailover, failover_priority, noloadbalance,
	// clonefrom, nosync, ... as "key:value,key:value".
	Tags map[string]string `env:"RAMD_TAGS"`

	MaxStartFailures       int           `env:"RAMD_PG_MAX_START_FAILURES, default=3"`
	RecloneOnRewindFailure bool          `env:"RAMD_RECLONE_ON_REWIND_FAILURE, default=false"`
	MemberSlotsTTL         time.Duration `env:"RAMD_MEMBER_SLOTS_TTL, default=30m"`
	// HandoverWait bounds how long a stopping primary waits for a successor after releasing
	// the lock, keeping its API up so replicas can confirm it stopped.
	HandoverWait time.Duration `env:"RAMD_HANDOVER_WAIT, default=5s"`

	// SynchronousMode and SynchronousNodeCount are the bootstrap values of the cluster's
	// synchronous_mode (off, on, quorum) and synchronous_node_count: the bootstrapping member
	// writes them into the dynamic configuration, which wins from then on.
	SynchronousMode      string `env:"RAMD_SYNCHRONOUS_MODE, default=off"`
	SynchronousNodeCount int    `env:"RAMD_SYNCHRONOUS_NODE_COUNT, default=1"`
	// BootstrapConfig is a JSON file with the dynamic configuration a new cluster starts
	// with (the member that bootstraps writes it instead of the defaults). Its bootstrap
	// object can restore another cluster's backup instead of running initdb.
	BootstrapConfig string `env:"RAMD_BOOTSTRAP_CONFIG"`
}

// BootstrapDocument reads and validates RAMD_BOOTSTRAP_CONFIG (nil when unset).
func (c Config) BootstrapDocument() (map[string]any, dynconf.Config, error) {
	if c.BootstrapConfig == "" {
		return nil, dynconf.Config{}, nil
	}
	raw, err := os.ReadFile(c.BootstrapConfig)
	if err != nil {
		return nil, dynconf.Config{}, fmt.Errorf("RAMD_BOOTSTRAP_CONFIG=%s: %w", c.BootstrapConfig, err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, dynconf.Config{}, fmt.Errorf("RAMD_BOOTSTRAP_CONFIG=%s: must hold a JSON object: %w", c.BootstrapConfig, err)
	}
	if doc == nil {
		return nil, dynconf.Config{}, fmt.Errorf("RAMD_BOOTSTRAP_CONFIG=%s: must hold a JSON object, not null", c.BootstrapConfig)
	}
	parsed, err := dynconf.CheckBootstrap(doc, c.Scope)
	if err != nil {
		return nil, dynconf.Config{}, fmt.Errorf("RAMD_BOOTSTRAP_CONFIG=%s: %w", c.BootstrapConfig, err)
	}
	return doc, parsed, nil
}

var (
	validScope = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
	validName  = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)
)

// Timings returns the HA timings of this configuration.
func (c Config) Timings() ha.Timings {
	t := ha.Timings{TTL: c.TTL, LoopWait: c.LoopWait, RetryTimeout: c.RetryTimeout, FenceMargin: c.FenceMargin}
	t.PGUnresponsiveTimeout = dynconf.DefaultUnresponsive(t)
	if c.PGUnresponsiveTimeout != nil {
		t.PGUnresponsiveTimeout = *c.PGUnresponsiveTimeout
	}
	return t
}

// Validate checks every value and how they relate; messages name the variable, the value
// and the rule.
func (c Config) Validate() error {
	if !validScope.MatchString(c.Scope) {
		return fmt.Errorf("RAMD_SCOPE=%q: must start with a letter or digit and contain only letters, digits, '_', '.', '-'", c.Scope)
	}
	if c.Namespace == "" || strings.Contains(c.Namespace, "//") || strings.HasPrefix(c.Namespace, "/") {
		return fmt.Errorf("RAMD_NAMESPACE=%q: must be a non-empty relative key path", c.Namespace)
	}
	if !validName.MatchString(c.Name) {
		return fmt.Errorf("RAMD_NAME=%q: must start with a letter or digit and contain only letters, digits, '_', '.', '-'", c.Name)
	}
	if c.APIURL != "" && !strings.HasPrefix(c.APIURL, "http://") && !strings.HasPrefix(c.APIURL, "https://") {
		return fmt.Errorf("RAMD_API_URL=%q: must be an http:// or https:// URL", c.APIURL)
	}
	if err := c.Timings().Validate(); err != nil {
		return fmt.Errorf("RAMD_TTL=%s RAMD_LOOP_WAIT=%s RAMD_RETRY_TIMEOUT=%s RAMD_FENCE_MARGIN=%s RAMD_POSTGRES_UNRESPONSIVE_TIMEOUT=%s: %w",
			c.TTL, c.LoopWait, c.RetryTimeout, c.FenceMargin, c.Timings().PGUnresponsiveTimeout, err)
	}
	if c.LockDelay <= 0 || c.LockDelay > time.Minute {
		return fmt.Errorf("RAMD_LOCK_DELAY=%s: must be above 0 and at most 1m (0 would mean Consul's 15s default)", c.LockDelay)
	}
	if c.SessionTTL < 10*time.Second || c.SessionTTL > 24*time.Hour {
		return fmt.Errorf("RAMD_SESSION_TTL=%s: must be between 10s (Consul's floor) and 24h", c.SessionTTL)
	}
	if c.MaxStartFailures < 1 {
		return fmt.Errorf("RAMD_PG_MAX_START_FAILURES=%d: must be at least 1", c.MaxStartFailures)
	}
	if c.MemberSlotsTTL < 0 {
		return fmt.Errorf("RAMD_MEMBER_SLOTS_TTL=%s: must not be negative", c.MemberSlotsTTL)
	}
	if c.HandoverWait < 0 || c.HandoverWait > 5*time.Minute {
		return fmt.Errorf("RAMD_HANDOVER_WAIT=%s: must be between 0 and 5m", c.HandoverWait)
	}
	if _, ok := dynconf.ParseSyncMode(c.SynchronousMode); !ok {
		return fmt.Errorf("RAMD_SYNCHRONOUS_MODE=%q: must be off, on (FIRST n) or quorum (ANY n)", c.SynchronousMode)
	}
	if _, err := dynconf.Validate(map[string]any{"synchronous_node_count": float64(c.SynchronousNodeCount)}); err != nil {
		return fmt.Errorf("RAMD_SYNCHRONOUS_NODE_COUNT=%d: %w", c.SynchronousNodeCount, err)
	}
	if _, _, err := c.BootstrapDocument(); err != nil {
		return err
	}
	if v, ok := c.Tags["failover_priority"]; ok {
		if _, err := strconv.Atoi(v); err != nil {
			return fmt.Errorf("RAMD_TAGS failover_priority=%q: must be an integer", v)
		}
	}
	for _, k := range []string{"nofailover", "noloadbalance", "nosync"} {
		if v, ok := c.Tags[k]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("RAMD_TAGS %s=%q: must be true or false", k, v)
			}
		}
	}
	return nil
}

// tagBool reads a boolean tag.
func (c Config) tagBool(k string) bool {
	b, _ := strconv.ParseBool(c.Tags[k])
	return b
}

// publishedTags converts the tags to Patroni's JSON types (booleans and integers typed).
func (c Config) publishedTags() map[string]any {
	if len(c.Tags) == 0 {
		return nil
	}
	out := make(map[string]any, len(c.Tags))
	for k, v := range c.Tags {
		if b, err := strconv.ParseBool(v); err == nil && (k == "nofailover" || k == "noloadbalance" || k == "nosync" || k == "nostream") {
			out[k] = b
			continue
		}
		if n, err := strconv.Atoi(v); err == nil {
			out[k] = n
			continue
		}
		out[k] = v
	}
	return out
}
