package api

import (
	"crypto/tls"
	"fmt"
	"sync/atomic"
)

// Live is the API's reloadable state: the credentials and the TLS files, read again by
// Reload (ramd calls it on SIGHUP). Requests and TLS handshakes read the state current when
// they start; a reload that fails keeps the state loaded before, so a half-written file never
// locks operators out.
type Live struct {
	cfg   Config // the configuration as given at start, with the secrets read from files
	state atomic.Pointer[liveState]
}

type liveState struct {
	auth   Auth
	server *tls.Config // nil without TLS
	client *tls.Config // nil when neither TLS nor RAMD_API_CAFILE is set
}

// NewLive loads c's credentials and TLS files. c has been validated and its secret files read.
func NewLive(c Config) (*Live, error) {
	s, err := loadLive(c)
	if err != nil {
		return nil, err
	}
	l := &Live{cfg: c}
	l.state.Store(s)
	return l, nil
}

func loadLive(c Config) (*liveState, error) {
	server, err := c.TLSConfig()
	if err != nil {
		return nil, err
	}
	client, err := c.ClientTLSConfig()
	if err != nil {
		return nil, err
	}
	return &liveState{auth: c.Auth(), server: server, client: client}, nil
}

// Reload reads RAMD_API_PASSWORD_FILE, RAMD_API_TOKEN_FILE, the certificate, its key and the
// CA bundle again. Secrets given in the environment cannot change; the variables themselves
// are those of the start. On an error nothing changes and the error names the variable.
func (l *Live) Reload() error {
	c := l.cfg
	if c.PasswordFile != "" {
		c.Password = ""
	}
	if c.TokenFile != "" {
		c.Token = ""
	}
	if err := c.ReadSecretFiles(); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	s, err := loadLive(c)
	if err != nil {
		return fmt.Errorf("reload the API's TLS files: %w", err)
	}
	l.state.Store(s)
	return nil
}

// Auth returns the credentials in force.
func (l *Live) Auth() Auth { return l.state.Load().auth }

// ClientTLS returns the configuration for calls to other members' APIs in force (nil: plain
// HTTP or the system pool). A caller builds its transport from it again after a Reload.
func (l *Live) ClientTLS() *tls.Config { return l.state.Load().client }

// ServerTLS returns the listener's TLS configuration, nil when TLS is off. Every handshake
// takes the certificate, key and client CAs in force at that moment, so a Reload applies to
// the next connection without a restart; connections already open keep their session.
func (l *Live) ServerTLS() *tls.Config {
	if l.state.Load().server == nil {
		return nil
	}
	return &tls.Config{
		MinVersion: minTLSVersion,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.state.Load().server, nil
		},
	}
}

// WithLiveAuth makes the API take its credentials from l at every request (see WithAuth).
func WithLiveAuth(l *Live) Option { return func(o *routerOptions) { o.authFn = l.Auth } }
