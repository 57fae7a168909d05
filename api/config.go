package api

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
)

// VerifyClient says whether the API asks for client certificates (RAMD_API_VERIFY_CLIENT).
type VerifyClient string

// Client certificate policies. A verified certificate is a transport check only: it never
// stands in for the basic or bearer credentials of requireAuth.
const (
	// VerifyNone asks for no client certificate.
	VerifyNone VerifyClient = "none"
	// VerifyOptional verifies a certificate when the client presents one and accepts a client
	// without. Load balancers' health checks keep working without certificates.
	VerifyOptional VerifyClient = "optional"
	// VerifyRequired refuses the TLS handshake of a client without a certificate signed by
	// RAMD_API_CAFILE, health checkers included.
	VerifyRequired VerifyClient = "required"
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
	// PasswordFile and TokenFile name files holding Password and Token (ReadSecretFiles).
	PasswordFile string `env:"RAMD_API_PASSWORD_FILE"`
	TokenFile    string `env:"RAMD_API_TOKEN_FILE"`

	// AuthReads makes the read-only endpoints other than the health checks require the
	// credentials too. It needs Username and Password or Token.
	AuthReads bool `env:"RAMD_API_AUTH_READS, default=false"`
	// Open acknowledges that the mutating endpoints take no credentials, on purpose: on a
	// loopback address it silences the start-up warning. It cannot be set with credentials,
	// and an API without credentials on any other address is warned about whatever it says.
	Open bool `env:"RAMD_API_OPEN, default=false"`
	// CertFile and KeyFile are the PEM certificate (chain) and key of the API; set together
	// they turn TLS on. They are read once, at start.
	CertFile string `env:"RAMD_API_CERTFILE"`
	KeyFile  string `env:"RAMD_API_KEYFILE"`
	// CAFile is a PEM bundle of the CAs that sign client certificates (VerifyClient), and the
	// CAs this member trusts for other members' API certificates (the system pool when unset).
	CAFile string `env:"RAMD_API_CAFILE"`
	// VerifyClient is the client certificate policy; optional and required need TLS and
	// CAFile.
	VerifyClient VerifyClient `env:"RAMD_API_VERIFY_CLIENT, default=none"`
}

// Auth returns the credentials the protected endpoints require.
func (c Config) Auth() Auth {
	return Auth{Username: c.Username, Password: c.Password, Token: c.Token, Reads: c.AuthReads}
}

// TLSEnabled reports whether the API serves HTTPS.
func (c Config) TLSEnabled() bool { return c.CertFile != "" }

// LogValue redacts the secrets.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(slog.String("listen", c.Listen), slog.String("username", c.Username),
		slog.Bool("password_set", c.Password != ""), slog.Bool("token_set", c.Token != ""),
		slog.Bool("auth_reads", c.AuthReads), slog.Bool("open", c.Open), slog.Bool("tls", c.TLSEnabled()),
		slog.String("verify_client", string(c.VerifyClient)))
}

// Validate checks that Listen is host:port with a numeric port in 0-65535, that the
// credentials and TLS settings go together, and that the certificate, key and CA files load.
// The error names the variable, the value and the rule, and wraps ErrInvalidConfig.
func (c Config) Validate() error {
	if (c.Username == "") != (c.Password == "") {
		return fmt.Errorf("%w: RAMD_API_USERNAME and RAMD_API_PASSWORD must be set together", ErrInvalidConfig)
	}
	if c.Open && c.Auth().Enabled() {
		return fmt.Errorf("%w: RAMD_API_OPEN=true says the API takes no credentials, but RAMD_API_USERNAME or RAMD_API_TOKEN is set: unset one", ErrInvalidConfig)
	}
	if c.AuthReads && !c.Auth().Enabled() {
		return fmt.Errorf("%w: RAMD_API_AUTH_READS=true needs RAMD_API_USERNAME and RAMD_API_PASSWORD, or RAMD_API_TOKEN", ErrInvalidConfig)
	}
	_, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want host:port: %w", ErrInvalidConfig, c.Listen, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%w: RAMD_API_LISTEN=%q, want a numeric port in 0-65535", ErrInvalidConfig, c.Listen)
	}
	if err := c.validateTLS(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// validateTLS checks the combination of the TLS variables, then loads the files so that a
// missing or malformed one stops ramd at start.
func (c Config) validateTLS() error {
	if (c.CertFile == "") != (c.KeyFile == "") {
		return fmt.Errorf("RAMD_API_CERTFILE=%q and RAMD_API_KEYFILE=%q must be set together", c.CertFile, c.KeyFile)
	}
	switch c.VerifyClient {
	case VerifyNone, "":
	case VerifyOptional, VerifyRequired:
		if !c.TLSEnabled() {
			return fmt.Errorf("RAMD_API_VERIFY_CLIENT=%s needs TLS: set RAMD_API_CERTFILE and RAMD_API_KEYFILE", c.VerifyClient)
		}
		if c.CAFile == "" {
			return fmt.Errorf("RAMD_API_VERIFY_CLIENT=%s needs RAMD_API_CAFILE, the CAs client certificates must chain to", c.VerifyClient)
		}
	default:
		return fmt.Errorf("RAMD_API_VERIFY_CLIENT=%q, want none, optional or required", c.VerifyClient)
	}
	if _, err := c.TLSConfig(); err != nil {
		return err
	}
	_, err := c.ClientTLSConfig()
	return err
}

// OpenWarning is what ramd says at start about mutating endpoints without credentials: nothing
// (ok false) when credentials are set, or when RAMD_API_OPEN acknowledges an API that only
// listens on loopback; a warning for an unacknowledged one on loopback; an error-level line
// for one any other host can reach, acknowledged or not.
func (c Config) OpenWarning() (level slog.Level, msg string, ok bool) {
	if c.Auth().Enabled() {
		return 0, "", false
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err == nil && isLoopback(host) {
		if c.Open {
			return 0, "", false
		}
		return slog.LevelWarn, "the API's mutating endpoints take no credentials (on loopback only): set RAMD_API_USERNAME and RAMD_API_PASSWORD or RAMD_API_TOKEN, or RAMD_API_OPEN=true to say it is on purpose", true
	}
	return slog.LevelError, fmt.Sprintf("the API's mutating endpoints take no credentials and listen on %s, reachable from other hosts: anyone who reaches it can switch over, restart or wipe a replica; set RAMD_API_USERNAME and RAMD_API_PASSWORD or RAMD_API_TOKEN", c.Listen), true
}

// isLoopback reports whether host names only the loopback interface: a loopback IP or
// "localhost". An empty host (every address) is not.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
