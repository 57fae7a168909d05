package pg

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Defaults applied by New (and assumed by Validate) to zero-valued fields. They equal the
// defaults in the env tags.
const (
	DefaultListenAddr      = "127.0.0.1"
	DefaultPort            = 5432
	DefaultOSUser          = "postgres"
	DefaultSuperuser       = "postgres"
	DefaultReplicationUser = "replicator"
	DefaultHBAAllow        = "127.0.0.1/32"
	// SocketDirNone as Config.SocketDir disables unix-domain sockets
	// (unix_socket_directories = ''); ramd itself always connects over TCP.
	SocketDirNone = "none"
)

// maxSocketPath bounds the length of a unix socket path (sun_path is 108 bytes; keep a margin).
const maxSocketPath = 100

// Config is the static configuration of the local PostgreSQL server. The env tags are read
// by go-envconfig in cmd/ramd. Zero-valued fields take the defaults of the tags (see New).
type Config struct {
	// BinDir holds postgres, initdb, pg_basebackup, pg_rewind and pg_controldata. Empty:
	// the directory of pg_ctl on PATH, else the highest /usr/lib/postgresql/<N>/bin
	// (or /usr/pgsql-<N>/bin).
	BinDir string `env:"RAMD_PG_BIN_DIR"`
	// DataDir is the absolute path of the data directory (PGDATA).
	DataDir string `env:"RAMD_DATA_DIR, required"`
	// WALDir, when set, is where initdb and pg_basebackup put pg_wal (--waldir): the data
	// directory's pg_wal is then a symbolic link to it, e.g. a volume of its own. An absolute
	// path outside the data directory (and not containing it); empty or absent before a new
	// data directory is made, except for WAL files of a removed one, which are cleared.
	WALDir string `env:"RAMD_PG_WAL_DIR"`
	// ListenAddr is listen_addresses: a comma-separated list of hosts or IPs, or "*".
	ListenAddr string `env:"RAMD_PG_LISTEN, default=127.0.0.1"`
	// Port is the TCP port of the server.
	Port int `env:"RAMD_PG_PORT, default=5432"`
	// ConnectAddr is the host others use to reach this server; empty means the first
	// entry of ListenAddr that is neither a wildcard nor loopback, else the loopback
	// address.
	ConnectAddr string `env:"RAMD_PG_CONNECT_ADDRESS"`
	// SocketDir is unix_socket_directories (one absolute directory). Empty: a short
	// per-data-directory directory under os.TempDir() (never the data directory itself,
	// because pg_basebackup and pg_rewind would copy its socket lock file to other nodes);
	// SocketDirNone ("none") disables unix sockets.
	SocketDir string `env:"RAMD_PG_SOCKET_DIR"`
	// OSUser runs the PostgreSQL programs when ramd runs as root (PostgreSQL refuses root).
	OSUser string `env:"RAMD_PG_OS_USER, default=postgres"`
	// Superuser is the bootstrap superuser created by initdb; ramd connects as it.
	Superuser string `env:"RAMD_PG_SUPERUSER, default=postgres"`
	// SuperuserPassword is given to initdb; every TCP connection authenticates with
	// scram-sha-256. Required (with ReplicationPassword) when HBAAllow names anything beyond
	// loopback; a loopback-only cluster without one uses LoopbackPasswords.
	SuperuserPassword string `env:"RAMD_PG_SUPERUSER_PASSWORD"`
	// SuperuserPasswordFile names a file holding SuperuserPassword (see ReadSecretFiles).
	SuperuserPasswordFile string `env:"RAMD_PG_SUPERUSER_PASSWORD_FILE"`
	// ReplicationUser is the role standbys stream as (created by EnsureRoles).
	ReplicationUser string `env:"RAMD_PG_REPLICATION_USER, default=replicator"`
	// ReplicationPassword is the replication role's password (see SuperuserPassword).
	ReplicationPassword string `env:"RAMD_PG_REPLICATION_PASSWORD"`
	// ReplicationPasswordFile names a file holding ReplicationPassword.
	ReplicationPasswordFile string `env:"RAMD_PG_REPLICATION_PASSWORD_FILE"`
	// TLSCertFile and TLSKeyFile are the server's PEM certificate and key; set together they
	// turn TLS on (see tls.go): ssl = on with TLS 1.2 at least, hostssl lines only, and
	// members connecting to each other with TLSVerify against TLSCAFile.
	TLSCertFile string `env:"RAMD_PG_TLS_CERTFILE"`
	TLSKeyFile  string `env:"RAMD_PG_TLS_KEYFILE"`
	// TLSCAFile is the PEM bundle the members' certificates chain to (required with TLS).
	TLSCAFile string `env:"RAMD_PG_TLS_CAFILE"`
	// TLSVerify is the sslmode of connections between members: verify-full (the certificate
	// names the member's connect address) or verify-ca.
	TLSVerify string `env:"RAMD_PG_TLS_VERIFY, default=verify-full"`
	// TLSReplicationCertFile and TLSReplicationKeyFile are the client certificate and key a
	// member presents when it streams or clones as ReplicationUser. Set (with TLS), the
	// replication role authenticates from RAMD_PG_HBA_ALLOW with its certificate (pg_hba.conf
	// method cert: the certificate's common name must be the role's name) instead of its
	// password. The key must be readable by the account that runs PostgreSQL only.
	TLSReplicationCertFile string `env:"RAMD_PG_TLS_REPLICATION_CERTFILE"`
	TLSReplicationKeyFile  string `env:"RAMD_PG_TLS_REPLICATION_KEYFILE"`
	// HBAAllow lists the CIDRs (comma-separated) allowed to connect, for replication and
	// for all databases.
	HBAAllow string `env:"RAMD_PG_HBA_ALLOW, default=127.0.0.1/32"`
	// LogFile receives the postmaster's stdout and stderr (appended). Empty means
	// "<DataDir>.log", outside the data directory so pg_basebackup and pg_rewind do not
	// copy it.
	LogFile string `env:"RAMD_PG_LOG_FILE"`
}

