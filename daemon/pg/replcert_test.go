package pg

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
)

// writeCert writes a self-signed certificate for cn and its key into dir, returning the
// certificate, key and (the certificate doubling as) CA files.
func writeCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".pem"), filepath.Join(dir, cn+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
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
	server, serverKey := writeCert(t, dir, "db1")
	repl, replKey := writeCert(t, dir, "replicator")
	other, otherKey := writeCert(t, dir, "someone")
	base := Config{DataDir: "/d", TLSCertFile: server, TLSKeyFile: serverKey, TLSCAFile: server, TLSVerify: "verify-full"}

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
	if r.SSLCert != repl || r.SSLKey != replKey || r.SSLMode != "verify-full" || r.SSLRootCert != server {
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
