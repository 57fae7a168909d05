package api

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// Config is the REST API's static configuration, read from the environment.
type Config struct {
	// Listen is the host:port the API binds. Port 8008 is Patroni's, so HAProxy and
	// patronictl configurations keep working. An empty host listens on every address.
	Listen string `env:"RAMD_API_LISTEN, default=127.0.0.1:8008"`
	// Username and Password protect the mutating endpoints with basic auth (Patroni's
	// restapi.authentication); Token accepts "Authorization: Bearer <token>" too. With none
	// set the mutating endpoints are open (ramd warns at start).
	Username string `env:"RAMD_API_USERNAME"`
	Password string `env:"RAMD_API_PASSWORD"`
	Token    string `env:"RAMD_API_TOKEN"`
}

// Auth returns the credentials the mutating endpoints require.
func (c Config) Auth() Auth { return Auth{Username: c.Username, Password: c.Password, Token: c.Token} }

// LogValue redacts the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("listen", c.Listen), slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""), slog.Bool("token_set", c.Token != ""))
}

// Validate checks that Listen is host:port with a numeric port in 0-65535. The error names
// the variable, the value and the rule, and wraps ErrInvalidConfig.
func (c Config) Validate() error {
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%w: RAMD_API_USERNAME and RAMD_API_PASSWORD must be set together", ErrInvalidConfig)
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want host:port: %w", ErrInvalidConfig, c.Listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want a numeric port in 0-65535", ErrInvalidConfig, c.Listen)
	}
	return nil
}