var (
	roleNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)    // and at most 63 bytes
	osUserRe   = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)  // and at most 32 bytes
	hostRe     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9.-]*$`) // and at most 253 bytes
)

// withDefaults fills zero-valued fields with the env-tag defaults and derived defaults that
// need no I/O (ConnectAddr, LogFile).
func (c Config) withDefaults() Config {
	if c.ListenAddr == "" {
		c.ListenAddr = DefaultListenAddr
	}
	if c.Port == 0 {
		c.Port = DefaultPort
	}
	if c.OSUser == "" {
		c.OSUser = DefaultOSUser
	}
	if c.Superuser == "" {
		c.Superuser = DefaultSuperuser
	}
	if c.ReplicationUser == "" {
		c.ReplicationUser = DefaultReplicationUser
	}
	if c.HBAAllow == "" {
		c.HBAAllow = DefaultHBAAllow
	}
	if c.ConnectAddr == "" {
		c.ConnectAddr = connectHost(c.ListenAddr)
	}
	if c.LogFile == "" && c.DataDir != "" {
		c.LogFile = filepath.Clean(c.DataDir) + ".log"
	}
	return c
}

// Validate checks every field (zero values stand for the defaults of the env tags) and
// returns all problems joined, each naming the env variable, the value and the rule; the
// result wraps ErrInvalidConfig.
func (c Config) Validate() error {
	// Values derived from others (the log file from the data directory, the connect address
	// from the listen address) are only judged when the user set them: a bad data directory
	// is reported once, under its own name.
	logFileSet, connectSet := c.LogFile != "", c.ConnectAddr != ""
	c = c.withDefaults()
	var errs []error
	bad := func(env string, val any, rule string) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %s", ErrInvalidConfig, env, fmt.Sprint(val), rule))
	}
	if c.BinDir != "" && !filepath.IsAbs(c.BinDir) {
		bad("RAMD_PG_BIN_DIR", c.BinDir, "must be an absolute path")
	}
	switch {
	case c.DataDir == "":
		bad("RAMD_DATA_DIR", c.DataDir, "is required")
	case !filepath.IsAbs(c.DataDir):
		bad("RAMD_DATA_DIR", c.DataDir, "must be an absolute path")
	case filepath.Clean(c.DataDir) == "/":
		bad("RAMD_DATA_DIR", c.DataDir, "must not be the root directory")
	case strings.ContainsAny(c.DataDir, "\n\r\x00"):
		bad("RAMD_DATA_DIR", c.DataDir, "must not contain control characters")
	}
	if c.WALDir != "" {
		switch {
		case !filepath.IsAbs(c.WALDir):
			bad("RAMD_PG_WAL_DIR", c.WALDir, "must be an absolute path")
		case filepath.Clean(c.WALDir) == "/":
			bad("RAMD_PG_WAL_DIR", c.WALDir, "must not be the root directory")
		case strings.ContainsAny(c.WALDir, "\n\r\x00"):
			bad("RAMD_PG_WAL_DIR", c.WALDir, "must not contain control characters")
		case c.DataDir != "" && filepath.IsAbs(c.DataDir) &&
			(isWithin(filepath.Clean(c.DataDir), filepath.Clean(c.WALDir)) || isWithin(filepath.Clean(c.WALDir), filepath.Clean(c.DataDir))):
			bad("RAMD_PG_WAL_DIR", c.WALDir, "must be outside RAMD_DATA_DIR and not contain it")
		}
	}
	for _, h := range strings.Split(c.ListenAddr, ",") {
		h = strings.TrimSpace(h)
		if h == "*" || validHost(h) {
			continue
		}
		bad("RAMD_PG_LISTEN", c.ListenAddr, "must be a comma-separated list of host names or IP addresses, or *")
		break
	}
	if c.Port < 1 || c.Port > 65535 {
		bad("RAMD_PG_PORT", c.Port, "must be in 1..65535")
	}
	if connectSet && !validHost(c.ConnectAddr) {
		bad("RAMD_PG_CONNECT_ADDRESS", c.ConnectAddr, "must be a host name or an IP address")
	}
	if c.SocketDir != "" && c.SocketDir != SocketDirNone {
		switch {
		case !filepath.IsAbs(c.SocketDir):
			bad("RAMD_PG_SOCKET_DIR", c.SocketDir, `must be an absolute path or "none"`)
		case strings.ContainsAny(c.SocketDir, ",'\\\n\r\x00 "):
			bad("RAMD_PG_SOCKET_DIR", c.SocketDir, "must not contain commas, quotes, backslashes or spaces")
		case len(socketPath(c.SocketDir, c.Port)) >= maxSocketPath:
			bad("RAMD_PG_SOCKET_DIR", c.SocketDir, fmt.Sprintf("socket path must be shorter than %d bytes", maxSocketPath))
		}
	}
	if len(c.OSUser) > 32 || !osUserRe.MatchString(c.OSUser) || c.OSUser == "root" {
		bad("RAMD_PG_OS_USER", c.OSUser, "must be an unprivileged user name")
	}
	if len(c.Superuser) > 63 || !roleNameRe.MatchString(c.Superuser) {
		bad("RAMD_PG_SUPERUSER", c.Superuser, "must match [A-Za-z_][A-Za-z0-9_]{0,62}")
	}
	if len(c.ReplicationUser) > 63 || !roleNameRe.MatchString(c.ReplicationUser) {
		bad("RAMD_PG_REPLICATION_USER", c.ReplicationUser, "must match [A-Za-z_][A-Za-z0-9_]{0,62}")
	} else if c.ReplicationUser == c.Superuser {
		bad("RAMD_PG_REPLICATION_USER", c.ReplicationUser, "must differ from RAMD_PG_SUPERUSER")
	}
	if strings.ContainsAny(c.SuperuserPassword, "\n\r\x00") {
		bad("RAMD_PG_SUPERUSER_PASSWORD", "REDACTED", "must not contain line breaks or NUL")
	}
	if strings.ContainsAny(c.ReplicationPassword, "\n\r\x00") {
		bad("RAMD_PG_REPLICATION_PASSWORD", "REDACTED", "must not contain line breaks or NUL")
	}
	if cidrs, err := parseCIDRs(c.HBAAllow); err != nil {
		bad("RAMD_PG_HBA_ALLOW", c.HBAAllow, "must be a comma-separated list of CIDRs: "+err.Error())
	} else if !loopbackOnly(cidrs) && (c.SuperuserPassword == "" || c.ReplicationPassword == "") {
		bad("RAMD_PG_HBA_ALLOW", c.HBAAllow, "allows addresses beyond loopback, so RAMD_PG_SUPERUSER_PASSWORD and "+
			"RAMD_PG_REPLICATION_PASSWORD (or their _FILE variants) are required: no TCP connection is accepted without a password")
	}
	errs = append(errs, c.validateTLS()...)
	switch {
	case !logFileSet:
		// <data dir>.log: judged with the data directory above.
	case !filepath.IsAbs(c.LogFile):
		bad("RAMD_PG_LOG_FILE", c.LogFile, "must be an absolute path")
	case c.DataDir != "" && isWithin(filepath.Clean(c.DataDir), filepath.Clean(c.LogFile)):
		bad("RAMD_PG_LOG_FILE", c.LogFile, "must be outside RAMD_DATA_DIR")
	}
	return errors.Join(errs...)
}

// LogValue implements slog.LogValuer; passwords are redacted.
func (c Config) LogValue() slog.Value {
	redact := func(s string) string {
		if s == "" {
			return ""
		}
		return "REDACTED"
	}
	return slog.GroupValue(
		slog.String("bin_dir", c.BinDir),
		slog.String("data_dir", c.DataDir),
		slog.String("wal_dir", c.WALDir),
		slog.String("listen_addr", c.ListenAddr),
		slog.Int("port", c.Port),
		slog.String("connect_addr", c.ConnectAddr),
		slog.String("socket_dir", c.SocketDir),
		slog.String("os_user", c.OSUser),
		slog.String("superuser", c.Superuser),
		slog.String("superuser_password", redact(c.SuperuserPassword)),
		slog.String("replication_user", c.ReplicationUser),
		slog.String("replication_password", redact(c.ReplicationPassword)),
		slog.String("hba_allow", c.HBAAllow),
		slog.String("log_file", c.LogFile),
	)
}

func validHost(h string) bool {
	if h == "" {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return len(h) <= 253 && hostRe.MatchString(h)
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		p, err := netip.ParsePrefix(part)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	if len(out) == 0 {
		return nil, errors.New("no cidr given")
	}
	return out, nil
}

// connectHost picks the address others use by default: the first entry of listen that
// is neither a wildcard nor a loopback address, else the loopback address.
func connectHost(listen string) string {
	for _, h := range strings.Split(listen, ",") {
		h = strings.TrimSpace(h)
		if h == "" || h == "*" || h == "localhost" {
			continue
		}
		if a, err := netip.ParseAddr(h); err == nil && (a.IsUnspecified() || a.IsLoopback()) {
			continue
		}
		return h
	}
	return localHost(listen)
}

// localHost picks the address ramd uses to reach a server listening on listen: the
// loopback address when it is listened on or for a wildcard, else the first entry.
func localHost(listen string) string {
	var first string
	for _, h := range strings.Split(listen, ",") {
		h = strings.TrimSpace(h)
		switch h {
		case "":
			continue
		case "*", "0.0.0.0", "127.0.0.1", "localhost":
			return "127.0.0.1"
		case "::", "::1":
			return "::1"
		}
		if first == "" {
			first = h
		}
	}
	if first == "" {
		return "127.0.0.1"
	}
	return first
}

func socketPath(dir string, port int) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
}

// isWithin reports whether path is dir or inside it (both cleaned).
func isWithin(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	if err != nil {
		return false
	}
	return rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// hostPort joins a host and port for logs.
func hostPort(h string, p int) string { return net.JoinHostPort(h, strconv.Itoa(p)) }
