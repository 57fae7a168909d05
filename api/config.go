package api

import (
	"fmt"
	"net"
	"strconv"
)

// Config is the REST API's static configuration, read from the environment.
type Config struct {
	// Listen is the host:port the API binds. Port 8008 is Patroni's, so HAProxy and
	// patronictl configurations keep working. An empty host listens on every address.
	Listen string `env:"RAMD_API_LISTEN, default=127.0.0.1:8008"`
}

// Validate checks that Listen is host:port with a numeric port in 0-65535. The error names
// the variable, the value and the rule, and wraps ErrInvalidConfig.
func (c Config) Validate() error {
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want host:port: %w", ErrInvalidConfig, c.Listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want a numeric port in 0-65535", ErrInvalidConfig, c.Listen)
	}
	return nil
}
