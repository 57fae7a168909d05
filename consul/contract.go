package consul

import (
	"errors"
	"time"
)

// Sentinel errors. Callers use errors.Is.
var (
	// ErrConflict is returned when a CAS write or a lock acquire did not take effect because
	// someone else changed the key (or holds the lock).
	ErrConflict = errors.New("consul: conflict")
	// ErrNotFound is returned when a key does not exist.
	ErrNotFound = errors.New("consul: not found")
	// ErrSessionLost is returned when a session no longer exists (renew answered 404, or an
	// acquire was refused because the session is invalid).
	ErrSessionLost = errors.New("consul: session lost")
	// ErrUnavailable wraps transport errors and 5xx answers: Consul could not be asked.
	ErrUnavailable = errors.New("consul: unavailable")
)

// Config is how ramd reaches its local Consul agent. The variable names are Consul's own, so
// the same environment serves the consul CLI and ramd.
type Config struct {
	Addr          string        `env:"CONSUL_HTTP_ADDR, default=127.0.0.1:8500"`
	Token         string        `env:"CONSUL_HTTP_TOKEN"`
	TokenFile     string        `env:"CONSUL_HTTP_TOKEN_FILE"`
	SSL           bool          `env:"CONSUL_HTTP_SSL, default=false"`
	SSLVerify     bool          `env:"CONSUL_HTTP_SSL_VERIFY, default=true"`
	CACert        string        `env:"CONSUL_CACERT"`
	CAPath        string        `env:"CONSUL_CAPATH"`
	ClientCert    string        `env:"CONSUL_CLIENT_CERT"`
	ClientKey     string        `env:"CONSUL_CLIENT_KEY"`
	TLSServerName string        `env:"CONSUL_TLS_SERVER_NAME"`
	Datacenter    string        `env:"RAMD_CONSUL_DATACENTER"`
	Timeout       time.Duration `env:"RAMD_CONSUL_TIMEOUT, default=2s"`
}

// Pair is one KV entry as read.
type Pair struct {
	Key         string // relative to the store's prefix
	Value       []byte
	ModifyIndex uint64
	LockIndex   uint64
	Session     string // session holding the key, "" when none
}

// AgentInfo is what /v1/agent/self says about the agent ramd talks to.
type AgentInfo struct {
	NodeName   string
	Datacenter string
	Server     bool // true when the agent is a server: sessions made through it die with it
	DevMode    bool
	Version    string
}

// SessionOptions shape an explicitly created session.
type SessionOptions struct {
	Name      string
	TTL       time.Duration // clamped up to Consul's floor (10s) by Consul itself if lower: pass >= 10s
	LockDelay time.Duration // e.g. 1ms; 0 means Consul's default (15s) so callers always set it
}
