package daemon

import (
	"encoding/json"
	"fmt"
)

// DefaultMaximumLagOnFailover is Patroni's default: 1 MiB.
const DefaultMaximumLagOnFailover = 1 << 20

// dynamicConfig is the part of the cluster's dynamic configuration (the config key) that the
// loop acts on. Unknown keys are kept by whoever edits the key; the loop only reads.
type dynamicConfig struct {
	Pause                bool    `json:"pause"`
	MaximumLagOnFailover *uint64 `json:"maximum_lag_on_failover"`
	FailsafeMode         *bool   `json:"failsafe_mode"`
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
