package backup

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/ramd-project/ramd/daemon/dynconf"
)

func TestPgbrStandbyOptions(t *testing.T) {
	t.Parallel()
	primary := Member{Name: "n1", Host: "10.0.0.1", Port: 5432, DataDir: "/pg/n1", SocketDir: "/run/pg", Superuser: "postgres", StateDir: "/pg/n1.backup"}
	standby := Member{Name: "n2", Host: "10.0.0.2", Port: 5433, DataDir: "/pg/n2", SocketDir: "/run/pg2", Superuser: "postgres", StateDir: "/pg/n2.backup"}
	noSocket := standby
	noSocket.SocketDir, noSocket.Superuser = "", ""
	files := dynconf.PgBackRestTLS{Enabled: true, CertFile: "/tls/s.pem", KeyFile: "/tls/s.key", CAFile: "/tls/ca.pem", ClientCertFile: "/tls/c.pem", ClientKeyFile: "/tls/c.key"}
	port := files
	port.Port = 9432
	tests := []struct {
		name             string
		standby, primary Member
		remote           bool
		tls              dynconf.PgBackRestTLS
		want             []string
	}{
		{"both local: the primary is pg2 by path", standby, primary, false, dynconf.PgBackRestTLS{},
			[]string{"--backup-standby", "--pg2-path=/pg/n1", "--pg2-port=5432", "--pg2-socket-path=/run/pg", "--pg2-user=postgres"}},
		{"both local, TLS server on: still by path", standby, primary, false, files,
			[]string{"--backup-standby", "--pg2-path=/pg/n1", "--pg2-port=5432", "--pg2-socket-path=/run/pg", "--pg2-user=postgres"}},
		{"remote standby over TLS, default port", standby, primary, true, files,
			[]string{"--backup-standby", "--pg2-host=10.0.0.2", "--pg2-host-type=tls", "--pg2-host-port=8432",
				"--pg2-host-cert-file=/tls/c.pem", "--pg2-host-key-file=/tls/c.key", "--pg2-host-ca-file=/tls/ca.pem",
				"--pg2-host-config=/pg/n2.backup/pgbackrest/pgbackrest.conf",
				"--pg2-path=/pg/n2", "--pg2-port=5433", "--pg2-socket-path=/run/pg2", "--pg2-user=postgres"}},
		{"remote standby without socket, port set", noSocket, primary, true, port,
			[]string{"--backup-standby", "--pg2-host=10.0.0.2", "--pg2-host-type=tls", "--pg2-host-port=9432",
				"--pg2-host-cert-file=/tls/c.pem", "--pg2-host-key-file=/tls/c.key", "--pg2-host-ca-file=/tls/ca.pem",
				"--pg2-host-config=/pg/n2.backup/pgbackrest/pgbackrest.conf",
				"--pg2-path=/pg/n2", "--pg2-port=5433"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tt.want, pgbrStandbyOptions(tt.standby, tt.primary, tt.remote, tt.tls)); d != "" {
				t.Errorf("options (-want +got):\n%s", d)
			}
		})
	}
}

func TestPgbrServerArgs(t *testing.T) {
	t.Parallel()
	m := Member{Name: "n2", Host: "10.0.0.2", StateDir: "/pg/n2.backup"}
	files := dynconf.PgBackRestTLS{Enabled: true, CertFile: "/tls/s.pem", KeyFile: "/tls/s.key", CAFile: "/tls/ca.pem", ClientCertFile: "/tls/c.pem", ClientKeyFile: "/tls/c.key"}
	port := files
	port.Port = 9432
	tests := []struct {
		name string
		tls  dynconf.PgBackRestTLS
		cn   string
		want []string
	}{
		{"default port", files, "replicator", []string{"--config=/pg/n2.backup/pgbackrest/pgbackrest.conf", "--log-level-console=warn",
			"--tls-server-address=10.0.0.2", "--tls-server-port=8432", "--tls-server-cert-file=/tls/s.pem", "--tls-server-key-file=/tls/s.key",
			"--tls-server-ca-file=/tls/ca.pem", "--tls-server-auth=replicator=main", "server"}},
		{"port set", port, "backup-client", []string{"--config=/pg/n2.backup/pgbackrest/pgbackrest.conf", "--log-level-console=warn",
			"--tls-server-address=10.0.0.2", "--tls-server-port=9432", "--tls-server-cert-file=/tls/s.pem", "--tls-server-key-file=/tls/s.key",
			"--tls-server-ca-file=/tls/ca.pem", "--tls-server-auth=backup-client=main", "server"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if d := cmp.Diff(tt.want, pgbrServerArgs(m, tt.tls, "main", tt.cn)); d != "" {
				t.Errorf("arguments (-want +got):\n%s", d)
			}
		})
	}
}

func TestPgbrServerProgram(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cert := filepath.Join(dir, "client.pem")
	writeCert(t, cert, "replicator")
	bad := filepath.Join(dir, "bad.pem")
	writeCert(t, bad, "a b")
	m := Member{Scope: "main", Name: "n1", Host: "10.0.0.1", Port: 5432, DataDir: "/pg/n1", SocketDir: "/run/pg", StateDir: "/pg/n1.backup"}
	full := dynconf.PgBackRestTLS{Enabled: true, CertFile: "/tls/s.pem", KeyFile: "/tls/s.key", CAFile: "/tls/ca.pem", ClientCertFile: cert, ClientKeyFile: "/tls/c.key"}
	noCA := full
	noCA.CAFile = ""
	badCN := full
	badCN.ClientCertFile = bad
	missing := full
	missing.ClientCertFile = filepath.Join(dir, "none.pem")
	tests := []struct {
		name   string
		tls    dynconf.PgBackRestTLS
		wantOK bool
		auth   string // the --tls-server-auth argument wanted, "" none
		err    string
	}{
		{"disabled", dynconf.PgBackRestTLS{}, false, "", ""},
		{"enabled", full, true, "--tls-server-auth=replicator=main", ""},
		{"no CA on this member", noCA, true, "", "ca_file (or RAMD_PG_TLS_CAFILE)"},
		{"common name with a space", badCN, true, "", "common name"},
		{"client certificate missing", missing, true, "", "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tool := newPgBackRest(dynconf.Backup{Tool: dynconf.ToolPgBackRest, PgBackRest: dynconf.PgBackRest{RepoPath: "/r", TLSServer: tt.tls}}, nil)
			p, ok, err := tool.ServerProgram(m)
			if ok != tt.wantOK {
				t.Fatalf("ok = %v, want %v", ok, tt.wantOK)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one naming %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" && !strings.Contains(strings.Join(p.Args, " "), tt.auth) {
				t.Errorf("arguments %q lack %s", p.Args, tt.auth)
			}
		})
	}
}

// writeCert writes a self-signed certificate with common name cn to path.
func writeCert(t *testing.T, path, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
