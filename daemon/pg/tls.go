package pg

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
)

// TLSEnabled reports whether PostgreSQL serves TLS (RAMD_PG_TLS_CERTFILE and _KEYFILE).
func (c Config) TLSEnabled() bool { return c.TLSCertFile != "" }

// validateTLS checks the TLS variables together and loads the files, so a missing or
// mismatched one stops ramd at start rather than PostgreSQL at its next start.
func (c Config) validateTLS() []error {
	var errs []error
	bad := func(env, val, rule string) {
		errs = append(errs, fmt.Errorf("%w: %s=%q: %s", ErrInvalidConfig, env, val, rule))
	}
	if c.TLSVerify != "" && c.TLSVerify != "verify-full" && c.TLSVerify != "verify-ca" {
		bad("RAMD_PG_TLS_VERIFY", c.TLSVerify, "must be verify-full or verify-ca")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("RAMD_PG_TLS_CERTFILE", c.TLSCertFile, "must be set together with RAMD_PG_TLS_KEYFILE")
		return errs
	}
	if (c.TLSReplicationCertFile == "") != (c.TLSReplicationKeyFile == "") {
		bad("RAMD_PG_TLS_REPLICATION_CERTFILE", c.TLSReplicationCertFile, "must be set together with RAMD_PG_TLS_REPLICATION_KEYFILE")
	}
	if !c.TLSEnabled() {
		if c.TLSCAFile != "" {
			bad("RAMD_PG_TLS_CAFILE", c.TLSCAFile, "needs RAMD_PG_TLS_CERTFILE and RAMD_PG_TLS_KEYFILE")
		}
		if c.TLSReplicationCertFile != "" {
			bad("RAMD_PG_TLS_REPLICATION_CERTFILE", c.TLSReplicationCertFile, "needs TLS: set RAMD_PG_TLS_CERTFILE, RAMD_PG_TLS_KEYFILE and RAMD_PG_TLS_CAFILE")
		}
		return errs
	}
	for env, f := range map[string]string{"RAMD_PG_TLS_CERTFILE": c.TLSCertFile, "RAMD_PG_TLS_KEYFILE": c.TLSKeyFile, "RAMD_PG_TLS_CAFILE": c.TLSCAFile} {
		switch {
		case f == "":
			bad(env, f, "is required with TLS (the CA other members' certificates chain to)")
		case !filepath.IsAbs(f):
			bad(env, f, "must be an absolute path")
		}
	}
	if c.replicationCert() {
		for env, f := range map[string]string{"RAMD_PG_TLS_REPLICATION_CERTFILE": c.TLSReplicationCertFile, "RAMD_PG_TLS_REPLICATION_KEYFILE": c.TLSReplicationKeyFile} {
			if !filepath.IsAbs(f) {
				bad(env, f, "must be an absolute path")
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	if c.replicationCert() {
		errs = append(errs, c.validateReplicationCert()...)
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
		bad("RAMD_PG_TLS_CERTFILE", c.TLSCertFile, "does not load with RAMD_PG_TLS_KEYFILE: "+err.Error())
	}
	if b, err := os.ReadFile(c.TLSCAFile); err != nil {
		bad("RAMD_PG_TLS_CAFILE", c.TLSCAFile, err.Error())
	} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
		bad("RAMD_PG_TLS_CAFILE", c.TLSCAFile, "holds no PEM certificate")
	}
	return errs
}

// replicationCert reports whether the replication role authenticates with a client
// certificate (RAMD_PG_TLS_REPLICATION_CERTFILE and _KEYFILE, with TLS).
func (c Config) replicationCert() bool {
	return c.TLSEnabled() && c.TLSReplicationCertFile != "" && c.TLSReplicationKeyFile != ""
}

// validateReplicationCert loads the replication client certificate and checks what
// PostgreSQL's cert method will: the common name is the replication role's name.
func (c Config) validateReplicationCert() []error {
	pair, err := tls.LoadX509KeyPair(c.TLSReplicationCertFile, c.TLSReplicationKeyFile)
	if err != nil {
		return []error{fmt.Errorf("%w: RAMD_PG_TLS_REPLICATION_CERTFILE=%q: does not load with RAMD_PG_TLS_REPLICATION_KEYFILE: %w",
			ErrInvalidConfig, c.TLSReplicationCertFile, err)}
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return []error{fmt.Errorf("%w: RAMD_PG_TLS_REPLICATION_CERTFILE=%q: %w", ErrInvalidConfig, c.TLSReplicationCertFile, err)}
	}
	if leaf.Subject.CommonName != c.ReplicationUser {
		return []error{fmt.Errorf("%w: RAMD_PG_TLS_REPLICATION_CERTFILE=%q: its common name is %q, but PostgreSQL's cert authentication needs the replication role's name %q (RAMD_PG_REPLICATION_USER)",
			ErrInvalidConfig, c.TLSReplicationCertFile, leaf.Subject.CommonName, c.ReplicationUser)}
	}
	return nil
}

// tlsParams are the server settings of TLS (nothing without it: PostgreSQL's default is
// off). PostgreSQL reads the files at start and at every reload, so replacing them and
// reloading (POST /reload) rotates the certificate without a restart.
func (i *Instance) tlsParams() []param {
	if !i.cfg.TLSEnabled() {
		return nil
	}
	return []param{
		{"ssl", "on"},
		{"ssl_cert_file", i.cfg.TLSCertFile},
		{"ssl_key_file", i.cfg.TLSKeyFile},
		{"ssl_ca_file", i.cfg.TLSCAFile},
		{"ssl_min_protocol_version", "TLSv1.2"},
	}
}

// hbaHostType is the pg_hba.conf connection type of TCP lines: hostssl with TLS, so a
// connection without TLS matches no line and is refused.
func (i *Instance) hbaHostType() string {
	if i.cfg.TLSEnabled() {
		return "hostssl"
	}
	return "host"
}

// ForMember returns p with the TLS parameters of a connection to another member: with TLS,
// RAMD_PG_TLS_VERIFY against RAMD_PG_TLS_CAFILE; without, libpq's default.
// The replication role presents its client certificate when one is configured.
func (i *Instance) ForMember(p ConnParams) ConnParams {
	p.SSLMode, p.SSLRootCert, p.SSLCert, p.SSLKey = "", "", "", ""
	if i.cfg.TLSEnabled() {
		p.SSLMode, p.SSLRootCert = i.cfg.TLSVerify, i.cfg.TLSCAFile
	}
	if i.cfg.replicationCert() && p.User == i.cfg.ReplicationUser {
		p.SSLCert, p.SSLKey = i.cfg.TLSReplicationCertFile, i.cfg.TLSReplicationKeyFile
	}
	return p
}

// replicationAuth is the pg_hba.conf method of the replication role from RAMD_PG_HBA_ALLOW:
// its client certificate when configured, its password otherwise.
func (i *Instance) replicationAuth() string {
	if i.cfg.replicationCert() {
		return "cert"
	}
	return "scram-sha-256"
}

// localTLS returns the sslmode and root certificate of ramd's connections to its own server:
// without TLS none (the same host; a refused TLS attempt would cost a second connection),
// with TLS verify-ca against RAMD_PG_TLS_CAFILE (the loopback address is rarely in the
// certificate, but the chain is checked).
func (i *Instance) localTLS() (mode, rootCert string) {
	if i.cfg.TLSEnabled() {
		return "verify-ca", i.cfg.TLSCAFile
	}
	return "disable", ""
}
