package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ramd-project/ramd/api"
	"github.com/ramd-project/ramd/api/client"
	"github.com/ramd-project/ramd/daemon"
)

// tlsServer starts the https API of a member (the real router) whose handshake requires a client
// certificate, and writes its self-signed certificate and key as PEM files into a temp directory.
func tlsServer(t *testing.T) (srv *httptest.Server, certFile, keyFile string) {
	t.Helper()
	node := &memNode{name: "n1"}
	node.status = &daemon.Status{Scope: "demo", Name: "n1", Leader: "n1", Members: []daemon.MemberStatus{
		{Name: "n1", Role: client.RoleLeader, State: "running", Host: "10.0.0.1", Port: 5432, Timeline: 1}}}
	srv = httptest.NewUnstartedServer(api.NewRouter(api.Routes{Node: node}, nil, nil, nil))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAnyClientCert}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pair := srv.TLS.Certificates[0]
	keyDER, err := x509.MarshalPKCS8PrivateKey(pair.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "api.pem"), filepath.Join(dir, "api-key.pem")
	for path, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: pair.Certificate[0]},
		keyFile:  {Type: "PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return srv, certFile, keyFile
}

// TestListOverTLS runs ramctrl list against an https member that requires a client
// certificate: the server's CA comes from RAMD_API_CACERT and the client certificate from
// RAMD_API_CERT and RAMD_API_KEY.
func TestListOverTLS(t *testing.T) {
	srv, certFile, keyFile := tlsServer(t)
	// The server's certificate is its own CA; the client presents the same key pair.
	t.Setenv("RAMD_API_CACERT", certFile)
	t.Setenv("RAMD_API_CERT", certFile)
	t.Setenv("RAMD_API_KEY", keyFile)
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"list", "--api", srv.URL}, "", &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "Cluster: demo") || !strings.Contains(out.String(), "n1") {
		t.Errorf("output:\n%s", out.String())
	}
}

// TestListOverTLSUntrusted checks that an https member is verified: without RAMD_API_CACERT
// the test server's private CA is unknown and ramctrl says so.
func TestListOverTLSUntrusted(t *testing.T) {
	srv, _, _ := tlsServer(t)
	t.Setenv("RAMD_API_CACERT", "")
	t.Setenv("RAMD_API_CERT", "")
	t.Setenv("RAMD_API_KEY", "")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"list", "--api", srv.URL}, "", &out, &errb); code != exitError {
		t.Fatalf("exit %d, want %d: %s", code, exitError, out.String())
	}
	if !strings.Contains(errb.String(), "x509:") {
		t.Errorf("stderr %q does not name the certificate problem", errb.String())
	}
}

func TestClientTLSFromEnv(t *testing.T) {
	t.Parallel()
	_, certFile, keyFile := tlsServer(t)
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
		roots   bool
		certs   int
	}{
		{"nothing set: system pool", nil, "", false, 0},
		{"ca", map[string]string{"RAMD_API_CACERT": certFile}, "", true, 0},
		{"ca and client certificate", map[string]string{"RAMD_API_CACERT": certFile, "RAMD_API_CERT": certFile, "RAMD_API_KEY": keyFile}, "", true, 1},
		{"missing ca", map[string]string{"RAMD_API_CACERT": filepath.Join(t.TempDir(), "nope.pem")}, "RAMD_API_CACERT", false, 0},
		{"ca holds no certificate", map[string]string{"RAMD_API_CACERT": keyFile}, "no PEM certificate found", false, 0},
		{"cert without key", map[string]string{"RAMD_API_CERT": certFile}, "RAMD_API_CERT and RAMD_API_KEY must be set together", false, 0},
		{"key does not match", map[string]string{"RAMD_API_CERT": certFile, "RAMD_API_KEY": certFile}, "RAMD_API_KEY=", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			getenv := func(k string) string { return tt.env[k] }
			cfg, err := clientTLS(getenv)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("clientTLS() = %v, want an error containing %q", err, tt.wantErr)
				}
				// The client reports the same error on its first request.
				_, rerr := transportFrom(getenv).RoundTrip(httptest.NewRequest(http.MethodGet, "https://127.0.0.1/", nil))
				if rerr == nil || rerr.Error() != err.Error() {
					t.Errorf("RoundTrip() = %v, want %v", rerr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.MinVersion != tls.VersionTLS12 || (cfg.RootCAs != nil) != tt.roots || len(cfg.Certificates) != tt.certs {
				t.Errorf("min version %x, roots set %v, %d certificates; want TLS 1.2, %v, %d",
					cfg.MinVersion, cfg.RootCAs != nil, len(cfg.Certificates), tt.roots, tt.certs)
			}
		})
	}
}
