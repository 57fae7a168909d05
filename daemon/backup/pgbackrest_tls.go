package backup

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ramd-project/ramd/daemon/dynconf"
	"github.com/ramd-project/ramd/daemon/pg"
)

// pgBackRest's TLS server (backup.pgbackrest.tls_server). Every member runs
// `pgbackrest server` on its advertised address while it is enabled; the leader, which
// runs every backup, then backs up a standby on another host with the standby as a remote
// pg2 (--pg2-host-type=tls): the standby's server starts a pgBackRest remote there, which
// reads the standby's files and talks to its PostgreSQL through the unix socket, and the
// leader writes the repository. pgBackRest 2.45 checks the server certificate's DNS names
// and common name against --pg2-host, not its IP addresses: a member reached at an IP
// address needs a certificate carrying that address as a DNS name or as its common name.

// pgbrTLSFiles checks that c (its defaults resolved on this member by the daemon) names
// every file the server and its clients need.
func pgbrTLSFiles(c dynconf.PgBackRestTLS) error {
	var missing []string
	for _, f := range []struct{ name, path string }{
		{"cert_file (or RAMD_PG_TLS_CERTFILE)", c.CertFile},
		{"key_file (or RAMD_PG_TLS_KEYFILE)", c.KeyFile},
		{"ca_file (or RAMD_PG_TLS_CAFILE)", c.CAFile},
		{"client_cert_file (or RAMD_PG_TLS_REPLICATION_CERTFILE)", c.ClientCertFile},
		{"client_key_file (or RAMD_PG_TLS_REPLICATION_KEYFILE)", c.ClientKeyFile},
	} {
		if f.path == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("pgbackrest tls server: no %s on this member", strings.Join(missing, ", "))
	}
	return nil
}

// ServerProgram implements Server: `pgbackrest server` on m's advertised address while
// backup.pgbackrest.tls_server is enabled. It admits the common name of the client
// certificate (the one the leader presents) for the stanza only.
func (t *pgbackrestTool) ServerProgram(m Member) (pg.Program, bool, error) {
	c := t.cfg.PgBackRest.TLSServer
	if !c.Enabled {
		return pg.Program{}, false, nil
	}
	if err := t.checkMember(m); err != nil {
		return pg.Program{}, true, err
	}
	if err := pgbrTLSFiles(c); err != nil {
		return pg.Program{}, true, err
	}
	cn, err := certCommonName(c.ClientCertFile)
	if err != nil {
		return pg.Program{}, true, fmt.Errorf("pgbackrest tls server: client certificate: %w", err)
	}
	return pg.Program{Path: t.exe, Args: pgbrServerArgs(m, c, t.stanza(m), cn), Env: pgbrEnv(m, nil)}, true, nil
}

// pgbrServerArgs are the arguments of m's TLS server (pure).
func pgbrServerArgs(m Member, c dynconf.PgBackRestTLS, stanza, clientCN string) []string {
	return []string{
		"--config=" + pgbrConfigPath(m),
		"--log-level-console=warn",
		"--tls-server-address=" + m.Host,
		"--tls-server-port=" + strconv.Itoa(c.PortValue()),
		"--tls-server-cert-file=" + c.CertFile,
		"--tls-server-key-file=" + c.KeyFile,
		"--tls-server-ca-file=" + c.CAFile,
		"--tls-server-auth=" + clientCN + "=" + stanza,
		"server",
	}
}

// pgbrStandbyOptions are the options of a backup from standby (run with the
// configuration of the member whose pg1 is local) that name primary as pg2. remote: the
// roles turn around: the backup runs with the primary's own configuration (pg1 = the
// primary, local) and standby is pg2, reached through its TLS server with c's files (pure).
func pgbrStandbyOptions(standby, primary Member, remote bool, c dynconf.PgBackRestTLS) []string {
	pg2 := primary
	if remote {
		pg2 = standby
	}
	opts := []string{"--backup-standby"}
	if remote {
		opts = append(opts,
			"--pg2-host="+standby.Host,
			"--pg2-host-type=tls",
			"--pg2-host-port="+strconv.Itoa(c.PortValue()),
			"--pg2-host-cert-file="+c.ClientCertFile,
			"--pg2-host-key-file="+c.ClientKeyFile,
			"--pg2-host-ca-file="+c.CAFile,
			// The standby's own configuration file, on its host (log and lock paths there).
			"--pg2-host-config="+pgbrConfigPath(standby))
	}
	opts = append(opts, "--pg2-path="+pg2.DataDir, "--pg2-port="+strconv.Itoa(pg2.Port))
	if pg2.SocketDir != "" {
		opts = append(opts, "--pg2-socket-path="+pg2.SocketDir)
	}
	if pg2.Superuser != "" {
		opts = append(opts, "--pg2-user="+pg2.Superuser)
	}
	return opts
}

// certCommonName is the subject common name of the first certificate in the PEM file path.
func certCommonName(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return "", fmt.Errorf("%s: no PEM certificate", path)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", fmt.Errorf("parse %s: %w", path, err)
		}
		cn := cert.Subject.CommonName
		if cn == "" || strings.ContainsAny(cn, "=,* \n\r\x00") {
			return "", errors.New(path + ": the certificate's common name is empty or holds characters pgBackRest's tls-server-auth cannot name")
		}
		return cn, nil
	}
}
