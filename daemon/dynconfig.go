package daemon

import (
	"encoding/json"
	"fmt"
	"strings"
)

// DefaultMaximumLagOnFailover is Patroni's default: 1 MiB.
const DefaultMaximumLagOnFailover = 1 << 20

// dynamicConfig is the part of the cluster's dynamic configuration (the config key) that the
// loop acts on. Unknown keys are kept by whoever edits the key; the loop only reads.
type dynamicConfig struct {
	Pause                bool    `json:"pause"`
	MaximumLagOnFailover *uint64 `json:"maximum_lag_on_failover"`
	FailsafeMode         *bool   `json:"failsafe_mode"`
	// SynchronousMode is off, on (FIRST N) or quorum (ANY N); Patroni's booleans are accepted.
	SynchronousMode       syncMode `json:"synchronous_mode"`
	SynchronousNodeCount  int      `json:"synchronous_node_count"`
	SynchronousModeStrict bool     `json:"synchronous_mode_strict"`
	// SynchronousCommit is the commit level in sync mode: on, remote_write or remote_apply.
	SynchronousCommit string `json:"synchronous_commit"`
}

// syncMode reads synchronous_mode as Patroni writes it: true/false or "on"/"off"/"quorum".
type syncMode string

// UnmarshalJSON accepts booleans and strings.
func (m *syncMode) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("synchronous_mode: %w", err)
	}
	switch x := v.(type) {
	case nil:
		*m = ""
	case bool:
		*m = "off"
		if x {
			*m = "on"
		}
	case string:
		switch strings.ToLower(x) {
		case "", "off", "false":
			*m = "off"
		case "on", "true":
			*m = "on"
		case "quorum":
			*m = "quorum"
		default:
			return fmt.Errorf("synchronous_mode %q: must be off, on or quorum", x)
		}
	default:
		return fmt.Errorf("synchronous_mode: must be a boolean or off, on, quorum")
	}
	return nil
}

// syncModeValue is the mode in force ("off" when unset).
func (c dynamicConfig) syncModeValue() string {
	if c.SynchronousMode == "" {
		return "off"
	}
	return string(c.SynchronousMode)
}

func (c dynamicConfig) syncCount() int { return max(1, c.SynchronousNodeCount) }

func (c dynamicConfig) syncCommit() string {
	if c.SynchronousCommit == "" {
		return "on"
	}
	return c.SynchronousCommit
}

func parseDynamicConfig(b []byte) (dynamicConfig, error) {
	var c dynamicConfig
	if len(b) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("parse config key: %w", err)
	}
	return c, nil
}

func (c dynamicConfig) maximumLag() uint64 {
	if c.MaximumLagOnFailover == nil {
		return DefaultMaximumLagOnFailover
	}
	return *c.MaximumLagOnFailover
}

// failsafe is on unless switched off: ramd's leader confirms itself through the members when
// Consul is away, so a Consul restart does not cost a demotion.
func (c dynamicConfig) failsafe() bool { return c.FailsafeMode == nil || *c.FailsafeMode }
