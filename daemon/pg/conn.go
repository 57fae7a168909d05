package pg

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// ConnParams says how to reach a PostgreSQL server over TCP.
type ConnParams struct {
	Host     string
	Port     int
	User     string
	Password string
	DBName   string // empty means "postgres" in DSN
	// SSLMode is libpq's sslmode; empty leaves libpq's default (prefer). LocalConn says
	// disable: the server is on this host, and a refused TLS attempt costs a second
	// connection every time.
	SSLMode string
	// SSLRootCert is libpq's sslrootcert: the CA file verify-ca and verify-full check against.
	SSLRootCert string
	// SSLCert and SSLKey are libpq's sslcert and sslkey: the client certificate presented.
	SSLCert, SSLKey string
}

// DSN returns the libpq keyword/value connection string (every value single-quoted with
// backslashes and quotes escaped) with connect_timeout=2. It contains the password when one
// is set; never log it.
func (p ConnParams) DSN() string {
	db := p.DBName
	if db == "" {
		db = "postgres"
	}
	kv := []string{}
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"="+quoteConnValue(v))
		}
	}
	add("host", p.Host)
	if p.Port != 0 {
		add("port", strconv.Itoa(p.Port))
	}
	add("user", p.User)
	add("password", p.Password)
	add("dbname", db)
	add("sslmode", p.SSLMode)
	add("sslrootcert", p.SSLRootCert)
	add("sslcert", p.SSLCert)
	add("sslkey", p.SSLKey)
	kv = append(kv, "connect_timeout=2")
	return strings.Join(kv, " ")
}

// String describes the parameters without the password.
func (p ConnParams) String() string {
	return fmt.Sprintf("%s@%s", p.User, hostPort(p.Host, p.Port))
}

// PrimaryConnInfo returns a primary_conninfo value for streaming from src: host, port,
// user, password (when set), application_name, connect_timeout=2 and TCP keepalives so a
// dead primary is noticed in seconds. Values are quoted; WriteConfig quotes the whole
// string again for the configuration file.
func PrimaryConnInfo(src ConnParams, applicationName string) string {
	kv := []string{}
	add := func(k, v string) {
		if v != "" {
			kv = append(kv, k+"="+quoteConnValue(v))
		}
	}
	add("host", src.Host)
	if src.Port != 0 {
		add("port", strconv.Itoa(src.Port))
	}
	add("user", src.User)
	add("password", src.Password)
	add("application_name", applicationName)
	add("sslmode", src.SSLMode)
	add("sslrootcert", src.SSLRootCert)
	add("sslcert", src.SSLCert)
	add("sslkey", src.SSLKey)
	kv = append(kv, "connect_timeout=2", keepalives)
	return strings.Join(kv, " ")
}

// quoteConnValue quotes a libpq keyword/value value: single quotes, with backslash and
// single quote backslash-escaped.
func quoteConnValue(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(v) + "'"
}

var slotNameRe = regexp.MustCompile(`^[a-z0-9_]+$`) // and at most 63 bytes

// SlotName turns a member name into a physical replication slot name the way Patroni does,
// so slots survive a migration from Patroni: lower-case it, replace '-' and '.' by '_',
// every other character outside [a-z0-9_] by "u" and its code point in at least four
// decimal digits, and cut to 63 bytes. An empty member gives "".
func SlotName(member string) string {
	var b strings.Builder
	for _, c := range strings.ToLower(member) {
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '_':
			b.WriteRune(c)
		case c == '-', c == '.':
			b.WriteByte('_')
		default:
			fmt.Fprintf(&b, "u%04d", c)
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = s[:63]
	}
	return s
}

func validSlotName(name string) error {
	if len(name) > 63 || !slotNameRe.MatchString(name) {
		return fmt.Errorf("%w: %q", ErrInvalidSlotName, name)
	}
	return nil
}
