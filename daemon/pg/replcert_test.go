package pg

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/test/testenv"
)

// writePair writes a certificate and its key as <name>.pem and <name>.key in dir.
func writePair(t *testing.T, dir, name string, cert, key []byte) (certFile, keyFile string) {
	t.Helper()
	certFile, keyFile = filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestReplicationClientCert checks the replication client certificate's validation (it must
// name the replication role, as PostgreSQL's cert method requires) and that only the
// replication role's connections to other members present it.
func TestReplicationClientCert(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := testenv.NewCA(t)
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	sc, sk := ca.Server(t, "db1")
	server, serverKey := writePair(t, dir, "db1", sc, sk)
	rc, rk := ca.Client(t, "replicator")
	repl, replKey := writePair(t, dir, "replicator", rc, rk)
	oc, ok := ca.Client(t, "someone")
	other, otherKey := writePair(t, dir, "someone", oc, ok)
	base := Config{DataDir: "/d", TLSCertFile: server, TLSKeyFile: serverKey, TLSCAFile: caFile, TLSVerify: "verify-full"}

	good := base
	good.TLSReplicationCertFile, good.TLSReplicationKeyFile = repl, replKey
	if err := good.Validate(); err != nil {
		t.Fatalf("a certificate naming the replication role: %v", err)
	}
	wrong := base
	wrong.TLSReplicationCertFile, wrong.TLSReplicationKeyFile = other, otherKey
	if err := wrong.Validate(); err == nil || !strings.Contains(err.Error(), `common name is "someone"`) || !strings.Contains(err.Error(), "RAMD_PG_REPLICATION_USER") {
		t.Errorf("a certificate naming another role: %v", err)
	}
	mismatched := base
	mismatched.TLSReplicationCertFile, mismatched.TLSReplicationKeyFile = repl, otherKey
	if err := mismatched.Validate(); err == nil || !strings.Contains(err.Error(), "does not load with RAMD_PG_TLS_REPLICATION_KEYFILE") {
		t.Errorf("a key of another certificate: %v", err)
	}

	i := &Instance{cfg: good.withDefaults()}
	r := i.ForMember(ConnParams{Host: "10.0.0.2", Port: 5432, User: "replicator"})
	if r.SSLCert != repl || r.SSLKey != replKey || r.SSLMode != "verify-full" || r.SSLRootCert != caFile {
		t.Errorf("replication connection %+v, want the client certificate with verify-full", r)
	}
	if dsn := PrimaryConnInfo(r, "n2"); !strings.Contains(dsn, "sslcert='"+repl+"'") || !strings.Contains(dsn, "sslkey='"+replKey+"'") {
		t.Errorf("primary_conninfo without the client certificate: %s", dsn)
	}
	if su := i.ForMember(ConnParams{Host: "10.0.0.2", Port: 5432, User: "postgres", SSLCert: "/stale"}); su.SSLCert != "" || su.SSLKey != "" {
		t.Errorf("the superuser's connection presents a client certificate: %+v", su)
	}
	if got := i.replicationAuth(); got != "cert" {
		t.Errorf("replication auth %q, want cert", got)
	}
	plain := &Instance{cfg: base.withDefaults()}
	if got := plain.replicationAuth(); got != "scram-sha-256" {
		t.Errorf("replication auth without a client certificate %q", got)
	}
}
